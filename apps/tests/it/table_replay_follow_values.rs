//! `table_replay follow` lands values as the source holds them, against a private MariaDB with
//! its binlog on and `binlog_row_metadata=FULL` (skipped without `mariadbd`, except under
//! `CI=true`): text in latin1, cp1251, utf16, utf8mb3 and utf8mb4, written before the snapshot
//! and after it (the binlog), equals `CONVERT(col USING utf8mb4)` and `verify --changes`;
//! a set `follow` cannot decode (big5) is refused at `ddl --changes` and at the start by
//! table, column and set; an `ENUM`/`SET` relabelled while `follow` is down keeps the labels
//! of the rows written before it; source columns that would share one change-table column
//! (`_op` and the metadata column `_OP`, `xss` and `xß`) are refused at `ddl --changes`, at
//! the start and at an `ADD COLUMN`, naming both; MariaDB's `INET6` lands as the text
//! `SELECT` gives, from the snapshot and from the binlog's bytes alike.
#![cfg(unix)]

use std::process::Command;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;

use crate::common;
use crate::common::table_replay_follow::{
    assert_equal, change_destination, count_where, dead_letters, follow_cmd, follow_until_idle,
    new_database, start_binlog_or_skip, verify_changes,
};

/// The text each row holds, one value per column of `cs`: Latin-1 (`Ã©` is two characters),
/// the euro sign at latin1's 0x80, Cyrillic, characters past the BMP in UTF-16 and utf8mb4.
const ROWS: [[&str; 5]; 3] = [
    ["café", "ЖЖ", "AB", "ünï", "😀"],
    ["Ã©", "Жук", "é😀", "ẞ", "ẞ😀"],
    ["€ x", "", "日本", "ß", "a\u{0}b"],
];

