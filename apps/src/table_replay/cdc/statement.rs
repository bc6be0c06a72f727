//! A Query event's statement, read as the server ran it: what it does to which
//! `(database, table)`.
//!
//! Read with `sqlparser`'s tokenizer and its MySQL dialect, not its parser: the tokenizer
//! reads what makes names hard to find by hand (backquoted identifiers with doubled
//! backquotes, string literals, `/* */`, `-- ` and `#` comments, and `/*! */` executable
//! comments, whose content it reads as code); the parser does not know MariaDB's partition
//! verbs (`TRUNCATE|EXCHANGE|CONVERT PARTITION`, `WAIT n`), so a failed parse would hide the
//! very statements this is for. MariaDB's own `/*M! */` comments are executed too: their
//! content is tokenized here. An executable comment's content counts whatever server
//! version it names.
//!
//! Every name is resolved against the event's schema (the session's default database, not
//! the table's: an unqualified name in a session without one never ran) and compared with
//! the followed tables as a rows event's table map is, by [`Names::same`]: exactly, or
//! case-blind when the server's `lower_case_table_names` is not 0.
//!
//! Only statements whose first word (after comments) is `TRUNCATE`, `DROP`, `CREATE`,
//! `RENAME` or `ALTER` are tokenized (a Query event of a ROW binlog holds DDL and
//! transaction control; its length is bounded by the server's `max_allowed_packet`), and only
//! up to [`MAX_TOKENIZED`] bytes; the tokenizer's work is linear in the text. A longer one, or
//! one the tokenizer refuses, is [`Read::Unreadable`].

use sqlparser::dialect::MySqlDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

/// The longest statement text tokenized, in bytes.
pub const MAX_TOKENIZED: usize = 1 << 20;

/// What a statement does to a table (or, for `DROP DATABASE`, to every table of a database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Every row removed: `TRUNCATE`, `ALTER TABLE … TRUNCATE PARTITION ALL`.
    Emptied,
    /// Rows removed, added or swapped without rows events: a partition dropped, truncated,
    /// exchanged or converted, a tablespace discarded or imported.
    RowsLost,
    /// The table replaced, renamed or gone: `DROP`, `CREATE OR REPLACE`, `RENAME`.
    Replaced,
    /// Any other `ALTER TABLE` (its shape may change; partitions reorganized keep their rows).
    Altered,
}

/// One table a statement touches, resolved against the event's schema.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Action {
    /// The statement's verb as its message names it (`DROP TABLE`, `ALTER TABLE … DROP
    /// PARTITION`).
    pub verb: String,
    pub effect: Effect,
    pub database: String,
    /// `None`: every table of `database` (`DROP DATABASE`).
    pub table: Option<String>,
}

/// What a statement is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Read {
    /// Not a statement that touches a table's rows or shape (`GRANT`, `CREATE TABLE`, …).
    Other,
    /// The tables it touches.
    Touches(Vec<Action>),
    /// A DDL statement that could not be read (too long, or refused by the tokenizer): why.
    Unreadable(String),
}

/// How the server compares table and database names (`lower_case_table_names`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Names {
    pub case_blind: bool,
}

impl Names {
    /// The server's rule, read once (`@@lower_case_table_names`: 0 compares exactly).
    ///
    /// # Errors
    /// When the server cannot be asked.
    pub async fn read(conn: &mut mysql_async::Conn) -> anyhow::Result<Names> {
        let lctn: Option<u32> =
            mysql_async::prelude::Queryable::query_first(conn, "SELECT @@lower_case_table_names")
                .await?;
        Ok(Names {
            case_blind: lctn.unwrap_or(0) != 0,
        })
    }

    /// Whether two database or table names name the same one on this server.
    pub fn same(self, a: &str, b: &str) -> bool {
        if self.case_blind {
            a.to_lowercase() == b.to_lowercase()
        } else {
            a == b
        }
    }

    /// Whether `action` touches `(database, table)`.
    pub fn touches(self, action: &Action, database: &str, table: &str) -> bool {
        self.same(&action.database, database)
            && action.table.as_deref().is_none_or(|t| self.same(t, table))
    }
}

