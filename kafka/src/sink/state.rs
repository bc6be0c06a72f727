//! [`Sink`]: what the run loop (`sink/mod.rs`) shares between its events, and the events
//! themselves but the assignment (`assign.rs`): starting (the consumer thread and what its
//! workers will share), a revoke, a worker that died, the shutdown, the tick (health, memory,
//! progress, `--until-idle`), and the end (every partition left handed over, the report or the
//! first failure).
//!
//! A failure never ends the loop by itself: it is kept (the first one wins) and the consumer
//! thread is asked to leave the group ([`Outcome::fail`]), which revokes every partition (each
//! handed over) and then ends the thread, which closes the loop's `control` channel.

use std::collections::HashMap;
use std::sync::mpsc as std_mpsc;
use std::sync::Arc;
use std::time::Instant;

use rdkafka::config::ClientConfig;
use rdkafka::producer::FutureProducer;
use snowpipe_streaming::StreamingIngestClient;
use tokio::sync::mpsc;

use crate::error::{err, Context, Error, Result};
use crate::ops::metrics::{Health, SinkMetrics};
use crate::rows::batch::Budget;
use crate::rows::{KafkaOffset, TopicPartition};
use crate::sink::dead_letter::DeadLetters;
use crate::sink::idle::Idle;
use crate::sink::open::Opener;
use crate::sink::report::{Progress, Report};
use crate::sink::settings::{DeadLetterTopic, Settings};
use crate::sink::stall::{Pressure, Stalls};
use crate::sink::workers::{Kit, Workers};
use crate::source::consumer::{ConsumerSetup, Control, Lags, Resets, ThreadCmd};
use crate::source::counts::SourceCounts;
use crate::source::properties::Property;

/// The sink while it runs: its inputs (rebalances, workers that died), what it opens channels
/// with, the workers of the partitions it holds, and how the run is going to end.
pub(super) struct Sink {
    /// Rebalances from the consumer thread; closed when the thread ends.
    pub(super) control: mpsc::UnboundedReceiver<Control>,
    /// Workers that panicked or failed: their partition and why.
    pub(super) died: mpsc::UnboundedReceiver<(TopicPartition, String)>,
    /// Opens an assigned partition's channel.
    pub(super) opener: Opener,
    /// The held partitions' workers and every partition's counters.
    pub(super) workers: Workers,
    /// The consumption clock and lags (`--until-idle`).
    pub(super) idle: Idle,
    /// Whether the sink is stopping, and its first failure.
    pub(super) outcome: Outcome,
    /// The `/healthz` and `/readyz` probes.
    pub(super) health: Arc<Health>,
    /// The sink's metrics.
    pub(super) metrics: SinkMetrics,
    /// The byte budget of the batches between the poll thread and the workers.
    budget: Arc<Budget>,
    /// Pauses, resumes and what librdkafka fetched (the report's `source`).
    counts: Arc<SourceCounts>,
    /// The progress lines.
    progress: Progress,
    /// Each held partition's commit clock (`--stall-after`).
    stalls: Stalls,
    /// The group gave this instance its first assignment (an empty one too): before that it
    /// is not consuming yet, merely waiting for a rebalance, and the idle clock does not run.
    joined: bool,
    /// The consumer thread.
    thread: std::thread::JoinHandle<Result<()>>,
}

/// How the run ends: whether it is stopping, and the first failure (the exit status).
pub(super) struct Outcome {
    stopping: bool,
    failure: Option<Error>,
    health: Arc<Health>,
    commands: std_mpsc::Sender<ThreadCmd>,
}

impl Outcome {
    /// Whether the consumer thread was asked to leave the group.
    pub(super) fn stopping(&self) -> bool {
        self.stopping
    }

    /// Asks the consumer thread to leave the group, handing every partition over (once), and
    /// tells the readiness probe.
    pub(super) fn stop(&mut self) {
        if !self.stopping {
            self.stopping = true;
            self.health.stopping();
            let _ = self.commands.send(ThreadCmd::Shutdown);
        }
    }

