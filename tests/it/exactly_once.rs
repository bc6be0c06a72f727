//! Exactly once across crashes, from the user's side: the README's recipe (open, resume after
//! the committed token, append) run by a "process" that dies at any instant, against the
//! in-process emulator in strict-offsets mode (every request whose tokens cannot name its rows
//! is refused, so a violation fails loudly).
//!
//! A process is a tokio runtime of its own holding the client; a crash is
//! `Runtime::shutdown_background()`: every task of the client stops at once, mid-request
//! included, nothing is flushed — as with SIGKILL. Crash points: right after an append was
//! admitted (rows buffered), after `flush()` (sent, usually not committed), after a commit was
//! seen, and at a random instant. After the last process the table must hold every source row
//! exactly once.
//!
//! Inputs come from fixed seeds (`cargo test` explores the same cases every run); set
//! `EXACTLY_ONCE_SEED=N` to try another seed, `EXACTLY_ONCE_CASES=N` for more cases.

use std::sync::Arc;
use std::time::Duration;

use crate::common::emulator as emu_common;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use snowpipe_emulator::{Emulator, Endpoint, FaultAction, FaultPlan, FaultRule};
use snowpipe_streaming::{
    Channel, Compression, OffsetToken, OpenChannelOptions, StreamingIngestClient,
};
use tokio::sync::oneshot;

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER NOT NULL, PAD VARCHAR);
CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;
";

#[derive(Serialize, Clone)]
struct Row {
    id: u64,
    pad: String,
}

/// How the source names its rows.
#[derive(Debug, Clone, Copy)]
enum Tokens {
    /// Token = id, appended with `append_rows(first, last)`.
    Dense,
    /// Token = 7 × id + 3 (sparse), appended with `append_rows_with_tokens`.
    PerRow,
}

impl Tokens {
    fn of(self, id: u64) -> u64 {
        match self {
            Self::Dense => id,
            Self::PerRow => 7 * id + 3,
        }
    }

    /// The last id the committed token covers.
    fn id_of(self, token: &OffsetToken) -> u64 {
        let t = token.as_u64().expect("numeric token");
        match self {
            Self::Dense => t,
            Self::PerRow => (t - 3) / 7,
        }
    }
}

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

#[derive(Debug, Clone)]
struct Case {
    rows: u64,
    tokens: Tokens,
    compression: Compression,
    request_bytes: usize,
    /// Rows per append: random between 1 and this.
    max_append: u64,
    /// Process lifetimes before the last one: (rows to append before the crash, crash).
    crashes: Vec<(u64, Crash)>,
    seed: u64,
}

fn case(seed: u64) -> Case {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
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
    Case {
        rows,
        tokens: if rng.gen_bool(0.5) {
            Tokens::Dense
        } else {
            Tokens::PerRow
        },
        compression: [Compression::None, Compression::Gzip, Compression::Zstd][seed as usize % 3],
        request_bytes: rng.gen_range(2..24) << 10,
        max_append: rng.gen_range(5..400),
        crashes,
        seed,
    }
}

fn row(id: u64) -> Row {
    // 40..240 bytes of padding, fixed per id.
    Row {
        id,
        pad: "p".repeat(40 + (id * 37 % 200) as usize),
    }
}

async fn client(url: &str, case: &Case) -> StreamingIngestClient {
    emu_common::builder_for_url(url)
        .max_client_lag(Duration::from_millis(30))
        .max_request_bytes(case.request_bytes)
        .compression(case.compression)
        .build()
        .await
        .expect("client connects")
}

/// One process: resume after the committed token and append up to `stop` rows in random
/// appends; then, for a planned crash, reach the crash point and report it on `crashed`; for the
/// last process (`stop` = None), append the rest and close waiting for the commit.
async fn process(
    url: String,
    case: Arc<Case>,
    stop: Option<(u64, Crash)>,
    lifetime: u64,
    crashed: oneshot::Sender<()>,
) {
    let mut rng = ChaCha8Rng::seed_from_u64(case.seed * 1000 + lifetime);
    let client = client(&url, &case).await;
    let ch = client
        .pipe("DB", "SCH", "P")
        .open_channel_with("c", OpenChannelOptions::default())
        .await
        .expect("open");
    let tokens = case.tokens;
    let mut next = ch
        .latest_committed_offset_token()
        .map_or(1, |t| tokens.id_of(&t) + 1);
    let end = match stop {
        Some((n, _)) => (next + n - 1).min(case.rows),
        None => case.rows,
    };
    while next <= end {
        let n = rng.gen_range(1..=case.max_append).min(end - next + 1);
        let ids = next..next + n;
        match tokens {
            Tokens::Dense => ch
                .append_rows(
                    ids.clone().map(row),
                    Some(OffsetToken::from(next)),
                    Some(OffsetToken::from(next + n - 1)),
                )
                .await
                .expect("append"),
            Tokens::PerRow => ch
                .append_rows_with_tokens(
                    ids.clone()
                        .map(|id| (row(id), OffsetToken::from(tokens.of(id)))),
                )
                .await
                .expect("append"),
        }
        next += n;
    }
    let last = OffsetToken::from(tokens.of(end));
    match stop.map(|s| s.1) {
        Some(Crash::Buffered | Crash::At(_) | Crash::Received(_)) => {}
        Some(Crash::Sent) => ch.flush().await.expect("flush"),
        Some(Crash::Committed) => ch
            .wait_for_commit(&last, Duration::from_secs(30))
            .await
            .expect("commit"),
        None => {
            ch.close_with(snowpipe_streaming::CloseOptions::default().wait_for_commit(true))
                .await
                .expect("close");
        }
    }
    let _ = crashed.send(());
    // A crashed process never gets further than this: its runtime is killed now.
    std::future::pending::<()>().await;
}

