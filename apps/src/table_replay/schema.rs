//! The source table's shape (from `information_schema`), the MySQL → Snowflake type mapping,
//! the Snowflake DDL, and the conversion of one MySQL value to the JSON value sent.
//!
//! | MySQL / MariaDB | Snowflake | sent as |
//! |---|---|---|
//! | `TINYINT(1)`, `BOOL` | `BOOLEAN` | `true`/`false` (any non-zero is true) |
//! | `TINYINT` … `BIGINT` \[`UNSIGNED`\] | `NUMBER(3..20,0)` | JSON integer (exact up to 2^64−1) |
//! | `DECIMAL(p,s)`, p ≤ 38 | `NUMBER(p,s)` | the exact decimal text (never through f64) |
//! | `DECIMAL(p,s)`, p > 38 | `VARCHAR` | the exact decimal text (Snowflake's NUMBER stops at 38 digits) |
//! | `FLOAT`, `DOUBLE` | `FLOAT` | JSON number (a FLOAT by its shortest decimal, so 0.1 stays 0.1) |
//! | `DATE` | `DATE` | `YYYY-MM-DD` (the zero date `0000-00-00` becomes NULL) |
//! | (invalid dates) | — | refused: a date with a zero month or day (`2024-00-15`) or a day past the month's end (`2024-02-30`, which MariaDB stores under `ALLOW_INVALID_DATES`) is dead-lettered |
//! | `DATETIME(fsp)` | `TIMESTAMP_NTZ(fsp)` | `YYYY-MM-DD HH:MM:SS.ffffff` |
//! | `TIMESTAMP(fsp)` | `TIMESTAMP_LTZ(fsp)` | UTC, `…+00:00` (the session runs in UTC) |
//! | `TIME(fsp)` | `VARCHAR(20)` | `[-]HHH:MM:SS[.ffffff]`: MySQL's TIME is a duration of ±838 h, Snowflake's a time of day |
//! | `YEAR` | `NUMBER(4,0)` | integer |
//! | `CHAR`/`VARCHAR(n)`, `*TEXT` | `VARCHAR(n)` / `VARCHAR` | the text (utf8mb4) |
//! | `BINARY`/`VARBINARY(n)`, `*BLOB` | `BINARY(n)` / `BINARY` | lowercase hex |
//! | `JSON` | `VARIANT` | the parsed JSON value |
//! | `ENUM`, `SET` | `VARCHAR` | the label(s), a SET comma-separated |
//! | `BIT(n)` | `NUMBER(20,0)` | the bits as an unsigned integer |
//! | `GEOMETRY`, `POINT`, `LINESTRING`, `POLYGON`, `MULTI…`, `GEOMETRYCOLLECTION` | `BINARY` | lowercase hex of the bytes `SELECT col` reads and the binlog carries: the 4-byte SRID, then the WKB |
//!
//! NULL is NULL in every type. A value [`to_json`] refuses (an invalid date, invalid UTF-8 in
//! a text column, invalid JSON in a JSON column) makes its row a bad row: the replay
//! dead-letters it (`dead_letter.rs`) and goes on.

use anyhow::{bail, Result};
use mysql_async::Value;
use serde_json::Value as Json;

pub use crate::table_replay::row_text::hex;
use crate::table_replay::row_text::Mapped;

/// The MySQL type of a column, as far as the mapping cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Bool,
    Int {
        unsigned: bool,
        digits: u8,
    },
    Decimal {
        precision: u32,
        scale: u32,
    },
    Float,
    Double,
    Date,
    DateTime {
        fsp: u32,
    },
    Timestamp {
        fsp: u32,
    },
    Time {
        fsp: u32,
    },
    Year,
    Text {
        max_chars: Option<u64>,
    },
    Binary {
        max_bytes: Option<u64>,
    },
    Json,
    Enum {
        max_chars: Option<u64>,
    },
    Set {
        max_chars: Option<u64>,
    },
    Bit,
    /// MariaDB's `INET6`: the address's text (`cdc/inet6.rs` writes the binlog's bytes so).
    Inet6,
}

