//! The sample table of the default run and the tests: every mapped type, edge values in the
//! first rows, then deterministic generated rows with sparse keys and NULLs in every column.

use anyhow::Result;
use mysql_async::prelude::*;
use mysql_async::Conn;

/// The sample table's name.
pub const TABLE: &str = "replay_sample";

/// Every type the replay maps.
pub const CREATE: &str = "CREATE TABLE replay_sample (
    id BIGINT UNSIGNED NOT NULL PRIMARY KEY,
    flag TINYINT(1),
    small_i SMALLINT,
    int_u INT UNSIGNED,
    big_i BIGINT,
    big_u BIGINT UNSIGNED,
    price DECIMAL(12,2),
    ratio DECIMAL(15,6),
    f32 FLOAT,
    f64 DOUBLE,
    day DATE,
    at_dt DATETIME(6),
    at_ts TIMESTAMP(6) NULL DEFAULT NULL,
    dur TIME(3),
    yr YEAR,
    code CHAR(8),
    name VARCHAR(64),
    note TEXT,
    raw VARBINARY(32),
    blob_b BLOB,
    fixed_b BINARY(4),
    doc JSON,
    status ENUM('new','paid','shipped','returned'),
    tags SET('a','b','c','d'),
    bits BIT(12)
) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin";

