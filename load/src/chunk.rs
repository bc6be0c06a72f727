//! What the readers hand the loader: rows in chunks of at most [`CHUNK_BYTES`], each with the
//! offset tokens of its first and last row (bad records: `dead_letter.rs`).

use snowpipe_streaming::arrow::arrow_array::RecordBatch;

use crate::chunk_pool::ChunkBuf;

pub(crate) use crate::chunk_pool::CHUNK_BYTES;

/// Rows of a text file as NDJSON.
#[derive(Debug)]
pub(crate) struct Chunk {
    /// One JSON object per line, in a pooled buffer (`chunk_pool.rs`): handed to the SDK as the
    /// owner of its `Bytes`, back in the pool when the SDK drops them.
    pub ndjson: ChunkBuf,
    /// Rows in `ndjson`.
    pub rows: u64,
    /// The first row's token.
    pub first_token: String,
    /// The token after the last record the chunk covers.
    pub end_token: String,
    /// Input bytes the chunk covers (bad records and blank lines included).
    pub bytes: u64,
    /// Its bytes' share of the readers' budget while it is queued (`decode_budget.rs`),
    /// given back when the chunk is dropped after its append.
    #[allow(
        dead_code,
        reason = "kept for its `Drop`: the share is given back then"
    )]
    pub held: Option<crate::decode_budget::Share>,
}

/// Rows of a Parquet file.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The rows.
    pub batch: RecordBatch,
    /// Rows of the file before it.
    pub before: u64,
    /// The file's identity, for the tokens.
    pub identity: crate::token::ParquetIdentity,
    /// Compressed bytes of the file the batch stands for (its share), for progress.
    pub bytes: u64,
}

/// What a reader sends the loader.
#[derive(Debug)]
pub(crate) enum Msg {
    /// Rows to append.
    Rows(Chunk),
    /// Parquet rows to append.
    Batch(Batch),
    /// Input consumed without rows (bad records, blank lines, a header).
    Skipped {
        /// Input bytes.
        bytes: u64,
    },
    /// The path names another file now (rotation), or the file shrank (truncation): every row
    /// before was sent; the loader starts a fresh channel handle.
    Restart {
        /// What happened, for the log.
        reason: String,
    },
}

/// Accumulates rows into chunks.
#[derive(Debug, Default)]
pub(crate) struct ChunkBuilder {
    ndjson: ChunkBuf,
    rows: u64,
    first_token: Option<String>,
    bytes: u64,
    held: Option<crate::decode_budget::Share>,
}

impl ChunkBuilder {
    /// Whether a row of `len` bytes no longer fits (the chunk holds rows).
    pub(crate) fn full_for(&self, len: usize) -> bool {
        self.rows > 0 && self.ndjson.len() + len + 1 > CHUNK_BYTES
    }

    /// Whether the chunk holds its share of the readers' budget.
    pub(crate) fn holds(&self) -> bool {
        self.held.is_some()
    }

    /// The chunk holds `share` from now until it is appended.
    pub(crate) fn hold(&mut self, share: crate::decode_budget::Share) {
        self.held = Some(share);
    }

    /// Writes a row (without its line break), its token `token`. The buffer is taken once, at
    /// the size the chunk's share of the budget stands for ([`CHUNK_BYTES`] from the pool, or
    /// the one row larger than it), never grown by doubling: a chunk holds no more than it is
    /// charged.
    pub(crate) fn write_row(&mut self, row: &[u8], token: impl FnOnce() -> String) {
        if self.ndjson.capacity() == 0 {
            self.ndjson = ChunkBuf::with_capacity(row.len() + 1);
        }
        self.ndjson.extend_from_slice(row);
        self.ndjson.extend_from_slice(b"\n");
        if self.rows == 0 {
            self.first_token = Some(token());
        }
        self.rows += 1;
    }

    /// Counts `n` input bytes.
    pub(crate) fn consumed(&mut self, n: u64) {
        self.bytes += n;
    }

    /// The chunk so far as a message, `end_token` the token after it, or `None`
    /// when nothing was consumed.
    pub(crate) fn take(&mut self, end_token: impl FnOnce() -> String) -> Option<Msg> {
        let taken = std::mem::take(self);
        if taken.rows == 0 {
            return (taken.bytes > 0).then_some(Msg::Skipped { bytes: taken.bytes });
        }
        let mut ndjson = taken.ndjson;
        if ndjson.capacity() - ndjson.len() > ndjson.len() / 8 {
            // A short chunk (a range's last): the SDK charges the bytes it is given, so it is
            // given no more than them; the chunk's buffer goes back to the pool.
            ndjson = ndjson.exact_copy();
        }
        Some(Msg::Rows(Chunk {
            ndjson,
            rows: taken.rows,
            first_token: taken.first_token.unwrap_or_default(),
            end_token: end_token(),
            bytes: taken.bytes,
            held: taken.held,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fills a chunk with `row`s the way a reader does, and takes it; the buffer never holds
    /// more than the share the reader took for it (`text.rs` `reserve`) meanwhile.
    fn filled(row: &[u8]) -> Chunk {
        let mut chunk = ChunkBuilder::default();
        let share = CHUNK_BYTES.max(row.len() + 1);
        while !chunk.full_for(row.len()) {
            chunk.write_row(row, || "t".into());
            let held = chunk.ndjson.capacity();
            assert!(held <= share, "{held} held for a share of {share}");
        }
        match chunk.take(|| "end".into()) {
            Some(Msg::Rows(c)) => c,
            other => panic!("rows expected: {other:?}"),
        }
    }

    #[test]
    fn a_full_chunk_holds_no_more_than_its_share_of_the_budget() {
        // 120-byte rows, as the bench's: a buffer grown by doubling from one row reached
        // 120 << 14 = 1,966,080 bytes for a chunk charged 1 MiB (issue 83's excess).
        let row = [b'x'; 120];
        let c = filled(&row);
        assert!(c.ndjson.len() > CHUNK_BYTES - 121, "{}", c.ndjson.len());
        assert!(
            c.ndjson.capacity() <= CHUNK_BYTES,
            "capacity {} > the share {CHUNK_BYTES}",
            c.ndjson.capacity()
        );
    }

    #[test]
    fn a_short_chunk_and_a_row_larger_than_a_chunk_hold_what_they_carry() {
        let mut chunk = ChunkBuilder::default();
        chunk.write_row(b"{\"a\":1}", || "t".into());
        let Some(Msg::Rows(c)) = chunk.take(|| "end".into()) else {
            panic!("rows expected");
        };
        assert_eq!((c.ndjson.len(), c.ndjson.capacity()), (8, 8));
        let big = vec![b'y'; CHUNK_BYTES + 10];
        let c = filled(&big);
        assert_eq!((c.rows, c.ndjson.capacity()), (1, CHUNK_BYTES + 11));
    }
}
