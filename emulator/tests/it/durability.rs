//! Durable storage: committed rows and offsets survive a restart and a `kill -9`.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::common::*;
use serde_json::json;
use snowpipe_emulator::{Emulator, EmulatorConfig};

#[tokio::test]
async fn restart_keeps_rows_offsets_counters_and_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, c) = connected(config().with_data_dir(dir.path())).await;
    let ct = c.open_append_ok("c", "10", &rows(0..10)).await;
    c.append_ok("c", &ct, "12", "{\"ID\":10}\n{\"ID\":\"bad\"}\n")
        .await;
    emu.shutdown().await;

    // Restart without DDL: the stored DDL declares the catalog again.
    let cfg = EmulatorConfig::for_tests()
        .with_public_key(keys(0).1)
        .with_data_dir(dir.path());
    let emu = Emulator::start(cfg).await.unwrap();
    assert_eq!(count(&emu), 11);
    // The scoped token from before the restart is still valid.
    let c2 = Client {
        http: c.http.clone(),
        url: emu.url(),
        token: c.token.clone(),
    };
    let s = &c2.status(&["c"]).await["c"];
    assert_eq!(s["last_committed_offset_token"], "12");
    assert_eq!(s["rows_inserted"], 11);
    assert_eq!(s["rows_error_count"], 1);
    // A restart invalidates the channel (it is not another writer): the client reopens and
    // replays.
    assert_eq!(s["channel_status_code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    let r = c2.append("c", &ct, "", "13", &rows(13..14)).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    let r = c2.open("c", json!({})).await;
    assert_eq!(
        r.body["channel_status"]["last_committed_offset_token"],
        "12"
    );
    emu.shutdown().await;

    let st = snowpipe_emulator::status_from_data_dir(dir.path()).unwrap();
    assert_eq!(st["tables"][0]["rows"], 11);
    assert_eq!(st["channels"][0]["committed_offset_token"], "12");
}

/// A restart is not another writer: the channel keeps its client sequencer and is invalidated
/// instead, so its holder's old continuation token gets `409 ERR_CHANNEL_MUST_BE_REOPENED`
/// (reopen and replay), never `STALE_CONTINUATION_TOKEN_SEQUENCER` (ownership lost). A reopen
/// clears the invalidation and keeps the committed token.
#[tokio::test]
async fn restart_invalidates_channels_instead_of_fencing_their_writers() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, c) = connected(config().with_data_dir(dir.path())).await;
    let ct = c.open_append_ok("c", "5", &rows(0..5)).await;
    let sequencer = emu.status()["channels"][0]["client_sequencer"].clone();
    emu.shutdown().await;

    let (emu, c) = connected(config().with_data_dir(dir.path())).await;
    let st = emu.status();
    let ch = &st["channels"][0];
    assert_eq!(ch["channel_name"], "c");
    assert_eq!(ch["client_sequencer"], sequencer, "the sequencer is kept");
    assert_eq!(ch["channel_status_code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    assert_eq!(
        c.status(&["c"]).await["c"]["channel_status_code"],
        "ERR_CHANNEL_MUST_BE_REOPENED",
        "status polls show the invalidation"
    );

    // The old token: 409 must-reopen, not 400 stale, and nothing is counted as fenced.
    let r = c.append("c", &ct, "", "6", &rows(5..6)).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    let st = emu.status();
    assert_eq!(st["channels"][0]["fenced_appends"], 0);
    assert_eq!(st["fenced_appends"], 0);

    // Reopening clears it and keeps the committed token; the chain goes on from there.
    let r = c.open("c", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["channel_status"]["channel_status_code"], "SUCCESS");
    assert_eq!(r.body["channel_status"]["last_committed_offset_token"], "5");
    let ct = r.body["next_continuation_token"].as_str().unwrap();
    c.append_ok("c", ct, "6", &rows(5..6)).await;
    c.wait_committed("c", "6").await;
    assert_eq!(
        c.status(&["c"]).await["c"]["channel_status_code"],
        "SUCCESS"
    );
    assert_eq!(count(&emu), 6);
    emu.shutdown().await;
}

