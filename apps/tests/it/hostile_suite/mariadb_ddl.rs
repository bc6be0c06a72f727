//! The DDL class of `hostile_mariadb_rows`: shape changes a foreign writer makes while
//! `table_replay follow` is down, from the case's seed, then `follow` under the suite's
//! memory cap.
//!
//! * `Storm`: 60–120 steps of `ADD COLUMN` / `DROP COLUMN` over a pool of four names (each
//!   added again with the type it had, a spatial type and a decimal among them), with
//!   inserts and updates between, then an update of every row; asserted: exit 0, the change table grown by at most the pool, no
//!   change written twice, `verify --changes` equal.
//! * `TypeWhileDown`: `ADD COLUMN`s and widening `MODIFY`s (a longer `VARCHAR`, more
//!   digits, `INT` → `BIGINT`) in the seed's order, each followed by a change only the new
//!   type holds; asserted as `Storm`.
//! * `PastCap`: 20–40 new column names added and dropped, under a cap 8 columns over the
//!   change table's; asserted: a non-zero exit naming the diverted table and the cap, the
//!   change table within the cap.

use std::process::Command;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;
use snowpipe_hostile::{check, run, Case, Input, Limits, Rng, Suite};

use crate::common;
use crate::common::table_replay::{at_destination, destination};
use crate::common::table_replay_follow::{assert_equal, changes_ddl, follow_cmd};

/// The DDL classes.
#[derive(Debug, Clone, Copy)]
pub(super) enum DdlClass {
    Storm,
    TypeWhileDown,
    PastCap,
}

/// The pool of names a storm adds and drops, each with its one type and a value of it.
const POOL: [(&str, &str, &str); 4] = [
    ("a", "INT", "7"),
    ("b", "VARCHAR(30)", "'storm'"),
    ("g", "GEOMETRY", "POINT(1, 2)"),
    ("d", "DECIMAL(12,3)", "123456789.125"),
];

/// The statements of a `Storm` on table `t`.
fn storm(t: &str, rng: &mut Rng) -> Vec<String> {
    let mut present = [false; POOL.len()];
    let mut out = Vec::new();
    for step in 0..rng.range(60, 120) {
        let i = rng.below(POOL.len() as u64) as usize;
        let (name, ty, _) = POOL[i];
        out.push(if present[i] {
            format!("ALTER TABLE {t} DROP COLUMN {name}")
        } else {
            format!("ALTER TABLE {t} ADD COLUMN {name} {ty}")
        });
        present[i] = !present[i];
        // A change carrying the shape now.
        let (mut cols, mut vals) = (vec!["id".to_owned()], vec![(100 + step).to_string()]);
        for (j, (name, _, value)) in POOL.iter().enumerate() {
            if present[j] {
                cols.push((*name).to_owned());
                vals.push((*value).to_owned());
            }
        }
        out.push(format!(
            "INSERT INTO {t} ({}) VALUES ({})",
            cols.join(", "),
            vals.join(", ")
        ));
        if rng.below(3) == 0 {
            out.push(format!(
                "UPDATE {t} SET n = n + 1 WHERE id = {}",
                rng.range(1, 5)
            ));
        }
    }
    // A column dropped and added again is NULL in every row the binlog wrote no change of
    // since (an ALTER writes none): one change of every row shows the table as it is.
    out.push(format!("UPDATE {t} SET n = COALESCE(n, 0) + 1"));
    out
}

/// The statements of a `TypeWhileDown` on table `t`: each step, then a change only its
/// type holds.
fn type_changes(t: &str, rng: &mut Rng) -> Vec<String> {
    let mut steps: Vec<[String; 2]> = vec![
        [
            format!("ALTER TABLE {t} ADD COLUMN c INT"),
            format!("UPDATE {t} SET c = 5 WHERE id = 1"),
        ],
        [
            format!("ALTER TABLE {t} MODIFY note VARCHAR(300)"),
            format!("UPDATE {t} SET note = REPEAT('w', 250) WHERE id = 2"),
        ],
        [
            format!("ALTER TABLE {t} MODIFY n BIGINT"),
            format!("UPDATE {t} SET n = 9000000000 WHERE id = 3"),
        ],
        [
            format!("ALTER TABLE {t} MODIFY amount DECIMAL(16,2)"),
            format!("UPDATE {t} SET amount = 12345678901234.5 WHERE id = 4"),
        ],
        [
            format!("ALTER TABLE {t} ADD COLUMN p POINT"),
            format!("UPDATE {t} SET p = POINT(3, 4) WHERE id = 5"),
        ],
    ];
    for i in (1..steps.len()).rev() {
        steps.swap(i, rng.below(i as u64 + 1) as usize);
    }
    steps.into_iter().flatten().collect()
}

