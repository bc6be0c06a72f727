//! What the statements answered from the catalog (`SHOW TABLES`, `SHOW CHANNELS`,
//! `DESC TABLE|PIPE`) share: where they look ([`Lookup`]: the catalog, the request's database
//! and schema, the databases the role may read), and the reading of their words, the
//! statement tokenized as Snowflake SQL with white space and a final `;` left out.

use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use crate::base::api_error::ApiError;
use crate::catalog::Catalog;

use super::failure::failed;

/// Where a statement answered from the catalog looks: the catalog, the request's database and
/// schema (as written), and whether the caller's role may read a database.
pub(crate) struct Lookup<'a> {
    pub(super) catalog: &'a Catalog,
    pub(super) database: Option<&'a str>,
    pub(super) schema: Option<&'a str>,
    granted: &'a dyn Fn(&str) -> bool,
}

impl<'a> Lookup<'a> {
    pub(crate) fn new(
        catalog: &'a Catalog,
        database: Option<&'a str>,
        schema: Option<&'a str>,
        granted: &'a dyn Fn(&str) -> bool,
    ) -> Self {
        Lookup {
            catalog,
            database,
            schema,
            granted,
        }
    }

    /// Whether the caller's role may read database `db` (as stored).
    pub(super) fn may_read(&self, db: &str) -> bool {
        (self.granted)(db)
    }
}

/// The tokens of `text` that are not white space, or `None` when it does not tokenize.
pub(super) fn tokens(text: &str) -> Option<Vec<Token>> {
    let tokens = Tokenizer::new(&SnowflakeDialect {}, text).tokenize().ok()?;
    Some(
        tokens
            .into_iter()
            .filter(|t| !matches!(t, Token::Whitespace(_)))
            .collect(),
    )
}

/// The words of `statement` after `SHOW <what>`, or `None` when it is not one (or does not
/// tokenize).
pub(super) fn show(statement: &str, what: &str) -> Option<Vec<Token>> {
    let mut words = tokens(statement.trim().trim_end_matches(';'))?;
    let is_show = matches!(words.as_slice(), [s, w, ..] if keyword(s, "SHOW") && keyword(w, what));
    is_show.then(|| words.split_off(2))
}

/// `LIKE '<pattern>'` at the start of `words`: the pattern and the words after it, else
/// `None` and `words` whole.
pub(super) fn like(words: &[Token]) -> (Option<String>, &[Token]) {
    match words {
        [l, Token::SingleQuotedString(p), rest @ ..] if keyword(l, "LIKE") => {
            (Some(p.clone()), rest)
        }
        _ => (None, words),
    }
}

/// `001003` for a form of the statement this does not read: "the emulator reads `reads`".
pub(super) fn unread(reads: &str) -> ApiError {
    failed("001003", "42000", format!("the emulator reads {reads}"))
}

/// Whether `t` is the unquoted keyword `k` (any case).
pub(super) fn keyword(t: &Token, k: &str) -> bool {
    matches!(t, Token::Word(Word { value, quote_style: None, .. }) if value.eq_ignore_ascii_case(k))
}
