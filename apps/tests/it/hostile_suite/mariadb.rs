//! `hostile_mariadb_rows`: the test creates, in a private `mariadbd`, one source table per
//! case holding the hostile class's values between good rows (keys 1–3 and 7–9): LONGTEXT and
//! LONGBLOB of 16–24 MiB, a JSON column nested deep, DECIMAL(65,30) at its edges, many
//! columns, invalid UTF-8 in a latin1 and a binary column, zero dates `0000-00-00`, and a
//! column name with quotes, spaces and unicode (MariaDB refuses 4-byte characters in names); NULLs in every other column. The real
//! `table_replay ddl` declares the destination and the real `table_replay replay` copies it
//! under the suite's memory cap. Asserted: exit 0 (no crash), peak RSS within the budget +
//! 64 MB, every key exactly once in the table or its `_DLQ` (a row it cannot take is a named
//! bad row), every good key in the table. Then the key class (`mariadb_keys.rs`: a 3 KB text
//! key, keys of every separator and quote), the DDL class (`mariadb_ddl.rs`: storms of
//! `ADD`/`DROP COLUMN`, type changes while `follow` is down, a storm past
//! `--max-change-columns`) and the value class (`mariadb_values.rs`: text in many character
//! sets, colliding column names) through `table_replay follow`: the server runs with its
//! binlog on for them.

use std::process::Command;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;
use snowpipe_hostile::gen::Class;
use snowpipe_hostile::{check, run, Case, Input, Limits, Suite, MIB};

use crate::common;
use crate::common::table_replay::{at_destination, ddl_printed, destination};
use crate::common::table_replay_follow::start_binlog_or_skip;

/// The replay's memory: a batch of rows as MariaDB sends them, each as JSON, and the SDK's
/// request; with values of up to 24 MiB.
const BUDGET: u64 = 512 * MIB;

/// Good keys before and after the hostile row (key 5).
const GOOD: [u64; 6] = [1, 2, 3, 7, 8, 9];
const BAD_KEY: u64 = 5;

/// A case's table: its columns (after `id`), the good rows' values and the hostile row's.
struct Table {
    columns: String,
    good: String,
    hostile: String,
}

