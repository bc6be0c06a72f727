//! A statement's table names rewritten to the emulator's SQLite tables: `T`, `S.T` or `D.S.T`
//! after `FROM`/`JOIN` (and `ERROR_TABLE(t)`), resolved against the request's
//! `database`/`schema` (matched case-sensitively, `current.rs`), common table expressions left
//! alone; Snowflake's semi-structured paths and `::` text casts after a column (see
//! `paths.rs`); and `TRY_CAST(` as SQLite's `CAST(`, which never fails.
//!
//! One pass over the statement's tokens: [`Output`] is the text written so far and the column
//! reference a path or a cast applies to; [`Tables`] writes a table name as its SQLite table.

use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use super::current::{current_database, current_schema};
use super::failure::failed;
use super::paths::{cast_after, path_after_colon, unsupported_cast};
use crate::base::api_error::ApiError;
use crate::catalog::{Catalog, Table};

/// The most casts (`::TEXT`) and paths one column reference may chain.
const MAX_CHAINED: usize = 64;

/// A statement rewritten for SQLite.
#[derive(Debug)]
pub(super) struct Rewritten {
    /// The SQLite statement.
    pub sql: String,
    /// The names of the statement's common table expressions.
    pub ctes: Vec<String>,
    /// (storage name, Snowflake name) of the columns of the statement's tables stored under
    /// another name (`catalog::storage_names`): a result column of such a name is the
    /// Snowflake one.
    pub renamed: Vec<(String, String)>,
}

/// Replaces the table names after FROM/JOIN with the SQLite table names, and the names of
/// those tables' columns stored under another name (a quoted name differing from another
/// column's only in case) with their storage names.
pub(super) fn rewrite(
    catalog: &Catalog,
    sql: &str,
    database: Option<&str>,
    schema: Option<&str>,
) -> Result<Rewritten, ApiError> {
    let tokens = Tokenizer::new(&SnowflakeDialect {}, sql)
        .tokenize()
        .map_err(|e| failed("001003", "42000", format!("SQL compilation error: {e}")))?;
    one_statement(&tokens)?;
    let ctes = cte_names(&tokens);
    let tables = Tables {
        catalog,
        database,
        schema,
        ctes: &ctes,
    };
    let mut out = Output {
        text: String::with_capacity(sql.len() + 32),
        operand: None,
        after_period: false,
        chained: 0,
    };
    let renamed = renamed_columns(&tables, &tokens);
    let mut i = 0;
    let mut after_from = false;
    while i < tokens.len() {
        if let Some(next) = out.path_or_cast(&tokens, i)? {
            i = next;
            continue;
        }
        let token = &tokens[i];
        out.track_operand(token);
        if after_from && matches!(token, Token::Word(_)) {
            i = tables.write(&tokens, i, &mut out.text)?;
            after_from = false;
            continue;
        }
        after_from = table_name_follows(token, after_from);
        if is_try_cast(&tokens, i) {
            // SQLite's CAST never fails: it is Snowflake's TRY_CAST but for a text that is no
            // number, which it reads as its leading digits (or 0) where TRY_CAST gives NULL.
            out.text.push_str("CAST");
            i += 1;
            continue;
        }
        match stored_name(&renamed, token) {
            Some(stored) => out.text.push_str(&crate::convert::quote_ident(stored)),
            None => out.text.push_str(&token_sql(token)),
        }
        i += 1;
    }
    Ok(Rewritten {
        sql: out.text,
        ctes,
        renamed,
    })
}

/// Whether `tokens[i]` is Snowflake's `TRY_CAST(`.
fn is_try_cast(tokens: &[Token], i: usize) -> bool {
    matches!(&tokens[i], Token::Word(w) if w.quote_style.is_none()
        && w.value.eq_ignore_ascii_case("TRY_CAST"))
        && tokens.get(i + 1) == Some(&Token::LParen)
}

