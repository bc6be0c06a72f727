//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use chrono::NaiveDate;
use clap::{Args, Subcommand};

use crate::common::sizing;
use crate::ski_resort::generator::{GeneratorConfig, Limit, ProduceOptions};

/// The most events `--events` may ask for: each waits in the queue file (about 290 bytes,
/// measured) until streamed, so the most is about 3 GB of queue, 83 minutes at the default
/// `--rate`.
pub(super) const MAX_EVENTS: u64 = 10_000_000;
/// The most `--events-per-day`: past it events of a simulated day are under 3 ms apart.
pub(super) const MAX_EVENTS_PER_DAY: u32 = 10_000_000;

crate::common::cli::app_cli! {
    /// The Snowflake "streaming data pipeline" quickstart (ski resort), in Rust.
    ///
    /// Without a subcommand: generate, stream and report in one process against an embedded
    /// emulator (or a real account with --profile / SNOWFLAKE_* variables).
    name: "ski_resort",
    env_prefix: "SKI_RESORT_",
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Generate events into the queue; prints {"generated": {...}} as the last line.
    Generate(GenerateArgs),
    /// Stream the queue to Snowflake (or an emulator), exactly once, resuming after crashes.
    Stream(StreamArgs),
    /// Reconcile the queue's ledger with the landed tables and print the dashboard views.
    Report(ReportArgs),
    /// Run the emulator with the pipeline's setup.sql (like the snowpipe-emulator binary).
    Emulator(crate::common::EmulatorArgs),
    /// Draw the quickstart's dashboard (revenue, lifts, rides, ski days) as an HTML page of
    /// SVG charts, from the landed tables through the SQL API.
    Dashboard(DashboardArgs),
}

/// What to generate and how fast.
#[derive(Debug, Clone, Args)]
pub(super) struct GenArgs {
    /// Number of events (rows over all three tables), at most 10,000,000.
    #[arg(long, conflicts_with = "duration",
          value_parser = sizing::count::<0, MAX_EVENTS>)]
    pub events: Option<u64>,
    /// Generate for this long instead (e.g. 30s, 10m).
    #[arg(long, value_parser = snowpipe_streaming::duration::parse)]
    pub duration: Option<Duration>,
    /// Target events per second, 0.001 to 1e9; 0 for as fast as possible.
    #[arg(long, default_value_t = 2000.0, value_parser = snowpipe_cli_support::pace::per_second)]
    pub rate: f64,
    /// Random seed; the same seed gives the same rows. Random when omitted (and printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// First simulated day of the season.
    #[arg(long, default_value = "2025-12-20")]
    pub start: NaiveDate,
    /// Mean events per simulated day (weekends and holidays get more), 1 to 10,000,000.
    #[arg(long, default_value_t = 1500,
          value_parser = sizing::count_u32::<1, MAX_EVENTS_PER_DAY>)]
    pub events_per_day: u32,
}

impl GenArgs {
    /// The generator settings, with `default_events` when neither --events nor --duration.
    pub(super) fn options(&self, default_events: u64) -> Result<ProduceOptions> {
        if !(self.rate >= 0.0 && self.rate.is_finite()) {
            bail!(
                "--rate must be a number of events per second, 0 or more (got {})",
                self.rate
            );
        }
        let limit = match (self.events, self.duration) {
            (Some(n), _) => Limit::Events(n),
            (None, Some(d)) => Limit::Duration(d),
            (None, None) => Limit::Events(default_events),
        };
        let seed = self.seed.unwrap_or_else(rand::random);
        Ok(ProduceOptions {
            config: GeneratorConfig {
                seed,
                start: self.start,
                events_per_day: self.events_per_day,
            },
            limit,
            rate: self.rate,
        })
    }
}

/// How to reach Snowflake and tune the stream.
#[derive(Debug, Clone, Args)]
pub(super) struct ConnectArgs {
    /// Connection profile (the official SDK's profile.json); otherwise SNOWFLAKE_* variables.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Appended to channel names (`<TABLE>_CHANNEL<suffix>`), to start over with new channels.
    #[arg(long, default_value = "")]
    pub channel_suffix: String,
    /// How long rows may wait in the client before they are sent.
    #[arg(long, default_value = "200ms", value_parser = snowpipe_streaming::duration::parse)]
    pub max_client_lag: Duration,
}

