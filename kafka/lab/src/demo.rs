//! `snowpipe-kafka-lab demo`, and the [`Lab`] it runs in (the rebalance tests use it too): a Kafka
//! cluster (librdkafka's mock cluster: the real broker protocol, consumer groups included,
//! listening on loopback so separate processes join it), the embedded emulator with a table
//! for the rows, and sink instances started as separate processes of this binary.
//!
//! The demo produces keyed JSON events (and a few messages that are not JSON) while three
//! instances share the group; it SIGKILLs one, adds another, waits until the rest are idle
//! and everything is committed, then reconciles every partition: produced, landed, lost,
//! duplicated, dead-lettered. It exits 0 only when nothing was lost or duplicated.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};
use snowpipe_emulator::{Emulator, EmulatorConfig};

use snowpipe_kafka::SOURCE_HEADERS;

/// Database, schema and table of the lab.
pub const DATABASE: &str = "DEMO";
/// See [`DATABASE`].
pub const SCHEMA: &str = "KAFKA";
/// The table; its default pipe is `EVENTS-STREAMING`.
pub const TABLE: &str = "EVENTS";
/// The pipe the instances write through.
pub const PIPE: &str = "EVENTS-STREAMING";

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DEMO;
CREATE SCHEMA IF NOT EXISTS DEMO.KAFKA;
CREATE OR REPLACE TABLE DEMO.KAFKA.EVENTS (ID NUMBER, KIND VARCHAR, AMOUNT NUMBER, RECORD_METADATA VARIANT) ERROR_LOGGING = TRUE;
";

/// A Kafka cluster, an emulator and a key: what sink instances need.
pub struct Lab {
    /// The mock cluster; `None` when the lab uses brokers of their own process
    /// ([`start_on`](Self::start_on)).
    cluster: Option<MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
    brokers: String,
    emulator: Emulator,
    key: PathBuf,
    /// Where instances write their stderr (`None`: inherit).
    pub logs: Option<PathBuf>,
    _dir: TempDir,
}

