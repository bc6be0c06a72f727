//! One logical stream over several channels (`LaneStream`, issue 96 item 1) against the
//! in-process emulator: a stream crashed at random points (dropped without a close, a lane's
//! rows possibly in flight) and reopened with the same count resumes from what each lane
//! committed; resized 8 → 3 → 12 by drain and hand-over, crashed again in each layout: every
//! record lands once. A second writer of a stream fences the first lane by lane, and a
//! resized stream opened with its old count is refused naming the new one.
//!
//! And as a process dies: a writer (this test binary in a child process) SIGKILLed at random
//! instants with 8 lanes, restarted with 8, then resized to 3 (killed before, during or after
//! the resize), then to 12, then run to the end: every record once.
//!
//! Seeds are fixed; `LANES_SEEDS=N` explores N more (from the clock, printed).

use std::time::Duration;

use serde_json::json;
use snowpipe_emulator::Emulator;
use snowpipe_streaming::{
    Error, LaneRouting, LaneStream, OffsetToken, OpenChannelOptions, OpenLanesOptions, Positions,
    Rows, StreamingIngestClient,
};

use crate::common;

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE T (ID NUMBER, K VARCHAR(20));
CREATE OR REPLACE TABLE W (ID NUMBER, PAD VARCHAR);
";
const WAIT: Duration = Duration::from_secs(30);

async fn start() -> (Emulator, StreamingIngestClient) {
    let mut config =
        common::emulator::config_with_ddl(DDL).with_commit_delay(Duration::from_millis(20));
    config.strict_offsets = true;
    let emu = Emulator::start(config).await.unwrap();
    let client = common::emulator::builder(&emu).build().await.unwrap();
    (emu, client)
}

/// SplitMix64: the test's own PRNG, fixed by its seed.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        (z ^ (z >> 31)) % n
    }
}

/// The source: record `p` (1-based) has key `k<p mod 23>`.
fn key(p: u64) -> String {
    format!("k{}", p % 23)
}

/// Feeds records `1..=until` to `stream`, skipping those it says are committed.
async fn feed(stream: &LaneStream, until: u64) {
    feed_range(stream, 1, until).await;
}

