//! Channels: buffered, ordered appends to one Snowpipe Streaming channel.
//!
//! ```text
//!  user task                 Channel handle                 per-channel actor task            IngestApi
//!  ─────────                 ──────────────                 ──────────────────────            ─────────
//!  append_rows(rows, tok) ─▶ serialize NDJSON (caller's task) ─▶ acquire byte permits
//!                            (client-wide budget) ─▶ mpsc Cmd::Append ─────▶ Batcher.push
//!  flush()  ───────────────▶ Cmd::Flush(oneshot) ─────────────────────────▶ cut batch now
//!  close(self) ────────────▶ flush, [wait commit], Cmd::Close ────────────▶ drain, then exit
//!                                                        select! {
//!                                                          cmd = rx.recv()          → push / flush / close
//!                                                          lag deadline (first row of batch + max_client_lag)
//!                                                          in-flight append done    → chain continuation token,
//!                                                                                     retain batch, resolve flushes
//!                                                          committed token changed  → release retained batches
//!                                                          recover request          → reopen + replay
//!                                                        }                          ──append(batch, ctok)──▶
//!  latest_committed_offset_token / wait_for_commit / watch_committed / events
//!      ◀── watch + broadcast ◀── commit poller (one task per client, bulk-channel-status per pipe)
//! ```
//!
//! # Batching and flushing
//!
//! Rows are serialized to NDJSON when `append_*` is called, on the caller's task, into row buffers
//! the channel recycles once their batch is compressed, and buffered by the channel's actor. A
//! caller that never has to wait still yields to the scheduler every 256 KB it serializes, so the
//! connection and channel tasks keep running beside a tight append loop. A batch (one append
//! request) is sent when `max_client_lag` has passed since its first row, when it reaches the
//! request size limit (it never exceeds the limit on the wire), on [`Channel::flush`] and on close.
//! A request carries exactly the rows its offset tokens name (see `docs/GUARANTEES.md`): an append
//! that fits in one request is never split (when it does not fit in the room left, the open batch
//! is sent first), rows without an end token never share a request with rows that have one, and an
//! append larger than one request is split only where each piece's tokens are known (per-row
//! tokens, or dense numeric ones), else refused unless the channel allows
//! [`OpenChannelOptions::at_least_once_splits`]. At most one append request per channel is in
//! flight: each carries the continuation token returned by the previous one, and the REST layer
//! spaces a channel's requests at least `1 s / max_requests_per_second` apart (10 a second by
//! default, the service's per-channel limit). Batches of 256 KB or more are compressed on tokio's blocking pool while the
//! previous request is in flight (up to two per channel, within the client-wide limit below, so
//! one busy channel can use two cores), keeping the actor free to send the next body the moment an
//! ack arrives. When four requests' worth of sealed
//! batches are waiting, the actor stops taking appends until they drain: a producer faster than the
//! server stays a few requests ahead of it instead of filling the memory budget. A batch's start
//! token is its first row's, its end token its last row's.
//!
//! # Memory
//!
//! A client-wide budget (default 256 MiB) bounds the bytes buffered (charged at the capacity of the
//! buffers holding them) plus the bytes sent but not yet committed. `append_*` waits for room;
//! `try_append_*` returns [`Error::Backpressure`] instead (or [`Error::InvalidArgument`], not
//! retryable, for an append larger than the whole budget, which could never be taken at once).
//! Batches are kept, compressed, until the server reports their end token committed — that is what
//! makes automatic replay possible — and their bytes count against the budget until then. Batches
//! without an end offset token are released as soon as every batch before them is committed. The
//! rows `append_rows` serializes are inside the budget however many producers wait: it first waits
//! for room for an append the size of the channel's previous one, then serializes (when the rows
//! turn out larger and the rest is not free, it lets its part go and waits for the whole, never
//! holding part of the budget while waiting). Outside the budget are only the single rows
//! (`append_row`) and NDJSON (`append_raw`) callers already hold while they wait, and the
//! misestimate of an append larger than its channel's previous one. An append larger than half
//! the budget is admitted piece by piece, so one larger than the whole budget still completes.
//!
//! A batch counts at its compressed size from the moment its body is ready (its row buffers are
//! freed then), whether or not it has been sent. Idle row buffers kept for reuse (at most two
//! requests' worth a channel and, for the whole client, the smaller of 1/16 of the budget and
//! 32 MiB) are inside the budget too: that much is set aside for them. Outside it are the
//! client's compression contexts and the bodies being compressed, both bounded per client, not per
//! channel: at most `max(cores, 2)` large batches compress at once, client-wide (channels take
//! turns in the order they asked), and the zstd contexts (about 1 MB each at level 1) are pooled by
//! the client, which keeps a few idle — so a thousand busy channels hold a handful of contexts, and
//! an idle channel only its handle, task and queues (a few KB; it frees its idle row buffers after
//! 5 s). The allocator adds its own fragmentation: the README's Performance section has measured
//! figures.

