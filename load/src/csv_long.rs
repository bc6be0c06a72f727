//! CSV records past [`MAX_RECORD_BYTES`] (issue 81): the `csv` reader holds a record whole,
//! so its input is [`Capped`] (it fails once the record under way passes the limit), and the
//! record is then read past with `csv-core`'s parser, which holds nothing of it: its first
//! bytes, length, SHA-256 and line breaks are kept for the dead letter. Under `--follow` an
//! unfinished one is kept between polls and read on from where the last poll stopped.

use std::cell::Cell;
use std::io::Read;
use std::rc::Rc;

use csv_core::ReadRecordResult;
use sha2::{Digest, Sha256};

use crate::record::{Whole, KEPT_BYTES, MAX_RECORD_BYTES};

/// Where the record under way started, in bytes of a [`Capped`] reader's input, and whether
/// the reader refused to read on (the record passed the limit).
#[derive(Default)]
pub(crate) struct Boundary {
    /// Bytes before the record under way.
    pub at: Cell<u64>,
    /// Set when the reader stopped at the limit.
    pub refused: Cell<bool>,
}

/// A reader that stops (an I/O error) once it has given more than [`MAX_RECORD_BYTES`] and one
/// buffer past the [`Boundary`]: the `csv` reader then holds at most about that of one record.
pub(crate) struct Capped<R> {
    inner: R,
    given: u64,
    slack: u64,
    boundary: Rc<Boundary>,
}

impl<R> Capped<R> {
    /// `inner`, the `csv` reader's buffer being `slack` bytes.
    pub(crate) fn new(inner: R, slack: usize, boundary: Rc<Boundary>) -> Self {
        Self {
            inner,
            given: 0,
            slack: slack as u64,
            boundary,
        }
    }
}

impl<R: Read> Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.given > self.boundary.at.get() + MAX_RECORD_BYTES as u64 + self.slack {
            self.boundary.refused.set(true);
            return Err(std::io::Error::other("a record past the limit"));
        }
        let n = self.inner.read(buf)?;
        self.given += n as u64;
        Ok(n)
    }
}

/// A CSV record past the limit, being read past.
pub(crate) struct LongRecord {
    parser: csv_core::Reader,
    /// Where it starts in the file.
    pub start: u64,
    /// Its first line.
    pub line: u64,
    /// Bytes of it read so far.
    pub len: u64,
    first: Vec<u8>,
    hash: Sha256,
    done: bool,
}

impl LongRecord {
    /// A record starting at byte `start`, line `line`, read with `parser`.
    pub(crate) fn new(parser: csv_core::Reader, start: u64, line: u64) -> Self {
        Self {
            parser,
            start,
            line,
            len: 0,
            first: Vec::new(),
            hash: Sha256::new(),
            done: false,
        }
    }

    /// Reads on from `input` (the bytes after those read so far; `at_end`: the file is
    /// complete, its end ends the record). Returns whether the record ended.
    ///
    /// # Errors
    /// When `input` cannot be read.
    pub(crate) fn read_from(
        &mut self,
        input: &mut impl Read,
        at_end: bool,
    ) -> std::io::Result<bool> {
        let mut block = vec![0u8; 64 * 1024];
        let mut out = vec![0u8; 64 * 1024];
        let mut ends = [0usize; 64];
        while !self.done {
            let n = input.read(&mut block)?;
            if n == 0 {
                if at_end {
                    // An empty input tells the parser the data ended: the record with it.
                    self.done = true;
                }
                break;
            }
            let mut data = &block[..n];
            while !data.is_empty() && !self.done {
                let (result, nin, _, _) = self.parser.read_record(data, &mut out, &mut ends);
                self.take(&data[..nin]);
                data = &data[nin..];
                self.done = result == ReadRecordResult::Record;
            }
        }
        Ok(self.done)
    }

    fn take(&mut self, bytes: &[u8]) {
        self.hash.update(bytes);
        let room = KEPT_BYTES.saturating_sub(self.first.len()).min(bytes.len());
        self.first.extend_from_slice(&bytes[..room]);
        self.len += bytes.len() as u64;
    }

    /// Its first bytes.
    pub(crate) fn first(&self) -> &[u8] {
        &self.first
    }

    /// Its length and hash.
    pub(crate) fn whole(&self) -> Whole {
        Whole {
            len: self.len,
            sha256: self
                .hash
                .clone()
                .finalize()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
        }
    }

    /// Line breaks read in it (the parser's count of lines, from 1).
    pub(crate) fn lines(&self) -> u64 {
        self.parser.line().saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_record_is_read_past_to_its_end_through_quoted_line_breaks() {
        let mut text = b"1,\"a\nb".to_vec();
        text.extend(std::iter::repeat_n(b'x', 3 * KEPT_BYTES));
        text.extend_from_slice(b"\",c\n2,d,e\n");
        let record_len = text.len() - b"2,d,e\n".len();
        let mut long = LongRecord::new(csv_core::Reader::new(), 0, 1);
        // In two pieces, as two polls of a file being written see it.
        let (head, tail) = text.split_at(1000);
        assert!(!long.read_from(&mut &head[..], false).unwrap());
        let mut rest = tail;
        assert!(long.read_from(&mut rest, false).unwrap());
        assert_eq!(long.whole(), Whole::of(&text[..record_len]));
        assert_eq!(long.first(), &text[..KEPT_BYTES]);
        assert_eq!(long.lines(), 2);
    }

    #[test]
    fn the_capped_reader_refuses_past_the_limit_from_the_boundary() {
        let boundary = Rc::new(Boundary::default());
        let data = vec![b'a'; MAX_RECORD_BYTES + 10_000];
        let mut r = Capped::new(&data[..], 1000, Rc::clone(&boundary));
        let mut buf = vec![0u8; 4096];
        let mut total = 0;
        let err = loop {
            match r.read(&mut buf) {
                Ok(0) => panic!("read to the end"),
                Ok(n) => total += n,
                Err(e) => break e,
            }
        };
        assert!(total > MAX_RECORD_BYTES && boundary.refused.get(), "{err}");
        boundary.at.set(total as u64);
        boundary.refused.set(false);
        assert!(r.read(&mut buf).is_ok());
    }
}
