//! The exactly-once writer model across crashes: the README's recipe (open, resume after the
//! committed token, append) run by a "process" that dies at any instant.
//!
//! A process is a tokio runtime of its own holding its client; a crash is
//! `Runtime::shutdown_background()`: every task of the client stops at once, mid-request
//! included, nothing is flushed, as with SIGKILL. Crash points: right after an append was
//! admitted (rows buffered), after `flush()` (sent, usually not committed), after a commit was
//! seen, at a random instant, and when the server has answered some more appends. Each
//! process is a [`Writer`]. After the
//! last process the table must hold every source row exactly once.

use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::oneshot;

use super::writer::{Tokens, Writer};
use super::{assert_each_once, ConformanceTarget, Knobs, Row, Table};
use crate::{Channel, CloseOptions, Compression, OffsetToken, Positions, Rows};

/// Where a process dies.
#[derive(Debug, Clone, Copy)]
enum Crash {
    /// Right after an append was admitted.
    Buffered,
    /// Right after `flush()` returned.
    Sent,
    /// Right after the commit of what was appended so far was seen.
    Committed,
    /// At a random instant (milliseconds after the process started).
    At(u64),
    /// As soon as the server answered this many more append requests (often between two
    /// requests of one append split across several).
    Received(u64),
}

impl Crash {
    /// Which of the five crash points this is.
    fn point(self) -> usize {
        match self {
            Self::Buffered => 0,
            Self::Sent => 1,
            Self::Committed => 2,
            Self::At(_) => 3,
            Self::Received(_) => 4,
        }
    }
}

#[derive(Debug, Clone)]
struct Case {
    rows: u64,
    tokens: Tokens,
    knobs: Knobs,
    /// Rows per append: random between 1 and this.
    max_append: u64,
    /// Process lifetimes before the last one: (rows to append before the crash, crash).
    crashes: Vec<(u64, Crash)>,
    seed: u64,
}

fn case(seed: u64) -> Case {
    let mut rng = StdRng::seed_from_u64(seed);
    let rows = rng.gen_range(800..2500);
    let crashes = (0..rng.gen_range(3..7))
        .map(|_| {
            let crash = match rng.gen_range(0..5) {
                0 => Crash::Buffered,
                1 => Crash::Sent,
                2 => Crash::Committed,
                3 => Crash::At(rng.gen_range(0..400)),
                _ => Crash::Received(rng.gen_range(1..12)),
            };
            (rng.gen_range(1..rows / 2), crash)
        })
        .collect();
    let tokens = if rng.gen_bool(0.5) {
        Tokens::Dense
    } else {
        Tokens::Sparse
    };
    let compression = [Compression::None, Compression::Gzip, Compression::Zstd][seed as usize % 3];
    Case {
        rows,
        tokens,
        knobs: Knobs {
            max_request_bytes: Some(rng.gen_range(2..24) << 10),
            compression: Some(compression),
            max_client_lag: Some(Duration::from_millis(30)),
        },
        max_append: rng.gen_range(5..400),
        crashes,
        seed,
    }
}

/// One process: resume after the committed token and append up to `stop` rows in random
/// appends; then, for a planned crash, reach the crash point and report it on `crashed`; for
/// the last process (`stop` = None), append the rest and close waiting for the commit.
async fn process(
    target: Arc<dyn ConformanceTarget>,
    table: Table,
    case: Arc<Case>,
    stop: Option<(u64, Crash)>,
    lifetime: u64,
    crashed: oneshot::Sender<()>,
) {
    let mut rng = StdRng::seed_from_u64(case.seed * 1000 + lifetime);
    let client = target.client(&table, &case.knobs).await;
    let tokens = case.tokens;
    let mut writer = Writer::new(client, table, "c", tokens, None);
    writer.take().await.expect("open");
    let end = match stop {
        Some((n, _)) => (writer.next() + n - 1).min(case.rows),
        None => case.rows,
    };
    while writer.next() <= end {
        let n = rng
            .gen_range(1..=case.max_append)
            .min(end - writer.next() + 1);
        writer.append(n, end).await.expect("append");
        assert!(!writer.is_fenced(), "a lone writer was fenced");
    }
    let ch = writer.take_handle().expect("an open channel");
    let last = OffsetToken::from(tokens.of(end));
    match stop.map(|s| s.1) {
        Some(Crash::Buffered | Crash::At(_) | Crash::Received(_)) => {}
        Some(Crash::Sent) => ch.flush().await.expect("flush"),
        Some(Crash::Committed) => ch
            .wait_for_commit(&last, Duration::from_secs(30))
            .await
            .expect("commit"),
        None => {
            ch.close_with(CloseOptions::default().wait_for_commit(true))
                .await
                .expect("close");
        }
    }
    let _ = crashed.send(());
    // A crashed process never gets further than this: its runtime is killed now.
    std::future::pending::<()>().await;
}

