//! `table_replay follow` on tables whose key is not one integer column, against a private
//! MariaDB with its binlog on (skipped without `mariadbd`, except under `CI=true`): a
//! composite primary key, a text primary key (separators, quotes, multi-byte characters, a
//! collation whose order is not the bytes' order), a table without a primary key followed
//! by `--key`, a `BINARY(16)` key and a unique NOT NULL key. Each goes through the real
//! binary: a snapshot SIGKILLed once some of it is committed, inserts, updates (one changing
//! the key) and deletes during and after the snapshot, a restart that resumes after the
//! committed key, and `verify --changes` finds the source and the current state equal.
#![cfg(unix)]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable as _;
use snowpipe_emulator::Emulator;

use crate::common;
use crate::common::table_replay::{at_destination, destination};
use crate::common::table_replay_follow::{
    assert_equal, changes_ddl, count_where, follow_cmd, new_database, start_binlog_or_skip,
};

/// Rows per table: 300 snapshot pages of 100, so a kill after the first commit is inside it.
const ROWS: u64 = 30_000;

/// One table to follow: its DDL, how to fill it, the changes to make and its `--key`.
struct Case {
    table: &'static str,
    create: &'static str,
    fill: String,
    /// Run when the snapshot has begun (before the kill), then after the kill.
    during: Vec<String>,
    after: Vec<String>,
    key: Option<&'static str>,
    /// A change made behind follow's back: `verify --changes` must then differ.
    spoil: &'static str,
    /// What the start line says the key is.
    chosen: &'static str,
}

/// `ddl --changes` (with `--key`) into an emulator.
async fn changes_destination(
    bin: &Path,
    url: &str,
    case: &Case,
    dir: &Path,
) -> (Emulator, std::path::PathBuf) {
    let key = case.key.map(|k| k.split_once('=').unwrap().1);
    destination(changes_ddl(bin, url, case.table, key), dir).await
}

fn follow(bin: &Path, url: &str, case: &Case, dest: (&Emulator, &Path), idle: &str) -> Command {
    let mut cmd = follow_cmd(bin, url, &[case.table], dest, idle);
    if let Some(k) = case.key {
        cmd.args(["--key", k]);
    }
    cmd
}

