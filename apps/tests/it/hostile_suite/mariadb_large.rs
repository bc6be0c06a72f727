//! `hostile_mariadb_large_values`: rows too large to send (issue 94), through the real
//! `table_replay follow`. Each case is a table with one hostile row inserted before the
//! snapshot (key 5, between good keys 1–3 and 7) and one after it (key 15, read from the
//! binlog, before good keys 16–18); its
//! class decides what the hostile rows carry, at sizes from the case's fixed seed:
//!
//! - `Text`: LONGTEXT of 1–16 MB, a 32-character alphabet (about 5/8 of its size
//!   compressed: up to about 6 MB it fits a request, past it not);
//! - `Control`: LONGTEXT of 1–12 MiB of control characters (6 bytes each as JSON: past
//!   about 10.7 MiB the row is past 64 MiB);
//! - `Binary`: LONGBLOB of 1–9 MiB of random bytes (hex in JSON; past 8 MiB a value
//!   Snowflake refuses);
//! - `Multibyte`: LONGTEXT of 1–16 MB of random 3-byte characters;
//! - `Wide`: 64–80 BLOB columns of 65,000 random bytes each (a row of 8–10 MB of hex that no
//!   codec makes 4 MB, whose dead letter must keep its raw values under a request).
//!
//! Asserted, without knowing the rule (the SDK decides what fits): exit 0 both runs, peak RSS
//! within the budget + 64 MB, every key exactly once in the change table or its `_DLQ`, every
//! good key in the change table, no binlog change written twice, a hostile row's dead letter
//! naming why, and `verify --changes` equal but for the dead-lettered keys.

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;
use snowpipe_hostile::{check, run, Case, Input, Limits, Rng, Suite, MIB};

use crate::common;
use crate::common::big_values::{allow_large_packets, value, Kind};
use crate::common::table_replay_follow::{
    assert_equal, assert_equal_but_dead, change_destination, follow_cmd, start_binlog_or_skip,
    verify_changes, written_twice,
};

/// `follow`'s memory: a 16 MB value as MariaDB sends it, as a binlog event, as JSON, and
/// compressed once to measure it.
const BUDGET: u64 = 512 * MIB;

const GOOD: [u64; 7] = [1, 2, 3, 7, 16, 17, 18];
const HOSTILE: [u64; 2] = [5, 15];

/// What a hostile row carries (module docs).
#[derive(Debug, Clone, Copy)]
enum Large {
    Text,
    Control,
    Binary,
    Multibyte,
    Wide,
}

impl Large {
    const ALL: [Large; 5] = [
        Large::Text,
        Large::Control,
        Large::Binary,
        Large::Multibyte,
        Large::Wide,
    ];

    /// The table's columns after `id`.
    fn columns(self) -> String {
        match self {
            Large::Binary => "b LONGBLOB NULL".into(),
            Large::Wide => (0..80)
                .map(|i| format!("c{i} BLOB NULL"))
                .collect::<Vec<_>>()
                .join(", "),
            _ => "t LONGTEXT NULL".into(),
        }
    }

    /// The hostile row's values, one per column (NULL where there is none).
    fn values(self, rng: &mut Rng) -> Vec<mysql_async::Value> {
        let mb =
            |rng: &mut Rng, lo: u64, hi: u64| rng.range(lo * 1_000_000, hi * 1_000_000) as usize;
        let seed = rng.next_u64();
        match self {
            Large::Text => vec![value(Kind::Text, mb(rng, 1, 16), seed).into()],
            Large::Control => {
                let n = rng.range(MIB, 12 * MIB) as usize;
                vec![value(Kind::Control, n, seed).into()]
            }
            Large::Binary => {
                let n = rng.range(MIB, 9 * MIB) as usize;
                vec![rng.bytes(n).into()]
            }
            Large::Multibyte => {
                let chars = mb(rng, 1, 16) / 3;
                let s: String = (0..chars)
                    .map(|_| char::from_u32(0x4E00 + rng.below(0x5000) as u32).unwrap_or('漢'))
                    .collect();
                vec![s.into()]
            }
            Large::Wide => {
                let n = rng.range(64, 80) as usize;
                (0..80)
                    .map(|i| {
                        if i < n {
                            rng.bytes(65_000).into()
                        } else {
                            mysql_async::Value::NULL
                        }
                    })
                    .collect()
            }
        }
    }

