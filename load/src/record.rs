//! One record's bounds (issue 81): how long a record may be, how deep an NDJSON row may
//! nest, what it must be (UTF-8, one JSON object), and a line read in bounded memory: a line
//! past the limit is kept as its first bytes, its length and its SHA-256, for the
//! dead-letter file, and the reader goes on after it.

use std::io::BufRead;
use std::sync::atomic::{AtomicBool, Ordering};

use sha2::{Digest, Sha256};

/// The longest record, its line break included: Snowflake's per-request cap (4 MB; the SDK's
/// `ClientBuilder::MAX_REQUEST_BYTES`). A longer record is a bad record, read past in bounded
/// memory, never held.
pub(crate) const MAX_RECORD_BYTES: usize = snowpipe_streaming::ClientBuilder::MAX_REQUEST_BYTES;

/// The deepest an NDJSON row may nest (objects and arrays): what `serde_json` parses by
/// default (its recursion limit of 128 refuses the 128th level), which the emulator reads rows
/// with; a deeper row is a bad record here rather than a row error without a file line.
pub(crate) const MAX_DEPTH: usize = 127;

/// The most of a long record a reader holds (its first bytes, for the dead letter).
pub(crate) const KEPT_BYTES: usize = 64 * 1024;

/// A record's length and SHA-256 (lowercase hex), of its bytes in the input from its first
/// byte to its line break included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Whole {
    /// Bytes.
    pub len: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

impl Whole {
    /// Of `bytes`.
    pub(crate) fn of(bytes: &[u8]) -> Self {
        Self {
            len: bytes.len() as u64,
            sha256: hex(Sha256::new().chain_update(bytes)),
        }
    }
}

fn hex(h: Sha256) -> String {
    h.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

/// A line being read: held whole while it is at most `max` bytes, past that only its first
/// [`KEPT_BYTES`] with its running length and hash. Kept across `--follow` polls while its
/// line break has not come: the next poll reads on after it, never again from its start.
#[derive(Default)]
pub(crate) struct Line {
    /// The line's bytes (its first ones when [`is_long`](Self::is_long)).
    pub bytes: Vec<u8>,
    /// Bytes read of it so far.
    pub len: u64,
    /// Whether its line break was read.
    pub ended: bool,
    hash: Option<Sha256>,
}

impl Line {
    /// Empty again, keeping the buffer (at most about the limit).
    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.len = 0;
        self.ended = false;
        self.hash = None;
    }

    /// Whether it passed the limit (only its first bytes are held).
    pub(crate) fn is_long(&self) -> bool {
        self.hash.is_some()
    }

    /// Its length and hash.
    pub(crate) fn whole(&self) -> Whole {
        match &self.hash {
            Some(h) => Whole {
                len: self.len,
                sha256: hex(h.clone()),
            },
            None => Whole::of(&self.bytes),
        }
    }

    /// Reads on from `input` to the line's end (or the input's, or `stop`), holding at most
    /// `max` bytes of it. Returns the bytes read.
    ///
    /// # Errors
    /// When `input` cannot be read.
    pub(crate) fn read_from(
        &mut self,
        input: &mut impl BufRead,
        max: usize,
        stop: &AtomicBool,
    ) -> std::io::Result<u64> {
        let mut read = 0u64;
        while !self.ended && !stop.load(Ordering::Relaxed) {
            let buf = input.fill_buf()?;
            if buf.is_empty() {
                break;
            }
            let (take, ended) = match buf.iter().position(|&b| b == b'\n') {
                Some(at) => (at + 1, true),
                None => (buf.len(), false),
            };
            let piece = &buf[..take];
            if self.hash.is_none() && self.bytes.len() + take > max {
                let hash = Sha256::new().chain_update(&self.bytes);
                self.bytes.truncate(KEPT_BYTES);
                self.bytes.shrink_to_fit();
                self.hash = Some(hash);
            }
            match &mut self.hash {
                None => self.bytes.extend_from_slice(piece),
                Some(h) => {
                    h.update(piece);
                    let room = KEPT_BYTES.saturating_sub(self.bytes.len()).min(take);
                    self.bytes.extend_from_slice(&piece[..room]);
                }
            }
            input.consume(take);
            self.len += take as u64;
            read += take as u64;
            self.ended = ended;
        }
        Ok(read)
    }
}

/// A line without its line break (`\n` or `\r\n`).
pub(crate) fn trim_line(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// `bytes` without a UTF-8 byte order mark at its start (the first line of a file written by
/// some Windows tools), as the CSV reader skips it.
pub(crate) fn without_bom(bytes: &[u8]) -> &[u8] {
    bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes)
}

