//! The command line most of the workspace's binaries share in shape: `--log-format`, then a
//! subcommand, or without one the options of the binary's default run (the emulator serves,
//! the sink sinks). Each binary names it and describes it ([`Invocation::command`]) and gives
//! its own subcommands and run options; the variables are [`crate::env`]'s.

use std::ffi::OsString;

/// A binary's command line: `--log-format`, a subcommand `C` or the run's options `R`.
#[derive(Debug, clap::Parser)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Invocation<C: clap::Subcommand, R: clap::Args> {
    /// `--log-format` (read before parsing: [`crate::log::LogFormat::from_args`]).
    #[command(flatten)]
    pub log: crate::log::LogArgs,
    /// The subcommand, when the first argument names one.
    #[command(subcommand)]
    pub command: Option<C>,
    /// The default run's options.
    #[command(flatten)]
    pub run: R,
}

/// Who a binary is, for its `--help` and `--version`.
#[derive(Debug, Clone, Copy)]
pub struct Binary {
    /// Its name (`snowpipe-emulator`).
    pub name: &'static str,
    /// Its version (`env!("CARGO_PKG_VERSION")` of its package).
    pub version: &'static str,
    /// One line on what it is.
    pub about: &'static str,
}

impl<C: clap::Subcommand, R: clap::Args> Invocation<C, R> {
    /// The clap command of `binary`.
    #[must_use]
    pub fn command(binary: Binary) -> clap::Command {
        <Self as clap::CommandFactory>::command()
            .name(binary.name)
            .bin_name(binary.name)
            .version(binary.version)
            .about(binary.about)
    }

    /// `argv` parsed for `binary`, every flag also from its variable under `prefix`, exiting
    /// as clap does on an error or `--help` ([`crate::env::parse`]).
    #[must_use]
    pub fn parse(binary: Binary, prefix: &str, argv: Vec<OsString>) -> Self {
        crate::env::parse_as(Self::command(binary), prefix, argv, &[])
    }

    /// [`Invocation::parse`] without exiting.
    ///
    /// # Errors
    /// Clap's (print with `exit()`).
    pub fn try_parse(
        binary: Binary,
        prefix: &str,
        argv: Vec<OsString>,
    ) -> Result<Self, clap::Error> {
        crate::env::try_parse_as(Self::command(binary), prefix, argv, &[])
    }
}
