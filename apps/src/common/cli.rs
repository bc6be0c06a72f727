//! The command line every application has: a subcommand that runs one part as its own
//! process, or, without one, the all-in-one run.

/// Declares `Cli`, an application's command line (`Option<Command>`, else `RunArgs`, both from
/// the calling module), and its `cli_is_consistent` test; the doc comment is the help's text.
macro_rules! app_cli {
    ($(#[doc = $doc:literal])* name: $name:literal $(,)?) => {
        $(#[doc = $doc])*
        #[derive(Debug, clap::Parser)]
        #[command(name = $name, version, args_conflicts_with_subcommands = true)]
        pub struct Cli {
            /// A part to run as its own process.
            #[command(subcommand)]
            pub command: Option<Command>,
            /// Options of the all-in-one run.
            #[command(flatten)]
            pub run: RunArgs,
        }

        #[cfg(test)]
        #[test]
        fn cli_is_consistent() {
            <Cli as clap::CommandFactory>::command().debug_assert();
        }
    };
}

pub(crate) use app_cli;
