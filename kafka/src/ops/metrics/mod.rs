//! What an operator's dashboard and probes read: the sink's metrics (through the `metrics`
//! facade, like the SDK's own, so one Prometheus scrape has both) and `--metrics-addr
//! HOST:PORT`, a small HTTP server of `/metrics` (Prometheus text), `/healthz` and `/readyz`.
//!
//! Names and labels (the SDK's `snowpipe_*` metrics come with them, `docs/METRICS.md`):
//!
//! | metric | type | labels | what |
//! | --- | --- | --- | --- |
//! | `snowpipe_kafka_rows_appended_total` | counter | topic, partition | rows appended by this instance |
//! | `snowpipe_kafka_bytes_appended_total` | counter | topic, partition | their bytes (NDJSON, metadata included) |
//! | `snowpipe_kafka_dead_letters_total` | counter | topic, partition | messages that could not be rows |
//! | `snowpipe_kafka_row_errors_total` | counter | topic, partition | rows the server rejected |
//! | `snowpipe_kafka_lost_to_retention_total` | counter | topic, partition | offsets deleted by the broker before they landed |
//! | `snowpipe_kafka_committed_offset` | gauge | topic, partition | the offset Snowflake committed last |
//! | `snowpipe_kafka_consumer_lag` | gauge | topic, partition | messages behind the partition's end (librdkafka's statistics, every second) |
//! | `snowpipe_kafka_partition_stalled` | gauge | topic, partition | 1 while the partition is stalled (`--stall-after`: no commit while work waits), else 0 |
//! | `snowpipe_kafka_seconds_since_commit` | gauge | topic, partition | seconds since the partition's committed offset last moved (or it was assigned here) |
//! | `snowpipe_kafka_commit_latency_seconds` | histogram | topic | from an append to its commit being seen |
//! | `snowpipe_kafka_fenced_channels_total` | counter | topic | channels another writer took over (this instance stopped writing them) |
//! | `snowpipe_kafka_rebalances_total` | counter | kind (`assign`, `revoke`) | rebalance callbacks |
//! | `snowpipe_kafka_assigned_partitions` | gauge | | partitions held now |
//! | `snowpipe_kafka_paused_partitions` | gauge | | partitions paused for memory now |
//! | `snowpipe_kafka_memory_used_bytes` | gauge | | bytes of messages between librdkafka and the SDK |
//! | `snowpipe_kafka_memory_budget_bytes` | gauge | | the limit of that (a share of `--memory-budget`) |
//! | `snowpipe_kafka_start_time_seconds` | gauge | | when this process's sink started (Unix seconds): `changes()` over it counts restarts |
//! | `snowpipe_kafka_folded_topics` | gauge | | topics past [`MAX_TOPICS`], counted under `topic="_other"` ([`Labels`]) |
//!
//! A partition no longer held here (handed over, revoked, lost) has its gauges
//! (`snowpipe_kafka_consumer_lag`, `snowpipe_kafka_committed_offset` and the two stall
//! gauges) left out of
//! `/metrics` until it is held again: its next owner reports them, so a sum or a `max by
//! (topic, partition)` over the group counts each partition once. (The `metrics` facade
//! cannot remove a series, so `/metrics` filters them; its counters stay, totals of what this
//! instance did.)
//!
//! `/healthz` answers 200 while the sink's loop is turning (it ticks every 200 ms; 503 once
//! it has not for twice the hand-over timeout plus 30 s, since a rebalance's hand-over holds
//! it) and the consumer thread runs. `/readyz` answers 200 once the instance
//! has joined its group and every partition it was assigned has its channel open, and 503
//! before, while a rebalance opens channels, while any partition is stalled (listing them), and
//! once it is stopping. Both answer a line of text saying why.

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use metrics::{Counter, Gauge, Histogram};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use snowpipe_cli_support::probe_server::{self, Answer, LoopClock, Stalled};

use crate::error::{Context, Error, Result};
use crate::rows::TopicPartition;

