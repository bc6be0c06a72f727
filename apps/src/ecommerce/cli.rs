//! Command-line interface.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::{Args, Subcommand};

use crate::common::sizing;
use crate::ecommerce::config::Settings;
use crate::ecommerce::generator::{Plan, ORDER_ID_SPACE};

/// The most instances `--instances` may split a run into: each is a task (or a process) with
/// two channels, one a pipe, and Snowflake takes 2,000 channels a pipe.
pub(super) const MAX_INSTANCES: u32 = 1_000;
/// The most orders: what one instance's order ids hold (`ORDER_ID_SPACE` − 1; the plan
/// refuses more than that an instance, naming `--instances`), each a few rows in the
/// destination.
pub(super) const MAX_ORDERS: u64 = ORDER_ID_SPACE - 1;
/// The most customers: ids only (nothing is sized by them), but past it the split among
/// instances would overflow.
pub(super) const MAX_CUSTOMERS: u64 = 1_000_000_000;

crate::common::cli::app_cli! {
    /// The "Automated Intelligence" e-commerce streamer, in Rust: orders and order items through
    /// two channels per instance, with `order_<id>` / `item_<id>` offset tokens, exactly once.
    ///
    /// Without a subcommand: stream all instances, then report, against an embedded emulator
    /// (or a real account with --profile / SNOWFLAKE_* variables).
    name: "ecommerce",
    env_prefix: "ECOMMERCE_",
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub(super) enum Command {
    /// Stream one instance against SNOWFLAKE_* / --profile; resumes after its committed
    /// tokens; exits when its last order and items are committed. The last stdout line is
    /// {"generated": {"ORDERS": n, "ORDER_ITEMS": m}} (this instance's totals).
    Stream(StreamArgs),
    /// Per-instance and per-segment counts, revenue and the exactly-once reconciliation, from
    /// an emulator's data directory.
    Report(ReportArgs),
    /// Run an emulator with the application's sql/setup.sql (like the snowpipe-emulator binary).
    Emulator(crate::common::EmulatorArgs),
}

/// What to stream: the same values give the same rows.
#[derive(Debug, Clone, Args)]
pub(super) struct PlanArgs {
    /// Orders over all instances (default: num.orders.per.batch of the config), at most
    /// 99,999,999.
    #[arg(long, value_parser = sizing::count::<0, MAX_ORDERS>)]
    pub orders: Option<u64>,
    /// Instances the orders and customers are split among, 1 to 1,000.
    #[arg(long, default_value_t = 1, value_parser = sizing::count_u32::<1, MAX_INSTANCES>)]
    pub instances: u32,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Customers (ids 1..=N), partitioned among the instances by contiguous ranges; at most
    /// 1,000,000,000.
    #[arg(long, default_value_t = 10_000, value_parser = sizing::count::<1, MAX_CUSTOMERS>)]
    pub customers: u64,
}

impl PlanArgs {
    /// The plan, with `settings` supplying the default order count.
    ///
    /// # Errors
    /// When the plan is not possible.
    pub(super) fn plan(&self, settings: &Settings) -> Result<Plan> {
        let plan = Plan {
            seed: self.seed,
            orders: self.orders.unwrap_or(settings.default_orders),
            instances: self.instances,
            customers: self.customers,
        };
        plan.validate()?;
        Ok(plan)
    }
}

/// How to reach Snowflake and tune the stream.
#[derive(Debug, Clone, Args)]
pub(super) struct ConnectArgs {
    /// config.properties (orders.batch.size, max.client.lag, num.orders.per.batch).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Connection profile (the official SDK's profile.json); otherwise SNOWFLAKE_* variables.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// Appended to the channel names, to start over with fresh channels.
    #[arg(long, default_value = "")]
    pub channel_suffix: String,
    /// Orders per second per instance, 0.001 to 1e9; 0 for as fast as possible.
    #[arg(long, default_value_t = 0.0, value_parser = snowpipe_cli_support::pace::per_second)]
    pub rate: f64,
}

/// `ecommerce stream`.
#[derive(Debug, Clone, Args)]
pub(super) struct StreamArgs {
    /// This instance, 0 to --instances - 1.
    #[arg(long)]
    pub instance: u32,
    /// What to stream.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Connection and tuning.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// No progress lines on stderr.
    #[arg(long)]
    pub quiet: bool,
}

/// `ecommerce report`.
#[derive(Debug, Clone, Args)]
pub(super) struct ReportArgs {
    /// The emulator's data directory (read-only).
    #[arg(long)]
    pub data_dir: PathBuf,
    /// With --orders: check against what the plan generates (every ID, every item).
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Print one JSON line instead of tables.
    #[arg(long)]
    pub json: bool,
}

/// The all-in-one run.
#[derive(Debug, Clone, Args)]
pub(super) struct RunArgs {
    /// What to stream.
    #[command(flatten)]
    pub plan: PlanArgs,
    /// Connection and tuning (default: an embedded emulator).
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Run each instance as a separate `ecommerce stream` process instead of a task.
    #[arg(long)]
    pub processes: bool,
    /// Embedded emulator in sink mode (counts and commits rows, stores nothing): for
    /// measuring the client; there is nothing to reconcile afterwards.
    #[arg(long)]
    pub sink: bool,
    /// Commit delay of the embedded emulator.
    #[arg(long, default_value = "200ms", value_parser = snowpipe_streaming::duration::parse)]
    pub commit_delay: Duration,
    /// Keep the emulator's data in this directory instead of a temporary one.
    #[arg(long)]
    pub keep: Option<PathBuf>,
    /// End with one JSON line of the results (for scripts).
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn parses_the_documented_command_lines() {
        let cli =
            Cli::try_parse_from(["ecommerce", "--orders", "500", "--instances", "4"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.plan.orders, Some(500));
        assert_eq!(cli.run.plan.instances, 4);

        let cli = Cli::try_parse_from([
            "ecommerce",
            "stream",
            "--orders",
            "1000",
            "--instance",
            "2",
            "--instances",
            "4",
            "--seed",
            "9",
            "--config",
            "c.properties",
            "--profile",
            "p.json",
        ])
        .unwrap();
        let Some(Command::Stream(s)) = cli.command else {
            panic!("stream")
        };
        assert_eq!((s.instance, s.plan.instances, s.plan.seed), (2, 4, 9));
        assert_eq!(s.plan.orders, Some(1000));
        assert_eq!(s.connect.profile, Some(PathBuf::from("p.json")));
        let plan = s.plan.plan(&Settings::default()).unwrap();
        assert!(plan.check_instance(s.instance).is_ok());

        let cli =
            Cli::try_parse_from(["ecommerce", "report", "--data-dir", "d", "--json"]).unwrap();
        assert!(matches!(
            cli.command,
            Some(Command::Report(ReportArgs { json: true, .. }))
        ));
        // The default order count comes from the config.
        let cli = Cli::try_parse_from(["ecommerce"]).unwrap();
        assert_eq!(cli.run.plan.plan(&Settings::default()).unwrap().orders, 100);
        assert!(Cli::try_parse_from(["ecommerce", "stream", "--orders", "5"]).is_err());
    }
}