/// A runtime of its own: one process.
fn process_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a process runtime")
}

/// Waits until the process reaches `crash` (or, for a crash at an instant, until then).
async fn until_crash(
    target: &dyn ConformanceTarget,
    crash: Option<Crash>,
    mut reached: oneshot::Receiver<()>,
) {
    match crash {
        Some(Crash::At(ms)) => {
            tokio::select! {
                _ = reached => {}
                () = tokio::time::sleep(Duration::from_millis(ms)) => {}
            }
        }
        Some(Crash::Received(k)) => {
            // When the server answered k more appends, or the process appended all it was to.
            let before = target.accepted_appends();
            loop {
                let answered = target.accepted_appends().zip(before).map(|(n, b)| n - b);
                if answered.is_some_and(|n| n >= k as usize) {
                    break;
                }
                tokio::select! {
                    _ = &mut reached => break,
                    () = tokio::time::sleep(Duration::from_millis(1)) => {}
                }
            }
        }
        _ => tokio::time::timeout(Duration::from_secs(60), reached)
            .await
            .expect("process reached its crash point")
            .expect("process ran"),
    }
}

async fn run_case(target: &Arc<dyn ConformanceTarget>, case: Case) {
    let case = Arc::new(case);
    let table = target.create_table(&format!("crash_{}", case.seed)).await;
    let lives = case.crashes.iter().map(|c| Some(*c)).chain([None]);
    for (lifetime, stop) in lives.enumerate() {
        let rt = process_runtime();
        let (tx, rx) = oneshot::channel();
        rt.spawn(process(
            Arc::clone(target),
            table.clone(),
            Arc::clone(&case),
            stop,
            lifetime as u64,
            tx,
        ));
        until_crash(target.as_ref(), stop.map(|s| s.1), rx).await;
        // SIGKILL: every task of the process stops where it is.
        rt.shutdown_background();
    }
    let ids = target.ids(&table).await;
    assert_each_once(&ids, case.rows, &format!("{case:?}"));
}

/// The crash-and-resume matrix: one case per seed (a fresh table each), each a source of
/// 800–2,500 rows written by 3–6 processes that crash and a last one that finishes; the
/// seeds `1..7` cover the three compressions, both token forms and every crash point, which
/// is checked when `seeds` starts at 1 and holds at least six.
pub async fn crash_and_resume(target: Arc<dyn ConformanceTarget>, seeds: Range<u64>) {
    let check_points = seeds.start == 1 && seeds.end >= 7;
    let mut seen = [false; 5];
    for seed in seeds {
        let case = case(seed);
        for (_, c) in &case.crashes {
            seen[c.point()] = true;
        }
        run_case(&target, case).await;
    }
    if check_points {
        assert_eq!(seen, [true; 5], "every crash point was exercised");
    }
}

/// A client of `target` sending requests of at most 64 KiB, and channel `c` opened on `table`.
async fn open_with_64_kib_requests(
    target: &dyn ConformanceTarget,
    table: &Table,
) -> (crate::StreamingIngestClient, Channel) {
    let knobs = Knobs {
        max_request_bytes: Some(64 << 10),
        ..Knobs::default()
    };
    let client = target.client(table, &knobs).await;
    let ch = table.open(&client, "c").await.expect("open");
    (client, ch)
}

/// Appends rows `first..=last`, each padded with 90 bytes, to `ch` with the tokens `first`
/// and `last`.
async fn append_padded(ch: &Channel, first: u64, last: u64) {
    let rows = (first..=last).map(|id| Row {
        id,
        pad: "y".repeat(90),
    });
    let span = OffsetToken::from(first)..=OffsetToken::from(last);
    ch.append(Rows::serde(rows), span.into())
        .await
        .expect("append");
}

