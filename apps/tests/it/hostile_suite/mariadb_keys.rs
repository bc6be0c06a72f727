//! The key class of `hostile_mariadb_rows`: tables whose primary key a foreign writer filled
//! with what breaks a key's text, followed by the real `table_replay follow`: a text key of
//! 3,000 characters (past the 2,048 characters a token carries, `cdc/key.rs`), and keys made
//! of every separator and quote (`:`, `,`, quotes, backquote, backslash, `;`, `=`, `|`, `%`,
//! `_`, whitespace, NUL, `x` and hex-looking text, multi-byte characters). Each: a `follow`
//! SIGKILLed once a snapshot row is committed, an insert, an update, a key change and a
//! delete, then `follow` again under the suite's memory cap. Asserted: exit 0, peak RSS
//! within the budget + 64 MB, no binlog change written twice, and `verify --changes` equal
//! (every key once in the current state, every value equal).

use std::process::Command;
use std::time::Duration;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;
use snowpipe_hostile::{check, run, Case, Input, Limits, Suite};

use crate::common;
use crate::common::table_replay::{at_destination, destination};
use crate::common::table_replay_follow::{assert_equal, follow_cmd, kill_at_rows};

/// The key classes.
#[derive(Debug, Clone, Copy)]
pub(super) enum KeyClass {
    /// A 3,000-character text key: longer than a token carries.
    Long,
    /// Keys of every separator and quote.
    Separators,
}

const SEPARATORS: [&str; 22] = [
    ":", ",", "'", "\"", "`", "\\", ";", "=", "|", "%", "_", " ", "\t", "\n", "\0", "x", "x61",
    "s:f:1:2", "0x", "é", "漢", "🙂",
];

/// Creates table `name` of `class` on `conn`: its keys in an order the case's seed decides.
async fn create(
    conn: &mut mysql_async::Conn,
    name: &str,
    class: KeyClass,
    rng: &mut snowpipe_hostile::Rng,
) -> mysql_async::Result<()> {
    let (column, mut keys): (&str, Vec<String>) = match class {
        KeyClass::Long => (
            "VARCHAR(3000) CHARACTER SET ascii",
            (0..250)
                .map(|i| format!("{i:04}{}", "k".repeat(2_996)))
                .collect(),
        ),
        KeyClass::Separators => (
            "VARCHAR(64) CHARACTER SET utf8mb4 COLLATE utf8mb4_nopad_bin",
            SEPARATORS
                .iter()
                .flat_map(|s| [s.to_string(), format!("a{s}b"), s.repeat(3)])
                .collect::<std::collections::BTreeSet<_>>()
                .into_iter()
                .collect(),
        ),
    };
    for i in (1..keys.len()).rev() {
        keys.swap(i, rng.below(i as u64 + 1) as usize);
    }
    conn.query_drop(format!(
        "CREATE TABLE {name} (k {column} NOT NULL PRIMARY KEY, v INT)"
    ))
    .await?;
    for (i, k) in keys.iter().enumerate() {
        conn.exec_drop(format!("INSERT INTO {name} VALUES (?, ?)"), (k, i))
            .await?;
    }
    Ok(())
}

/// Every key class, each a table followed through a kill and a restart (module docs).
pub(super) async fn key_cases(url: &str, limits: &Limits) -> Vec<String> {
    let suite = Suite::from_env("mariadb_keys", 2);
    let mut failures = Vec::new();
    for mut case in suite.cases(&[KeyClass::Long, KeyClass::Separators]) {
        let name = format!("hk{}", case.index);
        let mut conn = source::connect(url).await.unwrap();
        if let Err(e) = create(&mut conn, &name, case.class, &mut case.rng).await {
            failures.push(format!(
                "case {} ({:?}): MariaDB refused the table: {e:#}",
                case.index, case.class
            ));
            continue;
        }
        failures.extend(
            one_key_case(&case, url, &name, limits, &mut conn)
                .await
                .err(),
        );
    }
    failures
}

async fn one_key_case(
    case: &Case<KeyClass>,
    url: &str,
    name: &str,
    limits: &Limits,
    conn: &mut mysql_async::Conn,
) -> Result<(), String> {
    let bin = common::bin::table_replay_bin();
    let ddl = Command::new(&bin)
        .args(["ddl", "--changes", "--source", url, "--table", name])
        .output()
        .unwrap();
    if !ddl.status.success() {
        return Err(format!(
            "case {} ({:?}): `table_replay ddl --changes` failed: {}",
            case.index,
            case.class,
            String::from_utf8_lossy(&ddl.stderr)
        ));
    }
    let text = String::from_utf8_lossy(&ddl.stdout).into_owned();
    let dir = tempfile::tempdir().unwrap();
    // The whole script, as pasted (the emulator ignores the view with a notice).
    let (emulator, key) = destination(text, dir.path()).await;
    let changes = format!("\"REPLAY.PUBLIC.{}_CHANGES\"", name.to_uppercase());
    // SIGKILLed after the first commit (or when it stops by itself: a refusal is this
    // case's answer too, checked below).
    let watched = follow_cmd(&bin, url, &[name], (&emulator, &key), "1h");
    let _ = kill_at_rows(watched, &emulator, (&changes, 1), Duration::from_secs(60)).await;
    let first: String = conn
        .query_first(format!("SELECT k FROM {name} ORDER BY k LIMIT 1"))
        .await
        .unwrap()
        .unwrap();
    for sql in [
        format!("UPDATE {name} SET v = v + 1000 WHERE v % 3 = 0"),
        format!("UPDATE {name} SET k = CONCAT(LEFT(k, 2990), ':,') WHERE v = 1"),
        format!("DELETE FROM {name} WHERE v % 5 = 0"),
    ] {
        conn.query_drop(sql).await.unwrap();
    }
    conn.exec_drop(
        format!("INSERT INTO {name} VALUES (CONCAT(?, '\\'\"'), 99999)"),
        (first.chars().take(40).collect::<String>(),),
    )
    .await
    .unwrap();
    let cmd = follow_cmd(&bin, url, &[name], (&emulator, &key), "2s");
    let o = tokio::task::spawn_blocking({
        let limits = *limits;
        move || run(cmd, Input::Null, &limits).expect("run table_replay follow")
    })
    .await
    .unwrap();
    eprintln!(
        "hostile mariadb_keys case {} ({:?}): CPU {:.2?}, peak RSS {} MiB",
        case.index,
        case.class,
        o.cpu,
        o.peak_rss_bytes >> 20
    );
    let verify = at_destination(
        Command::new(&bin)
            .args(["verify", "--changes", "--source", url, "--table", name])
            .args(["--database", "REPLAY", "--schema", "PUBLIC"]),
        &emulator,
        &key,
    )
    .output()
    .unwrap();
    let twice = emulator
        .query(&format!(
            "SELECT _BINLOG_POS, _ROW, _OP FROM {changes} WHERE _OP <> 'r' \
             GROUP BY _BINLOG_FILE, _BINLOG_POS, _ROW, _OP HAVING COUNT(*) > 1"
        ))
        .unwrap();
    snowpipe_hostile::attempt(|| {
        check::exited_ok(case, &o);
        check::rss_within(case, &o, limits);
        if !twice.is_empty() {
            case.fail(format!("binlog changes written twice: {twice:?}"));
        }
        assert_equal(&verify);
    })
}
