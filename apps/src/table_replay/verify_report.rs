//! What `verify` compares and reports: the canonical form of a value on either side
//! (`Class`, `from_source`, `from_dest`), the destination, and the outcome with its report.
//! Below both comparisons (`verify.rs`'s merge by integer key, `verify_keyed.rs`'s by any key).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use serde_json::Value as Json;

use crate::common::thousands;
use crate::table_replay::schema::{self, Kind, SourceTable};

/// A Snowflake identifier in double quotes.
pub(super) fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Each source column's class and its name in the destination, in the table's order.
pub(super) fn classes_and_names(table: &SourceTable) -> (Vec<Class>, Vec<String>) {
    table
        .columns
        .iter()
        .map(|c| (class_of(&c.kind), schema::snowflake_name(&c.name)))
        .unzip()
}

/// Feeds one canonical value to a column's hash: `0` for NULL, else `1`, its length and its
/// bytes (so no two sequences of values feed the same bytes).
pub(super) fn hash_value(h: &mut sha2::Sha256, value: Option<&str>) {
    use sha2::Digest;
    match value {
        Some(s) => {
            h.update([1]);
            h.update((s.len() as u64).to_be_bytes());
            h.update(s.as_bytes());
        }
        None => h.update([0]),
    }
}

/// How a value is compared: by its Snowflake type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    Bool,
    Number,
    Float,
    Date,
    Timestamp,
    Text,
    Binary,
    Variant,
}

/// A value's class: how it is compared.
pub(super) fn class_of(kind: &Kind) -> Class {
    match kind {
        Kind::Bool => Class::Bool,
        Kind::Int { .. } | Kind::Year | Kind::Bit => Class::Number,
        Kind::Decimal { precision, .. } if *precision <= 38 => Class::Number,
        Kind::Decimal { .. } => Class::Text,
        Kind::Float | Kind::Double => Class::Float,
        Kind::Date => Class::Date,
        Kind::DateTime { .. } | Kind::Timestamp { .. } => Class::Timestamp,
        Kind::Time { .. }
        | Kind::Text { .. }
        | Kind::Enum { .. }
        | Kind::Set { .. }
        | Kind::Inet6 => Class::Text,
        Kind::Binary { .. } => Class::Binary,
        Kind::Json => Class::Variant,
    }
}

/// `-001.2300` → `-1.23`; `0.00` → `0`.
pub(super) fn decimal(text: &str) -> String {
    let t = text.trim();
    let (neg, digits) = match t.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, t.strip_prefix('+').unwrap_or(t)),
    };
    let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
    let int = int.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let body = match (int.is_empty(), frac.is_empty()) {
        (true, true) => return "0".into(),
        (true, false) => format!("0.{frac}"),
        (false, true) => int.to_owned(),
        (false, false) => format!("{int}.{frac}"),
    };
    if neg {
        format!("-{body}")
    } else {
        body
    }
}

fn float(text: &str) -> String {
    text.trim()
        .parse::<f64>()
        .map(|f| format!("{f:?}"))
        .unwrap_or_else(|_| text.to_owned())
}

/// Nanoseconds since the epoch as text.
fn nanos_of(ts: NaiveDateTime) -> String {
    let utc = ts.and_utc();
    (i128::from(utc.timestamp()) * 1_000_000_000 + i128::from(utc.timestamp_subsec_nanos()))
        .to_string()
}