/// Reads `sql`, run with `schema` as the default database (empty: none).
pub fn read(sql: &str, schema: &str) -> Read {
    let Some(verb) = leading_word(sql) else {
        return Read::Other;
    };
    if !["TRUNCATE", "DROP", "CREATE", "RENAME", "ALTER"].contains(&verb.as_str()) {
        return Read::Other;
    }
    if sql.len() > MAX_TOKENIZED {
        return Read::Unreadable(format!(
            "a {verb} statement of {} bytes, more than the {MAX_TOKENIZED} read",
            sql.len()
        ));
    }
    let tokens = match words(sql) {
        Ok(t) => t,
        Err(e) => return Read::Unreadable(format!("the tokenizer refused it: {e}")),
    };
    let mut p = Parser {
        t: &tokens,
        i: 0,
        schema,
        out: Vec::new(),
    };
    p.statement();
    if p.out.is_empty() {
        Read::Other
    } else {
        Read::Touches(p.out)
    }
}

/// The first word of `sql` in upper case, after whitespace and comments (inside an
/// executable comment: its content is code).
fn leading_word(sql: &str) -> Option<String> {
    let mut s = sql;
    loop {
        s = s.trim_start();
        if let Some(rest) = s.strip_prefix("/*") {
            let code = rest
                .strip_prefix('!')
                .or_else(|| rest.strip_prefix("M!"))
                .map(|c| c.trim_start_matches(|c: char| c.is_ascii_digit()));
            match code {
                Some(code) => s = code,
                None => s = &rest[rest.find("*/")? + 2..],
            }
        } else if s.starts_with('#')
            || (s.starts_with("--") && s[2..].starts_with(char::is_whitespace))
        {
            s = &s[s.find('\n')? + 1..];
        } else {
            break;
        }
    }
    let end = s
        .find(|c: char| !c.is_ascii_alphabetic())
        .unwrap_or(s.len());
    (end > 0).then(|| s[..end].to_ascii_uppercase())
}

/// A token the statement reader looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// A word: its text, and whether it was quoted (then never a keyword).
    Word(String, bool),
    Dot,
    Comma,
    Open,
    Close,
    Semicolon,
    Other,
}

/// `sql`'s tokens without whitespace and comments, executable comments' content included.
fn words(sql: &str) -> Result<Vec<Tok>, String> {
    let tokens = Tokenizer::new(&MySqlDialect {}, sql)
        .tokenize()
        .map_err(|e| e.to_string())?;
    let mut out = Vec::with_capacity(tokens.len());
    for t in tokens {
        match t {
            Token::Word(w) => out.push(Tok::Word(w.value, w.quote_style.is_some())),
            // A name in double quotes (`ANSI_QUOTES`): where a name stands, it is one.
            Token::DoubleQuotedString(s) => out.push(Tok::Word(s, true)),
            Token::Period => out.push(Tok::Dot),
            Token::Comma => out.push(Tok::Comma),
            Token::LParen => out.push(Tok::Open),
            Token::RParen => out.push(Tok::Close),
            Token::SemiColon => out.push(Tok::Semicolon),
            Token::Whitespace(Whitespace::MultiLineComment(c)) => {
                // MariaDB's executable comment (`/*!` ones the tokenizer expands itself).
                if let Some(code) = c.strip_prefix("M!") {
                    out.extend(words(
                        code.trim_start_matches(|c: char| c.is_ascii_digit()),
                    )?);
                }
            }
            Token::Whitespace(_) => {}
            // `1t` after a dot: a table name that starts with a digit.
            Token::Number(n, _) if out.last() == Some(&Tok::Dot) => {
                out.push(Tok::Word(n, false));
            }
            _ => out.push(Tok::Other),
        }
    }
    Ok(out)
}

/// A name resolved: `(database, table)`.
type Qualified = (String, String);