/// The reproduction of an old bug: 64 KiB requests, ten 300-row appends of ~30 KB, a crash
/// at the first commit, resume after the committed token in a new client: 3,000 rows for 3,000 ids.
pub async fn thirty_kb_appends_resume_exactly(target: Arc<dyn ConformanceTarget>) {
    let next = |ch: &Channel| {
        ch.latest_committed_offset_token()
            .and_then(|t| t.as_u64())
            .map_or(1, |id| id + 1)
    };
    let append: AppendIds = |ch, first, last| Box::pin(append_padded(ch, first, last));
    crash_then_resume(target, "thirty_kb", (10, 300), append, next).await;
}

/// How a crash test appends the rows of ids `first..=last`, with their tokens.
type AppendIds = for<'a> fn(&'a Channel, u64, u64) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// The longest a crash test's first process waits for its first commit (a bound against a
/// hang, not a window the test depends on).
const FIRST_COMMIT: Duration = Duration::from_secs(60);

/// A crash mid-stream, then a resume. A process of its own opens `table` with 64 KiB requests,
/// makes `appends` appends of `each` rows through `append`, and dies as soon as it sees its
/// first commit (its runtime dropped, nothing closed). A new client resumes at `next(channel)` (the id after the
/// committed token) and appends the rest. Every id of `1..=appends × each` is stored once.
async fn crash_then_resume(
    target: Arc<dyn ConformanceTarget>,
    name: &str,
    (appends, each): (u64, u64),
    append: AppendIds,
    next: fn(&Channel) -> u64,
) {
    let table = target.create_table(name).await;
    let rt = process_runtime();
    let (t, tab) = (Arc::clone(&target), table.clone());
    let committed = rt
        .spawn(async move {
            let (client, ch) = open_with_64_kib_requests(t.as_ref(), &tab).await;
            for k in 0..appends {
                append(&ch, k * each + 1, k * each + each).await;
            }
            // Dies at its first commit (an event, not an instant: under load a fixed window
            // may close before anything committed); bounded against a hang.
            let mut watch = ch.watch_committed();
            let first = tokio::time::timeout(FIRST_COMMIT, watch.wait_for(Option::is_some));
            let c = first
                .await
                .expect("the first process committed something within FIRST_COMMIT")
                .expect("the channel runs")
                .clone();
            std::mem::forget(ch);
            std::mem::forget(client);
            c
        })
        .await
        .expect("the first process ran");
    rt.shutdown_background();
    let (_client, ch) = open_with_64_kib_requests(target.as_ref(), &table).await;
    let (resume, total) = (next(&ch), appends * each);
    assert!(
        committed.is_some() && resume > 1,
        "the first process committed something ({committed:?}, {resume})"
    );
    if resume <= total {
        append(&ch, resume, total).await;
    }
    ch.close_with(CloseOptions::default().wait_for_commit(true))
        .await
        .expect("close");
    assert_each_once(&target.ids(&table).await, total, name);
}

/// Appends rows `first..=last`, each padded with 90 bytes, to `ch` at the span
/// `order_{first}..=order_{last}` (one prefixed token per row).
async fn append_prefixed(ch: &Channel, first: u64, last: u64) {
    let rows = (first..=last).map(|id| Row {
        id,
        pad: "y".repeat(90),
    });
    let token = |id: u64| OffsetToken::new(format!("order_{id}")).expect("a token");
    let span = Positions::span(token(first)..=token(last));
    ch.append(Rows::serde(rows), span).await.expect("append");
}

/// The id after the committed `order_{id}` token (1 when nothing was committed).
fn resume_after(ch: &Channel) -> u64 {
    ch.latest_committed_offset_token().map_or(1, |t| {
        let (prefix, id) = t.prefixed_number().expect("an order_ token");
        assert_eq!(prefix, "order_", "{t}");
        id + 1
    })
}

/// A span of prefix + number tokens larger than one request (1,000 rows of ~100 bytes, 64 KiB
/// requests): the SDK splits it into exact sub-spans, so after a crash mid-stream (at the first commit)
/// a new process resuming after the committed `order_` token stores each of the 4,000 rows
/// once.
pub async fn a_prefixed_span_larger_than_a_request_resumes_exactly(
    target: Arc<dyn ConformanceTarget>,
) {
    let append: AppendIds = |ch, first, last| Box::pin(append_prefixed(ch, first, last));
    crash_then_resume(target, "prefixed_span", (4, 1_000), append, resume_after).await;
}