//! One channel whose commits never arrive keeps its sent batches, which can fill the shared
//! budget and make appends on every channel wait; see *Commit tracking* for how such a channel
//! is detected.
//!
//! # Commit tracking
//!
//! One poller per client calls bulk-channel-status for every open channel (one request per
//! pipe, each pipe polled on its own task, so a slow or failing pipe never delays the others;
//! each call is cut off after 10 s and counts as failed), every
//! `commit_poll_interval` (100 ms) while something is uncommitted or someone waits, every
//! `idle_poll_interval` (5 s) otherwise, and never for closed channels. It publishes the
//! committed token ([`Channel::latest_committed_offset_token`], [`Channel::watch_committed`],
//! [`Channel::wait_for_commit`]) and new row errors ([`Channel::events`]). A channel that is
//! closed (or dropped, or shut down with the client) after sending something the poller has
//! not yet seen polls its own status once more before it stops, so the row errors of its last
//! batches are reported too.
//!
//! When the polls of a channel keep failing, or the server's answers omit it, for 30 s, the
//! channel is *stalled*: a warning is logged (`snowpipe_commit_poll_stalls_total` counts it),
//! [`Channel::wait_for_commit`] fails at once with [`Error::Timeout`] naming the cause (until
//! a poll succeeds again), and a channel missing from the answers is recovered like an
//! invalidated one (reopen, replay after the committed token). A stalled channel's kept
//! batches still count against the shared memory budget, so appends on every channel can
//! eventually wait for it: watch for the warning, and close or reopen such a channel.
//!
//! # Automatic recovery
//!
//! When the channel is invalidated — an append answered with
//! `STALE_CONTINUATION_TOKEN_SEQUENCER` or another `ERR_CHANNEL_*` code or HTTP 409, an append
//! whose response was lost (timeout or broken connection: it may or may not have been
//! applied), or an invalid status code from the poller — the actor reopens the channel
//! (the server discards rows it had not committed), reads the committed offset token, drops the
//! kept batches up to the one whose end token it is, and re-sends the rest, in order, before
//! anything new. With strictly increasing offset tokens this is exactly-once delivery without
//! application code. Recovery is bounded, with backoff: at most 5 recoveries from invalidation
//! within 60 s (so two writers fighting over one channel do not loop forever) and 20 from lost
//! responses, and one recovery episode (every reopen attempt, each retried by the REST layer,
//! and the replay) may take at most `recovery_timeout` (default 2 min, set on the client
//! builder): during an outage the channel then fails instead of retrying forever. While it
//! recovers, the channel's task still honours a close timeout (it stops at once and the name
//! can be opened again), client shutdown and the handle being dropped (each with its drain
//! limit).
//!
//! When recovery is impossible (retries exhausted, authentication revoked, the committed token
//! matches no kept batch, too many recoveries), the channel fails: every later call returns
//! [`Error::ChannelInvalidated`] carrying the last committed
//! offset token, and [`Channel::reopen`] reopens it, discards what it buffered and returns the
//! token to replay from. Channels fail independently.
//!
//! Limits of automatic replay, both avoided by the recipe below:
//! * rows appended without an end offset token are not kept once everything before them is
//!   committed, so a recovery cannot replay them if they were still in flight;
//! * an append larger than one request, on a channel opened with
//!   [`OpenChannelOptions::at_least_once_splits`], is split with only its last part carrying
//!   the end token; if the channel is invalidated (or the process dies) after some parts were
//!   committed, the replay re-sends them (at-least-once for that append). Without that option
//!   such an append is refused; appends with per-row or dense numeric tokens are split exactly.
//!
//! # Exactly-once delivery: the recipe
//!
//! 1. Give every row (or every append) an offset token from your source that **strictly
//!    increases** — a sequence number, a Kafka offset, a database change id — ideally numeric
//!    (`OffsetToken::from(u64)`), so the SDK can compare tokens. Sparse tokens (keys with gaps,
//!    stream sequences) go row by row through [`Channel::append_rows_with_tokens`].
//! 2. On start, open the channel and **resume after** its committed token
//!    ([`Channel::latest_committed_offset_token`]): everything up to it is in the table.
//! 3. Append. The SDK keeps what it sent until it is committed and, when the channel is
//!    invalidated, reopens it and replays exactly the uncommitted batches itself.
//! 4. Acknowledge your source only up to the committed token ([`Channel::watch_committed`]
//!    or [`Channel::wait_for_commit`]).
//! 5. If the channel fails anyway ([`Error::ChannelInvalidated`]),
//!    call [`Channel::reopen`] and **replay** your source after the token it returns.
//!
//! ```no_run
//! use std::time::Duration;
//! use snowpipe_streaming::{OffsetToken, StreamingIngestClient};
//!
//! # struct Source;
//! # impl Source {
//! #     fn read_after(&mut self, _after: Option<u64>) -> Vec<(u64, serde_json::Value)> { Vec::new() }
//! #     fn ack_up_to(&mut self, _seq: u64) {}
//! # }
//! async fn pump(
//!     client: &StreamingIngestClient,
//!     source: &mut Source,
//! ) -> Result<(), snowpipe_streaming::Error> {
//!     let channel = client.open_channel("DB", "SCHEMA", "PIPE", "orders-0").await?;
//!     // Resume after what Snowflake already committed.
//!     let mut next_after = channel.latest_committed_offset_token().and_then(|t| t.as_u64());
//!     loop {
//!         let rows = source.read_after(next_after);
//!         if rows.is_empty() {
//!             break;
//!         }
//!         for (seq, row) in rows {
//!             match channel.append_row(&row, Some(OffsetToken::from(seq))).await {
//!                 Ok(()) => next_after = Some(seq),
//!                 Err(e) if e.is_channel_invalidated() => {
//!                     // Automatic recovery was impossible: replay after the committed token.
//!                     next_after = channel.reopen().await?.and_then(|t| t.as_u64());
//!                     break;
//!                 }
//!                 Err(e) => return Err(e),
//!             }
//!         }
//!     }
//!     if let Some(last) = next_after {
//!         channel.wait_for_commit(&OffsetToken::from(last), Duration::from_secs(60)).await?;
//!         source.ack_up_to(last);
//!     }
//!     channel.close().await
//! }
//! ```
//!
//! # Closing the client
//!
//! `client.close()` refuses new appends on every channel, lets each channel send what it had
//! admitted (for at most 30 s), and returns once every channel's task has stopped — so a process
//! may exit right after it without losing acknowledged appends. It reports the first error a
//! channel met (including rows dropped because the 30 s ran out). It does not wait for commits:
//! use [`Channel::close_with`] with [`CloseOptions::wait_for_commit`] for that.
//!
//! # Dropping without `close()`
//!
//! Dropping a [`Channel`] closes its command queue; the actor then sends what is buffered for
//! at most 5 seconds (in the background, nothing blocks the dropping thread, a tokio runtime
//! must still be running) and exits. Rows not sent by then are dropped; nothing waits for the
//! commit. Use [`Channel::close`] for a guaranteed flush.

