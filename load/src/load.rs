//! One input file into its channel: open, resume after the committed token, append what the
//! reader sends, wait for the last rows' commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};
use snowpipe_streaming::{Channel, CloseOptions, OffsetToken, Pipe};
use tokio::sync::{mpsc, watch};

use crate::chunk::{Batch, Msg};
use crate::cli::Format;
use crate::input::{Input, Settings};
use crate::progress::Progress;
use crate::text::{TextFormat, TextReader, TextReport};

/// What happened to one file (a line of the summary).
#[derive(Debug, Default)]
pub(crate) struct FileOutcome {
    /// Rows appended.
    pub rows: u64,
    /// Input bytes read.
    pub bytes: u64,
    /// Bad records (dead-lettered).
    pub bad_records: u64,
    /// Rows the server refused (the channel's row-error events).
    pub row_errors: u64,
    /// The reader's positions.
    pub report: TextReport,
    /// The last token appended.
    pub last_token: Option<OffsetToken>,
    /// The committed token at the end.
    pub committed: Option<OffsetToken>,
    /// Why the file is not done.
    pub error: Option<String>,
}

impl FileOutcome {
    /// Whether every row appended is committed and nothing failed.
    pub(crate) fn ok(&self) -> bool {
        self.error.is_none()
            && self
                .last_token
                .as_ref()
                .is_none_or(|t| self.committed.as_ref() == Some(t))
    }

    /// The summary's object for `input`.
    pub(crate) fn json(&self, input: &Input) -> Value {
        json!({
            "path": input.path.display().to_string(),
            "channel": input.channel,
            "format": format!("{:?}", input.format).to_lowercase(),
            "rows": self.rows,
            "bytes": self.bytes,
            "bad_records": self.bad_records,
            "row_errors": self.row_errors,
            "start_position": self.report.start_position,
            "end_position": self.report.end_position,
            "replaced": self.report.replaced,
            "committed_token": self.committed.as_ref().map(|t| t.as_str().to_owned()),
            "ok": self.ok(),
            "error": self.error,
        })
    }
}

/// The row errors the server reports on a file's channels (each handle's events).
#[derive(Default)]
struct RowErrors {
    count: Arc<AtomicU64>,
    tasks: std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>,
}

impl RowErrors {
    /// Counts the events of `channel` until it closes.
    fn watch(&self, channel: &Channel) {
        let mut events = channel.events();
        let count = Arc::clone(&self.count);
        let task = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match events.recv().await {
                    Ok(e) => {
                        count.fetch_add(e.new_errors, Ordering::Relaxed);
                    }
                    Err(RecvError::Lagged(_)) => {}
                    Err(RecvError::Closed) => return,
                }
            }
        });
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(task);
    }

    /// The count once the closed channels' last events are in (at most 2 s each).
    async fn total(&self) -> u64 {
        let tasks = std::mem::take(
            &mut *self
                .tasks
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        for task in tasks {
            if tokio::time::timeout(Duration::from_secs(2), task)
                .await
                .is_err()
            {
                tracing::debug!("row-error events still open after the channel closed");
            }
        }
        self.count.load(Ordering::Relaxed)
    }
}

/// Loads `input` through `pipe`.
pub(crate) async fn load(
    pipe: &Pipe,
    input: &Input,
    settings: &Settings,
    mut stop: watch::Receiver<bool>,
    progress: &Progress,
) -> FileOutcome {
    let mut out = FileOutcome::default();
    let row_errors = RowErrors::default();
    let result = run(
        pipe,
        input,
        settings,
        &mut stop,
        progress,
        &mut out,
        &row_errors,
    )
    .await;
    out.row_errors = row_errors.total().await;
    if let Err(e) = result {
        out.error = Some(format!("{e:#}"));
    } else if *stop.borrow() && !settings.follow {
        out.error = Some("interrupted (Ctrl-C or SIGTERM): run again to resume".to_owned());
    }
    out
}

async fn open(pipe: &Pipe, name: &str, row_errors: &RowErrors) -> Result<Channel> {
    let channel = pipe
        .open_channel(name)
        .await
        .with_context(|| format!("cannot open channel {name}"))?;
    row_errors.watch(&channel);
    Ok(channel)
}

