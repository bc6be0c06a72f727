//! The hostile-input suite's harness (issue 81, item 21): what every input surface's
//! `hostile_<surface>` test composes.
//!
//! - [`Suite`] and [`Case`]: a fixed seed per surface (`HOSTILE_SEED` overrides it), a case
//!   count (`HOSTILE_CASES` overrides it: the opt-in long mode), a deterministic PRNG per case,
//!   and failure messages that always carry the seed and how to rerun.
//! - [`gen`]: the classes of input that keep finding bugs here, each a small function that
//!   writes bytes (sizes past a limit, depth, counts, numbers at the edges, encodings, claims
//!   that disagree with the bytes, duplicates of reserved names).
//! - [`mod@run`]: start a real binary under an address-space cap (`RLIMIT_AS`), feed it stdin,
//!   kill it after a wall-clock limit, and measure its peak RSS and CPU from `wait4`'s rusage.
//! - [`check`]: the suite's assertions (no crash, peak RSS within budget + 64 MB, a refusal
//!   or a dead letter naming the input, CPU linear in the input's size).
//! - [`files`]: hostile files for a flag that names one (`/dev/zero`, a FIFO nobody writes,
//!   a sparse 2 GiB file, a directory, random bytes, a link loop).
//! - [`http`]: a hostile HTTP server in front of a real one (a proxy whose hook answers what
//!   it chooses: endless bodies, gzip bombs, rewritten answers) for the suites of clients.
//! - [`json_logs`]: the JSON log format's checks every package's `json_logs` tests share
//!   (each stderr line one object with the logger's keys; the fatal error's chain).
//!
//! See `hostile/README.md` for how to run it and how to add a surface.

pub mod check;
pub mod files;
pub mod gen;
pub mod http;
pub mod json_logs;
pub mod rng;
#[allow(
    unsafe_code,
    reason = "the harness's job: fork, setrlimit and wait4 through libc (SAFETY on each block)"
)]
pub mod run;
mod suite;

pub use check::assert_linear;
pub use rng::Rng;
pub use run::{run, spawn, Input, Limits, Outcome, Running};
/// The signal [`Running::stop`] sends (cli-support's, re-exported for the suites).
pub use snowpipe_cli_support::process::Signal;
pub use suite::{attempt, Case, Suite};

/// Mebibytes, for budgets.
pub const MIB: u64 = 1 << 20;

/// What a surface may use above its configured memory budget (the "budget + 64 MB").
pub const RSS_SLACK_BYTES: u64 = 64 * MIB;

/// The workspace's rules this package keeps (the import graph's checks cover the others).
#[cfg(test)]
mod house_rules {
    /// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
    #[test]
    fn one_module_style() {
        snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
    }
}