/// One partition's consumer lag, from librdkafka's statistics (`source::consumer::Lags`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PartitionLag {
    /// Messages behind the partition's end (-1: unknown).
    pub lag: i64,
    /// The high watermark (-1: unknown).
    pub high: i64,
}

/// Histogram buckets of the commit latency (seconds).
const LATENCY_BUCKETS: &[f64] = &[0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0];

/// The most topics that get series of their own (see [`Labels`]).
pub(crate) const MAX_TOPICS: usize = 200;

/// The most partitions that get series of their own (see [`Labels`]).
pub(crate) const MAX_PARTITIONS: usize = 2_000;

/// The label value of topics and partitions past the bounds.
pub(crate) const FOLDED: &str = "_other";

/// The label values this process has handed out, bounded: a regex subscription picks up
/// topics that others create, and a series per topic and partition would grow without end
/// (each series lives as long as the process). The first [`MAX_TOPICS`] topics and
/// [`MAX_PARTITIONS`] partitions seen get their own series; later ones are counted under
/// `topic="_other"` (and `partition="_other"`), their per-partition gauges are not reported,
/// and `snowpipe_kafka_folded_topics` says how many topics were folded.
#[derive(Debug, Default)]
pub(crate) struct Labels {
    seen: Mutex<Seen>,
}

/// What [`Labels`] has handed out.
#[derive(Debug, Default)]
struct Seen {
    /// Topics with series of their own.
    topics: HashSet<String>,
    /// Partitions with series of their own.
    partitions: HashSet<TopicPartition>,
    /// Topics folded, kept only to count each once, up to 10,000 (then the count stops: "at
    /// least").
    folded: HashSet<String>,
}

impl Seen {
    /// Whether `topic` has series of its own (taking one of the `max_topics` if free).
    fn own_topic(&mut self, topic: &str, max_topics: usize) -> bool {
        if self.topics.contains(topic) {
            return true;
        }
        if self.topics.len() < max_topics {
            self.topics.insert(topic.to_owned());
            return true;
        }
        if self.folded.len() < 10_000 && self.folded.insert(topic.to_owned()) {
            metrics::gauge!("snowpipe_kafka_folded_topics").set(self.folded.len() as f64);
        }
        false
    }
}

impl Labels {
    /// The process's labels (the `metrics` recorder is process-wide too).
    pub(crate) fn global() -> &'static Labels {
        static LABELS: std::sync::OnceLock<Labels> = std::sync::OnceLock::new();
        LABELS.get_or_init(Labels::default)
    }

    /// The `topic` label of `topic`: its name, or [`FOLDED`].
    pub(crate) fn topic(&self, topic: &str) -> String {
        self.topic_with(topic, MAX_TOPICS)
    }

    /// The `topic` and `partition` labels of `part`, or `None` when it is folded.
    pub(crate) fn partition(&self, part: &TopicPartition) -> Option<(String, String)> {
        self.partition_with(part, MAX_TOPICS, MAX_PARTITIONS)
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, Seen> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn topic_with(&self, topic: &str, max_topics: usize) -> String {
        if self.seen().own_topic(topic, max_topics) {
            topic.to_owned()
        } else {
            FOLDED.to_owned()
        }
    }

    fn partition_with(
        &self,
        part: &TopicPartition,
        max_topics: usize,
        max_partitions: usize,
    ) -> Option<(String, String)> {
        let mut seen = self.seen();
        if !seen.own_topic(&part.topic, max_topics) {
            return None;
        }
        if seen.partitions.contains(part) || seen.partitions.len() < max_partitions {
            seen.partitions.insert(part.clone());
            return Some((part.topic.to_string(), part.partition.to_string()));
        }
        None
    }
}

/// One partition's metrics, registered when its worker starts.
#[derive(Clone)]
pub(crate) struct PartitionMetrics {
    /// Rows appended.
    pub rows: Counter,
    /// Bytes appended.
    pub bytes: Counter,
    /// Dead letters.
    pub dead_letters: Counter,
    /// Rows rejected by the server.
    pub row_errors: Counter,
    /// Offsets lost to retention.
    pub lost_to_retention: Counter,
    /// The committed offset.
    pub committed: Gauge,
    /// Append → commit.
    pub commit_latency: Histogram,
    /// Channels fenced.
    pub fenced: Counter,
}

