//! Command-line interface (other tools depend on it: keep the flags stable).

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Subcommand};

use crate::common::sizing;

/// The most shards (`--shards`): one subject, channel and task each.
pub const MAX_SHARDS: u32 = 1_024;
/// The most events `publish --count` sends (at its most `--rate`, 10,000 a second, under
/// 3 hours; each kept by the broker's stream, a few hundred bytes).
pub const MAX_COUNT: u64 = 100_000_000;
/// The most events a second `--rate` publishes: the range the publisher always took (checked
/// after parsing until round thirteen), now refused by clap before anything starts.
pub const MAX_RATE: u32 = 10_000;

crate::common::cli::app_cli! {
    /// A continuous sensor feed from NATS JetStream into Snowflake, exactly once by stream
    /// sequence.
    ///
    /// Without a subcommand: a private nats-server and an embedded emulator (or a real account
    /// with --profile / SNOWFLAKE_* variables); publish for 20 s at 1,000 events/s, consume,
    /// report.
    name: "sensor_stream",
    env_prefix: "SENSOR_STREAM_",
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Publish sensor readings to `sensors.<shard>`; last stdout line {"published": {...}}.
    Publish(PublishArgs),
    /// Consume the stream into Snowflake, exactly once; messages that cannot be rows go to
    /// `<STREAM>.dlq.<shard>` (NATS) or the dead-letters pipe (Kinesis); last stdout line
    /// {"consumed": {...}}.
    Consume(ConsumeArgs),
    /// The AWS Lambda handler for a Kinesis event source mapping (run by the Lambda runtime:
    /// settings from the environment).
    Lambda(LambdaArgs),
}

/// Which broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum Source {
    /// NATS JetStream (subjects as shards).
    #[default]
    Nats,
    /// Amazon Kinesis Data Streams (or a local server with --kinesis-endpoint).
    Kinesis,
}

/// The Kinesis stream.
#[derive(Debug, Clone, Args)]
pub struct KinesisArgs {
    /// A local Kinesis server, e.g. http://127.0.0.1:4567 (omitted: AWS, by region).
    #[arg(long)]
    pub kinesis_endpoint: Option<String>,
    /// AWS region (default: the AWS chain's, e.g. AWS_REGION or the profile).
    #[arg(long)]
    pub region: Option<String>,
    /// The dead-letters pipe (Kinesis: records that cannot be readings).
    #[arg(long, default_value = "KINESIS_DEAD_LETTERS_PIPE")]
    pub dead_letter_pipe: String,
    /// Trust Kinesis' sequence numbers as they come: check only what AWS documents (decimal,
    /// at most 129 digits, increasing per shard), not the layout the other checks read
    /// (docs/kinesis.md "What a sequence number holds"). For the day Kinesis changes how it
    /// builds its numbers and every record is refused.
    #[arg(long)]
    pub trust_sequence_numbers: bool,
}

/// `sensor_stream lambda`: the handler's settings, from the function's environment.
#[derive(Debug, Clone, Args)]
pub struct LambdaArgs {
    /// Destination database.
    #[arg(long, env = "SNOWPIPE_DATABASE")]
    pub database: String,
    /// Destination schema.
    #[arg(long, env = "SNOWPIPE_SCHEMA")]
    pub schema: String,
    /// The readings pipe (KINESIS_READINGS_PIPE of sql/setup.sql).
    #[arg(long, env = "SNOWPIPE_PIPE")]
    pub pipe: String,
    /// The dead-letters pipe.
    #[arg(
        long,
        env = "SNOWPIPE_DEAD_LETTER_PIPE",
        default_value = "KINESIS_DEAD_LETTERS_PIPE"
    )]
    pub dead_letter_pipe: String,
    /// The event source mapping's ParallelizationFactor (above 1: a channel per partition key).
    #[arg(long, env = "PARALLELIZATION_FACTOR", default_value_t = 1,
          value_parser = clap::value_parser!(u32).range(1..=10))]
    pub parallelization_factor: u32,
    /// `report`: answer batchItemFailures (the mapping has ReportBatchItemFailures);
    /// `error`: fail the invocation (the mapping retries or bisects whole batches).
    #[arg(long, env = "FAILURE_MODE", value_enum, default_value_t = crate::sensor_stream::kinesis::lambda::FailureMode::Report)]
    pub failure_mode: crate::sensor_stream::kinesis::lambda::FailureMode,
    /// How long rows may wait in the client before they are sent.
    #[arg(long, env = "MAX_CLIENT_LAG", default_value = "50ms", value_parser = snowpipe_streaming::duration::parse)]
    pub max_client_lag: Duration,
    /// The handler's own cap on each pipe's channels (below Snowflake's 2,000, closed ones
    /// included): a channel this instance does not hold is not opened once `SHOW CHANNELS IN
    /// PIPE` (asked at most once a minute, through the SQL API with the same key) and the
    /// channels admitted since reach it; the invocation fails naming the cap, and the metric
    /// `sensor_stream/KeyChannelCapRefusals` counts it. Unset: no cap of our own.
    #[arg(long, env = "MAX_KEY_CHANNELS", value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub max_key_channels: Option<u32>,
    /// Trust Kinesis' sequence numbers as they come (TRUST_SEQUENCE_NUMBERS=true): check only
    /// what AWS documents (decimal, at most 129 digits, increasing per shard), not the layout
    /// the other checks read (docs/kinesis.md "What a sequence number holds").
    #[arg(long, env = "TRUST_SEQUENCE_NUMBERS")]
    pub trust_sequence_numbers: bool,
}

