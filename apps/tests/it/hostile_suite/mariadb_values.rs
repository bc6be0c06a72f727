//! The value class of `hostile_mariadb_rows`, through the real `table_replay follow`:
//! text columns in character sets the seed picks (latin1, cp1251, latin2, koi8r, utf16,
//! utf16le, ucs2, utf32, utf8mb3, utf8mb4) holding random text of each set's hard characters
//! (`Ã©`, `€`, Cyrillic, characters past the BMP, NUL), before the snapshot and in the binlog
//! (inserts and updates); and column names that would share one change-table column (a
//! metadata column's name in a random case, `ß` against `ss`). Asserted: for the sets, exit 0,
//! peak RSS within the budget + 64 MB and `verify --changes` equal (every value as the source
//! holds it); for the names, `ddl --changes` and `follow` refuse the table, naming both.

use std::process::Command;

use mysql_async::prelude::Queryable as _;
use snowpipe_apps::table_replay::source;
use snowpipe_hostile::{check, run, Case, Input, Limits, Suite};

use crate::common;
use crate::common::table_replay::destination;
use crate::common::table_replay_follow::{assert_equal, changes_ddl, follow_cmd, verify_changes};

/// The value classes.
#[derive(Debug, Clone, Copy)]
pub(super) enum ValueClass {
    /// Text columns in many character sets.
    Charsets,
    /// Two source columns that are one change-table column.
    Names,
}

/// Each set with characters it holds (the hard ones for a decoder).
const SETS: [(&str, &str); 10] = [
    ("latin1", "aÃ©€ÿß\u{81}"),
    ("cp1251", "aЖщЁё№"),
    ("latin2", "ałŕčž"),
    ("koi8r", "aЖЯю"),
    ("utf16", "aé😀漢\u{0}"),
    ("utf16le", "aé😀漢"),
    ("ucs2", "aé漢Ж"),
    ("utf32", "aé😀\u{0}"),
    ("utf8mb3", "aé漢"),
    ("utf8mb4", "aé😀ẞ"),
];

/// Pairs of names that fold to one change-table column.
const COLLIDING: [(&str, &str); 5] = [
    ("xss", "xß"),
    ("strasse", "STRAßE"),
    ("id2", "_op"),
    ("id2", "_Binlog_File"),
    ("id2", "_commit_ts"),
];

fn text(rng: &mut snowpipe_hostile::Rng, alphabet: &str) -> String {
    let chars: Vec<char> = alphabet.chars().collect();
    let n = rng.below(12) as usize;
    (0..n)
        .map(|_| chars[rng.below(chars.len() as u64) as usize])
        .collect()
}

/// Every value class (module docs).
pub(super) async fn value_cases(url: &str, limits: &Limits) -> Vec<String> {
    let suite = Suite::from_env("mariadb_values", 2);
    let mut failures = Vec::new();
    for mut case in suite.cases(&[ValueClass::Charsets, ValueClass::Names]) {
        let name = format!("hv{}", case.index);
        let mut conn = source::connect(url).await.unwrap();
        let result = match case.class {
            ValueClass::Charsets => charsets(&mut case, url, &name, limits, &mut conn).await,
            ValueClass::Names => names(&mut case, url, &name, &mut conn).await,
        };
        failures.extend(result.err());
    }
    failures
}

async fn insert(
    conn: &mut mysql_async::Conn,
    name: &str,
    sets: &[(&str, &str)],
    rng: &mut snowpipe_hostile::Rng,
    keys: std::ops::Range<u32>,
) {
    for id in keys {
        let values: Vec<mysql_async::Value> = std::iter::once(id.into())
            .chain(sets.iter().map(|(_, a)| text(rng, a).into()))
            .collect();
        let marks = vec!["?"; values.len()].join(", ");
        conn.exec_drop(format!("INSERT INTO {name} VALUES ({marks})"), values)
            .await
            .unwrap();
    }
}

