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
//! An assignment's channels are opened concurrently (at most [`OPEN_CONCURRENCY`] at once), so
//! a rebalance of hundreds of partitions takes a few round trips, not hundreds. Every worker
//! is supervised: one that panics is reported at once, and the
//! sink stops with an error naming its partition (exit non-zero) instead of leaving the
//! partition silently unread; its next owner resumes at the committed token.

mod client_side;
pub mod dead_letter;
pub mod partition;
pub mod report;
pub mod settings;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use futures_util::{FutureExt as _, StreamExt as _};
use rdkafka::producer::FutureProducer;
use rdkafka::Offset;
use snowpipe_streaming::StreamingIngestClient;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::kafka::consumer::{ConsumerSetup, Control, Lags, Resets, ThreadCmd};
use crate::ops::metrics::{Health, PartitionMetrics, SinkMetrics};
use crate::rows::batch::Budget;
use crate::sink::dead_letter::DeadLetters;
use crate::sink::partition::{End, PartitionStats, Worker};
use crate::sink::report::{Progress, Report};
use crate::sink::settings::{Settings, Start};
use crate::Part;

/// Channels opened at once for an assignment.
pub const OPEN_CONCURRENCY: usize = 32;

struct Running {
    stop: oneshot::Sender<bool>,
    task: JoinHandle<End>,
}

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
    let Settings {
        warnings,
        routes,
        channels,
        database,
        schema,
        start,
        hand_over_timeout,
        queue_bytes,
        dead_letters,
        properties,
        values,
        tables,
        named_pipes,
        client_side,
        migrator,
        rows,
        consumer: consumer_config,
        subscription,
        listed_topics,
        quiet,
        until_idle,
    } = settings;
    for line in warnings {
        tracing::warn!("{line}");
    }
    health.hand_over_timeout(hand_over_timeout);
    let epoch = Instant::now();
    let budget = Arc::new(Budget::new(queue_bytes));
    let sink_metrics = SinkMetrics::new(health.released());
    let (died_tx, mut died) = mpsc::unbounded_channel::<(Part, String)>();
    let read_headers = rows.metadata || dead_letters.is_some();
    let dead_letters = Arc::new(DeadLetters::new(match dead_letters {
        Some(target) => {
            let producer: FutureProducer = target.producer.create().map_err(|e| {
                let why = crate::kafka::properties::scrub(&e.to_string(), &properties);
                anyhow!("cannot create the dead-letter producer: {why}")
            })?;
            Some((producer, target.topic))
        }
        None => None,
    }));
    let (control_tx, mut control) = mpsc::unbounded_channel();
    let (commands, command_rx) = std_mpsc::channel();
    let lags: Lags = Arc::default();
    let resets: Resets = Arc::default();
    let decoder = values.decoder()?.map(Arc::new);
    let setup = ConsumerSetup {
        config: consumer_config.clone(),
        properties: properties.clone(),
        topics: subscription,
        control: control_tx,
        hand_over_timeout,
        lags: Arc::clone(&lags),
        resets: Arc::clone(&resets),
        budget: Arc::clone(&budget),
        metrics: sink_metrics.clone(),
        rows,
        read_headers,
        raw_values: decoder.is_some(),
        hold: crate::kafka::router::hold_for(client.max_client_lag()),
    };
    let thread = std::thread::Builder::new()
        .name("kafka-poll".into())
        .spawn(move || crate::kafka::poll::run(setup, &command_rx))
        .context("cannot start the consumer thread")?;

    let consumed_at = Arc::new(AtomicU64::new(0));
    let mut stats: BTreeMap<Part, Arc<PartitionStats>> = BTreeMap::new();
    let mut running: HashMap<Part, Running> = HashMap::new();
    let mut progress = Progress::new(quiet);
    let mut failure: Option<anyhow::Error> = None;
    let mut stopping = false;
    // The idle clock runs once the group gave this instance its first assignment (an empty
    // one too): before that it is not consuming yet, merely waiting for a rebalance.
    let mut joined = false;
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            msg = control.recv() => {
                let Some(msg) = msg else { break }; // the consumer thread ended
                joined = true;
                // A rebalance starts the idle clock again: newly assigned partitions may have
                // a backlog that has not been fetched yet.
                consumed_at.store(
                    u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
                    Ordering::Relaxed,
                );
                match msg {
                    Control::Assign { parts, reply } => {
                        health.joined();
                        health.opening(true);
                        let started = Instant::now();
                        let n = parts.len();
                        // Opened concurrently; each partition's worker starts as its channel opens.
                        let mut opening = futures_util::stream::iter(parts)
                            .map(|(part, inbox)| {
                                let default_pipe = routes.pipe_of(&part.0);
                                let name = channels.channel_name(&part.0, part.1);
                                let (database, schema) = (&database, &schema);
                                let tables = tables.as_ref();
                                let named = named_pipes.as_ref();
                                let client_side = client_side.as_ref();
                                let migrator = migrator.as_ref();
                                let client = &client;
                                async move {
                                    let opened = async {
                                        let p = default_pipe.map_err(|e| {
                                            e.context(format!("no pipe for {}/{}", part.0, part.1))
                                        })?;
                                        // `--create-tables`: the table before its channel.
                                        if let Some(t) = tables {
                                            t.ensure(&p).await?;
                                        }
                                        // `--table-named-pipes`: a pipe named like the table wins.
                                        let default_p = p.clone();
                                        let p = match named {
                                            Some(n) => n.pipe_for(&p).await?,
                                            None => p,
                                        };
                                        // Client-side validation: the table's columns, once.
                                        let check = match client_side {
                                            Some(v) => v.table(&p).await?,
                                            None => None,
                                        };
                                        let pipe = client.pipe(database, schema, &p);
                                        let channel = pipe.open_channel(&name).await.map_err(|e| {
                                            anyhow!(e).context(format!(
                                                "cannot open the channel of {}/{} on {database}.{schema}.{p}",
                                                part.0, part.1
                                            ))
                                        })?;
                                        // `--migrate-v3-offsets`: v3's position, once opened.
                                        let channel = match migrator {
                                            Some(m) => {
                                                // v3's table is the default pipe's (the same table).
                                                crate::connector::migrate_v3::resume(m, &pipe, &default_p, &part.0, part.1, channel).await?
                                            }
                                            None => channel,
                                        };
                                        anyhow::Ok((channel, check))
                                    }
                                    .await;
                                    (part, inbox, opened)
                                }
                            })
                            .buffer_unordered(OPEN_CONCURRENCY);
                        let mut starts = HashMap::new();
                        while let Some((part, inbox, opened)) = opening.next().await {
                            let (channel, check) = match opened {
                                Ok(c) => c,
                                Err(e) => {
                                    failure.get_or_insert(e);
                                    stop(&mut stopping, &health, &commands);
                                    continue;
                                }
                            };
                            let start = match channel.latest_committed_offset_token().and_then(|t| t.as_u64()) {
                                Some(c) => Offset::Offset(i64::try_from(c).unwrap_or(i64::MAX - 1) + 1),
                                None => match start {
                                    Start::Earliest => Offset::Beginning,
                                    Start::Latest => Offset::End,
                                },
                            };
                            starts.insert(part.clone(), start);
                            let s = Arc::clone(stats.entry(part.clone()).or_default());
                            let (stop, stop_rx) = oneshot::channel();
                            sink_metrics.hold(&part);
                            let worker = Worker {
                                part: part.clone(),
                                assignment: inbox.id,
                                channel,
                                batches: inbox.batches,
                                rows,
                                decoder: decoder.clone(),
                                check,
                                dead_letters: Arc::clone(&dead_letters),
                                stats: s,
                                metrics: PartitionMetrics::new(&part),
                                commands: commands.clone(),
                                consumed_at: Arc::clone(&consumed_at),
                                resets: Arc::clone(&resets),
                                epoch,
                                hand_over_timeout,
                            };
                            // Its log lines carry the partition (`--log-format json`: `span`).
                            let span = tracing::info_span!(
                                "partition",
                                topic = %part.0,
                                partition = part.1,
                                channel = %worker.channel.name()
                            );
                            let run = tracing::Instrument::instrument(worker.run(stop_rx), span);
                            let task = tokio::spawn(supervised(part.clone(), run, died_tx.clone()));
                            running.insert(part, Running { stop, task });
                        }
                        drop(opening);
                        if n > 0 {
                            tracing::info!(
                                partitions = n,
                                elapsed = ?started.elapsed(),
                                "assignment ready: channels open, partitions consuming"
                            );
                        }
                        sink_metrics.assigned(running.len());
                        health.opening(false);
                        // And again once they are open: opening may take longer than the idle
                        // time, and the partitions have read nothing yet.
                        consumed_at.store(
                            u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
                            Ordering::Relaxed,
                        );
                        let _ = reply.send(starts);
                    }
                    Control::Revoke { parts, lost, reply } => {
                        // Every worker hands over at once; then collect.
                        let stopped: Vec<_> = parts
                            .into_iter()
                            .filter_map(|p| running.remove(&p).map(|r| (p, r)))
                            .map(|(p, r)| {
                                let _ = r.stop.send(lost);
                                (p, r.task)
                            })
                            .collect();
                        let mut next = HashMap::new();
                        for (part, task) in stopped {
                            if let Ok(End::HandedOver(Some(c))) = task.await {
                                next.insert(part, c + 1);
                            }
                        }
                        sink_metrics.assigned(running.len());
                        let _ = reply.send(next);
                    }
                }
            }
            () = &mut shutdown, if !stopping => {
                tracing::info!("stopping: handing every partition over");
                stop(&mut stopping, &health, &commands);
            }
            Some((part, why)) = died.recv() => {
                let (topic, partition) = &part;
                let e = anyhow!(
                    "the worker of partition {topic}/{partition} {why}: stopping this instance \
                     so the partition is not left unread (its next owner resumes at the \
                     committed offset)"
                );
                tracing::error!("{e}");
                running.remove(&part);
                failure.get_or_insert(e);
                stop(&mut stopping, &health, &commands);
            }
            _ = tick.tick() => {
                health.tick();
                sink_metrics.memory(budget.used(), budget.limit());
                if let Some(idle) = until_idle {
                    let last = Duration::from_millis(consumed_at.load(Ordering::Relaxed));
                    let quiet_for = epoch.elapsed().saturating_sub(last);
                    // Idle: joined, nothing read for `idle`, every held partition read to
                    // its end (by librdkafka's latest statistics) and committed.
                    let drained = || {
                        let lags = lags.lock().map(|l| l.clone()).unwrap_or_default();
                        running.keys().all(|p| {
                            stats.get(p).is_none_or(|s| {
                                // Lag 0 covers a partition ending in transaction markers,
                                // which are never delivered as messages.
                                s.settled()
                                    && lags
                                        .get(p)
                                        .is_some_and(|l| l.lag == 0 || s.read_to(l.high))
                            })
                        })
                    };
                    if joined && !stopping && quiet_for >= idle && drained() {
                        // Exit 0 means the work is done: a literal topic the broker does not
                        // have (a typo) or will not describe was never read.
                        if let Some(e) = unread_topics(&listed_topics, &consumer_config, &properties).await {
                            tracing::error!("{e:#}");
                            failure.get_or_insert(e);
                        } else {
                            tracing::info!(
                                ?idle,
                                lags = ?lags.lock().map(|l| l.clone()).unwrap_or_default(),
                                "idle, read to the end and everything committed: stopping"
                            );
                        }
                        stop(&mut stopping, &health, &commands);
                    }
                }
                progress.tick(epoch, &stats, &lags, &budget);
            }
        }
    }
    health.consumer_ended();
    let ended = thread
        .join()
        .map_err(|_| anyhow!("the consumer thread panicked"))?;
    for (_, r) in running.drain() {
        let _ = r.stop.send(false);
        let _ = r.task.await;
    }
    if let Err(e) = ended {
        failure.get_or_insert(e);
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(Report::new(&stats))
}

