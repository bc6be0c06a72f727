//! The key `follow` identifies a row by, and its text in the snapshot's offset tokens.
//!
//! Which key: the primary key, of any number of columns, each an integer, text (`CHAR`,
//! `VARCHAR`, …) or binary (`BINARY(16)`, `VARBINARY`) column; without one, a unique key whose
//! columns are all NOT NULL (the first by index name; the start line says which); without
//! one, the columns `--key TABLE=COL[,COL…]` names. Otherwise `follow` stops, naming the
//! table and that flag. Columns named with `--key` need not be unique: rows that share
//! their values are one row to the current state, which keeps the last change.
//!
//! Order: the snapshot reads the table by the key in the server's order (`ORDER BY k1, k2`,
//! after the last key read: `k1 > ? OR (k1 = ? AND k2 > ?)`), text compared in its column's
//! collation. A restart's snapshot resumes after the committed key by the same comparison,
//! on the server, so the order a snapshot read in and the order its resume compares in are
//! one order, whatever the collation.
//!
//! A key in a token ([`TokenKey`]): `KEY/N`, the key's columns joined by `,`, an integer as
//! its decimal, text or bytes as `x` and the bytes' hex, so no separator (`:`, `,`) or quote
//! inside a key can make a token ambiguous; then `/N`, 0 for the row of that key. The SDK
//! compares tokens with the same text before their last number by that number, and refuses
//! a token that repeats or goes back (`src/offset.rs`): `/N` ends every token with a number
//! whose text before it is the key's, so two rows' tokens never compare by a piece of a
//! key (`-5` then `-4`, or hex `x6131` then `x4132` in a case-insensitive collation, would
//! go back). A key whose text is longer than [`TOKEN_KEY_MAX`] characters is not written
//! into a token, and a key equal to the one before (`--key` columns that repeat): the row's
//! token carries the last key written with `N` one more, and a restart's snapshot reads again
//! from that key (rows written again as `'r'` changes, which the current state folds).

use std::cmp::Ordering;