/// A directory removed when dropped.
struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Lab {
    /// Starts a 3-broker cluster with `topics` (name, partitions), and the emulator.
    ///
    /// # Errors
    /// When the cluster, a topic, the key or the emulator cannot be made.
    pub async fn start(topics: &[(&str, i32)], commit_delay: Duration) -> Result<Self> {
        Self::start_with(
            topics,
            EmulatorConfig::for_tests().with_commit_delay(commit_delay),
        )
        .await
    }

    /// As [`start`](Self::start), with the emulator configured by `config` (the lab adds its
    /// table and key).
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub async fn start_with(topics: &[(&str, i32)], config: EmulatorConfig) -> Result<Self> {
        let cluster = MockCluster::new(3).context("cannot start the mock Kafka cluster")?;
        for (topic, partitions) in topics {
            cluster
                .create_topic(topic, *partitions, 1)
                .with_context(|| format!("cannot create topic {topic}"))?;
        }
        let brokers = cluster.bootstrap_servers();
        Self::with_emulator(Some(cluster), brokers, config).await
    }

    /// As [`start_with`](Self::start_with), on the Kafka-protocol brokers at `brokers` (a
    /// broker in its own process, e.g. for the bench) instead of the mock cluster: `topics` are
    /// created there with the Admin API (one replica each).
    ///
    /// # Errors
    /// When a topic cannot be created (one that exists already is an error too: its old
    /// messages would be read), or the key or the emulator cannot be made.
    pub async fn start_on(
        brokers: &str,
        topics: &[(&str, i32)],
        config: EmulatorConfig,
    ) -> Result<Self> {
        let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
            .set("bootstrap.servers", brokers)
            .create()
            .context("cannot create an admin client")?;
        let new: Vec<NewTopic<'_>> = topics
            .iter()
            .map(|(t, p)| NewTopic::new(t, *p, TopicReplication::Fixed(1)))
            .collect();
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        for result in admin.create_topics(&new, &options).await? {
            result.map_err(|(topic, e)| anyhow::anyhow!("cannot create topic {topic}: {e}"))?;
        }
        Self::with_emulator(None, brokers.to_owned(), config).await
    }

    /// The lab on `brokers` (the mock `cluster`'s, or of their own process): the emulator
    /// configured by `config` with the lab's table, a key, a directory.
    async fn with_emulator(
        cluster: Option<MockCluster<'static, rdkafka::producer::DefaultProducerContext>>,
        brokers: String,
        config: EmulatorConfig,
    ) -> Result<Self> {
        let dir = std::env::temp_dir().join(format!(
            "snowpipe-kafka-{}-{}",
            std::process::id(),
            rand::random::<u32>()
        ));
        std::fs::create_dir_all(&dir)?;
        let dir = TempDir(dir);
        let mut config = config;
        if config.ca_out.is_none() && !matches!(config.tls, snowpipe_emulator::TlsMode::Off) {
            // Instances trust it through SSL_CERT_FILE (`instance`).
            config.ca_out = Some(dir.0.join("ca.pem"));
        }
        let (emulator, pair) = Emulator::start_with_new_key(config.with_ddl(DDL))
            .await
            .context("cannot start the emulator")?;
        let key = dir.0.join("key.p8");
        snowpipe_emulator::write_private_key(&key, pair.private_key_pem())?;
        Ok(Self {
            cluster,
            brokers,
            emulator,
            key,
            logs: None,
            _dir: dir,
        })
    }

    /// Creates a topic while the lab runs (its partitions join subscriptions that name it).
    ///
    /// # Errors
    /// When the mock cluster refuses it, or the lab has no mock cluster
    /// ([`start_on`](Self::start_on)).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<()> {
        self.cluster
            .as_ref()
            .context("the lab's brokers are not the mock cluster")?
            .create_topic(topic, partitions, 1)
            .with_context(|| format!("cannot create topic {topic}"))
    }

    /// The cluster's bootstrap servers.
    pub fn brokers(&self) -> String {
        self.brokers.clone()
    }

    /// The private key (PKCS#8 PEM file) the emulator accepts.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// A directory removed with the lab.
    pub fn dir(&self) -> &Path {
        &self._dir.0
    }

    /// The emulator.
    pub fn emulator(&self) -> &Emulator {
        &self.emulator
    }

    /// A producer to the cluster.
    ///
    /// # Errors
    /// When librdkafka refuses the configuration.
    pub fn producer(&self) -> Result<FutureProducer> {
        ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("enable.idempotence", "true")
            .set("linger.ms", "5")
            .create()
            .context("cannot create a producer")
    }

    /// The command of a sink instance of `group` on `topic` (`bin`: this binary), with the
    /// lab's connection; add options and spawn it.
    pub fn instance(&self, bin: &Path, topic: &str, group: &str) -> Command {
        let mut cmd = self.instance_without_metadata(bin, topic, group);
        cmd.arg("--metadata");
        cmd
    }

    /// As [`instance`](Self::instance), without `--metadata` (the rows are the messages'
    /// values alone).
    pub fn instance_without_metadata(&self, bin: &Path, topic: &str, group: &str) -> Command {
        let mut cmd = self.instance_of(bin, group);
        cmd.args(["--topic", topic, "--pipe", PIPE]);
        cmd
    }

    /// As [`instance_without_metadata`](Self::instance_without_metadata), without `--topic`
    /// and `--pipe`: add how it finds topics and their pipes.
    pub fn instance_of(&self, bin: &Path, group: &str) -> Command {
        let mut cmd = Command::new(bin);
        cmd.args(["--brokers", &self.brokers(), "--group", group])
            .args(["--database", DATABASE, "--schema", SCHEMA])
            .arg("--quiet")
            .args([
                "-X",
                "session.timeout.ms=6000",
                "-X",
                "heartbeat.interval.ms=500",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        self.connect(&mut cmd);
        match &self.logs {
            Some(path) => match std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
            {
                Ok(f) => cmd.stderr(f),
                Err(_) => cmd.stderr(Stdio::inherit()),
            },
            None => cmd.stderr(Stdio::inherit()),
        };
        cmd
    }

    /// Gives `cmd` the lab's Snowflake connection: `SNOWFLAKE_*` for the emulator with the
    /// lab's key (no `SNOWFLAKE_PRIVATE_KEY` inherited), and the emulator's CA in
    /// `SSL_CERT_FILE` when it serves TLS.
    pub fn connect<'c>(&self, cmd: &'c mut Command) -> &'c mut Command {
        cmd.env("SNOWFLAKE_URL", self.emulator.url())
            .env("SNOWFLAKE_ACCOUNT", "DEMO")
            .env("SNOWFLAKE_USER", "KAFKA")
            .env("SNOWFLAKE_PRIVATE_KEY_FILE", &self.key)
            .env_remove("SNOWFLAKE_PRIVATE_KEY");
        if let Some(ca) = self.emulator.ca_path() {
            cmd.env("SSL_CERT_FILE", ca);
        }
        cmd
    }

    /// `(ID, partition, offset)` of every row in the table.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub fn landed(&self) -> Result<Vec<(i64, i32, i64)>> {
        let rows = self
            .emulator
            .query(&format!(
                r#"SELECT ID, RECORD_METADATA FROM "{DATABASE}.{SCHEMA}.{TABLE}""#
            ))
            .context("cannot read the table")?;
        rows.iter()
            .map(|r| {
                let id = r[0].as_i64().context("ID")?;
                let meta: serde_json::Value = match &r[1] {
                    serde_json::Value::String(s) => serde_json::from_str(s)?,
                    v => v.clone(),
                };
                let p = meta["partition"]
                    .as_i64()
                    .context("RECORD_METADATA.partition")?;
                let o = meta["offset"].as_i64().context("RECORD_METADATA.offset")?;
                Ok((id, i32::try_from(p)?, o))
            })
            .collect()
    }

    /// `(topic, partition, offset)` of every row in the table, from its `RECORD_METADATA`.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub fn landed_by_topic(&self) -> Result<Vec<(String, i32, i64)>> {
        let rows = self
            .emulator
            .query(&format!(
                r#"SELECT RECORD_METADATA FROM "{DATABASE}.{SCHEMA}.{TABLE}""#
            ))
            .context("cannot read the table")?;
        rows.iter()
            .map(|r| {
                let meta: serde_json::Value = match &r[0] {
                    serde_json::Value::String(s) => serde_json::from_str(s)?,
                    v => v.clone(),
                };
                let t = meta["topic"].as_str().context("RECORD_METADATA.topic")?;
                let p = meta["partition"]
                    .as_i64()
                    .context("RECORD_METADATA.partition")?;
                let o = meta["offset"].as_i64().context("RECORD_METADATA.offset")?;
                Ok((t.to_owned(), i32::try_from(p)?, o))
            })
            .collect()
    }

    /// `(partition, offset)` of every row in the table, from its `RECORD_METADATA`.
    ///
    /// # Errors
    /// When the table cannot be read.
    pub fn landed_offsets(&self) -> Result<Vec<(i32, i64)>> {
        Ok(self.landed()?.into_iter().map(|(_, p, o)| (p, o)).collect())
    }

    /// `(partition, offset)` of every message on `topic` that names its source with the
    /// dead-letter headers (read from the beginning until `idle` passes without a message).
    ///
    /// # Errors
    /// When the consumer cannot be made.
    pub fn dead_letters(&self, topic: &str, idle: Duration) -> Result<Vec<(i32, i64)>> {
        let mut out = Vec::new();
        for headers in self.headers_on(topic, idle)? {
            let number = |name: &str| headers.get(name).and_then(|v| v.parse::<i64>().ok());
            if let (Some(p), Some(o)) = (number(SOURCE_HEADERS[1]), number(SOURCE_HEADERS[2])) {
                out.push((i32::try_from(p)?, o));
            }
        }
        Ok(out)
    }

    /// The headers of every message on `topic`, read from the beginning of each partition
    /// until `idle` passes without a message: per message, name → value as text (the first
    /// value of a name; a header without a value is left out).
    ///
    /// # Errors
    /// When the consumer cannot be made or the topic's partitions cannot be listed.
    pub fn headers_on(&self, topic: &str, idle: Duration) -> Result<Vec<HashMap<String, String>>> {
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.brokers())
            .set("group.id", format!("reader-{}", rand::random::<u32>()))
            .set("enable.auto.commit", "false")
            .create()?;
        // Every partition from the start, without joining a group (no rebalance to wait for).
        let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
        let mut all = TopicPartitionList::new();
        for t in metadata.topics() {
            for p in t.partitions() {
                all.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            }
        }
        consumer.assign(&all)?;
        let mut out = Vec::new();
        let mut last = Instant::now();
        while last.elapsed() < idle {
            if let Some(Ok(m)) = consumer.poll(Duration::from_millis(100)) {
                last = Instant::now();
                let mut headers = HashMap::new();
                for h in m.headers().iter().flat_map(|h| h.iter()) {
                    if let Some(v) = h.value {
                        headers
                            .entry(h.key.to_owned())
                            .or_insert_with(|| String::from_utf8_lossy(v).into_owned());
                    }
                }
                out.push(headers);
            }
        }
        Ok(out)
    }
}

