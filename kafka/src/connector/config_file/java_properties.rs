//! A `.properties` file read as Java's `Properties.load` reads it: natural lines continued by
//! an odd number of trailing backslashes, `=`, `:` or white space between key and value, and
//! the escapes `\t`, `\n`, `\f`, `\r`, `\uXXXX` (any other escaped character is itself).

use std::collections::BTreeMap;

use crate::error::{err, fail, Context, Error, Result};

/// A `.properties` text read as Java's `Properties.load` reads it: lines end at `\n`, `\r\n`
/// or `\r`; a line ending in an odd number of backslashes goes on on the next (whose leading
/// whitespace is dropped); blank lines and lines starting with `#` or `!` are skipped; the key
/// ends at the first unescaped `=`, `:` or whitespace, and the whitespace and one `=` or `:`
/// after it are skipped; in keys and values `\t`, `\n`, `\r`, `\f` and `\uXXXX` are those
/// characters and a backslash before any other character stands for that character (`\\` is a
/// backslash, `\=` an `=`). The value keeps its trailing whitespace, as Java's does (the keys
/// this sink reads are trimmed by [`translate`]).
///
/// # Errors
/// A malformed `\uXXXX`, or a line that is a key alone (Java reads it as an empty value; here
/// it is most likely not a properties file at all), naming the line, never its text.
pub(super) fn parse_properties(text: &str) -> Result<BTreeMap<String, String>> {
    const WHITE: [char; 3] = [' ', '\t', '\x0c'];
    let lines: Vec<&str> = natural_lines(text);
    let mut out = BTreeMap::new();
    let mut next = 0;
    while next < lines.len() {
        let number = next + 1;
        let mut line = lines[next].trim_start_matches(WHITE);
        next += 1;
        if line.is_empty() || line.starts_with(['#', '!']) {
            continue;
        }
        let mut logical = String::new();
        loop {
            let trailing = line.len() - line.trim_end_matches('\\').len();
            if trailing % 2 == 0 {
                logical.push_str(line);
                break;
            }
            logical.push_str(&line[..line.len() - 1]);
            let Some(more) = lines.get(next) else {
                break;
            };
            next += 1;
            line = more.trim_start_matches(WHITE);
        }
        let (key, value) =
            split_entry(&logical).with_context(Error::Config, || format!("line {number}"))?;
        out.insert(key, value);
    }
    Ok(out)
}

/// `text`'s lines, ended by `\n`, `\r\n` or `\r` (as Java's `Properties` reads them).
fn natural_lines(text: &str) -> Vec<&str> {
    let mut lines = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        match rest.find(['\n', '\r']) {
            Some(end) => {
                lines.push(&rest[..end]);
                let skip = if rest[end..].starts_with("\r\n") {
                    2
                } else {
                    1
                };
                rest = &rest[end + skip..];
            }
            None => {
                lines.push(rest);
                rest = "";
            }
        }
    }
    lines
}

/// A logical line's key and value, unescaped (Java's `Properties.load0` and `loadConvert`).
fn split_entry(line: &str) -> Result<(String, String)> {
    let chars: Vec<char> = line.chars().collect();
    let white = |c: char| matches!(c, ' ' | '\t' | '\x0c');
    let mut key_end = chars.len();
    let mut value_start = chars.len();
    let mut separated = false;
    let mut escaped = false;
    for (i, &c) in chars.iter().enumerate() {
        if !escaped && (c == '=' || c == ':') {
            (key_end, value_start, separated) = (i, i + 1, true);
            break;
        }
        if !escaped && white(c) {
            (key_end, value_start) = (i, i + 1);
            break;
        }
        escaped = c == '\\' && !escaped;
    }
    while let Some(&c) = chars.get(value_start) {
        if !white(c) {
            if separated || (c != '=' && c != ':') {
                break;
            }
            separated = true;
        }
        value_start += 1;
    }
    if !separated && value_start >= chars.len() {
        fail!(Config, "no `=` (write key=value)");
    }
    Ok((
        unescape(&chars[..key_end])?,
        unescape(&chars[value_start.min(chars.len())..])?,
    ))
}

/// Java's `Properties` escapes taken out of `text`.
fn unescape(text: &[char]) -> Result<String> {
    let mut units: Vec<u16> = Vec::with_capacity(text.len());
    let mut rest = text.iter();
    let mut buf = [0u16; 2];
    while let Some(&c) = rest.next() {
        let c = if c == '\\' {
            match rest.next() {
                // A backslash that ends the text (a continued last line): nothing.
                None => break,
                Some('t') => '\t',
                Some('n') => '\n',
                Some('r') => '\r',
                Some('f') => '\x0c',
                Some('u') => {
                    let hex: String = rest.by_ref().take(4).collect();
                    let unit = u16::from_str_radix(&hex, 16)
                        .ok()
                        .filter(|_| hex.len() == 4 && hex.chars().all(|h| h.is_ascii_hexdigit()))
                        .ok_or_else(|| {
                            err!(
                                Config,
                                "malformed \\uXXXX escape (four hex digits expected)"
                            )
                        })?;
                    units.push(unit);
                    continue;
                }
                Some(&other) => other,
            }
        } else {
            c
        };
        units.extend_from_slice(c.encode_utf16(&mut buf));
    }
    String::from_utf16(&units)
        .map_err(|_| err!(Config, "a \\uXXXX escape is half a surrogate pair"))
}
