//! `LIKE` and `GLOB` for SQL API statements: SQLite's own matcher (`patternCompare` in
//! SQLite's `func.c`), ported step for step so every statement matches exactly as before, with
//! one addition: it watches the statement's deadline.
//!
//! SQLite's progress handler, which cancels a statement at its time limit, runs between
//! virtual machine instructions; one `LIKE` call runs to its end first, and a `%` pattern over
//! a long value costs about value length × pattern length steps (a 1.5 MB value took 19 s).
//! These functions replace the built-ins on a connection the SQL API runs a statement on
//! (`sqlite3_create_function` takes precedence over a built-in of the same name; SQLite cannot
//! give the built-in back, so they stay) and, while a statement runs on the thread
//! (`calls::Watch`), stop at its deadline, so one call cannot outlive the statement. Outside a
//! statement (the console, `Emulator::query` on the same reader) they match with no deadline
//! and SQLite's default pattern limit.
//!
//! Arguments are read as SQLite reads them (`calls::text_of`), and walked
//! up to their first NUL, as SQLite's matcher does.

use super::calls::{self, text_of, Budget, Cancelled};

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::Connection;

/// How a match ended (SQLite's `SQLITE_MATCH`, `SQLITE_NOMATCH`, `SQLITE_NOWILDCARDMATCH`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Match,
    NoMatch,
    NoWildcardMatch,
}

/// The pattern language: `LIKE` (`%`, `_`, no sets, ASCII case folded) or `GLOB` (`*`, `?`,
/// `[…]`, exact case).
#[derive(Debug, Clone, Copy)]
struct Language {
    match_all: u32,
    match_one: u32,
    match_set: u32,
    no_case: bool,
}

const LIKE: Language = Language {
    match_all: b'%' as u32,
    match_one: b'_' as u32,
    match_set: 0,
    no_case: true,
};

const GLOB: Language = Language {
    match_all: b'*' as u32,
    match_one: b'?' as u32,
    match_set: b'[' as u32,
    no_case: false,
};

/// SQLite's default `SQLITE_LIMIT_LIKE_PATTERN_LENGTH`, outside a statement.
const DEFAULT_PATTERN_LIMIT: i32 = 50_000;

/// A NUL-terminated string as SQLite walks it: reading past the end gives 0.
#[derive(Clone, Copy)]
struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
        Self {
            bytes: &bytes[..end],
            at: 0,
        }
    }

    fn peek_byte(&self) -> u8 {
        self.bytes.get(self.at).copied().unwrap_or(0)
    }

    /// SQLite's `sqlite3Utf8Read`: one character, 0 at the end; malformed sequences as
    /// SQLite reads them.
    fn read(&mut self) -> u32 {
        let Some(&lead) = self.bytes.get(self.at) else {
            return 0;
        };
        self.at += 1;
        let mut c = u32::from(lead);
        if c >= 0xc0 {
            c = utf8_trans1(lead);
            while let Some(&b) = self.bytes.get(self.at) {
                if b & 0xc0 != 0x80 {
                    break;
                }
                c = (c << 6).wrapping_add(u32::from(b & 0x3f));
                self.at += 1;
            }
            if c < 0x80 || c & 0xFFFF_F800 == 0xD800 || c & 0xFFFF_FFFE == 0xFFFE {
                c = 0xFFFD;
            }
        }
        c
    }

    /// SQLite's `SQLITE_SKIP_UTF8`.
    fn skip(&mut self) {
        if self.at >= self.bytes.len() {
            return;
        }
        let lead = self.bytes[self.at];
        self.at += 1;
        if lead >= 0xc0 {
            while self.at < self.bytes.len() && self.bytes[self.at] & 0xc0 == 0x80 {
                self.at += 1;
            }
        }
    }
}

/// SQLite's `sqlite3Utf8Trans1[lead - 0xc0]`: the payload bits of a lead byte.
fn utf8_trans1(lead: u8) -> u32 {
    u32::from(match lead {
        0xc0..=0xdf => lead & 0x1f,
        0xe0..=0xef => lead & 0x0f,
        0xf0..=0xf7 => lead & 0x07,
        0xf8..=0xfb => lead & 0x03,
        0xfc..=0xfd => lead & 0x01,
        _ => 0,
    })
}

