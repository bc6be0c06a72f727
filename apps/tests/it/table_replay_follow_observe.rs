//! `table_replay follow` observed as the Kafka sink is (issue 94 item 8), against a private
//! MariaDB with its binlog on (skipped without `mariadbd`, except under `CI=true`): with
//! `--metrics-addr 127.0.0.1:0` it logs the bound address, `/readyz` is 200 while it streams,
//! `/metrics` counts the changes as they flow with its lag gauges; when the destination stops
//! committing the table stalls (a warning, the gauge, `/readyz` 503 naming it) and recovers;
//! progress lines come in text and JSON off a terminal. The alert rules pass `promtool`.
#![cfg(unix)]

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::{Endpoint, FaultAction, FaultRule};

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, follow_cmd, new_database, start_binlog_or_skip,
    verify_changes,
};

const TABLE: &str = "obs";

/// `GET path` on `addr`: the status and the body.
fn get(addr: &str, path: &str) -> (u16, String) {
    let Ok(mut s) = std::net::TcpStream::connect(addr) else {
        return (0, String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    (status, body)
}

/// The value of the series `name` (with its labels, e.g. `x{table="obs"}`) on `/metrics`.
fn metric(addr: &str, name: &str) -> Option<f64> {
    get(addr, "/metrics")
        .1
        .lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
}

/// Waits up to `patience` for `ok`.
async fn within(patience: Duration, mut ok: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < patience {
        if ok() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    ok()
}

fn log(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_probes_stall_and_progress_while_follow_runs() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE obs (id BIGINT PRIMARY KEY, v INT)",
        "INSERT INTO obs SELECT seq, seq FROM seq_1_to_20",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    let stderr = dir.path().join("follow.log");
    let mut cmd = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "120s");
    cmd.args(["--metrics-addr", "127.0.0.1:0", "--progress-every", "1s"])
        .args(["--stall-after", "3s"])
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&stderr).unwrap());
    let mut child = cmd.spawn().unwrap();

    // The bound address, from its log line.
    let mut addr = String::new();
    assert!(
        within(Duration::from_secs(60), || {
            addr = log(&stderr)
                .lines()
                .find_map(|l| l.split("on http://").nth(1).map(str::to_owned))
                .unwrap_or_default();
            !addr.is_empty()
        })
        .await,
        "no address logged:\n{}",
        log(&stderr)
    );
    assert!(
        within(Duration::from_secs(60), || get(&addr, "/readyz").0 == 200).await,
        "ready once streaming: {:?}\n{}",
        get(&addr, "/readyz"),
        log(&stderr)
    );
    assert_eq!(get(&addr, "/healthz"), (200, "ok\n".to_owned()));

    // Changes flow: the counter rises to the snapshot's 20 and the 30 new ones.
    conn.query_drop("INSERT INTO obs SELECT seq, seq FROM seq_21_to_50")
        .await
        .unwrap();
    let appended = r#"snowpipe_cdc_changes_appended_total{table="obs"}"#;
    assert!(
        within(Duration::from_secs(30), || metric(&addr, appended)
            == Some(50.0))
        .await,
        "{appended}: {:?}",
        metric(&addr, appended)
    );
    for gauge in [
        "snowpipe_cdc_read_lag_seconds",
        "snowpipe_cdc_read_lag_bytes",
        r#"snowpipe_cdc_commit_lag_seconds{table="obs"}"#,
        r#"snowpipe_cdc_table_stalled{table="obs"}"#,
        "snowpipe_cdc_binlog_connected",
    ] {
        assert!(
            within(Duration::from_secs(10), || metric(&addr, gauge).is_some()).await,
            "{gauge} is not on /metrics:\n{}",
            get(&addr, "/metrics").1
        );
    }
    assert_eq!(
        metric(&addr, r#"snowpipe_cdc_table_stalled{table="obs"}"#),
        Some(0.0)
    );
    assert!(
        within(Duration::from_secs(10), || {
            metric(&addr, "snowpipe_cdc_read_lag_bytes") == Some(0.0)
        })
        .await,
        "caught up: no bytes behind"
    );
    assert!(
        log(&stderr).contains("progress: obs: "),
        "no progress line:\n{}",
        log(&stderr)
    );

    // The destination stops showing commits: the table stalls, then recovers.
    emulator.faults().add(FaultRule::new(
        Endpoint::BulkStatus,
        FaultAction::Latency { ms: 10_000 },
    ));
    conn.query_drop("INSERT INTO obs SELECT seq, seq FROM seq_51_to_60")
        .await
        .unwrap();
    assert!(
        within(Duration::from_secs(40), || {
            let (status, body) = get(&addr, "/readyz");
            status == 503 && body.contains("stalled: obs (nothing committed for")
        })
        .await,
        "readiness names the stall: {:?}",
        get(&addr, "/readyz")
    );
    assert_eq!(
        metric(&addr, r#"snowpipe_cdc_table_stalled{table="obs"}"#),
        Some(1.0)
    );
    assert!(
        log(&stderr).contains("warning: obs stalled: nothing committed for"),
        "{}",
        log(&stderr)
    );
    emulator.faults().clear();
    assert!(
        within(Duration::from_secs(60), || get(&addr, "/readyz").0 == 200).await,
        "ready again once commits move: {:?}",
        get(&addr, "/readyz")
    );
    assert!(log(&stderr).contains("obs: committing again"));

    // SIGTERM: it stops cleanly and every change is in the change table.
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}:\n{}", log(&stderr));
    assert_equal(&verify_changes(bin, &url, TABLE, &emulator, &key));
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_lines_are_json_with_log_format_json() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE obs (id BIGINT PRIMARY KEY, v INT)",
        "INSERT INTO obs SELECT seq, seq FROM seq_1_to_20",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    let out = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "4s")
        .args(["--progress-every", "1s"])
        .env("TABLE_REPLAY_LOG_FORMAT", "json")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let lines: Vec<serde_json::Value> = err
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let progress = lines
        .iter()
        .rfind(|l| l["fields"]["message"] == "progress")
        .unwrap_or_else(|| panic!("no progress line: {err}"));
    let obs = &progress["fields"]["tables"]["obs"];
    assert_eq!(obs["changes"], 20, "{progress}");
    assert_eq!(obs["dead_letters"], 0, "{progress}");
    assert!(obs["committed"].is_string(), "{progress}");
    assert!(
        progress["fields"]["read_lag_seconds"].is_number(),
        "{progress}"
    );
    emulator.shutdown().await;
}

/// `promtool check rules` and `promtool test rules` of the shipped rules (skipped without
/// `promtool`, except under `CI=true`).
#[test]
fn the_follow_alert_rules_check_and_their_unit_tests_pass() {
    let found = snowpipe_cli_support::server_start::on_path("promtool");
    if !snowpipe_cli_support::server_start::require_or_skip(
        found,
        "promtool",
        "apt-get install prometheus",
    ) {
        return;
    }
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus");
    for args in [
        ["check", "rules", "table-replay-follow.rules.yml"],
        ["test", "rules", "table-replay-follow.tests.yml"],
    ] {
        let out = Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