/// `Ok(true)` for one JSON object, `Ok(false)` for a blank line, else why not: not UTF-8
/// (JSON text is; the byte named), nested past [`MAX_DEPTH`], not JSON, not an object.
///
/// # Errors
/// The message for the dead-letter file.
pub(crate) fn check_object(row: &[u8]) -> Result<bool, String> {
    let first = row.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        None => Ok(false),
        Some(b'{') => {
            if let Err(e) = std::str::from_utf8(row) {
                return Err(format!(
                    "not UTF-8 (byte {} of the record): JSON text is UTF-8; convert the file \
                     (e.g. iconv -f LATIN1 -t UTF-8)",
                    e.valid_up_to() + 1
                ));
            }
            let depth = depth(row);
            if depth > MAX_DEPTH {
                return Err(format!(
                    "nested {depth} levels deep, past the limit of {MAX_DEPTH} (objects and \
                     arrays): flatten the record, or load it as text"
                ));
            }
            serde_json::from_slice::<serde::de::IgnoredAny>(row)
                .map(|_| true)
                .map_err(|e| format!("not valid JSON: {e}"))
        }
        Some(_) => Err("not a JSON object (a row is one object per line)".to_owned()),
    }
}

/// The deepest nesting of objects and arrays in `row` (brackets in strings not counted), in
/// one pass without recursion.
fn depth(row: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    for b in snowpipe_cli_support::json_scan::outside_strings(row) {
        match b {
            b'{' | b'[' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(levels: usize) -> String {
        format!(
            "{{\"a\":{}1{}}}",
            "[".repeat(levels - 1),
            "]".repeat(levels - 1)
        )
    }

    #[test]
    fn a_row_is_one_utf8_json_object_nested_as_deep_as_serde_json_parses() {
        assert_eq!(check_object(br#" {"a": [1, 2]} "#), Ok(true));
        assert_eq!(check_object(b"   "), Ok(false));
        assert!(check_object(b"[1]")
            .unwrap_err()
            .contains("not a JSON object"));
        assert!(check_object(br#"{"a":"#)
            .unwrap_err()
            .contains("not valid JSON"));
        assert!(check_object(br#"{"a":1} x"#).is_err());
        let latin1 = b"{\"a\":\"caf\xe9\"}";
        assert!(check_object(latin1).unwrap_err().contains("byte 10 "));
        // The limit is what serde_json (the emulator's parser) takes, and no more.
        let deepest = nested(MAX_DEPTH);
        assert!(serde_json::from_str::<serde_json::Value>(&deepest).is_ok());
        assert_eq!(check_object(deepest.as_bytes()), Ok(true));
        let deeper = nested(MAX_DEPTH + 1);
        assert!(serde_json::from_str::<serde_json::Value>(&deeper).is_err());
        assert!(check_object(deeper.as_bytes())
            .unwrap_err()
            .contains("nested 128 levels deep"));
        assert_eq!(depth(br#"{"[[[": "\"{{"}"#), 1);
        assert_eq!(trim_line(b"{}\r\n"), b"{}");
        assert_eq!(without_bom(b"\xEF\xBB\xBF{}"), b"{}");
    }

    #[test]
    fn a_long_line_is_read_past_holding_its_first_bytes_its_length_and_hash() {
        let stop = AtomicBool::new(false);
        let long = vec![b'x'; 3 * KEPT_BYTES];
        let mut text = long.clone();
        text.extend_from_slice(b"\n{}\n");
        let mut input = std::io::BufReader::with_capacity(1000, &text[..]);
        let mut line = Line::default();
        let n = line.read_from(&mut input, 2 * KEPT_BYTES, &stop).unwrap();
        assert_eq!(n, long.len() as u64 + 1);
        assert!(line.ended && line.is_long());
        assert_eq!(line.bytes, long[..KEPT_BYTES]);
        let mut with_break = long.clone();
        with_break.push(b'\n');
        assert_eq!(line.whole(), Whole::of(&with_break));
        let mut next = Line::default();
        next.read_from(&mut input, 2 * KEPT_BYTES, &stop).unwrap();
        assert_eq!(
            (next.bytes.as_slice(), next.is_long()),
            (&b"{}\n"[..], false)
        );
        // A line read in two pieces (a file still being written) is one line.
        let mut part = Line::default();
        part.read_from(&mut &b"{\"a\""[..], 100, &stop).unwrap();
        assert!(!part.ended);
        part.read_from(&mut &b":1}\n"[..], 100, &stop).unwrap();
        assert_eq!(
            (part.bytes.as_slice(), part.ended),
            (&b"{\"a\":1}\n"[..], true)
        );
    }
}