/// One source column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceColumn {
    /// The MySQL column name.
    pub name: String,
    /// `COLUMN_TYPE`, for messages.
    pub column_type: String,
    pub kind: Kind,
    pub nullable: bool,
    /// `CHARACTER_SET_NAME` (text columns): how the binlog's bytes decode (`cdc/charset.rs`).
    pub charset: Option<String>,
}

/// The source table: columns in order and the key column's index.
#[derive(Debug, Clone)]
pub struct SourceTable {
    pub name: String,
    pub columns: Vec<SourceColumn>,
    /// The first key column (the replay's only one).
    pub key: usize,
    /// Every key column, in the key's order (`[key]` for the replay; `follow` takes any
    /// primary or unique key, `cdc/key.rs`).
    pub keys: Vec<usize>,
}

/// The row `information_schema.COLUMNS` gives for a column (plus whether MariaDB checks it
/// with `json_valid`, which is how MariaDB spells a JSON column).
#[derive(Debug, Clone, Default)]
pub struct ColumnInfo {
    pub name: String,
    pub data_type: String,
    pub column_type: String,
    pub precision: Option<u64>,
    pub scale: Option<u64>,
    pub max_chars: Option<u64>,
    pub datetime_precision: Option<u64>,
    pub nullable: bool,
    pub json_checked: bool,
}

/// Maps `information_schema` facts to a [`Kind`].
///
/// # Errors
/// For a type the replay does not map (MariaDB's `INET6`, `UUID`, …), naming it: an
/// [`Unmapped`] error.
pub fn kind_of(c: &ColumnInfo) -> Result<Kind> {
    let dt = c.data_type.to_ascii_lowercase();
    let ct = c.column_type.to_ascii_lowercase();
    let unsigned = ct.contains("unsigned");
    let fsp = c.datetime_precision.unwrap_or(0) as u32;
    Ok(match dt.as_str() {
        "tinyint" if ct.starts_with("tinyint(1)") && !unsigned => Kind::Bool,
        "bool" | "boolean" => Kind::Bool,
        "tinyint" => Kind::Int {
            unsigned,
            digits: 3,
        },
        "smallint" => Kind::Int {
            unsigned,
            digits: 5,
        },
        "mediumint" => Kind::Int {
            unsigned,
            digits: if unsigned { 8 } else { 7 },
        },
        "int" | "integer" => Kind::Int {
            unsigned,
            digits: 10,
        },
        "bigint" => Kind::Int {
            unsigned,
            digits: if unsigned { 20 } else { 19 },
        },
        "decimal" | "numeric" => Kind::Decimal {
            precision: c.precision.unwrap_or(10) as u32,
            scale: c.scale.unwrap_or(0) as u32,
        },
        "float" => Kind::Float,
        "double" | "real" => Kind::Double,
        "date" => Kind::Date,
        "datetime" => Kind::DateTime { fsp },
        "timestamp" => Kind::Timestamp { fsp },
        "time" => Kind::Time { fsp },
        "year" => Kind::Year,
        "json" => Kind::Json,
        "longtext" if c.json_checked => Kind::Json,
        "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" => Kind::Text {
            max_chars: c.max_chars,
        },
        "binary" | "varbinary" | "tinyblob" | "blob" | "mediumblob" | "longblob" => Kind::Binary {
            max_bytes: c.max_chars,
        },
        "enum" => Kind::Enum {
            max_chars: c.max_chars,
        },
        "set" => Kind::Set {
            max_chars: c.max_chars,
        },
        "bit" => Kind::Bit,
        "inet6" => Kind::Inet6,
        "geometry" | "point" | "linestring" | "polygon" | "multipoint" | "multilinestring"
        | "multipolygon" | "geometrycollection" => Kind::Binary { max_bytes: None },
        other => {
            return Err(anyhow::Error::new(Unmapped(format!(
                "column {} has type {} ({other}), which table_replay does not map to \
                 Snowflake; supported: integer, decimal, float, date/time, text, binary, JSON, \
                 ENUM, SET, BIT, INET6 and spatial types",
                c.name, c.column_type
            ))))
        }
    })
}