impl PartitionMetrics {
    /// The metrics of `part`.
    /// Past the bounds of [`Labels`], its counters are the folded ones and its gauge none.
    pub(crate) fn new(part: &TopicPartition) -> Self {
        let own = Labels::global().partition(part);
        let labels = match &own {
            Some((topic, partition)) => {
                [("topic", topic.clone()), ("partition", partition.clone())]
            }
            None => [
                ("topic", FOLDED.to_owned()),
                ("partition", FOLDED.to_owned()),
            ],
        };
        let topic = [("topic", Labels::global().topic(&part.topic))];
        Self {
            rows: metrics::counter!("snowpipe_kafka_rows_appended_total", &labels),
            bytes: metrics::counter!("snowpipe_kafka_bytes_appended_total", &labels),
            dead_letters: metrics::counter!("snowpipe_kafka_dead_letters_total", &labels),
            row_errors: metrics::counter!("snowpipe_kafka_row_errors_total", &labels),
            lost_to_retention: metrics::counter!("snowpipe_kafka_lost_to_retention_total", &labels),
            committed: match own {
                Some(_) => metrics::gauge!("snowpipe_kafka_committed_offset", &labels),
                None => Gauge::noop(),
            },
            commit_latency: metrics::histogram!("snowpipe_kafka_commit_latency_seconds", &topic),
            fenced: metrics::counter!("snowpipe_kafka_fenced_channels_total", &topic),
        }
    }
}

/// Partitions once held here and not now: their gauges are left out of `/metrics`.
pub(crate) type Released = Arc<Mutex<HashSet<TopicPartition>>>;

/// The sink-wide metrics (cheap to clone; the poll thread and the async side share them).
#[derive(Clone)]
pub(crate) struct SinkMetrics {
    assigned: Gauge,
    paused: Gauge,
    memory_used: Gauge,
    memory_budget: Gauge,
    released: Released,
}

impl Default for SinkMetrics {
    fn default() -> Self {
        Self::new(Released::default())
    }
}

impl SinkMetrics {
    /// The metrics, recording released partitions in `released` (the `/metrics` server's,
    /// [`Health::released`]).
    pub(crate) fn new(released: Released) -> Self {
        let started = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("snowpipe_kafka_start_time_seconds").set(started);
        Self {
            assigned: metrics::gauge!("snowpipe_kafka_assigned_partitions"),
            paused: metrics::gauge!("snowpipe_kafka_paused_partitions"),
            memory_used: metrics::gauge!("snowpipe_kafka_memory_used_bytes"),
            memory_budget: metrics::gauge!("snowpipe_kafka_memory_budget_bytes"),
            released,
        }
    }

    fn released(&self) -> std::sync::MutexGuard<'_, HashSet<TopicPartition>> {
        self.released.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `part` is held here (again): its gauges are shown.
    pub(crate) fn hold(&self, part: &TopicPartition) {
        self.released().remove(part);
    }

    /// A rebalance callback of `kind` (`assign`, `revoke`).
    pub(crate) fn rebalance(&self, kind: &'static str) {
        metrics::counter!("snowpipe_kafka_rebalances_total", "kind" => kind).increment(1);
    }

    /// The consumer lag of every partition in librdkafka's latest statistics.
    pub(crate) fn lags(&self, lags: &std::collections::HashMap<TopicPartition, PartitionLag>) {
        for (part, lag) in lags {
            if lag.lag >= 0 {
                if let Some((topic, partition)) = Labels::global().partition(part) {
                    metrics::gauge!(
                        "snowpipe_kafka_consumer_lag",
                        "topic" => topic,
                        "partition" => partition
                    )
                    .set(lag.lag as f64);
                }
            }
        }
    }