/// Waits for `last` to be committed and closes `channel`, noting the committed token.
async fn finish(
    channel: Channel,
    last: Option<&OffsetToken>,
    timeout: Duration,
    out: &mut FileOutcome,
) -> Result<()> {
    // Send what waits for `max_client_lag` now: the file is read to its end.
    let waited = match last {
        Some(t) => match channel.flush().await {
            Ok(()) => channel.wait_for_commit(t, timeout).await,
            Err(e) => Err(e),
        },
        None => Ok(()),
    };
    out.committed = channel.latest_committed_offset_token();
    let closed = channel
        .close_with(CloseOptions::default().timeout(timeout))
        .await;
    waited.context("the last rows were not committed")?;
    closed.context("cannot close the channel")?;
    Ok(())
}

#[allow(clippy::too_many_arguments)]
async fn run(
    pipe: &Pipe,
    input: &Input,
    settings: &Settings,
    stop: &mut watch::Receiver<bool>,
    progress: &Progress,
    out: &mut FileOutcome,
    row_errors: &RowErrors,
) -> Result<()> {
    let first = open(pipe, &input.channel, row_errors).await?;
    let committed = first.latest_committed_offset_token();
    let mut channel = Some(first);
    out.committed = committed.clone();
    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let halt = Arc::new(AtomicBool::new(false));
    let reader = spawn_reader(input, settings, committed, tx, Arc::clone(&halt));
    let mut failed = None;
    loop {
        let msg = tokio::select! {
            m = rx.recv() => m,
            _ = stop.wait_for(|s| *s) => None,
        };
        let (Some(msg), Some(ch)) = (msg, channel.as_ref()) else {
            break;
        };
        let step = match msg {
            Msg::Rows(c) => {
                let tokens = OffsetToken::new(c.first_token)
                    .and_then(|first| Ok((first, OffsetToken::new(c.end_token)?)));
                match tokens {
                    Ok((first, end)) => ch
                        .append_raw(Bytes::from(c.ndjson), Some(first), Some(end.clone()))
                        .await
                        .map(|()| {
                            out.rows += c.rows;
                            out.bytes += c.bytes;
                            out.last_token = Some(end);
                            progress.add(c.rows, c.bytes);
                        })
                        .map_err(anyhow::Error::from),
                    Err(e) => Err(e.into()),
                }
            }
            Msg::Batch(b) => append_batch(ch, &b).await.map(|last| {
                let rows = b.batch.num_rows() as u64;
                out.rows += rows;
                out.bytes += b.bytes;
                out.last_token = Some(last);
                progress.add(rows, b.bytes);
            }),
            Msg::Skipped { bytes } => {
                out.bytes += bytes;
                progress.add(0, bytes);
                Ok(())
            }
            Msg::Restart { reason } => {
                tracing::info!(channel = %input.channel, "{reason}");
                let mut restarted = Ok(());
                if let Some(old) = channel.take() {
                    let last = out.last_token.take();
                    restarted = finish(old, last.as_ref(), settings.commit_timeout, out).await;
                }
                if restarted.is_ok() {
                    match open(pipe, &input.channel, row_errors).await {
                        Ok(c) => channel = Some(c),
                        Err(e) => restarted = Err(e),
                    }
                }
                restarted
            }
        };
        if let Err(e) = step {
            failed = Some(e);
            break;
        }
    }
    halt.store(true, Ordering::Relaxed);
    drop(rx);
    let (read, report) = join_reader(reader, *stop.borrow()).await?;
    out.bad_records = report.bad_records;
    out.report = report;
    let stopping = *stop.borrow() || failed.is_some();
    let finished = match channel {
        Some(ch) => {
            let last = out.last_token.clone();
            finish(ch, last.as_ref(), settings.commit_timeout, out).await
        }
        None => Ok(()),
    };
    if let Some(e) = failed {
        return Err(e);
    }
    if let Err(e) = read {
        if !stopping {
            return Err(e);
        }
    }
    finished
}

/// How long a reader may take to stop after Ctrl-C or SIGTERM.
const READER_GRACE: Duration = Duration::from_secs(2);

/// The reader's outcome; once stopping, within [`READER_GRACE`]: a reader blocked in a read
/// that may never return (standard input with nothing coming) is left behind, so Ctrl-C and
/// SIGTERM still end the run (`main` does not wait for it either).
///
/// # Errors
/// When the reader panicked.
async fn join_reader(
    reader: tokio::task::JoinHandle<(Result<()>, TextReport)>,
    stopping: bool,
) -> Result<(Result<()>, TextReport)> {
    let joined = if stopping {
        match tokio::time::timeout(READER_GRACE, reader).await {
            Ok(joined) => joined,
            Err(_) => {
                let left = anyhow!("the reader was still blocked in a read when stopped");
                return Ok((Err(left), TextReport::default()));
            }
        }
    } else {
        reader.await
    };
    joined.map_err(|e| anyhow!("the reader panicked: {e}"))
}