/// A column type with no Snowflake type (`kind_of`): `follow` diverts its table.
#[derive(Debug)]
pub struct Unmapped(pub String);

impl std::fmt::Display for Unmapped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Unmapped {}

/// Whether `e` is (or wraps) an [`Unmapped`] column type.
pub fn is_unmapped(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<Unmapped>().is_some())
}

/// Snowflake's largest `VARCHAR`, in bytes: a longer text value is a bad row.
pub const VARCHAR_MAX: u64 = 16_777_216;
/// Snowflake's largest `BINARY`, in bytes: a longer binary value is a bad row.
pub const BINARY_MAX: u64 = 8_388_608;

/// The Snowflake type of a column.
pub fn snowflake_type(kind: &Kind) -> String {
    match kind {
        Kind::Bool => "BOOLEAN".into(),
        Kind::Int { digits, .. } => format!("NUMBER({digits},0)"),
        Kind::Decimal { precision, scale } if *precision <= 38 => {
            format!("NUMBER({precision},{scale})")
        }
        Kind::Decimal { .. } => "VARCHAR".into(),
        Kind::Float | Kind::Double => "FLOAT".into(),
        Kind::Date => "DATE".into(),
        Kind::DateTime { fsp } => format!("TIMESTAMP_NTZ({fsp})"),
        Kind::Timestamp { fsp } => format!("TIMESTAMP_LTZ({fsp})"),
        Kind::Time { .. } => "VARCHAR(20)".into(),
        Kind::Year => "NUMBER(4,0)".into(),
        Kind::Text { max_chars } | Kind::Enum { max_chars } | Kind::Set { max_chars } => {
            match max_chars {
                Some(n) if *n > 0 && *n <= VARCHAR_MAX => format!("VARCHAR({n})"),
                _ => "VARCHAR".into(),
            }
        }
        Kind::Binary { max_bytes } => match max_bytes {
            Some(n) if *n > 0 && *n <= BINARY_MAX => format!("BINARY({n})"),
            _ => "BINARY".into(),
        },
        Kind::Json => "VARIANT".into(),
        Kind::Bit => "NUMBER(20,0)".into(),
        Kind::Inet6 => "VARCHAR(39)".into(),
    }
}

/// The Snowflake column name: the MySQL name in upper case.
pub fn snowflake_name(name: &str) -> String {
    name.to_uppercase()
}

