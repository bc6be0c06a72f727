//! A small dedicated parser for `CREATE PIPE ... AS COPY INTO ... [FROM TABLE(DATA_SOURCE(...))]`
//! and `DROP PIPE`, which sqlparser does not accept. It works on sqlparser tokens.

use sqlparser::tokenizer::{Token, Word};

use super::pipe_compile;
use super::pipe_expr::{self, PipeExpr};
use super::{
    check_name_length, Ident, MatchByColumnName, PipeTransform, ProjectionItem, StatementError,
};

/// A parsed pipe statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum PipeStatement {
    /// `CREATE [OR REPLACE] PIPE [IF NOT EXISTS] ...`
    Create(CreatePipe),
    /// `DROP PIPE [IF EXISTS] name`
    Drop {
        /// `IF EXISTS` was given.
        if_exists: bool,
        /// The pipe's (1-, 2- or 3-part) name.
        name: Vec<Ident>,
    },
}

/// A parsed `CREATE PIPE` statement.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct CreatePipe {
    pub(crate) or_replace: bool,
    pub(crate) if_not_exists: bool,
    pub(crate) name: Vec<Ident>,
    pub(crate) target: Vec<Ident>,
    pub(crate) match_by_column_name: MatchByColumnName,
    pub(crate) transform: Option<PipeTransform>,
}

/// `true` when the statement starts with `CREATE [OR REPLACE] PIPE` or `DROP PIPE`.
pub(crate) fn is_pipe_statement(tokens: &[Token]) -> bool {
    let words: Vec<&str> = tokens
        .iter()
        .take(4)
        .map(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => w.value.as_str(),
            _ => "",
        })
        .collect();
    let is = |i: usize, kw: &str| words.get(i).is_some_and(|w| w.eq_ignore_ascii_case(kw));
    (is(0, "CREATE") && (is(1, "PIPE") || (is(1, "OR") && is(2, "REPLACE") && is(3, "PIPE"))))
        || (is(0, "DROP") && is(1, "PIPE"))
}

/// Parses a pipe statement.
///
/// # Errors
///
/// [`StatementError::Syntax`] saying what was expected and what was found;
/// [`StatementError::Compilation`] for a transform expression the emulator does not evaluate.
pub(crate) fn parse(tokens: &[Token]) -> Result<PipeStatement, StatementError> {
    let mut p = Parser {
        tokens,
        pos: 0,
        refused: false,
    };
    p.statement().map_err(|message| {
        if p.refused {
            StatementError::Compilation(message)
        } else {
            StatementError::Syntax(message)
        }
    })
}

struct Parser<'a> {
    tokens: &'a [Token],
    pos: usize,
    /// The error is a transform expression the emulator refuses, not a syntax error.
    refused: bool,
}

impl<'a> Parser<'a> {
    fn statement(&mut self) -> Result<PipeStatement, String> {
        let statement = if self.eat_keyword("DROP") {
            self.expect_keyword("PIPE")?;
            let if_exists = self.eat_keywords(&["IF", "EXISTS"]);
            let name = self.object_name()?;
            PipeStatement::Drop { if_exists, name }
        } else {
            PipeStatement::Create(self.create_pipe()?)
        };
        if let Some(token) = self.peek() {
            return Err(format!("expected end of statement, found {token}"));
        }
        Ok(statement)
    }

    /// Records whether `result`'s error refuses an expression (rather than its syntax).
    fn checked<T>(&mut self, result: Result<T, pipe_expr::ExprError>) -> Result<T, String> {
        result.map_err(|e| {
            self.refused = matches!(e, pipe_expr::ExprError::Unsupported(_));
            e.into_message()
        })
    }

