//! The words of a `SHOW …` statement, for the readers of `SHOW TABLES` and `SHOW CHANNELS`:
//! the statement tokenized as Snowflake SQL, white space and a final `;` left out.

use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

/// The tokens of `statement` that are not white space, or `None` when it does not tokenize.
pub(super) fn words(statement: &str) -> Option<Vec<Token>> {
    let text = statement.trim().trim_end_matches(';');
    let tokens = Tokenizer::new(&SnowflakeDialect {}, text).tokenize().ok()?;
    Some(
        tokens
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect(),
    )
}

/// Whether `t` is the unquoted keyword `k` (any case).
pub(super) fn keyword(t: &Token, k: &str) -> bool {
    matches!(t, Token::Word(Word { value, quote_style: None, .. }) if value.eq_ignore_ascii_case(k))
}

/// Whether `words` start with `SHOW <what>`.
pub(super) fn is_show(words: &[Token], what: &str) -> bool {
    matches!(words, [show, w, ..] if keyword(show, "SHOW") && keyword(w, what))
}
