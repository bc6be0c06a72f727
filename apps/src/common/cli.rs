//! The command line every application has: a subcommand that runs one part as its own
//! process, or, without one, the all-in-one run.

/// Declares `Cli`, an application's command line (`Option<Command>`, else `RunArgs`, both from
/// the calling module, and `--log-format`), `Cli::from_args`, which also reads every option
/// from `<env_prefix><FLAG>` (`snowpipe_cli_support::env`) and installs the logger, and its
/// `cli_is_consistent` test; the doc comment is the help's text.
macro_rules! app_cli {
    ($(#[doc = $doc:literal])* name: $name:literal, env_prefix: $prefix:literal $(,)?) => {
        $(#[doc = $doc])*
        #[derive(Debug, clap::Parser)]
        #[command(name = $name, version, args_conflicts_with_subcommands = true)]
        pub(crate) struct Cli {
            /// `--log-format`.
            #[command(flatten)]
            pub log: snowpipe_cli_support::log::LogArgs,
            /// A part to run as its own process.
            #[command(subcommand)]
            pub command: Option<Command>,
            /// Options of the all-in-one run.
            #[command(flatten)]
            pub run: RunArgs,
        }

        impl Cli {
            /// The variables every option is also read from: `--max-client-lag` is
            /// `<prefix>MAX_CLIENT_LAG`.
            pub(crate) const ENV_PREFIX: &'static str = $prefix;

            /// Parses `argv` (options also from their variables; exits as clap does on an
            /// error or `--help`) and installs the logger it asks for.
            pub(crate) fn from_args(argv: Vec<std::ffi::OsString>) -> Self {
                let cli: Self = snowpipe_cli_support::env::parse(Self::ENV_PREFIX, argv, &[]);
                cli.log.init("warn");
                cli
            }
        }

        #[cfg(test)]
        #[test]
        fn cli_is_consistent() {
            <Cli as clap::CommandFactory>::command().debug_assert();
        }
    };
}

pub(crate) use app_cli;
