//! The `snowpipe-kafka` command line run to its end ([`main`]): the options read (with
//! `--connector-config` and the `SNOWPIPE_KAFKA_*` variables), then the sink, `check` or
//! `audit`, and the exit code that says how it ended. The binary is this function; so are
//! `snowpipe-kafka-lab`'s sink instances.

use std::ffi::OsString;
use std::process::ExitCode;

use snowpipe_cli_support::log::LogFormat;
use snowpipe_cli_support::signal::terminated;

use crate::cli::args::SinkArgs;
use crate::error::Result;

/// The lab's commands (`snowpipe-kafka-lab`), named here to point there.
const LAB_COMMANDS: [&str; 3] = ["demo", "bench", "soak"];

/// The sink's command line: `check`, `audit`, or the sink's options.
type Cli = snowpipe_cli_support::invocation::Invocation<Command, Run>;

/// Who the binary is, for `--help` and `--version`.
const BINARY: snowpipe_cli_support::invocation::Binary = snowpipe_cli_support::invocation::Binary {
    name: "snowpipe-kafka",
    version: env!("CARGO_PKG_VERSION"),
    about: "A Kafka consumer-group sink for Snowpipe Streaming: one channel per partition, \
            exactly once across rebalances, kills and restarts.",
};

/// The run's options, absent when a subcommand is named.
#[derive(Debug, clap::Args)]
struct Run {
    #[command(flatten)]
    sink: Option<SinkArgs>,
}

/// The subcommands: `check` and `audit` (the lab's `demo`, `bench` and `soak` are
/// `snowpipe-kafka-lab`'s).
#[derive(Debug, clap::Subcommand)]
enum Command {
    /// Prints what a run with these options would do, asking the brokers, the Schema Registry
    /// and Snowflake without changing anything (no channel opened, no table created, no offset
    /// committed): the topics and partitions, each topic's table and pipe, each partition's
    /// channel with its committed offset token beside the group's offset, and where the run
    /// would start it. Exit 0 when a run would start; 1, naming each problem, when it would not.
    Check(Box<crate::CheckArgs>),
    /// Audits each topic's table, partition by partition: rows, distinct offsets, offsets
    /// landed more than once, gaps the broker still holds, the channel's committed token beside
    /// the group's offset; prints a statement that keeps one copy of each offset (the earliest
    /// SnowflakeConnectorPushTime), run by --apply. Exit 0 when clean; 1 naming each problem.
    Audit(Box<crate::AuditArgs>),
}

/// The target of the lines `main` writes itself (the fatal error) in JSON format.
const TARGET: &str = "snowpipe_kafka";

/// Runs the `snowpipe-kafka` command line `argv` (the program's name first) to its end: the
/// sink, `check` or `audit`, logging as `--log-format` says. What the binary's `main` is, and
/// what `snowpipe-kafka-lab` runs for its sink instances.
///
/// Exit 0 when the work is done; 1 when it stopped for a reason, logged as the fatal line; 2
/// for a command line that cannot run (named, with the fix).
#[must_use]
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let env_prefix = crate::ENV_PREFIX;
    // Before the command line is parsed: reading `--connector-config` may warn.
    snowpipe_cli_support::log::init(LogFormat::from_args(&argv, env_prefix), "warn");
    if let Some(lab) = argv
        .get(1)
        .and_then(|a| a.to_str())
        .filter(|a| LAB_COMMANDS.contains(a))
    {
        snowpipe_cli_support::log::fatal_chain(
            TARGET,
            [format!(
                "`{lab}` is the lab's, not the sink's: run `cargo run -p snowpipe-kafka-lab -- \
                 {lab}` (or `snowpipe-kafka-lab {lab}`)"
            )],
        );
        return ExitCode::from(2);
    }
    // `-X` on the command line (not `SNOWPIPE_KAFKA_PROPERTIES`, which only the same user
    // and root can read).
    let x_on_command_line = argv
        .iter()
        .skip(1)
        .any(|a| a.to_str().is_some_and(|a| a.starts_with("-X")));
    // `--connector-config FILE` (or its variable): the connector's keys become options after
    // the user's, unless the command line or the environment gives them.
    let (argv, connector) = match crate::expand_connector_config(argv) {
        Ok(x) => x,
        Err(e) => {
            snowpipe_cli_support::log::fatal(TARGET, &e);
            return ExitCode::from(2);
        }
    };
    // Every option also from `SNOWPIPE_KAFKA_<FLAG>`.
    let cli = Cli::parse(BINARY, env_prefix, argv);
    let mut connector = connector;
    let result = match cli.command {
        Some(Command::Check(mut args)) => {
            with_connector(&mut args.sink, connector.take());
            Some(
                runtime()
                    .map_err(Into::into)
                    .and_then(|rt| rt.block_on(crate::check(*args))),
            )
        }
        Some(Command::Audit(mut args)) => {
            with_connector(&mut args.sink, connector.take());
            Some(
                runtime()
                    .map_err(Into::into)
                    .and_then(|rt| rt.block_on(crate::audit(*args))),
            )
        }
        None => None,
    };
    let result = match (result, cli.run.sink) {
        (Some(result), _) => result,
        (None, Some(mut args)) => {
            with_connector(&mut args, connector.take());
            crate::keep_freed_memory(args.memory_budget.bytes());
            runtime()
                .map_err(Into::into)
                .and_then(|rt| rt.block_on(sink(args, x_on_command_line)))
        }
        (None, None) => {
            snowpipe_cli_support::log::fatal_chain(
                TARGET,
                ["give the sink's options (see --help)".to_owned()],
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            snowpipe_cli_support::log::fatal(TARGET, &e);
            ExitCode::FAILURE
        }
    }
}