use anyhow::{bail, Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

use crate::common::say::say_warn;
use crate::table_replay::schema::{Kind, SourceColumn, SourceTable};
use crate::table_replay::source::{self, quote};

/// The longest key text a token carries (the service documents no offset-token limit; the
/// reference SDK sends 5 000 characters unchecked: this keeps a token well under that).
pub const TOKEN_KEY_MAX: usize = 2_048;

/// What `follow` says it identifies rows of `table` by, for the start line.
pub fn describe_choice(table: &SourceTable, how: &str) -> String {
    let names: Vec<&str> = table
        .keys
        .iter()
        .map(|&i| table.columns[i].name.as_str())
        .collect();
    format!("{how} ({})", names.join(", "))
}

/// Describes `table` with the key `follow` uses (see the module docs); returns it and which
/// key it is (`primary key`, `unique key NAME`, `--key`).
///
/// # Errors
/// When the table does not exist, a column type is not supported, it has neither a primary
/// key nor a unique NOT NULL key and `user` is `None` (naming `--key`), or a key column is
/// nullable, missing, or of a type a key cannot be; when two columns would be one change-table
/// column (`names.rs`) or a text column's character set cannot be decoded (`charset.rs`).
pub async fn describe(
    conn: &mut Conn,
    table: &str,
    user: Option<&[String]>,
) -> Result<(SourceTable, String)> {
    let columns = source::columns(conn, table).await?;
    let (names, how) = match user {
        Some(names) => (names.to_vec(), "--key".to_owned()),
        None => chosen(conn, table, &columns).await?,
    };
    let keys = key_columns(table, &columns, &names, &how)?;
    let described = SourceTable {
        name: table.to_owned(),
        columns,
        key: keys[0],
        keys,
    };
    super::names::check(&described)?;
    super::charset::check(&described)?;
    if user.is_some() {
        warn_without_index(conn, table, &names).await?;
    }
    Ok((described, how))
}

/// The primary key, else the first unique key over NOT NULL columns of a type a key can be.
async fn chosen(
    conn: &mut Conn,
    table: &str,
    columns: &[SourceColumn],
) -> Result<(Vec<String>, String)> {
    let primary = source::primary_key(conn, table).await?;
    if !primary.is_empty() {
        return Ok((primary, "primary key".into()));
    }
    for (index, names) in indexes(conn, table, true).await? {
        if key_columns(table, columns, &names, "").is_ok() {
            return Ok((names, format!("unique key {index}")));
        }
    }
    bail!(
        "table {table} has no primary key and no unique key over NOT NULL columns: follow \
         cannot tell its rows apart. Name the columns that identify a row with --key \
         {table}=COL[,COL…] (ddl and verify --changes: --key COL[,COL…]; rows sharing their \
         values are one row to the current state: the last change wins)"
    )
}

/// The indexes of `table` (`unique`: its unique ones) by name, each with its columns in order.
async fn indexes(conn: &mut Conn, table: &str, unique: bool) -> Result<Vec<(String, Vec<String>)>> {
    let rows: Vec<(String, String)> = conn
        .exec(
            format!(
                "SELECT INDEX_NAME, COLUMN_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ?{} \
                 ORDER BY INDEX_NAME, SEQ_IN_INDEX",
                if unique { " AND NON_UNIQUE = 0" } else { "" }
            ),
            (table,),
        )
        .await
        .with_context(|| format!("cannot read the indexes of {table}"))?;
    let mut indexes: Vec<(String, Vec<String>)> = Vec::new();
    for (index, column) in rows {
        match indexes.last_mut() {
            Some((i, cols)) if *i == index => cols.push(column),
            _ => indexes.push((index, vec![column])),
        }
    }
    Ok(indexes)
}

/// Warns when no index of `table` begins with the `--key` columns `names`: every snapshot
/// page then sorts the rest of the table.
async fn warn_without_index(conn: &mut Conn, table: &str, names: &[String]) -> Result<()> {
    let leads = |cols: &Vec<String>| {
        cols.len() >= names.len()
            && cols
                .iter()
                .zip(names)
                .all(|(c, n)| c.eq_ignore_ascii_case(n))
    };
    if !indexes(conn, table, false)
        .await?
        .iter()
        .any(|(_, c)| leads(c))
    {
        let cols = names.join(", ");
        say_warn!(
            "warning: {table}: no index begins with the --key columns ({cols}): each snapshot \
             page sorts the rest of the table (a snapshot of N rows reads about \
             N²/(2 × --batch) rows); an index on ({cols}) makes each page a range scan"
        );
    }
    Ok(())
}

/// The indexes of the key columns `names`.
fn key_columns(
    table: &str,
    columns: &[SourceColumn],
    names: &[String],
    how: &str,
) -> Result<Vec<usize>> {
    if names.is_empty() {
        bail!("the {how} of {table} names no column");
    }
    names
        .iter()
        .map(|name| {
            let i = columns
                .iter()
                .position(|c| c.name.eq_ignore_ascii_case(name))
                .with_context(|| format!("table {table} has no column {name} (its {how})"))?;
            let c = &columns[i];
            if c.nullable {
                bail!(
                    "key column {name} of {table} ({how}) is nullable: a key column must be \
                     NOT NULL (the snapshot pages by it); name NOT NULL columns with --key \
                     {table}=COL[,COL…]"
                );
            }
            match c.kind {
                Kind::Int { .. } | Kind::Text { .. } | Kind::Binary { .. } => Ok(i),
                _ => bail!(
                    "key column {name} of {table} ({how}) is {}: a key column must be an \
                     integer, text or binary column; name others with --key {table}=COL[,COL…]",
                    c.column_type
                ),
            }
        })
        .collect()
}

/// A key's text in a token, `KEY/N` (see the module docs); an empty key: before every key.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TokenKey {
    /// The key's text: every key up to it is committed.
    pub key: String,
    /// Rows after that key's that carry it (too long, or the same key again).
    pub after: u64,
}

