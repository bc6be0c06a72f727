//! [`Channel`]: the application's handle to one open channel, with every public method but
//! the deprecated shims (`deprecated.rs`).

use std::future::Future;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};

use super::cmd::Cmd;
use super::context::RuntimeInner;
use super::input::Positions;
use super::shared::{self, ChannelShared, Lifecycle, WaiterGuard};
#[cfg(doc)]
use super::OpenChannelOptions;
use super::{ChannelStatus, CloseOptions, RowErrorEvent};
use crate::pipeline::budget;
use crate::rows::{Rows, RowsKind};
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

    /// The rows the server rejects from now on, as reports whose counts never drop: a
    /// receiver that falls behind gets one report of every row it missed (from the channel's
    /// status) instead of an error, and one whose channel stopped gets the rest, then `None`.
    /// The way out to use; [`events`](Self::events) is the raw broadcast under it.
    pub fn row_errors(&self) -> super::RowErrors {
        // The status first: every report after it is received or counted by a catch-up.
        let through = self.shared.snapshot().rows_error_count;
        super::RowErrors::new(Arc::clone(&self.shared), through, self.events())
    }

    /// A receiver of row-error events (rows the server rejected, with the offset bound).
    /// Only events published after this call are received: subscribe right after opening.
    /// [`row_errors`](Self::row_errors) folds a receiver's lag in; this is the raw broadcast.
    ///
    /// Bounded at 64 events with no replay: a receiver that falls behind gets
    /// [`RecvError::Lagged`](tokio::sync::broadcast::error::RecvError::Lagged) with the number
    /// of events it missed, and the missed events are gone. Nothing is lost from the totals:
    /// [`status`](Self::status) holds the server's cumulative `rows_error_count` and its last
    /// error (message, offset bound), and every event is also logged (`warn`) and counted
    /// (`snowpipe_row_errors_total`). Closing a channel polls its status once more when
    /// anything was sent since the last poll, so errors in its last batches are still
    /// published before the channel stops (receivers then get the remaining events, then
    /// `Closed`). [`RowErrorSummary`](crate::RowErrorSummary) sums the events exactly, missed
    /// ones included (its [`since`](crate::RowErrorSummary::since) takes the status read
    /// before this call as the baseline).
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
/// The way in: rows ([`Rows`]) at their positions ([`Positions`]), each form encoded and sent
/// through the one admission path (`admission.rs`).
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
}

fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Channel>();
    is::<ChannelStatus>();
}
