//! `hostile_bench_events_file`: `snowpipe-kafka-lab bench --events-file` given each kind of
//! hostile file (`snowpipe_hostile::files`: `/dev/zero`, a FIFO nobody writes, a sparse 2 GiB
//! file, a directory, random bytes, a link loop) under the suite's memory cap: each refused
//! naming the file, with no crash, no hang and peak RSS within the cap + the budget.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{Input, Limits, Suite, MIB};

/// `snowpipe-kafka-lab bench --events-file` (a sample loaded into memory by design, at most
/// 256 MiB): each kind of hostile file refused naming the file before the bench starts its
/// broker, within the cap + the budget (a FIFO nobody writes hung it until round eleven).
#[test]
fn hostile_bench_events_file() {
    let suite = Suite::from_env("bench_events_file", FileKind::ALL.len());
    let mut l = Limits::with_budget(320 * MIB);
    l.wall = Duration::from_secs(20);
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join(format!("events{}", case.index));
        let file = files::write(case.class, &mut case.rng, &at);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe-kafka-lab"));
        cmd.args(["bench", "--events-file"])
            .arg(&file)
            .env_remove("RUST_LOG");
        let o = snowpipe_hostile::run(cmd, Input::Null, &l).expect("start");
        eprintln!(
            "hostile bench_events_file case {} ({:?}): {}",
            case.index,
            case.class,
            o.summary().lines().next().unwrap_or("")
        );
        files::check_refused(&case, &o, &l, &file, None);
    });
}
