//! Snowflake's semi-structured paths and text casts in SQL API statements, rewritten for
//! SQLite, so the documented error-table queries run unchanged (docs/protocol-types-and-sql.md "SQL API"):
//!
//! * `col:key`, `col:"Key"`, `col:$1`, then any of `.key`, `:key`, `[n]` →
//!   `(col ->> '$."key"…')`, SQLite's JSON extraction of the value as SQL: a string is its
//!   text, so `WHERE error_metadata:service = 'snowpipe_streaming'` compares as on Snowflake.
//!   Keys are case-sensitive, as Snowflake's element names are. Unlike Snowflake, whose path
//!   gives a VARIANT (a string prints with its JSON quotes), a path that is not cast prints a
//!   string without quotes; cast it (`::STRING`) for the same text on both.
//! * `x::STRING` (also `VARCHAR`, `TEXT`) after a column or a path → `CAST(x AS TEXT)`. Other
//!   `::` casts are refused (SQLite's conversions differ from Snowflake's): use `CAST`.

use sqlparser::tokenizer::Token;

use super::failure::failed;
use crate::base::api_error::ApiError;

/// The JSON path (as a SQL string literal) after the `:` at `tokens[colon]`, and the index
/// of the first token after it.
///
/// # Errors
/// 422 `001003` when no key follows the `:`, or a key holds a `"`.
pub(super) fn path_after_colon(
    tokens: &[Token],
    colon: usize,
) -> Result<(String, usize), ApiError> {
    let mut path = String::from("$");
    let mut i = colon;
    loop {
        match (tokens.get(i), tokens.get(i + 1), tokens.get(i + 2)) {
            (Some(Token::Colon | Token::Period), Some(key), _) => {
                let key = match key {
                    Token::Word(w) => w.value.as_str(),
                    Token::Placeholder(p) if p.starts_with('$') => p.as_str(),
                    _ if i == colon => return Err(no_key()),
                    _ => break,
                };
                if key.contains('"') {
                    return Err(failed(
                        "001003",
                        "42000",
                        format!(
                            "SQL compilation error: the emulator's SQL API cannot read the path \
                             key {key:?} (it holds a double quote)"
                        ),
                    ));
                }
                path.push_str(&format!(".\"{key}\""));
                i += 2;
            }
            (Some(Token::LBracket), Some(Token::Number(n, _)), Some(Token::RBracket))
                if n.bytes().all(|b| b.is_ascii_digit()) =>
            {
                path.push_str(&format!("[{n}]"));
                i += 3;
            }
            _ if i == colon => return Err(no_key()),
            _ => break,
        }
    }
    Ok((format!("'{}'", path.replace('\'', "''")), i))
}

fn no_key() -> ApiError {
    failed(
        "001003",
        "42000",
        "SQL compilation error: a path needs a key after ':' (col:key, col:\"Key\", col:key.sub)",
    )
}

/// The SQLite type of the `::` cast at `tokens[at]`, and the index of the token after it.
///
/// # Errors
/// 422 `001003` for a type other than `STRING`, `VARCHAR` or `TEXT`.
pub(super) fn cast_after(tokens: &[Token], at: usize) -> Result<(&'static str, usize), ApiError> {
    match tokens.get(at + 1) {
        Some(Token::Word(w))
            if w.quote_style.is_none()
                && ["STRING", "VARCHAR", "TEXT"]
                    .iter()
                    .any(|t| w.value.eq_ignore_ascii_case(t)) =>
        {
            Ok(("TEXT", at + 2))
        }
        _ => Err(unsupported_cast()),
    }
}

/// The refusal of a `::` cast the emulator does not rewrite.
pub(super) fn unsupported_cast() -> ApiError {
    failed(
        "001003",
        "42000",
        "SQL compilation error: the emulator's SQL API supports `::STRING` (`::VARCHAR`, \
         `::TEXT`) after a column or a path only; write CAST(<expr> AS <type>) for other \
         conversions (SQLite's rules)",
    )
}