fn lower(c: u32) -> u32 {
    if (u32::from(b'A')..=u32::from(b'Z')).contains(&c) {
        c + 32
    } else {
        c
    }
}

/// A match of one pattern language and escape (`match_other`: GLOB's `[`, or the `ESCAPE`
/// character) against the statement's budget: what every step of the walk reads.
struct Matcher {
    lang: Language,
    match_other: u32,
    budget: Budget,
}

impl Matcher {
    /// SQLite's `patternCompare`, watching the budget.
    fn compare(
        &mut self,
        mut pattern: Cursor<'_>,
        mut string: Cursor<'_>,
    ) -> Result<Outcome, Cancelled> {
        let mut escaped: Option<usize> = None;
        loop {
            self.budget.step()?;
            let mut c = pattern.read();
            if c == 0 {
                break;
            }
            if c == self.lang.match_all {
                return self.after_match_all(pattern, string);
            }
            if c == self.match_other {
                if self.lang.match_set == 0 {
                    c = pattern.read();
                    if c == 0 {
                        return Ok(Outcome::NoMatch);
                    }
                    escaped = Some(pattern.at);
                } else {
                    if !in_set(&mut pattern, &mut string) {
                        return Ok(Outcome::NoMatch);
                    }
                    continue;
                }
            }
            let c2 = string.read();
            if c == c2 {
                continue;
            }
            if self.lang.no_case && lower(c) == lower(c2) && c < 0x80 && c2 < 0x80 {
                continue;
            }
            if c == self.lang.match_one && Some(pattern.at) != escaped && c2 != 0 {
                continue;
            }
            return Ok(Outcome::NoMatch);
        }
        Ok(if string.peek_byte() == 0 {
            Outcome::Match
        } else {
            Outcome::NoMatch
        })
    }

    /// The rest of a match once the pattern read `%` (`*`): the wildcards that follow folded in
    /// (each `_` taking one character), then the match continued from each place the pattern's
    /// next character occurs.
    fn after_match_all(
        &mut self,
        mut pattern: Cursor<'_>,
        mut string: Cursor<'_>,
    ) -> Result<Outcome, Cancelled> {
        let mut c;
        loop {
            c = pattern.read();
            if !(c == self.lang.match_all || (c == self.lang.match_one && self.lang.match_one != 0))
            {
                break;
            }
            if c == self.lang.match_one && string.read() == 0 {
                return Ok(Outcome::NoWildcardMatch);
            }
        }
        if c == 0 {
            return Ok(Outcome::Match);
        } else if c == self.match_other {
            if self.lang.match_set == 0 {
                c = pattern.read();
                if c == 0 {
                    return Ok(Outcome::NoWildcardMatch);
                }
            } else {
                // `[…]` right after `*`: try every position.
                let mut set = pattern;
                set.at -= 1;
                while string.peek_byte() != 0 {
                    self.budget.step()?;
                    let outcome = self.compare(set, string)?;
                    if outcome != Outcome::NoMatch {
                        return Ok(outcome);
                    }
                    string.skip();
                }
                return Ok(Outcome::NoWildcardMatch);
            }
        }
        self.continue_after(c, pattern, string)
    }

    /// Searches the string for `c` (the pattern's character after a wildcard), continuing the
    /// match from each place it occurs.
    fn continue_after(
        &mut self,
        c: u32,
        pattern: Cursor<'_>,
        mut string: Cursor<'_>,
    ) -> Result<Outcome, Cancelled> {
        if c < 0x80 {
            let stops = if self.lang.no_case {
                [
                    (c as u8).to_ascii_uppercase(),
                    (c as u8).to_ascii_lowercase(),
                ]
            } else {
                [c as u8, c as u8]
            };
            loop {
                self.budget.step()?;
                let rest = &string.bytes[string.at..];
                match rest.iter().position(|b| stops.contains(b)) {
                    Some(i) => string.at += i + 1,
                    None => break,
                }
                let outcome = self.compare(pattern, string)?;
                if outcome != Outcome::NoMatch {
                    return Ok(outcome);
                }
            }
        } else {
            loop {
                self.budget.step()?;
                let c2 = string.read();
                if c2 == 0 {
                    break;
                }
                if c2 != c {
                    continue;
                }
                let outcome = self.compare(pattern, string)?;
                if outcome != Outcome::NoMatch {
                    return Ok(outcome);
                }
            }
        }
        Ok(Outcome::NoWildcardMatch)
    }
}

