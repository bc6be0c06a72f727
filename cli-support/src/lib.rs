//! What the workspace's binaries share on their command line: [`bounded_file`], a file a flag
//! names read within a cap; [`json_scan`], JSON text's bytes outside its strings;
//! [`env`](mod@env), every flag from an environment variable (the twelve-factor way an image is
//! configured); [`invocation`], the shape of a command line with a default run; [`log`], logs
//! for terminals and for machines; [`pace`], a generator's `--rate` and when its next item is
//! due; [`probe_server`], the `--metrics-addr` server of probes and metrics; [`process`], a
//! signal sent to a process and what a process has used; [`signal`], the Ctrl-C or SIGTERM that
//! ends a command; [`text`], what a dead letter keeps of a long record; and [`server_start`], a
//! local server (a tool's, a test's) started on a port chosen free, ready only when it
//! answered, moved to another port when it lost its own.

// `unsafe_code` is denied workspace-wide; `process` is the crate's one module allowed it.
#![warn(missing_docs)]

pub mod bounded_file;
#[cfg(feature = "cli")]
pub mod env;
#[cfg(feature = "cli")]
pub mod invocation;
pub mod json_scan;
#[cfg(feature = "cli")]
pub mod log;
#[cfg(feature = "cli")]
pub mod pace;
#[cfg(feature = "cli")]
pub mod probe_server;
#[cfg(feature = "cli")]
pub mod process;
#[cfg(feature = "cli")]
pub mod server_start;
#[cfg(feature = "cli")]
pub mod signal;
#[cfg(feature = "cli")]
pub mod text;

#[cfg(test)]
mod module_graph_tests;
