//! A statement's table names rewritten to the emulator's SQLite tables: `T`, `S.T` or `D.S.T`
//! after `FROM`/`JOIN` (and `ERROR_TABLE(t)`), resolved against the request's
//! `database`/`schema` (matched case-sensitively), common table expressions left alone; and
//! Snowflake's semi-structured paths and `::` text casts after a column (see `paths.rs`).

use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::api_error::ApiError;
use crate::catalog::Catalog;

/// The most casts (`::TEXT`) and paths one column reference may chain.
const MAX_CHAINED: usize = 64;

/// A SQL API statement failure: 422 with Snowflake's code and SQLSTATE.
pub(super) fn failed(code: &str, sql_state: &str, message: impl Into<String>) -> ApiError {
    ApiError::new(422, code, message.into()).with_sql_state(sql_state)
}

/// Replaces the table names after FROM/JOIN with the SQLite table names; also returns the
/// names of the statement's common table expressions.
pub(super) fn rewrite(
    catalog: &Catalog,
    sql: &str,
    database: Option<&str>,
    schema: Option<&str>,
) -> Result<(String, Vec<String>), ApiError> {
    let tokens = Tokenizer::new(&SnowflakeDialect {}, sql)
        .tokenize()
        .map_err(|e| failed("001003", "42000", format!("SQL compilation error: {e}")))?;
    // One statement per request, as Snowflake without MULTI_STATEMENT_COUNT.
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
    let ctes = cte_names(&tokens);
    let mut out = String::with_capacity(sql.len() + 32);
    let mut i = 0;
    let mut after_from = false;
    // Where in `out` the column reference just written (`c`, `t.c`, a path on one) starts.
    let mut operand: Option<usize> = None;
    let mut after_period = false;
    // Casts (and paths) chained on the current operand: each rewrites the text before it, so
    // a chain costs its length squared. (A path `:a.b:c` is one link.)
    let mut chained = 0usize;
    while i < tokens.len() {
        let token = &tokens[i];
        if matches!(token, Token::Colon | Token::DoubleColon) && operand.is_some() {
            chained += 1;
            if chained > MAX_CHAINED {
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
        if let (Token::Colon, Some(start)) = (token, operand) {
            let (path, next) = super::paths::path_after_colon(&tokens, i)?;
            let base = out.split_off(start);
            out.push_str(&format!("({base} ->> {path})"));
            i = next;
            continue;
        }
        if *token == Token::DoubleColon {
            let Some(start) = operand else {
                return Err(super::paths::unsupported_cast());
            };
            let (ty, next) = super::paths::cast_after(&tokens, i)?;
            let base = out.split_off(start);
            out.push_str(&format!("CAST({base} AS {ty})"));
            i = next;
            continue;
        }
        match token {
            Token::Word(_) if !after_period || operand.is_none() => {
                operand = Some(out.len());
                chained = 0;
            }
            Token::Word(_) | Token::Whitespace(_) => {}
            Token::Period if operand.is_some() => {}
            _ => operand = None,
        }
        after_period = *token == Token::Period;
        if after_from && matches!(token, Token::Word(_)) {
            // `ERROR_TABLE(<table>)`: the table's error table (docs/protocol.md "Table
            // features").
            let error_table = matches!(token, Token::Word(w) if w.quote_style.is_none()
                && w.value.eq_ignore_ascii_case("ERROR_TABLE"))
                && tokens.get(i + 1) == Some(&Token::LParen);
            // Collect WORD (. WORD){0,2}.
            let mut parts = Vec::new();
            let mut j = if error_table { i + 2 } else { i };
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
            // A common table expression of this statement (`WITH d AS (…) … FROM d`).
            if let [name] = parts.as_slice() {
                if ctes.iter().any(|c| c == name) {
                    after_from = false;
                    for t in &tokens[i..=j] {
                        out.push_str(&token_sql(t));
                    }
                    i = j + 1;
                    continue;
                }
            }
            // Every name is matched exactly: the statement's are normalized (unquoted
            // upper-cased), the request's `database`/`schema` are case-sensitive [SQL].
            let (db, sch, name) = match parts.as_slice() {
                [t] => (
                    current_database(catalog, database)?,
                    current_schema(catalog, database, schema)?,
                    t.clone(),
                ),
                [s, t] => (current_database(catalog, database)?, s.clone(), t.clone()),
                [d, s, t] => (d.clone(), s.clone(), t.clone()),
                _ => (String::new(), String::new(), String::new()),
            };
            let table = catalog.table_exact(&db, &sch, &name);
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
                i = j + 2;
                after_from = false;
                continue;
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
            i = j + 1;
            after_from = false;
            continue;
        }
        match token {
            Token::Word(w) if w.quote_style.is_none() => {
                let kw = w.value.to_ascii_uppercase();
                if kw == "FROM" || kw == "JOIN" {
                    after_from = true;
                }
            }
            Token::Whitespace(_) => {}
            _ => after_from = false,
        }
        out.push_str(&token_sql(token));
        i += 1;
    }
    Ok((out, ctes))
}

/// A token as SQL text: a string literal with its quotes doubled again (the tokenizer's text
/// of `'it''s'` is `'it's'`), anything else as the tokenizer prints it.
fn token_sql(token: &Token) -> String {
    match token {
        Token::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
        other => other.to_string(),
    }
}

/// The statement's current database: the request's `database`, matched case-sensitively as
/// Snowflake does ("must match the case of the field returned by a SQL SHOW command" [SQL]).
///
/// # Errors
///
/// 422 `090105` when the request names none, or none of exactly that name exists (a hint
/// names the database that differs only in case).
pub(super) fn current_database(
    catalog: &Catalog,
    database: Option<&str>,
) -> Result<String, ApiError> {
    match database {
        Some(d) if catalog.has_database_exact(d) => Ok(d.to_owned()),
        _ => Err(no_current(
            "090105",
            "database",
            database,
            catalog.has_database(database.unwrap_or("")),
        )),
    }
}

/// The statement's current schema: the request's `schema` in its current database, matched
/// case-sensitively.
///
/// # Errors
///
/// As [`current_database`], and 422 `090106` for a schema that is not there.
pub(super) fn current_schema(
    catalog: &Catalog,
    database: Option<&str>,
    schema: Option<&str>,
) -> Result<String, ApiError> {
    let db = current_database(catalog, database)?;
    match schema {
        Some(s) if catalog.has_schema_exact(&db, s) => Ok(s.to_owned()),
        _ => Err(no_current(
            "090106",
            "schema",
            schema,
            catalog.has_schema(&db, schema.unwrap_or("")),
        )),
    }
}

/// A hint when a request field names an object only in another case.
/// 422 `code`: the session has no current `kind` (`database` or `schema`), with a hint when
/// one differs from the requested name only in case.
fn no_current(code: &str, kind: &str, given: Option<&str>, exists_ignoring_case: bool) -> ApiError {
    failed(
        code,
        "22000",
        format!(
            "Cannot perform SELECT. This session does not have a current {kind}. Call \
             'USE {}', or use a qualified name.{}",
            kind.to_ascii_uppercase(),
            case_hint(kind, given, exists_ignoring_case)
        ),
    )
}

fn case_hint(kind: &str, given: Option<&str>, exists_ignoring_case: bool) -> String {
    match given {
        Some(name) if exists_ignoring_case => format!(
            " (the request's {kind} \"{name}\" matches only in another case: the SQL API's \
             database and schema fields are case-sensitive; an unquoted name is stored in \
             upper case)"
        ),
        _ => String::new(),
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
