//! Crash test of the ski_resort pipeline: the emulator and the generator run as processes, the
//! streamer is killed with SIGKILL at seeded random moments and restarted, and in the end the
//! emulator's tables must hold exactly the generated rows (by TXID), once each.
#![cfg(unix)]

use std::collections::HashSet;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_cli_support::process::{signal, Signal};

const TABLES: [&str; 3] = ["RESORT_TICKET", "SEASON_PASS", "LIFT_RIDE"];
const SEED: &str = "7";
const EVENTS: &str = "6000";

use crate::common;

/// Kills the process when dropped, so a failing test leaves nothing running.
use crate::common::bin::{start_emulator, Guard};

fn terminate(child: &mut Child) {
    signal(child.id(), Signal::Term).expect("signal the child");
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if child.try_wait().expect("wait").is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// `ski_resort stream`, connected through `SNOWFLAKE_*` variables, or through `profile` when
/// given (a `profile.json`, as users pass it).
fn stream_cmd(bin: &Path, queue: &Path, url: &str, key: &Path, profile: Option<&Path>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["stream", "--until-drained", "--queue"])
        .arg(queue);
    if let Some(p) = profile {
        cmd.arg("--profile").arg(p);
    }
    cmd.env("SNOWFLAKE_URL", url)
        .env("SNOWFLAKE_ACCOUNT", "SKI_RESORT")
        .env("SNOWFLAKE_USER", "STREAMING_INGEST")
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", key)
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    cmd
}

/// TXIDs per table of a queue nobody streamed.
fn queued_txids(queue: &Path) -> Vec<Vec<String>> {
    let conn = rusqlite::Connection::open(queue).expect("open side queue");
    TABLES
        .iter()
        .map(|t| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT txid FROM q_{} ORDER BY id",
                    t.to_lowercase()
                ))
                .unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
            rows.map(Result::unwrap).collect()
        })
        .collect()
}

fn landed_txids(data_dir: &Path) -> Vec<Vec<String>> {
    let db = data_dir.join(snowpipe_emulator::offline::DB_FILE);
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    TABLES
        .iter()
        .map(|t| {
            let mut stmt = conn
                .prepare(&format!(
                    "SELECT TXID FROM \"STREAMING_INGEST.STREAMING_INGEST.{t}\""
                ))
                .unwrap();
            let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
            rows.map(Result::unwrap).collect()
        })
        .collect()
}