fn counts(emu: &Emulator) -> (u64, u64) {
    let r = emu
        .query(r#"SELECT COUNT(*), COUNT(DISTINCT ID) FROM "DB.SCH.T""#)
        .unwrap();
    (r[0][0].as_u64().unwrap(), r[0][1].as_u64().unwrap())
}

/// Crashes at random points with 8 lanes, resizes to 3, crashes, resizes to 12, crashes,
/// finishes: every record once.
async fn crash_resize_crash(seed: u64) {
    const RECORDS: u64 = 400;
    let mut rng = Rng(seed);
    let (emu, client) = start().await;
    let pipe = client.table_pipe("DB", "SCH", "T");
    let mut at = 0;
    let next = |rng: &mut Rng, at: &mut u64| {
        *at += 1 + rng.below(RECORDS / 6);
        (*at).min(RECORDS)
    };
    // 8 lanes, a crash.
    let stream = pipe.open_lanes("s", 8).await.unwrap();
    feed(&stream, next(&mut rng, &mut at)).await;
    drop(stream);
    // The same 8, on to a point, then a resize to 3 and a crash.
    let stream = pipe.open_lanes("s", 8).await.unwrap();
    let through = next(&mut rng, &mut at);
    feed(&stream, through).await;
    let stream = stream.resize(3, &through.into(), WAIT).await.unwrap();
    assert_eq!(stream.lanes(), 3);
    feed(&stream, next(&mut rng, &mut at)).await;
    drop(stream);
    // Reopened with its old count: refused, naming the new one, which it tells.
    let e = pipe.open_lanes("s", 8).await.unwrap_err().to_string();
    assert!(e.contains("has 3 lanes"), "{e}");
    assert_eq!(pipe.lane_count("s").await.unwrap(), Some(3));
    assert_eq!(pipe.lane_count("never_opened").await.unwrap(), None);
    // 3 lanes, on to a point, a resize to 12, a crash.
    let stream = pipe.open_lanes("s", 3).await.unwrap();
    let through = next(&mut rng, &mut at);
    feed(&stream, through).await;
    let stream = stream.resize(12, &through.into(), WAIT).await.unwrap();
    feed(&stream, next(&mut rng, &mut at)).await;
    drop(stream);
    // 12 lanes to the end.
    let stream = pipe.open_lanes("s", 12).await.unwrap();
    feed(&stream, RECORDS).await;
    let reached = stream.wait_for_commit(WAIT).await.unwrap();
    assert!(reached.is_some());
    stream.close().await.unwrap();
    assert_eq!(counts(&emu), (RECORDS, RECORDS), "seed {seed:#x}");
    emu.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_and_resizes_at_random_points_land_every_record_once() {
    let mut seeds = vec![0x5eed_0001, 0x5eed_0002, 0x5eed_0003];
    let more: u64 = std::env::var("LANES_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let clock = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    seeds.extend((0..more).map(|i| clock ^ (i << 32)));
    for seed in seeds {
        eprintln!("lanes: seed {seed:#x}");
        crash_resize_crash(seed).await;
    }
}

/// A second writer of a stream fences the first: its lanes are reopened, so the first's
/// appends fail as a channel's do when another writer opens it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_writer_of_a_stream_fences_the_first() {
    let (emu, client) = start().await;
    let pipe = client.table_pipe("DB", "SCH", "T");
    let first = pipe.open_lanes("f", 2).await.unwrap();
    first
        .append(
            0,
            Rows::serde([json!({"ID": 1, "K": "a"})]),
            Positions::at(1.into()),
        )
        .await
        .unwrap();
    first.wait_for_commit(WAIT).await.unwrap();
    let other_client = common::emulator::builder(&emu).build().await.unwrap();
    let second = other_client
        .table_pipe("DB", "SCH", "T")
        .open_lanes("f", 2)
        .await
        .unwrap();
    assert_eq!(second.committed()[0], Some(OffsetToken::from(1)));
    let fenced = async {
        first
            .append(
                0,
                Rows::serde([json!({"ID": 2, "K": "a"})]),
                Positions::at(2.into()),
            )
            .await?;
        first.flush().await
    }
    .await
    .unwrap_err();
    assert!(fenced.is_ownership_lost(), "{fenced}");
    second
        .append(
            0,
            Rows::serde([json!({"ID": 2, "K": "b"})]),
            Positions::at(2.into()),
        )
        .await
        .unwrap();
    second.wait_for_commit(WAIT).await.unwrap();
    second.close().await.unwrap();
    assert_eq!(counts(&emu), (2, 2));
    let kept = emu
        .query(r#"SELECT K FROM "DB.SCH.T" WHERE ID = 2"#)
        .unwrap();
    assert_eq!(kept[0][0], "b", "the fenced writer's row did not land");
    emu.shutdown().await;
}

/// The lanes are the client's channels, named as `snowpipe load` names a file's ranges.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_are_named_as_snowpipe_load_names_its_ranges() {
    let (emu, client) = start().await;
    let stream = client
        .table_pipe("DB", "SCH", "T")
        .open_lanes("LOAD_AB", 3)
        .await
        .unwrap();
    let names: Vec<&str> = (0..3).map(|j| stream.lane(j).name()).collect();
    assert_eq!(names, ["LOAD_AB", "LOAD_AB_1", "LOAD_AB_2"]);
    assert_eq!(LaneStream::lane_name("LOAD_AB", 2), "LOAD_AB_2");
    for key in ["user-7", "user-9", "", "42"] {
        assert_eq!(
            LaneStream::lane_among(key.as_bytes(), 3),
            stream.lane_of(key.as_bytes())
        );
    }
    // Taken apart, the lanes are the same channels, lane 0 first, still open.
    let lanes = stream.into_lanes();
    let names: Vec<&str> = lanes.iter().map(|c| c.name()).collect();
    assert_eq!(names, ["LOAD_AB", "LOAD_AB_1", "LOAD_AB_2"]);
    for lane in lanes {
        lane.close().await.unwrap();
    }
    assert!(client
        .table_pipe("DB", "SCH", "T")
        .open_lanes("x", 0)
        .await
        .is_err());
    emu.shutdown().await;
}

/// Records `from..=to` on `lane` of `stream`, skipping those it says are committed.
async fn feed_lane(stream: &LaneStream, lane: usize, from: u64, to: u64) {
    for p in from..=to {
        let position = OffsetToken::from(p);
        if !stream.is_committed(lane, &position) {
            stream
                .append(
                    lane,
                    Rows::serde([json!({"ID": p, "K": format!("r{lane}")})]),
                    Positions::at(position),
                )
                .await
                .unwrap();
        }
    }
}

/// `snowpipe load`'s lanes as a release before `LaneStream` left them (channels opened one by
/// one, no layout, each lane's token an absolute position in the file) reopen as a stream
/// routed by the caller, with the count the file has now and their tokens: a load killed
/// mid-range resumes on them and writes every record once. Range `k` of 10 records goes to
/// lane `k mod 16`, load's rule, which no count moves; the file grew from 2 ranges to 3.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_caller_routed_stream_resumes_lanes_opened_one_by_one() {
    let (emu, client) = start().await;
    let pipe = client.table_pipe("DB", "SCH", "T");
    let range = |k: u64| (10 * k + 1, 10 * k + 10);
    // The earlier writer: range 0 whole on lane 0, range 1 up to record 15 committed and
    // 16..=18 appended, then killed.
    {
        let earlier = common::emulator::builder(&emu).build().await.unwrap();
        let earlier = earlier.table_pipe("DB", "SCH", "T");
        let l0 = earlier.open_channel("LOAD_AB").await.unwrap();
        let l1 = earlier.open_channel("LOAD_AB_1").await.unwrap();
        let rows = |a: u64, b: u64, k: &str| {
            let rows: Vec<_> = (a..=b).map(|p| json!({"ID": p, "K": k})).collect();
            (Rows::serde(rows), Positions::span(a.into()..=b.into()))
        };
        let (r, p) = rows(1, 10, "r0");
        l0.append(r, p).await.unwrap();
        let (r, p) = rows(11, 15, "r1");
        l1.append(r, p).await.unwrap();
        l0.wait_for_commit(&10.into(), WAIT).await.unwrap();
        l1.wait_for_commit(&15.into(), WAIT).await.unwrap();
        let (r, p) = rows(16, 18, "r1");
        l1.append(r, p).await.unwrap();
    }
    let caller = || OpenLanesOptions::default().routing(LaneRouting::Caller);
    let stream = pipe.open_lanes_with("LOAD_AB", 3, caller()).await.unwrap();
    assert_eq!(stream.routing(), LaneRouting::Caller);
    let committed = stream.committed();
    assert_eq!(committed[0], Some(OffsetToken::from(10)));
    assert!(
        matches!(
            committed[1].as_ref().and_then(OffsetToken::as_u64),
            Some(15 | 18)
        ),
        "{committed:?}"
    );
    assert_eq!(committed[2], None);
    for k in 0..3 {
        let (from, to) = range(k);
        feed_lane(&stream, (k % 16) as usize, from, to).await;
    }
    // Keys and resizes are the keyed streams': refused, naming the way.
    let e = stream
        .append_keyed(
            b"x",
            Rows::serde([json!({"ID": 99})]),
            Positions::at(99.into()),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("routed by the caller"), "{e}");
    stream.wait_for_commit(WAIT).await.unwrap();
    let e = stream
        .resize(2, &30.into(), WAIT)
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("open it with 2 lanes"), "{e}");
    assert_eq!(counts(&emu), (30, 30));
    // Nothing recorded: no layout channel, and any count opens it again.
    assert_eq!(pipe.lane_count("LOAD_AB").await.unwrap(), None);
    let again = pipe.open_lanes_with("LOAD_AB", 1, caller()).await.unwrap();
    assert_eq!(again.committed(), [Some(OffsetToken::from(10))]);
    again.close().await.unwrap();
    // A lane opened on its own (as `snowpipe load` opens each lane when a slot frees up) is
    // the stream's lane, token and all.
    let alone = pipe
        .open_lane("LOAD_AB", 1, OpenChannelOptions::default())
        .await
        .unwrap();
    assert_eq!(alone.name(), "LOAD_AB_1");
    assert_eq!(
        alone.latest_committed_offset_token(),
        Some(OffsetToken::from(20))
    );
    alone.close().await.unwrap();
    let e = pipe
        .open_lane(
            "LOAD_AB",
            LaneStream::MAX_LANES,
            OpenChannelOptions::default(),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("at most 256 lanes"), "{e}");
    // A keyed stream is not reopened routed by the caller, nor a lane of it opened alone, and
    // no lane token is set for all.
    let keyed = pipe.open_lanes("KEYED", 2).await.unwrap();
    keyed.close().await.unwrap();
    let e = pipe
        .open_lane("KEYED", 1, OpenChannelOptions::default())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("routes by key") && e.contains("open_lanes"),
        "{e}"
    );
    let e = pipe
        .open_lanes_with("KEYED", 2, caller())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("routes by key") && e.contains("KEYED_lanes"),
        "{e}"
    );
    let e = pipe
        .open_lanes_with(
            "OTHER",
            2,
            caller().channel(OpenChannelOptions::default().offset_token(5u64)),
        )
        .await
        .unwrap_err()
        .to_string();
    assert!(e.contains("offset_token"), "{e}");
    emu.shutdown().await;
}

