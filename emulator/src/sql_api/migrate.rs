//! `SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('<table>', '<classic channel>', '<channel>',
//! '<pipe>')`: the statement connector v4 runs when its channel has no committed offset
//! token (docs/protocol-types-and-sql.md "Classic channel offset migration"). Parsed here against the
//! request's database and schema; the service (`service/classic.rs`) applies it.

use serde_json::Value;

use super::current::{current_database, current_schema};
use super::failure::failed;
use crate::base::api_error::ApiError;
use crate::catalog::Catalog;

/// The function's name, as the connector spells it.
pub(crate) const FUNCTION: &str = "SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET";

/// A parsed call, resolved against the request's database and schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Migrate {
    pub database: String,
    pub schema: String,
    /// The table, normalized (unquoted upper-cased, quoted as written).
    pub table: String,
    /// The classic channel's name, as given.
    pub classic: String,
    /// The high-performance channel's name, as given.
    pub channel: String,
    /// The pipe, as given (resolved like a REST pipe name).
    pub pipe: String,
}

/// Parses `statement` when it is a call of the function: `None` when it is not.
///
/// # Errors
/// 422 `090105`/`090106` without a current database/schema; 422 `001044` for arguments that
/// are not four string literals.
pub(crate) fn parse(
    catalog: &Catalog,
    statement: &str,
    database: Option<&str>,
    schema: Option<&str>,
) -> Result<Option<Migrate>, ApiError> {
    let s = statement.trim().trim_end_matches(';').trim_end();
    let Some(rest) = strip_word(s, "SELECT") else {
        return Ok(None);
    };
    let Some(rest) = strip_word(rest.trim_start(), FUNCTION) else {
        return Ok(None);
    };
    let args = rest
        .trim()
        .strip_prefix('(')
        .and_then(|r| r.strip_suffix(')'))
        .and_then(literals)
        .filter(|a| a.len() == 4)
        .ok_or_else(|| {
            failed(
                "001044",
                "42P13",
                format!(
                    "SQL compilation error: {FUNCTION} takes four string literals: \
                     ('<table>', '<classic channel>', '<channel>', '<pipe>')"
                ),
            )
        })?;
    let database = current_database(catalog, database)?;
    let schema = current_schema(catalog, Some(&database), schema)?;
    let [table, classic, channel, pipe]: [String; 4] =
        args.try_into().expect("four arguments checked");
    Ok(Some(Migrate {
        database,
        schema,
        table: identifier(&table),
        classic,
        channel,
        pipe,
    }))
}

/// `s` without its leading keyword `word` (ignoring case), when a word boundary follows.
fn strip_word<'a>(s: &'a str, word: &str) -> Option<&'a str> {
    let head = s.get(..word.len())?;
    let rest = &s[word.len()..];
    let boundary = rest
        .chars()
        .next()
        .is_none_or(|c| !(c.is_alphanumeric() || c == '_' || c == '$'));
    (head.eq_ignore_ascii_case(word) && boundary).then_some(rest)
}

/// Comma-separated single-quoted literals (`''` is a quote; `\` escapes the next character,
/// as in Snowflake's string constants: `\\` a backslash, `\'` a quote, `\n` a newline),
/// nothing else.
fn literals(s: &str) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let mut chars = s.trim().chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        if chars.next()? != '\'' {
            return None;
        }
        let mut lit = String::new();
        loop {
            match chars.next()? {
                '\'' if chars.peek() == Some(&'\'') => {
                    chars.next();
                    lit.push('\'');
                }
                '\'' => break,
                '\\' => lit.push(match chars.next()? {
                    'n' => '\n',
                    't' => '\t',
                    'r' => '\r',
                    '0' => '\0',
                    'b' => '\u{8}',
                    'f' => '\u{c}',
                    other => other,
                }),
                c => lit.push(c),
            }
        }
        out.push(lit);
        while chars.peek().is_some_and(|c| c.is_whitespace()) {
            chars.next();
        }
        match chars.next() {
            None => return Some(out),
            Some(',') => {}
            Some(_) => return None,
        }
    }
}

/// A name given as a string: `"x"` keeps its case (`""` is a quote), anything else is
/// upper-cased (docs/protocol.md "Names").
pub(crate) fn identifier(s: &str) -> String {
    crate::catalog::unquote(s).unwrap_or_else(|| s.to_uppercase())
}

/// The SQL API answer: one row, one text column holding the function's JSON.
pub(crate) fn answer(result: &Value, handle: &str) -> Value {
    super::encode::one_text_row(FUNCTION, &result.to_string(), handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_parse_and_other_statements_are_not_calls() {
        let mut c = Catalog::new();
        c.apply_sql("CREATE DATABASE D; CREATE SCHEMA D.S;")
            .unwrap();
        let call = |sql: &str| parse(&c, sql, Some("D"), Some("S"));
        let m = call("select system$migrate_ssv1_channel_offset('\"t\"', 'T_0', 'k_t_0', 'P');")
            .unwrap()
            .unwrap();
        assert_eq!(
            (
                m.table.as_str(),
                m.classic.as_str(),
                m.channel.as_str(),
                m.pipe.as_str()
            ),
            ("t", "T_0", "k_t_0", "P")
        );
        assert_eq!(
            call("SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET( 'orders' , 'it''s', 'c', 'p' )")
                .unwrap()
                .unwrap()
                .classic,
            "it's"
        );
        assert_eq!(
            literals(r"'a\\''b', 'c\'d', 'e\nf'").unwrap(),
            ["a\\'b", "c'd", "e\nf"],
            "backslash escapes, as Snowflake reads string constants"
        );
        assert_eq!(call("SELECT 1").unwrap(), None);
        assert_eq!(
            call("SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSETS('a')").unwrap(),
            None
        );
        for bad in [
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('t', 'a', 'b')",
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('t', 'a', 'b', p)",
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('t', 'a', 'b', 'p') FROM x",
        ] {
            assert!(
                call(bad)
                    .unwrap_err()
                    .message
                    .contains("four string literals"),
                "{bad}"
            );
        }
        let no_db = parse(
            &c,
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('t','a','b','p')",
            None,
            None,
        );
        assert!(no_db.is_err());
    }
}
