//! `instr(X, Y)`, `replace(X, Y, Z)` and the two-argument `trim`/`ltrim`/`rtrim(X, Y)` for SQL
//! API statements: the same answers as SQLite's built-ins (`func.c`), without their cost of
//! length of X × length of Y in one call (an `instr` of an 8 MB needle in a 16 MB value ran for
//! an hour, past any statement limit). `instr` and `replace` search with `memchr::memmem`
//! (linear); `trim` looks each character up in the set and watches the statement's deadline
//! (`calls::Budget`). Registered like `patterns.rs`; arguments are read as SQLite reads them
//! (`calls::text_of`). A result that is not UTF-8 (from a blob argument)
//! is refused rather than changed.

use std::collections::HashMap;

use memchr::memmem;
use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::Connection;

use super::calls::{text_of, Budget};

fn error(message: impl Into<String>) -> rusqlite::Error {
    rusqlite::Error::UserFunctionError(message.into().into())
}

/// A result as SQLite's `sqlite3_result_text` would give it.
fn text_result(function: &str, bytes: &[u8]) -> rusqlite::Result<Option<String>> {
    if let Some(limit) = super::calls::watched().map(|_| super::VALUE_LIMIT) {
        if bytes.len() > usize::try_from(limit).unwrap_or(usize::MAX) {
            return Err(error("string or blob too big"));
        }
    }
    match std::str::from_utf8(bytes) {
        Ok(s) => Ok(Some(s.to_owned())),
        Err(_) => Err(error(format!(
            "{function} would give a text that is not UTF-8 (from a BLOB argument): the \
             emulator's SQL API refuses it; convert with hex()"
        ))),
    }
}

/// SQLite's `instrFunc`: the 1-based position of Y in X (characters, or bytes when both are
/// blobs), 0 when absent, 1 for an empty Y.
fn instr(ctx: &Context<'_>) -> rusqlite::Result<Option<i64>> {
    let (a, b) = (ctx.get_raw(0), ctx.get_raw(1));
    if a == ValueRef::Null || b == ValueRef::Null {
        return Ok(None);
    }
    let is_text = !matches!((a, b), (ValueRef::Blob(_), ValueRef::Blob(_)));
    let (mut a_buf, mut b_buf) = (String::new(), String::new());
    let haystack = text_of(a, &mut a_buf)?.unwrap_or_default();
    let needle = text_of(b, &mut b_buf)?.unwrap_or_default();
    if needle.is_empty() {
        return Ok(Some(1));
    }
    // SQLite tries each character start (each byte of a blob) in turn.
    let starts_char = |i: usize| i == 0 || !is_text || haystack[i] & 0xc0 != 0x80;
    let Some(at) = memmem::find_iter(haystack, needle).find(|&i| starts_char(i)) else {
        return Ok(Some(0));
    };
    let position = 1 + (1..=at).filter(|&i| starts_char(i)).count();
    Ok(Some(i64::try_from(position).unwrap_or(i64::MAX)))
}

/// SQLite's `replaceFunc`: every non-overlapping Y in X, left to right, replaced by Z.
fn replace(ctx: &Context<'_>) -> rusqlite::Result<Option<String>> {
    let (mut a_buf, mut b_buf, mut c_buf) = (String::new(), String::new(), String::new());
    let Some(string) = text_of(ctx.get_raw(0), &mut a_buf)? else {
        return Ok(None);
    };
    let Some(pattern) = text_of(ctx.get_raw(1), &mut b_buf)? else {
        return Ok(None);
    };
    if pattern.first().is_none_or(|&b| b == 0) {
        return text_result("REPLACE", string);
    }
    let Some(replacement) = text_of(ctx.get_raw(2), &mut c_buf)? else {
        return Ok(None);
    };
    let limit = super::calls::watched()
        .map(|_| usize::try_from(super::VALUE_LIMIT).unwrap_or(usize::MAX))
        .unwrap_or(usize::MAX);
    let mut out = Vec::with_capacity(string.len().min(limit));
    let mut from = 0;
    for at in memmem::find_iter(string, pattern) {
        if at < from {
            continue;
        }
        out.extend_from_slice(&string[from..at]);
        out.extend_from_slice(replacement);
        from = at + pattern.len();
        if out.len() > limit {
            return Err(error("string or blob too big"));
        }
    }
    out.extend_from_slice(&string[from..]);
    text_result("REPLACE", &out)
}

