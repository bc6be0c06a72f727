//! `table_replay follow`'s snapshot dead letters for keys that are not one integer column,
//! against a private MariaDB with its binlog on (skipped without `mariadbd`, except under
//! `CI=true`): a text key in a case- and accent-insensitive collation (`utf8mb4_unicode_ci`,
//! keys whose order there is not their bytes' order), a composite (int, text) key and a
//! `BINARY(16)` key, each table holding values the type mapping refuses (an invalid date kept
//! under `ALLOW_INVALID_DATES`) spread through it. `follow` is SIGKILLed inside the snapshot
//! at several points (each just after a dead letter committed, most often between a page's
//! dead letters and its good rows), run again to the end, then once more after a refused
//! change through the binlog: every dead letter is in `<TABLE>_DLQ` exactly once, with its
//! key in `SOURCE_KEY_TEXT`, and every good row once. And a `<TABLE>_DLQ` of an earlier
//! version (no `SOURCE_KEY_TEXT`, one row of its own) gets the column at the start, keeps
//! its row, and `verify --changes` leaves out that row's key (read from `RAW_VALUES`) too.
#![cfg(unix)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay::{at_destination, destination, earlier_dead_letter};
use crate::common::table_replay_follow::{
    changes_ddl, count_where, kill_at_rows, new_database, start_binlog_or_skip,
};

/// One table: its DDL, how many rows, its key's text in `SOURCE_KEY_TEXT` as SQL over the
/// source (the key columns as the dead letter writes them: a JSON array).
struct Case {
    table: &'static str,
    create: &'static str,
    /// `INSERT … SELECT … FROM seq_1_to_N` (`seq` numbers the row); `bad` marks refused rows.
    fill: &'static str,
    key_json: &'static str,
    /// The DLQ counts at which `follow` is SIGKILLed, one run each.
    kills: &'static [u64],
}

/// Eight key prefixes equal or close in `utf8mb4_unicode_ci` but far apart in bytes.
const PREFIX: &str = "ELT(seq % 8 + 1, 'a', 'A', 'á', 'Á', 'ö', 'O', '漢', 'z')";

fn cases() -> Vec<Case> {
    vec![
        Case {
            table: "tk",
            create: "CREATE TABLE tk (k VARCHAR(100) CHARACTER SET utf8mb4 COLLATE \
                     utf8mb4_unicode_ci NOT NULL PRIMARY KEY, day DATE NULL, bad INT, n INT)",
            fill: "INSERT INTO tk SELECT CONCAT(PREFIX, '-', seq), \
                   IF(seq % 97 = 0, '2024-02-30', '2024-02-29'), seq % 97 = 0, seq \
                   FROM seq_1_to_30000",
            key_json: "JSON_ARRAY(k)",
            kills: &[1, 100, 200],
        },
        Case {
            table: "ck",
            create: "CREATE TABLE ck (g INT NOT NULL, name VARCHAR(40) CHARACTER SET utf8mb4 \
                     COLLATE utf8mb4_unicode_ci NOT NULL, day DATE NULL, bad INT, n INT, \
                     PRIMARY KEY (g, name))",
            fill: "INSERT INTO ck SELECT seq DIV 500, CONCAT(PREFIX, seq), \
                   IF(seq % 53 = 0, '2024-02-30', '2024-02-29'), seq % 53 = 0, seq \
                   FROM seq_1_to_6000",
            key_json: "JSON_ARRAY(g, name)",
            kills: &[1, 60],
        },
        Case {
            table: "bk",
            create: "CREATE TABLE bk (id BINARY(16) NOT NULL PRIMARY KEY, day DATE NULL, \
                     bad INT, n INT)",
            fill: "INSERT INTO bk SELECT UNHEX(MD5(seq)), \
                   IF(seq % 53 = 0, '2024-02-30', '2024-02-29'), seq % 53 = 0, seq \
                   FROM seq_1_to_6000",
            key_json: "JSON_ARRAY(JSON_OBJECT('hex', LOWER(HEX(id))))",
            kills: &[1, 60],
        },
    ]
}