/// A GLOB set `[…]` (its `[` read) against the string's next character, both cursors moved
/// past what they read: whether the character is in the set (`[^…]`: not in it) and the set
/// is closed.
fn in_set(pattern: &mut Cursor<'_>, string: &mut Cursor<'_>) -> bool {
    let mut prior = 0u32;
    let mut seen = false;
    let mut invert = false;
    let c = string.read();
    if c == 0 {
        return false;
    }
    let mut c2 = pattern.read();
    if c2 == u32::from(b'^') {
        invert = true;
        c2 = pattern.read();
    }
    if c2 == u32::from(b']') {
        if c == u32::from(b']') {
            seen = true;
        }
        c2 = pattern.read();
    }
    while c2 != 0 && c2 != u32::from(b']') {
        let next = pattern.peek_byte();
        if c2 == u32::from(b'-') && next != b']' && next != 0 && prior > 0 {
            c2 = pattern.read();
            if c >= prior && c <= c2 {
                seen = true;
            }
            prior = 0;
        } else {
            if c == c2 {
                seen = true;
            }
            prior = c2;
        }
        c2 = pattern.read();
    }
    !(c2 == 0 || seen == invert)
}

/// SQLite's `likeFunc`: `like(pattern, string[, escape])` / `glob(pattern, string)`.
fn call(ctx: &Context<'_>, lang: Language) -> rusqlite::Result<Option<bool>> {
    let pattern_limit = calls::watched().map_or(DEFAULT_PATTERN_LIMIT, |w| w.pattern_limit);
    let (mut p_buf, mut s_buf, mut e_buf) = (String::new(), String::new(), String::new());
    let pattern = text_of(ctx.get_raw(0), &mut p_buf)?;
    if pattern.is_some_and(|p| p.len() > usize::try_from(pattern_limit).unwrap_or(0)) {
        return Err(rusqlite::Error::UserFunctionError(
            "LIKE or GLOB pattern too complex".into(),
        ));
    }
    let mut lang = lang;
    let mut match_other = lang.match_set;
    if ctx.len() == 3 {
        let Some(escape) = text_of(ctx.get_raw(2), &mut e_buf)? else {
            return Ok(None);
        };
        let mut cursor = Cursor::new(escape);
        let first = cursor.read();
        if first == 0 || cursor.read() != 0 {
            return Err(rusqlite::Error::UserFunctionError(
                "ESCAPE expression must be a single character".into(),
            ));
        }
        if first == lang.match_all {
            lang.match_all = 0;
        }
        if first == lang.match_one {
            lang.match_one = 0;
        }
        match_other = first;
    }
    let string = text_of(ctx.get_raw(1), &mut s_buf)?;
    let (Some(pattern), Some(string)) = (pattern, string) else {
        return Ok(None);
    };
    let mut matcher = Matcher {
        lang,
        match_other,
        budget: Budget::new(),
    };
    match matcher.compare(Cursor::new(pattern), Cursor::new(string)) {
        Ok(outcome) => Ok(Some(outcome == Outcome::Match)),
        Err(Cancelled) => Err(Cancelled.into()),
    }
}