    fn create_pipe(&mut self) -> Result<CreatePipe, String> {
        self.expect_keyword("CREATE")?;
        let or_replace = self.eat_keywords(&["OR", "REPLACE"]);
        self.expect_keyword("PIPE")?;
        let if_not_exists = self.eat_keywords(&["IF", "NOT", "EXISTS"]);
        let name = self.object_name()?;
        // Pipe properties before AS (AUTO_INGEST = ..., COMMENT = '...', ...) are ignored.
        while !self.peek_keyword("AS") {
            self.property()?;
        }
        self.expect_keyword("AS")?;
        self.expect_keyword("COPY")?;
        self.expect_keyword("INTO")?;
        let target = self.object_name()?;
        let target_columns = if self.eat(&Token::LParen) {
            let mut columns = vec![self.ident()?.normalized()];
            while self.eat(&Token::Comma) {
                columns.push(self.ident()?.normalized());
            }
            self.expect(&Token::RParen)?;
            Some(columns)
        } else {
            None
        };
        // The short form `COPY INTO t` (no FROM, as the official SDK's examples write it) reads
        // the streaming data source and maps columns by name, like `FROM TABLE(DATA_SOURCE(...))`.
        let has_from = self.eat_keyword("FROM");
        let transform = if has_from && self.eat(&Token::LParen) {
            let (items, filter) = self.select_from_data_source()?;
            self.expect(&Token::RParen)?;
            self.optional_alias();
            Some(PipeTransform {
                target_columns,
                items,
                filter,
            })
        } else {
            if has_from {
                self.data_source()?;
            } else if let Some(token) = self.peek() {
                // Only options (`NAME = value`) may follow the short form.
                if !matches!(self.tokens.get(self.pos + 1), Some(Token::Eq)) {
                    return Err(format!(
                        "expected FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) or the end of the statement after COPY INTO {}, found {token}",
                        target.last().map_or("", |i| i.value.as_str())
                    ));
                }
            }
            if target_columns.is_some() {
                return Err(
                    "a column list after COPY INTO needs a transform: FROM (SELECT ... FROM TABLE(DATA_SOURCE(...)))"
                        .into(),
                );
            }
            None
        };
        let mut match_by_column_name = MatchByColumnName::None;
        while self.peek().is_some() {
            if self.eat_keyword("MATCH_BY_COLUMN_NAME") {
                self.expect(&Token::Eq)?;
                let value = self.word()?;
                match_by_column_name = match value.value.to_ascii_uppercase().as_str() {
                    "CASE_INSENSITIVE" => MatchByColumnName::CaseInsensitive,
                    "CASE_SENSITIVE" => MatchByColumnName::CaseSensitive,
                    "NONE" => MatchByColumnName::None,
                    other => {
                        return Err(format!(
                        "MATCH_BY_COLUMN_NAME must be CASE_INSENSITIVE, CASE_SENSITIVE or NONE, found {other}"
                    ))
                    }
                };
            } else {
                self.property()?;
            }
        }
        if transform.is_none() && match_by_column_name == MatchByColumnName::None {
            // Without a transform, a streaming pipe can only map columns by name.
            match_by_column_name = MatchByColumnName::CaseInsensitive;
        }
        Ok(CreatePipe {
            or_replace,
            if_not_exists,
            name,
            target,
            match_by_column_name,
            transform,
        })
    }

    /// `SELECT item, ... FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) [alias] [WHERE predicate]`
    fn select_from_data_source(
        &mut self,
    ) -> Result<(Vec<ProjectionItem>, Option<PipeExpr>), String> {
        self.expect_keyword("SELECT")?;
        let mut items = Vec::new();
        let mut aliases = Vec::new();
        loop {
            let start = self.pos;
            self.skip_until(|t, depth| {
                depth == 0
                    && (matches!(t, Token::Comma)
                        || matches!(t, Token::Word(w) if is_keyword(w, "FROM")))
            })?;
            let tokens = &self.tokens[start..self.pos];
            if tokens.is_empty() {
                return Err(format!(
                    "expected a SELECT item, found {}",
                    self.peek()
                        .map_or("end of statement".into(), ToString::to_string)
                ));
            }
            let parsed = self.checked(pipe_compile::select_item(tokens))?;
            if let Some(alias) = parsed.alias {
                aliases.push((alias, parsed.expr.clone()));
            }
            items.push(ProjectionItem {
                path: parsed.path,
                cast: parsed.cast,
                text: pipe_compile::render(tokens),
                expr: parsed.expr,
            });
            if !self.eat(&Token::Comma) {
                break;
            }
        }
        self.expect_keyword("FROM")?;
        self.data_source()?;
        self.optional_alias();
        let filter = if self.eat_keyword("WHERE") {
            let start = self.pos;
            // The predicate runs to the `)` that closes `FROM ( ... )`.
            self.skip_until(|t, depth| depth == 0 && matches!(t, Token::RParen))?;
            let tokens = &self.tokens[start..self.pos];
            if tokens.is_empty() {
                return Err("expected a predicate after WHERE".into());
            }
            Some(self.checked(pipe_compile::predicate(tokens, &aliases))?)
        } else {
            None
        };
        Ok((items, filter))
    }

    /// Moves to the first token at which `stop(token, depth)` holds, `depth` counting the
    /// brackets opened since the start, or to the end of the statement.
    fn skip_until(&mut self, stop: impl Fn(&Token, usize) -> bool) -> Result<(), String> {
        let mut depth = 0usize;
        while let Some(token) = self.peek() {
            if stop(token, depth) {
                break;
            }
            match token {
                Token::LParen | Token::LBracket => depth += 1,
                Token::RParen | Token::RBracket if depth > 0 => depth -= 1,
                Token::RParen => return Err("unbalanced ')' in the SELECT".into()),
                _ => {}
            }
            self.pos += 1;
        }
        Ok(())
    }