impl TokenKey {
    /// The token key of the row after this one whose key columns hold `values`.
    ///
    /// # Errors
    /// For a NULL or a value of no key type.
    pub fn next(&self, values: &[&Value]) -> Result<Self> {
        Ok(match Self::text(values)? {
            Some(key) if key != self.key => Self { key, after: 0 },
            _ => Self {
                key: self.key.clone(),
                after: self.after + 1,
            },
        })
    }

    /// The token's text of this key.
    pub fn render(&self) -> String {
        format!("{}/{}", self.key, self.after)
    }

    /// The text of a key with `values` (the key columns' values in the key's order);
    /// `None` when it is longer than [`TOKEN_KEY_MAX`].
    ///
    /// # Errors
    /// For a NULL or a value of no key type.
    pub fn text(values: &[&Value]) -> Result<Option<String>> {
        let mut text = String::new();
        for (n, v) in values.iter().enumerate() {
            if n > 0 {
                text.push(',');
            }
            match v {
                Value::Int(i) => text.push_str(&i.to_string()),
                Value::UInt(u) => text.push_str(&u.to_string()),
                Value::Bytes(b) => {
                    text.push('x');
                    text.push_str(&crate::table_replay::schema::hex(b));
                }
                other => bail!("key value {other:?} is not an integer, text or bytes"),
            }
            if text.len() > TOKEN_KEY_MAX {
                return Ok(None);
            }
        }
        Ok(Some(text))
    }

    /// Parses a token's `KEY/N` (`KEY` alone, as earlier versions wrote it: `N` 0).
    ///
    /// # Errors
    /// For text no [`TokenKey::render`] writes.
    pub fn parse(text: &str) -> Result<Self> {
        let (key, after) = match text.rsplit_once('/') {
            Some((key, n)) if n == "0" || !n.starts_with('0') => (
                key,
                n.parse().with_context(|| format!("{n:?} is no count"))?,
            ),
            Some((_, n)) => bail!("{n:?} is no count"),
            None => (text, 0),
        };
        let key = Self {
            key: key.to_owned(),
            after,
        };
        key.values()?;
        Ok(key)
    }

    /// The key's values: the parameters a snapshot resumes after; none when empty.
    ///
    /// # Errors
    /// For text no [`TokenKey::text`] writes.
    pub fn values(&self) -> Result<Vec<Value>> {
        if self.key.is_empty() {
            return Ok(Vec::new());
        }
        self.key
            .split(',')
            .map(|part| {
                if let Some(hex) = part.strip_prefix('x') {
                    return unhex(hex)
                        .map(Value::Bytes)
                        .with_context(|| format!("key part {part:?} is not hex"));
                }
                part.parse::<i64>()
                    .map(Value::Int)
                    .or_else(|_| part.parse::<u64>().map(Value::UInt))
                    .with_context(|| format!("key part {part:?} is neither a number nor x<hex>"))
            })
            .collect()
    }

    /// Whether a channel committed at this key has written the row at `key`, when that is
    /// certain without the server: integers compare as numbers; a text or binary part that
    /// differs may order either way in its collation, and a row after its key (`N` > 0) may
    /// be another row after a restart, so neither is certain here (a restarted snapshot asks
    /// the server about those: `dead_resume.rs`).
    pub fn covers(&self, key: &TokenKey) -> bool {
        if key.after > 0 {
            return false;
        }
        let (Ok(at), Ok(key)) = (self.values(), key.values()) else {
            return false;
        };
        if at.is_empty() || at.len() != key.len() {
            return false;
        }
        for (a, k) in at.iter().zip(&key) {
            let order = match (int(a), int(k)) {
                (Some(a), Some(k)) => k.cmp(&a),
                _ if a == k => Ordering::Equal,
                _ => return false,
            };
            match order {
                Ordering::Less => return true,
                Ordering::Greater => return false,
                Ordering::Equal => {}
            }
        }
        true
    }
}

