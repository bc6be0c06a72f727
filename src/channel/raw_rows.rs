//! [`RawRows`]: rows the caller already serialized, each with its numeric offset token, for
//! [`Channel::append`](super::Channel::append) ([`RawRows::into_append`]).
//!
//! A source that already holds JSON text (a Kafka message, a log line) should not have it
//! parsed into a value and serialized again, nor pay a token string per row. `RawRows` is one
//! NDJSON buffer the caller writes rows into and the channel takes as it is (no copy), and the
//! rows' tokens kept as runs of consecutive numbers: a Kafka partition's offsets are one run
//! until a gap (a compacted key, a transaction marker, a message that was not a row), so a
//! batch of a thousand rows usually carries one run, not a thousand strings. Every request the
//! rows end up in still carries the exact tokens of its own first and last row
//! (`docs/GUARANTEES.md`), so an append of any size stays exactly-once.

use bytes::Bytes;

use crate::{Error, Result};

/// Consecutive numeric tokens: `rows` rows whose tokens are `first`, `first + 1`, ….
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TokenRun {
    pub(crate) first: u64,
    pub(crate) rows: usize,
}

impl TokenRun {
    pub(crate) fn last(&self) -> u64 {
        self.first + (self.rows as u64 - 1)
    }
}

/// Pre-serialized rows with one numeric offset token each, strictly increasing.
///
/// Write each row with [`push`](Self::push) (bytes you hold) or [`push_with`](Self::push_with)
/// (written straight into the buffer), then hand the whole to
/// [`Channel::append`](crate::Channel::append) (`let (rows, positions) = raw.into_append()`).
/// A row is one JSON object
/// without a line break (JSON allows line breaks only as white space: write them as spaces).
/// Rows are not parsed: invalid JSON is refused by the server as a row error
/// ([`Channel::events`](crate::Channel::events)).
///
/// ```
/// use snowpipe_streaming::RawRows;
/// let mut rows = RawRows::with_capacity(64);
/// rows.push(br#"{"id":1}"#, 41)?;
/// rows.push_with(42, |buf| buf.extend_from_slice(br#"{"id":2}"#))?;
/// rows.push(br#"{"id":3}"#, 45)?; // offsets 43 and 44 were not rows
/// assert_eq!((rows.len(), rows.first_token(), rows.last_token()), (3, Some(41), Some(45)));
/// assert!(rows.push(br#"{"id":4}"#, 45).is_err()); // tokens strictly increase
/// # Ok::<(), snowpipe_streaming::Error>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct RawRows {
    data: Vec<u8>,
    /// Rows taken whole from the caller ([`RawRows::from_ndjson_bytes`]); `data` is empty then.
    frozen: Option<Bytes>,
    runs: Vec<TokenRun>,
    rows: usize,
}

impl RawRows {
    /// No rows.
    pub fn new() -> Self {
        Self::default()
    }

    /// No rows, with room for `bytes` bytes of rows (line breaks included).
    pub fn with_capacity(bytes: usize) -> Self {
        Self {
            data: Vec::with_capacity(bytes),
            ..Self::default()
        }
    }

    /// Rows the caller already holds as NDJSON (one JSON object per line, each line ending in
    /// `\n`; a missing last one is added), with their tokens in order, one per line. The
    /// buffer is taken as it is: no copy.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a token does not follow the one before. A line count
    /// that differs from the token count is refused when the rows are appended.
    pub fn from_ndjson(mut ndjson: Vec<u8>, tokens: impl IntoIterator<Item = u64>) -> Result<Self> {
        if ndjson.last().is_some_and(|&b| b != b'\n') {
            ndjson.push(b'\n');
        }
        let mut rows = Self::default();
        for token in tokens {
            rows.take_token(token)?;
            rows.rows += 1;
        }
        rows.data = ndjson;
        Ok(rows)
    }

    /// As [`from_ndjson`](Self::from_ndjson), for rows in [`Bytes`] (a buffer the caller
    /// gets back when the channel is done with it: see `Bytes::from_owner`).
    ///
    /// # Errors
    /// As [`from_ndjson`](Self::from_ndjson).
    pub fn from_ndjson_bytes(ndjson: Bytes, tokens: impl IntoIterator<Item = u64>) -> Result<Self> {
        if ndjson.last().is_some_and(|&b| b != b'\n') {
            return Self::from_ndjson(ndjson.to_vec(), tokens);
        }
        let mut rows = Self::from_ndjson(Vec::new(), tokens)?;
        rows.frozen = Some(ndjson);
        Ok(rows)
    }

    fn take_token(&mut self, token: u64) -> Result<()> {
        extend_runs(&mut self.runs, token)
    }

    /// Adds `row` (one JSON object, no line break) with offset token `token`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `token` does not follow the last row's (nothing is
    /// added), or `row` is empty or holds a line break.
    pub fn push(&mut self, row: &[u8], token: u64) -> Result<()> {
        if row.is_empty() || row.contains(&b'\n') {
            return Err(Error::invalid_argument(
                "row",
                "a raw row must be one JSON object on one line (not empty, no line break: write \
                 line breaks between JSON tokens as spaces)",
            ));
        }
        self.push_with(token, |buf| buf.extend_from_slice(row))
    }

