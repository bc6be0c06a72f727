//! The fix `follow` and `verify --changes` print for a new snapshot, taken as printed, for a
//! table whose name needs quoting (a space, mixed case): the `DROP` statements run through
//! the SQL API, the `table_replay ddl …` command through a shell, and `follow` then takes a
//! new snapshot. Against a private MariaDB with its binlog on (skipped without `mariadbd`,
//! except under `CI=true`). Before round twelve the drops named `ODD TBL_CHANGES_PIPE`
//! unquoted and the command `--table Odd Tbl`: both failed.
#![cfg(unix)]

use std::path::Path;
use std::process::Command;

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay::at_destination;
use crate::common::table_replay_follow::{
    change_destination, count_where, follow_cmd, follow_until_idle, new_database,
    sql_api_statements, start_binlog_or_skip, verify_changes,
};

const TABLE: &str = "Odd Tbl";
const CHANGES: &str = "\"REPLAY.PUBLIC.ODD TBL_CHANGES\"";

/// The SQL API of the destination, in `REPLAY.PUBLIC`.
fn sql_api(emulator: &Emulator, key: &Path) -> snowpipe_streaming::sql::SqlClient {
    snowpipe_streaming::StreamingIngestClient::builder()
        .account("REPLAY")
        .user("REPLAY")
        .url(emulator.url())
        .private_key_file(key)
        .build_sql()
        .unwrap()
        .database("REPLAY")
        .schema("PUBLIC")
}

/// The drops (the fix's way that discards the history: the emulator does not rename
/// tables) and the shell command of the fix in `text`.
fn fix_parts(text: &str) -> (String, String) {
    let from = text
        .find("take a new snapshot, ")
        .unwrap_or_else(|| panic!("no fix in {text}"));
    let fix = &text[from..];
    let drops = fix
        .split_once("(or, to discard the history: ")
        .and_then(|(_, f)| f.split_once("), create"))
        .unwrap_or_else(|| panic!("no drops in {fix}"))
        .0
        .to_owned();
    let command = fix
        .split('`')
        .nth(1)
        .unwrap_or_else(|| panic!("no command in {fix}"))
        .to_owned();
    (drops, command)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_new_snapshot_fix_works_as_printed_for_a_name_that_needs_quotes() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "fixquote").await;
    for sql in [
        "CREATE TABLE `Odd Tbl` (id BIGINT PRIMARY KEY, n INT)",
        "INSERT INTO `Odd Tbl` SELECT seq, seq FROM seq_1_to_10",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &[TABLE], dir.path()).await;
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 10);
    // A MODIFY the change table cannot take: the table is diverted, the fix printed.
    conn.query_drop("ALTER TABLE `Odd Tbl` MODIFY n VARCHAR(10)")
        .await
        .unwrap();
    conn.query_drop("UPDATE `Odd Tbl` SET n = 'x' WHERE id = 3")
        .await
        .unwrap();
    let out = follow_cmd(bin, &url, &[TABLE], (&emulator, &key), "2s")
        .output()
        .unwrap();
    assert!(!out.status.success(), "a diverted table exits non-zero");
    let verify = verify_changes(bin, &url, TABLE, &emulator, &key);
    let report = String::from_utf8_lossy(&verify.stdout).into_owned();
    let (drops, command) = fix_parts(&report);
    assert!(
        command.starts_with("table_replay ddl --changes"),
        "{command}"
    );

    // The drops as printed.
    let sql = sql_api(&emulator, &key);
    for statement in drops.split(';').filter(|s| !s.trim().is_empty()) {
        sql.query(statement.trim())
            .await
            .unwrap_or_else(|e| panic!("{statement:?} of the fix failed: {e:#}"));
    }
    // The command as printed, through a shell, with the source in its variable.
    let bin_dir = bin.parent().unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut shell = Command::new("sh");
    shell
        .args(["-c", &command])
        .env("PATH", path)
        .env("TABLE_REPLAY_SOURCE", &url);
    let out = at_destination(&mut shell, &emulator, &key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{command:?} of the fix failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let ddl = String::from_utf8(out.stdout).unwrap();
    for statement in sql_api_statements(&ddl) {
        sql.query(statement).await.unwrap();
    }
    // follow again: a new snapshot of the table as it is now.
    follow_until_idle(bin, &url, &[TABLE], &emulator, &key);
    assert_eq!(count_where(&emulator, CHANGES, "_OP = 'r'"), 10);
    assert_eq!(count_where(&emulator, CHANGES, "N = 'x'"), 1);
    emulator.shutdown().await;
}