/// Starts the reader of `input` on the blocking pool.
fn spawn_reader(
    input: &Input,
    settings: &Settings,
    committed: Option<OffsetToken>,
    tx: mpsc::Sender<Msg>,
    halt: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<(Result<()>, TextReport)> {
    let input = input.clone();
    let settings = settings.clone();
    tokio::task::spawn_blocking(move || {
        let mut report = TextReport::default();
        let committed = committed.as_ref().map(OffsetToken::as_str);
        let result = match input.format {
            Format::Parquet => {
                let sink = crate::parquet_rows::Sink {
                    tx: &tx,
                    stop: &halt,
                    on_error: settings.on_error,
                    memory_budget: settings.memory_budget,
                };
                crate::parquet_rows::read(&input.path, committed, &sink, &mut report)
            }
            Format::Ndjson | Format::Csv if input.stdin => {
                crate::stdin::read(&input, &settings, (&tx, &*halt), &mut report)
            }
            Format::Ndjson | Format::Csv => {
                let format = match (input.format, &settings.csv) {
                    (Format::Csv, Some(o)) => TextFormat::Csv(o.clone()),
                    _ => TextFormat::Ndjson,
                };
                let modes = (settings.follow, settings.on_error);
                match TextReader::open(&input.path, format, committed, modes, &tx, &halt) {
                    Ok((reader, r)) => {
                        report = r;
                        reader.run(&mut report)
                    }
                    Err(e) => Err(e),
                }
            }
        };
        (result, report)
    })
}

/// Appends a Parquet batch with the tokens of its rows (`pq1:…:<rows loaded>`). Returns the
/// last token.
async fn append_batch(channel: &Channel, b: &Batch) -> Result<OffsetToken> {
    let n = b.batch.num_rows();
    if n == 0 {
        bail!("an empty record batch");
    }
    in_slices(n, |at, len| {
        let slice = b.batch.slice(at, len);
        let tokens = (
            b.identity.token(b.before + at as u64 + 1),
            b.identity.token(b.before + (at + len) as u64),
        );
        async move {
            let start = OffsetToken::new(tokens.0)?;
            let end = OffsetToken::new(tokens.1)?;
            match channel
                .append_record_batch(&slice, Some(start), Some(end))
                .await
            {
                Ok(()) => Ok(true),
                Err(snowpipe_streaming::Error::InvalidArgument { .. }) if len > 1 => Ok(false),
                Err(e) => Err(e).context("cannot append a record batch"),
            }
        }
    })
    .await?;
    Ok(OffsetToken::new(b.identity.token(b.before + n as u64))?)
}

/// Appends rows `0..n` in slices through `append(at, len)`: `Ok(true)` appended, `Ok(false)`
/// refused as too large for one request (the SDK refuses to split string tokens). The first
/// slice is the whole batch; a refused slice is halved, and the length that went through is
/// kept for the rest (each refusal costs the SDK an encoding of the slice: starting from the
/// whole remainder after every success encoded a batch O(log n) times over).
async fn in_slices<F, Fut>(n: usize, mut append: F) -> Result<()>
where
    F: FnMut(usize, usize) -> Fut,
    Fut: std::future::Future<Output = Result<bool>>,
{
    let (mut at, mut len) = (0, n);
    while at < n {
        let take = len.min(n - at);
        if append(at, take).await? {
            at += take;
        } else {
            len = (take / 2).max(1);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rows offered to `append` for `n` rows when a request takes at most `fits` rows.
    async fn offered(n: usize, fits: usize) -> (usize, Vec<(usize, usize)>) {
        let mut total = 0;
        let mut appended = Vec::new();
        in_slices(n, |at, len| {
            total += len;
            let ok = len <= fits;
            if ok {
                appended.push((at, len));
            }
            async move { Ok(ok) }
        })
        .await
        .unwrap();
        (total, appended)
    }

    #[tokio::test]
    async fn a_refused_batch_is_encoded_a_bounded_number_of_times() {
        let (total, appended) = offered(65_536, 100).await;
        // Every row once, in order, in slices that fit.
        let mut next = 0;
        for &(at, len) in &appended {
            assert_eq!(at, next);
            assert!(len <= 100);
            next += len;
        }
        assert_eq!(next, 65_536);
        // The whole batch, its halvings down to what fits, then each row once.
        assert!(total <= 65_536 * 3, "{total} rows encoded for 65,536");
        let (total, appended) = offered(10, 10).await;
        assert_eq!((total, appended), (10, vec![(0, 10)]));
    }
}