/// An `ALTER TABLE` specification that matters: its verb, effect and the other table it
/// touches.
type Spec = (String, Effect, Option<Qualified>);

/// Reads one statement's tokens into the actions it takes.
struct Parser<'a> {
    t: &'a [Tok],
    i: usize,
    schema: &'a str,
    out: Vec<Action>,
}

impl Parser<'_> {
    fn peek_kw(&self, n: usize) -> Option<String> {
        match self.t.get(self.i + n) {
            Some(Tok::Word(w, false)) => Some(w.to_ascii_uppercase()),
            _ => None,
        }
    }

    /// Consumes the keyword `kw` when it is next.
    fn eat(&mut self, kw: &str) -> bool {
        let hit = self.peek_kw(0).is_some_and(|w| w == kw);
        self.i += usize::from(hit);
        hit
    }

    /// Consumes keywords `kws` when they are all next.
    fn eat_all(&mut self, kws: &[&str]) -> bool {
        let hit = kws
            .iter()
            .enumerate()
            .all(|(n, kw)| self.peek_kw(n).is_some_and(|w| w == *kw));
        if hit {
            self.i += kws.len();
        }
        hit
    }

    /// A `[database.]name`, resolved against the event's schema.
    fn name(&mut self) -> Option<Qualified> {
        let Some(Tok::Word(first, _)) = self.t.get(self.i) else {
            return None;
        };
        self.i += 1;
        if self.t.get(self.i) == Some(&Tok::Dot) {
            if let Some(Tok::Word(second, _)) = self.t.get(self.i + 1) {
                self.i += 2;
                return Some((first.clone(), second.clone()));
            }
        }
        Some((self.schema.to_owned(), first.clone()))
    }

    fn push(&mut self, verb: &str, effect: Effect, (database, table): Qualified) {
        self.out.push(Action {
            verb: verb.to_owned(),
            effect,
            database,
            table: Some(table),
        });
    }

    /// `WAIT n` / `NOWAIT`.
    fn skip_wait(&mut self) {
        if self.eat("WAIT") {
            self.i += 1;
        } else {
            self.eat("NOWAIT");
        }
    }

    fn statement(&mut self) {
        if self.eat("TRUNCATE") {
            self.eat("TABLE");
            if let Some(n) = self.name() {
                self.push("TRUNCATE TABLE", Effect::Emptied, n);
            }
        } else if self.eat("DROP") {
            self.drop_statement();
        } else if self.eat_all(&["CREATE", "OR", "REPLACE"]) {
            if self.eat("TABLE") {
                self.eat_all(&["IF", "NOT", "EXISTS"]);
                if let Some(n) = self.name() {
                    self.push("CREATE OR REPLACE TABLE", Effect::Replaced, n);
                }
            }
        } else if self.eat("RENAME") {
            if self.eat("TABLE") || self.eat("TABLES") {
                self.eat_all(&["IF", "EXISTS"]);
                self.list("RENAME TABLE", &["TO"]);
            }
        } else if self.eat("ALTER") {
            self.eat("ONLINE");
            self.eat("IGNORE");
            if self.eat("TABLE") {
                self.eat_all(&["IF", "EXISTS"]);
                if let Some(n) = self.name() {
                    self.skip_wait();
                    self.alter(&n);
                }
            }
        }
    }

    fn drop_statement(&mut self) {
        if self.eat("DATABASE") || self.eat("SCHEMA") {
            self.eat_all(&["IF", "EXISTS"]);
            if let Some(Tok::Word(db, _)) = self.t.get(self.i) {
                self.out.push(Action {
                    verb: "DROP DATABASE".into(),
                    effect: Effect::Replaced,
                    database: db.clone(),
                    table: None,
                });
            }
        } else if self.eat("TABLE") || self.eat("TABLES") {
            // `DROP TEMPORARY TABLE` touches session tables alone.
            self.eat_all(&["IF", "EXISTS"]);
            self.list("DROP TABLE", &[]);
        }
    }

    /// Names separated by commas or by the keywords `between` (`a TO b, c TO d`), each one
    /// replaced.
    fn list(&mut self, verb: &str, between: &[&str]) {
        while let Some(n) = self.name() {
            self.push(verb, Effect::Replaced, n);
            self.skip_wait();
            let next = self.t.get(self.i) == Some(&Tok::Comma)
                || between
                    .iter()
                    .any(|kw| self.peek_kw(0).as_deref() == Some(kw));
            if !next {
                break;
            }
            self.i += 1;
        }
    }

    /// The specifications of `ALTER TABLE n`, comma-separated at depth 0.
    fn alter(&mut self, n: &Qualified) {
        let mut altered = true;
        loop {
            let start = self.i;
            if let Some((verb, effect, other)) = self.alter_spec() {
                self.push(&verb, effect, n.clone());
                if let Some(other) = other {
                    self.push(&verb, effect, other);
                }
                altered = false;
            }
            // To the next comma at depth 0.
            let mut depth = 0usize;
            self.i = self.i.max(start);
            while let Some(t) = self.t.get(self.i) {
                match t {
                    Tok::Open => depth += 1,
                    Tok::Close => depth = depth.saturating_sub(1),
                    Tok::Comma | Tok::Semicolon if depth == 0 => break,
                    _ => {}
                }
                self.i += 1;
            }
            if self.t.get(self.i) != Some(&Tok::Comma) {
                break;
            }
            self.i += 1;
        }
        if altered {
            self.push("ALTER TABLE", Effect::Altered, n.clone());
        }
    }

    /// One `ALTER TABLE` specification that renames the table or moves rows without rows
    /// events: its verb, effect and the other table it touches.
    fn alter_spec(&mut self) -> Option<Spec> {
        let word = self.peek_kw(0)?;
        let next = self.peek_kw(1);
        let verb = |what: &str| format!("ALTER TABLE … {what}");
        match (word.as_str(), next.as_deref()) {
            ("RENAME", Some("COLUMN" | "INDEX" | "KEY" | "CONSTRAINT")) => None,
            ("RENAME", _) => {
                self.i += 1;
                if !self.eat("TO") {
                    self.eat("AS");
                }
                let to = self.name()?;
                Some((verb("RENAME"), Effect::Replaced, Some(to)))
            }
            ("TRUNCATE", Some("PARTITION")) => {
                let all = self.peek_kw(2).as_deref() == Some("ALL")
                    && matches!(
                        self.t.get(self.i + 3),
                        None | Some(Tok::Comma | Tok::Semicolon)
                    );
                let effect = if all {
                    Effect::Emptied
                } else {
                    Effect::RowsLost
                };
                Some((verb("TRUNCATE PARTITION"), effect, None))
            }
            ("DROP", Some("PARTITION")) => Some((verb("DROP PARTITION"), Effect::RowsLost, None)),
            ("EXCHANGE", Some("PARTITION")) => {
                // EXCHANGE PARTITION p WITH TABLE other
                self.i += 3;
                self.eat_all(&["WITH", "TABLE"]).then_some(())?;
                let other = self.name();
                Some((verb("EXCHANGE PARTITION"), Effect::RowsLost, other))
            }
            ("CONVERT", Some("PARTITION")) => {
                // CONVERT PARTITION p TO TABLE other
                self.i += 3;
                self.eat_all(&["TO", "TABLE"]).then_some(())?;
                let other = self.name();
                Some((verb("CONVERT PARTITION"), Effect::RowsLost, other))
            }
            ("CONVERT", Some("TABLE")) => {
                // CONVERT TABLE other TO PARTITION p …
                self.i += 2;
                let other = self.name();
                Some((verb("CONVERT TABLE"), Effect::RowsLost, other))
            }
            ("DISCARD" | "IMPORT", _) => {
                let what = if next.as_deref() == Some("PARTITION") {
                    format!("{word} PARTITION … TABLESPACE")
                } else {
                    format!("{word} TABLESPACE")
                };
                Some((verb(&what), Effect::RowsLost, None))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
#[path = "statement_tests.rs"]
mod tests;
