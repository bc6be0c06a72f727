//! [`Channel`]: the application's handle to one open channel.

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::cmd::Cmd;
use super::context::RuntimeInner;
use super::shared::{self, ChannelShared, Lifecycle, WaiterGuard};
use super::tokens::Tokens;
#[cfg(doc)]
use super::OpenChannelOptions;
use super::{ChannelStatus, CloseOptions, RowErrorEvent};
use crate::pipeline::budget;
use crate::sync::lock;
use crate::{Error, OffsetToken, Result};

/// A handle to one open channel: append rows, flush, track commits, close.
///
/// `Send + Sync`; methods take `&self`, so one handle can be shared (e.g. in an `Arc`) by
/// tasks appending concurrently — rows of concurrent calls interleave in the order the calls
/// are admitted. Not `Clone`: [`close`](Self::close) consumes the handle. See the
/// [module docs](crate::channel) for batching, memory, commit tracking, recovery and what dropping the
/// handle without `close()` does.
#[must_use = "rows are buffered until the channel is flushed or closed"]
pub struct Channel {
    pub(super) shared: Arc<ChannelShared>,
    pub(super) tx: mpsc::Sender<Cmd>,
    pub(super) rt: Arc<RuntimeInner>,
    /// The last offset token admitted through this handle (reset by `reopen`), to refuse
    /// tokens that go backwards or repeat. Checked and written under its lock in the same
    /// step that sends the append to the actor (`admission::Channel::send_in_order`).
    pub(super) last_token: std::sync::Mutex<Option<OffsetToken>>,
    /// Bytes serialized on the caller's task since it last yielded (see `admission::YIELD_EVERY`).
    pub(super) unyielded: AtomicUsize,
    /// See [`OpenChannelOptions::at_least_once_splits`].
    pub(super) at_least_once_splits: bool,
    /// Budget held by this handle's last append, reserved before the next one is serialized.
    pub(super) typical_append: AtomicUsize,
    /// The pipe's `BINARY_INPUT_FORMAT` as this handle writes [`crate::binary::Binary`]
    /// (learned at open, again at [`reopen`](Self::reopen)).
    pub(super) binary: std::sync::RwLock<crate::binary::PipeBinary>,
}

impl std::fmt::Debug for Channel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Channel")
            .field("channel", &self.shared.path.channel)
            .field("pipe", &self.shared.path.pipe.pipe)
            .finish_non_exhaustive()
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        self.shared.controls.handle_dropped.cancel();
    }
}

impl Channel {
    /// The channel's name.
    pub fn name(&self) -> &str {
        &self.shared.path.channel
    }

    /// The pipe's name.
    pub fn pipe_name(&self) -> &str {
        &self.shared.path.pipe.pipe
    }

    /// The last offset token the server reported committed (`None` for a channel that never
    /// committed a token). Cheap and non-blocking: it reads what the commit poller last saw.
    pub fn latest_committed_offset_token(&self) -> Option<OffsetToken> {
        self.shared.polled.committed.borrow().clone()
    }

    /// A `watch` of the committed offset token, updated after every poll that sees it change
    /// (for push-style consumers, e.g. acknowledging a source).
    pub fn watch_committed(&self) -> watch::Receiver<Option<OffsetToken>> {
        self.shared.polled.committed.subscribe()
    }