/// Why `--until-idle` must not end with success: the literal topics the broker does not have
/// or will not describe (`subscription::missing_topics`), or that it could not be asked.
async fn unread_topics(
    topics: &[String],
    config: &rdkafka::ClientConfig,
    properties: &[crate::kafka::properties::Property],
) -> Option<anyhow::Error> {
    if topics.is_empty() {
        return None;
    }
    let (config, topics) = (config.clone(), topics.to_vec());
    let asked = tokio::task::spawn_blocking(move || {
        crate::kafka::subscription::missing_topics(&config, &topics, Duration::from_secs(10))
    })
    .await;
    match asked {
        Ok(Ok(missing)) if missing.is_empty() => None,
        Ok(Ok(missing)) => Some(anyhow!(
            "--until-idle: nothing was read from {} ({}): the topic does not exist, or this \
             consumer's principal may not describe or read it; check the --topic names (or the \
             connector file's topics) and the principal's ACLs",
            if missing.len() == 1 {
                "a topic"
            } else {
                "topics"
            },
            missing.join("; ")
        )),
        Ok(Err(e)) => Some(anyhow!(
            "--until-idle: could not ask the brokers whether the --topic topics exist ({}); \
             not claiming the work is done",
            crate::kafka::properties::scrub(&e.to_string(), properties)
        )),
        Err(e) => Some(anyhow!("--until-idle: the topic check failed: {e}")),
    }
}

