//! The sink: the consumer thread, one worker per assigned partition, and the hand-over between
//! them, until SIGTERM, `--until-idle`, or a failure.
//!
//! ```text
//!  poll thread (consumer.rs)            async side (here)                  per partition (partition.rs)
//!  rebalance: assign ──Control::Assign──▶ open <prefix>_<topic>_<p>,         Worker: messages → rows →
//!      ◀── start offsets (committed+1) ── spawn worker                       append (offset = token)
//!  rebalance: revoke ──Control::Revoke──▶ stop workers: drain, hand_over ──▶ flush, wait commit, close
//!      ◀── next offsets (Kafka commit) ──
//!  messages ──────── bounded mpsc per partition ─────────────────────────▶
//!           ◀──────── ThreadCmd::{Commit, Rejoin, Shutdown} ──────────────
//! ```

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use rdkafka::producer::FutureProducer;
use rdkafka::Offset;
use snowpipe_streaming::StreamingIngestClient;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::{SinkArgs, Start};
use crate::consumer::{self, ConsumerSetup, Control, Lags, Part, Resets, ThreadCmd};
use crate::dead_letter::DeadLetters;
use crate::partition::{End, PartitionStats, Worker};
use crate::record::RowOptions;
use crate::report::{Progress, Report};

/// A row must fit in one request, with room for the request's other bytes.
const MAX_ROW_BYTES: usize = 4_000_000 - 4_096;

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
    args: SinkArgs,
    client: StreamingIngestClient,
    shutdown: impl std::future::Future<Output = ()>,
) -> Result<Report> {
    args.validate()?;
    let epoch = Instant::now();
    let dead_letters = Arc::new(DeadLetters::new(match &args.dead_letter_topic {
        Some(topic) => {
            let producer: FutureProducer = args
                .producer_config()
                .create()
                .map_err(|e| anyhow!("cannot create the dead-letter producer: {e}"))?;
            Some((producer, topic.clone()))
        }
        None => None,
    }));
    let (control_tx, mut control) = mpsc::unbounded_channel();
    let (commands, command_rx) = std_mpsc::channel();
    let lags: Lags = Arc::default();
    let resets: Resets = Arc::default();
    let setup = ConsumerSetup {
        config: args.consumer_config(),
        topics: args.topics.clone(),
        control: control_tx,
        hand_over_timeout: args.hand_over_timeout,
        lags: Arc::clone(&lags),
        resets: Arc::clone(&resets),
    };
    let thread = std::thread::Builder::new()
        .name("kafka-poll".into())
        .spawn(move || consumer::run(setup, &command_rx))
        .context("cannot start the consumer thread")?;

    let rows = RowOptions {
        metadata: args.metadata,
        max_row_bytes: MAX_ROW_BYTES,
    };
    let consumed_at = Arc::new(AtomicU64::new(0));
    let mut stats: BTreeMap<Part, Arc<PartitionStats>> = BTreeMap::new();
    let mut running: HashMap<Part, Running> = HashMap::new();
    let mut progress = Progress::new(args.quiet);
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
                        let mut starts = HashMap::new();
                        for (part, messages) in parts {
                            let opened = client
                                .pipe(&args.database, &args.schema, args.pipe_of(&part.0)).open_channel(&args.channel_name(&part.0, part.1))
                                .await;
                            let channel = match opened {
                                Ok(c) => c,
                                Err(e) => {
                                    let e = anyhow!(e).context(format!(
                                        "cannot open the channel of {}/{} on {}.{}.{}",
                                        part.0, part.1, args.database, args.schema,
                                        args.pipe_of(&part.0)
                                    ));
                                    failure.get_or_insert(e);
                                    let _ = commands.send(ThreadCmd::Shutdown);
                                    continue;
                                }
                            };
                            let start = match channel.latest_committed_offset_token().and_then(|t| t.as_u64()) {
                                Some(c) => Offset::Offset(i64::try_from(c).unwrap_or(i64::MAX - 1) + 1),
                                None => match args.start {
                                    Start::Earliest => Offset::Beginning,
                                    Start::Latest => Offset::End,
                                },
                            };
                            starts.insert(part.clone(), start);
                            let s = Arc::clone(stats.entry(part.clone()).or_default());
                            let (stop, stop_rx) = oneshot::channel();
                            let worker = Worker {
                                part: part.clone(),
                                channel,
                                messages,
                                rows,
                                dead_letters: Arc::clone(&dead_letters),
                                stats: s,
                                commands: commands.clone(),
                                consumed_at: Arc::clone(&consumed_at),
                                resets: Arc::clone(&resets),
                                epoch,
                                hand_over_timeout: args.hand_over_timeout,
                            };
                            let task = tokio::spawn(worker.run(stop_rx));
                            running.insert(part, Running { stop, task });
                        }
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
                        let _ = reply.send(next);
                    }
                }
            }
            () = &mut shutdown, if !stopping => {
                tracing::info!("stopping: handing every partition over");
                stopping = true;
                let _ = commands.send(ThreadCmd::Shutdown);
            }
            _ = tick.tick() => {
                if let Some(idle) = args.until_idle {
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
                        tracing::info!(
                            ?idle,
                            lags = ?lags.lock().map(|l| l.clone()).unwrap_or_default(),
                            "idle, read to the end and everything committed: stopping"
                        );
                        stopping = true;
                        let _ = commands.send(ThreadCmd::Shutdown);
                    }
                }
                progress.tick(epoch, &stats, &lags);
            }
        }
    }
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