struct Proc(Child);
impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the binary and returns it with its URL (parsed from `listening on …`).
fn spawn(args: &[&str]) -> (Proc, String) {
    let mut proc = Proc(
        bin()
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut out = BufReader::new(proc.0.stdout.take().unwrap());
    let mut line = String::new();
    loop {
        line.clear();
        assert!(
            out.read_line(&mut line).unwrap() > 0,
            "emulator exited early"
        );
        if let Some(url) = line.trim().strip_prefix("listening on ") {
            let url = url.to_string();
            std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
            return (proc, url);
        }
    }
}

/// Writes `ddl` to `ddl.sql` and key 0's public key to `key.pub` in `dir`: their paths.
fn ddl_and_key_files(dir: &Path, ddl: &str) -> (PathBuf, PathBuf) {
    let ddl_path = dir.join("ddl.sql");
    std::fs::write(&ddl_path, ddl).unwrap();
    let key = dir.join("key.pub");
    std::fs::write(&key, keys(0).1).unwrap();
    (ddl_path, key)
}

/// The output of `snowpipe-emulator query --data-dir <data> --format json <sql>`.
fn query_json(data: &str, sql: &str) -> String {
    run_bin(&["query", "--data-dir", data, "--format", "json", sql])
}

async fn client(url: &str) -> Client {
    let http = reqwest::Client::new();
    let token = request_token(&http, &format!("{url}/oauth/token"), &jwt(0), None, None)
        .await
        .text()
        .await
        .unwrap();
    Client {
        http,
        url: url.to_string(),
        token,
    }
}

#[tokio::test]
async fn binary_survives_kill_9_and_query_status_commands_work() {
    let dir = tempfile::tempdir().unwrap();
    let (ddl, key) = ddl_and_key_files(dir.path(), DDL);
    let data = dir.path().join("data");
    let (d, k, dd) = (
        ddl.to_str().unwrap(),
        key.to_str().unwrap(),
        data.to_str().unwrap(),
    );

    let (mut p, url) = spawn(&[
        "--data-dir",
        dd,
        "--ddl",
        d,
        "--public-key",
        k,
        "--commit-delay",
        "0.05s",
    ]);
    let c = client(&url).await;
    let ct = c.open_append_ok("c", "100", &rows(0..100)).await;
    c.wait_committed("c", "100").await;
    // Killed with SIGKILL: no graceful shutdown.
    p.0.kill().unwrap();
    p.0.wait().unwrap();

    let (_p, url) = spawn(&["--data-dir", dd, "--public-key", k, "--commit-delay", "0"]);
    let c = client(&url).await;
    let s = &c.status(&["c"]).await["c"];
    assert_eq!(s["last_committed_offset_token"], "100");
    assert_eq!(s["rows_inserted"], 100);
    assert_eq!(s["channel_status_code"], "ERR_CHANNEL_MUST_BE_REOPENED");
    let r = c.append("c", &ct, "", "101", &rows(100..101)).await;
    assert_eq!(r.status, 409, "{}", r.text);
    assert_eq!(r.body["code"], "ERR_CHANNEL_MUST_BE_REOPENED");

    let out = query_json(dd, "SELECT COUNT(*), MIN(ID), MAX(ID) FROM \"DB.SCH.T\"");
    assert_eq!(out.trim(), "[100,0,99]");
    let out = bin()
        .args(["query", "--data-dir", dd, "DELETE FROM \"DB.SCH.T\""])
        .output()
        .unwrap();
    assert!(!out.status.success(), "query is read-only");
    let out = bin().args(["status", "--data-dir", dd]).output().unwrap();
    let st: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(st["channels"][0]["committed_offset_token"], "100");
    assert!(st["pipes"]
        .as_array()
        .unwrap()
        .iter()
        .any(|p| p["name"] == "P"));
}

#[tokio::test]
async fn graceful_shutdown_commits_accepted_batches() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config()
        .with_data_dir(dir.path())
        .with_commit_delay(std::time::Duration::from_secs(3600));
    let (emu, c) = connected(cfg).await;
    c.open_append_ok("c", "3", &rows(0..3)).await;
    assert_eq!(count(&emu), 0);
    emu.shutdown().await;
    let emu = Emulator::start(config().with_data_dir(dir.path()))
        .await
        .unwrap();
    assert_eq!(count(&emu), 3);
    let c = Client::connect(&emu).await;
    assert_eq!(
        c.status(&["c"]).await["c"]["last_committed_offset_token"],
        "3"
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn binary_fault_flags_and_plan_file() {
    let dir = tempfile::tempdir().unwrap();
    let (ddl, key) = ddl_and_key_files(dir.path(), DDL);
    let plan = dir.path().join("faults.json");
    std::fs::write(
        &plan,
        r#"{"rules":[{"endpoint":"open_channel","action":{"kind":"status","status":409,"code":"ERR_OPEN_CHANNEL_IN_PROGRESS"},"max_times":1}]}"#,
    )
    .unwrap();
    let (_p, url) = spawn(&[
        "--ddl",
        ddl.to_str().unwrap(),
        "--public-key",
        key.to_str().unwrap(),
        "--commit-delay",
        "0",
        "--faults",
        plan.to_str().unwrap(),
        "--fault",
        "append_rows:status=503,bare=ERR_GENERAL_EXCEPTION_RETRY_REQUEST,times=1",
    ]);
    let c = client(&url).await;
    let r = c.open("c", json!({})).await;
    assert_eq!(r.body["code"], "ERR_OPEN_CHANNEL_IN_PROGRESS");
    let ct = c.open_ok("c").await;
    let r = c.append("c", &ct, "", "1", &rows(0..1)).await;
    assert_eq!(
        (r.status, r.text.as_str()),
        (503, "\"ERR_GENERAL_EXCEPTION_RETRY_REQUEST\"")
    );
    c.append_ok("c", &ct, "1", &rows(0..1)).await;
    let out = bin().args(["--fault", "append_rows:wat"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown key"));
}

#[tokio::test]
async fn a_port_in_use_is_an_io_error_that_keeps_its_cause() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut config = EmulatorConfig::for_tests();
    config.port = port;
    let Err(e) = Emulator::start(config).await else {
        panic!("the emulator started on a port already in use");
    };
    assert!(
        matches!(&e, snowpipe_emulator::EmulatorError::Io { .. }),
        "{e:?}"
    );
    assert!(e.to_string().contains(&port.to_string()), "{e}");
    let cause = std::error::Error::source(&e).expect("the I/O error is kept as the source");
    let io = cause
        .downcast_ref::<std::io::Error>()
        .expect("the source is the io::Error");
    assert_eq!(io.kind(), std::io::ErrorKind::AddrInUse);
}

/// The binary prints an error's whole chain, each part once: the kind, then SQLite's message
/// (the library's error leaves it to its source).
#[tokio::test]
async fn the_binary_prints_an_errors_cause_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut config = EmulatorConfig::for_tests();
    config.data_dir = Some(data.clone());
    Emulator::start(config).await.unwrap().shutdown().await;
    let dd = data.to_str().unwrap();
    let out = bin()
        .args(["query", "--data-dir", dd, "SELECT * FROM nowhere"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("error: storage error: no such table: nowhere"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("no such table").count(), 1, "{stderr}");
}

/// `--binary-format base64` changes how BINARY strings decode (`"yv4="` is CA FE, and
/// `"CAFE"` is base64 too: 08 01 44), and `:pipe-info` reports it; `--timezone` sets the
/// session zone epochs are read in; a bad zone is a startup error naming the fix.
#[tokio::test]
async fn binary_format_and_timezone_options_change_conversions() {
    let dir = tempfile::tempdir().unwrap();
    let (ddl, key) = ddl_and_key_files(
        dir.path(),
        "CREATE DATABASE IF NOT EXISTS DB; CREATE SCHEMA IF NOT EXISTS SCH;
         CREATE OR REPLACE TABLE T (ID NUMBER, B BINARY, TS TIMESTAMP_NTZ);
         CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))
           MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;",
    );
    let rows = [
        json!({"ID": 1, "B": "yv4=", "TS": 1_705_312_800}),
        json!({"ID": 2, "B": "CAFE"}),
    ]
    .map(|r| format!("{r}\n"))
    .concat();
    for (args, hex, ts, format) in [
        (
            &[][..],
            ["CAFE", ""],
            "2024-01-15 02:00:00.000000000",
            "HEX",
        ),
        (
            &["--binary-format", "base64", "--timezone", "UTC"][..],
            ["CAFE", "080144"],
            "2024-01-15 10:00:00.000000000",
            "BASE64",
        ),
    ] {
        let data = dir.path().join(format!("data-{format}"));
        let (d, k, dd) = (
            ddl.to_str().unwrap(),
            key.to_str().unwrap(),
            data.to_str().unwrap(),
        );
        let mut argv = vec![
            "--data-dir",
            dd,
            "--ddl",
            d,
            "--public-key",
            k,
            "--commit-delay",
            "0",
        ];
        argv.extend_from_slice(args);
        let (_p, url) = spawn(&argv);
        let c = client(&url).await;
        let r = c
            .pipe_action("pipe-info", json!({"generate_new_token": true}))
            .await;
        assert_eq!(r.body["parameter_overrides"]["binary_input_format"], format);
        let status = c.commit_rows("c", "2", &rows).await;
        let out = query_json(dd, r#"SELECT ID, HEX(B), TS FROM "DB.SCH.T" ORDER BY ID"#);
        if format == "HEX" {
            // "yv4=" is no hex: the first row is refused; "CAFE" is the bytes CA FE.
            assert_eq!(status["rows_error_count"], 1, "{status}");
            assert_eq!(out.trim(), r#"[2,"CAFE",null]"#);
        } else {
            assert_eq!(status["rows_error_count"], 0, "{status}");
            assert_eq!(
                out.trim(),
                format!("[1,\"{}\",\"{ts}\"]\n[2,\"{}\",null]", hex[0], hex[1])
            );
        }
        if format == "HEX" {
            // The default zone shows on an epoch in a row of its own.
            let row = format!("{}\n", json!({"ID": 3, "TS": 1_705_312_800}));
            c.commit_rows("c", "3", &row).await;
            let out = query_json(dd, r#"SELECT TS FROM "DB.SCH.T" WHERE ID = 3"#);
            assert_eq!(out.trim(), format!("[\"{ts}\"]"));
        }
    }
    let out = bin()
        .args(["--timezone", "Mars/Olympus", "--accept-any-key"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("unknown time zone \"Mars/Olympus\"") && stderr.contains("IANA name"),
        "{stderr}"
    );
}