/// JSON with object keys sorted, compact.
fn canonical_json(v: &Json) -> String {
    fn sort(v: &Json) -> Json {
        match v {
            Json::Object(m) => {
                let sorted: BTreeMap<&String, Json> = m.iter().map(|(k, v)| (k, sort(v))).collect();
                Json::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
            }
            Json::Array(a) => Json::Array(a.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(v).to_string()
}

/// The canonical form of a value as sent (the replay's JSON).
pub(super) fn from_source(class: Class, v: &Json) -> Option<String> {
    let text = || match v {
        Json::String(s) => s.clone(),
        other => other.to_string(),
    };
    Some(match (class, v) {
        (_, Json::Null) => return None,
        (Class::Bool, Json::Bool(b)) => b.to_string(),
        (Class::Number, _) => decimal(&text()),
        (Class::Float, _) => float(&text()),
        (Class::Timestamp, _) => {
            let t = text();
            match DateTime::parse_from_rfc3339(&t) {
                Ok(dt) => nanos_of(dt.naive_utc()),
                Err(_) => NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f")
                    .map(nanos_of)
                    .unwrap_or(t),
            }
        }
        (Class::Binary, _) => text().to_ascii_lowercase(),
        (Class::Variant, v) => canonical_json(v),
        _ => text(),
    })
}

/// The canonical form of a value as the SQL API returns it.
pub(super) fn from_dest(class: Class, v: Option<&str>) -> Option<String> {
    let v = v?;
    Some(match class {
        Class::Bool => match v {
            "1" | "true" | "TRUE" => "true".into(),
            "0" | "false" | "FALSE" => "false".into(),
            other => other.into(),
        },
        Class::Number => decimal(v),
        Class::Float => float(v),
        Class::Date => match v.parse::<i64>() {
            Ok(days) => (NaiveDate::default() + chrono::Duration::days(days)).to_string(),
            Err(_) => v.into(),
        },
        Class::Timestamp => crate::common::sql_api_epoch_nanos(v)
            .map_or_else(|| v.into(), |nanos| nanos.to_string()),
        Class::Binary => v.to_ascii_lowercase(),
        Class::Variant => serde_json::from_str::<Json>(v)
            .map(|j| canonical_json(&j))
            .unwrap_or_else(|_| v.into()),
        Class::Text => v.into(),
    })
}

/// Where the destination is.
#[derive(Debug, Clone)]
pub(super) struct Dest {
    pub database: String,
    pub schema: String,
    pub table: String,
    /// `table` is a change table (`table_replay follow`): compare the state it implies, the
    /// latest row per key by `(_BINLOG_FILE, _BINLOG_POS, _ROW)` with deletes removed.
    pub changes: bool,
}

/// One difference, for the table of differences.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Difference {
    /// The key as people read it (`7`, `('a', 3)`).
    pub key: String,
    pub column: String,
    pub source: Option<String>,
    pub dest: Option<String>,
}

/// The outcome: counts on both sides, per-column checksums and differences.
#[derive(Debug, Default)]
pub(super) struct Verification {
    pub source_rows: u64,
    pub dest_rows: u64,
    pub dest_distinct: u64,
    pub source_range: (Option<u64>, Option<u64>),
    pub dest_range: (Option<u64>, Option<u64>),
    pub missing: u64,
    pub extra: u64,
    /// Per column: (name, source checksum, dest checksum, rows that differ).
    pub columns: Vec<(String, String, String, u64)>,
    /// The first differences (at most 20).
    pub differences: Vec<Difference>,
    /// Source keys not compared: a change of theirs is in this dead-letter table.
    pub dead_lettered: Option<(u64, String)>,
    /// A change table whose column cannot take the source's type now (a `MODIFY`): `follow`
    /// diverts the table's changes to its dead letters; nothing is compared.
    pub diverted: Option<String>,
}

impl Verification {
    pub(super) fn is_exact(&self) -> bool {
        self.diverted.is_none()
            && self.source_rows == self.dest_rows
            && self.dest_rows == self.dest_distinct
            && self.source_range == self.dest_range
            && self.missing == 0
            && self.extra == 0
            && self.columns.iter().all(|c| c.3 == 0)
    }

    /// The report: checks, columns, differences.
    pub(super) fn render(&self, source: &str, dest: &Dest) -> String {
        use std::fmt::Write as _;
        let mut out = String::new();
        let opt = |v: Option<u64>| v.map_or("-".into(), |v| v.to_string());
        let _ = writeln!(
            out,
            "\nVerification: source table {source} vs {}.{}.{} (SQL API)",
            dest.database, dest.schema, dest.table
        );
        if let Some(why) = &self.diverted {
            let _ = writeln!(out, "\nRESULT: DIVERTED (not compared): {why}");
            return out;
        }
        let _ = writeln!(
            out,
            "  {:<16} {:>12} {:>12}  RESULT",
            "CHECK", "SOURCE", "DEST"
        );
        let row = |name: &str, s: String, d: String| {
            let verdict = if s == d { "match" } else { "DIFFERENT" };
            format!("  {name:<16} {s:>12} {d:>12}  {verdict}\n")
        };
        out += &row(
            "rows",
            thousands(self.source_rows),
            thousands(self.dest_rows),
        );
        out += &row(
            "distinct keys",
            thousands(self.source_rows),
            thousands(self.dest_distinct),
        );
        out += &row("min key", opt(self.source_range.0), opt(self.dest_range.0));
        out += &row("max key", opt(self.source_range.1), opt(self.dest_range.1));
        out += &row("missing rows", "0".into(), thousands(self.missing));
        out += &row("extra rows", "0".into(), thousands(self.extra));
        let _ = writeln!(
            out,
            "\n  {:<20} {:<18} {:<18} {:>9}  RESULT",
            "COLUMN", "SOURCE_SHA256", "DEST_SHA256", "DIFF_ROWS"
        );
        for (name, s, d, n) in &self.columns {
            let verdict = if *n == 0 && s == d {
                "match"
            } else {
                "DIFFERENT"
            };
            let _ = writeln!(
                out,
                "  {name:<20} {:<18} {:<18} {:>9}  {verdict}",
                &s[..16],
                &d[..16],
                thousands(*n)
            );
        }
        if !self.differences.is_empty() {
            let _ = writeln!(out, "\n  Differences (first {}):", self.differences.len());
            let _ = writeln!(
                out,
                "  {:>20}  {:<20} {:<30} DEST",
                "KEY", "COLUMN", "SOURCE"
            );
            for d in &self.differences {
                let show = |v: &Option<String>| v.clone().unwrap_or_else(|| "NULL".into());
                let _ = writeln!(
                    out,
                    "  {:>20}  {:<20} {:<30} {}",
                    d.key,
                    d.column,
                    show(&d.source),
                    show(&d.dest)
                );
            }
        }
        let dead = match &self.dead_lettered {
            Some((n, table)) if *n > 0 => format!(
                " but for {} dead-lettered keys (a change of theirs is in {table}; not compared)",
                thousands(*n)
            ),
            _ => String::new(),
        };
        let _ = writeln!(
            out,
            "\n{}",
            if self.is_exact() {
                format!("RESULT: every source row arrived exactly once, every value equal{dead}")
            } else {
                format!("RESULT: DIFFERENT (see above){dead}")
            }
        );
        out
    }
}
