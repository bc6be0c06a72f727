//! Channels: buffered, ordered appends to one Snowpipe Streaming channel.
//!
//! ```text
//!  user task                 Channel handle                 per-channel actor task            IngestApi
//!  ─────────                 ──────────────                 ──────────────────────            ─────────
//!  append(rows, positions)▶ serialize NDJSON (caller's task) ─▶ acquire byte permits
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
//! Rows are serialized to NDJSON when [`Channel::append`] runs, on the caller's task, into row buffers
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
//! default, the service's per-channel limit) and, after a request of `n` uncompressed bytes, at
//! least `n / max_bytes_per_second` (20 MB/s by default, the service's other limit). Batches of 256 KB or more are compressed on tokio's blocking pool while the
//! previous request is in flight (up to two per channel, within the client-wide limit below, so
//! one busy channel can use two cores), keeping the actor free to send the next body the moment an
//! ack arrives. When four requests' worth of sealed
//! batches are waiting, the actor stops taking appends until they drain; up to 64 more appends
//! then wait in the channel's mailbox, and producers behind those wait for the mailbox. So a
//! producer faster than the server stays at most that far ahead (with 1,000-row appends of
//! ≈ 340 KB: 16 MB queued plus 22 MB in the mailbox), within the memory budget. Eight such
//! channels fill a 256 MiB budget; holding them to 2 requests and 4 appends halved the memory
//! (280 → 139 MB) at the same CPU per GB and 2–3 % fewer rows/s (one run each), so the limits
//! stayed. A batch's start
//! token is its first row's, its end token its last row's.
//!
//! # Memory
//!
//! A client-wide budget (default 256 MiB) bounds the bytes buffered (charged at the capacity of the
//! buffers holding them) plus the bytes sent but not yet committed. `append` waits for room;
//! `try_append` returns [`Error::Backpressure`] instead (or [`Error::InvalidArgument`], not
//! retryable, for an append larger than the whole budget, which could never be taken at once).
//! Batches are kept, compressed, until the server reports their end token committed — that is what
//! makes automatic replay possible — and their bytes count against the budget until then. Batches
//! without an end offset token are released as soon as every batch before them is committed. The
//! rows `append` serializes are inside the budget however many producers wait: it first waits
//! for room for an append the size of the channel's previous one, then serializes (when the rows
//! turn out larger and the rest is not free, it lets its part go and waits for the whole, never
//! holding part of the budget while waiting). Outside the budget are only the single rows
//! (a single row) and NDJSON callers already hold while they wait, and the
//! misestimate of an append larger than its channel's previous one. An append larger than half
//! the budget is admitted piece by piece, so one larger than the whole budget still completes.
//!
//! A batch counts at its compressed size from the moment its body is ready (its row buffers are
//! freed then), whether or not it has been sent. Idle row and body buffers kept for reuse (in one
//! pool per client, shared by its channels: at most the smaller of 1/16 of the budget and
//! 32 MiB) are inside the budget too: that much is set aside for them. Outside it are the
//! client's compression contexts and the bodies being compressed, both bounded per client, not per
//! channel: at most `max(cores, 2)` large batches compress at once, client-wide (channels take
//! turns in the order they asked), and the zstd contexts (about 1 MB each; 4–5 MB for the
//! blocking jobs' whole-batch windows, at most 1/8 of the budget in all) are pooled by the
//! client, which keeps a few idle — so a thousand busy channels hold a handful of contexts, and
//! an idle channel only its handle, task and queues (about 10 KB; 5 s after it goes idle, the
//! pooled buffers that have been idle that long are freed). The allocator adds its own slack:
//! the README's Performance section has measured figures.

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
//! When the server invalidates the channel — an append answered with an `ERR_CHANNEL_*` code
//! or HTTP 409, or an invalid status code from the poller — or an append's response is lost
//! (timeout or broken connection: it may or may not have been applied), the actor reads the
//! channel's status, reopens the channel (the server discards rows it had not committed), reads
//! the committed offset token, drops the kept batches up to the one whose end token it is, and
//! re-sends the rest, in order, before anything new. With strictly increasing offset tokens this
//! is exactly-once delivery without application code. Recovery is bounded, with backoff: at
//! most 5 recoveries from invalidation within 60 s and 20 from lost responses, and one recovery
//! episode (every reopen attempt, each retried by the REST layer, and the replay) may take at
//! most `recovery_timeout` (default 2 min, set on the client builder): during an outage the
//! channel then fails instead of retrying forever. While it recovers, the channel's task still
//! honours a close timeout (it stops at once and the name can be opened again), client shutdown
//! and the handle being dropped (each with its drain limit).
//!
//! When recovery is impossible (retries exhausted, authentication revoked, too many
//! recoveries), the channel fails: every later call returns [`Error::ChannelInvalidated`]
//! carrying the last committed offset token, and [`Channel::reopen`] reopens it, discards what
//! it buffered and returns the token to replay from. Channels fail independently.
//!
//! # Ownership: one writer per channel
//!
//! Snowflake lets one writer at a time append to a channel: opening it, anywhere, fences the
//! previous holder. A handle learns it was fenced from an append answered
//! `STALE_CONTINUATION_TOKEN_SEQUENCER`, or from a committed offset token it never sent (only a
//! writer that opened the channel after it can have committed one). Either is final for the
//! handle: it fails with [`Error::OwnershipLost`] on that call and every later one, sends
//! nothing more, does not reopen by itself, and drops the batches it kept (they belong to a
//! session that no longer exists; the new owner resumes after the committed token). Reopening
//! would fence the other writer in turn, and two writers each resuming from their own position
//! store rows twice. The automatic recoveries above keep the same rule: they read the status
//! before reopening (a writer fenced while it was paused does not take the channel back from one
//! that has committed since) and replay only when the committed token after the reopen is one of
//! their own. `docs/GUARANTEES.md` lists every path that reopens a channel automatically and why
//! no other writer can exist on it.
//!
//! Moving a channel between writers (a Kafka partition revoked and assigned, a shard moved, a
//! rolling deploy) is a hand-over: the old owner stops appending and calls
//! [`Channel::hand_over`], which flushes, waits (bounded) for the commit, closes and reports
//! the committed token; the new owner opens the channel and resumes after
//! [`Channel::latest_committed_offset_token`]. If the old owner cannot finish (it crashed, the
//! bound ran out), the new owner's open discards its uncommitted rows, so the hand-over is still
//! exact. A writer that gets [`Error::OwnershipLost`] gives up the source position the channel
//! stands for; it calls [`Channel::reopen`] only when it knows the other writer is gone.
//!
//! ```no_run
//! use std::time::Duration;
//! use snowpipe_streaming::{Channel, Error, OffsetToken, StreamingIngestClient};
//!
//! /// "You lose partition 3": hand it over; its next owner resumes after the returned token.
//! async fn revoked(channel: Channel) -> Result<Option<OffsetToken>, Error> {
//!     match channel.hand_over(Duration::from_secs(30)).await {
//!         // Someone already has it: nothing to hand over, it resumes from the server's token.
//!         Err(e) if e.is_ownership_lost() => Ok(e.last_committed_offset_token().cloned()),
//!         other => other,
//!     }
//! }
//!
//! /// "You get partition 3": open, then read the source after the committed token.
//! async fn assigned(client: &StreamingIngestClient) -> Result<(Channel, u64), Error> {
//!     let channel = client.pipe("DB", "SCHEMA", "PIPE").open_channel("events_3").await?;
//!     let next = channel
//!         .latest_committed_offset_token()
//!         .and_then(|t| t.as_u64())
//!         .map_or(0, |t| t + 1);
//!     Ok((channel, next))
//! }
//! ```
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
//!    stream sequences) go row by row with [`Positions::per_row`] or [`Positions::numbered`]; a span
//!    `start..=end` of numbers with one prefix (`"order_1"..="order_500"`) names one per row.
//! 2. On start, open the channel and **resume after** its committed token
//!    ([`Channel::latest_committed_offset_token`]): everything up to it is in the table.
//! 3. Append. The SDK keeps what it sent until it is committed and, when the channel is
//!    invalidated, reopens it and replays exactly the uncommitted batches itself.
//! 4. Acknowledge your source only up to the committed token ([`Channel::watch_committed`]
//!    or [`Channel::wait_for_commit`]).
//! 5. If the channel fails anyway ([`Error::ChannelInvalidated`]),
//!    call [`Channel::reopen`] and **replay** your source after the token it returns.
//! 6. If another writer took the channel ([`Error::OwnershipLost`]), **stop** writing it: the
//!    other writer resumes after the committed token.
//!
//! ```no_run
//! use std::time::Duration;
//! use snowpipe_streaming::{OffsetToken, Positions, Rows, StreamingIngestClient};
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
//!     let channel = client.pipe("DB", "SCHEMA", "PIPE").open_channel("orders-0").await?;
//!     // Resume after what Snowflake already committed.
//!     let mut next_after = channel.latest_committed_offset_token().and_then(|t| t.as_u64());
//!     loop {
//!         let rows = source.read_after(next_after);
//!         if rows.is_empty() {
//!             break;
//!         }
//!         for (seq, row) in rows {
//!             let at = Positions::at(OffsetToken::from(seq));
//!             match channel.append(Rows::serde([&row]), at).await {
//!                 Ok(()) => next_after = Some(seq),
//!                 Err(e) if e.is_channel_invalidated() => {
//!                     // Automatic recovery was impossible: replay after the committed token.
//!                     next_after = channel.reopen().await?.and_then(|t| t.as_u64());
//!                     break;
//!                 }
//!                 // Another writer has the channel now: stop, never take it back.
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

#[cfg(doc)]
use crate::Error;

mod actor;
mod admission;
mod cmd;
#[cfg(test)]
mod conformance_tests;
mod context;
mod deprecated;
#[cfg(test)]
mod exactly_once_tests;
mod handle;
mod input;
mod names;
mod options;
#[cfg(test)]
mod ownership_tests;
mod poller;
mod raw_rows;
mod registry;
mod request_spans;
mod row_errors;
mod runtime;
mod shared;
mod status;
#[cfg(test)]
pub(crate) mod testing;
#[cfg(test)]
mod tests;
mod tokens;

pub use crate::rows::Rows;
pub use handle::Channel;
pub use input::Positions;
pub use options::OpenChannelOptions;
pub use raw_rows::RawRows;
pub use row_errors::RowErrors;
pub use status::{
    ChannelStatus, CloseOptions, RowErrorEvent, RowErrorSummary, ServerChannelStatus,
};

pub(crate) use names::validate_channel_name;
pub(crate) use runtime::ChannelRuntime;
