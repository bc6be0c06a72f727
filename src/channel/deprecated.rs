//! The append calls before [`Channel::append`]: kept for one release as thin shims over it
//! (`docs/MIGRATING.md` maps each to its new call). The Arrow ones need the `arrow` feature.

use std::future::Future;

#[cfg(feature = "arrow")]
use arrow_array::RecordBatch;
use bytes::Bytes;
use serde::Serialize;

use super::handle::Channel;
use super::input::Positions;
use super::RawRows;
use crate::rows::Rows;
use crate::{OffsetToken, Result};

/// One row as the serde rows of [`Channel::append`].
fn one<T: Serialize + ?Sized>(row: &T) -> Rows<std::iter::Once<&T>> {
    Rows::serde(std::iter::once(row))
}

/// `(row, token)` pairs as rows and per-row positions.
fn pairs<I, T>(rows: I) -> (Rows<Vec<T>>, Positions)
where
    I: IntoIterator<Item = (T, OffsetToken)>,
    T: Serialize,
{
    let (rows, tokens): (Vec<T>, Vec<OffsetToken>) = rows.into_iter().unzip();
    (Rows::serde(rows), Positions::per_row(tokens))
}

#[allow(clippy::manual_async_fn)] // Not `async fn`: the signatures state the futures are `Send`.
impl Channel {
    /// Appends one row with an optional offset token.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::append(Rows::serde([row]), token.into())`"
    )]
    pub fn append_row<'a, T: Serialize + Sync + ?Sized>(
        &'a self,
        row: &'a T,
        offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        self.append(one(row), offset_token.into())
    }

    /// Appends rows with optional start and end offset tokens.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::append(Rows::serde(rows), Positions::span(start..=end))`"
    )]
    pub fn append_rows<'a, I>(
        &'a self,
        rows: I,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + 'a
    where
        I: IntoIterator + Send + 'a,
        I::Item: Serialize,
    {
        let positions = Positions::from_span(start_offset_token, end_offset_token);
        self.append(Rows::serde(rows), positions)
    }

    /// Appends already-encoded NDJSON with optional start and end offset tokens.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::append(Rows::ndjson(bytes), Positions::span(start..=end))`"
    )]
    pub fn append_raw(
        &self,
        ndjson: Bytes,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let positions = Positions::from_span(start_offset_token, end_offset_token);
        self.append(Rows::ndjson(ndjson), positions)
    }

    /// Appends rows the caller already serialized, each with its own numeric offset token.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.1.0",
        note = "use let (rows, positions) = raw.into_append(); Channel::append(rows, positions)"
    )]
    pub fn append_raw_rows(&self, rows: RawRows) -> impl Future<Output = Result<()>> + Send + '_ {
        let (rows, positions) = rows.into_append();
        self.append(rows, positions)
    }

    /// Appends `(row, token)` pairs, each row with its own offset token.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::append(Rows::serde(rows), Positions::per_row(tokens))`"
    )]
    pub fn append_rows_with_tokens<'a, I, T>(
        &'a self,
        rows: I,
    ) -> impl Future<Output = Result<()>> + Send + 'a
    where
        I: IntoIterator<Item = (T, OffsetToken)> + Send + 'a,
        T: Serialize + Send + 'a,
    {
        async move {
            let (rows, positions) = pairs(rows);
            self.append(rows, positions).await
        }
    }

    /// Like [`append_row`](Self::append_row) but never waits.
    ///
    /// # Errors
    /// As [`try_append`](Self::try_append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::try_append(Rows::serde([row]), token.into())`"
    )]
    pub fn try_append_row<T: Serialize + ?Sized>(
        &self,
        row: &T,
        offset_token: Option<OffsetToken>,
    ) -> Result<()> {
        self.try_append(one(row), offset_token.into())
    }

    /// Like [`append_rows`](Self::append_rows) but never waits.
    ///
    /// # Errors
    /// As [`try_append`](Self::try_append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::try_append(Rows::serde(rows), Positions::span(start..=end))`"
    )]
    pub fn try_append_rows<I>(
        &self,
        rows: I,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let positions = Positions::from_span(start_offset_token, end_offset_token);
        self.try_append(Rows::serde(rows), positions)
    }

    /// Like [`append_raw`](Self::append_raw) but never waits.
    ///
    /// # Errors
    /// As [`try_append`](Self::try_append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::try_append(Rows::ndjson(bytes), Positions::span(start..=end))`"
    )]
    pub fn try_append_raw(
        &self,
        ndjson: Bytes,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> Result<()> {
        let positions = Positions::from_span(start_offset_token, end_offset_token);
        self.try_append(Rows::ndjson(ndjson), positions)
    }

    /// Like [`append_raw_rows`](Self::append_raw_rows) but never waits.
    ///
    /// # Errors
    /// As [`try_append`](Self::try_append).
    #[deprecated(
        since = "0.1.0",
        note = "use let (rows, positions) = raw.into_append(); Channel::try_append(rows, positions)"
    )]
    pub fn try_append_raw_rows(&self, rows: RawRows) -> Result<()> {
        let (rows, positions) = rows.into_append();
        self.try_append(rows, positions)
    }

    /// Like [`append_rows_with_tokens`](Self::append_rows_with_tokens) but never waits.
    ///
    /// # Errors
    /// As [`try_append`](Self::try_append).
    #[deprecated(
        since = "0.1.0",
        note = "use `Channel::try_append(Rows::serde(rows), Positions::per_row(tokens))`"
    )]
    pub fn try_append_rows_with_tokens<I, T>(&self, rows: I) -> Result<()>
    where
        I: IntoIterator<Item = (T, OffsetToken)>,
        T: Serialize,
    {
        let (rows, positions) = pairs(rows);
        self.try_append(rows, positions)
    }
}

#[allow(clippy::manual_async_fn)]
impl Channel {
    /// Appends the rows of an Arrow record batch with optional start and end offset tokens.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[cfg(feature = "arrow")]
    #[deprecated(
        since = "0.1.0",
        note = "use Channel::append(Rows::arrow(batch.clone()), Positions::span(start..=end))"
    )]
    pub fn append_record_batch<'a>(
        &'a self,
        batch: &'a RecordBatch,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + 'a {
        self.append(
            Rows::arrow(batch.clone()),
            Positions::from_span(start_offset_token, end_offset_token),
        )
    }

    /// Appends the rows of an Arrow record batch each with its own numeric offset token.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[cfg(feature = "arrow")]
    #[deprecated(
        since = "0.1.0",
        note = "use Channel::append(Rows::arrow(batch.clone()), Positions::numbered(tokens)?)"
    )]
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
            let positions = Positions::numbered(tokens)?;
            self.append(Rows::arrow(batch.clone()), positions).await
        }
    }
}
