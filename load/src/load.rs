//! One input file into its channel: open, resume after the committed token, append what the
//! reader sends, wait for the last rows' commit.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde_json::{json, Value};
use snowpipe_streaming::{
    Channel, CloseOptions, OffsetToken, OpenChannelOptions, Pipe, Positions, Rows,
};
use tokio::sync::{mpsc, watch};

use crate::chunk::{Batch, Msg};
use crate::cli::Format;
use crate::dead_letter::DeadLetter;
use crate::input::{Input, Settings};
use crate::progress::FileProgress;
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
    /// Where its bad records are, when it had some.
    pub rejected_path: Option<std::path::PathBuf>,
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
            "rejected_path": self.rejected_path.as_ref().map(|p| p.display().to_string()),
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
    /// Counts the rows `channel`'s server rejects until it closes (every row once, however
    /// far the counting task falls behind).
    fn watch(&self, channel: &Channel) {
        let mut errors = channel.row_errors();
        let count = Arc::clone(&self.count);
        let task = tokio::spawn(async move {
            while let Some(e) = errors.recv().await {
                count.fetch_add(e.new_errors, Ordering::Relaxed);
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
    progress: &FileProgress,
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

/// Opens `input`'s channel: a lane of a file split into ranges as its lane stream's lane
/// (`Pipe::open_lane`), an input loaded whole as its one channel.
async fn open(pipe: &Pipe, input: &Input, row_errors: &RowErrors) -> Result<Channel> {
    let name = &input.channel;
    let channel = match &input.lane {
        Some(lane) => {
            pipe.open_lane(&lane.stream, lane.index, OpenChannelOptions::default())
                .await
        }
        None => pipe.open_channel(name).await,
    }
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
    progress: &FileProgress,
    out: &mut FileOutcome,
    row_errors: &RowErrors,
) -> Result<()> {
    let first = open(pipe, input, row_errors).await?;
    let committed = first.latest_committed_offset_token();
    out.committed = committed.clone();
    // An object loaded whole: the bytes still to load, fetched to a local spool file first;
    // a lane of a ranged object fetches each of its ranges as it comes to it (the reader,
    // `spawn_reader`; `object/spool.rs`).
    let at = committed.as_ref().map(OffsetToken::as_str);
    let remote = input.object.as_deref().filter(|_| input.spans.is_empty());
    let spool_dir = &settings.spool_dir;
    let spooled = tokio::select! {
        s = crate::object::spool::prepare((remote, input.format), spool_dir, at, (None, "")) => s,
        _ = stop.wait_for(|s| *s) => Ok(None),
    };
    let spooled = match spooled {
        Ok(s) => s,
        Err(e) => {
            let _ = first.close_with(CloseOptions::default()).await;
            return Err(e);
        }
    };
    if *stop.borrow() {
        return finish(first, None, settings.commit_timeout, out).await;
    }
    let reading = match &spooled {
        Some(s) => Input {
            path: s.path().to_owned(),
            ..input.clone()
        },
        None => input.clone(),
    };
    let mut channel = Some(first);
    let (tx, mut rx) = mpsc::channel::<Msg>(4);
    let halt = Arc::new(AtomicBool::new(false));
    let reader = spawn_reader(&reading, settings, committed, tx, Arc::clone(&halt));
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
                        .append(
                            Rows::ndjson(Bytes::from_owner(c.ndjson)),
                            Positions::span(first..=end.clone()),
                        )
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
                    match open(pipe, input, row_errors).await {
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
    let stopped = *stop.borrow();
    let (read, report) = join_reader(reader, stopped).await?;
    out.bad_records = report.bad_records;
    if out.bad_records > 0 && !input.stdin {
        let dead = crate::dead_letter::DeadLetter::for_input(
            &input.path,
            input.object.as_deref().map(|o| o.name.as_str()),
            &settings.dead_letters,
        );
        out.rejected_path = Some(dead.path().to_owned());
    }
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
    let runtime = tokio::runtime::Handle::current();
    tokio::task::spawn_blocking(move || {
        let committed = committed.as_ref().map(OffsetToken::as_str);
        if input.spans.is_empty() {
            let mut report = TextReport::default();
            let result = read(
                &input,
                None,
                &settings,
                committed,
                (&tx, &halt),
                &mut report,
            );
            return (result, report);
        }
        // A lane: its ranges in order, each after the committed position when it is inside.
        let mut all = TextReport::default();
        for (i, &span) in input.spans.iter().enumerate() {
            let mut report = TextReport::default();
            // A ranged object's lane: this range's bytes (after the committed position when
            // it is inside), fetched now into the lane's spool file, removed after reading.
            let spooled = match ranged_spool(&runtime, &input, &settings, committed, span) {
                Ok(s) => s,
                Err(e) => return (Err(e), all),
            };
            let reading = match &spooled {
                Some(s) => Input {
                    path: s.path().to_owned(),
                    ..input.clone()
                },
                None => input.clone(),
            };
            let result = read(
                &reading,
                Some(span),
                &settings,
                committed,
                (&tx, &halt),
                &mut report,
            );
            if i == 0 {
                all.start_position = report.start_position;
            }
            all.end_position = report.end_position;
            all.replaced |= report.replaced;
            all.bad_records += report.bad_records;
            if result.is_err() || halt.load(Ordering::Relaxed) {
                return (result, all);
            }
        }
        (Ok(()), all)
    })
}

/// The spool file of `span` of a ranged object's lane (`None` for a local file), fetched on
/// the blocking pool's thread through the runtime.
///
/// # Errors
/// As `object::spool::prepare`.
fn ranged_spool(
    runtime: &tokio::runtime::Handle,
    input: &Input,
    settings: &Settings,
    committed: Option<&str>,
    span: (u64, u64),
) -> Result<Option<crate::object::spool::Spooled>> {
    let Some(remote) = input.object.as_deref() else {
        return Ok(None);
    };
    let lane = format!("_{}", input.channel);
    runtime.block_on(crate::object::spool::prepare(
        (Some(remote), input.format),
        &settings.spool_dir,
        committed,
        (Some(span), &lane),
    ))
}

/// Reads `input` (its range `span`) after `committed`, sending what it reads to `tx`.
fn read(
    input: &Input,
    span: Option<(u64, u64)>,
    settings: &Settings,
    committed: Option<&str>,
    (tx, halt): (&mpsc::Sender<Msg>, &AtomicBool),
    report: &mut TextReport,
) -> Result<()> {
    match input.format {
        Format::Parquet => {
            let sink = crate::parquet_rows::Sink {
                tx,
                stop: halt,
                on_error: settings.on_error,
                memory_budget: settings.memory_budget,
                decoding: &settings.decoding,
            };
            let object = input.object.as_ref().map(|o| &o.tag);
            let dead = DeadLetter::for_input(
                &input.path,
                input.object.as_deref().map(|o| o.name.as_str()),
                &settings.dead_letters,
            );
            crate::parquet_rows::read(
                (&input.path, span),
                committed,
                object,
                (&sink, dead),
                report,
            )
        }
        Format::Ndjson | Format::Csv if input.stdin => {
            crate::stdin::read(input, settings, (tx, halt), report)
        }
        Format::Ndjson | Format::Csv => {
            let format = match (input.format, &settings.csv) {
                (Format::Csv, Some(o)) => TextFormat::Csv(o.clone()),
                _ => TextFormat::Ndjson,
            };
            let modes = (settings.follow, settings.on_error);
            let at = (input.path.as_path(), span);
            let object = input.object.as_ref().map(|o| &o.tag);
            let (reader, r) = TextReader::open(at, format, committed, modes, object, tx, halt)?;
            let reader = reader
                .within(&settings.decoding)
                .dead_letters(DeadLetter::for_input(
                    &input.path,
                    input.object.as_deref().map(|o| o.name.as_str()),
                    &settings.dead_letters,
                ));
            *report = r;
            reader.run(report)
        }
    }
}

/// Appends a Parquet batch at the tokens of its rows (`pq1:…:<rows loaded>`, or `pq1r:`/`obj1:`;
/// one number per row with the file's prefix, so the SDK splits a batch larger than one
/// request exactly). Returns the last token.
async fn append_batch(channel: &Channel, b: &Batch) -> Result<OffsetToken> {
    let n = b.batch.num_rows();
    if n == 0 {
        bail!("an empty record batch");
    }
    let start = OffsetToken::new(b.identity.token(b.before + 1))?;
    let end = OffsetToken::new(b.identity.token(b.before + n as u64))?;
    channel
        .append(
            Rows::arrow(b.batch.clone()),
            Positions::span(start..=end.clone()),
        )
        .await
        .context("cannot append a record batch")?;
    Ok(end)
}