    /// `part` is no longer assigned here: its gauges leave `/metrics` (its next owner
    /// reports them) until it is held again. The lag is set to 0 as well, for an exporter that
    /// does not filter.
    pub(crate) fn forget(&self, part: &TopicPartition) {
        let Some((topic, partition)) = Labels::global().partition(part) else {
            return;
        };
        self.released().insert(part.clone());
        metrics::gauge!(
            "snowpipe_kafka_consumer_lag",
            "topic" => topic,
            "partition" => partition
        )
        .set(0.0);
    }

    /// Partitions paused for memory now.
    pub(crate) fn paused(&self, n: usize) {
        self.paused.set(n as f64);
    }

    /// Partitions held now.
    pub(crate) fn assigned(&self, n: usize) {
        self.assigned.set(n as f64);
    }

    /// Bytes in use and the limit.
    pub(crate) fn memory(&self, used: usize, limit: usize) {
        self.memory_used.set(used as f64);
        self.memory_budget.set(limit as f64);
    }
}

/// What the probes answer from, written by the sink's loop.
#[derive(Debug)]
pub struct Health {
    clock: LoopClock,
    joined: AtomicBool,
    opening: AtomicBool,
    stopping: AtomicBool,
    consumer_alive: AtomicBool,
    released: Released,
    /// The stalled partitions, as `/readyz` lists them (`sink/stall.rs`).
    stalled: Stalled,
}

impl Default for Health {
    fn default() -> Self {
        Self {
            clock: LoopClock::new(Duration::from_secs(90)),
            joined: AtomicBool::new(false),
            opening: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            consumer_alive: AtomicBool::new(true),
            released: Released::default(),
            stalled: Stalled::default(),
        }
    }
}

impl Health {
    /// The partitions released here, which `/metrics` leaves out of its per-partition
    /// gauges (shared with the sink's `SinkMetrics`).
    pub fn released(&self) -> Released {
        Arc::clone(&self.released)
    }

    /// The sink's loop turned.
    pub fn tick(&self) {
        self.clock.tick();
    }

    /// A hand-over may hold the sink's loop for `timeout`: the loop counts as stuck only after
    /// twice that and 30 s more.
    pub fn hand_over_timeout(&self, timeout: Duration) {
        self.clock
            .stale_after(timeout.saturating_mul(2) + Duration::from_secs(30));
    }

    /// The group gave this instance its first assignment.
    pub fn joined(&self) {
        self.joined.store(true, Ordering::Relaxed);
    }

    /// Channels are being opened for an assignment (`true`), or all are open (`false`).
    pub fn opening(&self, opening: bool) {
        self.opening.store(opening, Ordering::Relaxed);
    }

    /// The instance is handing everything over and stopping.
    pub fn stopping(&self) {
        self.stopping.store(true, Ordering::Relaxed);
    }

    /// The consumer thread ended.
    pub fn consumer_ended(&self) {
        self.consumer_alive.store(false, Ordering::Relaxed);
    }

    /// `/healthz`: `Ok(why)` or `Err(why)`.
    pub fn live(&self) -> Result<&'static str, String> {
        if !self.consumer_alive.load(Ordering::Relaxed) {
            return Err("the Kafka consumer thread has ended".into());
        }
        match self.clock.stuck_for() {
            Some(since) => Err(format!("the sink's loop has not turned for {since:?}")),
            None => Ok("ok"),
        }
    }

    /// The partitions stalled now, each as `/readyz` names it (none: an empty list).
    pub fn stalled(&self, partitions: Vec<String>) {
        self.stalled.set(partitions);
    }

    /// `/readyz`: `Ok(why)` or `Err(why)`.
    pub fn ready(&self) -> Result<&'static str, String> {
        self.live()
            .map_err(|_| "not live (see /healthz)".to_owned())?;
        if self.stopping.load(Ordering::Relaxed) {
            return Err("stopping: handing partitions over".into());
        } else if !self.joined.load(Ordering::Relaxed) {
            return Err("waiting for the consumer group's first assignment".into());
        } else if self.opening.load(Ordering::Relaxed) {
            return Err("opening the channels of an assignment".into());
        }
        self.stalled.ready()
    }
}