/// A Snowflake identifier, double-quoted when it is not a plain upper-case name.
pub fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_uppercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_' || c == '$');
    if plain {
        name.to_owned()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

/// `CREATE TABLE` and `CREATE PIPE` for the destination (the pipe maps columns by name).
pub fn ddl(table: &SourceTable, database: &str, schema: &str, dest: &str, pipe: &str) -> String {
    let qualified = |n: &str| format!("{}.{}.{}", ident(database), ident(schema), ident(n));
    let columns = table
        .columns
        .iter()
        .map(|c| {
            let not_null = if c.nullable { "" } else { " NOT NULL" };
            format!(
                "    {} {}{not_null}",
                ident(&snowflake_name(&c.name)),
                snowflake_type(&c.kind)
            )
        })
        .collect::<Vec<_>>()
        .join(",\n");
    format!(
        "CREATE TABLE IF NOT EXISTS {} (\n{columns}\n);\n\
         CREATE PIPE IF NOT EXISTS {} AS\n    COPY INTO {} FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))\n    MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;\n",
        qualified(dest),
        qualified(pipe),
        qualified(dest),
    )
}

/// Checks that the key is a single integer column, and returns its index.
///
/// # Errors
/// When the table has no primary key and no `--key`, a composite primary key, or a key that
/// is not an integer column — naming what is supported.
pub fn key_index(
    table: &str,
    columns: &[SourceColumn],
    primary: &[String],
    key: Option<&str>,
) -> Result<usize> {
    const SUPPORTED: &str = "table_replay needs a single-column integer key (TINYINT..BIGINT, \
        signed or UNSIGNED, non-negative values): the primary key, or a unique NOT NULL \
        integer column named with --key";
    let name = match (key, primary) {
        (Some(k), _) => k.to_owned(),
        (None, [one]) => one.clone(),
        (None, []) => bail!("table {table} has no primary key. {SUPPORTED}"),
        (None, many) => bail!(
            "table {table} has a composite primary key ({}). {SUPPORTED}",
            many.join(", ")
        ),
    };
    let Some(i) = columns
        .iter()
        .position(|c| c.name.eq_ignore_ascii_case(&name))
    else {
        bail!("table {table} has no column {name}. {SUPPORTED}");
    };
    match columns[i].kind {
        Kind::Int { .. } if !columns[i].nullable => Ok(i),
        Kind::Int { .. } => bail!("key column {name} of {table} is nullable. {SUPPORTED}"),
        _ => bail!(
            "key column {name} of {table} is {} (not an integer). {SUPPORTED}",
            columns[i].column_type
        ),
    }
}

/// The key of a row as the offset token's number.
///
/// # Errors
/// For a NULL or negative key.
pub fn key_value(v: &Value) -> Result<u64> {
    match v {
        Value::UInt(u) => Ok(*u),
        Value::Int(i) if *i >= 0 => Ok(*i as u64),
        Value::Int(i) => bail!(
            "key value {i} is negative: offset tokens must increase, so table_replay needs \
             non-negative keys"
        ),
        Value::Bytes(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "key value {:?} is not an integer",
                    String::from_utf8_lossy(b)
                )
            }),
        other => bail!("key value {other:?} is not a non-negative integer"),
    }
}

/// Converts one MySQL value (binary protocol) to the JSON value sent for its column
/// ([`map`] made a `serde_json::Value`).
///
/// # Errors
/// As [`map`].
pub fn to_json(kind: &Kind, v: &Value) -> Result<Json> {
    map(kind, v).map(Mapped::into_json)
}