mod actor;
mod all;
mod batch;
#[doc(hidden)]
pub mod bench;
pub(crate) mod budget;
mod compress;
mod encode;
#[cfg(test)]
mod exactly_once_tests;
mod poller;
mod pool;
mod shared;
mod status;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
mod tokens;

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{broadcast, mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

pub use status::{ChannelStatus, CloseOptions, RowErrorEvent};

use self::actor::{Actor, Cmd};
use self::batch::Chunk;
use self::budget::Budget;
use self::encode::Encoded;
use self::poller::Poller;
use self::shared::{lock, ChannelShared, State};
use self::tokens::{PieceTokens, Tokens};
use crate::api::OpenChannelRequest;
use crate::error::ServerError;
use crate::transport::{ChannelPath, Compression, IngestApi};
use crate::{Error, OffsetToken, Result};

/// Commands queued per channel before `append_*` waits (the first backpressure layer; the
/// byte budget is the second).
const COMMAND_CAPACITY: usize = 64;
/// An appending task yields to the scheduler after serializing this many bytes.
const YIELD_EVERY: usize = 256 << 10;
/// Most idle capacity the row-buffer pools of one client keep (also at most 1/16 of the
/// memory budget, and two requests' worth per channel). This much of the budget is set
/// aside for them: rows and bodies may hold the rest.
const MAX_POOLED_BYTES: usize = 32 << 20;
/// An append split into more pieces than this is admitted piece by piece.
const MAX_ATOMIC_PIECES: usize = 32;

/// Tuning of channels, set through the client builder. Defaults are documented on the
/// builder's setters.
#[derive(Debug, Clone)]
pub(crate) struct ChannelSettings {
    /// Flush a batch this long after its first row was appended. Default 1 s.
    pub(crate) max_client_lag: Duration,
    /// Target size of one append request on the wire (after compression). Default 4 MB.
    pub(crate) max_request_bytes: usize,
    /// Client-wide budget of buffered + sent-but-uncommitted bytes. Default 256 MiB.
    pub(crate) memory_budget_bytes: usize,
    /// Compression of append bodies. Default zstd.
    pub(crate) compression: Compression,
    /// zstd level. Default 1: on ski-resort NDJSON (≈339 B rows) `zstd -b1 -e3` measured
    /// level 1 at 249 MB/s and ratio 4.83, level 3 at 151 MB/s and ratio 4.41.
    pub(crate) zstd_level: i32,
    /// Commit poll interval while some channel has uncommitted data. Default 100 ms.
    pub(crate) commit_poll_interval: Duration,
    /// Commit poll interval while everything is committed. Default 5 s.
    pub(crate) idle_poll_interval: Duration,
    /// Longest time one automatic recovery (reopen + replay, all attempts) may take before
    /// the channel fails. Default 2 min.
    pub(crate) recovery_timeout: Duration,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            max_client_lag: Duration::from_secs(1),
            max_request_bytes: 4_000_000,
            memory_budget_bytes: 256 << 20,
            compression: Compression::Zstd,
            zstd_level: 1,
            commit_poll_interval: Duration::from_millis(100),
            idle_poll_interval: Duration::from_secs(5),
            recovery_timeout: Duration::from_secs(120),
        }
    }
}