/// `--connector-config`'s parts that are not options (the Snowflake connection, the registry's
/// credentials) and the pipe rule it implies go to `args`, for a run and `check` alike; the
/// keys it could not take are logged.
fn with_connector(args: &mut SinkArgs, connector: Option<crate::ConnectorConfig>) {
    let Some(c) = connector else { return };
    if !c.ignored.is_empty() {
        tracing::warn!(
            "--connector-config: not taken (this sink has no equivalent): {}",
            c.ignored.join(", ")
        );
    }
    for note in &c.notes {
        tracing::warn!("--connector-config: {note}");
    }
    args.connection = Some(c.connection);
    args.registry_auth = c.registry_auth;
    args.registry_auth_inherit = c.registry_auth_inherit;
    // Connector v4 writes through a pipe named like the table when one exists
    // (`kafka/docs/connector-compatibility-tables.md` §15.5); a pipe named on the command line is used
    // as named.
    args.table_named_pipes |= args
        .pipes
        .iter()
        .all(|p| snowpipe_streaming::default_pipe_table(p).is_some());
}

/// The Tokio runtime the sink's commands run on: multi-threaded, every driver on, each
/// thread's stack [`STACK_BYTES`](crate::STACK_BYTES) (values are decoded on these threads;
/// the Avro depth limit is measured against it). For a binary that runs the sink's library
/// (the lab's `demo`, `bench` and `soak`).
///
/// # Errors
///
/// The runtime's own, when its threads cannot be started.
pub fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_stack_size(crate::STACK_BYTES)
        .build()
}