/// Installs the Prometheus recorder for this process (the `metrics` facade's global one).
///
/// # Errors
/// When a recorder is already installed.
pub fn install() -> Result<PrometheusHandle> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(
            metrics_exporter_prometheus::Matcher::Full(
                "snowpipe_kafka_commit_latency_seconds".into(),
            ),
            LATENCY_BUCKETS,
        )
        .context(Error::Sink, "histogram buckets")?
        .install_recorder()
        .context(Error::Sink, "cannot install the metrics recorder")
}

/// How long a client may take to send a request's head (the shared server's,
/// `snowpipe_cli_support::probe_server`, which also caps connections, head bytes and a
/// connection's life).
#[cfg(test)]
const HEADER_TIMEOUT: Duration = snowpipe_cli_support::probe_server::HEAD_TIMEOUT;

/// Binds `addr` and serves `/metrics`, `/healthz` and `/readyz` until the returned task is
/// aborted (`snowpipe_cli_support::probe_server`). Returns the bound address (port 0 picks a
/// free one).
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn serve(
    addr: SocketAddr,
    handle: PrometheusHandle,
    health: Arc<Health>,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    probe_server::serve(addr, move |path: &str| answer(path, &handle, &health))
        .await
        .with_context(Error::Io, || {
            format!("--metrics-addr {addr}: cannot listen")
        })
}

/// The per-partition gauges whose series name a partition not held here.
const PARTITION_GAUGES: [&str; 4] = [
    "snowpipe_kafka_consumer_lag{",
    "snowpipe_kafka_committed_offset{",
    "snowpipe_kafka_partition_stalled{",
    "snowpipe_kafka_seconds_since_commit{",
];

/// `text` (Prometheus exposition) without the lines of [`PARTITION_GAUGES`] whose `topic`
/// and `partition` labels name a partition in `released`.
fn without_released(text: &str, released: &HashSet<TopicPartition>) -> String {
    if released.is_empty() {
        return text.to_owned();
    }
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        let drop = PARTITION_GAUGES
            .iter()
            .find_map(|g| line.strip_prefix(g))
            .and_then(labels)
            .is_some_and(|(topic, partition)| {
                partition
                    .parse::<i32>()
                    .is_ok_and(|p| released.contains(&TopicPartition::new(topic, p)))
            });
        if !drop {
            out.push_str(line);
        }
    }
    out
}

/// The `topic` and `partition` label values of a series' labels (`rest` starts after its
/// `{`), unescaped as the exposition format escapes them (`\\`, `\"`, `\n`).
fn labels(rest: &str) -> Option<(String, String)> {
    let (mut topic, mut partition) = (None, None);
    let mut chars = rest.chars();
    loop {
        let name: String = chars.by_ref().take_while(|&c| c != '=').collect();
        let name = name.trim_start_matches(',').trim();
        if chars.next()? != '"' {
            return None;
        }
        let mut value = String::new();
        loop {
            match chars.next()? {
                '\\' => match chars.next()? {
                    'n' => value.push('\n'),
                    c => value.push(c),
                },
                '"' => break,
                c => value.push(c),
            }
        }
        match name {
            "topic" => topic = Some(value),
            "partition" => partition = Some(value),
            _ => {}
        }
        match chars.next()? {
            ',' => {}
            '}' => return Some((topic?, partition?)),
            _ => return None,
        }
    }
}

fn answer(path: &str, handle: &PrometheusHandle, health: &Health) -> Answer {
    match path {
        "/metrics" => {
            let released = health
                .released
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            Answer::metrics(without_released(&handle.render(), &released))
        }
        "/healthz" => Answer::probe(health.live()),
        "/readyz" => Answer::probe(health.ready()),
        _ => Answer::not_found(),
    }
}

#[cfg(test)]
mod tests;