/// Waits until `done`, polling every 5 ms, at most 60 s from `start`; `child` (its stderr in
/// `log`) must run meanwhile.
async fn wait_running(
    child: &mut Child,
    log: &Path,
    start: Instant,
    what: &str,
    mut done: impl FnMut() -> bool,
) {
    while !done() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "{}",
            std::fs::read_to_string(log).unwrap()
        );
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {what} in 60 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// The whole run for one case (see the module docs).
async fn run(case: Case) {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "keyed").await;
    conn.query_drop(case.create).await.unwrap();
    conn.query_drop(&case.fill).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = changes_destination(bin, &url, &case, dir.path()).await;
    let changes = format!("\"REPLAY.PUBLIC.{}_CHANGES\"", case.table.to_uppercase());

    // The first run: changes while it snapshots, SIGKILLed once some snapshot rows commit.
    let log = dir.path().join("first.log");
    let mut child = follow(bin, &url, &case, (&emulator, &key), "1h")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).unwrap())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let snapshot_begun = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .contains("snapshot at")
    };
    wait_running(&mut child, &log, start, "snapshot", snapshot_begun).await;
    for sql in &case.during {
        conn.query_drop(sql).await.unwrap();
    }
    let row_committed = || count_where(&emulator, &changes, "_OP = 'r'") > 0;
    wait_running(&mut child, &log, start, "snapshot row", row_committed).await;
    let _ = child.kill(); // SIGKILL
    let _ = child.wait();
    let first = std::fs::read_to_string(&log).unwrap();
    assert!(
        first.contains(&format!("rows by its {}", case.chosen)),
        "{first}"
    );
    // `--key` columns no index begins with: the start says what it costs.
    assert_eq!(
        first.contains("no index begins with the --key columns"),
        case.table == "events",
        "{first}"
    );
    let committed = count_where(&emulator, &changes, "_OP = 'r'");
    // Cut short where it counts: the committed token is inside the snapshot (the rows after
    // it may have been read and appended, not committed).
    assert!(
        committed < ROWS,
        "the kill missed the snapshot ({committed} rows committed):\n{first}"
    );
    for sql in &case.after {
        conn.query_drop(sql).await.unwrap();
    }

    // The restart resumes the snapshot after the committed key, then reads the binlog.
    let restarted = Instant::now();
    let out = follow(bin, &url, &case, (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "follow failed:\n{err}");
    assert!(err.contains("resuming after committed s:"), "{err}");
    eprintln!(
        "{}: {committed} of {ROWS} snapshot rows committed at the kill; the restart took \
         {:.1?} (2 s of it idle)",
        case.table,
        restarted.elapsed()
    );
    let binlog = count_where(&emulator, &changes, "_OP <> 'r'");
    assert!(binlog > 0, "no binlog change was written:\n{err}");

    let twice = emulator
        .query(&format!(
            "SELECT _BINLOG_FILE, _BINLOG_POS, _ROW, _OP, COUNT(*) FROM {changes} \
             WHERE _OP <> 'r' GROUP BY _BINLOG_FILE, _BINLOG_POS, _ROW, _OP HAVING COUNT(*) > 1"
        ))
        .unwrap();
    assert!(twice.is_empty(), "binlog changes written twice: {twice:?}");

    let verify = || {
        let mut verify = Command::new(bin);
        verify
            .args([
                "verify",
                "--changes",
                "--source",
                &url,
                "--table",
                case.table,
            ])
            .args(["--database", "REPLAY", "--schema", "PUBLIC"]);
        if let Some(k) = case.key {
            verify.args(["--key", k.split_once('=').unwrap().1]);
        }
        at_destination(&mut verify, &emulator, &key)
            .output()
            .unwrap()
    };
    assert_equal(&verify());
    // The comparison is by value: a row changed behind follow's back is a difference.
    conn.query_drop("SET sql_log_bin = 0").await.unwrap();
    conn.query_drop(case.spoil).await.unwrap();
    let out = verify();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        !out.status.success() && report.contains("Differences"),
        "{report}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_composite_primary_key_is_followed_through_a_kill_in_the_snapshot() {
    run(Case {
        table: "order_lines",
        spoil: "UPDATE order_lines SET qty = 424242 WHERE order_id = 700 AND line_no = 1",
        create: "CREATE TABLE order_lines (order_id INT NOT NULL, line_no SMALLINT NOT NULL, \
                 sku VARCHAR(20), qty INT, PRIMARY KEY (order_id, line_no))",
        fill: format!(
            "INSERT INTO order_lines SELECT seq DIV 4, seq % 4, CONCAT('sku', seq), seq \
             FROM seq_0_to_{}",
            ROWS - 1
        ),
        during: vec![
            "UPDATE order_lines SET qty = -1 WHERE order_id = 990".into(),
            "INSERT INTO order_lines VALUES (5, 9, 'late', 1), (999, 4, 'late', 2)".into(),
            "DELETE FROM order_lines WHERE order_id = 998 AND line_no = 1".into(),
        ],
        after: vec![
            // The key changes: the old key's row is deleted, the new one written.
            "UPDATE order_lines SET line_no = 7 WHERE order_id = 3 AND line_no = 2".into(),
            "DELETE FROM order_lines WHERE order_id = 600".into(),
            "INSERT INTO order_lines VALUES (600, 0, 'again', 3)".into(),
            "UPDATE order_lines SET sku = 'x' WHERE line_no = 3 AND order_id < 50".into(),
        ],
        key: None,
        chosen: "primary key (order_id, line_no)",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_key_with_separators_and_multibyte_characters_is_followed() {
    // utf8mb4_unicode_ci orders 'a' < 'B' < 'é' < 'Z' (the bytes: 'B' < 'Z' < 'a' < 'é'):
    // a resume compared in byte order would skip or repeat keys.
    run(Case {
        table: "tags",
        spoil: "UPDATE tags SET note = 'spoiled' WHERE n = 1235",
        create: "CREATE TABLE tags (tag VARCHAR(200) CHARACTER SET utf8mb4 \
                 COLLATE utf8mb4_unicode_ci NOT NULL PRIMARY KEY, n INT, note TEXT)",
        fill: format!(
            "INSERT INTO tags SELECT CONCAT(ELT(seq % 4 + 1, 'a', 'B', 'é', 'Z'), ':', seq, \
             ',\"''`\\\\;=漢🙂'), seq, CONCAT('n', seq) FROM seq_1_to_{ROWS}"
        ),
        during: vec![
            "UPDATE tags SET n = -n WHERE tag LIKE 'Z:3%'".into(),
            "INSERT INTO tags VALUES ('s:1:2:x', 1, 'colons'), ('é,é', 2, 'comma')".into(),
            "DELETE FROM tags WHERE tag LIKE 'B:1%'".into(),
        ],
        after: vec![
            "UPDATE tags SET tag = CONCAT('moved:', tag) WHERE tag LIKE 'a:2%'".into(),
            "INSERT INTO tags VALUES ('\\'', 3, 'a quote'), ('🙂', 4, 'emoji')".into(),
            "DELETE FROM tags WHERE tag LIKE 'é:1%'".into(),
        ],
        key: None,
        chosen: "primary key (tag)",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_a_primary_key_is_followed_by_key_columns() {
    run(Case {
        table: "events",
        spoil: "UPDATE events SET body = 'spoiled' WHERE seq = 1234",
        create: "CREATE TABLE events (src VARCHAR(10) NOT NULL, seq BIGINT NOT NULL, \
                 body VARCHAR(50), KEY (src))",
        fill: format!(
            "INSERT INTO events SELECT ELT(seq % 3 + 1, 'web', 'app', 'pos'), seq, \
             CONCAT('b', seq) FROM seq_1_to_{ROWS}"
        ),
        during: vec![
            "UPDATE events SET body = 'changed' WHERE seq % 97 = 0".into(),
            "INSERT INTO events VALUES ('web', 100000, 'late')".into(),
            "DELETE FROM events WHERE seq BETWEEN 3900 AND 3910".into(),
        ],
        after: vec![
            "UPDATE events SET src = 'moved' WHERE seq = 17".into(),
            "DELETE FROM events WHERE src = 'app' AND seq < 40".into(),
        ],
        key: Some("events=src,seq"),
        chosen: "--key (src, seq)",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_binary_key_is_followed() {
    run(Case {
        table: "uuids",
        spoil: "UPDATE uuids SET v = 0 WHERE v = 1234",
        create: "CREATE TABLE uuids (id BINARY(16) NOT NULL PRIMARY KEY, v INT)",
        fill: format!("INSERT INTO uuids SELECT UNHEX(MD5(seq)), seq FROM seq_1_to_{ROWS}"),
        during: vec![
            "UPDATE uuids SET v = -v WHERE v % 50 = 0".into(),
            "INSERT INTO uuids VALUES (UNHEX('00'), 1), (UNHEX('3a2c27'), 2)".into(),
        ],
        after: vec![
            "DELETE FROM uuids WHERE v % 77 = 0".into(),
            "UPDATE uuids SET id = UNHEX(MD5(-v)) WHERE v = 5".into(),
        ],
        key: None,
        chosen: "primary key (id)",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_char36_uuid_key_is_followed() {
    // UUID text as the default collation (utf8mb4, case-insensitive) orders it.
    let uuid =
        "LOWER(CONCAT_WS('-', LEFT(MD5(seq), 8), MID(MD5(seq), 9, 4), MID(MD5(seq), 13, 4), \
                MID(MD5(seq), 17, 4), RIGHT(MD5(seq), 12)))";
    run(Case {
        table: "accounts",
        spoil: "UPDATE accounts SET balance = -1 WHERE n = 1234",
        create: "CREATE TABLE accounts (id CHAR(36) NOT NULL PRIMARY KEY, n INT, \
                 balance DECIMAL(12,2))",
        fill: format!("INSERT INTO accounts SELECT {uuid}, seq, seq / 100 FROM seq_1_to_{ROWS}"),
        during: vec![
            "UPDATE accounts SET balance = balance + 1 WHERE n % 11 = 0".into(),
            "INSERT INTO accounts VALUES ('ffffffff-ffff-ffff-ffff-ffffffffffff', 0, 0)".into(),
        ],
        after: vec![
            "UPDATE accounts SET id = UPPER(id) WHERE n = 7".into(),
            "DELETE FROM accounts WHERE n % 13 = 0".into(),
        ],
        key: None,
        chosen: "primary key (id)",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_unique_not_null_key_stands_in_for_a_missing_primary_key() {
    run(Case {
        table: "people",
        spoil: "UPDATE people SET name = 'spoiled' WHERE id = 1234",
        create: "CREATE TABLE people (id INT NULL, email VARCHAR(60) NOT NULL, name TEXT, \
                 UNIQUE KEY a_id (id), UNIQUE KEY by_email (email))",
        fill: format!(
            "INSERT INTO people SELECT seq, CONCAT('p', seq, '@example.com'), CONCAT('n', seq) \
             FROM seq_1_to_{ROWS}"
        ),
        during: vec!["UPDATE people SET name = 'x' WHERE id % 10 = 0".into()],
        after: vec![
            "DELETE FROM people WHERE id % 9 = 0".into(),
            "UPDATE people SET email = 'new@example.com' WHERE id = 1".into(),
        ],
        key: None,
        // a_id comes first but is nullable: the NOT NULL one is taken.
        chosen: "unique key by_email (email)",
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_table_without_any_key_stops_follow_naming_the_flag() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "nokey").await;
    conn.query_drop("CREATE TABLE loose (a INT, b TEXT)")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(String::new(), dir.path()).await;
    let out = follow_cmd(bin, &url, &["loose"], (&emulator, &key), "2s")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(
        err.contains("table loose has no primary key and no unique key over NOT NULL columns")
            && err.contains("--key loose=COL[,COL…]"),
        "{err}"
    );
    emulator.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_of_a_text_keyed_table_name_the_key_and_verify_leaves_them_out() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let bin = &common::bin::table_replay_bin();
    let (url, mut conn) = new_database(&db, "deadkeys").await;
    conn.query_drop("SET SESSION sql_mode = 'ALLOW_INVALID_DATES'")
        .await
        .unwrap();
    for sql in [
        "CREATE TABLE notes (k VARCHAR(40) NOT NULL PRIMARY KEY, day DATE NULL)",
        "INSERT INTO notes SELECT CONCAT('n:', seq), '2024-02-29' FROM seq_1_to_300",
        "UPDATE notes SET day = '2024-02-30' WHERE k = 'n:150'",
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let case = Case {
        table: "notes",
        create: "",
        fill: String::new(),
        during: Vec::new(),
        after: Vec::new(),
        key: None,
        spoil: "",
        chosen: "",
    };
    let (emulator, key) = changes_destination(bin, &url, &case, dir.path()).await;
    let idle = |emulator: &Emulator| {
        let out = follow(bin, &url, &case, (emulator, &key), "2s")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    idle(&emulator);
    conn.query_drop("INSERT INTO notes VALUES ('z,\\'9', '2023-04-31')")
        .await
        .unwrap();
    idle(&emulator);
    let dead = emulator
        .query("SELECT SOURCE_KEY, REASON FROM \"REPLAY.PUBLIC.NOTES_DLQ\" ORDER BY REASON")
        .unwrap();
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().all(|d| d[0].as_u64() == Some(0)), "{dead:?}");
    assert!(
        dead[1][1]
            .as_str()
            .unwrap()
            .starts_with("snapshot key 'n:150' (r): column day"),
        "{dead:?}"
    );
    let mut verify = Command::new(bin);
    verify
        .args(["verify", "--changes", "--source", &url, "--table", "notes"])
        .args(["--database", "REPLAY", "--schema", "PUBLIC"]);
    let out = at_destination(&mut verify, &emulator, &key)
        .output()
        .unwrap();
    assert_equal(&out);
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(report.contains("but for 2 dead-lettered keys"), "{report}");
    emulator.shutdown().await;
}
