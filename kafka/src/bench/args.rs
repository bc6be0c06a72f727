//! `snowpipe-kafka bench`'s options.

use std::path::PathBuf;

/// Options of `snowpipe-kafka bench`.
#[derive(Debug, Clone, clap::Args)]
pub struct BenchArgs {
    /// Message value sizes to measure, in bytes (about).
    #[arg(long, value_delimiter = ',', default_value = "1024,100")]
    pub sizes: Vec<usize>,
    /// Messages per size (0: about 3 MiB a partition).
    #[arg(long, default_value_t = 0)]
    pub messages: u64,
    /// Partitions of the topic.
    #[arg(long, default_value_t = 96)]
    pub partitions: i32,
    /// The instance's `--max-client-lag`.
    #[arg(long, default_value = "1s")]
    pub max_client_lag: String,
    /// A Python with `confluent-kafka` and `snowpipe-streaming` installed, for the peer
    /// (`pip install -r kafka/benches/requirements.txt`; also `SNOWPIPE_KAFKA_PEER_PYTHON`).
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