/// (storage name, Snowflake name) of the columns stored under another name in the tables the
/// statement names after FROM/JOIN (usually none).
fn renamed_columns(tables: &Tables<'_>, tokens: &[Token]) -> Vec<(String, String)> {
    let mut renamed = Vec::new();
    let mut after_from = false;
    for (i, token) in tokens.iter().enumerate() {
        if after_from && matches!(token, Token::Word(_)) {
            let (parts, _) = name_parts(tokens, i);
            if let Ok(Some(table)) = tables.find(&parts) {
                for (c, stored) in table.columns.iter().zip(table.storage_names()) {
                    if stored != c.name {
                        renamed.push((stored, c.name.clone()));
                    }
                }
            }
            after_from = false;
            continue;
        }
        after_from = table_name_follows(token, after_from);
    }
    renamed
}

/// The storage name of the column `token` names (quoted as written, unquoted upper-cased),
/// when it is one stored under another name.
fn stored_name<'r>(renamed: &'r [(String, String)], token: &Token) -> Option<&'r str> {
    let Token::Word(w) = token else { return None };
    if renamed.is_empty() {
        return None;
    }
    let name = if w.quote_style.is_some() {
        w.value.clone()
    } else {
        w.value.to_uppercase()
    };
    renamed
        .iter()
        .find(|(_, snowflake)| *snowflake == name)
        .map(|(stored, _)| stored.as_str())
}

/// One statement per request, as Snowflake without MULTI_STATEMENT_COUNT.
///
/// # Errors
/// 422 `000008` when anything but whitespace and `;` follows the first `;`.
fn one_statement(tokens: &[Token]) -> Result<(), ApiError> {
    if let Some(semi) = tokens.iter().position(|t| *t == Token::SemiColon) {
        if tokens[semi + 1..]
            .iter()
            .any(|t| !matches!(t, Token::Whitespace(_) | Token::SemiColon))
        {
            return Err(failed(
                "000008",
                "0A000",
                "Actual statement count 2 did not match the desired statement count 1.",
            ));
        }
    }
    Ok(())
}

/// Whether a table name may start after `token` (a table name is due when `after_from`):
/// after `FROM` or `JOIN`, through whitespace.
fn table_name_follows(token: &Token, after_from: bool) -> bool {
    match token {
        Token::Word(w) if w.quote_style.is_none() => {
            let kw = w.value.to_ascii_uppercase();
            after_from || kw == "FROM" || kw == "JOIN"
        }
        Token::Whitespace(_) => after_from,
        _ => false,
    }
}

/// The statement as rewritten so far, and the column reference a path or a cast applies to.
struct Output {
    text: String,
    /// Where in `text` the column reference just written (`c`, `t.c`, a path on one) starts.
    operand: Option<usize>,
    /// The last token was a `.` (so a word continues the column reference).
    after_period: bool,
    /// Casts (and paths) chained on the current operand: each rewrites the text before it, so
    /// a chain costs its length squared. (A path `:a.b:c` is one link.)
    chained: usize,
}

impl Output {
    /// At a path (`:`) or a cast (`::`) on the column reference just written: rewrites the
    /// reference and returns the index of the token after the path or cast; `None` at any
    /// other token.
    ///
    /// # Errors
    /// 422 `001003` for a chain of more than [`MAX_CHAINED`] casts and paths, a path without a
    /// key, or a cast not after a column reference or to another type than text.
    fn path_or_cast(&mut self, tokens: &[Token], i: usize) -> Result<Option<usize>, ApiError> {
        let token = &tokens[i];
        if matches!(token, Token::Colon | Token::DoubleColon) && self.operand.is_some() {
            self.chained += 1;
            if self.chained > MAX_CHAINED {
                return Err(failed(
                    "001003",
                    "42000",
                    format!(
                        "SQL compilation error: more than {MAX_CHAINED} casts and paths \
                         chained on one column; the emulator stops there"
                    ),
                ));
            }
        }
        let (rewritten, next) = match (token, self.operand) {
            (Token::Colon, Some(start)) => {
                let (path, next) = path_after_colon(tokens, i)?;
                let base = self.text.split_off(start);
                #[cfg(test)]
                work::add(base.len());
                (format!("({base} ->> {path})"), next)
            }
            (Token::DoubleColon, Some(start)) => {
                let (ty, next) = cast_after(tokens, i)?;
                let base = self.text.split_off(start);
                #[cfg(test)]
                work::add(base.len());
                (format!("CAST({base} AS {ty})"), next)
            }
            (Token::DoubleColon, None) => return Err(unsupported_cast()),
            _ => return Ok(None),
        };
        self.text.push_str(&rewritten);
        Ok(Some(next))
    }