    /// `TABLE(DATA_SOURCE(TYPE => 'STREAMING'))`
    fn data_source(&mut self) -> Result<(), String> {
        self.expect_keyword("TABLE")?;
        self.expect(&Token::LParen)?;
        self.expect_keyword("DATA_SOURCE")?;
        self.expect(&Token::LParen)?;
        self.expect_keyword("TYPE")?;
        self.expect(&Token::RArrow)?;
        match self.next() {
            Some(Token::SingleQuotedString(s)) if s.eq_ignore_ascii_case("STREAMING") => {}
            other => {
                return Err(format!(
                    "expected DATA_SOURCE(TYPE => 'STREAMING'), found TYPE => {}",
                    other.map_or("end of statement".into(), ToString::to_string)
                ))
            }
        }
        self.expect(&Token::RParen)?;
        self.expect(&Token::RParen)?;
        Ok(())
    }

    fn optional_alias(&mut self) {
        if self.eat_keyword("AS") {
            self.pos += 1;
        } else if let Some(Token::Word(w)) = self.peek() {
            let reserved = ["MATCH_BY_COLUMN_NAME", "FROM", "AS", "WHERE"];
            if w.quote_style.is_some() || !reserved.iter().any(|k| is_keyword(w, k)) {
                // `FROM TABLE(...) t` or `FROM (...) t`: skip the alias unless it is an option.
                if !matches!(self.tokens.get(self.pos + 1), Some(Token::Eq)) {
                    self.pos += 1;
                }
            }
        }
    }

    /// `NAME = value`, where value is one token or a parenthesized list.
    fn property(&mut self) -> Result<(), String> {
        let name = self.word()?;
        if !self.eat(&Token::Eq) {
            return Err(format!("expected '=' after {}", name.value));
        }
        if self.eat(&Token::LParen) {
            let mut depth = 1usize;
            while depth > 0 {
                match self.next() {
                    Some(Token::LParen) => depth += 1,
                    Some(Token::RParen) => depth -= 1,
                    Some(_) => {}
                    None => return Err(format!("unclosed '(' in {}", name.value)),
                }
            }
        } else if self.next().is_none() {
            return Err(format!("expected a value after {} =", name.value));
        }
        Ok(())
    }

    fn object_name(&mut self) -> Result<Vec<Ident>, String> {
        let mut parts = vec![self.ident()?];
        while self.eat(&Token::Period) {
            parts.push(self.ident()?);
        }
        if parts.len() > 3 {
            return Err(format!(
                "a name has at most 3 parts (database.schema.object), found {}",
                parts.len()
            ));
        }
        Ok(parts)
    }

    fn ident(&mut self) -> Result<Ident, String> {
        let word = self.word()?;
        check_name_length("a name", &word.value)?;
        Ok(Ident {
            value: word.value.clone(),
            quoted: word.quote_style.is_some(),
        })
    }

    fn word(&mut self) -> Result<&'a Word, String> {
        match self.tokens.get(self.pos) {
            Some(Token::Word(w)) => {
                self.pos += 1;
                Ok(w)
            }
            other => Err(format!(
                "expected an identifier, found {}",
                other.map_or("end of statement".into(), ToString::to_string)
            )),
        }
    }

    fn peek(&self) -> Option<&'a Token> {
        self.tokens.get(self.pos)
    }

    fn next(&mut self) -> Option<&'a Token> {
        let token = self.tokens.get(self.pos);
        self.pos += usize::from(token.is_some());
        token
    }

    fn eat(&mut self, expected: &Token) -> bool {
        let found = self.peek() == Some(expected);
        self.pos += usize::from(found);
        found
    }

    fn expect(&mut self, expected: &Token) -> Result<(), String> {
        if self.eat(expected) {
            Ok(())
        } else {
            Err(format!(
                "expected {expected}, found {}",
                self.peek()
                    .map_or("end of statement".into(), ToString::to_string)
            ))
        }
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if is_keyword(w, keyword))
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        let found = self.peek_keyword(keyword);
        self.pos += usize::from(found);
        found
    }

    /// Consumes all of `keywords` in order, or nothing.
    fn eat_keywords(&mut self, keywords: &[&str]) -> bool {
        let all = keywords.iter().enumerate().all(|(i, kw)| {
            matches!(self.tokens.get(self.pos + i), Some(Token::Word(w)) if is_keyword(w, kw))
        });
        if all {
            self.pos += keywords.len();
        }
        all
    }

    fn expect_keyword(&mut self, keyword: &str) -> Result<(), String> {
        if self.eat_keyword(keyword) {
            Ok(())
        } else {
            Err(format!(
                "expected {keyword}, found {}",
                self.peek()
                    .map_or("end of statement".into(), ToString::to_string)
            ))
        }
    }
}

fn is_keyword(word: &Word, keyword: &str) -> bool {
    word.quote_style.is_none() && word.value.eq_ignore_ascii_case(keyword)
}