async fn run_case(emu: &Emulator, case: Case) {
    let case = Arc::new(case);
    let lives = case.crashes.iter().map(|c| Some(*c)).chain([None]);
    for (lifetime, stop) in lives.enumerate() {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let (tx, rx) = oneshot::channel();
        let before = appends(emu);
        rt.spawn(process(
            emu.url(),
            Arc::clone(&case),
            stop,
            lifetime as u64,
            tx,
        ));
        match stop.map(|s| s.1) {
            Some(Crash::At(ms)) => {
                tokio::select! {
                    _ = rx => {}
                    () = tokio::time::sleep(Duration::from_millis(ms)) => {}
                }
            }
            Some(Crash::Received(k)) => {
                // When the server answered k more appends, or the process appended all it was to.
                let mut rx = rx;
                while appends(emu) < before + k as usize {
                    tokio::select! {
                        _ = &mut rx => break,
                        () = tokio::time::sleep(Duration::from_millis(1)) => {}
                    }
                }
            }
            _ => tokio::time::timeout(Duration::from_secs(60), rx)
                .await
                .expect("process reached its crash point")
                .expect("process ran"),
        }
        // SIGKILL: every task of the process stops where it is.
        rt.shutdown_background();
    }
    let ids = emu_common::ids(emu);
    let want: Vec<i64> = (1..=case.rows as i64).collect();
    if ids != want {
        let mut dup = ids.clone();
        dup.dedup();
        panic!(
            "{case:?}: {} rows landed for {} ids ({} duplicated, {} missing)",
            ids.len(),
            case.rows,
            ids.len() - dup.len(),
            want.iter()
                .filter(|i| dup.binary_search(i).is_err())
                .count()
        );
    }
}

/// Append requests the server answered with 200.
fn appends(emu: &Emulator) -> usize {
    emu.requests()
        .iter()
        .filter(|r| r.endpoint == Endpoint::AppendRows && r.status == 200)
        .count()
}

async fn emulator(commit_ms: u64) -> Emulator {
    // Every append takes a few milliseconds, so crashes land between requests.
    let latency = FaultRule::new(Endpoint::AppendRows, FaultAction::Latency { ms: 3 });
    Emulator::start(
        emu_common::config_with_ddl(DDL)
            .with_commit_delay(Duration::from_millis(commit_ms))
            .with_faults(FaultPlan {
                rules: vec![latency],
            }),
    )
    .await
    .expect("emulator starts")
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The crash-and-resume matrix: fixed seeds cover the three compressions, both token forms and
/// every crash point.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_any_point_then_resuming_after_the_committed_token_lands_every_row_once() {
    let first = env_u64("EXACTLY_ONCE_SEED").unwrap_or(1);
    let cases = env_u64("EXACTLY_ONCE_CASES").unwrap_or(6);
    let mut seen = (false, false, false, false, false);
    for seed in first..first + cases {
        let case = case(seed);
        for (_, c) in &case.crashes {
            match c {
                Crash::Buffered => seen.0 = true,
                Crash::Sent => seen.1 = true,
                Crash::Committed => seen.2 = true,
                Crash::At(_) => seen.3 = true,
                Crash::Received(_) => seen.4 = true,
            }
        }
        // A fresh emulator per case; commits 100 ms after the append, so crashes land between.
        let emu = emulator(100).await;
        run_case(&emu, case).await;
        emu.shutdown().await;
    }
    assert_eq!(
        seen,
        (true, true, true, true, true),
        "every crash point was exercised"
    );
}

/// A client of the emulator at `url` sending requests of at most 64 KiB, and channel `c` opened
/// on pipe `P`.
async fn open_with_64_kib_requests(url: &str) -> (StreamingIngestClient, Channel) {
    let client = emu_common::builder_for_url(url)
        .max_request_bytes(64 << 10)
        .build()
        .await
        .unwrap();
    let ch = emu_common::open_on(&client, "P", "c").await;
    (client, ch)
}

/// Appends rows `first..=last`, each padded with 90 bytes, to `ch` with the tokens `first` and
/// `last`.
async fn append_padded(ch: &Channel, first: u64, last: u64) {
    let rows = (first..=last).map(|id| Row {
        id,
        pad: "y".repeat(90),
    });
    ch.append_rows(
        rows,
        Some(OffsetToken::from(first)),
        Some(OffsetToken::from(last)),
    )
    .await
    .unwrap();
}

/// The reproduction: 64 KiB requests, ten 300-row appends of ~30 KB, a crash after
/// 200 ms, resume after the committed token in a new client: 3,000 rows for 3,000 ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_kb_appends_with_64_kib_requests_resume_exactly() {
    let emu = emulator(0).await;
    let url = emu.url();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let u = url.clone();
    let committed = rt
        .spawn(async move {
            let (client, ch) = open_with_64_kib_requests(&u).await;
            for k in 0..10u64 {
                append_padded(&ch, k * 300 + 1, k * 300 + 300).await;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            let c = ch.latest_committed_offset_token();
            std::mem::forget(ch);
            std::mem::forget(client);
            c
        })
        .await
        .unwrap();
    rt.shutdown_background();
    let (_client, ch) = open_with_64_kib_requests(&url).await;
    let after = ch
        .latest_committed_offset_token()
        .and_then(|t| t.as_u64())
        .unwrap_or(0);
    assert!(
        committed.is_some() && after > 0,
        "the first process committed something ({committed:?}, {after})"
    );
    if after < 3000 {
        append_padded(&ch, after + 1, 3000).await;
    }
    ch.close_with(snowpipe_streaming::CloseOptions::default().wait_for_commit(true))
        .await
        .unwrap();
    assert_eq!(emu_common::ids(&emu), (1..=3000).collect::<Vec<i64>>());
}