/// Asks the consumer thread to leave the group, handing every partition over (once), and
/// tells the readiness probe.
fn stop(stopping: &mut bool, health: &Health, commands: &std_mpsc::Sender<ThreadCmd>) {
    if !*stopping {
        *stopping = true;
        health.stopping();
        let _ = commands.send(ThreadCmd::Shutdown);
    }
}

/// Runs a partition's worker and reports on `died` when it panics, with the panic's message,
/// or ends [`End::Failed`], with its reason. (Every other way a worker returns answers a stop,
/// a revoke or a fence, which the sink handles; a panic, and a problem only the operator can
/// fix, are the ways it can end that nobody asked for.)
async fn supervised(
    part: Part,
    worker: impl std::future::Future<Output = End>,
    died: mpsc::UnboundedSender<(Part, String)>,
) -> End {
    match std::panic::AssertUnwindSafe(worker).catch_unwind().await {
        Ok(End::Failed(why)) => {
            let _ = died.send((part, format!("stopped: {why}")));
            End::Lost
        }
        Ok(end) => end,
        Err(panic) => {
            let message = panic
                .downcast_ref::<&str>()
                .map(|s| (*s).to_owned())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "(no message)".to_owned());
            let _ = died.send((part, format!("panicked: {message}")));
            End::Lost
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_worker_is_reported_at_once_with_its_partition() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let part: Part = ("orders".into(), 7);
        let end = tokio::spawn(supervised(
            part.clone(),
            async { panic!("header key not UTF-8") },
            tx.clone(),
        ))
        .await
        .expect("the supervisor itself does not panic");
        assert!(matches!(end, End::Lost));
        let (p, why) = rx.try_recv().expect("reported");
        assert_eq!(p, part);
        assert!(why.contains("panicked: header key not UTF-8"), "{why}");
        let end = supervised(part.clone(), async { End::HandedOver(Some(3)) }, tx.clone()).await;
        assert!(matches!(end, End::HandedOver(Some(3))));
        assert!(rx.try_recv().is_err(), "an ordinary end is no report");
        // A problem only the operator can fix stops the sink with its reason.
        let end = supervised(
            part.clone(),
            async { End::Failed("the registry refuses the credentials".into()) },
            tx,
        )
        .await;
        assert!(matches!(end, End::Lost));
        let (p, why) = rx.try_recv().expect("reported");
        assert_eq!(p, part);
        assert_eq!(why, "stopped: the registry refuses the credentials");
    }
}