/// The layout is read from the server (the committed token of `<base>_lanes`): a channel of
/// that name holding another tool's token is refused by name, never taken for a count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_foreign_token_where_the_layout_belongs_is_refused_by_name() {
    let (emu, client) = start().await;
    let pipe = client.table_pipe("DB", "SCH", "T");
    for (i, foreign) in ["42", "lanes:v1:+3:9", "lanes:v1:1000:9", "lanes:v2:3:9"]
        .into_iter()
        .enumerate()
    {
        let base = format!("F{i}");
        pipe.open_channel_with(
            &format!("{base}_lanes"),
            OpenChannelOptions::default().offset_token(OffsetToken::new(foreign).unwrap()),
        )
        .await
        .unwrap()
        .close()
        .await
        .unwrap();
        for e in [
            pipe.open_lanes(&base, 3).await.unwrap_err(),
            pipe.lane_count(&base).await.unwrap_err(),
        ] {
            let e = e.to_string();
            assert!(
                e.contains(&format!("{base}_lanes")) && e.contains("not a stream's layout"),
                "{foreign}: {e}"
            );
        }
    }
    assert_eq!(counts(&emu), (0, 0));
    emu.shutdown().await;
}

/// `n` rows of about 1 KB each for table `W`, ids from `first`.
fn padded(first: u64, n: u64) -> Vec<serde_json::Value> {
    (first..first + n)
        .map(|id| json!({"ID": id, "PAD": "x".repeat(1000)}))
        .collect()
}