/// What was produced: `id → (partition, offset)` for events, `(partition, offset)` of the
/// messages that are not rows.
#[derive(Debug, Default)]
pub struct Produced {
    /// Events.
    pub events: HashMap<i64, (i32, i64)>,
    /// Poison messages.
    pub poison: Vec<(i32, i64)>,
}

/// Per partition: produced, landed (distinct), lost, duplicated, dead-lettered.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Tally {
    /// Events produced.
    pub produced: u64,
    /// Distinct events in the table.
    pub landed: u64,
    /// Produced, not in the table.
    pub lost: u64,
    /// Rows beyond the first of an event.
    pub duplicated: u64,
    /// Poison messages produced.
    pub poison: u64,
    /// Distinct poison messages on the dead-letter topic.
    pub dead_lettered: u64,
}

/// Reconciles the table (and dead letters) against what was produced.
pub fn reconcile(
    produced: &Produced,
    landed: &[(i64, i32, i64)],
    dead: &[(i32, i64)],
) -> BTreeMap<i32, Tally> {
    let mut t: BTreeMap<i32, Tally> = BTreeMap::new();
    for (p, _) in produced.events.values() {
        t.entry(*p).or_default().produced += 1;
    }
    for (p, _) in &produced.poison {
        t.entry(*p).or_default().poison += 1;
    }
    let mut seen = HashSet::new();
    for (id, p, _) in landed {
        let e = t.entry(*p).or_default();
        if seen.insert(*id) {
            e.landed += 1;
        } else {
            e.duplicated += 1;
        }
    }
    for (id, (p, _)) in &produced.events {
        if !seen.contains(id) {
            t.entry(*p).or_default().lost += 1;
        }
    }
    let dead: HashSet<&(i32, i64)> = dead.iter().collect();
    for (p, o) in &produced.poison {
        if dead.contains(&(*p, *o)) {
            t.entry(*p).or_default().dead_lettered += 1;
        }
    }
    t
}