    /// Notes where a column reference starts (a word not after a `.`) and where it ends.
    fn track_operand(&mut self, token: &Token) {
        match token {
            Token::Word(_) if !self.after_period || self.operand.is_none() => {
                self.operand = Some(self.text.len());
                self.chained = 0;
            }
            Token::Word(_) | Token::Whitespace(_) => {}
            Token::Period if self.operand.is_some() => {}
            _ => self.operand = None,
        }
        self.after_period = *token == Token::Period;
    }
}

/// What a table name after `FROM`/`JOIN` resolves against.
struct Tables<'a> {
    catalog: &'a Catalog,
    database: Option<&'a str>,
    schema: Option<&'a str>,
    /// The statement's common table expressions, left as they are.
    ctes: &'a [String],
}

impl Tables<'_> {
    /// Writes the table name at `tokens[i]` (`T`, `S.T`, `D.S.T`, `ERROR_TABLE(t)`, or a
    /// common table expression's name, kept) to `out` as its SQLite table; returns the index
    /// of the token after it.
    ///
    /// # Errors
    /// 422 `002003` for a table the catalog does not have (or an `ERROR_TABLE` of a table
    /// without error logging), `001003` for an `ERROR_TABLE` of more than one name, and the
    /// errors of [`current_database`] and [`current_schema`] for a name they complete.
    fn write(&self, tokens: &[Token], i: usize, out: &mut String) -> Result<usize, ApiError> {
        // `ERROR_TABLE(<table>)`: the table's error table (docs/protocol-types-and-sql.md "Table
        // features").
        let error_table = matches!(&tokens[i], Token::Word(w) if w.quote_style.is_none()
            && w.value.eq_ignore_ascii_case("ERROR_TABLE"))
            && tokens.get(i + 1) == Some(&Token::LParen);
        let (parts, j) = name_parts(tokens, if error_table { i + 2 } else { i });
        // A common table expression of this statement (`WITH d AS (…) … FROM d`).
        if let [name] = parts.as_slice() {
            if self.ctes.iter().any(|c| c == name) {
                for t in &tokens[i..=j] {
                    out.push_str(&token_sql(t));
                }
                return Ok(j + 1);
            }
        }
        let table = self.find(&parts)?;
        if error_table {
            let Some(table) = table.filter(|t| t.error_logging) else {
                return Err(failed(
                    "002003",
                    "42S02",
                    format!(
                        "SQL compilation error:\nObject 'ERROR_TABLE({})' does not exist or \
                         not authorized (the table needs ERROR_LOGGING = TRUE).",
                        parts.join(".")
                    ),
                ));
            };
            if tokens.get(j + 1) != Some(&Token::RParen) {
                return Err(failed(
                    "001003",
                    "42000",
                    "SQL compilation error: ERROR_TABLE takes one table name",
                ));
            }
            out.push_str(&crate::convert::quote_ident(&table.error_table_name()));
            return Ok(j + 2);
        }
        let Some(table) = table else {
            return Err(failed(
                "002003",
                "42S02",
                format!(
                    "SQL compilation error:\nObject '{}' does not exist or not authorized.",
                    parts.join(".")
                ),
            ));
        };
        out.push_str(&crate::convert::quote_ident(&table.qualified_name()));
        Ok(j + 1)
    }

    /// The catalog's table of exactly the name `parts` (`[T]`, `[S, T]` or `[D, S, T]`,
    /// completed with the current database and schema).
    ///
    /// # Errors
    /// As [`current_database`] and [`current_schema`].
    fn find(&self, parts: &[String]) -> Result<Option<&Table>, ApiError> {
        let (catalog, database) = (self.catalog, self.database);
        // Every name is matched exactly: the statement's are normalized (unquoted
        // upper-cased), the request's `database`/`schema` are case-sensitive [SQL].
        let (db, sch, name) = match parts {
            [t] => (
                current_database(catalog, database)?,
                current_schema(catalog, database, self.schema)?,
                t.clone(),
            ),
            [s, t] => (current_database(catalog, database)?, s.clone(), t.clone()),
            [d, s, t] => (d.clone(), s.clone(), t.clone()),
            _ => (String::new(), String::new(), String::new()),
        };
        Ok(catalog.table_exact(&db, &sch, &name))
    }
}