/// `follow` of `table` with pages of 1,000 rows.
fn follow(bin: &Path, url: &str, table: &str, dest: (&Emulator, &Path), idle: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["follow", "--source", url, "--table", table])
        .args([
            "--database",
            "REPLAY",
            "--schema",
            "PUBLIC",
            "--batch",
            "1000",
        ])
        .args(["--max-client-lag", "200ms", "--until-idle", idle])
        .stdin(Stdio::null());
    at_destination(&mut cmd, dest.0, dest.1);
    cmd
}

/// Each value of `rows`' first column and how many rows hold it.
fn counted(rows: Vec<Vec<serde_json::Value>>) -> BTreeMap<String, u64> {
    let mut seen = BTreeMap::new();
    for r in rows {
        let k = match &r[0] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        *seen.entry(k).or_insert(0) += 1;
    }
    seen
}

async fn run(db: &snowpipe_apps::table_replay::mariadb::MariaDb, case: &Case) {
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(db, case.table).await;
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        .await
        .unwrap();
    conn.query_drop(case.create).await.unwrap();
    conn.query_drop(case.fill.replace("PREFIX", PREFIX))
        .await
        .unwrap();
    let upper = case.table.to_uppercase();
    let dlq = format!("\"REPLAY.PUBLIC.{upper}_DLQ\"");
    let changes = format!("\"REPLAY.PUBLIC.{upper}_CHANGES\"");
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(changes_ddl(bin, &url, case.table, None), dir.path()).await;
    let dest = (&emulator, key.as_path());

    let mut logs = String::new();
    for &at in case.kills {
        // Killed just after a page's dead letters committed (its good rows not yet, or just,
        // appended).
        let run = follow(bin, &url, case.table, dest, "1h");
        logs += &kill_at_rows(run, dest.0, (&dlq, at), Duration::from_secs(120))
            .await
            .unwrap_or_else(|why| panic!("{}: {why}", case.table));
    }
    let out = follow(bin, &url, case.table, dest, "2s").output().unwrap();
    logs += &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{logs}");
    // At least one restart met dead letters an earlier run had committed (the kills landed
    // where a restart reads them again), and skipped them.
    assert!(
        logs.contains(&format!("{}: ", case.table))
            && logs.contains("(committed by an earlier run): not written again"),
        "{}: no restart met a committed dead letter again: the kills missed\n{logs}",
        case.table
    );

    let good: u64 = conn
        .query_first(format!("SELECT COUNT(*) FROM {} WHERE bad = 0", case.table))
        .await
        .unwrap()
        .unwrap();
    // A change through the binlog that the mapping refuses: its dead letter has its key too.
    conn.query_drop(format!(
        "UPDATE {} SET day = '2023-04-31', bad = 1 WHERE n = 7",
        case.table
    ))
    .await
    .unwrap();
    let out = follow(bin, &url, case.table, dest, "2s").output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // The refused rows' keys, as the dead letters must carry them, from the source.
    let expected: Vec<String> = conn
        .query(format!(
            "SELECT CAST({} AS CHAR) FROM {} WHERE bad = 1",
            case.key_json, case.table
        ))
        .await
        .unwrap();
    assert!(expected.len() > 50, "{}: too few refused rows", case.table);

    // Every dead letter once, by its reason (which names the key) and by SOURCE_KEY_TEXT.
    let by_reason = counted(
        emulator
            .query(&format!("SELECT REASON FROM {dlq}"))
            .unwrap(),
    );
    let twice: Vec<_> = by_reason.iter().filter(|(_, n)| **n > 1).collect();
    assert!(
        twice.is_empty(),
        "{}: dead letters written twice after the kills: {twice:?}",
        case.table
    );
    assert_eq!(by_reason.len(), expected.len(), "{}", case.table);
    let by_key = counted(
        emulator
            .query(&format!("SELECT SOURCE_KEY_TEXT FROM {dlq}"))
            .unwrap(),
    );
    let want: BTreeMap<String, u64> = expected
        .iter()
        .map(|k| {
            // MariaDB's JSON_ARRAY spaces its items; the dead letter's JSON is compact.
            let v: serde_json::Value = serde_json::from_str(k).unwrap();
            (v.to_string(), 1)
        })
        .collect();
    assert_eq!(by_key, want, "{}: SOURCE_KEY_TEXT by key", case.table);
    let zero = count_where(&emulator, &dlq, "SOURCE_KEY = 0");
    assert_eq!(
        zero,
        expected.len() as u64,
        "{}: SOURCE_KEY stays 0",
        case.table
    );

    // Every good row once.
    assert_eq!(
        count_where(&emulator, &changes, "_OP = 'r'"),
        good,
        "{}",
        case.table
    );
    let rows = emulator
        .query(&format!(
            "SELECT N, COUNT(*) FROM {changes} WHERE _OP = 'r' GROUP BY N HAVING COUNT(*) > 1"
        ))
        .unwrap();
    assert!(rows.is_empty(), "{}: good rows twice: {rows:?}", case.table);
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshot_dead_letters_of_text_composite_and_binary_keys_are_written_once_across_kills() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    for case in cases() {
        run(&db, &case).await;
    }
}

