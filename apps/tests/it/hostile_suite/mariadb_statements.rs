//! `hostile_mariadb_statements`: statements a foreign writer runs while the real
//! `table_replay follow` follows table `t` of database `hsN` in a private `mariadbd` (binlog
//! on), each case's statements drawn from its seed:
//! - other databases and sessions: `TRUNCATE`, `DROP`, `CREATE OR REPLACE`, `RENAME` and
//!   partition verbs on `hoN.t` (the same name in another database), from a session with no
//!   default database, from one in `hoN`, and from one in `hsN` naming `hoN.t`;
//! - comments and quoting: `TRUNCATE`s of `hsN.t` spelled with `/* */`, `-- `, `#`,
//!   `/*! */` and `/*M! */` comments, backquotes, keywords in any case, qualified or not, from
//!   any session;
//! - every partition verb on `hsN.t` (partitioned by range): the ones that keep the rows
//!   (`REORGANIZE`, `REBUILD`, `OPTIMIZE`, `ANALYZE`, `CHECK`, `REPAIR`, `ADD`), `TRUNCATE
//!   PARTITION ALL`, then one that removes or swaps rows (`DROP`, `TRUNCATE p`, `EXCHANGE`,
//!   `CONVERT`).
//!
//! DML on `hsN.t` between them. Asserted: up to the last statement, exit 0, peak RSS within the
//! budget + 64 MB, `verify --changes` equal, and exactly one truncate row per statement that
//! empties `hsN.t`; a statement that removes or swaps rows: a non-zero exit naming it and the
//! fix that keeps the change table's history.

use std::process::Command;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;
use snowpipe_hostile::{check, run, Case, Input, Limits, Rng, Suite};

use crate::common;
use crate::common::table_replay::{at_destination, destination};
use crate::common::table_replay_follow::{
    assert_equal, changes_ddl, count_where, follow_cmd, start_binlog_or_skip, without_database,
};

/// The statement classes.
#[derive(Debug, Clone, Copy)]
enum StmtClass {
    OtherDatabase,
    Spelling,
    Partitions,
}

const SHAPE: &str = "(id BIGINT PRIMARY KEY, v INT) PARTITION BY RANGE (id) \
     (PARTITION p0 VALUES LESS THAN (100), PARTITION p1 VALUES LESS THAN (200), \
      PARTITION p2 VALUES LESS THAN MAXVALUE)";

/// Which session runs a statement: none selected, the other database, the followed one.
#[derive(Debug, Clone, Copy)]
enum Session {
    NoDatabase,
    Other,
    Own,
}