/// Produces `count` events (ids `first..first+count`, keyed so they spread over the
/// partitions) at about `rate` a second, and every `poison_every`-th message something that
/// is not JSON. Records where each went.
///
/// # Errors
/// When a message cannot be delivered.
pub async fn produce(
    producer: &FutureProducer,
    topic: &str,
    first: i64,
    count: i64,
    rate: f64,
    poison_every: i64,
    into: &mut Produced,
) -> Result<()> {
    let started = Instant::now();
    let kinds = ["view", "cart", "order", "refund"];
    let mut pending = Vec::new();
    for id in first..first + count {
        let key = format!("user-{}", id % 97);
        let (payload, poison) = if poison_every > 0 && id % poison_every == 0 {
            (format!("not json #{id}"), true)
        } else {
            let kind = kinds[usize::try_from(id).unwrap_or(0) % kinds.len()];
            (
                format!(r#"{{"id":{id},"kind":"{kind}","amount":{}}}"#, id % 1000),
                false,
            )
        };
        let fut = producer.send_result(FutureRecord::to(topic).key(&key).payload(&payload));
        match fut {
            Ok(delivery) => pending.push((id, poison, delivery)),
            Err((e, _)) => bail!("cannot queue message {id}: {e}"),
        }
        if pending.len() >= 500 {
            settle(&mut pending, into).await?;
        }
        let produced = u64::try_from(id - first + 1).unwrap_or(0);
        let due = snowpipe_cli_support::pace::due(produced, rate);
        if let Some(wait) = due.and_then(|due| due.checked_sub(started.elapsed())) {
            tokio::time::sleep(wait).await;
        }
    }
    settle(&mut pending, into).await
}

type Pending = Vec<(i64, bool, rdkafka::producer::DeliveryFuture)>;

async fn settle(pending: &mut Pending, into: &mut Produced) -> Result<()> {
    for (id, poison, delivery) in pending.drain(..) {
        let (p, o) = match delivery.await {
            Ok(Ok(d)) => (d.partition, d.offset),
            Ok(Err((e, _))) => bail!("message {id} was not delivered: {e}"),
            Err(_) => bail!("message {id}: the producer went away"),
        };
        if poison {
            into.poison.push((p, o));
        } else {
            into.events.insert(id, (p, o));
        }
    }
    Ok(())
}

/// Options of `snowpipe-kafka-lab demo`.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Events to produce.
    #[arg(long, default_value_t = 30_000)]
    pub events: i64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Events a second, 0.001 to 1e9; 0 for as fast as possible.
    #[arg(long, default_value_t = 2_500.0, value_parser = snowpipe_cli_support::pace::per_second)]
    pub rate: f64,
    /// Every N-th message is not JSON (0: none).
    #[arg(long, default_value_t = 1_000)]
    pub poison_every: i64,
}

