//! File names as they are shown in logs and errors: control characters escaped (`\n`, `\u{1b}`),
//! so a name holding a line break or a terminal escape cannot forge a log line (issue 81).
//! The JSON summary and the dead-letter file write names as JSON strings, escaped already.

use std::fmt;
use std::path::Path;

/// `path` for a log line or a message: its text (lossy where it is not UTF-8) with every
/// control character escaped as Rust's `escape_debug` writes it.
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
            } else {
                write!(f, "{c}")?;
            }
        }
        Ok(())
    }
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
    }
}