    /// A receiver of row-error events (rows the server rejected, with the offset bound).
    /// Only events published after this call are received: subscribe right after opening.
    ///
    /// Bounded at 64 events with no replay: a receiver that falls behind gets
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged) with the number
    /// of events it missed, and the missed events are gone. Nothing is lost from the totals:
    /// [`status`](Self::status) holds the server's cumulative `rows_error_count` and its last
    /// error (message, offset bound), and every event is also logged (`warn`) and counted
    /// (`snowpipe_row_errors_total`). Closing a channel polls its status once more when
    /// anything was sent since the last poll, so errors in its last batches are still
    /// published before the channel stops (receivers then get the remaining events, then
    /// `Closed`).
    pub fn events(&self) -> broadcast::Receiver<RowErrorEvent> {
        use super::shared::Events;
        let mut events = lock(&self.shared.polled.events);
        match &*events {
            Events::Open(tx) => tx.subscribe(),
            // The channel stopped: a receiver that is closed from the start.
            Events::Ended => broadcast::channel(1).1,
            Events::Unsubscribed => {
                let tx = broadcast::Sender::new(64);
                let rx = tx.subscribe();
                *events = Events::Open(tx);
                rx
            }
        }
    }

    /// A snapshot of the channel: server-reported status and client-side buffers.
    pub fn status(&self) -> ChannelStatus {
        self.shared.snapshot()
    }

    /// Appends one row with an optional offset token (used as both start and end token).
    ///
    /// The row is serialized when this method is called, on the caller's task. The returned
    /// future resolves when the row is admitted to the client's buffer (waiting for room in
    /// the memory budget), not when it is delivered: use [`flush`](Self::flush),
    /// [`wait_for_commit`](Self::wait_for_commit) or [`watch_committed`](Self::watch_committed)
    /// for that.
    ///
    /// # Errors
    /// [`Error::Serialization`] when the row cannot be serialized to a JSON object,
    /// [`Error::RowTooLarge`] when it is larger than one request may carry,
    /// [`Error::InvalidArgument`] for an empty or over-long token, or a token that does not
    /// follow the last one appended through this handle (numerically lower, or the same
    /// token again; see [`OffsetToken`] for how tokens compare),
    /// [`Error::ChannelInvalidated`] when the channel has failed, [`Error::Shutdown`] when it
    /// is closed.
    ///
    /// # Cancellation
    /// Dropping the future before it resolves means the row was not taken.
    pub fn append_row<T: Serialize + ?Sized>(
        &self,
        row: &T,
        offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let prepared = self.prepare_rows(
            std::iter::once(row),
            Tokens::Span {
                start: offset_token.clone(),
                end: offset_token,
            },
        );
        async move { self.admit(prepared?, budget::BudgetBytes::none()).await }
    }

    /// Appends rows, in order, with optional start and end offset tokens (the tokens of the
    /// first and last row; the committed token becomes `end_offset_token` once they are all
    /// committed).
    ///
    /// Rows are serialized when the future runs, once the memory budget has room for an append
    /// the size of this channel's previous one: appends waiting for room hold their rows
    /// unserialized, so the budget bounds the serialized rows however many producers wait. The
    /// future resolves when the rows are admitted to the client's buffer (the backpressure
    /// point), not when they are delivered.
    /// An append that fits in one request is never split across requests. An append larger
    /// than one request is split at row boundaries only when every request can carry the exact
    /// tokens of its rows: when the tokens are dense numbers (`end = start + rows - 1`, one per
    /// row) — or use [`append_rows_with_tokens`](Self::append_rows_with_tokens). Otherwise it is
    /// refused, unless the channel was opened with
    /// [`OpenChannelOptions::at_least_once_splits`]. An append of no rows does nothing (its
    /// tokens are ignored).
    ///
    /// # Errors
    /// As [`append_row`](Self::append_row); `row_index` in the error names the failing row.
    /// [`Error::InvalidArgument`] when numeric tokens `start < end` name fewer rows than the
    /// append has (`end - start + 1 < rows`: the committed token could not say which rows
    /// landed), or when the append is larger than one request and cannot be split exactly (see
    /// above). Nothing is buffered when a check fails.
    ///
    /// # Cancellation
    /// Dropping the future before it resolves means the rows were not taken, except for an
    /// append larger than half the memory budget (or split into more than 32 requests), which
    /// is admitted piece by piece: dropping it midway leaves a leading part of the pieces
    /// buffered, each with its own exact tokens.
    // Not `async fn`: the signature states that the future is `Send`.
    #[allow(clippy::manual_async_fn)]
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
        async move {
            let reserved = self.reserve().await?;
            let tokens = Tokens::Span {
                start: start_offset_token,
                end: end_offset_token,
            };
            let prepared = self.prepare_rows(rows, tokens)?;
            self.admit(prepared, reserved).await
        }
    }

    /// Appends already-encoded NDJSON (one JSON object per line; a missing final newline is
    /// added). Lines are checked for size and emptiness, not parsed: invalid JSON is rejected
    /// by the server and reported as row errors ([`events`](Self::events)).
    ///
    /// # Errors
    /// [`Error::Serialization`] for an empty line, [`Error::RowTooLarge`] for a line larger
    /// than one request may carry, otherwise as [`append_rows`](Self::append_rows).
    ///
    /// # Cancellation
    /// As [`append_rows`](Self::append_rows).
    pub fn append_raw(
        &self,
        ndjson: Bytes,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let prepared = self.prepare_raw(
            ndjson,
            Tokens::Span {
                start: start_offset_token,
                end: end_offset_token,
            },
        );
        async move { self.admit(prepared?, budget::BudgetBytes::none()).await }
    }

    /// Appends rows the caller already serialized, each with its own numeric offset token
    /// ([`RawRows`](super::RawRows)): the cheapest way in for a source that holds JSON text
    /// (no parse, no copy of the rows, no token string per row). Batched and split like
    /// [`append_rows_with_tokens`](Self::append_rows_with_tokens): every request carries the
    /// tokens of its own first and last row, so an append of any size stays exactly-once.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when a row written with
    /// [`RawRows::push_with`](super::RawRows::push_with) holds a line break, or the first
    /// token does not follow the last token appended through this handle;
    /// [`Error::RowTooLarge`] for a row larger than one request may carry; otherwise as
    /// [`append_rows`](Self::append_rows). Nothing is buffered when a check fails.
    ///
    /// # Cancellation
    /// As [`append_rows`](Self::append_rows).
    pub fn append_raw_rows(
        &self,
        rows: super::RawRows,
    ) -> impl Future<Output = Result<()>> + Send + '_ {
        let prepared = self.prepare_raw_rows(rows);
        async move { self.admit(prepared?, budget::BudgetBytes::none()).await }
    }

    /// Like [`append_raw_rows`](Self::append_raw_rows) but never waits (all rows or none).
    ///
    /// # Errors
    /// [`Error::Backpressure`] when there is no room now, [`Error::InvalidArgument`] when the
    /// rows need more than the whole memory budget, otherwise as
    /// [`append_raw_rows`](Self::append_raw_rows).
    pub fn try_append_raw_rows(&self, rows: super::RawRows) -> Result<()> {
        let p = self.prepare_raw_rows(rows)?;
        self.try_admit(p)
    }

    /// Appends rows that each carry their own offset token, in order: `(row, token)` pairs
    /// whose tokens strictly increase (numerically where both are numbers, see
    /// [`OffsetToken`]; never the same token twice in a row). The rows are batched like
    /// [`append_rows`](Self::append_rows), and every request carries the tokens of its own first
    /// and last row, so an append of any size — with sparse tokens such as database keys or
    /// stream sequence numbers — is split exactly and stays exactly-once across restarts.
    ///
    /// The tokens are kept only until the rows are encoded (the request boundaries are known
    /// then); memory for them is not charged to the budget.
    ///
    /// # Errors
    /// As [`append_rows`](Self::append_rows); [`Error::InvalidArgument`] when a token is empty
    /// or too long, repeats or goes back (naming the row), or does not follow the last token
    /// appended through this handle.
    ///
    /// # Cancellation
    /// As [`append_rows`](Self::append_rows).
    // Not `async fn`: the signature states that the future is `Send`.
    #[allow(clippy::manual_async_fn)]
    pub fn append_rows_with_tokens<'a, I, T>(
        &'a self,
        rows: I,
    ) -> impl Future<Output = Result<()>> + Send + 'a
    where
        I: IntoIterator<Item = (T, OffsetToken)> + Send + 'a,
        T: Serialize,
    {
        async move {
            let reserved = self.reserve().await?;
            let prepared = self.prepare_tokened(rows)?;
            self.admit(prepared, reserved).await
        }
    }

    /// Like [`append_rows_with_tokens`](Self::append_rows_with_tokens) but never waits (all
    /// rows or none).
    ///
    /// # Errors
    /// [`Error::Backpressure`] when there is no room now, [`Error::InvalidArgument`] when the
    /// rows need more than the whole memory budget, otherwise as
    /// [`append_rows_with_tokens`](Self::append_rows_with_tokens).
    pub fn try_append_rows_with_tokens<I, T>(&self, rows: I) -> Result<()>
    where
        I: IntoIterator<Item = (T, OffsetToken)>,
        T: Serialize,
    {
        let p = self.prepare_tokened(rows)?;
        self.try_admit(p)
    }

    /// Like [`append_row`](Self::append_row) but never waits: when the memory budget or the
    /// channel's command queue is full it returns [`Error::Backpressure`] and takes nothing.
    ///
    /// # Errors
    /// [`Error::Backpressure`] when there is no room now, [`Error::InvalidArgument`] when the
    /// rows need more than the whole memory budget, otherwise as [`append_row`](Self::append_row).
    pub fn try_append_row<T: Serialize + ?Sized>(
        &self,
        row: &T,
        offset_token: Option<OffsetToken>,
    ) -> Result<()> {
        let p = self.prepare_rows(
            std::iter::once(row),
            Tokens::Span {
                start: offset_token.clone(),
                end: offset_token,
            },
        )?;
        self.try_admit(p)
    }

    /// Like [`append_rows`](Self::append_rows) but never waits (all rows or none).
    ///
    /// # Errors
    /// [`Error::Backpressure`] when there is no room now, [`Error::InvalidArgument`] when the
    /// rows need more than the whole memory budget, otherwise as [`append_rows`](Self::append_rows).
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
        let p = self.prepare_rows(
            rows,
            Tokens::Span {
                start: start_offset_token,
                end: end_offset_token,
            },
        )?;
        self.try_admit(p)
    }

    /// Like [`append_raw`](Self::append_raw) but never waits (all rows or none).
    ///
    /// # Errors
    /// [`Error::Backpressure`] when there is no room now, [`Error::InvalidArgument`] when the
    /// rows need more than the whole memory budget, otherwise as [`append_raw`](Self::append_raw).
    pub fn try_append_raw(
        &self,
        ndjson: Bytes,
        start_offset_token: Option<OffsetToken>,
        end_offset_token: Option<OffsetToken>,
    ) -> Result<()> {
        let p = self.prepare_raw(
            ndjson,
            Tokens::Span {
                start: start_offset_token,
                end: end_offset_token,
            },
        )?;
        self.try_admit(p)
    }

    /// Sends every row appended before this call (snapshot semantics: rows appended while it
    /// waits are not covered) and resolves when the server has acknowledged them (HTTP 200;
    /// not yet committed — see [`wait_for_commit`](Self::wait_for_commit)).
    ///
    /// # Errors
    /// [`Error::ChannelInvalidated`] when the channel failed (or was reopened) before the rows
    /// were sent, [`Error::Shutdown`] when it is closed.
    ///
    /// # Cancellation
    /// Dropping the future only stops waiting; the rows are still sent.
    pub async fn flush(&self) -> Result<()> {
        self.flush_token().await.map(|_| ())
    }

    async fn flush_token(&self) -> Result<Option<OffsetToken>> {
        self.shared.check_open()?;
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Flush(tx))
            .await
            .map_err(|_| self.closed_error())?;
        rx.await.map_err(|_| self.closed_error())?
    }

    /// Waits until the server reports `token` committed: the committed token equals it, or
    /// both are numeric and the committed one is greater or equal (see [`OffsetToken`]).
    /// Returns as soon as the commit poll that sees it completes; while it waits the poller
    /// polls at the fast cadence.
    ///
    /// Non-numeric tokens are only compared for equality: if a later token is committed
    /// in the same poll, an earlier non-numeric token is never seen and this waits until the
    /// timeout. Use numeric tokens (or wait for the last token appended).
    ///
    /// # Errors
    /// [`Error::Timeout`] after `timeout`, or at once while the channel's status polls have
    /// been failing for 30 s (see the [module docs](crate::channel)); [`Error::ChannelInvalidated`] when
    /// the channel fails meanwhile, [`Error::Shutdown`] when it is closed.
    ///
    /// # Cancellation
    /// Dropping the future only stops waiting.
    pub async fn wait_for_commit(&self, token: &OffsetToken, timeout: Duration) -> Result<()> {
        let _guard = WaiterGuard::new(&self.shared);
        self.rt.poller.wake();
        let mut committed = self.shared.polled.committed.subscribe();
        let mut lifecycle = self.shared.actor.lifecycle.subscribe();
        let mut stalled = self.shared.polled.stalled.subscribe();
        let wait = async {
            tokio::select! {
                biased;
                r = committed.wait_for(|c| c.as_ref().is_some_and(|c| c.reaches(token))) => {
                    r.map(|_| ()).map_err(|_| self.closed_error())
                }
                _ = lifecycle.wait_for(|l| !l.is_open()) => Err(self.closed_error()),
                _ = stalled.wait_for(|s| *s) => Err(Error::Timeout {
                    operation: "offset token commit: the server's channel status could not be \
                                read for 30 s (status polls failing or omitting the channel), so \
                                commits cannot be seen",
                    waited: shared::STALL_AFTER,
                }),
            }
        };
        tokio::time::timeout(timeout, wait)
            .await
            .map_err(|_| Error::Timeout {
                operation: "offset token commit",
                waited: timeout,
            })?
    }

    /// After the channel failed ([`Error::ChannelInvalidated`]): reopens it on the server,
    /// discards every row it still buffered or kept (releasing their memory budget) and
    /// returns the committed offset token: replay your source from just after it. On a healthy
    /// channel it does the same (rows not yet committed are discarded).
    ///
    /// After [`Error::OwnershipLost`], reopen only when you know the other writer is gone
    /// (its process stopped, or it handed the channel back): the reopen fences whoever holds
    /// the channel now, and two writers that each resume from their own position duplicate
    /// rows. A writer that lost a Kafka partition or a shard should not reopen; its new
    /// owner has the channel.
    ///
    /// # Errors
    /// Errors of the open request ([`Error::Server`], [`Error::Auth`], [`Error::Transport`]);
    /// the channel stays failed. [`Error::Shutdown`] when it is closed.
    ///
    /// # Cancellation
    /// Dropping the future does not stop the reopen once the channel's task received it.
    pub async fn reopen(&self) -> Result<Option<OffsetToken>> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Cmd::Reopen(tx))
            .await
            .map_err(|_| Error::shutdown(format!("channel {}", self.name())))?;
        let committed = rx
            .await
            .map_err(|_| Error::shutdown(format!("channel {}", self.name())))??;
        // Replay starts after the committed token: only tokens up to it are "already used".
        *lock(&self.last_token) = committed.clone();
        // The pipe may have been altered since the open.
        let binary = self
            .rt
            .client
            .pipe_params
            .refresh(self.rt.client.api.as_ref(), &self.shared.path.pipe)
            .await;
        *self
            .binary
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = binary;
        Ok(committed)
    }

    /// The `BINARY_INPUT_FORMAT` of the channel's pipe, which [`crate::binary::Binary`]
    /// values are written in: named on the client builder, else learned from the service
    /// when the channel was opened (or last reopened). `None` when it could not be learned
    /// (the pipe-info call failed): a row holding a `Binary` is then refused.
    pub fn binary_format(&self) -> Option<crate::binary::BinaryFormat> {
        match &*self
            .binary
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
        {
            crate::binary::PipeBinary::Known(f) => Some(*f),
            crate::binary::PipeBinary::Unknown(_) => None,
        }
    }

    /// Closes the channel: flushes every buffered row, waits for the in-flight append, and
    /// stops the channel's task. Same as [`close_with`](Self::close_with) with
    /// [`CloseOptions::default`] (no commit wait, 60 s timeout).
    ///
    /// # Errors
    /// As [`close_with`](Self::close_with).
    ///
    /// # Cancellation
    /// As [`close_with`](Self::close_with).
    pub async fn close(self) -> Result<()> {
        self.close_with(CloseOptions::default()).await
    }

    /// Closes the channel: flushes, waits for the in-flight append, optionally waits until the
    /// last appended offset token is committed, and stops the channel's task, all within
    /// `options.timeout`. The channel's memory budget is released and it is no longer polled.
    ///
    /// # Errors
    /// [`Error::ChannelInvalidated`] when the channel failed (rows may not have been
    /// delivered: replay after the error's committed token), [`Error::OwnershipLost`] when
    /// another writer has the channel, [`Error::Timeout`] when the timeout ran out (the
    /// channel's task is stopped at once and rows not yet sent are dropped; replay after the
    /// committed token). Whatever the outcome, the channel's task has stopped when this
    /// returns, so its name can be opened again at once.
    ///
    /// # Cancellation
    /// Dropping the future drops the handle: the channel then behaves as if dropped without
    /// `close()` (see the [module docs](crate::channel)).
    pub async fn close_with(self, options: CloseOptions) -> Result<()> {
        let close = async {
            let delivered = async {
                let last = self.flush_token().await?;
                if options.wait_for_commit {
                    if let Some(token) = last {
                        self.wait_for_commit(&token, options.timeout).await?;
                    }
                }
                Ok(())
            }
            .await;
            // Stop the channel's task whatever happened (a failed channel, a commit that did
            // not come), so the name is free for a new open when this returns.
            let (tx, rx) = oneshot::channel();
            let stopped = match self.tx.send(Cmd::Close(tx)).await {
                Ok(()) => rx.await.unwrap_or_else(|_| Err(self.closed_error())),
                Err(_) => Err(self.closed_error()),
            };
            delivered.and(stopped)
        };
        match tokio::time::timeout(options.timeout, close).await {
            Ok(r) => r,
            Err(_) => {
                self.shared.controls.abort.cancel();
                // The actor stops at once (also mid-recovery); wait briefly so the channel's
                // name is free for a new open when this returns.
                let mut lifecycle = self.shared.actor.lifecycle.subscribe();
                let stopped = lifecycle.wait_for(Lifecycle::is_stopped);
                let _ = tokio::time::timeout(Duration::from_secs(1), stopped).await;
                Err(Error::Timeout {
                    operation: "channel close",
                    waited: options.timeout,
                })
            }
        }
    }

    /// Hands the channel over to its next owner (another process, or a later open in this
    /// one): stops taking appends, flushes every buffered row, waits up to `timeout` for the
    /// last appended offset token to be committed, closes the channel and returns the
    /// committed offset token the next owner resumes after. Call it when you lose the source
    /// position the channel stands for: a Kafka partition revoked in a rebalance, a shard
    /// moved, a rolling deploy's old instance stopping. The next owner opens the channel and
    /// resumes after [`latest_committed_offset_token`](Self::latest_committed_offset_token);
    /// its open discards anything of this handle's that was still uncommitted, so the
    /// hand-over is exact even when it fails or times out.
    ///
    /// ```no_run
    /// # async fn f(client: snowpipe_streaming::StreamingIngestClient, channel: snowpipe_streaming::Channel)
    /// # -> Result<(), snowpipe_streaming::Error> {
    /// use std::time::Duration;
    /// // The old owner, on "you lose partition 3":
    /// let committed = channel.hand_over(Duration::from_secs(30)).await?;
    /// // The new owner, on "you get partition 3":
    /// let channel = client.pipe("DB", "SCHEMA", "PIPE").open_channel("events_3").await?;
    /// let resume_after = channel.latest_committed_offset_token();
    /// # let _ = (committed, resume_after); Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::Timeout`] when the rows were not committed within `timeout` (the channel is
    /// closed anyway; rows not committed are left to the next owner to replay);
    /// [`Error::OwnershipLost`] when another writer already has the channel (nothing to hand
    /// over: it resumes from the server's committed token); [`Error::ChannelInvalidated`]
    /// when the channel failed.
    ///
    /// # Cancellation
    /// As [`close_with`](Self::close_with): dropping the future drops the handle.
    pub async fn hand_over(self, timeout: Duration) -> Result<Option<OffsetToken>> {
        let shared = Arc::clone(&self.shared);
        self.close_with(
            CloseOptions::default()
                .wait_for_commit(true)
                .timeout(timeout),
        )
        .await?;
        let committed = shared.polled.committed.borrow().clone();
        Ok(committed)
    }

    /// Closes the channel waiting for its rows to be committed (as
    /// `close_with(CloseOptions::default().wait_for_commit(true))`), then drops it on the
    /// server (its committed offset token is deleted). Returns the last committed token the
    /// server reported, if it reported one.
    ///
    /// # Errors
    /// As [`close_with`](Self::close_with), then errors of the drop request.
    ///
    /// # Cancellation
    /// Dropping the future may leave the channel closed but not dropped.
    pub async fn drop_channel(self) -> Result<Option<OffsetToken>> {
        let rt = Arc::clone(&self.rt);
        let path = Arc::clone(&self.shared.path);
        self.close_with(CloseOptions::default().wait_for_commit(true))
            .await?;
        let token = rt.client.api.drop_channel(&path).await?;
        Ok(token.map(OffsetToken::from_wire))
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Channel>();
    is::<ChannelStatus>();
}