/// Kills a child at once (SIGKILL) and reaps it.
fn kill(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Runs the demo (see the module docs).
///
/// # Errors
/// When a part cannot start, an instance fails, or the reconciliation finds a lost or
/// duplicated event.
pub async fn run(args: DemoArgs) -> Result<()> {
    let topic = "events";
    let dlq = "events.dlq";
    let bin = std::env::current_exe().context("cannot find this binary")?;
    let lab = Lab::start(
        &[(topic, args.partitions), (dlq, 1)],
        Duration::from_millis(200),
    )
    .await?;
    println!(
        "snowpipe-kafka-lab demo: mock Kafka cluster at {} (topic {topic}, {} partitions), emulator at {}",
        lab.brokers(),
        args.partitions,
        lab.emulator().url()
    );
    let start = |n: usize| -> Result<Child> {
        println!("  start instance {n}");
        lab.instance(&bin, topic, "demo")
            // Longer than the session timeout (6 s) and a rebalance: a SIGKILLed member keeps its
            // partitions until its session times out, and the others must not go idle before.
            .args(["--dead-letter-topic", dlq, "--until-idle", "15s"])
            .spawn()
            .context("cannot start an instance")
    };
    let mut instances: Vec<(usize, Child)> = (1..=3)
        .map(|n| start(n).map(|c| (n, c)))
        .collect::<Result<_>>()?;
    let producer = lab.producer()?;
    let mut produced = Produced::default();
    let t0 = Instant::now();
    let mut killed = false;
    let mut added = false;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let produce_result = {
        let produce = produce(
            &producer,
            topic,
            1,
            args.events,
            args.rate,
            args.poison_every,
            &mut produced,
        );
        tokio::pin!(produce);
        loop {
            tokio::select! {
                r = &mut produce => break r,
                _ = tick.tick() => {
                    let at = t0.elapsed();
                    if !killed && at > Duration::from_secs(4) {
                        killed = true;
                        if let Some((n, child)) = instances.iter_mut().find(|(n, _)| *n == 2) {
                            println!("  SIGKILL instance {n} at {:.1}s (mid-batch)", at.as_secs_f64());
                            kill(child);
                        }
                        instances.retain(|(n, _)| *n != 2);
                    }
                    if !added && at > Duration::from_secs(7) {
                        added = true;
                        instances.push((4, start(4)?));
                    }
                }
            }
        }
    };
    produce_result?;
    println!(
        "  produced {} events and {} poison messages in {:.1}s",
        produced.events.len(),
        produced.poison.len(),
        t0.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + Duration::from_secs(180);
    for (n, mut child) in instances {
        let status = loop {
            if let Some(s) = child.try_wait()? {
                break s;
            }
            if Instant::now() > deadline {
                kill(&mut child);
                bail!("instance {n} did not finish within 3 minutes");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let mut out = String::new();
        if let Some(mut stdout) = child.stdout.take() {
            let _ = std::io::Read::read_to_string(&mut stdout, &mut out);
        }
        println!(
            "  instance {n} exited ({status}): {}",
            out.lines().last().unwrap_or("")
        );
        if !status.success() {
            bail!("instance {n} failed: {status}");
        }
    }
    lab.emulator().commit_now().await;
    let landed = lab.landed()?;
    let dead = lab.dead_letters(dlq, Duration::from_secs(2))?;
    let tally = reconcile(&produced, &landed, &dead);
    println!();
    println!("  PARTITION  PRODUCED  LANDED  LOST  DUPLICATED  POISON  DEAD-LETTERED");
    let mut total = Tally::default();
    for (p, t) in &tally {
        println!(
            "  {p:>9}  {:>8}  {:>6}  {:>4}  {:>10}  {:>6}  {:>13}",
            t.produced, t.landed, t.lost, t.duplicated, t.poison, t.dead_lettered
        );
        total.produced += t.produced;
        total.landed += t.landed;
        total.lost += t.lost;
        total.duplicated += t.duplicated;
        total.poison += t.poison;
        total.dead_lettered += t.dead_lettered;
    }
    println!(
        "  {:>9}  {:>8}  {:>6}  {:>4}  {:>10}  {:>6}  {:>13}",
        "total",
        total.produced,
        total.landed,
        total.lost,
        total.duplicated,
        total.poison,
        total.dead_lettered
    );
    if total.lost > 0 || total.duplicated > 0 || total.dead_lettered < total.poison {
        bail!(
            "not exactly once: {} lost, {} duplicated, {} of {} poison messages dead-lettered",
            total.lost,
            total.duplicated,
            total.dead_lettered,
            total.poison
        );
    }
    println!("\n  exactly once: every event landed once; every poison message was dead-lettered");
    Ok(())
}
