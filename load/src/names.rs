//! File names as they are shown in logs and errors: control characters escaped (`\n`, `\u{1b}`),
//! so a name holding a line break or a terminal escape cannot forge a log line (issue 81).
//! The JSON summary and the dead-letter file write names as JSON strings, escaped already.

use std::fmt;
use std::path::Path;

/// `path` for a log line or a message: its text (lossy where it is not UTF-8) with every
/// control character escaped as Rust's `escape_debug` writes it, and the bidirectional and
/// invisible characters that reorder what a terminal shows as `\u{202e}`.
pub(crate) fn shown(path: &Path) -> Shown<'_> {
    Shown(path)
}

/// See [`shown`].
#[derive(Clone, Copy)]
pub(crate) struct Shown<'a>(&'a Path);

impl fmt::Display for Shown<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.to_string_lossy().chars() {
            if c.is_control() {
                write!(f, "{}", c.escape_debug())?;
            } else if reorders(c) {
                write!(f, "{}", c.escape_unicode())?;
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
}

/// Unicode's bidirectional controls and invisible characters: not control characters, but a
/// terminal shows the text around them reordered or joined (a name that reads as another).
fn reorders(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// The last `/` segment of an object's name as a file name may hold it: letters, digits, `.`,
/// `-` and `_` kept, anything else `_`, at most 80 characters (spool files and objects'
/// dead-letter files are named after it, beside a hash of the whole).
pub(crate) fn file_name_tail(name: &str) -> String {
    name.rsplit('/')
        .next()
        .unwrap_or("")
        .chars()
        .take(80)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        let name = Path::new("a\nERROR forged\r\u{1b}[31m\u{7f}é.ndjson");
        assert_eq!(
            shown(name).to_string(),
            "a\\nERROR forged\\r\\u{1b}[31m\\u{7f}é.ndjson"
        );
        assert_eq!(shown(Path::new("/data/x.csv")).to_string(), "/data/x.csv");
        assert_eq!(
            shown(Path::new("a\u{202e}vsc.exe\u{200b}")).to_string(),
            "a\\u{202e}vsc.exe\\u{200b}"
        );
    }
}