/// The lanes are channels of one client: the client's memory budget binds them together. Rows
/// held by three lanes refuse a fourth lane's `try_append`; its `append` then goes through
/// without any flush of the caller's, because the three lanes see the budget short and send
/// their rows long before `max_client_lag` (60 s here). Each lane reports the channel metrics
/// under its own channel name.
#[test]
fn lanes_share_the_clients_memory_budget_and_report_metrics_per_lane() {
    let recorded = common::MetricsRecorder::default();
    common::with_local_metrics(&recorded, budget_and_metrics(recorded.clone()));
}

async fn budget_and_metrics(recorded: common::MetricsRecorder) {
    const EACH: u64 = 245;
    // 1 MiB, of which 1/16 is set aside for idle buffers: 960 KiB for rows. A lane's rows
    // (about 250 KB) fit one request, and nothing is sent on a timer during the test.
    let emu = Emulator::start(common::emulator::config_with_ddl(DDL))
        .await
        .unwrap();
    let client = common::emulator::builder(&emu)
        .max_client_lag(Duration::from_secs(60))
        .max_request_bytes(256 * 1024)
        .memory_budget_bytes(1024 * 1024)
        .build()
        .await
        .unwrap();
    let stream = client
        .table_pipe("DB", "SCH", "W")
        .open_lanes("b", 4)
        .await
        .unwrap();
    let span = |lane: u64, n: u64| {
        let first = lane * 1000 + 1;
        Positions::span(OffsetToken::from(first)..=OffsetToken::from(first + n - 1))
    };
    // Three lanes hold about 750 KB of the budget...
    for lane in 0..3 {
        stream
            .append(
                lane as usize,
                Rows::serde(padded(lane * 1000 + 1, EACH)),
                span(lane, EACH),
            )
            .await
            .unwrap();
    }
    // ...so the fourth lane has no room for 250 KB more: refused at once...
    let refused = stream
        .lane(3)
        .try_append(Rows::serde(padded(3001, EACH)), span(3, EACH))
        .unwrap_err();
    assert!(matches!(refused, Error::Backpressure { .. }), "{refused}");
    // ...and admitted once the other lanes, seeing the budget short, sent their rows.
    tokio::time::timeout(
        WAIT,
        stream.append(3, Rows::serde(padded(3001, EACH)), span(3, EACH)),
    )
    .await
    .expect("room once the other lanes sent their rows")
    .unwrap();
    stream.wait_for_commit(WAIT).await.unwrap();
    let committed = stream.committed();
    stream.close().await.unwrap();
    client.close().await.unwrap();
    for (lane, token) in committed.iter().enumerate() {
        assert_eq!(*token, Some(OffsetToken::from(lane as u64 * 1000 + EACH)));
    }
    let landed = emu
        .query(r#"SELECT COUNT(*), COUNT(DISTINCT ID) FROM "DB.SCH.W""#)
        .unwrap();
    assert_eq!(landed[0][0], 4 * EACH);
    assert_eq!(landed[0][1], 4 * EACH);
    let labels = |lane: usize| {
        let name = LaneStream::lane_name("b", lane);
        [
            ("channel", name),
            ("kind", "named".into()),
            ("pipe", "W-STREAMING".into()),
        ]
    };
    let counter = |metric: &str, lane: usize| {
        let l = labels(lane);
        let l: Vec<(&str, &str)> = l.iter().map(|(k, v)| (*k, v.as_str())).collect();
        recorded.counter(metric, &l)
    };
    // The three lanes sealed their batches early for the fourth: the budget is one.
    let sealed: u64 = (0..3)
        .map(|lane| counter("snowpipe_batches_sealed_for_memory_total", lane))
        .sum();
    assert!(sealed >= 1, "no lane sealed for the budget");
    // Each lane's rows under its own channel name.
    for lane in 0..4 {
        assert_eq!(
            counter("snowpipe_rows_appended_total", lane),
            EACH,
            "lane {lane} in {:?}",
            recorded.labels_of("snowpipe_rows_appended_total")
        );
    }
    emu.shutdown().await;
}

/// The writer the SIGKILL test runs in a child process: opens the stream `k` at
/// `LANES_URL` with the count it recorded (8 the first time), feeds `LANES_RECORDS`
/// records in order (paced, so a kill lands mid-stream), resizing to `LANES_TARGET` half way
/// when the count differs, and waits for them.
#[ignore = "run by sigkilled_writers_at_random_instants_land_every_record_once"]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_writer_child() {
    if !common::in_child() {
        return;
    }
    let var = |k: &str| std::env::var(k).unwrap();
    let client = common::emulator::builder_for_url(&var("LANES_URL"))
        .build()
        .await
        .unwrap();
    let pipe = client.table_pipe("DB", "SCH", "T");
    // The count the stream recorded (8 at the first open, the target after a resize).
    let count = pipe.lane_count("k").await.unwrap().unwrap_or(8);
    let mut stream = pipe.open_lanes("k", count).await.unwrap();
    let target: usize = var("LANES_TARGET").parse().unwrap();
    let records: u64 = var("LANES_RECORDS").parse().unwrap();
    // Every record is handed to the stream in order; half way, the resize to the target.
    let half = records / 2;
    let mut p = 1;
    while p <= records {
        let until = (p + 19).min(records);
        feed_range(&stream, p, until).await;
        tokio::time::sleep(Duration::from_millis(2)).await;
        let frontier = stream.frontier().unwrap();
        let at_half = until == half && frontier.is_none_or(|f| OffsetToken::from(half).reaches(&f));
        if at_half && stream.lanes() != target {
            stream = stream.resize(target, &half.into(), WAIT).await.unwrap();
        }
        p = until + 1;
    }
    if stream.lanes() != target {
        stream = stream.resize(target, &records.into(), WAIT).await.unwrap();
    }
    stream.wait_for_commit(WAIT).await.unwrap();
    stream.close().await.unwrap();
}