fn insert(id: u32, row: &[&str; 5]) -> String {
    let q: Vec<String> = row
        .iter()
        .map(|v| format!("'{}'", v.replace('\0', "\\0")))
        .collect();
    format!("INSERT INTO cs VALUES ({id}, {})", q.join(", "))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn text_in_each_character_set_lands_as_the_source_holds_it() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    conn.query_drop(
        "CREATE TABLE cs (id INT PRIMARY KEY, l1 VARCHAR(20) CHARACTER SET latin1, \
         c1251 TEXT CHARACTER SET cp1251, u16 VARCHAR(20) CHARACTER SET utf16, \
         u8mb3 CHAR(5) CHARACTER SET utf8mb3, u8mb4 VARCHAR(20) CHARACTER SET utf8mb4)",
    )
    .await
    .unwrap();
    // Before the snapshot: read through the connection's utf8mb4.
    for (i, row) in ROWS.iter().enumerate() {
        conn.query_drop(insert(i as u32 + 1, row)).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["cs"], dir.path()).await;
    follow_until_idle(bin, &url, &["cs"], &emulator, &key);
    // After it: the binlog's bytes, in each column's set; an update moves one set's text.
    for (i, row) in ROWS.iter().enumerate() {
        conn.query_drop(insert(i as u32 + 11, row)).await.unwrap();
    }
    conn.query_drop("UPDATE cs SET l1 = 'naïve', c1251 = 'Щ' WHERE id = 1")
        .await
        .unwrap();
    follow_until_idle(bin, &url, &["cs"], &emulator, &key);
    assert_equal(&verify_changes(bin, &url, "cs", &emulator, &key));

    let source: Vec<mysql_async::Row> = conn
        .query(
            "SELECT id, CONVERT(l1 USING utf8mb4), CONVERT(c1251 USING utf8mb4), \
             CONVERT(u16 USING utf8mb4), CONVERT(u8mb3 USING utf8mb4), u8mb4 FROM cs ORDER BY id",
        )
        .await
        .unwrap();
    for row in source {
        let id: u32 = row.get(0).unwrap();
        let want: Vec<String> = (1..6).map(|i| row.get::<String, _>(i).unwrap()).collect();
        // The latest change of the row: the binlog's for 1 and 11..13, the snapshot's else.
        let got = emulator
            .query(&format!(
                "SELECT L1, C1251, U16, U8MB3, U8MB4 FROM \"REPLAY.PUBLIC.CS_CHANGES\" \
                 WHERE ID = {id} ORDER BY _BINLOG_FILE DESC, _BINLOG_POS DESC, _ROW DESC LIMIT 1"
            ))
            .unwrap();
        let got: Vec<String> = got[0]
            .iter()
            .map(|v| v.as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, want, "row {id}");
    }
    assert_eq!(
        count_where(
            &emulator,
            "\"REPLAY.PUBLIC.CS_CHANGES\"",
            "_OP = 'c' AND L1 = 'café' AND C1251 = 'ЖЖ' AND U16 = 'AB'"
        ),
        1
    );

    // A set follow cannot decode: refused by table, column and set, at ddl and at the start.
    conn.query_drop("CREATE TABLE b5 (id INT PRIMARY KEY, t VARCHAR(10) CHARACTER SET big5)")
        .await
        .unwrap();
    let ddl = Command::new(bin)
        .args(["ddl", "--changes", "--source", &url, "--table", "b5"])
        .output()
        .unwrap();
    let out = follow_cmd(bin, &url, &["b5"], (&emulator, &key), "2s")
        .output()
        .unwrap();
    for out in [ddl, out] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "big5 accepted:\n{err}");
        assert!(
            err.contains("table b5: column t is in the character set big5")
                && err.contains("CHARACTER SET utf8mb4"),
            "the refusal names no table, column, set or fix:\n{err}"
        );
    }
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enum_relabelled_while_follow_is_down_keeps_each_rows_labels() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE en (id INT PRIMARY KEY, e ENUM('a','b','c'), s SET('x','y','z'))",
        "INSERT INTO en VALUES (1, 'a', 'x')",
        "CREATE TABLE en2 (id INT PRIMARY KEY, e ENUM('a','b','c'))",
        "INSERT INTO en2 VALUES (1, 'a')",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["en", "en2"], dir.path()).await;
    follow_until_idle(bin, &url, &["en", "en2"], &emulator, &key);
    // follow is down: rows in the old labels, the reorder, rows in the new ones.
    for sql in [
        "INSERT INTO en VALUES (2, 'c', 'x,z'), (3, 'b', 'y')",
        "ALTER TABLE en MODIFY e ENUM('a','c','b'), MODIFY s SET('y','x','z')",
        "INSERT INTO en VALUES (4, 'c', 'z'), (5, 'b', 'x,y')",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    follow_until_idle(bin, &url, &["en"], &emulator, &key);
    let changes = emulator
        .query("SELECT ID, E, S FROM \"REPLAY.PUBLIC.EN_CHANGES\" WHERE _OP = 'c' ORDER BY ID")
        .unwrap();
    let got: Vec<(u64, String, String)> = changes
        .iter()
        .map(|r| {
            (
                r[0].as_u64().unwrap(),
                r[1].as_str().unwrap().to_owned(),
                r[2].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let row = |id, e: &str, s: &str| (id, e.to_owned(), s.to_owned());
    assert_eq!(
        got,
        vec![
            row(2, "c", "x,z"),
            row(3, "b", "y"),
            row(4, "c", "z"),
            row(5, "b", "y,x"),
        ]
    );
    assert_equal(&verify_changes(bin, &url, "en", &emulator, &key));

    // Without the labels in the binlog (binlog_row_metadata=MINIMAL), a relabel made while
    // follow is down after a change: that change is diverted, never relabelled.
    conn.query_drop("SET GLOBAL binlog_row_metadata = 'MINIMAL'")
        .await
        .unwrap();
    let mut conn = source::connect(&url).await.unwrap();
    conn.query_drop("INSERT INTO en2 VALUES (2, 'c')")
        .await
        .unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    for sql in [
        "ALTER TABLE en2 MODIFY e ENUM('a','c','b')",
        "INSERT INTO en2 VALUES (4, 'c')",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let out = follow_cmd(bin, &url, &["en2"], (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "follow exited 0:\n{err}");
    assert!(
        err.contains("en2: diverted")
            && err.contains("the ENUM/SET column(s) e of en2 at ")
            && err.contains("binlog_row_metadata is not FULL")
            && err.contains("table_replay ddl --changes"),
        "the exit names no column, cause or fix:\n{err}"
    );
    let changes = "\"REPLAY.PUBLIC.EN2_CHANGES\"";
    assert_eq!(count_where(&emulator, changes, "ID > 1"), 0);
    let dead = dead_letters(&emulator, "\"REPLAY.PUBLIC.EN2_DLQ\"", "en2");
    assert_eq!(
        dead.iter().map(|d| d.0).collect::<Vec<_>>(),
        vec![2, 4],
        "{dead:?}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_share_a_change_table_column_are_refused_naming_both() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    for sql in [
        "CREATE TABLE op (id INT PRIMARY KEY, `_op` VARCHAR(5))",
        "CREATE TABLE ss (id INT PRIMARY KEY, xss INT, `xß` INT)",
        "CREATE TABLE ok (id INT PRIMARY KEY, xss INT)",
        "INSERT INTO ok VALUES (1, 1)",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["ok"], dir.path()).await;
    let cases = [
        (
            "op",
            "source column _op would be the change table's metadata column _OP",
        ),
        (
            "ss",
            "source columns xss and xß would both be the change table's column XSS",
        ),
    ];
    for (table, says) in cases {
        let ddl = Command::new(bin)
            .args(["ddl", "--changes", "--source", &url, "--table", table])
            .output()
            .unwrap();
        let start = follow_cmd(bin, &url, &[table], (&emulator, &key), "2s")
            .output()
            .unwrap();
        for out in [ddl, start] {
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(!out.status.success(), "{table} accepted:\n{err}");
            assert!(
                err.contains(says) && err.contains("RENAME COLUMN"),
                "{table}: the refusal names no columns or fix:\n{err}"
            );
        }
    }
    follow_until_idle(bin, &url, &["ok"], &emulator, &key);
    // An ADD COLUMN that collides, met in the binlog while follow runs: it stops, naming the
    // statement and both columns, nothing of it written; the next start refuses the table.
    let changes = "\"REPLAY.PUBLIC.OK_CHANGES\"";
    conn.query_drop("INSERT INTO ok VALUES (2, 2)")
        .await
        .unwrap();
    let running = follow_cmd(bin, &url, &["ok"], (&emulator, &key), "4s")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let landed = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count_where(&emulator, changes, "ID = 2") == 0 {
        assert!(std::time::Instant::now() < landed, "row 2 never landed");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for sql in [
        "ALTER TABLE ok ADD COLUMN `xß` INT",
        "INSERT INTO ok VALUES (3, 3, 33)",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let out = running.wait_with_output().unwrap();
    let restart = follow_cmd(bin, &url, &["ok"], (&emulator, &key), "2s")
        .output()
        .unwrap();
    for (out, at) in [
        (out, "ALTER TABLE of followed table ok at "),
        (restart, "table ok: "),
    ] {
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            !out.status.success(),
            "the colliding ADD COLUMN was followed:\n{err}"
        );
        assert!(
            err.contains(at)
                && err.contains(
                    "source columns xss and xß would both be the change table's column XSS"
                ),
            "the stop names no statement or columns:\n{err}"
        );
    }
    assert_eq!(count_where(&emulator, changes, "ID = 2 AND XSS = 2"), 1);
    assert_eq!(count_where(&emulator, changes, "ID = 3"), 0);
    emulator.shutdown().await;
}

/// Addresses whose text the server writes its own way (a single zero group as `::`, IPv4
/// inside IPv6, trailing zero bytes the binlog drops), before the snapshot and after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inet6_lands_as_the_text_select_gives() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "cdc").await;
    conn.query_drop("CREATE TABLE ip (id INT PRIMARY KEY, a INET6, b INET6 NOT NULL)")
        .await
        .unwrap();
    let addresses = [
        "::",
        "::1",
        "::ffff:1.2.3.4",
        "::1.2.3.4",
        "1::2:3:4:5:6:7",
        "2001:db8::",
        "2001:db8:0:1::",
        "fe80::1:0:0:0",
        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
    ];
    let insert = |base: usize| -> Vec<String> {
        addresses
            .iter()
            .enumerate()
            .map(|(i, a)| format!("INSERT INTO ip VALUES ({}, '{a}', '{a}')", base + i))
            .collect()
    };
    for q in insert(1) {
        conn.query_drop(q).await.unwrap();
    }
    conn.query_drop("INSERT INTO ip VALUES (100, NULL, '::')")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(bin, &url, &["ip"], dir.path()).await;
    follow_until_idle(bin, &url, &["ip"], &emulator, &key);
    for q in insert(11) {
        conn.query_drop(q).await.unwrap();
    }
    conn.query_drop(
        "UPDATE ip SET a = '2001:db8::8a2e:370:7334', b = '::ffff:0.0.0.0' WHERE id = 1",
    )
    .await
    .unwrap();
    follow_until_idle(bin, &url, &["ip"], &emulator, &key);
    assert_equal(&verify_changes(bin, &url, "ip", &emulator, &key));
    let source: Vec<(u32, Option<String>, String)> = conn
        .query("SELECT id, a, b FROM ip ORDER BY id")
        .await
        .unwrap();
    for (id, a, b) in source {
        let got = emulator
            .query(&format!(
                "SELECT A, B FROM \"REPLAY.PUBLIC.IP_CHANGES\" WHERE ID = {id} \
                 ORDER BY _BINLOG_FILE DESC, _BINLOG_POS DESC, _ROW DESC LIMIT 1"
            ))
            .unwrap();
        let got_a = got[0][0].as_str().map(str::to_owned);
        let got_b = got[0][1].as_str().unwrap().to_owned();
        assert_eq!((got_a, got_b), (a, b), "row {id}");
    }
    assert!(
        dead_letters(&emulator, "\"REPLAY.PUBLIC.IP_DLQ\"", "ip").is_empty(),
        "no address is a dead letter"
    );
    emulator.shutdown().await;
}