impl ChannelSettings {
    /// Clamps every setting into its documented range (the builder validates and reports;
    /// this is the channel layer's own guard).
    pub(crate) fn normalized(mut self) -> Self {
        use crate::config::{MAX_CLIENT_LAG, MAX_REQUEST_BYTES, MIN_CLIENT_LAG, MIN_REQUEST_BYTES};
        self.max_client_lag = self.max_client_lag.clamp(MIN_CLIENT_LAG, MAX_CLIENT_LAG);
        self.max_request_bytes = self
            .max_request_bytes
            .clamp(MIN_REQUEST_BYTES, MAX_REQUEST_BYTES);
        self.memory_budget_bytes = self.memory_budget_bytes.max(MIN_REQUEST_BYTES);
        self.commit_poll_interval = self.commit_poll_interval.max(Duration::from_millis(1));
        self.idle_poll_interval = self.idle_poll_interval.max(self.commit_poll_interval);
        self.recovery_timeout = self.recovery_timeout.max(Duration::from_millis(1));
        self
    }

    /// The largest uncompressed batch whose compressed body is sure to fit in
    /// `max_request_bytes` (zstd and deflate expand incompressible input by less than
    /// 1/256 plus a small header).
    pub(crate) fn batch_cap(&self) -> usize {
        match self.compression {
            Compression::None => self.max_request_bytes,
            _ => self.max_request_bytes - self.max_request_bytes / 256 - 256,
        }
    }
}

/// Options for opening a channel.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenChannelOptions {
    /// Reset the channel's committed offset token to this value at open.
    pub offset_token: Option<OffsetToken>,
    /// When `Some(true)`, the open fails (HTTP 409, `ERR_CHANNEL_HAS_UNCOMMITTED_DATA`) if the
    /// channel still has rows the server accepted but has not committed, instead of discarding
    /// them. `None` (default) leaves it to the server, whose default is `false`.
    pub fail_on_uncommitted_rows: Option<bool>,
    /// Accept appends larger than one request whose offset tokens do not say which rows each
    /// request carries (sparse, single or non-numeric tokens over many rows): they are split
    /// anyway, only the last request carrying the end token. Such an append is delivered
    /// **at least once**: if the channel is invalidated, or the process dies, after some of its
    /// requests were committed, the replay stores those rows again. Default `false`: such an
    /// append is refused with [`Error::InvalidArgument`] (see `docs/GUARANTEES.md`).
    pub at_least_once_splits: bool,
}

impl OpenChannelOptions {
    /// Sets [`fail_on_uncommitted_rows`](Self::fail_on_uncommitted_rows).
    #[must_use]
    pub fn fail_on_uncommitted_rows(mut self, fail: bool) -> Self {
        self.fail_on_uncommitted_rows = Some(fail);
        self
    }

    /// Sets [`at_least_once_splits`](Self::at_least_once_splits).
    #[must_use]
    pub fn at_least_once_splits(mut self, allow: bool) -> Self {
        self.at_least_once_splits = allow;
        self
    }

    /// Sets [`offset_token`](Self::offset_token).
    #[must_use]
    pub fn offset_token(mut self, token: impl Into<OffsetToken>) -> Self {
        self.offset_token = Some(token.into());
        self
    }
}

/// The channels of one client: memory budget, commit poller, and the open-channel logic.
#[derive(Debug)]
pub(crate) struct ChannelRuntime {
    inner: Arc<RuntimeInner>,
}

#[derive(Debug)]
struct RuntimeInner {
    api: Arc<dyn IngestApi>,
    settings: Arc<ChannelSettings>,
    budget: Budget,
    poller: Arc<Poller>,
    /// Bounds the idle row buffers all channels keep for reuse.
    pool_limit: Arc<pool::PoolLimit>,
    /// The client's compression jobs and zstd contexts, shared by all channels.
    compress_permits: compress::CompressPermits,
    next_id: AtomicU64,
    /// Budget held by the client's last append (see `Channel::reserve`).
    typical_append: AtomicUsize,
    closed: AtomicBool,
    shutdown: CancellationToken,
    /// Every opened channel's command sender (weak), for the client-level calls (`all.rs`).
    senders: std::sync::Mutex<all::Senders>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.poller.stop();
    }
}

fn non_empty(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_argument(
            what,
            format!("the {what} name must not be empty"),
        ));
    }
    Ok(())
}

/// Longest channel name accepted. Snowflake documents no limit for this API; object
/// identifiers are at most 255 characters, so longer names are refused before any request.
pub(crate) const MAX_CHANNEL_NAME_CHARS: usize = 255;

