//! The sink: the consumer thread, one worker per assigned partition, and the hand-over between
//! them, until SIGTERM, `--until-idle`, or a failure.
//!
//! ```text
//!  poll thread (consumer.rs)            async side (here)                  per partition (partition.rs)
//!  rebalance: assign ──Control::Assign──▶ open <prefix>_<topic>_<p>,         Worker: messages → rows →
//!      ◀── start offsets (committed+1) ── spawn worker                       append (offset = token)
//!  rebalance: revoke ──Control::Revoke──▶ stop workers: drain, hand_over ──▶ flush, wait commit, close
//!      ◀── next offsets (Kafka commit) ──
//!  messages ─── batches per partition (batch.rs), within the byte budget ──▶
//!           ◀──────── ThreadCmd::{Commit, Rejoin, Shutdown} ──────────────
//! ```
//!
//! An assignment's channels are opened concurrently (at most
//! [`OPEN_CONCURRENCY`](open::OPEN_CONCURRENCY) at once), so a rebalance of hundreds of
//! partitions takes a few round trips, not hundreds. Every worker
//! is supervised: one that panics is reported at once, and the
//! sink stops with an error naming its partition (exit non-zero) instead of leaving the
//! partition silently unread; its next owner resumes at the committed token.
//!
//! The run loop ([`run_with`]) is one `select!` over the events; what they share is a
//! `Sink` (`state.rs`), one method per event:
//!
//! * a rebalance from the consumer thread: `Sink::assign` (`assign.rs`: each partition's
//!   channel opened by `open.rs`'s `Opener`, its worker started as it opens) or
//!   `Sink::revoke` (the workers stopped, every one at once, and collected);
//! * a worker that panicked or failed: `Sink::died` (the sink stops, naming the partition);
//! * the shutdown: `Sink::shutdown` (the consumer thread leaves the group, which revokes
//!   everything);
//! * every 200 ms: `Sink::tick` (health, the memory gauge, stalls in `stall.rs`, progress,
//!   `--until-idle` in `idle.rs`).
//!
//! The loop ends when the consumer thread does; `Sink::finish` hands over what is left and
//! returns the report or the first failure. `workers.rs` holds the running workers (started
//! supervised, stopped on a revoke) and every partition's counters.

mod assign;
mod commits;
pub(crate) mod dead_letter;
mod idle;
mod open;
pub(crate) mod partition;
mod refetch;
mod rejected;
pub(crate) mod report;
pub(crate) mod settings;
mod stall;
mod state;
mod stats;
mod workers;

use std::sync::Arc;
use std::time::Duration;

use snowpipe_streaming::StreamingIngestClient;

use crate::error::Result;
use crate::ops::metrics::Health;
use crate::sink::report::Report;
use crate::sink::settings::Settings;
use crate::sink::state::Sink;
use crate::source::consumer::Control;

/// Runs the sink until `shutdown` resolves (SIGTERM), `--until-idle` is reached, or it fails.
/// Every partition it holds is handed over before it returns.
///
/// # Errors
/// When the consumer cannot start, a channel cannot be opened (a missing pipe, no grant), or
/// the consumer thread fails.
///
/// # Cancellation
/// Dropping the future abandons the partitions without a hand-over (their next owner replays
/// what was not committed); await `shutdown` instead.
pub async fn run(
    settings: Settings,
    client: StreamingIngestClient,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Report> {
    run_with(settings, client, shutdown, Arc::default()).await
}

/// [`run`], reporting to `health` (the `/healthz` and `/readyz` probes).
///
/// # Errors
/// As [`run`]; also when a partition's worker panics (named in the error).
///
/// # Cancellation
/// As [`run`].
pub async fn run_with(
    settings: Settings,
    client: StreamingIngestClient,
    shutdown: impl std::future::Future<Output = ()>,
    health: Arc<Health>,
) -> Result<Report> {
    let mut sink = Sink::start(settings, client, health)?;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            msg = sink.control.recv() => {
                let Some(msg) = msg else { break }; // the consumer thread ended
                sink.rebalanced();
                match msg {
                    Control::Assign { parts, reply } => {
                        let _ = reply.send(sink.assign(parts).await);
                    }
                    Control::Revoke { parts, lost, reply } => {
                        // Every worker hands over at once; then collect.
                        let _ = reply.send(sink.revoke(parts, lost).await);
                    }
                }
            }
            () = &mut shutdown, if !sink.outcome.stopping() => sink.shutdown(),
            Some((part, why)) = sink.died.recv() => sink.died(&part, &why),
            _ = tick.tick() => sink.tick().await,
        }
    }
    sink.finish().await
}