fn int(v: &Value) -> Option<i128> {
    match v {
        Value::Int(i) => Some(i128::from(*i)),
        Value::UInt(u) => Some(i128::from(*u)),
        _ => None,
    }
}

fn unhex(hex: &str) -> Option<Vec<u8>> {
    if hex.len() % 2 != 0 {
        return None;
    }
    (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(hex.get(i..i + 2)?, 16).ok())
        .collect()
}

/// The key as people read it: `(7, 'a''b')`, bytes not UTF-8 as `0x…`, long text cut.
impl std::fmt::Display for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.values() {
            Ok(values) if self.after == 0 => {
                f.write_str(&readable(&values.iter().collect::<Vec<_>>()))
            }
            Ok(values) => write!(
                f,
                "{} (+{} rows)",
                readable(&values.iter().collect::<Vec<_>>()),
                self.after
            ),
            Err(_) => f.write_str(&self.key),
        }
    }
}

/// Key values as people read them (see [`TokenKey`]'s `Display`).
pub fn readable(values: &[&Value]) -> String {
    let parts: Vec<String> = values
        .iter()
        .map(|v| match v {
            Value::Int(i) => i.to_string(),
            Value::UInt(u) => u.to_string(),
            Value::Bytes(b) => match std::str::from_utf8(b) {
                Ok(s) if s.chars().count() > 64 => format!(
                    "'{}…' ({} bytes)",
                    s.chars().take(64).collect::<String>().replace('\'', "''"),
                    b.len()
                ),
                Ok(s) => format!("'{}'", s.replace('\'', "''")),
                Err(_) => format!("0x{}", crate::table_replay::schema::hex(b)),
            },
            other => format!("{other:?}"),
        })
        .collect();
    match parts.as_slice() {
        [one] => one.clone(),
        many => format!("({})", many.join(", ")),
    }
}

/// Reads a table a page at a time in its key's order (all key columns).
pub struct Pager {
    first: String,
    after: String,
    keys: usize,
    /// The bounds' parameters ([`within`](Self::within)), after the key's.
    bounds: Vec<Value>,
}

impl Pager {
    pub fn new(table: &SourceTable) -> Self {
        Self::within(table, (None, None))
    }

    /// A pager over the rows whose first key column is at least `lo` and below `hi` (each
    /// bound left out when none): one reader's range of a snapshot (`snapshot_ranges.rs`).
    pub fn within(table: &SourceTable, (lo, hi): (Option<Value>, Option<Value>)) -> Self {
        let cols = source::select_list(table);
        let keys: Vec<String> = table
            .keys
            .iter()
            .map(|&i| quote(&table.columns[i].name))
            .collect();
        let select = format!("SELECT {cols} FROM {}", quote(&table.name));
        let order = format!("ORDER BY {} LIMIT ?", keys.join(", "));
        let mut conds = Vec::new();
        if lo.is_some() {
            conds.push(format!("{} >= ?", keys[0]));
        }
        if hi.is_some() {
            conds.push(format!("{} < ?", keys[0]));
        }
        let within: String = conds.iter().map(|c| format!(" AND {c}")).collect();
        let first = match conds.is_empty() {
            true => format!("{select} {order}"),
            false => format!("{select} WHERE {} {order}", conds.join(" AND ")),
        };
        Self {
            first,
            after: format!("{select} WHERE {}{within} {order}", after(&keys)),
            keys: keys.len(),
            bounds: lo.into_iter().chain(hi).collect(),
        }
    }

    /// The rows after `after` (all when empty), at most `limit`, in key order.
    ///
    /// # Errors
    /// When the query fails, or `after` has not one value per key column.
    pub async fn page(&self, conn: &mut Conn, after: &[Value], limit: usize) -> Result<Vec<Row>> {
        let (query, params) = self.query(after, limit)?;
        conn.exec(query, params)
            .await
            .context("keyset page query failed")
    }

