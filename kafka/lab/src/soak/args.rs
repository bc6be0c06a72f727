//! `snowpipe-kafka-lab soak`'s options.

use std::path::PathBuf;
use std::time::Duration;

/// Options of `snowpipe-kafka-lab soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long the producers write, in minutes (the faults are scheduled over this time; the
    /// drain and the exactly-once check come after). Also `SOAK_MINUTES`.
    #[arg(long, env = "SOAK_MINUTES", default_value_t = 3.0)]
    pub minutes: f64,
    /// Messages a second the steady producer writes (bursts write five times this).
    #[arg(long, default_value_t = 150)]
    pub rate: u64,
    /// Partitions of the soak's topic.
    #[arg(long, default_value_t = 6)]
    pub partitions: i32,
    /// Sink instances in the group (the scale goes to this plus two and back).
    #[arg(long, default_value_t = 3)]
    pub instances: usize,
    /// The seed of the messages and of the emulator's key.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// The tansu binary (a Kafka-protocol broker in its own process).
    #[arg(long, env = "SOAK_TANSU", default_value = "tansu")]
    pub tansu: PathBuf,
    /// The broker's storage: `memory` (no broker restart: it would lose every message) or `s3`
    /// (a local S3 server, `--moto`; the schedule then restarts the broker too, though tansu
    /// 0.6.0 loses acknowledged messages across that restart: kafka/docs/operations.md "Soak").
    #[arg(long, default_value = "memory", value_parser = ["memory", "s3"])]
    pub broker_storage: String,
    /// moto's S3 server (`pip install 'moto[server]'`), for `--broker-storage s3`.
    #[arg(long, env = "SOAK_MOTO", default_value = "moto_server")]
    pub moto: PathBuf,
    /// The emulator's scoped-token lifetime (short: hours of refreshes in minutes).
    #[arg(long, default_value = "90s", value_parser = snowpipe_kafka::parse_duration)]
    pub token_ttl: Duration,
    /// Each instance's `--stall-after`.
    #[arg(long, default_value = "20s")]
    pub stall_after: String,
    /// Where the processes' logs, the emulator's data and the report go (default: a new
    /// directory under the system's temporary directory, kept).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Write the report as JSON to this file too.
    #[arg(long, value_name = "FILE")]
    pub report: Option<PathBuf>,
    /// Internal: run as the soak's emulator process (`--emulator-process PORT`), with
    /// `--work-dir`, `--seed` and `--token-ttl`.
    #[arg(long, hide = true, value_name = "PORT")]
    pub emulator_process: Option<u16>,
}
