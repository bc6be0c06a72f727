//! `hostile_sizing_numbers`: the numbers that size what `throughput` allocates (`--pool` rows
//! generated, `--channels`, `--idle-channels` and `--lanes` opened, `--batch` rows an append) given
//! u64::MAX and 10^12 through the real binary under the suite's memory cap: each refused
//! naming the flag and its limit, never an abort (before round eleven `--pool` and
//! `--channels` of 10^12 aborted on a failed allocation); so are `table_replay follow
//! --snapshot-lanes` (the channels a snapshot opens per table), `--snapshot-readers` (its
//! source connections) and `--resnapshot`'s names (one not followed refused by name, shown in
//! at most 64 characters). `--rows` (rows a channel streams, nothing sized by it) runs
//! bounded: killed at the wall limit within the budget.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::{check, Input, Limits, Suite, MIB};

/// The memory budget of these runs (the default `--memory-budget-mb` of 256 MiB).
const BUDGET: u64 = 256 * MIB;

/// The flags that size an allocation.
const FLAGS: [&str; 5] = [
    "--pool",
    "--channels",
    "--idle-channels",
    "--lanes",
    "--batch",
];

/// The values a case gives them.
#[derive(Debug, Clone, Copy)]
enum Huge {
    Max,
    Trillion,
}

fn limits(wall: Duration) -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    l.wall = wall;
    l
}

/// `table_replay follow FLAG VALUE` with a source no connection reaches: refused before any
/// connection, naming the flag and `naming`, within the budget.
fn follow_refused(
    case: &snowpipe_hostile::Case<Huge>,
    (flag, value): (&str, &str),
    naming: &[&str],
) -> snowpipe_hostile::Outcome {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_table_replay"));
    cmd.args(["follow", flag, value])
        .args(["--source", "mysql://u@127.0.0.1:9/db", "--table", "t"])
        .args(["--database", "D", "--schema", "S"])
        .env_remove("RUST_LOG");
    let l = limits(Duration::from_secs(20));
    let o = snowpipe_hostile::run(cmd, Input::Null, &l).expect("start");
    check::rss_within(case, &o, &l);
    let mut all = vec![flag];
    all.extend_from_slice(naming);
    check::refused_naming(case, &o, &all);
    o
}

#[test]
fn hostile_sizing_numbers() {
    let suite = Suite::from_env("sizing_numbers", 2);
    suite.for_each(&[Huge::Max, Huge::Trillion], |case| {
        let value = match case.class {
            Huge::Max => u64::MAX.to_string(),
            Huge::Trillion => 1_000_000_000_000u64.to_string(),
        };
        for flag in FLAGS {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_throughput"));
            cmd.args([flag, value.as_str(), "--rows", "10"])
                .env_remove("RUST_LOG");
            let l = limits(Duration::from_secs(20));
            let o = snowpipe_hostile::run(cmd, Input::Null, &l).expect("start");
            eprintln!(
                "hostile sizing_numbers case {} ({:?}, {flag}): {}",
                case.index,
                case.class,
                o.summary().lines().next().unwrap_or("")
            );
            check::rss_within(&case, &o, &l);
            check::refused_naming(&case, &o, &[flag, "at most"]);
        }
        // `table_replay follow --snapshot-lanes`: the channels a snapshot opens per table,
        // refused by the parser before any connection.
        follow_refused(&case, ("--snapshot-lanes", &value), &["1 to 64"]);
        // `table_replay follow --snapshot-readers`: a source connection each, refused by the
        // parser before any connection.
        follow_refused(&case, ("--snapshot-readers", &value), &["1 to 16"]);
        // `table_replay follow --resnapshot`: names, each among `--table`, checked before any
        // connection: 10,000 of them, or one of 120,000 bytes (an argument's most is 128 KiB).
        let names = match case.class {
            Huge::Max => (0..10_000)
                .map(|i| format!("t{i:07}"))
                .collect::<Vec<_>>()
                .join(","),
            Huge::Trillion => "x".repeat(120_000),
        };
        let o = follow_refused(&case, ("--resnapshot", &names), &["not a followed table"]);
        if o.stderr.len() > 4_096 {
            case.fail(format!(
                "--resnapshot's refusal is {} bytes",
                o.stderr.len()
            ));
        }
        // `--rows` sizes nothing: the run goes on within the budget until killed.
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_throughput"));
        cmd.args(["--rows", value.as_str(), "--pool", "1000"])
            .env_remove("RUST_LOG");
        let l = limits(Duration::from_secs(8));
        let o = snowpipe_hostile::run(cmd, Input::Null, &l).expect("start");
        check::rss_within(&case, &o, &l);
        if o.signal.is_some() && !o.timed_out {
            case.fail(format!("--rows {value} died: {}", o.summary()));
        }
    });
}
