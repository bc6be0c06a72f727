//! The publisher: seeded readings to `sensors.<shard>` at a steady rate, each with a
//! `Nats-Msg-Id` so that a publish retried after a lost ack (a broker restart) is stored once.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, context::PublishAckFuture};
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;

use crate::sensor_stream::broker::subject;
use crate::sensor_stream::cli::MAX_RATE;
use crate::sensor_stream::event::{shard_of, Generator};

/// Most publishes awaiting their ack.
const MAX_IN_FLIGHT: usize = 1_024;
/// How long one event may keep failing before the publisher gives up.
const GIVE_UP_AFTER: Duration = Duration::from_secs(120);

/// When to stop publishing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Limit {
    /// After this many events.
    Count(u64),
    /// After this long.
    For(Duration),
}

/// What to publish.
#[derive(Debug, Clone)]
pub(super) struct PublishOptions {
    /// Number of shards (subjects `sensors.0` .. `sensors.<shards-1>`).
    pub shards: u32,
    /// When to stop.
    pub limit: Limit,
    /// Events per second (1 to 10,000).
    pub rate: u32,
    /// Generator seed.
    pub seed: u64,
}

/// Live counters of the publisher.
#[derive(Debug)]
pub(super) struct PublishStats {
    /// Events the broker acknowledged, per shard.
    pub per_shard: Vec<AtomicU64>,
    /// Publishes retried after an error or a missing ack.
    pub retries: AtomicU64,
    /// Set when the publisher is done (all acknowledged, or failed).
    pub done: AtomicBool,
}

impl PublishStats {
    /// Counters for `shards` shards.
    pub(super) fn new(shards: u32) -> Self {
        PublishStats {
            per_shard: (0..shards).map(|_| AtomicU64::new(0)).collect(),
            retries: AtomicU64::new(0),
            done: AtomicBool::new(false),
        }
    }

    /// Events acknowledged over all shards.
    pub(super) fn total(&self) -> u64 {
        self.per_shard
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }
}

/// One event on its way: what is needed to publish it again.
struct Pending {
    shard: u32,
    msg_id: String,
    payload: Bytes,
    first_try: Instant,
}

type AckFuture = Pin<Box<dyn Future<Output = (Pending, Result<()>)> + Send>>;

async fn send(js: &jetstream::Context, p: Pending) -> AckFuture {
    let mut headers = async_nats::HeaderMap::new();
    headers.insert(async_nats::header::NATS_MESSAGE_ID, p.msg_id.as_str());
    let sent = js
        .publish_with_headers(subject(p.shard), headers, p.payload.clone())
        .await;
    Box::pin(async move {
        let result = match sent {
            Ok(ack) => wait_ack(ack).await,
            Err(e) => Err(anyhow::Error::new(e)),
        };
        (p, result)
    })
}

async fn wait_ack(ack: PublishAckFuture) -> Result<()> {
    ack.await.map(|_| ()).context("no publish ack")
}

/// Validates `--rate`.
///
/// # Errors
/// Outside 1 to [`MAX_RATE`] events per second (clap's value parser refuses such a `--rate`
/// first; this guards the pacing's division for every caller).
pub(super) fn check_rate(rate: u32) -> Result<()> {
    if !(1..=MAX_RATE).contains(&rate) {
        bail!("--rate must be between 1 and {MAX_RATE} events per second (got {rate})");
    }
    Ok(())
}

/// Publishes until the limit (or `stop`), then waits for every ack. Returns the events
/// acknowledged per shard.
///
/// # Errors
/// When an event cannot be stored for 2 minutes (broker gone), or the rate is out of range.
///
/// # Cancellation
/// Dropping the future stops publishing; events already sent may or may not be stored.
pub(super) async fn publish(
    js: &jetstream::Context,
    opts: &PublishOptions,
    stats: &PublishStats,
    stop: &AtomicBool,
) -> Result<Vec<u64>> {
    let result = publish_inner(js, opts, stats, stop).await;
    stats.done.store(true, Ordering::Relaxed);
    result?;
    Ok(stats
        .per_shard
        .iter()
        .map(|c| c.load(Ordering::Relaxed))
        .collect())
}

async fn publish_inner(
    js: &jetstream::Context,
    opts: &PublishOptions,
    stats: &PublishStats,
    stop: &AtomicBool,
) -> Result<()> {
    check_rate(opts.rate)?;
    let mut generator = Generator::new(opts.seed);
    // Message ids are unique per run, so a second run with the same seed is not deduplicated.
    let run: u64 = rand::random();
    let started = Instant::now();
    let mut next = 0u64;
    let mut in_flight: FuturesUnordered<AckFuture> = FuturesUnordered::new();
    let period = Duration::from_secs_f64(1.0 / f64::from(opts.rate));
    loop {
        let elapsed = started.elapsed();
        let mut due = (elapsed.as_secs_f64() * f64::from(opts.rate)) as u64 + 1;
        let finished = match opts.limit {
            Limit::Count(n) => {
                due = due.min(n);
                next >= n
            }
            Limit::For(d) => elapsed >= d,
        } || stop.load(Ordering::Relaxed);
        if finished {
            break;
        }
        while next < due && in_flight.len() < MAX_IN_FLIGHT {
            let event = generator.next_event(chrono::Utc::now());
            let payload = Bytes::from(serde_json::to_vec(&event)?);
            let pending = Pending {
                shard: shard_of(event.sensor_id, opts.shards),
                msg_id: format!("{run:016x}-{next}"),
                payload,
                first_try: Instant::now(),
            };
            let fut = send(js, pending).await;
            in_flight.push(fut);
            next += 1;
        }
        let wake = started + period.mul_f64((next + 1) as f64);
        tokio::select! {
            Some((p, r)) = in_flight.next(), if !in_flight.is_empty() => {
                settle(js, &mut in_flight, p, r, stats).await?;
            }
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
    }
    while let Some((p, r)) = in_flight.next().await {
        settle(js, &mut in_flight, p, r, stats).await?;
    }
    Ok(())
}

/// Counts an acknowledged event, or publishes it again (same message id) after a short pause.
async fn settle(
    js: &jetstream::Context,
    in_flight: &mut FuturesUnordered<AckFuture>,
    p: Pending,
    result: Result<()>,
    stats: &PublishStats,
) -> Result<()> {
    match result {
        Ok(()) => {
            stats.per_shard[p.shard as usize].fetch_add(1, Ordering::Relaxed);
        }
        Err(e) if p.first_try.elapsed() < GIVE_UP_AFTER => {
            tracing::debug!("publish {} failed, retrying: {e:#}", p.msg_id);
            stats.retries.fetch_add(1, Ordering::Relaxed);
            tokio::time::sleep(Duration::from_millis(50)).await;
            let fut = send(js, p).await;
            in_flight.push(fut);
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "event {} could not be stored for {GIVE_UP_AFTER:?}",
                    p.msg_id
                )
            })
        }
    }
    Ok(())
}