    /// [`page`](Self::page) as the rows arrive: the server sends the next while the caller
    /// works on one. Read it to its end (or `drop_result`) before the connection's next query.
    ///
    /// # Errors
    /// As [`page`](Self::page).
    pub async fn stream<'a>(
        &self,
        conn: &'a mut Conn,
        after: &[Value],
        limit: usize,
    ) -> Result<mysql_async::QueryResult<'a, 'static, mysql_async::BinaryProtocol>> {
        let (query, params) = self.query(after, limit)?;
        conn.exec_iter(query, params)
            .await
            .context("keyset page query failed")
    }

    /// The page query after `after` and its parameters.
    fn query(&self, after: &[Value], limit: usize) -> Result<(&str, Vec<Value>)> {
        let limit = Value::UInt(limit as u64);
        if after.is_empty() {
            let mut params = self.bounds.clone();
            params.push(limit);
            return Ok((self.first.as_str(), params));
        }
        if after.len() != self.keys {
            bail!(
                "a snapshot key of {} values for a key of {} columns: the committed token is \
                 of another key; start over with a new snapshot",
                after.len(),
                self.keys
            );
        }
        let mut params = after_params(after);
        params.extend(self.bounds.iter().cloned());
        params.push(limit);
        Ok((self.after.as_str(), params))
    }
}

/// The parameters of [`after`]'s condition for the key `after` (one value per key column):
/// `k1 >= ? AND (k1 > ? OR (k1 = ? AND (k2 > ? OR …)))`, in that order.
pub(super) fn after_params(after: &[Value]) -> Vec<Value> {
    let mut params = after.first().cloned().into_iter().collect::<Vec<_>>();
    for (i, v) in after.iter().enumerate() {
        params.push(v.clone());
        if i + 1 < after.len() {
            params.push(v.clone());
        }
    }
    params
}

/// The condition "after the key (`?` per key part)" over the quoted key columns `keys`, in
/// the server's order (text in its collation), as [`Pager::page`] binds it ([`after_params`]).
pub(super) fn after(keys: &[String]) -> String {
    let mut cond = format!("{} > ?", keys[keys.len() - 1]);
    for k in keys[..keys.len() - 1].iter().rev() {
        cond = format!("{k} > ? OR ({k} = ? AND ({cond}))");
    }
    format!("{} >= ? AND ({cond})", keys[0])
}

#[cfg(test)]
mod tests {
    use super::*;
    use snowpipe_streaming::OffsetToken;

    fn key(k: &str) -> TokenKey {
        TokenKey::parse(k).unwrap()
    }

    #[test]
    fn keys_with_separators_quotes_and_multibyte_text_round_trip_unambiguously() {
        let text = Value::Bytes("a:b,c'd\"e\\f`g:/é漢🙂".as_bytes().to_vec());
        let bin = Value::Bytes(vec![0, 0xff, b':', b',', b'/']);
        let k = TokenKey::default()
            .next(&[&Value::Int(-7), &text, &bin, &Value::UInt(u64::MAX)])
            .unwrap();
        let rendered = k.render();
        assert!(!rendered.contains(':'), "{rendered}");
        assert_eq!(rendered.matches('/').count(), 1, "{rendered}");
        assert_eq!(k.key.split(',').count(), 4, "{rendered}");
        let back = TokenKey::parse(&rendered).unwrap();
        assert_eq!(back, k);
        assert_eq!(
            back.values().unwrap(),
            vec![Value::Int(-7), text, bin, Value::UInt(u64::MAX)]
        );
        for bad in ["x1", "xzz", "1,,2", "abc", ",", "7/x", "7/01", "7/-1"] {
            assert!(TokenKey::parse(bad).is_err(), "{bad}");
        }
        // A token an earlier version wrote: the key alone.
        assert_eq!(
            key("42"),
            TokenKey {
                key: "42".into(),
                after: 0
            }
        );
        assert_eq!(key("").values().unwrap(), vec![]);
    }

