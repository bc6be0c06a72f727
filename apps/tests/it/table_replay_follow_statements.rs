//! `table_replay follow` through statements resolved as the server ran them, against a private
//! MariaDB with its binlog on (skipped without `mariadbd`, except under `CI=true`): another
//! database's table of the same name, reached from a session with no default database or
//! with another one, is left alone; comments, backquotes and qualification land a truncate
//! as one; a whole-table `TRUNCATE PARTITION ALL` is a truncate and partition reorganizations
//! keep the state equal; a statement that drops, replaces, renames or moves rows of a followed
//! table without rows events stops `follow` naming it, its position and a fix that keeps the
//! history; a child of a cascading foreign key is refused at start.
#![cfg(unix)]

use mysql_async::prelude::Queryable as _;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, binlog_position, change_destination, count_where, follow_cmd, follow_until_idle,
    new_database, start_binlog_or_skip, verify_changes, without_database,
};

const ORDERS: &str = "orders";
const ODD: &str = "my-orders";
const PARTS: &str = "parts";
const ORDERS_CHANGES: &str = "\"REPLAY.PUBLIC.ORDERS_CHANGES\"";
const ODD_CHANGES: &str = "\"REPLAY.PUBLIC.MY-ORDERS_CHANGES\"";
const PARTS_CHANGES: &str = "\"REPLAY.PUBLIC.PARTS_CHANGES\"";

const PARTITIONED: &str = "(id BIGINT PRIMARY KEY, v INT) PARTITION BY RANGE (id) \
     (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN (20), \
      PARTITION p2 VALUES LESS THAN MAXVALUE)";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_land_as_what_they_do_to_the_table_they_name() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut shop) = new_database(&db, "shop").await;
    let (_, mut att) = new_database(&db, "att").await;
    for sql in [
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, v INT)".to_owned(),
        "INSERT INTO orders SELECT seq, seq FROM seq_1_to_20".into(),
        "CREATE TABLE `my-orders` (id BIGINT PRIMARY KEY, v INT)".into(),
        "INSERT INTO `my-orders` SELECT seq, seq FROM seq_1_to_5".into(),
        format!("CREATE TABLE parts {PARTITIONED}"),
        "INSERT INTO parts SELECT seq, seq FROM seq_1_to_30".into(),
    ] {
        shop.query_drop(sql).await.unwrap();
    }
    for sql in [
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, v INT)",
        "INSERT INTO orders SELECT seq, seq FROM seq_1_to_10",
    ] {
        att.query_drop(sql).await.unwrap();
    }
    let tables = [ORDERS, ODD, PARTS];
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &tables, dir.path()).await;
    follow_until_idle(bin, &url, &tables, &emulator, &key);
    let equal = |t: &str| assert_equal(&verify_changes(bin, &url, t, &emulator, &key));

    // Another database's `orders`, from a session with no default database: left alone.
    let mut none = without_database(&db).await;
    for sql in [
        "TRUNCATE TABLE att.orders",
        "INSERT INTO att.orders VALUES (1, 1)",
        "DROP TABLE IF EXISTS att.orders",
        "CREATE OR REPLACE TABLE att.orders (id INT PRIMARY KEY)",
        "RENAME TABLE att.orders TO att.orders_old",
    ] {
        none.query_drop(sql).await.unwrap();
    }
    // …and from a session in `att`, by its bare name.
    for sql in [
        "CREATE TABLE orders (id INT PRIMARY KEY)",
        "/* maintenance */ TRUNCATE TABLE orders",
        "ALTER TABLE orders RENAME TO gone",
    ] {
        att.query_drop(sql).await.unwrap();
    }
    follow_until_idle(bin, &url, &tables, &emulator, &key);
    assert_eq!(count_where(&emulator, ORDERS_CHANGES, "_OP = 't'"), 0);
    equal(ORDERS);

    // shop.orders truncated from `att` (`USE att; TRUNCATE TABLE shop.orders`), then with a
    // comment kept in the binlog, from `shop`; rows after each.
    att.query_drop("TRUNCATE TABLE shop.orders").await.unwrap();
    shop.query_drop("INSERT INTO orders SELECT seq, seq * 2 FROM seq_1_to_8")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &tables, &emulator, &key);
    assert_eq!(count_where(&emulator, ORDERS_CHANGES, "_OP = 't'"), 1);
    equal(ORDERS);
    for sql in [
        "/* maintenance */ TRUNCATE TABLE orders",
        "INSERT INTO orders SELECT seq, seq * 3 FROM seq_1_to_4",
    ] {
        shop.query_drop(sql).await.unwrap();
    }
    none.query_drop("-- nightly\nTRUNCATE /* all */ `shop`.`my-orders`")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &tables, &emulator, &key);
    assert_eq!(count_where(&emulator, ORDERS_CHANGES, "_OP = 't'"), 2);
    assert_eq!(count_where(&emulator, ODD_CHANGES, "_OP = 't'"), 1);
    equal(ORDERS);
    equal(ODD);

    // Partitions: reorganized, coalesced, rebuilt, checked: the rows stay; all truncated: a
    // truncate row.
    for sql in [
        "ALTER TABLE parts REORGANIZE PARTITION p2 INTO \
         (PARTITION p2 VALUES LESS THAN (25), PARTITION p3 VALUES LESS THAN MAXVALUE)",
        "ALTER TABLE parts REBUILD PARTITION p0",
        "ALTER TABLE parts OPTIMIZE PARTITION p1",
        "ALTER TABLE parts ANALYZE PARTITION ALL",
        "ALTER TABLE parts REPAIR PARTITION p1",
        "ALTER TABLE parts CHECK PARTITION p1",
        "UPDATE parts SET v = -v WHERE id % 3 = 0",
    ] {
        shop.query_drop(sql).await.unwrap();
    }
    follow_until_idle(bin, &url, &tables, &emulator, &key);
    assert_eq!(count_where(&emulator, PARTS_CHANGES, "_OP = 't'"), 0);
    equal(PARTS);
    for sql in [
        "ALTER TABLE parts TRUNCATE PARTITION ALL",
        "INSERT INTO parts SELECT seq, seq FROM seq_5_to_15",
    ] {
        shop.query_drop(sql).await.unwrap();
    }
    follow_until_idle(bin, &url, &tables, &emulator, &key);
    assert_eq!(count_where(&emulator, PARTS_CHANGES, "_OP = 't'"), 1);
    equal(PARTS);
    emulator.shutdown().await;
}