async fn sink(mut args: SinkArgs, on_command_line: bool) -> Result<()> {
    let exposed = crate::secrets_on_command_line(&args.properties);
    if on_command_line && !exposed.is_empty() {
        tracing::warn!(
            "-X {} on the command line is visible to every user of this machine (ps, \
             /proc/PID/cmdline): put it in --kafka-config FILE",
            exposed.join(", -X ")
        );
    }
    args.load_kafka_config()?;
    args.load_topic_map()?;
    // Checked before connecting anywhere.
    let settings = args.settings()?;
    let health = std::sync::Arc::new(crate::Health::default());
    // Listened for from here on, before the metrics line announces the sink as started: a
    // SIGTERM sent right after it (while the client connects) ends the run gracefully rather
    // than killing the process by the signal's default action.
    let mut shutdown = Box::pin(terminated());
    let server = match args.metrics_addr {
        Some(addr) => {
            let handle = crate::install_metrics()?;
            let (bound, task) =
                crate::serve_metrics(addr, handle, std::sync::Arc::clone(&health)).await?;
            // A healthy start's line: INFO, written whatever the filter (the soak and the
            // tests read the port from it).
            snowpipe_cli_support::log::notice(
                tracing::Level::INFO,
                "snowpipe_kafka",
                &format!("serving /metrics, /healthz and /readyz on http://{bound}"),
            );
            if !bound.ip().is_loopback() {
                tracing::warn!(
                    "--metrics-addr {bound} is reachable from other machines and has no \
                     authentication: it shows topic names, offsets and lag; keep the port \
                     behind a firewall or network policy (kafka/README.md, \"Metrics and health\")"
                );
            }
            Some(task)
        }
        None => None,
    };
    let builder = args.client_builder()?;
    let client = tokio::select! {
        client = builder.build() => client?,
        () = &mut shutdown => {
            tracing::warn!("stopped by a signal while connecting to Snowflake: nothing was read");
            if let Some(task) = server {
                task.abort();
            }
            return Ok(());
        }
    };
    let report = crate::run_with(settings, client.clone(), shutdown, health).await;
    if let Some(task) = server {
        task.abort();
    }
    let report = report?;
    client.close().await?;
    println!("{}", report.json());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{Cli, BINARY};

    fn parse(args: &str) -> std::result::Result<Cli, clap::Error> {
        use clap::FromArgMatches as _;
        let argv = std::iter::once("snowpipe-kafka").chain(args.split_whitespace());
        let mut matches = Cli::command(BINARY).try_get_matches_from(argv)?;
        Cli::from_arg_matches_mut(&mut matches)
    }

    #[test]
    fn the_documented_command_lines_parse() {
        let base = "--brokers h:9092 --group g --database D --schema S";
        let cli = parse(&format!(
            "{base} --topic t --pipe P --metadata --dead-letter-topic t.dlq --start latest \
             --until-idle 3s -X session.timeout.ms=6000 -X a=b"
        ))
        .unwrap();
        let sink = cli.run.sink.unwrap();
        assert_eq!(sink.topics, ["t"]);
        assert_eq!(sink.channel_name("t", 4), "g_t_4");
        assert_eq!(sink.properties.len(), 2);
        assert!(parse(&format!("{base} --topic-map map.toml"))
            .unwrap()
            .run
            .sink
            .is_some());
        let err = parse(base).unwrap_err().to_string();
        assert!(err.contains("--topic"), "{err}");
    }

    /// The lab's commands are not the sink's: refused as arguments, not run.
    #[test]
    fn demo_is_not_a_command_of_the_sink() {
        let err = parse("demo").unwrap_err().to_string();
        assert!(err.contains("demo"), "{err}");
        assert!(
            parse("--brokers h:9092 --group g --database D --schema S --topic t --pipe P")
                .unwrap()
                .run
                .sink
                .is_some()
        );
    }

    /// `--topic-regex` needs no `--topic` or `--pipe`; a topic's pipe follows the rules; a
    /// dead-letter topic the regex matches is refused.
    #[test]
    fn a_topic_regex_subscribes_and_resolves_pipes_by_rule() {
        let base = "--brokers h:9092 --group g --database D --schema S";
        let sink = parse(&format!(
            r"{base} --topic-regex ^orders\..* --topic2table-map orders\.(.*):o_$1 {}",
            "--topic2table-regex-replacement"
        ))
        .unwrap()
        .run
        .sink
        .unwrap();
        sink.validate().unwrap();
        assert_eq!(sink.subscription(), [r"^(orders\..*)$"]);
        let routes = sink.routes().unwrap();
        assert_eq!(routes.pipe_of("orders.eu").unwrap(), "O_EU-STREAMING");
        let sink = parse(&format!(
            r"{base} --topic-regex orders\..* --dead-letter-topic orders.dlq"
        ))
        .unwrap()
        .run
        .sink
        .unwrap();
        let err = sink.validate().unwrap_err().to_string();
        assert!(err.contains("matches --topic-regex"), "{err}");
        let sink = parse(&format!("{base} --topic-regex (?=x) --pipe P"))
            .unwrap()
            .run
            .sink
            .unwrap();
        assert!(format!("{:#}", sink.validate().unwrap_err()).contains("--topic-regex"));
        assert!(parse(&format!("{base} --topic t --topic2table-regex-replacement")).is_err());
        // `--topic` without `--pipe` (by the map's rules) cannot be mixed with `--topic-map`.
        let file = std::env::temp_dir().join(format!("topic-map-{}.toml", std::process::id()));
        std::fs::write(&file, "[topics]\nx = \"PX\"\n").unwrap();
        let mut sink = parse(&format!(
            "{base} --topic a --topic2table-map a:T --topic-map {}",
            file.display()
        ))
        .unwrap()
        .run
        .sink
        .unwrap();
        let err = sink.load_topic_map().unwrap_err().to_string();
        std::fs::remove_file(&file).ok();
        assert!(err.contains("no --pipe"), "{err}");
    }

    /// `audit` takes the sink's options, `--format`, `--table`, `--list` and `--apply`.
    #[test]
    fn audit_is_a_subcommand_with_the_sinks_options() {
        use super::Command;
        let cli = parse(
            "audit --brokers h:9092 --group g --database D --schema S --topic t --pipe P \
             --table D.S.T --list 5 --apply --format json",
        )
        .unwrap();
        let Some(Command::Audit(args)) = cli.command else {
            panic!("audit is not the audit subcommand")
        };
        assert_eq!(args.sink.channel_name("t", 1), "g_t_1");
        assert_eq!(
            (args.table.as_deref(), args.list, args.apply),
            (Some("D.S.T"), 5, true)
        );
        assert!(parse("audit --group g --list x").is_err());
    }

    /// `check` takes the sink's options and `--format`, with the `demo` feature and without.
    #[test]
    fn check_is_a_subcommand_with_the_sinks_options() {
        use super::Command;
        use crate::CheckFormat as Format;
        let cli = parse(
            "check --brokers h:9092 --group g --database D --schema S --topic t --pipe P \
             --format json",
        )
        .unwrap();
        let Some(Command::Check(args)) = cli.command else {
            panic!("check is not the check subcommand")
        };
        assert_eq!(args.sink.channel_name("t", 1), "g_t_1");
        assert_eq!(args.format, Format::Json);
        assert_eq!(
            parse("check --brokers h:9092 --group g --database D --schema S --topic t --pipe P")
                .map(|c| matches!(c.command, Some(Command::Check(a)) if a.format == Format::Text))
                .ok(),
            Some(true)
        );
        let err = parse("check --group g").unwrap_err().to_string();
        assert!(err.contains("--brokers"), "{err}");
    }
}