/// A dead letter as an earlier version wrote it (no `SOURCE_KEY_TEXT`): the row a migration
/// must keep.
fn earlier_row(key: &str) -> serde_json::Value {
    serde_json::json!({
        "SOURCE_TABLE": "ok",
        "SOURCE_KEY": 0,
        "REASON": format!("snapshot key '{key}' (r): column day (date): invalid date"),
        "RAW_VALUES": {"k": key, "day": "2024-02-30 00:00:00.000000", "bad": 1, "n": 1},
        "DEAD_LETTERED_AT": "2026-01-01T00:00:00.000+00:00",
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_table_of_an_earlier_version_gets_source_key_text_and_keeps_its_rows() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "olddlq").await;
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        .await
        .unwrap();
    conn.query_drop(cases()[0].create.replace("tk", "ok"))
        .await
        .unwrap();
    conn.query_drop(
        cases()[0]
            .fill
            .replace("tk", "ok")
            .replace("PREFIX", PREFIX)
            .replace("30000", "3000"),
    )
    .await
    .unwrap();
    // The DDL of an earlier version: the dead-letter table without SOURCE_KEY_TEXT.
    let new = changes_ddl(bin, &url, "ok", None);
    assert!(new.contains("    SOURCE_KEY_TEXT VARCHAR,\n"), "{new}");
    let old = new.replace("    SOURCE_KEY_TEXT VARCHAR,\n", "");
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(old, dir.path()).await;
    let dlq = "\"REPLAY.PUBLIC.OK_DLQ\"";
    // An earlier version's dead letter of a row fixed since (its key is a good row's now).
    earlier_dead_letter(&emulator, "OK_DLQ_PIPE", earlier_row("a-8"), 1).await;
    assert!(emulator
        .query(&format!("SELECT SOURCE_KEY_TEXT FROM {dlq}"))
        .is_err());

    let out = follow(bin, &url, "ok", (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("ok: added column SOURCE_KEY_TEXT to OK_DLQ"),
        "no migration said:\n{err}"
    );
    // The earlier row is kept, NULL in the new column; each new dead letter has its key.
    let earlier = emulator
        .query(&format!(
            "SELECT REASON, SOURCE_KEY_TEXT FROM {dlq} WHERE REASON LIKE '%''a-8''%'"
        ))
        .unwrap();
    assert_eq!(earlier.len(), 1, "{earlier:?}");
    assert!(earlier[0][1].is_null(), "{earlier:?}");
    let expected: Vec<String> = conn
        .query("SELECT CAST(JSON_ARRAY(k) AS CHAR) FROM ok WHERE bad = 1")
        .await
        .unwrap();
    let want: BTreeMap<String, u64> = expected
        .iter()
        .map(|k| {
            (
                serde_json::from_str::<serde_json::Value>(k)
                    .unwrap()
                    .to_string(),
                1,
            )
        })
        .collect();
    let got = counted(
        emulator
            .query(&format!(
                "SELECT SOURCE_KEY_TEXT FROM {dlq} WHERE SOURCE_KEY_TEXT IS NOT NULL"
            ))
            .unwrap(),
    );
    assert_eq!(got, want);

    // A second start finds the column there; verify leaves out every dead-lettered key,
    // the earlier one read from its RAW_VALUES.
    let out = follow(bin, &url, "ok", (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && !err.contains("added column"),
        "{err}"
    );
    let out = crate::common::table_replay_follow::verify_changes(bin, &url, "ok", &emulator, &key);
    crate::common::table_replay_follow::assert_equal(&out);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        report.contains(&format!(
            "but for {} dead-lettered keys",
            expected.len() + 1
        )),
        "{report}"
    );
    emulator.shutdown().await;
}