/// One MySQL value (binary protocol) as the JSON value sent for its column, borrowing its
/// text: the mapping in the table above.
///
/// # Errors
/// When the value does not fit its declared type (invalid UTF-8 in a text column, invalid
/// JSON in a JSON column), or is longer than Snowflake's column can hold ([`VARCHAR_MAX`],
/// [`BINARY_MAX`]): the server would reject the row after its offset token committed, and
/// the row would be lost (found by `hostile_mariadb_rows`).
pub fn map<'a>(kind: &Kind, v: &'a Value) -> Result<Mapped<'a>> {
    if let Value::Bytes(b) = v {
        let max = match kind {
            Kind::Binary { .. } => BINARY_MAX,
            _ => VARCHAR_MAX,
        };
        if b.len() as u64 > max {
            bail!(
                "a value of {} bytes is longer than Snowflake's {} of at most {max} bytes; \
                 shorten it in the source",
                b.len(),
                if max == BINARY_MAX {
                    "BINARY"
                } else {
                    "VARCHAR"
                }
            );
        }
    }
    Ok(match (kind, v) {
        (_, Value::NULL) => Mapped::Null,
        (Kind::Bool, Value::Int(i)) => Mapped::Bool(*i != 0),
        (Kind::Bool, Value::UInt(u)) => Mapped::Bool(*u != 0),
        (Kind::Int { .. } | Kind::Year, Value::Int(i)) => Mapped::I64(*i),
        (Kind::Int { .. } | Kind::Year, Value::UInt(u)) => Mapped::U64(*u),
        // A FLOAT by its shortest decimal: 0.1 stays 0.1, not 0.10000000149011612.
        (Kind::Float, Value::Float(f)) => Mapped::F64(f.to_string().parse().unwrap_or(*f as f64)),
        (Kind::Float | Kind::Double, Value::Double(d)) => Mapped::F64(*d),
        (Kind::Date, Value::Date(0, 0, 0, ..)) => Mapped::Null,
        (Kind::Date | Kind::DateTime { .. } | Kind::Timestamp { .. }, Value::Date(y, m, d, ..))
            if (*y, *m, *d) != (0, 0, 0) && !valid_date(*y, *m, *d) =>
        {
            bail!(
                "invalid date {y:04}-{m:02}-{d:02} (MariaDB keeps it under sql_mode \
                 ALLOW_INVALID_DATES or without NO_ZERO_IN_DATE; Snowflake has no such date); \
                 fix the value in the source"
            )
        }
        (Kind::Date, Value::Date(y, m, d, ..)) => Mapped::Date {
            y: *y,
            m: *m,
            d: *d,
        },
        (Kind::DateTime { .. } | Kind::Timestamp { .. }, Value::Date(0, 0, 0, ..)) => Mapped::Null,
        (Kind::DateTime { .. } | Kind::Timestamp { .. }, Value::Date(y, mo, d, h, mi, s, us)) => {
            Mapped::DateTime {
                date: (*y, *mo, *d),
                time: (*h, *mi, *s, *us),
                utc: matches!(kind, Kind::Timestamp { .. }),
            }
        }
        (Kind::Time { fsp }, Value::Time(neg, days, h, m, s, us)) => {
            let hours = u64::from(*days) * 24 + u64::from(*h);
            let sign = if *neg { "-" } else { "" };
            let frac = if *fsp > 0 {
                format!(
                    ".{:0width$}",
                    us / 10u32.pow(6 - fsp.min(&6)),
                    width = *fsp as usize
                )
            } else {
                String::new()
            };
            Mapped::Text(format!("{sign}{hours:02}:{m:02}:{s:02}{frac}"))
        }
        (Kind::Decimal { .. }, Value::Bytes(b)) => Mapped::Str(text(b, "DECIMAL")?),
        (
            Kind::Text { .. } | Kind::Enum { .. } | Kind::Set { .. } | Kind::Inet6,
            Value::Bytes(b),
        ) => Mapped::Str(text(b, "text")?),
        (Kind::Binary { .. }, Value::Bytes(b)) => Mapped::Hex(b),
        (Kind::Json, Value::Bytes(b)) => Mapped::Json(
            serde_json::from_slice(b)
                .map_err(|e| anyhow::anyhow!("invalid JSON in a JSON column: {e}"))?,
        ),
        (Kind::Bit, Value::Bytes(b)) => Mapped::U64(
            b.iter()
                .fold(0u64, |acc, byte| (acc << 8) | u64::from(*byte)),
        ),
        (Kind::Bit, Value::UInt(u)) => Mapped::U64(*u),
        (Kind::Bit, Value::Int(i)) => Mapped::I64(*i),
        // The text protocol (or a driver surprise): parse the text by kind.
        (_, Value::Bytes(b)) => Mapped::Str(text(b, "value")?),
        (kind, other) => bail!("unexpected value {other:?} for a {kind:?} column"),
    })
}

/// Whether `y-m-d` is a day of the proleptic Gregorian calendar (the zero date is not, but
/// it is NULL rather than refused).
fn valid_date(y: u16, m: u8, d: u8) -> bool {
    let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&d)
}

fn text<'a>(b: &'a [u8], what: &str) -> Result<&'a str> {
    std::str::from_utf8(b).map_err(|_| anyhow::anyhow!("{what} value is not valid UTF-8"))
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