    fn width(self) -> usize {
        if matches!(self, Large::Wide) {
            80
        } else {
            1
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_mariadb_large_values() {
    let Some(db) = start_binlog_or_skip() else {
        return;
    };
    allow_large_packets(&db.server_url()).await;
    let suite = Suite::from_env("mariadb_large", Large::ALL.len());
    let limits = Limits::with_budget(BUDGET);
    let mut admin = source::connect(&format!("{}/mysql", db.server_url()))
        .await
        .unwrap();
    admin.query_drop("CREATE DATABASE large").await.unwrap();
    let url = db.url("large");
    let mut failures = Vec::new();
    for mut case in suite.cases(&Large::ALL) {
        failures.extend(one_case(&mut case, &url, &limits).await.err());
    }
    suite.finish(failures);
}

/// Inserts row `k` of `name`: `values`, or good ones.
async fn insert(
    conn: &mut mysql_async::Conn,
    name: &str,
    k: u64,
    values: Vec<mysql_async::Value>,
) -> mysql_async::Result<()> {
    let marks = vec!["?"; values.len()].join(", ");
    let mut params = vec![mysql_async::Value::from(k)];
    params.extend(values);
    conn.exec_drop(format!("INSERT INTO {name} VALUES (?, {marks})"), params)
        .await
}

/// One case: the table, `follow` before and after the binlog's hostile row, the checks.
async fn one_case(case: &mut Case<Large>, url: &str, limits: &Limits) -> Result<(), String> {
    let name = format!("hl{}", case.index);
    let class = case.class;
    let good = || vec![mysql_async::Value::from("ok"); class.width()];
    let mut conn = source::connect(url).await.unwrap();
    conn.query_drop(format!(
        "CREATE TABLE {name} (id BIGINT UNSIGNED PRIMARY KEY, {})",
        class.columns()
    ))
    .await
    .unwrap();
    for k in [1, 2, 3] {
        insert(&mut conn, &name, k, good()).await.unwrap();
    }
    let hostile = class.values(&mut case.rng);
    insert(&mut conn, &name, HOSTILE[0], hostile).await.unwrap();
    insert(&mut conn, &name, 7, good()).await.unwrap();
    let bin = common::bin::table_replay_bin();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = change_destination(&bin, url, &[&name], dir.path()).await;
    let follow = |limits: Limits| {
        let cmd = follow_cmd(&bin, url, &[&name], (&emulator, &key), "2s");
        tokio::task::spawn_blocking(move || {
            run(cmd, Input::Null, &limits).expect("run table_replay follow")
        })
    };
    let snapshot = follow(*limits).await.unwrap();
    let hostile = class.values(&mut case.rng);
    insert(&mut conn, &name, HOSTILE[1], hostile).await.unwrap();
    for k in [16, 17, 18] {
        insert(&mut conn, &name, k, good()).await.unwrap();
    }
    let binlog = follow(*limits).await.unwrap();
    for (what, o) in [("snapshot", &snapshot), ("binlog", &binlog)] {
        eprintln!(
            "hostile mariadb_large case {} ({class:?}) {what}: CPU {:.2?}, peak RSS {} MiB",
            case.index,
            o.cpu,
            o.peak_rss_bytes >> 20
        );
    }
    let upper = name.to_uppercase();
    let keys = |sql: String| -> Vec<(u64, String)> {
        emulator
            .query(&sql)
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .into_iter()
            .map(|r| {
                let text = r.get(1).and_then(|v| v.as_str()).unwrap_or_default();
                (r[0].as_u64().unwrap_or_default(), text.to_owned())
            })
            .collect()
    };
    let rows = keys(format!(
        "SELECT ID, _OP FROM \"REPLAY.PUBLIC.{upper}_CHANGES\""
    ));
    let dead = keys(format!(
        "SELECT SOURCE_KEY, REASON FROM \"REPLAY.PUBLIC.{upper}_DLQ\""
    ));
    let twice = written_twice(&emulator, &format!("\"REPLAY.PUBLIC.{upper}_CHANGES\""));
    let result = snowpipe_hostile::attempt(|| {
        if !twice.is_empty() {
            case.fail(format!("binlog changes written twice: {twice:?}"));
        }
        for o in [&snapshot, &binlog] {
            check::exited_ok(case, o);
            check::rss_within(case, o, limits);
        }
        for k in GOOD.iter().chain(&HOSTILE) {
            let r = rows.iter().filter(|x| x.0 == *k).count();
            let d = dead.iter().filter(|x| x.0 == *k).count();
            if r + d != 1 || (GOOD.contains(k) && r != 1) {
                case.fail(format!(
                    "key {k}: {r} change(s), {d} dead letter(s) (changes {rows:?}, dead {dead:?})"
                ));
            }
        }
        for (k, reason) in &dead {
            let named =
                reason.contains("row too large to send: column ") || reason.contains("longer than");
            if !named {
                case.fail(format!("key {k}: the dead letter names no cause: {reason}"));
            }
        }
        if dead.is_empty() {
            assert_equal(&verify_changes(&bin, url, &name, &emulator, &key));
        } else {
            assert_equal_but_dead(&bin, url, &name, (&emulator, &key), dead.len());
        }
    });
    emulator.shutdown().await;
    result
}
