//! [`Rows`]: the rows of one append, in one of three forms — serde values, NDJSON text, an
//! Arrow record batch — as both channel kinds take them
//! ([`Channel::append`](crate::Channel::append) with their positions,
//! [`ElasticChannel::append`](crate::ElasticChannel::append) without), and how each form
//! becomes request-sized pieces ([`Rows::encode`]).

use std::fmt;

use bytes::Bytes;

use crate::pipeline::encode::{self, Encoded, RowCap};
use crate::pipeline::pool::{BufferPool, RowSize};
use crate::Result;

/// The rows of one append: serde values ([`Rows::serde`]), NDJSON text the caller already
/// holds ([`Rows::ndjson`]) or, with the `arrow` feature, an Arrow `RecordBatch`
/// ([`Rows::arrow`], or `Rows::from(batch)`). Pre-serialized rows each with a numeric token
/// ([`RawRows`](crate::RawRows)) become rows and positions with
/// [`RawRows::into_append`](crate::RawRows::into_append).
///
/// `I` is the iterator of serde rows; the other forms use the default.
///
/// ```
/// use snowpipe_streaming::channel::Rows;
/// let serde = Rows::serde([serde_json::json!({"id": 1}), serde_json::json!({"id": 2})]);
/// let text = Rows::ndjson(&b"{\"id\":1}\n{\"id\":2}\n"[..]);
/// # let _ = (serde, text);
/// ```
pub struct Rows<I = std::iter::Empty<()>> {
    pub(crate) kind: RowsKind<I>,
}

/// The forms of [`Rows`] (private: the constructors are the API).
pub(crate) enum RowsKind<I> {
    /// Values serialized to JSON objects when the append runs.
    Serde(I),
    /// NDJSON text: one JSON object per line, checked for size and emptiness, not parsed.
    Ndjson(Bytes),
    /// An Arrow record batch, written to NDJSON column by column (see [`crate::arrow`]).
    #[cfg(feature = "arrow")]
    Arrow(arrow_array::RecordBatch),
}

impl<I> Rows<I>
where
    I: IntoIterator,
    I::Item: serde::Serialize,
{
    /// Rows as values serialized to JSON objects, in order: anything iterable over
    /// `Serialize` items (`Vec<T>`, `&[T]`, `[&row]` for one row, an iterator). Serialized
    /// on the caller's task when the append runs, once the memory budget has room.
    pub fn serde(rows: I) -> Self {
        Self {
            kind: RowsKind::Serde(rows),
        }
    }
}

impl Rows {
    /// Rows already encoded as NDJSON (one JSON object per line; a missing final newline is
    /// added). Lines are checked for size and emptiness, not parsed: invalid JSON is refused
    /// by the server and reported as row errors ([`Channel::events`](crate::Channel::events)).
    /// `Bytes` is taken without a copy. The memory budget is charged the bytes' length: a
    /// `Vec<u8>` keeps its whole allocation inside the `Bytes` made from it, so pass one without
    /// much spare capacity (`shrink_to_fit`, or allocate it at its final size), or the budget
    /// undercounts what the append holds until it is sent.
    pub fn ndjson(ndjson: impl Into<Bytes>) -> Self {
        Self {
            kind: RowsKind::Ndjson(ndjson.into()),
        }
    }

    /// The rows of an Arrow record batch: each column becomes the table column of its name,
    /// each value the JSON the column takes (the table in [`crate::arrow`]). A batch is
    /// cheap to clone (its columns are shared).
    #[cfg(feature = "arrow")]
    pub fn arrow(batch: arrow_array::RecordBatch) -> Self {
        Self {
            kind: RowsKind::Arrow(batch),
        }
    }
}

#[cfg(feature = "arrow")]
impl From<arrow_array::RecordBatch> for Rows {
    fn from(batch: arrow_array::RecordBatch) -> Self {
        Self::arrow(batch)
    }
}

impl<I> fmt::Debug for Rows<I> {
    /// The form only: rows are the application's data.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let form = match &self.kind {
            RowsKind::Serde(_) => "serde",
            RowsKind::Ndjson(b) => return write!(f, "Rows::ndjson({} bytes)", b.len()),
            #[cfg(feature = "arrow")]
            RowsKind::Arrow(b) => return write!(f, "Rows::arrow({} rows)", b.num_rows()),
        };
        write!(f, "Rows::{form}(..)")
    }
}

impl<I> Rows<I>
where
    I: IntoIterator,
    I::Item: serde::Serialize,
{
    /// Encodes the rows into pieces of at most one request: serde rows on the caller's
    /// task with the pipe's BINARY format set (`binary::with_pipe_format`), NDJSON as it is
    /// (no copy), a record batch column by column in the pipe's BINARY format.
    ///
    /// # Errors
    /// As the encoders: [`Error::Serialization`](crate::Error::Serialization),
    /// [`Error::RowTooLarge`](crate::Error::RowTooLarge), and for a record batch
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) naming a column.
    pub(crate) fn encode(
        self,
        binary: &crate::binary::PipeBinary,
        limit: &RowCap,
        buffers: &BufferPool,
        row_size: &RowSize,
    ) -> Result<Encoded> {
        match self.kind {
            RowsKind::Serde(rows) => crate::binary::with_pipe_format(binary, || {
                encode::encode_rows(rows, limit, buffers, row_size)
            }),
            RowsKind::Ndjson(ndjson) => encode::encode_raw(ndjson, limit),
            #[cfg(feature = "arrow")]
            RowsKind::Arrow(batch) => {
                let format = match binary {
                    crate::binary::PipeBinary::Known(f) => Ok(*f),
                    crate::binary::PipeBinary::Unknown(why) => Err(std::sync::Arc::clone(why)),
                };
                let ndjson = crate::arrow::encode(&batch, format)?;
                encode::encode_raw(Bytes::from(ndjson), limit)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_names_the_form_not_the_rows() {
        let d = format!("{:?}", Rows::ndjson(&b"{\"secret\":1}\n"[..]));
        assert_eq!(d, "Rows::ndjson(13 bytes)");
        let d = format!("{:?}", Rows::serde(["secret"]));
        assert_eq!(d, "Rows::serde(..)");
    }
}