/// The broker and the stream.
#[derive(Debug, Clone, Args)]
pub struct StreamArgs {
    /// Stream name (attached to if it exists, else created with subjects `sensors.*`).
    #[arg(long, default_value = "SENSORS")]
    pub stream: String,
    /// Number of shards: subjects `sensors.0` .. `sensors.<N-1>`, one channel each; 1 to 1,024.
    #[arg(long, default_value_t = 4, value_parser = sizing::count_u32::<1, MAX_SHARDS>)]
    pub shards: u32,
}

/// `sensor_stream publish`.
#[derive(Debug, Clone, Args)]
pub struct PublishArgs {
    /// NATS server URL, e.g. nats://127.0.0.1:4222.
    #[arg(long)]
    pub nats: String,
    /// Stream and shards.
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Number of events, at most 100,000,000.
    #[arg(long, value_parser = sizing::count::<0, MAX_COUNT>)]
    pub count: u64,
    /// Events per second, 1 to 10,000.
    #[arg(long, default_value_t = 1000, value_parser = sizing::count_u32::<1, MAX_RATE>)]
    pub rate: u32,
    /// Random seed; the same seed gives the same readings. Random when omitted (and printed).
    #[arg(long)]
    pub seed: Option<u64>,
}

/// How to reach Snowflake and tune the stream.
#[derive(Debug, Clone, Args)]
pub struct ConnectArgs {
    /// Connection profile (the official SDK's profile.json); otherwise SNOWFLAKE_* variables.
    #[arg(long)]
    pub profile: Option<PathBuf>,
    /// How long rows may wait in the client before they are sent (latency vs request count).
    #[arg(long, default_value = "100ms", value_parser = snowpipe_streaming::duration::parse)]
    pub max_client_lag: Duration,
    /// Most rows per append (one broker batch).
    #[arg(long, default_value_t = 500, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub batch_max: u32,
    /// Most bytes of broker messages held at once (NATS): each pull asks the broker for as
    /// many messages as two thirds of this holds at the server's max payload (the client pulls
    /// again once half are read), at least one, at most --batch-max.
    #[arg(long, value_name = "BYTES", default_value_t = 256 << 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub batch_max_bytes: u64,
}

/// `sensor_stream consume`.
#[derive(Debug, Clone, Args)]
pub struct ConsumeArgs {
    /// The broker.
    #[arg(long, value_enum, default_value_t = Source::Nats)]
    pub source: Source,
    /// NATS server URL, e.g. nats://127.0.0.1:4222 (with --source nats).
    #[arg(long)]
    pub nats: Option<String>,
    /// Kinesis (with --source kinesis).
    #[command(flatten)]
    pub kinesis: KinesisArgs,
    /// Stream and shards.
    #[command(flatten)]
    pub stream: StreamArgs,
    /// Destination database.
    #[arg(long)]
    pub database: String,
    /// Destination schema.
    #[arg(long)]
    pub schema: String,
    /// Destination pipe (e.g. SENSOR_READINGS_PIPE from sql/setup.sql).
    #[arg(long)]
    pub pipe: String,
    /// Connection.
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Exit after this long with nothing new, everything committed and nothing more at the
    /// broker (the shard's last sequence handled; on Kinesis an empty page at the tip), e.g. 5s.
    #[arg(long, value_parser = snowpipe_streaming::duration::parse)]
    pub until_idle: Option<Duration>,
}

