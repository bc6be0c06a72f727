//! What the workspace's binaries share on their command line: [`env`](mod@env), every flag from an
//! environment variable (the twelve-factor way an image is configured), [`log`], logs for
//! terminals and for machines, and [`signal`], the Ctrl-C or SIGTERM that ends a command.
//!
//! Not a stable API: it serves `snowpipe-kafka`, `snowpipe-emulator` and the applications.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod env;
pub mod log;
pub mod signal;

#[cfg(test)]
mod module_graph_tests;
