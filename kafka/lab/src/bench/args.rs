//! `snowpipe-kafka-lab bench`'s options.

use std::path::PathBuf;

pub use crate::bench::events::Events;

/// Options of `snowpipe-kafka-lab bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Message value sizes to measure, in bytes (about).
    #[arg(long, value_delimiter = ',', default_value = "1024,100")]
    pub sizes: Vec<usize>,
    /// Messages per size (0: about 3 MiB a partition).
    #[arg(long, default_value_t = 0)]
    pub messages: u64,
    /// Partitions of each topic.
    #[arg(long, default_value_t = 96)]
    pub partitions: i32,
    /// Topics, each of `--partitions` partitions, the messages spread over all of them
    /// (`bench` when one, else `bench00`, `bench01`, …).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub topics: u32,
    /// The messages: realistic clickstream events, or the padded objects of earlier runs.
    #[arg(long, value_enum, default_value_t = Events::Realistic)]
    pub events: Events,
    /// The seed of the events (the same seed, the same bytes).
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Messages from this file instead of `--events`: one JSON object a line (a topic's
    /// messages, e.g. as `kcat -C -e -f '%s\n'` prints them), taken in turn over the backlog
    /// (at most 256 MiB). `--sizes` is then not used: the file's mean size is reported.
    #[arg(long, value_name = "FILE")]
    pub events_file: Option<PathBuf>,
    /// A Kafka-protocol broker in its own process (`HOST:PORT[,...]`) instead of librdkafka's
    /// mock cluster in the bench's; the topics are created there (names with a run tag).
    #[arg(long, value_name = "HOST:PORT")]
    pub brokers: Option<String>,
    /// The instance's `--max-client-lag`.
    #[arg(long, default_value = "1s")]
    pub max_client_lag: String,
    /// The instance's `--memory-budget` (the floor fetches as the default budget does).
    #[arg(long, default_value = "512MiB")]
    pub memory_budget: String,
    /// A Python with `confluent-kafka` and `snowpipe-streaming` installed, for the peer
    /// (`pip install -r kafka/lab/benches/requirements.txt`; also `SNOWPIPE_KAFKA_PEER_PYTHON`).
    #[arg(long, env = "SNOWPIPE_KAFKA_PEER_PYTHON", value_name = "PYTHON")]
    pub peer_python: Option<PathBuf>,
    /// Then measure a rebalance of this many partitions (0: skip).
    #[arg(long, default_value_t = 512)]
    pub rebalance_partitions: i32,
    /// Rounds over the same backlog (medians reported; see the module docs).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
    pub rounds: u32,
    /// Instead of the backlog rounds: each side while a producer writes this many messages a
    /// second (0: the backlog rounds). See `bench_steady`'s docs.
    #[arg(long, default_value_t = 0)]
    pub steady_rate: u64,
    /// How long the steady producer writes, in seconds (the window is the middle half).
    #[arg(long, default_value_t = 20)]
    pub steady_seconds: u64,
    /// Internal: run as the consume-only floor (`--floor BROKERS TOPIC EXPECTED GROUP`).
    #[arg(long, hide = true, num_args = 4, value_names = ["BROKERS", "TOPIC", "EXPECTED", "GROUP"])]
    pub floor: Vec<String>,
}
