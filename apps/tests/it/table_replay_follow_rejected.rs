//! `table_replay follow` when the destination refuses a change's row server-side (a row
//! error, Snowflake's `ON_ERROR = CONTINUE`: the committed token moves past it), against a
//! private MariaDB with its binlog on (skipped without `mariadbd`, except under `CI=true`).
//! While `follow` runs, the test makes the change table's `NOTE` column `NOT NULL` through
//! the destination's SQL API (a tampering the start-time shape check never sees: it is made
//! after the start); then a change with a NULL note (the server must refuse it) and a good
//! one. The warning names the table, the count and the binlog position, the good change
//! lands, and `follow --until-idle` exits non-zero naming the rejected count, its JSON
//! summary carrying it. Before the fix it logged only the SDK's warning and exited 0.
#![cfg(unix)]

use std::io::Read as _;
use std::process::Stdio;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    change_destination, count_where, follow_cmd, follow_until_idle, new_database,
    start_binlog_or_skip,
};

const TABLE: &str = "rej";
const CHANGES: &str = "\"REPLAY.PUBLIC.REJ_CHANGES\"";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_the_server_rejects_is_named_and_follow_exits_non_zero() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE rej (id BIGINT PRIMARY KEY, note VARCHAR(20) NULL)",
        "INSERT INTO rej SELECT seq, CONCAT('n', seq) FROM seq_1_to_5",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 5);

    // follow runs (it reads the binlog once its channel is open).
    let mut child = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "8s")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !emulator
        .status()
        .to_string()
        .contains("table_replay_changes_rej")
    {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "follow never opened its channel"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "follow stopped before the changes"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // The destination's column no longer takes a NULL note.
    let sql = snowpipe_streaming::StreamingIngestClient::builder()
        .account("REPLAY")
        .user("REPLAY")
        .url(emulator.url())
        .private_key_pem(common::TEST_KEY)
        .build_sql()
        .unwrap()
        .database("REPLAY")
        .schema("PUBLIC");
    sql.query("ALTER TABLE REJ_CHANGES ALTER COLUMN NOTE SET NOT NULL")
        .await
        .unwrap();
    // A change that cannot fit, then one that can.
    conn.query_drop("INSERT INTO rej VALUES (6, NULL)")
        .await
        .unwrap();
    conn.query_drop("INSERT INTO rej VALUES (7, 'fits')")
        .await
        .unwrap();

    let (mut out, mut err) = (String::new(), String::new());
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "follow exited 0 past a rejected change:\n{err}"
    );
    let warning = err
        .lines()
        .find(|l| l.contains("rej: the server rejected 1 change ("))
        .unwrap_or_else(|| panic!("no warning names the table and the count:\n{err}"));
    assert!(
        warning.contains("at or before binlog ")
            && warning.contains("not in REJ_CHANGES")
            && warning.contains("follow goes on")
            && warning.contains("take a new snapshot"),
        "the warning names no position or fix: {warning}"
    );
    assert!(
        err.contains("error: rej: 1 change rejected by the server (at or before binlog "),
        "the exit names no rejected count:\n{err}"
    );
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(
        summary["followed"]["rej"]["row_errors"]["count"], 1,
        "{out}"
    );
    assert_eq!(summary["followed"]["rej"]["changes"], 2, "{out}");
    // The good change after it landed; the refused one is not there.
    assert_eq!(
        count_where(&emulator, CHANGES, "ID = 7 AND NOTE = 'fits'"),
        1
    );
    assert_eq!(count_where(&emulator, CHANGES, "ID = 6"), 0);
    emulator.shutdown().await;
}