    /// Keeps `e` (unless an earlier failure was kept) and stops.
    pub(super) fn fail(&mut self, e: Error) {
        self.failure.get_or_insert(e);
        self.stop();
    }
}

/// Where messages that are not rows go: `target` with its own producer, or nowhere (skipped).
///
/// # Errors
/// When the producer cannot be made (its error without the values of `properties`).
fn dead_letters_to(
    target: Option<DeadLetterTopic>,
    consumer: &ClientConfig,
    properties: &[Property],
) -> Result<DeadLetters> {
    Ok(DeadLetters::new(match target {
        Some(target) => {
            let producer: FutureProducer = target.producer.create().map_err(|e| {
                let why = crate::source::properties::scrub(&e.to_string(), properties);
                err!(Kafka, "cannot create the dead-letter producer: {why}")
            })?;
            let refetch = crate::sink::refetch::Refetch::new(consumer, properties);
            Some((producer, target.topic, refetch))
        }
        None => None,
    }))
}

impl Sink {
    /// Starts the consumer thread (subscribed, not yet assigned anything) and makes what the
    /// workers will share.
    ///
    /// # Errors
    /// When the dead-letter producer, the value decoder or the consumer thread cannot start.
    pub(super) fn start(
        settings: Settings,
        client: StreamingIngestClient,
        health: Arc<Health>,
    ) -> Result<Self> {
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
            stall_after,
        } = settings;
        for line in warnings {
            tracing::warn!("{line}");
        }
        health.hand_over_timeout(hand_over_timeout);
        let epoch = Instant::now();
        let budget = Arc::new(Budget::new(queue_bytes));
        let metrics = SinkMetrics::new(health.released());
        let (died_tx, died) = mpsc::unbounded_channel::<(TopicPartition, String)>();
        let read_headers = rows.metadata || dead_letters.is_some();
        let dead_letters = Arc::new(dead_letters_to(
            dead_letters,
            &consumer_config,
            &properties,
        )?);
        let (control_tx, control) = mpsc::unbounded_channel();
        let (commands, command_rx) = std_mpsc::channel();
        let lags: Lags = Arc::default();
        let resets: Resets = Arc::default();
        let counts: Arc<SourceCounts> = Arc::default();
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
            metrics: metrics.clone(),
            rows,
            read_headers,
            raw_values: decoder.is_some(),
            hold: crate::source::router::hold_for(client.max_client_lag()),
            counts: Arc::clone(&counts),
        };
        let thread = std::thread::Builder::new()
            .name("kafka-poll".into())
            .spawn(move || crate::source::poll::run(setup, &command_rx))
            .context(Error::Io, "cannot start the consumer thread")?;
        let idle = Idle {
            after: until_idle,
            epoch,
            consumed_at: Arc::default(),
            lags,
            listed_topics,
            consumer: consumer_config,
            properties,
        };
        let kit = Kit {
            rows,
            decoder,
            dead_letters,
            commands: commands.clone(),
            consumed_at: Arc::clone(&idle.consumed_at),
            resets,
            epoch,
            hand_over_timeout,
        };
        Ok(Self {
            control,
            died,
            opener: Opener {
                client,
                routes,
                channels,
                database,
                schema,
                tables,
                named_pipes,
                client_side,
                migrator,
                start,
            },
            workers: Workers::new(kit, died_tx),
            idle,
            outcome: Outcome {
                stopping: false,
                failure: None,
                health: Arc::clone(&health),
                commands,
            },
            health,
            metrics,
            budget,
            counts,
            progress: Progress::new(quiet),
            stalls: Stalls::new(stall_after),
            joined: false,
            thread,
        })
    }

    /// A rebalance came: the instance has joined the group, and the idle clock starts again
    /// (newly assigned partitions may have a backlog that has not been fetched yet).
    pub(super) fn rebalanced(&mut self) {
        self.joined = true;
        self.idle.restart();
    }

    /// Partitions revoked (`lost`: the assignment was lost, nothing is flushed): their
    /// workers stopped, every one at once. Returns the next offset of each partition handed
    /// over with a committed offset, for the Kafka commit.
    pub(super) async fn revoke(
        &mut self,
        parts: Vec<TopicPartition>,
        lost: bool,
    ) -> HashMap<TopicPartition, KafkaOffset> {
        let next = self.workers.revoke(parts, lost).await;
        self.metrics.assigned(self.workers.len());
        next
    }

    /// SIGTERM (or the caller's shutdown): every partition is handed over.
    pub(super) fn shutdown(&mut self) {
        tracing::info!("stopping: handing every partition over");
        self.outcome.stop();
    }

    /// A worker panicked or failed (`why`): the sink stops, so that the partition is not left
    /// unread, and fails naming it.
    pub(super) fn died(&mut self, part: &TopicPartition, why: &str) {
        let e = err!(
            Sink,
            "the worker of partition {part} {why}: stopping this instance \
             so the partition is not left unread (its next owner resumes at the \
             committed offset)"
        );
        tracing::error!("{e}");
        self.workers.forget(part);
        self.outcome.fail(e);
    }

    /// Every 200 ms: the liveness probe, the memory gauge, stalls, `--until-idle`, the
    /// progress line.
    pub(super) async fn tick(&mut self) {
        self.health.tick();
        self.metrics.memory(self.budget.used(), self.budget.limit());
        self.check_stalls();
        if self.joined && !self.outcome.stopping {
            if let Some(idle) = self.idle.reached(&self.workers) {
                // Exit 0 means the work is done: a literal topic the broker does not have (a
                // typo) or will not describe was never read.
                if let Some(e) = self.idle.unread_topics().await {
                    tracing::error!("{e:#}");
                    self.outcome.failure.get_or_insert(e);
                } else {
                    tracing::info!(
                        ?idle,
                        lags = ?self.idle.lags.lock().map(|l| l.clone()).unwrap_or_default(),
                        "idle, read to the end and everything committed: stopping"
                    );
                }
                self.outcome.stop();
            }
        }
        let Idle { epoch, lags, .. } = &self.idle;
        self.progress
            .tick(*epoch, self.workers.stats(), lags, &self.budget);
    }

    /// Reads every held partition's commit clock (`stall.rs`) and tells `/readyz` which are
    /// stalled.
    fn check_stalls(&mut self) {
        let pressure = Pressure {
            budget_full: self.budget.used().saturating_mul(10)
                >= self.budget.limit().saturating_mul(9),
        };
        let lags = self.idle.lags.lock().map(|l| l.clone()).unwrap_or_default();
        let stalled = self.stalls.check(
            std::time::Instant::now(),
            self.workers.held(),
            &lags,
            pressure,
        );
        self.health
            .stalled(stalled.iter().map(ToString::to_string).collect());
    }

    /// The consumer thread ended (the `control` channel closed): the workers left are handed
    /// over, and the run ends with its first failure, else its report.
    ///
    /// # Errors
    /// The first failure: a channel that could not be opened, a worker that died, the
    /// consumer thread's own, or `--until-idle` with a topic never read.
    pub(super) async fn finish(mut self) -> Result<Report> {
        self.health.consumer_ended();
        let ended = self
            .thread
            .join()
            .map_err(|_| err!(Sink, "the consumer thread panicked"))?;
        self.workers.stop_all().await;
        if let Err(e) = ended {
            self.outcome.failure.get_or_insert(e);
        }
        if let Some(e) = self.outcome.failure {
            return Err(e);
        }
        Ok(Report::new(self.workers.stats()).with_source(self.counts.json()))
    }
}
