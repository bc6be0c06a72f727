//! [`Channel::append_record_batch`] and [`Channel::append_record_batch_with_tokens`]: Arrow
//! record batches through the append path every row takes (see [`crate::arrow`]).

use std::future::Future;

use arrow_array::RecordBatch;
use bytes::Bytes;

use super::handle::Channel;
use super::tokens::Tokens;
use crate::binary::PipeBinary;
use crate::{OffsetToken, Result};

impl Channel {
    /// Appends the rows of an Arrow record batch, in order, with optional start and end offset
    /// tokens (the tokens of its first and last row), as
    /// [`append_rows`](Self::append_rows) appends rows: each column becomes the table column
    /// of its name, each value the JSON the column takes (the table in [`crate::arrow`]).
    ///
    /// The batch is written to NDJSON column by column once the memory budget has room, then
    /// admitted; a batch larger than one request is split at row boundaries only when its
    /// tokens are dense numbers (`end = start + rows - 1`), else refused — use
    /// [`append_record_batch_with_tokens`](Self::append_record_batch_with_tokens) for a token
    /// per row. A batch of no rows does nothing.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming the column for a type
    /// that is not written (durations, intervals, unions: cast them first), two columns of
    /// one name, or a bytes column when the pipe's BINARY format is not known;
    /// [`Error::Serialization`](crate::Error::Serialization) naming the column and row of a
    /// value Snowflake cannot store (a year outside 1 to 9999, bytes that are not UTF-8 for a
    /// `UTF-8` pipe); otherwise as [`append_rows`](Self::append_rows). Nothing is buffered when
    /// a check fails.
    ///
    /// # Cancellation
    /// As [`append_rows`](Self::append_rows).
    // Not `async fn`: the signature states that the future is `Send`.
    #[allow(clippy::manual_async_fn)]
    pub fn append_record_batch<'a>(
        &'a self,
        batch: &'a RecordBatch,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        async move {
            if batch.num_rows() == 0 {
                return Ok(());
            }
            let reserved = self.reserve().await?;
            let ndjson = crate::arrow::encode(batch, self.pipe_format())?;
            let tokens = Tokens::Span {
                start: start_offset_token,
                end: end_offset_token,
            };
            let prepared = self.prepare_raw(Bytes::from(ndjson), tokens)?;
            self.admit(prepared, reserved).await
        }
    }

    /// Appends the rows of an Arrow record batch each with its own numeric offset token:
    /// `tokens` holds one per row, strictly increasing (a source's row numbers, a file's line
    /// numbers, a log's offsets with gaps). Every request carries the tokens of its own first
    /// and last row, so a batch of any size is split exactly and stays exactly-once across
    /// restarts ([`RawRows`](super::RawRows) underneath).
    ///
    /// # Errors
    /// As [`append_record_batch`](Self::append_record_batch);
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when the tokens do not
    /// strictly increase, their count differs from the batch's rows, or the first does not
    /// follow the last token appended through this handle.
    ///
    /// # Cancellation
    /// As [`append_rows`](Self::append_rows).
    // Not `async fn`: the signature states that the future is `Send`.
    #[allow(clippy::manual_async_fn)]
    pub fn append_record_batch_with_tokens<'a, I>(
        &'a self,
        batch: &'a RecordBatch,
        tokens: I,
    ) -> impl Future<Output = Result<()>> + Send + 'a
    where
        I: IntoIterator<Item = u64> + Send + 'a,
    {
        async move {
            let reserved = self.reserve().await?;
            let ndjson = crate::arrow::encode(batch, self.pipe_format())?;
            let rows = super::RawRows::from_ndjson(ndjson, tokens)?;
            if rows.len() != batch.num_rows() {
                return Err(crate::Error::invalid_argument(
                    "offset tokens",
                    format!(
                        "{} tokens for a batch of {} rows: give one token per row",
                        rows.len(),
                        batch.num_rows()
                    ),
                ));
            }
            if rows.is_empty() {
                return Ok(());
            }
            let prepared = self.prepare_raw_rows(rows)?;
            self.admit(prepared, reserved).await
        }
    }

    /// The pipe's BINARY format, or why it is not known.
    fn pipe_format(&self) -> crate::arrow::PipeFormat {
        match &*self
            .binary
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            PipeBinary::Known(f) => Ok(*f),
            PipeBinary::Unknown(why) => Err(std::sync::Arc::clone(why)),
        }
    }
}