/// The edge rows (keys 1-5): all NULL; minimums; maximums; Unicode and escapes; small
/// floats. BIGINT UNSIGNED stops at 2^63-1 here because the emulator stores integers as
/// SQLite's i64; 2^64-1 is tested on the wire (`schema` tests) and in the type matrix.
pub const EDGE_ROWS: &str = r#"INSERT INTO replay_sample VALUES
(1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
(2, 0, -32768, 0, -9223372036854775808, 0, -9999999999.99, -999999999.999999, -3.40282e38, -1.7976931348623157e308,
 '1000-01-01', '1000-01-01 00:00:00.000000', '1970-01-01 00:00:01.000000', '-838:59:59.000', 1901,
 '', '', '', X'', X'', X'00000000', '{}', 'new', '', b'0'),
(3, 1, 32767, 4294967295, 9223372036854775807, 9223372036854775807, 9999999999.99, 999999999.999999, 3.40282e38, 1.7976931348623157e308,
 '9999-12-31', '9999-12-31 23:59:59.999999', '2038-01-19 03:14:07.999999', '838:59:59.999', 2155,
 'ZZZZZZZZ', REPEAT('🎿', 64), REPEAT('雪', 1000), UNHEX(REPEAT('FF', 32)), UNHEX(REPEAT('00FF', 512)), X'FFFFFFFF',
 '{"nested":{"deep":[1,2,{"x":null}]},"big":12345678901234567890,"t":true}', 'returned', 'a,b,c,d', b'111111111111'),
(4, 1, 1, 1, 1, 1, 0.01, 0.000001, 0.1, 0.1,
 '1970-01-01', '1969-12-31 23:59:59.500000', '2000-02-29 12:00:00.000001', '00:00:00.001', 2000,
 'ab''c\\d', '🎿 スキー 滑雪 ⛷️ Ünïcödé', 'line1\nline2\t''quoted'' \\ backslash', X'00', X'0a0d', X'61626364',
 '{"emoji":"🎿","cjk":"雪","n":1.5,"arr":[1,"two",null]}', 'paid', 'b,d', b'101010101010'),
(5, 0, -1, 2, -2, 3, -0.01, -0.000001, 1e-38, 5e-324,
 '2024-02-29', '2024-02-29 23:59:59.000000', '2024-02-29 23:59:59.000000', '-00:00:01.500', 1999,
 'x', 'x', 'x', X'7f', X'80', X'80000000', '"just a string"', 'shipped', 'c', b'1')"#;

/// Creates the table (dropping an old one), inserts the edge rows and `rows` generated rows.
///
/// # Errors
/// On any SQL error.
pub async fn create(conn: &mut Conn, rows: u64) -> Result<()> {
    conn.query_drop(format!("DROP TABLE IF EXISTS {TABLE}"))
        .await?;
    conn.query_drop(CREATE).await?;
    conn.query_drop(EDGE_ROWS).await?;
    insert_generated(conn, 0, rows).await
}

/// The most generated rows (`--rows` of `sample` and of the default run): each a few hundred
/// bytes in the database and one more key in the replay, so a run of them lasts an hour or
/// two and fits a disk; past it a typo of a few zeros would fill one.
pub const MAX_ROWS: u64 = 10_000_000;

/// The key of generated row `i`: sparse (gaps of 1 and 2), above the edge rows.
pub fn key_of(i: u64) -> u64 {
    100 + i * 3 - (i % 2)
}

/// Inserts generated rows `from..from + count`.
///
/// # Errors
/// On any SQL error.
pub async fn insert_generated(conn: &mut Conn, from: u64, count: u64) -> Result<()> {
    const CHUNK: u64 = 2_000;
    let mut i = from;
    while i < from + count {
        let end = (i + CHUNK).min(from + count);
        let values = (i..end).map(row_sql).collect::<Vec<_>>().join(",\n");
        conn.query_drop(format!("INSERT INTO {TABLE} VALUES {values}"))
            .await?;
        i = end;
    }
    Ok(())
}

fn mix(mut x: u64) -> u64 {
    // splitmix64
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// One generated row as SQL values; column `c` is NULL when `i % 29 == c`.
fn row_sql(i: u64) -> String {
    const NAMES: [&str; 6] = ["Vail", "Keystone", "スキー場", "滑雪场", "Ümlaut", "🏔 Peak"];
    const STATUS: [&str; 4] = ["new", "paid", "shipped", "returned"];
    let r = mix(i);
    let r2 = mix(r);
    let values: Vec<String> = vec![
        format!("{}", r % 2),
        format!("{}", (r % 65_536) as i64 - 32_768),
        format!("{}", r2 % 4_294_967_296),
        format!("{}", r as i64 / 3),
        format!("{}", r2 >> 1),
        format!(
            "{}.{:02}",
            (r % 20_000_000_000) as i64 - 10_000_000_000,
            r2 % 100
        ),
        format!(
            "{}.{:06}",
            (r2 % 2_000_000_000) as i64 - 1_000_000_000,
            r % 1_000_000
        ),
        format!("{}", ((r % 1_000_000) as f32) / 7.0),
        format!("{:e}", (r as f64) / 3.0e9),
        format!("'{}'", day(r)),
        format!(
            "'{} {:02}:{:02}:{:02}.{:06}'",
            day(r2),
            r % 24,
            r2 % 60,
            r % 60,
            r2 % 1_000_000
        ),
        format!(
            "FROM_UNIXTIME({}.{:06})",
            1 + r % 2_000_000_000,
            r2 % 1_000_000
        ),
        format!(
            "'{}{}:{:02}:{:02}.{:03}'",
            if r2 % 5 == 0 { "-" } else { "" },
            r % 839,
            r2 % 60,
            r % 60,
            r2 % 1000
        ),
        format!("{}", 1901 + r % 255),
        format!("'C{:07}'", r % 10_000_000),
        format!("'{} #{i}'", NAMES[(r % 6) as usize]),
        format!("'note {i}: {}'", "é雪🎿".repeat((r % 4) as usize)),
        format!("X'{:016x}'", r),
        format!("X'{:016x}{:016x}'", r2, r),
        format!("X'{:08x}'", r2 as u32),
        format!(
            "'{{\"i\":{i},\"name\":\"{}\",\"tags\":[{},{}],\"ok\":{}}}'",
            NAMES[(r2 % 6) as usize],
            r % 10,
            r2 % 10,
            r % 2 == 0
        ),
        format!("'{}'", STATUS[(r2 % 4) as usize]),
        format!("'{}'", ["", "a", "b,c", "a,d"][(r % 4) as usize]),
        format!("{}", r2 % 4096),
    ];
    let values: Vec<String> = values
        .into_iter()
        .enumerate()
        .map(|(c, v)| if i % 29 == c as u64 { "NULL".into() } else { v })
        .collect();
    format!("({}, {})", key_of(i), values.join(", "))
}

fn day(r: u64) -> String {
    let date = chrono::NaiveDate::from_ymd_opt(1000, 1, 1).unwrap()
        + chrono::Duration::days((r % 3_287_181) as i64);
    date.format("%Y-%m-%d").to_string()
}
