//! `snowpipe-kafka-lab`: `demo`, `bench` and `soak` (kafka/README.md); with any other
//! arguments, the sink itself (`snowpipe_kafka::main`), as the lab starts its instances.

use std::process::ExitCode;

use clap::Parser;
use snowpipe_cli_support::log::LogFormat;

/// The lab of snowpipe-kafka: everything on this machine.
#[derive(Debug, Parser)]
#[command(name = "snowpipe-kafka-lab", version)]
struct Cli {
    /// `--log-format` (read before parsing: [`LogFormat::from_args`]).
    #[command(flatten)]
    log: snowpipe_cli_support::log::LogArgs,
    #[command(subcommand)]
    command: Command,
}

/// The lab's commands.
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Everything on this machine: librdkafka's mock Kafka cluster, the embedded emulator, a
    /// producer and sink instances as separate processes (one killed, one added), then a
    /// reconciliation per partition.
    Demo(snowpipe_kafka_lab::demo::DemoArgs),
    /// Measures the sink's messages/s and CPU per GB beside a consume-only floor and a Python
    /// peer on the official SDK, then how long a rebalance of many partitions takes (prints
    /// JSON lines, then a table).
    Bench(snowpipe_kafka_lab::bench::BenchArgs),
    /// A soak of the real topology: tansu, the emulator in its own process, three instances
    /// in a group, a producer with bursts, and on a schedule kills, stops, a scale-out, network
    /// faults and restarts; reports RSS, CPU per GB, latency, stalls and exactly-once.
    Soak(snowpipe_kafka_lab::soak::SoakArgs),
}

/// The lab's commands, by the first argument.
const COMMANDS: [&str; 3] = ["demo", "bench", "soak"];

/// First arguments about the lab binary itself (its help, its version), not a sink's run.
const OWN: [&str; 5] = ["help", "--help", "-h", "--version", "-V"];

/// The target of the fatal line in JSON format.
const TARGET: &str = "snowpipe_kafka_lab";

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let lab = argv
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| COMMANDS.contains(&a) || OWN.contains(&a));
    if !lab {
        // An instance the lab started (or a user's run): the sink's own command line.
        return snowpipe_kafka::main(argv);
    }
    snowpipe_cli_support::log::init(LogFormat::from_args(&argv, "SNOWPIPE_KAFKA_LAB_"), "warn");
    // The lab's flags are its own: no `SNOWPIPE_KAFKA_*` variable is read for them.
    let cli = Cli::parse_from(argv);
    let runtime = match snowpipe_kafka::runtime() {
        Ok(rt) => rt,
        Err(e) => {
            snowpipe_cli_support::log::fatal(TARGET, &e);
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Demo(args) => snowpipe_kafka_lab::demo::run(args).await,
            Command::Bench(args) => snowpipe_kafka_lab::bench::run(args).await,
            Command::Soak(args) => snowpipe_kafka_lab::soak::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            snowpipe_cli_support::log::fatal(TARGET, e.as_ref());
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::{Cli, Command};

    #[test]
    fn demo_bench_and_soak_are_the_labs_commands() {
        let parse = |a: &str| Cli::try_parse_from(["snowpipe-kafka-lab", a]);
        assert!(matches!(parse("demo").unwrap().command, Command::Demo(_)));
        assert!(matches!(parse("bench").unwrap().command, Command::Bench(_)));
        assert!(matches!(parse("soak").unwrap().command, Command::Soak(_)));
        assert!(Cli::try_parse_from(["snowpipe-kafka-lab", "demo", "--brokers", "x"]).is_err());
    }
}