    /// Adds a row that `write` writes into the buffer (one JSON object, no line break; the
    /// line break after it is added), with offset token `token`. A row with a line break is
    /// refused when the rows are appended, which then takes none of them.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `token` does not follow the last row's (nothing is
    /// written, `write` is not called).
    pub fn push_with(&mut self, token: u64, write: impl FnOnce(&mut Vec<u8>)) -> Result<()> {
        self.take_token(token)?;
        if let Some(frozen) = self.frozen.take() {
            self.data = frozen.to_vec();
        }
        write(&mut self.data);
        self.data.push(b'\n');
        self.rows += 1;
        Ok(())
    }

    /// Rows added.
    pub fn len(&self) -> usize {
        self.rows
    }

    /// Whether no row was added.
    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// Bytes of the rows, line breaks included.
    pub fn bytes(&self) -> usize {
        self.as_bytes().len()
    }

    /// The first row's token.
    pub fn first_token(&self) -> Option<u64> {
        self.runs.first().map(|r| r.first)
    }

    /// The last row's token.
    pub fn last_token(&self) -> Option<u64> {
        self.runs.last().map(TokenRun::last)
    }

    /// The rows as written: NDJSON, each row followed by a line break.
    pub fn as_bytes(&self) -> &[u8] {
        self.frozen.as_deref().unwrap_or(&self.data)
    }

    /// How many runs of consecutive tokens the rows carry (1 when the tokens have no gap).
    pub fn token_runs(&self) -> usize {
        self.runs.len()
    }

    /// Removes every row, keeping the buffer's capacity.
    pub fn clear(&mut self) {
        self.data.clear();
        self.frozen = None;
        self.runs.clear();
        self.rows = 0;
    }

    pub(crate) fn into_parts(self) -> (Bytes, Vec<TokenRun>) {
        let data = self.frozen.unwrap_or_else(|| Bytes::from(self.data));
        (data, self.runs)
    }
}

/// Adds `token` after `runs`: to the last run when it is the next number, else as a new run.
///
/// # Errors
/// [`Error::InvalidArgument`] when `token` does not follow the last one (nothing changes).
pub(crate) fn extend_runs(runs: &mut Vec<TokenRun>, token: u64) -> Result<()> {
    match runs.last_mut() {
        Some(run) if token <= run.last() => {
            return Err(Error::invalid_argument(
                "offset_token",
                format!(
                    "token {token} does not follow the previous row's ({}): give every row \
                     its own, strictly increasing token",
                    run.last()
                ),
            ));
        }
        Some(run) if token == run.last() + 1 => run.rows += 1,
        _ => runs.push(TokenRun {
            first: token,
            rows: 1,
        }),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consecutive_tokens_make_one_run_and_gaps_start_another() {
        let mut r = RawRows::new();
        for t in [5, 6, 7, 10, 11, 20] {
            r.push(b"{}", t).unwrap();
        }
        assert_eq!(r.token_runs(), 3);
        assert_eq!(
            (r.first_token(), r.last_token(), r.len()),
            (Some(5), Some(20), 6)
        );
        assert_eq!(r.bytes(), 18);
        let (data, runs) = r.clone().into_parts();
        assert_eq!(&data[..], b"{}\n{}\n{}\n{}\n{}\n{}\n");
        assert_eq!(
            runs,
            [
                TokenRun { first: 5, rows: 3 },
                TokenRun { first: 10, rows: 2 },
                TokenRun { first: 20, rows: 1 }
            ]
        );
        r.clear();
        assert!(r.is_empty());
        assert_eq!(r.first_token(), None);
    }

    #[test]
    fn ndjson_held_by_the_caller_is_taken_with_its_tokens() {
        let r = RawRows::from_ndjson(b"{}\n{\"a\":1}".to_vec(), [7, 8]).unwrap();
        assert_eq!(
            (r.len(), r.token_runs(), r.as_bytes()),
            (2, 1, &b"{}\n{\"a\":1}\n"[..])
        );
        assert!(RawRows::from_ndjson(b"{}\n{}\n".to_vec(), [8, 8]).is_err());
        assert!(RawRows::from_ndjson(Vec::new(), []).unwrap().is_empty());
        let mut b = RawRows::from_ndjson_bytes(Bytes::from_static(b"{}\n"), [1]).unwrap();
        assert_eq!(b.as_bytes(), b"{}\n");
        b.push(b"{\"b\":2}", 2).unwrap();
        assert_eq!((b.len(), b.as_bytes()), (2, &b"{}\n{\"b\":2}\n"[..]));
    }

    #[test]
    fn tokens_that_repeat_or_go_back_and_rows_that_are_not_one_line_are_refused() {
        let mut r = RawRows::new();
        r.push(b"{\"a\":1}", 3).unwrap();
        for t in [3, 2] {
            let e = r.push(b"{}", t).unwrap_err().to_string();
            assert!(e.contains("does not follow the previous row's (3)"), "{e}");
        }
        assert!(r.push(b"{\"a\":\n1}", 4).is_err());
        assert!(r.push(b"", 4).is_err());
        assert_eq!((r.len(), r.bytes()), (1, 8), "nothing was added");
        let mut called = false;
        assert!(r.push_with(1, |_| called = true).is_err());
        assert!(!called);
    }
}