/// [`feed`] for records `from..=until` only.
async fn feed_range(stream: &LaneStream, from: u64, until: u64) {
    for p in from..=until {
        let k = key(p);
        let lane = stream.lane_of(k.as_bytes());
        let position = OffsetToken::from(p);
        if !stream.is_committed(lane, &position) {
            stream
                .append(
                    lane,
                    Rows::serde([json!({"ID": p, "K": k})]),
                    Positions::at(position),
                )
                .await
                .unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkilled_writers_at_random_instants_land_every_record_once() {
    const RECORDS: u64 = 3_000;
    let (emu, _client) = start().await;
    let mut rng = Rng(0x5eed_0b17);
    // (target, killed)
    let runs: [(usize, bool); 7] = [
        (8, true),
        (8, true),
        (3, true),
        (3, true),
        (12, true),
        (12, true),
        (12, false),
    ];
    for (target, killed) in runs {
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .args([
                "--ignored",
                "--exact",
                "lanes::lanes_writer_child",
                "--nocapture",
            ])
            .env("SNOWPIPE_IT_CHILD", "1")
            .env("LANES_URL", emu.url())
            .env("LANES_TARGET", target.to_string())
            .env("LANES_RECORDS", RECORDS.to_string())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        if killed {
            let after = Duration::from_millis(100 + rng.below(900));
            if tokio::time::timeout(after, child.wait()).await.is_err() {
                child.kill().await.unwrap();
                eprintln!("lanes: → {target}: SIGKILL after {after:?}");
                continue;
            }
        }
        let out = child.wait_with_output().await.unwrap();
        assert!(
            out.status.success() && String::from_utf8_lossy(&out.stdout).contains("1 passed"),
            "the writer (→ {target}): {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    assert_eq!(counts(&emu), (RECORDS, RECORDS));
    emu.shutdown().await;
}