/// `ski_resort generate`.
#[derive(Debug, Clone, Args)]
pub(super) struct GenerateArgs {
    /// Queue file (SQLite); created if missing.
    #[arg(long)]
    pub queue: PathBuf,
    /// What to generate.
    #[command(flatten)]
    pub gen: GenArgs,
    /// Hide the progress line on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `ski_resort stream`.
#[derive(Debug, Clone, Args)]
pub(super) struct StreamArgs {
    /// Queue file written by `generate`.
    #[arg(long)]
    pub queue: PathBuf,
    /// Exit 0 once the queue is empty, everything is committed and no generator is running.
    #[arg(long)]
    pub until_drained: bool,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
}

/// `ski_resort report`.
#[derive(Debug, Clone, Args)]
pub(super) struct ReportArgs {
    /// Queue file (for the generated side of the reconciliation).
    #[arg(long)]
    pub queue: PathBuf,
    /// The emulator's data directory (read-only). Without it the tables are read through
    /// Snowflake's SQL API with --profile or the SNOWFLAKE_* variables.
    #[arg(long)]
    pub data_dir: Option<PathBuf>,
    /// Connection profile (JSON, the official SDK's keys) for the SQL API; else SNOWFLAKE_*.
    #[arg(long, conflicts_with = "data_dir")]
    pub profile: Option<PathBuf>,
    /// Print the reconciliation as one JSON line instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// `ski_resort dashboard`.
#[derive(Debug, Clone, Args)]
pub(super) struct DashboardArgs {
    /// A stopped emulator's data directory (or a `--keep` directory): read through an
    /// emulator started over it.
    #[arg(long, conflicts_with = "profile")]
    pub data_dir: Option<PathBuf>,
    /// Connection profile of a real account (or a running emulator); otherwise SNOWFLAKE_*
    /// variables.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// The HTML file to write.
    #[arg(long, default_value = "ski_dashboard.html")]
    pub out: PathBuf,
    /// Database of the landed tables.
    #[arg(long, default_value = "STREAMING_INGEST")]
    pub database: String,
    /// Schema of the landed tables.
    #[arg(long, default_value = "STREAMING_INGEST")]
    pub schema: String,
    /// Warehouse for the queries (a real account).
    #[arg(long, default_value = "STREAMING_INGEST")]
    pub warehouse: String,
}

/// The all-in-one run.
#[derive(Debug, Clone, Args)]
pub(super) struct RunArgs {
    /// What to generate (default: 6000 events at 2000/s).
    #[command(flatten)]
    pub gen: GenArgs,
    /// Connection (default: an embedded emulator).
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Keep the queue and the emulator's data in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// Commit delay of the embedded emulator.
    #[arg(long, default_value = "200ms", value_parser = snowpipe_streaming::duration::parse)]
    pub commit_delay: Duration,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn parses_the_documented_commands() {
        let cli = Cli::try_parse_from(["ski_resort", "--events", "100", "--seed", "3"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.gen.events, Some(100));
        let cli = Cli::try_parse_from([
            "ski_resort",
            "generate",
            "--queue",
            "q.db",
            "--duration",
            "2s",
            "--rate",
            "50",
        ])
        .unwrap();
        let Some(Command::Generate(g)) = cli.command else {
            panic!("generate")
        };
        let opts = g.gen.options(10).unwrap();
        assert_eq!(opts.limit, Limit::Duration(Duration::from_secs(2)));
        let cli =
            Cli::try_parse_from(["ski_resort", "stream", "--queue", "q.db", "--until-drained"])
                .unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Stream(StreamArgs {
                until_drained: true,
                ..
            }))
        ));
        assert!(Cli::try_parse_from([
            "ski_resort",
            "generate",
            "--queue",
            "q",
            "--events",
            "1",
            "--duration",
            "1s"
        ])
        .is_err());
    }
}