/// Puts the deadline-watching `like` (2 and 3 arguments) and `glob` on `conn` (again: the
/// same functions).
///
/// # Errors
/// When SQLite refuses to register a function.
pub(super) fn install(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    for args in [2, 3] {
        conn.create_scalar_function("like", args, flags, |ctx| call(ctx, LIKE))?;
    }
    conn.create_scalar_function("glob", 2, flags, |ctx| call(ctx, GLOB))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql_sandbox::calls::Watch;
    use std::time::Instant;

    /// Every case matched by SQLite's built-in and by the port.
    #[test]
    fn the_port_matches_as_sqlite_does() {
        let builtin = Connection::open_in_memory().unwrap();
        let ported = Connection::open_in_memory().unwrap();
        install(&ported).unwrap();
        let likes: &[(&str, &str)] = &[
            ("abc", "a%"),
            ("abc", "A_C"),
            ("abc", "%b%"),
            ("abc", "%d%"),
            ("", "%"),
            ("", "_"),
            ("a", ""),
            ("aXb", "a_b"),
            ("h\u{e9}llo", "h_llo"),
            ("H\u{c9}LLO", "h\u{e9}%"),
            ("h\u{e9}llo", "%LLO"),
            ("100%", "100\\%"),
            ("a_b", "a\\_b"),
            ("aab", "%a_b"),
            ("mississippi", "%iss%ppi"),
            ("mississippi", "%iss%pp"),
            ("x", "%%%_"),
            ("\u{1F600}x", "_x"),
            ("ab\u{0}cd", "ab"),
        ];
        let globs: &[(&str, &str)] = &[
            ("abc", "a*"),
            ("abc", "A*"),
            ("abc", "a?c"),
            ("abc", "[a-c]bc"),
            ("abc", "[^a]bc"),
            ("]bc", "[]]bc"),
            ("-bc", "[a-]bc"),
            ("abc", "*[c]"),
            ("abc", "*[d]"),
            ("a*c", "a[*]c"),
            ("abc", "[abc"),
            ("h\u{e9}llo", "h?llo"),
            ("h\u{e9}llo", "*[\u{e9}]*"),
            ("aaa", "*a*a*a"),
        ];
        let answer = |conn: &Connection, sql: &str, a: &str, b: &str, e: Option<&str>| {
            let _watch = Watch::start(Instant::now() + std::time::Duration::from_secs(60), 1000);
            conn.query_row(sql, rusqlite::params![a, b, e], |r| {
                r.get::<_, Option<bool>>(0)
            })
            .unwrap()
        };
        let run = |sql: &str, cases: &[(&str, &str)], escape: Option<&str>| {
            for (s, p) in cases {
                assert_eq!(
                    answer(&builtin, sql, s, p, escape),
                    answer(&ported, sql, s, p, escape),
                    "{s:?} {sql} {p:?}"
                );
            }
        };
        run("SELECT ?1 LIKE ?2 ESCAPE coalesce(?3, '\\')", likes, None);
        run("SELECT ?1 LIKE ?2 OR ?3", likes, None);
        run("SELECT ?1 GLOB ?2 OR ?3", globs, None);
        run(
            "SELECT ?1 LIKE ?2 ESCAPE ?3",
            &[("a%b", "a%%b"), ("a_b", "a%_b"), ("ab", "a%")],
            Some("%"),
        );
        run(
            "SELECT ?1 LIKE ?2 ESCAPE ?3",
            &[("a_b", "a__b"), ("axb", "a_b")],
            Some("_"),
        );
        // NULL and integers as SQLite reads them.
        for sql in [
            "SELECT 1.5 LIKE '1.5'",
            "SELECT 100.0 LIKE '100._'",
            "SELECT 1e300 GLOB '1.0e+300'",
            "SELECT 0.1 + 0.2 LIKE '0.3%'",
            "SELECT 12 LIKE '1%'",
            "SELECT NULL LIKE 'a'",
            "SELECT 'a' LIKE NULL",
        ] {
            let get = |c: &Connection| {
                c.query_row(sql, [], |r| r.get::<_, Option<bool>>(0))
                    .unwrap()
            };
            assert_eq!(get(&builtin), get(&ported), "{sql}");
        }
    }

    #[test]
    fn a_long_match_stops_at_the_deadline_and_a_long_pattern_is_refused() {
        let conn = Connection::open_in_memory().unwrap();
        install(&conn).unwrap();
        let watch = Watch::start(Instant::now(), 1000);
        let e = conn
            .query_row(
                "SELECT printf('%.*c', 1000000, 'a') LIKE '%' || printf('%.*c', 900, 'a') || 'b'",
                [],
                |r| r.get::<_, bool>(0),
            )
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(crate::sql_sandbox::calls::DEADLINE_PASSED),
            "{e}"
        );
        let e = conn
            .query_row("SELECT 'a' LIKE printf('%.*c', 1001, '%')", [], |r| {
                r.get::<_, bool>(0)
            })
            .unwrap_err();
        assert!(e.to_string().contains("pattern too complex"), "{e}");
        drop(watch);
        // Outside a statement: no deadline.
        let n: i64 = conn
            .query_row("SELECT printf('%.*c', 10000, 'a') LIKE '%a'", [], |r| {
                r.get(0)
            })
            .unwrap();
        assert_eq!(n, 1);
    }
}
