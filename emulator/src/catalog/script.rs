//! Splits a DDL script into statements with sqlparser's tokenizer, so semicolons inside
//! strings, quoted identifiers and comments never split a statement.

use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer};

use super::errors::CatalogError;

/// One statement of a script: its position, its source text and its tokens.
#[derive(Debug, Clone)]
pub(crate) struct RawStatement {
    /// 1-based statement number in the script (empty statements are not counted).
    pub(crate) number: usize,
    /// 1-based line where the statement starts.
    pub(crate) line: u64,
    /// The statement's source text, from its first to its last token (no `;`).
    pub(crate) text: String,
    /// The statement's tokens without whitespace and comments.
    pub(crate) tokens: Vec<Token>,
}

impl RawStatement {
    /// A one-line excerpt of the statement for notes and error messages.
    pub(crate) fn snippet(&self) -> String {
        snippet(&self.text)
    }
}

/// Collapses whitespace and cuts the text to about 80 characters.
pub(crate) fn snippet(text: &str) -> String {
    const MAX: usize = 80;
    let collapsed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if collapsed.chars().count() <= MAX {
        collapsed
    } else {
        let cut: String = collapsed.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

/// Splits `sql` into non-empty statements.
///
/// # Errors
///
/// [`CatalogError::Tokenize`] when the text cannot be tokenized (an unterminated string or
/// quoted identifier, for example).
pub(crate) fn split_statements(sql: &str) -> Result<Vec<RawStatement>, CatalogError> {
    let dialect = SnowflakeDialect;
    let tokens = Tokenizer::new(&dialect, sql)
        .tokenize_with_location()
        .map_err(|e| CatalogError::Tokenize {
            line: e.location.line,
            message: e.message,
        })?;
    let index = LineIndex::new(sql);
    let mut statements = Vec::new();
    let mut current: Vec<&TokenWithSpan> = Vec::new();
    for token in &tokens {
        match &token.token {
            Token::SemiColon | Token::EOF => {
                flush(sql, &index, &mut current, &mut statements);
            }
            Token::Whitespace(_) => {}
            _ => current.push(token),
        }
    }
    flush(sql, &index, &mut current, &mut statements);
    Ok(statements)
}

fn flush(
    sql: &str,
    index: &LineIndex,
    current: &mut Vec<&TokenWithSpan>,
    out: &mut Vec<RawStatement>,
) {
    let (Some(first), Some(last)) = (current.first(), current.last()) else {
        return;
    };
    let start = index.byte_offset(sql, first.span.start);
    let end = index.byte_offset(sql, last.span.end).max(start);
    let text = sql.get(start..end).unwrap_or_default().to_string();
    out.push(RawStatement {
        number: out.len() + 1,
        line: first.span.start.line,
        text,
        tokens: current.iter().map(|t| t.token.clone()).collect(),
    });
    current.clear();
}

/// Maps tokenizer locations (1-based line and character column) to byte offsets.
struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Self { line_starts }
    }

    fn byte_offset(&self, text: &str, location: Location) -> usize {
        let line = usize::try_from(location.line).unwrap_or(usize::MAX);
        let Some(&line_start) = line.checked_sub(1).and_then(|l| self.line_starts.get(l)) else {
            return text.len();
        };
        let column = usize::try_from(location.column.saturating_sub(1)).unwrap_or(usize::MAX);
        text[line_start..]
            .char_indices()
            .nth(column)
            .map_or(text.len(), |(i, _)| line_start + i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn semicolons_in_strings_and_comments_do_not_split() {
        let sql = "-- a; comment\nCREATE USER u COMMENT = 'a;b';\n/* x; y */ USE \"we;ird\";;\n  ";
        let statements = split_statements(sql).unwrap();
        let texts: Vec<_> = statements.iter().map(|s| s.text.as_str()).collect();
        assert_eq!(texts, ["CREATE USER u COMMENT = 'a;b'", "USE \"we;ird\""]);
        assert_eq!(statements[0].line, 2);
        assert_eq!(statements[1].number, 2);
        assert_eq!(statements[1].line, 3);
    }

    #[test]
    fn multibyte_text_keeps_correct_offsets() {
        let statements = split_statements("SELECT 'é€'; SELECT 2").unwrap();
        assert_eq!(statements[0].text, "SELECT 'é€'");
        assert_eq!(statements[1].text, "SELECT 2");
    }

    #[test]
    fn long_snippets_are_cut() {
        let long = format!("SELECT {}", "x, ".repeat(100));
        assert!(snippet(&long).ends_with("..."));
        assert_eq!(snippet("A\n   B"), "A B");
    }
}