/// Client-side checks of a channel name: the server's rules are undocumented, so the SDK
/// refuses only what cannot work or would be mangled on the way: empty or blank names,
/// leading or trailing whitespace, control characters, `/` (a path separator once decoded by
/// proxies), and names longer than [`MAX_CHANNEL_NAME_CHARS`].
pub(crate) fn validate_channel_name(name: &str) -> Result<()> {
    let bad = |why: String| {
        Err(Error::invalid_argument(
            "channel",
            format!("channel name {name:?} {why}; use letters, digits, '_', '-' or '.'"),
        ))
    };
    if name.trim().is_empty() {
        return bad(if name.is_empty() {
            "is empty".into()
        } else {
            "is blank".into()
        });
    }
    if name.trim() != name {
        return bad("has leading or trailing whitespace".into());
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character".into());
    }
    if name.contains('/') {
        return bad("contains '/'".into());
    }
    if name.eq_ignore_ascii_case("ELASTIC") {
        // Every pipe's implicit elastic channel; URLs ignore case (docs/protocol.md "Names").
        return Err(Error::invalid_argument(
            "channel",
            format!(
                "channel name {name:?} is reserved for the implicit elastic channel of every \
                 pipe; choose another name, or use StreamingIngestClient::elastic_channel"
            ),
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_CHANNEL_NAME_CHARS {
        return bad(format!(
            "is too long ({chars} characters, at most {MAX_CHANNEL_NAME_CHARS})"
        ));
    }
    Ok(())
}

impl ChannelRuntime {
    pub(crate) fn new(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        let settings = Arc::new(settings.normalized());
        // Idle pooled buffers are part of the budget: the pools' limit is set aside from it.
        let pooled = (settings.memory_budget_bytes / 16).min(MAX_POOLED_BYTES);
        let budget = Budget::with_reserve(settings.memory_budget_bytes, pooled);
        let poller = Poller::new(Arc::clone(&api), Arc::clone(&settings));
        let pool_limit = pool::PoolLimit::new(pooled);
        let compressors = compress::compressors(
            &settings,
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get),
        );
        Self {
            inner: Arc::new(RuntimeInner {
                api,
                settings,
                budget,
                poller,
                pool_limit,
                compress_permits: compressors,
                next_id: AtomicU64::new(1),
                typical_append: AtomicUsize::new(0),
                closed: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                senders: std::sync::Mutex::new(std::collections::HashMap::new()),
            }),
        }
    }

    /// Bytes of the client-wide budget in use (buffered + retained).
    #[cfg(test)]
    pub(crate) fn budget_used(&self) -> usize {
        self.inner.budget.used()
    }

    /// What rows and bodies may hold: the budget less the pools' reserve.
    #[cfg(test)]
    pub(crate) fn budget_usable(&self) -> usize {
        self.inner.budget.total()
    }

    pub(crate) async fn open(
        &self,
        path: ChannelPath,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        let rt = &self.inner;
        if rt.closed.load(Ordering::Acquire) {
            return Err(Error::shutdown("client"));
        }
        non_empty("database", &path.pipe.database)?;
        non_empty("schema", &path.pipe.schema)?;
        non_empty("pipe", &path.pipe.pipe)?;
        validate_channel_name(&path.channel)?;
        if let Some(t) = &options.offset_token {
            t.validate()?;
        }
        // Reserved until registered (or until this open fails or is cancelled): a concurrent
        // open of the same path would otherwise reach the server and invalidate this one.
        let Some(_reservation) = rt.poller.reserve(&path) else {
            return Err(already_open(&path));
        };
        let at_least_once_splits = options.at_least_once_splits;
        let request = OpenChannelRequest {
            offset_token: options.offset_token.map(OffsetToken::into_string),
            fail_on_uncommitted_rows: options.fail_on_uncommitted_rows,
        };
        let resp = rt.api.open_channel(&path, &request).await?;
        if let Some(code) = resp
            .channel_status
            .channel_status_code
            .as_deref()
            .filter(|c| crate::api::status_code_is_invalid(c))
        {
            return Err(Error::Server(Box::new(ServerError {
                status: 200,
                code: Some(code.to_owned()),
                message: format!(
                    "channel {path} opened with status {code}; check that the pipe exists and \
                     the role may use it"
                ),
                request_id: None,
                operation: "open channel",
                attempts: 1,
            })));
        }
        let id = rt.next_id.fetch_add(1, Ordering::Relaxed);
        let shared = Arc::new(ChannelShared::new(
            id,
            path,
            &resp.channel_status,
            rt.shutdown.child_token(),
            Arc::new(pool::BufferPool::new(
                2 * rt.settings.max_request_bytes,
                Arc::clone(&rt.pool_limit),
            )),
        ));
        if !rt.poller.register(&shared) {
            return Err(already_open(&shared.path));
        }
        let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
        self.track(&shared, &tx);
        let actor = match Actor::new(
            Arc::clone(&rt.api),
            Arc::clone(&shared),
            Arc::clone(&rt.settings),
            Arc::clone(&rt.poller),
            rx,
            resp.next_continuation_token,
            Arc::clone(&rt.compress_permits),
        ) {
            Ok(a) => a,
            Err(e) => {
                rt.poller.unregister(id);
                return Err(e);
            }
        };
        let span = tracing::info_span!(
            "channel",
            channel = %shared.path.channel,
            pipe = %shared.path.pipe.pipe
        );
        tracing::debug!(parent: &span, offset_token = ?*shared.committed.borrow(), "channel opened");
        tokio::spawn(actor.run().instrument(span));
        Ok(Channel {
            shared,
            tx,
            rt: Arc::clone(&self.inner),
            last_token: std::sync::Mutex::new(None),
            unyielded: AtomicUsize::new(0),
            at_least_once_splits,
            typical_append: AtomicUsize::new(0),
        })
    }

    pub(crate) async fn close_all(&self) -> Result<()> {
        let rt = &self.inner;
        rt.closed.store(true, Ordering::Release);
        let channels = rt.poller.channels();
        let mut first_error = None;
        for c in &channels {
            if let State::Failed(f) = &*c.state.borrow() {
                first_error.get_or_insert_with(|| c.invalidated(f));
            }
        }
        rt.shutdown.cancel();
        // Wait for each actor to have stopped (drained, or given up), not merely to have
        // started draining, and report the first failure met while draining.
        for c in channels {
            let mut stopped = c.stopped.subscribe();
            let outcome = stopped
                .wait_for(Option::is_some)
                .await
                .ok()
                .and_then(|s| s.clone());
            if let Some(Some(f)) = outcome {
                first_error.get_or_insert_with(|| c.invalidated(&f));
            }
        }
        rt.poller.stop();
        first_error.map_or(Ok(()), Err)
    }
}

fn already_open(path: &ChannelPath) -> Error {
    Error::invalid_argument(
        "channel",
        format!("channel {path} is already open in this client; close it before opening it again"),
    )
}

/// Rows serialized by an `append_*` call, waiting to be admitted: the pieces (each at most
/// one request) and each piece's offset tokens.
#[derive(Debug)]
struct Prepared {
    encoded: Encoded,
    tokens: Vec<PieceTokens>,
    /// The append's last token (end, else start), for the order check of the next append.
    last: Option<OffsetToken>,
}

/// Counts a task waiting for a commit, so the poller polls at the fast cadence.
struct WaiterGuard<'a>(&'a ChannelShared);

impl<'a> WaiterGuard<'a> {
    fn new(shared: &'a ChannelShared) -> Self {
        shared.waiters.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        self.0.waiters.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A handle to one open channel: append rows, flush, track commits, close.
///
/// `Send + Sync`; methods take `&self`, so one handle can be shared (e.g. in an `Arc`) by
/// tasks appending concurrently — rows of concurrent calls interleave in the order the calls
/// are admitted. Not `Clone`: [`close`](Self::close) consumes the handle. See the
/// [module docs](self) for batching, memory, commit tracking, recovery and what dropping the
/// handle without `close()` does.
#[must_use = "rows are buffered until the channel is flushed or closed"]
pub struct Channel {
    shared: Arc<ChannelShared>,
    tx: mpsc::Sender<Cmd>,
    rt: Arc<RuntimeInner>,
    /// The last offset token admitted through this handle (reset by `reopen`), to refuse
    /// tokens that go backwards or repeat.
    last_token: std::sync::Mutex<Option<OffsetToken>>,
    /// Bytes serialized on the caller's task since it last yielded (see [`YIELD_EVERY`]).
    unyielded: AtomicUsize,
    /// See [`OpenChannelOptions::at_least_once_splits`].
    at_least_once_splits: bool,
    /// Budget held by this handle's last append, reserved before the next one is serialized.
    typical_append: AtomicUsize,
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
        self.shared.handle_dropped.cancel();
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
        self.shared.committed.borrow().clone()
    }

    /// A `watch` of the committed offset token, updated after every poll that sees it change
    /// (for push-style consumers, e.g. acknowledging a source).
    pub fn watch_committed(&self) -> watch::Receiver<Option<OffsetToken>> {
        self.shared.committed.subscribe()
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
        self.shared
            .events
            .get_or_init(|| broadcast::Sender::new(64))
            .subscribe()
    }

    /// A snapshot of the channel: server-reported status and client-side buffers.
    pub fn status(&self) -> ChannelStatus {
        self.shared.snapshot()
    }

    fn prepare_rows<I>(&self, rows: I, tokens: Tokens) -> Result<Prepared>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        self.prepare(tokens, |cap| {
            encode::encode_rows(rows, cap, &self.shared.buffers)
        })
    }

    fn prepare_tokened<I, T>(&self, rows: I) -> Result<Prepared>
    where
        I: IntoIterator<Item = (T, OffsetToken)>,
        T: Serialize,
    {
        self.shared.check_open()?;
        let mut tokens = Vec::new();
        let rows = rows.into_iter().map(|(row, token)| {
            tokens.push(token);
            row
        });
        let encoded =
            encode::encode_rows(rows, self.rt.settings.batch_cap(), &self.shared.buffers)?;
        self.prepare(Tokens::PerRow(tokens), |_| Ok(encoded))
    }

    fn prepare_raw(&self, ndjson: Bytes, tokens: Tokens) -> Result<Prepared> {
        self.prepare(tokens, |cap| encode::encode_raw(ndjson, cap))
    }

    /// The checks every append makes (channel open, tokens valid, in order and matching the
    /// rows), the encoding itself (capped at the batch size), and the division of the tokens
    /// among the pieces (see `tokens`).
    fn prepare(
        &self,
        tokens: Tokens,
        encode: impl FnOnce(usize) -> Result<Encoded>,
    ) -> Result<Prepared> {
        self.shared.check_open()?;
        tokens.check()?;
        self.check_token_order(tokens.first(), tokens.last())?;
        let encoded = encode(self.rt.settings.batch_cap())?;
        tokens.check_rows(encoded.rows)?;
        let last = tokens.last().or(tokens.first()).cloned();
        let rows: Vec<usize> = encoded.pieces.iter().map(|p| p.rows).collect();
        let tokens = tokens.split(
            &rows,
            self.at_least_once_splits,
            encoded.bytes,
            self.rt.settings.max_request_bytes,
        )?;
        Ok(Prepared {
            encoded,
            tokens,
            last,
        })
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
        async move {
            self.admit(prepared?, budget::BudgetBytes::detached(0))
                .await
        }
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
        async move {
            self.admit(prepared?, budget::BudgetBytes::detached(0))
                .await
        }
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

    fn closed_error(&self) -> Error {
        match self.shared.check_open() {
            Err(e) => e,
            Ok(()) => Error::shutdown(format!("channel {}", self.name())),
        }
    }

    fn record_admitted(&self, e: &Encoded) {
        let m = &self.shared.metrics;
        m.rows_appended.increment(e.rows as u64);
        m.bytes_appended.increment(e.bytes as u64);
    }

    fn chunks(
        p: Prepared,
        mut budget: budget::BudgetBytes,
    ) -> impl ExactSizeIterator<Item = Chunk> {
        p.encoded
            .pieces
            .into_iter()
            .zip(p.tokens)
            .map(move |(piece, t)| {
                let bytes = budget.split(piece.held);
                chunk_of(piece, t, bytes)
            })
    }

    /// Waits until the budget has room for an append the size of this channel's previous one
    /// (a quarter more, at most half the budget), and takes it, before the rows are serialized: producers
    /// waiting for room then hold their rows unserialized, so serialized rows are always inside
    /// the budget, however many producers wait.
    async fn reserve(&self) -> Result<budget::BudgetBytes> {
        self.shared.check_open()?;
        let budget = &self.rt.budget;
        // A quarter more than last time: buffers are charged at their capacity, and a reused
        // buffer may be somewhat larger than the rows it holds.
        // A channel's first append is sized like the client's last one.
        let typical = match self.typical_append.load(Ordering::Relaxed) {
            0 => self.rt.typical_append.load(Ordering::Relaxed),
            n => n,
        };
        let want = (typical + typical / 4).min(budget.total() / 2);
        let (bytes, waited) = budget.acquire(want).await?;
        self.record_wait(waited);
        Ok(bytes)
    }

    /// Admits `p`, using the budget `reserved` for it beforehand (see [`reserve`](Self::reserve)).
    async fn admit(&self, p: Prepared, reserved: budget::BudgetBytes) -> Result<()> {
        let last = p.last.clone();
        let bytes = p.encoded.bytes;
        self.typical_append.store(p.encoded.held, Ordering::Relaxed);
        self.rt
            .typical_append
            .store(p.encoded.held, Ordering::Relaxed);
        self.admit_inner(p, reserved).await?;
        self.record_token(last);
        // An append that finds room in the budget never waits, so a producer looping over
        // `append_*` would keep its worker thread for as long as the budget lasts (tens of
        // MB), starving the connection and channel tasks scheduled behind it: requests then
        // stall for tens of milliseconds. Yield once per YIELD_EVERY bytes serialized.
        if self.unyielded.fetch_add(bytes, Ordering::Relaxed) + bytes >= YIELD_EVERY {
            self.unyielded.store(0, Ordering::Relaxed);
            tokio::task::yield_now().await;
        }
        Ok(())
    }

    fn try_admit(&self, p: Prepared) -> Result<()> {
        let last = p.last.clone();
        self.try_admit_inner(p)?;
        self.record_token(last);
        Ok(())
    }

    fn record_token(&self, last: Option<OffsetToken>) {
        if last.is_some() {
            *lock(&self.last_token) = last;
        }
    }

    /// Refuses an append whose first token is numerically before, or the same as, the last
    /// token admitted through this handle (rows carrying the same token again are
    /// indistinguishable on replay). Non-numeric tokens are checked for repetition only.
    fn check_token_order(
        &self,
        start: Option<&OffsetToken>,
        end: Option<&OffsetToken>,
    ) -> Result<()> {
        let Some(first) = start.or(end) else {
            return Ok(());
        };
        let last = lock(&self.last_token).clone();
        let Some(last) = last else {
            return Ok(());
        };
        let why = match first.partial_cmp_numeric(&last) {
            Some(std::cmp::Ordering::Equal) => "reuses",
            Some(std::cmp::Ordering::Less) => "goes back before",
            _ => return Ok(()),
        };
        Err(Error::invalid_argument(
            "offset_token",
            format!(
                "offset token {first} {why} the last token appended on channel {} ({last}); \
                 tokens must strictly increase within a channel for exactly-once delivery \
                 (after reopen(), resume after the committed token it returns)",
                self.name()
            ),
        ))
    }

    async fn admit_inner(&self, p: Prepared, mut reserved: budget::BudgetBytes) -> Result<()> {
        if p.encoded.rows == 0 {
            return Ok(());
        }
        self.shared.check_open()?;
        let budget = &self.rt.budget;
        // The budget is charged what the buffers hold (capacity), not just the row bytes.
        let total = p.encoded.held;
        let pieces = p.encoded.pieces.len();
        self.record_admitted(&p.encoded);
        if total <= budget.total() / 2 && pieces <= MAX_ATOMIC_PIECES {
            let bytes = if reserved.len() >= total {
                reserved.shrink_to(total);
                reserved
            } else {
                // Take the rest now if it is free; otherwise let the reservation go and wait for
                // the whole (never wait while holding part of the budget: producers holding
                // parts could otherwise wait for each other forever).
                match budget.try_acquire(total - reserved.len()) {
                    Ok(more) => {
                        reserved.merge(more);
                        reserved
                    }
                    Err(_) => {
                        drop(reserved);
                        let (bytes, waited) = budget.acquire(total).await?;
                        self.record_wait(waited);
                        bytes
                    }
                }
            };
            let permits = self
                .tx
                .reserve_many(pieces)
                .await
                .map_err(|_| self.closed_error())?;
            for (chunk, permit) in Self::chunks(p, bytes).zip(permits) {
                permit.send(Cmd::Append(chunk));
            }
        } else {
            drop(reserved);
            for (piece, t) in p.encoded.pieces.into_iter().zip(p.tokens) {
                let (bytes, waited) = budget.acquire(piece.held).await?;
                self.record_wait(waited);
                let last = t.end.clone();
                self.tx
                    .send(Cmd::Append(chunk_of(piece, t, bytes)))
                    .await
                    .map_err(|_| self.closed_error())?;
                // A cancelled call leaves the pieces sent so far: later appends must follow them.
                self.record_token(last);
            }
        }
        Ok(())
    }

    fn record_wait(&self, waited: Duration) {
        if !waited.is_zero() {
            self.shared
                .metrics
                .backpressure_wait
                .record(waited.as_secs_f64());
            tracing::debug!(channel = %self.name(), waited = ?waited, "append waited for memory budget");
        }
    }

    fn try_admit_inner(&self, p: Prepared) -> Result<()> {
        if p.encoded.rows == 0 {
            return Ok(());
        }
        let budget = &self.rt.budget;
        let total = p.encoded.held;
        let bytes = budget.try_acquire(total)?;
        let permits = match self.tx.try_reserve_many(p.encoded.pieces.len()) {
            Ok(p) => p,
            Err(mpsc::error::TrySendError::Full(())) => {
                return Err(Error::Backpressure {
                    requested: total,
                    available: budget.available(),
                    budget: budget.total(),
                })
            }
            Err(mpsc::error::TrySendError::Closed(())) => return Err(self.closed_error()),
        };
        self.record_admitted(&p.encoded);
        for (chunk, permit) in Self::chunks(p, bytes).zip(permits) {
            permit.send(Cmd::Append(chunk));
        }
        Ok(())
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
    /// been failing for 30 s (see the [module docs](self)); [`Error::ChannelInvalidated`] when
    /// the channel fails meanwhile, [`Error::Shutdown`] when it is closed.
    ///
    /// # Cancellation
    /// Dropping the future only stops waiting.
    pub async fn wait_for_commit(&self, token: &OffsetToken, timeout: Duration) -> Result<()> {
        let _guard = WaiterGuard::new(&self.shared);
        self.rt.poller.wake();
        let mut committed = self.shared.committed.subscribe();
        let mut state = self.shared.state.subscribe();
        let mut stalled = self.shared.stalled.subscribe();
        let wait = async {
            tokio::select! {
                biased;
                r = committed.wait_for(|c| c.as_ref().is_some_and(|c| c.reaches(token))) => {
                    r.map(|_| ()).map_err(|_| self.closed_error())
                }
                _ = state.wait_for(|s| !matches!(s, State::Open)) => Err(self.closed_error()),
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
        Ok(committed)
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
    /// delivered: replay after the error's committed token), [`Error::Timeout`] when the
    /// timeout ran out (the channel's task is stopped at once and rows not yet sent are
    /// dropped; replay after the committed token).
    ///
    /// # Cancellation
    /// Dropping the future drops the handle: the channel then behaves as if dropped without
    /// `close()` (see the [module docs](self)).
    pub async fn close_with(self, options: CloseOptions) -> Result<()> {
        let close = async {
            let last = self.flush_token().await?;
            if options.wait_for_commit {
                if let Some(token) = last {
                    self.wait_for_commit(&token, options.timeout).await?;
                }
            }
            let (tx, rx) = oneshot::channel();
            self.tx
                .send(Cmd::Close(tx))
                .await
                .map_err(|_| self.closed_error())?;
            rx.await.map_err(|_| self.closed_error())?
        };
        match tokio::time::timeout(options.timeout, close).await {
            Ok(r) => r,
            Err(_) => {
                self.shared.abort.cancel();
                // The actor stops at once (also mid-recovery); wait briefly so the channel's
                // name is free for a new open when this returns.
                let mut stopped = self.shared.stopped.subscribe();
                let _ =
                    tokio::time::timeout(Duration::from_secs(1), stopped.wait_for(Option::is_some))
                        .await;
                Err(Error::Timeout {
                    operation: "channel close",
                    waited: options.timeout,
                })
            }
        }
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
        let token = rt.api.drop_channel(&path).await?;
        Ok(token.map(OffsetToken::from))
    }
}

/// One piece of an append with its tokens and the budget it holds, as the actor takes it.
fn chunk_of(piece: encode::Piece, t: PieceTokens, budget: budget::BudgetBytes) -> Chunk {
    Chunk {
        budget,
        rows: piece.rows,
        data: piece.data,
        start: t.start,
        end: t.end,
        continues: t.continues,
    }
}

#[allow(dead_code)]
fn _assert_send_sync() {
    fn is<T: Send + Sync>() {}
    is::<Channel>();
    is::<ChannelStatus>();
}