/// The statements of a `PastCap` on table `t`: new names, each added and dropped.
fn past_cap(t: &str, rng: &mut Rng) -> Vec<String> {
    (0..rng.range(20, 40))
        .flat_map(|i| {
            [
                format!("ALTER TABLE {t} ADD COLUMN x{i} INT"),
                format!("UPDATE {t} SET x{i} = {i} WHERE id = 1"),
                format!("ALTER TABLE {t} DROP COLUMN x{i}"),
            ]
        })
        .collect()
}

/// Every DDL class, each a table followed, changed while `follow` is down, followed again.
pub(super) async fn ddl_cases(url: &str, limits: &Limits) -> Vec<String> {
    let suite = Suite::from_env("mariadb_ddl", 3);
    let classes = [DdlClass::Storm, DdlClass::TypeWhileDown, DdlClass::PastCap];
    let mut failures = Vec::new();
    for mut case in suite.cases(&classes) {
        let name = format!("hd{}", case.index);
        let mut conn = source::connect(url).await.unwrap();
        for sql in [
            format!(
                "CREATE TABLE {name} (id BIGINT PRIMARY KEY, n INT, note VARCHAR(20), \
                 amount DECIMAL(12,2))"
            ),
            format!("INSERT INTO {name} SELECT seq, seq, 'n', seq FROM seq_1_to_5"),
        ] {
            conn.query_drop(sql).await.unwrap();
        }
        failures.extend(
            one_ddl_case(&mut case, url, &name, limits, &mut conn)
                .await
                .err(),
        );
    }
    failures
}

async fn one_ddl_case(
    case: &mut Case<DdlClass>,
    url: &str,
    name: &str,
    limits: &Limits,
    conn: &mut mysql_async::Conn,
) -> Result<(), String> {
    let bin = common::bin::table_replay_bin();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(changes_ddl(&bin, url, name, None), dir.path()).await;
    let changes = format!("\"REPLAY.PUBLIC.{}_CHANGES\"", name.to_uppercase());
    let width = || {
        emulator
            .query_with_columns(&format!("SELECT * FROM {changes} LIMIT 0"))
            .unwrap()
            .0
            .len()
    };
    let first = follow_cmd(&bin, url, &[name], (&emulator, &key), "2s")
        .output()
        .unwrap();
    if !first.status.success() {
        return Err(format!(
            "case {} ({:?}): the first follow failed: {}",
            case.index,
            case.class,
            String::from_utf8_lossy(&first.stderr)
        ));
    }
    let before = width();
    let cap = before + 8;
    let statements = match case.class {
        DdlClass::Storm => storm(name, &mut case.rng),
        DdlClass::TypeWhileDown => type_changes(name, &mut case.rng),
        DdlClass::PastCap => past_cap(name, &mut case.rng),
    };
    for sql in &statements {
        conn.query_drop(sql).await.unwrap();
    }
    let mut cmd = follow_cmd(&bin, url, &[name], (&emulator, &key), "2s");
    if matches!(case.class, DdlClass::PastCap) {
        cmd.args(["--max-change-columns", &cap.to_string()]);
    }
    let o = tokio::task::spawn_blocking({
        let limits = *limits;
        move || run(cmd, Input::Null, &limits).expect("run table_replay follow")
    })
    .await
    .unwrap();
    eprintln!(
        "hostile mariadb_ddl case {} ({:?}): {} statements, CPU {:.2?}, peak RSS {} MiB, \
         change table {before} → {} columns",
        case.index,
        case.class,
        statements.len(),
        o.cpu,
        o.peak_rss_bytes >> 20,
        width()
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
    let case = &*case;
    snowpipe_hostile::attempt(|| {
        check::rss_within(case, &o, limits);
        if matches!(case.class, DdlClass::PastCap) {
            check::refused_naming(
                case,
                &o,
                &[
                    &format!("{name}: diverted"),
                    &format!("--max-change-columns {cap}"),
                ],
            );
            if width() > cap {
                case.fail(format!(
                    "the change table has {} columns, past {cap}",
                    width()
                ));
            }
            return;
        }
        check::exited_ok(case, &o);
        if width() > before + POOL.len() {
            case.fail(format!(
                "the change table grew from {before} to {} columns over {} names",
                width(),
                POOL.len()
            ));
        }
        if !twice.is_empty() {
            case.fail(format!("binlog changes written twice: {twice:?}"));
        }
        assert_equal(&verify);
    })
}