/// SQLite's `trimFunc` with a set: `flags` 1 trims the left, 2 the right, 3 both. The set's
/// "characters" are split as SQLite splits them (a lead byte and its continuation bytes, up to
/// the first NUL); at each end the first of them, in the set's order, that the text starts
/// (ends) with is removed, until none does.
fn trim(ctx: &Context<'_>, flags: u8, name: &str) -> rusqlite::Result<Option<String>> {
    let (mut a_buf, mut b_buf) = (String::new(), String::new());
    if ctx.get_raw(0) == ValueRef::Null {
        return Ok(None);
    }
    let Some(mut text) = text_of(ctx.get_raw(0), &mut a_buf)? else {
        return Ok(None);
    };
    let Some(set) = text_of(ctx.get_raw(1), &mut b_buf)? else {
        return Ok(None);
    };
    let set = &set[..set.iter().position(|&b| b == 0).unwrap_or(set.len())];
    // Each character of the set with its first place in the set; the lengths present.
    let mut first: HashMap<&[u8], usize> = HashMap::new();
    let mut i = 0;
    while i < set.len() {
        let start = i;
        i += 1;
        if set[start] >= 0xc0 {
            while i < set.len() && set[i] & 0xc0 == 0x80 {
                i += 1;
            }
        }
        let n = first.len();
        first.entry(&set[start..i]).or_insert(n);
    }
    if first.is_empty() {
        return text_result(name, text);
    }
    let mut lengths: Vec<usize> = first.keys().map(|c| c.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let mut budget = Budget::new();
    // The length of the set's first character that `text` starts (`left`) or ends with.
    let mut matching =
        |text: &[u8], left: bool| -> Result<Option<usize>, super::calls::Cancelled> {
            let mut best: Option<(usize, usize)> = None;
            for &len in lengths.iter().take_while(|&&len| len <= text.len()) {
                budget.step()?;
                let piece = if left {
                    &text[..len]
                } else {
                    &text[text.len() - len..]
                };
                if let Some(&order) = first.get(piece) {
                    if best.is_none_or(|(o, _)| order < o) {
                        best = Some((order, len));
                    }
                }
            }
            Ok(best.map(|(_, len)| len))
        };
    if flags & 1 != 0 {
        while !text.is_empty() {
            match matching(text, true)? {
                Some(len) => text = &text[len..],
                None => break,
            }
        }
    }
    if flags & 2 != 0 {
        while !text.is_empty() {
            match matching(text, false)? {
                Some(len) => text = &text[..text.len() - len],
                None => break,
            }
        }
    }
    text_result(name, text)
}

/// Puts `instr`, `replace` and the two-argument `trim`, `ltrim`, `rtrim` on `conn` (again:
/// the same functions).
///
/// # Errors
/// When SQLite refuses to register a function.
pub(super) fn install(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("instr", 2, flags, instr)?;
    conn.create_scalar_function("replace", 3, flags, replace)?;
    conn.create_scalar_function("ltrim", 2, flags, |ctx| trim(ctx, 1, "LTRIM"))?;
    conn.create_scalar_function("rtrim", 2, flags, |ctx| trim(ctx, 2, "RTRIM"))?;
    conn.create_scalar_function("trim", 2, flags, |ctx| trim(ctx, 3, "TRIM"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sql_sandbox::calls::Watch;
    use std::time::{Duration, Instant};

    /// Every case answered by SQLite's built-in and by the replacement alike.
    #[test]
    fn the_replacements_answer_as_sqlite_does() {
        let builtin = Connection::open_in_memory().unwrap();
        let ported = Connection::open_in_memory().unwrap();
        install(&ported).unwrap();
        let cases = [
            "SELECT instr('abcabc', 'c')",
            "SELECT instr('abc', '')",
            "SELECT instr('', 'a')",
            "SELECT instr('abc', 'd')",
            "SELECT instr('h\u{e9}llo w\u{f6}rld', 'w')",
            "SELECT instr('\u{e9}\u{e9}x', 'x')",
            "SELECT instr(x'00616263', x'63')",
            "SELECT instr(x'c3a9c3a9', x'a9')",
            "SELECT instr('12345', 34)",
            "SELECT instr(12345, '34')",
            "SELECT instr(NULL, 'a')",
            "SELECT instr('a', NULL)",
            "SELECT replace('abcabc', 'b', 'XY')",
            "SELECT replace('aaaa', 'aa', 'b')",
            "SELECT replace('abc', '', 'x')",
            "SELECT replace('abc', 'b', '')",
            "SELECT replace('abc', NULL, 'x')",
            "SELECT replace(NULL, 'a', 'x')",
            "SELECT replace('abc', 'b', NULL)",
            "SELECT replace(12321, 2, 'x')",
            "SELECT replace('h\u{e9}llo', '\u{e9}', 'e')",
            "SELECT trim('xxaxx', 'x')",
            "SELECT ltrim('xyxaxy', 'yx')",
            "SELECT rtrim('xyxaxy', 'yx')",
            "SELECT trim('abc', '')",
            "SELECT trim('\u{e9}a\u{e9}', '\u{e9}')",
            "SELECT trim('aaa', 'a')",
            "SELECT trim(NULL, 'a')",
            "SELECT trim('a', NULL)",
            "SELECT trim(1221, 1)",
            "SELECT typeof(replace(5, '', 'x')), typeof(trim(5, 'x'))",
            "SELECT instr(1.25, '.'), replace(2.5, '.', ',')",
            "SELECT trim(1.5e20, '1'), instr(0.1 + 0.2, '4')",
        ];
        for sql in cases {
            let get = |c: &Connection| {
                let _watch = Watch::start(Instant::now() + Duration::from_secs(60), 1000);
                c.query_row(sql, [], |r| {
                    Ok((
                        r.get::<_, rusqlite::types::Value>(0)?,
                        r.get::<_, Option<rusqlite::types::Value>>(1).ok().flatten(),
                    ))
                })
                .unwrap()
            };
            assert_eq!(get(&builtin), get(&ported), "{sql}");
        }
    }

    #[test]
    fn quadratic_inputs_take_linear_time_or_stop_at_the_deadline() {
        let conn = Connection::open_in_memory().unwrap();
        install(&conn).unwrap();
        let _watch = Watch::start(Instant::now() + Duration::from_secs(60), 1000);
        // 8 MB needle in a 16 MB haystack: hours for SQLite's built-in.
        let n: i64 = conn
            .query_row(
                "SELECT instr(printf('%.*c', 16000000, 'a'), printf('%.*c', 8000000, 'a') || 'b')",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 0);
        let n: i64 = conn
            .query_row(
                "SELECT length(replace(printf('%.*c', 16000000, 'a'), \
                 printf('%.*c', 8000000, 'a') || 'b', 'x'))",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(n, 16_000_000);
        drop(_watch);
        // trim looks characters up one by one, watching the deadline (passed here).
        let _watch = Watch::start(Instant::now(), 1000);
        let e = conn
            .query_row("SELECT ltrim(printf('%.*c', 100000, 'a'), 'ba')", [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap_err();
        assert!(
            e.to_string()
                .contains(crate::sql_sandbox::calls::DEADLINE_PASSED),
            "{e}"
        );
    }
}
