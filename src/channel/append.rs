//! The way in: [`Channel::append`] and [`Channel::try_append`], rows ([`Rows`]) at their
//! positions ([`Positions`]). Each form of rows is encoded here and goes through the one
//! admission path (`admission`).

use std::future::Future;

use serde::Serialize;

use super::admission::Prepared;
use super::handle::Channel;
use super::input::Positions;
use crate::pipeline::budget;
use crate::rows::{Rows, RowsKind};
use crate::Result;

impl Channel {
    /// Appends `rows` at `positions`, in order, and resolves when they are admitted to the
    /// client's buffer (waiting for room in the memory budget: the backpressure point), not
    /// when they are delivered: use [`flush`](Self::flush),
    /// [`wait_for_commit`](Self::wait_for_commit) or
    /// [`watch_committed`](Self::watch_committed) for that.
    ///
    /// Serde rows and record batches are encoded when the future runs, once the budget has
    /// room for an append the size of this channel's previous one, so appends waiting for room
    /// hold their rows unencoded. An append that fits in one request is never split across
    /// requests. A larger one is split at row boundaries only where every request can carry
    /// the exact positions of its rows: per-row or numbered positions, or a span naming one
    /// token per row (numbers with one prefix, `end − start + 1 == rows`; see
    /// [`Positions`]). Otherwise it is refused, unless the channel was opened with
    /// [`OpenChannelOptions::at_least_once_splits`](super::OpenChannelOptions::at_least_once_splits).
    /// An append of no rows does nothing (its positions are ignored).
    ///
    /// ```no_run
    /// # async fn f(channel: snowpipe_streaming::Channel) -> Result<(), snowpipe_streaming::Error> {
    /// use snowpipe_streaming::channel::{Positions, Rows};
    /// use snowpipe_streaming::OffsetToken;
    /// let rows: Vec<serde_json::Value> = (1..=500).map(|id| serde_json::json!({ "id": id })).collect();
    /// let span = OffsetToken::new("order_1")?..=OffsetToken::new("order_500")?;
    /// channel.append(Rows::serde(&rows), span.into()).await?;
    /// channel.append(Rows::ndjson("{\"id\":501}\n"), Positions::numbered([501])?).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// Nothing is buffered when a check fails.
    /// - [`Error::Serialization`](crate::Error::Serialization) for a serde row that is not a
    ///   JSON object, an empty NDJSON line, a record batch value Snowflake cannot store
    ///   (naming the column and row); `row_index` names the failing row.
    /// - [`Error::RowTooLarge`](crate::Error::RowTooLarge) for a row larger than one request
    ///   may carry.
    /// - [`Error::InvalidArgument`](crate::Error::InvalidArgument) for positions that are
    ///   wrong: an empty or over-long token; positions that do not follow the last ones
    ///   appended through this handle (lower, or the same token again; see [`OffsetToken`](crate::OffsetToken)
    ///   for how tokens compare); per-row tokens that repeat or go back, or are not one per
    ///   row; a numeric span naming fewer rows than the append has; an append larger than
    ///   one request whose positions cannot be divided exactly (see above); a record batch
    ///   column of a type that is not written.
    /// - [`Error::ChannelInvalidated`](crate::Error::ChannelInvalidated) when the channel has
    ///   failed, [`Error::Shutdown`](crate::Error::Shutdown) when it is closed.
    ///
    /// # Cancellation
    /// Dropping the future before it resolves means the rows were not taken, except for an
    /// append larger than half the memory budget (or split into more than 32 requests), which
    /// is admitted piece by piece: dropping it midway leaves a leading part of the pieces
    /// buffered, each with its own exact positions.
    // Not `async fn`: the signature states that the future is `Send`.
    #[allow(clippy::manual_async_fn)]
    pub fn append<'a, I>(
        &'a self,
        rows: Rows<I>,
        positions: Positions,
    ) -> impl Future<Output = Result<()>> + Send + 'a
    where
        I: IntoIterator + Send + 'a,
        I::Item: Serialize,
    {
        async move {
            let reserved = match &rows.kind {
                RowsKind::Ndjson(_) => budget::BudgetBytes::none(),
                #[cfg(feature = "arrow")]
                RowsKind::Arrow(b) if b.num_rows() == 0 => return Ok(()),
                _ => self.reserve().await?,
            };
            let prepared = self.prepare_input(rows, positions)?;
            self.admit(prepared, reserved).await
        }
    }

    /// Like [`append`](Self::append) but never waits: all the rows or none. When the memory
    /// budget or the channel's command queue is full it takes nothing and returns
    /// [`Error::Backpressure`](crate::Error::Backpressure): for a caller that must not block
    /// (a poll loop, a synchronous callback) and retries or sheds load itself.
    ///
    /// ```no_run
    /// # fn f(channel: &snowpipe_streaming::Channel) -> Result<(), snowpipe_streaming::Error> {
    /// use snowpipe_streaming::channel::{Positions, Rows};
    /// use snowpipe_streaming::{Error, OffsetToken};
    /// let row = serde_json::json!({ "id": 7 });
    /// match channel.try_append(Rows::serde([&row]), Positions::at(OffsetToken::from(7u64))) {
    ///     Err(Error::Backpressure { .. }) => { /* keep the row, try again later */ }
    ///     other => other?,
    /// }
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Backpressure`](crate::Error::Backpressure) when there is no room now,
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when the rows need more than
    /// the whole memory budget, otherwise as [`append`](Self::append).
    ///
    /// # Cancellation
    /// Not async: the rows are taken whole or not at all when it returns.
    pub fn try_append<I>(&self, rows: Rows<I>, positions: Positions) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let prepared = self.prepare_input(rows, positions)?;
        self.try_admit(prepared)
    }

    /// The size of `row` as the append would send it (its JSON bytes, without the newline,
    /// written with this channel's BINARY format) when this channel can send it; the
    /// append's own rule, applied to one row before any append, so a caller can set aside a
    /// row that would fail (a dead letter) instead of failing the append it is in.
    ///
    /// The rule: a row of at most the request cap (`max_request_bytes`, less compression's
    /// margin) shares requests; a larger row goes alone when it is at most 64 MiB (and half
    /// the memory budget) and compresses into one request (found by compressing it once).
    ///
    /// ```no_run
    /// # fn f(channel: &snowpipe_streaming::Channel) {
    /// use snowpipe_streaming::Error;
    /// let row = serde_json::json!({ "id": 7, "doc": "x".repeat(20 << 20) });
    /// match channel.check_row(&row) {
    ///     Ok(bytes) => println!("{bytes} bytes: it can be appended"),
    ///     Err(Error::RowTooLarge { size, max, .. }) => println!("{size} > {max}: set it aside"),
    ///     Err(e) => println!("not a row: {e}"),
    /// }
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::RowTooLarge`](crate::Error::RowTooLarge) (its `row_index` `None`) for a row
    /// an append would refuse for its size, [`Error::Serialization`](crate::Error::Serialization)
    /// for one that is not a JSON object. Nothing is sent either way.
    pub fn check_row<T: Serialize + ?Sized>(&self, row: &T) -> Result<usize> {
        let binary = self
            .binary
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        let limit = self.rt.client.settings.row_cap();
        crate::binary::with_pipe_format(&binary, || {
            crate::pipeline::encode::measure_row(row, &limit)
        })
    }

    /// Encodes `rows` in their form and divides `positions` among the pieces.
    fn prepare_input<I>(&self, rows: Rows<I>, positions: Positions) -> Result<Prepared>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let binary = self
            .binary
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone();
        self.prepare(positions.0, |limit| {
            rows.encode(&binary, limit, &self.shared.buffers, &self.shared.row_size)
        })
    }
}