/// A `TRUNCATE` of `db.t` spelled as the seed says, for a session in `at` (`None`: no
/// default database, so the name is qualified).
fn truncate_spelled(rng: &mut Rng, db: &str, at: Option<&str>) -> String {
    let case = |rng: &mut Rng, w: &str| -> String {
        w.chars()
            .map(|c| {
                if rng.one_in(2) {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect()
    };
    let name = {
        let t = *rng.pick(&["t", "`t`"]);
        let q = if rng.one_in(2) {
            format!("`{db}`")
        } else {
            db.to_owned()
        };
        if at == Some(db) && rng.one_in(2) {
            t.to_owned()
        } else {
            format!("{q}{}{t}", rng.pick(&[".", " . "]))
        }
    };
    let table_kw = if rng.one_in(2) {
        format!("{} ", case(rng, "TABLE"))
    } else {
        String::new()
    };
    let body = format!("{} {table_kw}{name}", case(rng, "TRUNCATE"));
    match rng.below(7) {
        0 => format!("/* maintenance */ {body}"),
        1 => format!("-- nightly\n{body}"),
        2 => format!("# nightly\n{body}"),
        3 => format!("/*!40000 {body} */"),
        4 => format!("/*M!100100 {body} */"),
        5 => format!("{body} /* done; TRUNCATE TABLE x.y */"),
        _ => body,
    }
}

/// The case's statements on the other database's `t`: none of them touches `hsN.t`. Each
/// after a `CREATE OR REPLACE` of that `t` (itself one of them), so each finds it whole.
fn other_database(rng: &mut Rng, other: &str) -> Vec<(Session, String)> {
    let mut out = Vec::new();
    for i in 0..rng.range(6, 12) {
        out.push((
            Session::NoDatabase,
            format!("CREATE OR REPLACE TABLE `{other}`.t {SHAPE}"),
        ));
        let session = *rng.pick(&[Session::NoDatabase, Session::Other, Session::Own]);
        let name = match session {
            Session::Other if rng.one_in(2) => "t".to_owned(),
            _ => format!("`{other}`.t"),
        };
        let sql = match rng.below(8) {
            0 => truncate_spelled(rng, other, None),
            1 => format!("DROP TABLE IF EXISTS {name}"),
            2 => format!("/* swap */ RENAME TABLE {name} TO {other}.old{i}"),
            3 => format!("ALTER TABLE {name} TRUNCATE PARTITION ALL"),
            4 => format!("ALTER TABLE {name} DROP PARTITION p1"),
            5 => format!("ALTER TABLE {name} EXCHANGE PARTITION p0 WITH TABLE {other}.x{i}"),
            6 => format!("ALTER TABLE {name} RENAME TO {other}.moved{i}"),
            _ => format!("INSERT INTO {name} VALUES (1, 1)"),
        };
        if sql.contains("EXCHANGE") {
            out.push((
                Session::NoDatabase,
                format!("CREATE TABLE {other}.x{i} (id BIGINT PRIMARY KEY, v INT)"),
            ));
        }
        out.push((session, sql));
    }
    out
}

/// Reorganizes `hsN.t`'s last partition in two: the rows stay (once a case).
const REORGANIZE: &str = "ALTER TABLE t REORGANIZE PARTITION p2 INTO \
     (PARTITION p2 VALUES LESS THAN (300), PARTITION p3 VALUES LESS THAN MAXVALUE)";

/// A partition statement that keeps the rows.
fn keeping(rng: &mut Rng) -> String {
    rng.pick(&[
        "ALTER TABLE t REBUILD PARTITION p0",
        "ALTER TABLE t OPTIMIZE PARTITION p1",
        "ALTER TABLE t ANALYZE PARTITION ALL",
        "ALTER TABLE t CHECK PARTITION p0",
        "ALTER TABLE t REPAIR PARTITION p1",
    ])
    .to_string()
}

/// Removes or swaps rows: the statement and the verb the error names.
const LOSING: [(&str, &str); 4] = [
    (
        "ALTER TABLE t DROP PARTITION p0",
        "ALTER TABLE … DROP PARTITION",
    ),
    (
        "ALTER TABLE t TRUNCATE PARTITION p1",
        "ALTER TABLE … TRUNCATE PARTITION",
    ),
    (
        "ALTER TABLE t EXCHANGE PARTITION p0 WITH TABLE swap",
        "ALTER TABLE … EXCHANGE PARTITION",
    ),
    (
        "ALTER TABLE t CONVERT PARTITION p0 TO TABLE conv",
        "ALTER TABLE … CONVERT PARTITION",
    ),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mariadb_statements() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let classes = [
        StmtClass::OtherDatabase,
        StmtClass::Spelling,
        StmtClass::Partitions,
    ];
    let suite = Suite::from_env("mariadb_statements", classes.len());
    let limits = Limits::with_budget(512 * snowpipe_hostile::MIB);
    let mut failures = Vec::new();
    for mut case in suite.cases(&classes) {
        failures.extend(one_case(&db, &mut case, &limits).await.err());
    }
    suite.finish(failures);
}

async fn one_case(
    db: &snowpipe_apps::table_replay::mariadb::MariaDb,
    case: &mut Case<StmtClass>,
    limits: &Limits,
) -> Result<(), String> {
    let (own, other) = (format!("hs{}", case.index), format!("ho{}", case.index));
    let mut none = without_database(db).await;
    for d in [&own, &other] {
        none.query_drop(format!("CREATE DATABASE {d}"))
            .await
            .unwrap();
    }
    let url = db.url(&own);
    let mut mine = source::connect(&url).await.unwrap();
    let mut theirs = source::connect(&db.url(&other)).await.unwrap();
    for sql in [
        format!("CREATE TABLE t {SHAPE}"),
        "INSERT INTO t SELECT seq, seq FROM seq_1_to_250".into(),
        "CREATE TABLE swap (id BIGINT PRIMARY KEY, v INT)".into(),
        "INSERT INTO swap VALUES (5, 500)".into(),
    ] {
        mine.query_drop(sql).await.unwrap();
    }
    let bin = common::bin::table_replay_bin();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(changes_ddl(&bin, &url, "t", None), dir.path()).await;
    let changes = "\"REPLAY.PUBLIC.T_CHANGES\"";
    let follow = |limits: &Limits| {
        let cmd = follow_cmd(&bin, &url, &["t"], (&emulator, &key), "2s");
        let limits = *limits;
        move || run(cmd, Input::Null, &limits).expect("run table_replay follow")
    };
    let first = tokio::task::spawn_blocking(follow(limits)).await.unwrap();

    // The statements, with DML on hsN.t between them.
    let rng = &mut case.rng;
    let mut statements: Vec<(Session, String)> = Vec::new();
    let mut truncates = 0;
    match case.class {
        StmtClass::OtherDatabase => statements.extend(other_database(rng, &other)),
        StmtClass::Spelling => {
            for _ in 0..rng.range(3, 8) {
                let session = *rng.pick(&[Session::NoDatabase, Session::Other, Session::Own]);
                let at = match session {
                    Session::NoDatabase => None,
                    Session::Other => Some(other.as_str()),
                    Session::Own => Some(own.as_str()),
                };
                statements.push((session, truncate_spelled(rng, &own, at)));
                truncates += 1;
                let from = rng.range(1, 400);
                statements.push((
                    Session::Own,
                    format!(
                        "INSERT INTO t SELECT seq, seq FROM seq_{from}_to_{}",
                        from + 20
                    ),
                ));
            }
        }
        StmtClass::Partitions => {
            if rng.one_in(2) {
                statements.push((Session::Own, REORGANIZE.into()));
            }
            for _ in 0..rng.range(2, 6) {
                statements.push((Session::Own, keeping(rng)));
                statements.push((
                    Session::Own,
                    "UPDATE t SET v = v + 1 WHERE id % 7 = 0".into(),
                ));
            }
            if rng.one_in(2) {
                statements.push((Session::Own, "ALTER TABLE t TRUNCATE PARTITION ALL".into()));
                statements.push((
                    Session::Own,
                    "INSERT INTO t SELECT seq, seq FROM seq_1_to_50".into(),
                ));
                truncates += 1;
            }
        }
    }
    statements.push((Session::Own, "DELETE FROM t WHERE id % 11 = 0".into()));
    for (session, sql) in &statements {
        let conn = match session {
            Session::NoDatabase => &mut none,
            Session::Other => &mut theirs,
            Session::Own => &mut mine,
        };
        if let Err(e) = conn.query_drop(sql).await {
            return Err(format!("{}\nMariaDB refused {sql:?}: {e}", case.context()));
        }
    }
    let second = tokio::task::spawn_blocking(follow(limits)).await.unwrap();
    let verify = at_destination(
        Command::new(&bin)
            .args(["verify", "--changes", "--source", &url, "--table", "t"])
            .args(["--database", "REPLAY", "--schema", "PUBLIC"]),
        &emulator,
        &key,
    )
    .output()
    .unwrap();
    let truncated = count_where(&emulator, changes, "_OP = 't'");
    let outcome = snowpipe_hostile::attempt(|| {
        for o in [&first, &second] {
            check::exited_ok(case, o);
            check::rss_within(case, o, limits);
        }
        assert_equal(&verify);
        if truncated != truncates {
            case.fail(format!(
                "{truncated} truncate rows for {truncates} truncates: {statements:?}"
            ));
        }
    });
    if outcome.is_err() || !matches!(case.class, StmtClass::Partitions) {
        return outcome;
    }
    // Last, a verb that removes or swaps rows: follow stops naming it.
    let (sql, verb) = *case.rng.pick(&LOSING);
    if let Err(e) = mine.query_drop(sql).await {
        return Err(format!("{}\nMariaDB refused {sql:?}: {e}", case.context()));
    }
    let third = tokio::task::spawn_blocking(follow(limits)).await.unwrap();
    snowpipe_hostile::attempt(|| {
        check::refused_naming(
            case,
            &third,
            &[
                verb,
                "on followed table",
                "keeping the change table's history",
            ],
        );
    })
}