    #[test]
    fn a_key_past_the_token_limit_or_repeated_carries_the_last_key_with_a_count() {
        let long = Value::Bytes(vec![b'k'; TOKEN_KEY_MAX / 2 + 1]);
        assert_eq!(TokenKey::text(&[&long]).unwrap(), None);
        let fits = Value::Bytes(vec![b'k'; TOKEN_KEY_MAX / 2 - 1]);
        assert!(TokenKey::text(&[&fits]).unwrap().is_some());
        assert!(TokenKey::text(&[&Value::NULL]).is_err());
        let a = TokenKey::default().next(&[&Value::Int(1)]).unwrap();
        let b = a.next(&[&long]).unwrap();
        let c = b.next(&[&long]).unwrap();
        let d = c.next(&[&Value::Int(1)]).unwrap();
        assert_eq!(
            [a.render(), b.render(), c.render(), d.render()],
            ["1/0", "1/1", "1/2", "1/3"]
        );
        assert_eq!(TokenKey::default().next(&[&long]).unwrap().render(), "/1");
    }

    #[test]
    fn consecutive_tokens_never_repeat_or_go_back_by_the_sdks_rule() {
        // Keys in the server's order whose text alone would compare by a trailing number:
        // negative integers, hex that is all digits in a case-insensitive collation's order
        // ('a1' < 'A2'), composite keys, keys too long for a token, repeated --key columns.
        let long = |c: u8| Value::Bytes(vec![c; TOKEN_KEY_MAX]);
        let rows: Vec<Vec<Value>> = vec![
            vec![Value::Int(-5)],
            vec![Value::Int(-4)],
            vec![Value::Bytes(b"a1".to_vec())],
            vec![Value::Bytes(b"A2".to_vec())],
            vec![Value::Bytes(vec![0x61, 0x99])],
            vec![Value::Bytes(vec![0x62])],
            vec![long(b'p')],
            vec![long(b'q')],
            vec![Value::Bytes(b"r".to_vec())],
            vec![Value::Bytes(b"r".to_vec())],
        ];
        let mut k = TokenKey::default();
        let mut tokens = Vec::new();
        for r in &rows {
            k = k.next(&r.iter().collect::<Vec<_>>()).unwrap();
            tokens.push(OffsetToken::new(format!("s:b.000001:4:{}", k.render())).unwrap());
        }
        for w in tokens.windows(2) {
            let order = w[0].partial_cmp_numeric(&w[1]);
            assert!(
                !matches!(order, Some(Ordering::Equal | Ordering::Greater)),
                "{} then {}: {order:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn covers_only_what_is_certain() {
        assert!(key("10").covers(&key("9")));
        assert!(key("10").covers(&key("10")));
        assert!(!key("10").covers(&key("11")));
        assert!(key("2,5").covers(&key("1,900")));
        assert!(!key("2,5").covers(&key("2,6")));
        // Text parts: equal is certain, a different one is not (its collation decides).
        assert!(key("x61,5").covers(&key("x61,4")));
        assert!(!key("x62,5").covers(&key("x61,4")));
        assert!(!key("").covers(&key("1")));
        // A row after its key may be another row after a restart.
        assert!(!key("10/3").covers(&key("9/1")));
        assert!(key("10/3").covers(&key("9/0")));
        assert_eq!(key("x61,3").to_string(), "('a', 3)");
        assert_eq!(key("x61,3/2").to_string(), "('a', 3) (+2 rows)");
    }

    #[test]
    fn the_resume_condition_spells_out_the_key_order() {
        assert_eq!(after(&["`a`".into()]), "`a` >= ? AND (`a` > ?)");
        assert_eq!(
            after(&["`a`".into(), "`b`".into(), "`c`".into()]),
            "`a` >= ? AND (`a` > ? OR (`a` = ? AND (`b` > ? OR (`b` = ? AND (`c` > ?)))))"
        );
    }
}