/// (rows committed and deleted so far, rows still in the queue), from the queue's ledger.
fn queue_progress(queue: &Path) -> (u64, u64) {
    let conn =
        rusqlite::Connection::open_with_flags(queue, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .unwrap();
    let committed: i64 = conn
        .query_row("SELECT SUM(committed) FROM ledger", [], |r| r.get(0))
        .unwrap();
    let waiting = common::chaos::queue_waiting(&conn);
    (committed as u64, waiting as u64)
}

fn generator_registered(queue: &Path) -> bool {
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(queue, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return false;
    };
    conn.query_row(
        "SELECT value FROM meta WHERE key = 'generator_pid'",
        [],
        |r| r.get::<_, String>(0),
    )
    .is_ok_and(|v| !v.is_empty())
}

#[test]
fn streamer_killed_repeatedly_lands_every_row_exactly_once() {
    crash_run(None, 2025, 3..=5, 250..1500);
}

/// The same with 64 KB requests set through the profile: the queue's appends (up to 1 MB)
/// are split across many requests, and the streamer is killed more often, so kills land
/// between the requests of one append.
#[test]
fn streamer_with_small_requests_killed_many_times_lands_every_row_exactly_once() {
    crash_run(Some(64 << 10), 2026, 7..=9, 150..700);
}

/// Generates while killing `stream` (SIGKILL) `kills` times at random moments (`kill_ms`
/// after its start), drains, and checks every table holds exactly the generated rows.
fn crash_run(
    request_bytes: Option<usize>,
    seed: u64,
    kills: std::ops::RangeInclusive<u32>,
    kill_ms: std::ops::Range<u64>,
) {
    let bin = common::bin::ski_resort_bin();
    let dir = tempfile::tempdir().unwrap();
    let (queue, side_queue) = (
        dir.path().join("queue.sqlite"),
        dir.path().join("side.sqlite"),
    );
    let (data_dir, key) = (dir.path().join("emulator"), dir.path().join("key.p8"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let (mut emulator, url) = start_emulator(&bin, &data_dir, &key);
    let profile = request_bytes.map(|bytes| {
        let path = dir.path().join("profile.json");
        let json = serde_json::json!({
            "url": url,
            "account": "SKI_RESORT",
            "user": "STREAMING_INGEST",
            "private_key_file": key,
            "max_request_bytes": bytes,
        });
        std::fs::write(&path, json.to_string()).unwrap();
        path
    });

    // The generator writes while the streamer is being killed.
    let generator = Command::new(&bin)
        .args([
            "generate", "--events", EVENTS, "--rate", "1500", "--seed", SEED, "--quiet", "--queue",
        ])
        .arg(&queue)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn generator");
    let mut generator = Guard(generator);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !generator_registered(&queue) && generator.0.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "generator did not start");
        std::thread::sleep(Duration::from_millis(10));
    }

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let kills = rng.gen_range(kills);
    let mut killed = 0;
    let mut killed_with_work = 0;
    for _ in 0..kills {
        let mut child = Guard(
            stream_cmd(&bin, &queue, &url, &key, profile.as_deref())
                .spawn()
                .expect("spawn stream"),
        );
        std::thread::sleep(Duration::from_millis(rng.gen_range(kill_ms.clone())));
        if child.0.try_wait().unwrap().is_none() {
            child.0.kill().unwrap(); // SIGKILL
            killed += 1;
            let (committed, waiting) = queue_progress(&queue);
            eprintln!("kill {killed}: {committed} rows committed so far, {waiting} still queued");
            if waiting > 0 {
                killed_with_work += 1;
            }
        }
        let _ = child.0.wait();
    }
    assert!(killed >= 3, "the streamer was killed only {killed} times");
    assert!(
        killed_with_work >= 2,
        "the streamer was killed while it had work only {killed_with_work} times"
    );

    // Restart once more and let it drain.
    let mut last = Guard(
        stream_cmd(&bin, &queue, &url, &key, profile.as_deref())
            .spawn()
            .expect("spawn stream"),
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = last.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "stream --until-drained did not finish within 60 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "final stream exited with {status}");

    let output = std::mem::replace(&mut generator.0, Command::new("true").spawn().unwrap())
        .wait_with_output()
        .unwrap();
    assert!(output.status.success());
    let line = String::from_utf8(output.stdout).unwrap();
    let generated: serde_json::Value = serde_json::from_str(line.lines().last().unwrap()).unwrap();

    // The same seed regenerates the same rows: the expected TXIDs.
    let side = Command::new(&bin)
        .args([
            "generate", "--events", EVENTS, "--rate", "0", "--seed", SEED, "--quiet", "--queue",
        ])
        .arg(&side_queue)
        .output()
        .unwrap();
    assert!(side.status.success());
    let expected = queued_txids(&side_queue);

    // The report through the SQL API of the running emulator (SNOWFLAKE_* variables, as
    // against a real account)...
    let through_sql_api = Command::new(&bin)
        .args(["report", "--json", "--queue"])
        .arg(&queue)
        .env("SNOWFLAKE_URL", &url)
        .env("SNOWFLAKE_ACCOUNT", "SKI_RESORT")
        .env("SNOWFLAKE_USER", "STREAMING_INGEST")
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", &key)
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .env_remove("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
        .output()
        .unwrap();
    assert!(
        through_sql_api.status.success(),
        "report through the SQL API: {}{}",
        String::from_utf8_lossy(&through_sql_api.stdout),
        String::from_utf8_lossy(&through_sql_api.stderr)
    );

    terminate(&mut emulator.0);
    let landed = landed_txids(&data_dir);
    for (i, table) in TABLES.iter().enumerate() {
        let unique: HashSet<&String> = landed[i].iter().collect();
        assert_eq!(
            unique.len(),
            landed[i].len(),
            "{table}: duplicate rows landed"
        );
        let want: HashSet<&String> = expected[i].iter().collect();
        let missing = want.difference(&unique).count();
        let extra = unique.difference(&want).count();
        assert!(
            missing == 0 && extra == 0,
            "{table}: {missing} rows lost, {extra} unexpected rows"
        );
        assert_eq!(
            generated["generated"][table].as_u64(),
            Some(expected[i].len() as u64),
            "{table}"
        );
    }

    let report = common::bin::ski_resort_report(&queue, &data_dir);
    assert!(
        report.status.success(),
        "report: {}",
        String::from_utf8_lossy(&report.stdout)
    );
    // ...says what the report over the stopped emulator's file says.
    assert_eq!(
        String::from_utf8_lossy(&through_sql_api.stdout),
        String::from_utf8_lossy(&report.stdout)
    );
}

/// SIGTERM (what `docker stop`, Kubernetes and systemd send) stops `ski_resort stream` as
/// Ctrl-C does: it drains (what it sent is committed) and exits 0, mid-run, while the
/// generator is still writing (it was killed by the signal, exit status "signal 15"). A
/// restart lands the rest: every generated row exactly once.
#[test]
fn streamer_stopped_by_sigterm_drains_and_exits_0() {
    let bin = common::bin::ski_resort_bin();
    let dir = tempfile::tempdir().unwrap();
    let (queue, side_queue) = (
        dir.path().join("queue.sqlite"),
        dir.path().join("side.sqlite"),
    );
    let (data_dir, key) = (dir.path().join("emulator"), dir.path().join("key.p8"));
    std::fs::create_dir_all(&data_dir).unwrap();
    let (mut emulator, url) = start_emulator(&bin, &data_dir, &key);
    let mut generator = Guard(
        Command::new(&bin)
            .args([
                "generate", "--events", EVENTS, "--rate", "1000", "--seed", SEED,
            ])
            .args(["--quiet", "--queue"])
            .arg(&queue)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn generator"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while !generator_registered(&queue) {
        assert!(Instant::now() < deadline, "generator did not start");
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut streamer = Guard(
        stream_cmd(&bin, &queue, &url, &key, None)
            .spawn()
            .expect("spawn stream"),
    );
    while queue_progress(&queue).0 == 0 {
        assert!(Instant::now() < deadline, "nothing committed within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        generator.0.try_wait().unwrap().is_none(),
        "the generator ended before the SIGTERM: no work left to stop mid-run"
    );
    let status = signal_and_wait(&mut streamer.0, Signal::Term, Duration::from_secs(30));
    assert!(
        status.success(),
        "SIGTERM mid-run: `stream` exited with {status}, not drained with 0"
    );
    let (committed, waiting) = queue_progress(&queue);
    eprintln!("after SIGTERM: {committed} rows committed, {waiting} still queued");

    assert!(generator.0.wait().unwrap().success());
    let rest = stream_cmd(&bin, &queue, &url, &key, None)
        .status()
        .expect("run stream --until-drained");
    assert!(rest.success(), "restarted stream exited with {rest}");
    let side = Command::new(&bin)
        .args([
            "generate", "--events", EVENTS, "--rate", "0", "--seed", SEED,
        ])
        .args(["--quiet", "--queue"])
        .arg(&side_queue)
        .output()
        .unwrap();
    assert!(side.status.success());
    let expected = queued_txids(&side_queue);
    terminate(&mut emulator.0);
    let landed = landed_txids(&data_dir);
    for (i, table) in TABLES.iter().enumerate() {
        let mut got = landed[i].clone();
        let mut want = expected[i].clone();
        got.sort();
        want.sort();
        assert_eq!(got.len(), want.len(), "{table}: rows landed vs generated");
        assert!(
            got == want,
            "{table}: the landed rows are not the generated ones once each"
        );
    }
}

/// SIGTERM stops `ski_resort generate` as Ctrl-C does: the batch being written is finished,
/// exit 0, and the `{"generated": …}` line counts exactly the rows in the queue (it was killed
/// by the signal: no line, exit status "signal 15").
#[test]
fn generator_stopped_by_sigterm_exits_0_and_counts_what_it_queued() {
    let bin = common::bin::ski_resort_bin();
    let dir = tempfile::tempdir().unwrap();
    let queue = dir.path().join("queue.sqlite");
    let mut generator = Guard(
        Command::new(&bin)
            .args([
                "generate", "--events", "1000000", "--rate", "1000", "--seed", SEED,
            ])
            .args(["--quiet", "--queue"])
            .arg(&queue)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn generator"),
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    while queued_rows(&queue) == 0 {
        assert!(Instant::now() < deadline, "nothing generated within 30 s");
        std::thread::sleep(Duration::from_millis(20));
    }
    let status = signal_and_wait(&mut generator.0, Signal::Term, Duration::from_secs(10));
    let out = std::io::read_to_string(generator.0.stdout.take().unwrap()).unwrap();
    assert!(
        status.success(),
        "SIGTERM: `generate` exited with {status}: {out}"
    );
    let line: serde_json::Value = serde_json::from_str(out.lines().last().unwrap_or(""))
        .unwrap_or_else(|e| panic!("no generated line ({e}): {out:?}"));
    let queued = queued_txids(&queue);
    for (i, table) in TABLES.iter().enumerate() {
        assert_eq!(
            line["generated"][table].as_u64(),
            Some(queued[i].len() as u64),
            "{table}: {line}"
        );
    }
    assert!(
        !generator_registered(&queue),
        "the generator is still registered"
    );
}

/// Rows in the queue's tables now (0 while it does not exist yet).
fn queued_rows(queue: &Path) -> usize {
    if !queue.exists() {
        return 0;
    }
    let Ok(conn) =
        rusqlite::Connection::open_with_flags(queue, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
    else {
        return 0;
    };
    TABLES
        .iter()
        .map(|t| {
            conn.query_row(
                &format!("SELECT COUNT(*) FROM q_{}", t.to_lowercase()),
                [],
                |r| r.get::<_, i64>(0),
            )
            .unwrap_or(0) as usize
        })
        .sum()
}

/// Sends `signal` to `child` and waits for it to exit within `within` (else kills it and fails).
fn signal_and_wait(child: &mut Child, sig: Signal, within: Duration) -> std::process::ExitStatus {
    signal(child.id(), sig).expect("signal the child");
    let deadline = Instant::now() + within;
    loop {
        if let Some(status) = child.try_wait().expect("wait") {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("still running {within:?} after signal {sig:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}