/// The names of `WORD (. WORD){0,2}` from `tokens[start]` (unquoted upper-cased), and the
/// index where the name ends (its last word, or the token after a trailing `.`).
fn name_parts(tokens: &[Token], start: usize) -> (Vec<String>, usize) {
    let mut parts = Vec::new();
    let mut j = start;
    while let Some(Token::Word(w)) = tokens.get(j) {
        parts.push(if w.quote_style.is_some() {
            w.value.clone()
        } else {
            w.value.to_uppercase()
        });
        if tokens.get(j + 1) == Some(&Token::Period) && parts.len() < 3 {
            j += 2;
        } else {
            break;
        }
    }
    (parts, j)
}

/// A token as SQL text: a string literal with its quotes doubled again (the tokenizer's text
/// of `'it''s'` is `'it's'`), anything else as the tokenizer prints it.
fn token_sql(token: &Token) -> String {
    match token {
        Token::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// The names `WITH [RECURSIVE] a [(cols)] AS (…), b AS (…)` defines (upper-cased unless
/// quoted, like table names).
fn cte_names(tokens: &[Token]) -> Vec<String> {
    let significant: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let is_kw = |t: &Token, kw: &str| matches!(t, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(kw));
    // After each `(`: the index past its `)` (the end when it has none), found once, so that
    // skipping a parenthesis costs nothing however many candidates nest (`, a(, a(, …`).
    let mut after_close = vec![significant.len(); significant.len()];
    let mut open = Vec::new();
    for (i, t) in significant.iter().enumerate() {
        #[cfg(test)]
        work::add(1);
        match t {
            Token::LParen => open.push(i),
            Token::RParen => {
                if let Some(o) = open.pop() {
                    after_close[o] = i + 1;
                }
            }
            _ => {}
        }
    }
    let mut names = Vec::new();
    for k in 1..significant.len() {
        #[cfg(test)]
        work::add(1);
        let before = significant[k - 1];
        let Token::Word(w) = significant[k] else {
            continue;
        };
        if !(is_kw(before, "WITH") || is_kw(before, "RECURSIVE") || *before == Token::Comma) {
            continue;
        }
        // Skip a column list `(a, b)`.
        let mut at = k + 1;
        if significant.get(at) == Some(&&Token::LParen) {
            at = after_close[at];
        }
        let as_ = significant.get(at).is_some_and(|t| is_kw(t, "AS"));
        if as_ && significant.get(at + 1) == Some(&&Token::LParen) {
            names.push(if w.quote_style.is_some() {
                w.value.clone()
            } else {
                w.value.to_uppercase()
            });
        }
    }
    names
}

/// The rewrite's work on this thread, for tests (counted, not timed): bytes a cast or path
/// copied, and tokens the common table expressions' scan visited.
#[cfg(test)]
pub(super) mod work {
    thread_local! {
        static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }

    /// Adds `n`.
    pub(super) fn add(n: usize) {
        WORK.with(|w| w.set(w.get() + n));
    }

    /// The work since the last call.
    pub(in crate::sql_api) fn take() -> usize {
        WORK.with(|w| w.replace(0))
    }
}
