//! `table_replay ddl --changes` runs as pasted: against a private MariaDB (skipped without
//! `mariadbd`, except under `CI=true`), its whole output is the emulator's only DDL (no
//! database or schema made beforehand): every object qualified `REPLAY.PUBLIC.NAME`, the
//! database and schema created first, the current-state view (Snowflake's `QUALIFY`)
//! ignored with a notice naming it, and `follow` into the tables it made verifies equal.
#![cfg(unix)]

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay::destination_of;
use crate::common::table_replay_follow::{
    assert_equal, changes_ddl, count_where, follow_until_idle, new_database, start_binlog_or_skip,
    verify_changes,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_changes_ddl_runs_as_pasted_and_the_ignored_view_is_named() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE pasted (id BIGINT PRIMARY KEY, v VARCHAR(20))",
        "INSERT INTO pasted SELECT seq, CONCAT('v', seq) FROM seq_1_to_30",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let ddl = changes_ddl(bin, &url, "pasted", None);
    assert!(
        ddl.starts_with(
            "CREATE DATABASE IF NOT EXISTS REPLAY;\nCREATE SCHEMA IF NOT EXISTS REPLAY.PUBLIC;\n"
        ),
        "{ddl}"
    );
    assert!(
        ddl.contains("CREATE OR REPLACE VIEW REPLAY.PUBLIC.PASTED_CURRENT AS")
            && ddl.contains("FROM REPLAY.PUBLIC.PASTED_CHANGES\n"),
        "the view is not qualified like the tables:\n{ddl}"
    );
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination_of(vec![ddl], dir.path()).await;
    let notes = emulator.ddl_notes().to_vec();
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("ignored: CREATE OR REPLACE VIEW REPLAY.PUBLIC.PASTED_CURRENT"),
        "the notice does not name the view: {notes:?}"
    );

    follow_until_idle(bin, &url, &["pasted"], &emulator, &key);
    conn.query_drop("UPDATE pasted SET v = 'changed' WHERE id <= 5")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &["pasted"], &emulator, &key);
    let changes = "\"REPLAY.PUBLIC.PASTED_CHANGES\"";
    assert_eq!(count_where(&emulator, changes, "_OP = 'r'"), 30);
    assert_eq!(count_where(&emulator, changes, "_OP = 'u'"), 5);
    assert_equal(&verify_changes(bin, &url, "pasted", &emulator, &key));
    emulator.shutdown().await;
}