async fn charsets(
    case: &mut Case<ValueClass>,
    url: &str,
    name: &str,
    limits: &Limits,
    conn: &mut mysql_async::Conn,
) -> Result<(), String> {
    let sets: Vec<(&str, &str)> = (0..1 + case.rng.below(6))
        .map(|_| SETS[case.rng.below(SETS.len() as u64) as usize])
        .collect();
    let columns: Vec<String> = sets
        .iter()
        .enumerate()
        .map(|(i, (set, _))| format!(", c{i} VARCHAR(40) CHARACTER SET {set}"))
        .collect();
    conn.query_drop(format!(
        "CREATE TABLE {name} (id INT PRIMARY KEY{})",
        columns.concat()
    ))
    .await
    .unwrap();
    insert(conn, name, &sets, &mut case.rng, 1..40).await;
    let bin = common::bin::table_replay_bin();
    let dir = tempfile::tempdir().unwrap();
    let (emulator, key) = destination(changes_ddl(&bin, url, name, None), dir.path()).await;
    let first = follow_cmd(&bin, url, &[name], (&emulator, &key), "2s")
        .output()
        .unwrap();
    insert(conn, name, &sets, &mut case.rng, 40..80).await;
    for (i, (_, alphabet)) in sets.iter().enumerate() {
        conn.exec_drop(
            format!("UPDATE {name} SET c{i} = ? WHERE id % 3 = {}", i % 3),
            (text(&mut case.rng, alphabet),),
        )
        .await
        .unwrap();
    }
    let cmd = follow_cmd(&bin, url, &[name], (&emulator, &key), "2s");
    let o = tokio::task::spawn_blocking({
        let limits = *limits;
        move || run(cmd, Input::Null, &limits).expect("run table_replay follow")
    })
    .await
    .unwrap();
    eprintln!(
        "hostile mariadb_values case {} ({:?}, {sets:?}): CPU {:.2?}, peak RSS {} MiB",
        case.index,
        case.class,
        o.cpu,
        o.peak_rss_bytes >> 20
    );
    let verify = verify_changes(&bin, url, name, &emulator, &key);
    snowpipe_hostile::attempt(|| {
        if !first.status.success() {
            case.fail(format!(
                "the first follow failed: {}",
                String::from_utf8_lossy(&first.stderr)
            ));
        }
        check::exited_ok(case, &o);
        check::rss_within(case, &o, limits);
        assert_equal(&verify);
    })
}

async fn names(
    case: &mut Case<ValueClass>,
    url: &str,
    name: &str,
    conn: &mut mysql_async::Conn,
) -> Result<(), String> {
    let (a, b) = COLLIDING[case.rng.below(COLLIDING.len() as u64) as usize];
    conn.query_drop(format!(
        "CREATE TABLE {name} (id INT PRIMARY KEY, `{a}` INT, `{b}` INT)"
    ))
    .await
    .unwrap();
    conn.query_drop(format!("CREATE TABLE {name}_ok (id INT PRIMARY KEY)"))
        .await
        .unwrap();
    let bin = common::bin::table_replay_bin();
    let dir = tempfile::tempdir().unwrap();
    let ok = format!("{name}_ok");
    let (emulator, key) = destination(changes_ddl(&bin, url, &ok, None), dir.path()).await;
    let ddl = Command::new(&bin)
        .args(["ddl", "--changes", "--source", url, "--table", name])
        .output()
        .unwrap();
    let start = follow_cmd(&bin, url, &[name], (&emulator, &key), "2s")
        .output()
        .unwrap();
    // A metadata column is named by its change-table name; two source columns by theirs.
    let named = |err: &str| {
        let meta = b.starts_with('_');
        err.contains(b) && (meta || err.contains(a)) && err.contains("RENAME COLUMN")
    };
    snowpipe_hostile::attempt(|| {
        for (what, out) in [("ddl --changes", &ddl), ("follow", &start)] {
            let err = String::from_utf8_lossy(&out.stderr);
            if out.status.success() || !named(&err) {
                case.fail(format!(
                    "{what} with columns {a} and {b}: exit {:?}, no refusal naming both: {err}",
                    out.status.code()
                ));
            }
        }
    })
}