fn table(class: Class, rng: &mut snowpipe_hostile::Rng) -> Table {
    let plain = |columns: &str, good: &str, hostile: String| Table {
        columns: columns.into(),
        good: good.into(),
        hostile,
    };
    match class {
        Class::Size => {
            let mib = rng.range(16, 24) as usize;
            plain(
                "t LONGTEXT NULL, b LONGBLOB NULL",
                "'ok', NULL",
                format!(
                    "REPEAT('x', {}), REPEAT('y', {})",
                    mib << 20,
                    (mib << 20) / 2
                ),
            )
        }
        Class::Depth => {
            let depth = rng.range(200, 5_000);
            plain(
                "doc JSON NULL",
                "'{\"n\": 1}'",
                format!("CONCAT(REPEAT('[', {depth}), '1', REPEAT(']', {depth}))"),
            )
        }
        Class::Count => {
            let n = rng.range(200, 1_000) as usize;
            let columns: Vec<String> = (0..n).map(|i| format!("c{i} INT NULL")).collect();
            let good: Vec<String> = (0..n).map(|i| (i % 7).to_string()).collect();
            let bad: Vec<String> = (0..n)
                .map(|i| {
                    if i % 2 == 0 {
                        "NULL".into()
                    } else {
                        "2147483647".into()
                    }
                })
                .collect();
            Table {
                columns: columns.join(", "),
                good: good.join(", "),
                hostile: bad.join(", "),
            }
        }
        Class::Number => {
            let edge = [
                "99999999999999999999999999999999999.999999999999999999999999999999",
                "-99999999999999999999999999999999999.999999999999999999999999999999",
                "0.000000000000000000000000000001",
            ][rng.below(3) as usize];
            plain("d DECIMAL(65,30) NULL", "1.5", edge.to_string())
        }
        Class::Encoding => plain(
            "l VARCHAR(40) CHARACTER SET latin1 NULL, v VARBINARY(40) NULL",
            "'ok', 'ok'",
            "X'C3FF80', X'FFFE00C0AF'".into(),
        ),
        Class::Claim => plain(
            "born DATE NULL, seen DATETIME NULL",
            "'2024-02-29', '2024-01-31 23:59:59'",
            "'0000-00-00', '0000-00-00 00:00:00'".into(),
        ),
        Class::Reserved => plain(
            "`we\"ird ``col`` é` VARCHAR(20) NULL, `SELECT` INT NULL",
            "'ok', 1",
            "'ünï\"code', NULL".into(),
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mariadb_rows() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    let suite = Suite::from_env("mariadb_rows", Class::ALL.len());
    let limits = Limits::with_budget(BUDGET);
    let mut admin = source::connect(&format!("{}/mysql", db.server_url()))
        .await
        .unwrap();
    admin.query_drop("CREATE DATABASE hostile").await.unwrap();
    admin
        .query_drop("SET GLOBAL max_allowed_packet = 1073741824")
        .await
        .unwrap();
    let url = db.url("hostile");
    let mut failures = Vec::new();
    for mut case in suite.cases(&Class::ALL) {
        let name = format!("h{}", case.index);
        let t = table(case.class, &mut case.rng);
        let created = async {
            let mut conn = source::connect(&url).await?;
            conn.query_drop(
                "SET SESSION sql_mode = 'ALLOW_INVALID_DATES', check_constraint_checks = 0",
            )
            .await?;
            conn.query_drop(format!(
                "CREATE TABLE {name} (id BIGINT UNSIGNED PRIMARY KEY, {})",
                t.columns
            ))
            .await?;
            for k in GOOD {
                conn.query_drop(format!("INSERT INTO {name} VALUES ({k}, {})", t.good))
                    .await?;
            }
            conn.query_drop(format!(
                "INSERT INTO {name} VALUES ({BAD_KEY}, {})",
                t.hostile
            ))
            .await?;
            anyhow::Ok(())
        }
        .await;
        if let Err(e) = created {
            failures.push(format!(
                "case {} ({:?}): MariaDB refused the table: {e:#}",
                case.index, case.class
            ));
            continue;
        }
        failures.extend(one_case(&case, &url, &name, &limits).await.err());
    }
    failures.extend(super::mariadb_keys::key_cases(&url, &limits).await);
    failures.extend(super::mariadb_ddl::ddl_cases(&url, &limits).await);
    failures.extend(super::mariadb_values::value_cases(&url, &limits).await);
    suite.finish(failures);
}

/// `ddl` and `replay` of table `name`; every key checked.
async fn one_case(
    case: &Case<Class>,
    url: &str,
    name: &str,
    limits: &Limits,
) -> Result<(), String> {
    let bin = common::bin::table_replay_bin();
    let ddl = Command::new(&bin)
        .args(["ddl", "--table", name])
        .env("TABLE_REPLAY_SOURCE", url)
        .output()
        .unwrap();
    if !ddl.status.success() {
        return Err(format!(
            "case {} ({:?}): `table_replay ddl` failed: {}",
            case.index,
            case.class,
            String::from_utf8_lossy(&ddl.stderr)
        ));
    }
    let upper = name.to_uppercase();
    let ddl = ddl_printed(ddl, &format!("{upper}_DLQ_PIPE"));
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(ddl, dir.path()).await;
    let mut cmd = Command::new(&bin);
    cmd.args(["replay", "--table", name, "--batch", "200"])
        .args(["--database", "REPLAY", "--schema", "PUBLIC"])
        .env("TABLE_REPLAY_SOURCE", url);
    at_destination(&mut cmd, &emulator, &key);
    let o = tokio::task::spawn_blocking({
        let limits = *limits;
        move || run(cmd, Input::Null, &limits).expect("run table_replay replay")
    })
    .await
    .unwrap();
    eprintln!(
        "hostile mariadb_rows case {} ({:?}): CPU {:.2?}, peak RSS {} MiB",
        case.index,
        case.class,
        o.cpu,
        o.peak_rss_bytes >> 20
    );
    snowpipe_hostile::attempt(|| {
        check::exited_ok(case, &o);
        check::rss_within(case, &o, limits);
        let keys = |sql: String| -> Vec<u64> {
            emulator
                .query(&sql)
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
                .into_iter()
                .map(|r| r[0].as_u64().unwrap_or_default())
                .collect()
        };
        let rows = keys(format!("SELECT ID FROM \"REPLAY.PUBLIC.{upper}\""));
        let dead = keys(format!(
            "SELECT SOURCE_KEY FROM \"REPLAY.PUBLIC.{upper}_DLQ\""
        ));
        for k in GOOD.iter().chain([&BAD_KEY]) {
            let (r, d) = (
                rows.iter().filter(|x| *x == k).count(),
                dead.iter().filter(|x| *x == k).count(),
            );
            if r + d != 1 || (GOOD.contains(k) && r != 1) {
                case.fail(format!(
                    "key {k}: {r} row(s), {d} bad row(s) (rows {rows:?}, bad {dead:?})"
                ));
            }
        }
        if !dead.is_empty() {
            check::names(case, "the replay's log", &o.stderr_text(), "bad rows");
        }
    })
}