/// Each statement on its own followed table: `(table, statement, verb)`.
const STOPS: [(&str, &str, &str); 7] = [
    (
        "pdrop",
        "ALTER TABLE pdrop DROP PARTITION p0",
        "ALTER TABLE … DROP PARTITION",
    ),
    (
        "ptrunc",
        "ALTER TABLE ptrunc TRUNCATE PARTITION p1",
        "ALTER TABLE … TRUNCATE PARTITION",
    ),
    (
        "pswap",
        "ALTER TABLE pswap EXCHANGE PARTITION p0 WITH TABLE swap",
        "ALTER TABLE … EXCHANGE PARTITION",
    ),
    (
        "cor",
        "CREATE OR REPLACE TABLE cor (id BIGINT PRIMARY KEY, v INT)",
        "CREATE OR REPLACE TABLE",
    ),
    (
        "ren",
        "/* swap */ RENAME TABLE ren TO ren_old, ren_new TO ren",
        "RENAME TABLE",
    ),
    (
        "dropped",
        "DROP TABLE IF EXISTS other, dropped",
        "DROP TABLE", // the server may rewrite the statement in the binlog
    ),
    (
        "alterren",
        "ALTER TABLE alterren RENAME TO alterren_old",
        "ALTER TABLE … RENAME",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statements_that_move_rows_unseen_stop_naming_them_and_a_fix_keeping_history() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "stops").await;
    for (table, _, _) in STOPS {
        let shape = if table.starts_with('p') {
            PARTITIONED
        } else {
            "(id BIGINT PRIMARY KEY, v INT)"
        };
        conn.query_drop(format!("CREATE TABLE {table} {shape}"))
            .await
            .unwrap();
        conn.query_drop(format!(
            "INSERT INTO {table} SELECT seq, seq FROM seq_1_to_30"
        ))
        .await
        .unwrap();
    }
    let tables: Vec<&str> = STOPS.iter().map(|s| s.0).collect();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &tables, dir.path()).await;
    follow_until_idle(bin, &url, &tables, &emulator, &key);
    for sql in [
        "CREATE TABLE swap (id BIGINT PRIMARY KEY, v INT)",
        "INSERT INTO swap VALUES (1, 100)",
        "CREATE TABLE ren_new (id BIGINT PRIMARY KEY, v INT)",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    for (_, sql, _) in STOPS {
        conn.query_drop(sql).await.unwrap();
    }
    // The tables that went away come back, so each `follow` starts and meets its statement.
    for sql in [
        "CREATE TABLE dropped (id BIGINT PRIMARY KEY, v INT)",
        "CREATE TABLE alterren (id BIGINT PRIMARY KEY, v INT)",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    for (table, sql, verb) in STOPS {
        let needle = if verb == "DROP TABLE" { verb } else { sql };
        let at = binlog_position(&mut conn, needle).await;
        let out = follow_cmd(bin, &url, &[table], (&emulator, &key), "2s")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{sql}: follow went on:\n{err}");
        for part in [
            format!("{verb} on followed table stops.{table} at {at} ("),
            "keeping the change table's history under another name: ALTER TABLE".into(),
            format!("table_replay ddl --changes --table {table}"),
        ] {
            assert!(err.contains(&part), "{sql}: {part:?} missing from:\n{err}");
        }
        let fix = &err[err.find("take a new snapshot").unwrap()..];
        let keeps = fix.find("RENAME TO").unwrap_or(usize::MAX);
        let drops = fix.find("DROP TABLE").unwrap_or(usize::MAX);
        assert!(keeps < drops, "{sql}: the fix drops history first:\n{err}");
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_child_of_a_cascading_foreign_key_is_refused_naming_it() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "fk").await;
    for sql in [
        "CREATE TABLE parent (id BIGINT PRIMARY KEY)",
        "CREATE TABLE child (id BIGINT PRIMARY KEY, p BIGINT, \
         CONSTRAINT child_parent FOREIGN KEY (p) REFERENCES parent (id) ON DELETE CASCADE)",
        "CREATE TABLE plain (id BIGINT PRIMARY KEY, p BIGINT, \
         CONSTRAINT plain_parent FOREIGN KEY (p) REFERENCES parent (id))",
        "INSERT INTO parent VALUES (1), (2)",
        "INSERT INTO child VALUES (10, 1), (20, 2)",
        "INSERT INTO plain VALUES (10, 1)",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let tables = ["parent", "child", "plain"];
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &tables, dir.path()).await;
    let out = follow_cmd(bin, &url, &tables, (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "a cascading child was followed:\n{err}"
    );
    for part in [
        "child is the child of foreign key child_parent (`p`) → fk.parent",
        "ON DELETE CASCADE",
        "ON DELETE RESTRICT",
        "table_replay replay",
    ] {
        assert!(err.contains(part), "{part:?} missing from:\n{err}");
    }
    assert_eq!(
        count_where(&emulator, "\"REPLAY.PUBLIC.PARENT_CHANGES\"", "1 = 1"),
        0
    );
    // A key without a cascade, and the parent, are followed.
    follow_until_idle(bin, &url, &["parent", "plain"], &emulator, &key);
    conn.query_drop("DELETE FROM plain").await.unwrap();
    conn.query_drop("DELETE FROM parent WHERE id = 1")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &["parent", "plain"], &emulator, &key);
    for t in ["parent", "plain"] {
        assert_equal(&verify_changes(bin, &url, t, &emulator, &key));
    }
    emulator.shutdown().await;
}