/// The all-in-one run.
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// The broker: a private nats-server, or with `kinesis` a private local Kinesis server
    /// (kinesalite) whose first shard is split halfway through.
    #[arg(long, value_enum, default_value_t = Source::Nats)]
    pub source: Source,
    /// Use this NATS server instead of starting a private one.
    #[arg(long)]
    pub nats: Option<String>,
    /// Stream and shards.
    #[command(flatten)]
    pub stream: StreamArgs,
    /// How long to publish.
    #[arg(long, default_value = "20s", value_parser = snowpipe_streaming::duration::parse)]
    pub duration: Duration,
    /// Events per second, 1 to 10,000.
    #[arg(long, default_value_t = 1000, value_parser = sizing::count_u32::<1, MAX_RATE>)]
    pub rate: u32,
    /// Random seed of the readings. Random when omitted (and printed).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Publish everything first, then consume the backlog (measures drain throughput).
    #[arg(long)]
    pub backlog: bool,
    /// Connection (default: an embedded emulator).
    #[command(flatten)]
    pub connect: ConnectArgs,
    /// Commit delay of the embedded emulator (its default is 1 s).
    #[arg(long, default_value = "1s", value_parser = snowpipe_streaming::duration::parse)]
    pub commit_delay: Duration,
}

/// The process's arguments, with `lambda` added when the program is named `bootstrap` and has
/// none: the name AWS Lambda's OS-only runtimes (`provided.al2023`) start, so the one binary,
/// copied to `bootstrap`, is the function.
pub fn arguments(args: impl IntoIterator<Item = std::ffi::OsString>) -> Vec<std::ffi::OsString> {
    let mut args: Vec<_> = args.into_iter().collect();
    let named_bootstrap = args.first().is_some_and(|a| {
        std::path::Path::new(a).file_name() == Some(std::ffi::OsStr::new("bootstrap"))
    });
    if named_bootstrap && args.len() == 1 {
        args.push("lambda".into());
    }
    args
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[test]
    fn a_binary_named_bootstrap_is_the_lambda_handler() {
        let args = |args: &[&str]| -> Vec<String> {
            arguments(args.iter().map(|a| (*a).into()))
                .into_iter()
                .map(|a| a.into_string().unwrap())
                .collect()
        };
        assert_eq!(
            args(&["/var/task/bootstrap"]),
            ["/var/task/bootstrap", "lambda"]
        );
        assert_eq!(args(&["bootstrap"]), ["bootstrap", "lambda"]);
        assert_eq!(args(&["sensor_stream"]), ["sensor_stream"]);
        assert_eq!(args(&["/opt/bootstrapper"]), ["/opt/bootstrapper"]);
        assert_eq!(
            args(&["bootstrap", "publish", "--nats", "n"]),
            ["bootstrap", "publish", "--nats", "n"]
        );
        let lambda = Cli::try_parse_from(
            args(&["bootstrap"])
                .into_iter()
                .chain(["--database", "D", "--schema", "S", "--pipe", "P"].map(String::from)),
        )
        .unwrap();
        assert!(matches!(lambda.command, Some(Command::Lambda(_))));
    }

    /// `sensor_stream <sub> --database D --schema S --pipe P <more>`, parsed.
    fn with_destination(sub: &str, more: &[&str]) -> Result<Cli, clap::Error> {
        let destination = ["--database", "D", "--schema", "S", "--pipe", "P"];
        let args = ["sensor_stream", sub].into_iter().chain(destination);
        Cli::try_parse_from(args.chain(more.iter().copied()))
    }

    /// The arguments of `sensor_stream consume` with a destination and `more`.
    fn consume(more: &[&str]) -> ConsumeArgs {
        match with_destination("consume", more).unwrap().command {
            Some(Command::Consume(c)) => c,
            other => panic!("consume: {other:?}"),
        }
    }

    /// Every option also from `SENSOR_STREAM_<FLAG>`; the command line wins. (No other test
    /// of this process reads these variables.)
    #[test]
    fn options_come_from_the_environment_too() {
        for (k, v) in [
            ("SENSOR_STREAM_DATABASE", "D_ENV"),
            ("SENSOR_STREAM_SCHEMA", "S_ENV"),
            ("SENSOR_STREAM_PIPE", "P_ENV"),
            ("SENSOR_STREAM_UNTIL_IDLE", "1min"),
        ] {
            std::env::set_var(k, v);
        }
        let argv = [
            "sensor_stream",
            "consume",
            "--nats",
            "n",
            "--pipe",
            "P_FLAG",
        ];
        let cli: Cli = snowpipe_cli_support::env::try_parse(
            Cli::ENV_PREFIX,
            argv.iter().map(std::ffi::OsString::from).collect(),
            &[],
        )
        .unwrap();
        let Some(Command::Consume(c)) = cli.command else {
            panic!("consume")
        };
        assert_eq!((c.database.as_str(), c.schema.as_str()), ("D_ENV", "S_ENV"));
        assert_eq!(c.pipe, "P_FLAG");
        assert_eq!(c.until_idle, Some(Duration::from_secs(60)));
    }

    #[test]
    fn parses_the_documented_commands() {
        let cli = Cli::try_parse_from(["sensor_stream"]).unwrap();
        assert!(cli.command.is_none());
        assert_eq!(cli.run.duration, Duration::from_secs(20));
        assert_eq!(cli.run.rate, 1000);
        let cli = Cli::try_parse_from([
            "sensor_stream",
            "publish",
            "--nats",
            "nats://127.0.0.1:4222",
            "--stream",
            "S",
            "--shards",
            "16",
            "--count",
            "500",
            "--rate",
            "10000",
            "--seed",
            "3",
        ])
        .unwrap();
        let Some(Command::Publish(p)) = cli.command else {
            panic!("publish")
        };
        assert_eq!(
            (p.stream.shards, p.count, p.rate, p.seed),
            (16, 500, 10_000, Some(3))
        );
        let c = consume(&[
            "--nats",
            "nats://h:1",
            "--profile",
            "p.json",
            "--until-idle",
            "3s",
        ]);
        assert_eq!(c.until_idle, Some(Duration::from_secs(3)));
        assert_eq!((c.stream.stream.as_str(), c.stream.shards), ("SENSORS", 4));
        assert_eq!(c.source, Source::Nats);
        // No --nats: parsed (clap's required_if ignores a defaulted --source); `consume`
        // then stops naming the flag.
        assert!(consume(&[]).nats.is_none());
        let c = consume(&[
            "--source",
            "kinesis",
            "--kinesis-endpoint",
            "http://127.0.0.1:4567",
            "--stream",
            "sensors",
            "--region",
            "eu-west-1",
            "--until-idle",
            "5s",
        ]);
        assert_eq!(c.source, Source::Kinesis);
        assert_eq!(
            c.kinesis.kinesis_endpoint.as_deref(),
            Some("http://127.0.0.1:4567")
        );
        assert_eq!(c.kinesis.dead_letter_pipe, "KINESIS_DEAD_LETTERS_PIPE");
        assert!(!c.kinesis.trust_sequence_numbers);
        assert!(
            consume(&["--source", "kinesis", "--trust-sequence-numbers"])
                .kinesis
                .trust_sequence_numbers
        );
        let cli = with_destination(
            "lambda",
            &["--parallelization-factor", "4", "--failure-mode", "error"],
        )
        .unwrap();
        let Some(Command::Lambda(l)) = cli.command else {
            panic!("lambda")
        };
        assert_eq!(l.parallelization_factor, 4);
        assert!(!l.trust_sequence_numbers);
        let cli = with_destination("lambda", &["--trust-sequence-numbers"]).unwrap();
        let Some(Command::Lambda(l)) = cli.command else {
            panic!("lambda")
        };
        assert!(l.trust_sequence_numbers);
        assert!(Cli::try_parse_from(["sensor_stream", "--source", "kinesis"]).is_ok());
        assert!(Cli::try_parse_from(["sensor_stream", "publish", "--nats", "x"]).is_err());
        assert!(Cli::try_parse_from(["sensor_stream", "--shards", "0"]).is_err());
    }
}
