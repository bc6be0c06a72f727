//! `hostile_bench_input`: the NDJSON `throughput --input` loads into memory by design (the
//! benchmark's rows), made each kind of hostile file (`snowpipe_hostile::files`: `/dev/zero`,
//! a FIFO nobody writes, a sparse 2 GiB file, a directory, random bytes, a link loop), through
//! the real binary under the suite's memory cap: each refused naming the file (and the
//! 256 MiB limit, for the endless and the huge), no crash, no hang, peak RSS within the
//! budget + 64 MiB. `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{Input, Limits, Suite, MIB};

/// The memory budget of these runs: `--input`'s cap (256 MiB) is read before it is refused.
const BUDGET: u64 = 320 * MIB;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    l.wall = Duration::from_secs(30);
    l
}

#[test]
fn hostile_bench_input() {
    let suite = Suite::from_env("bench_input", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join(format!("rows{}.ndjson", case.index));
        let file = files::write(case.class, &mut case.rng, &at);
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_throughput"));
        cmd.arg("--input")
            .arg(&file)
            .args(["--rows", "10"])
            .env_remove("RUST_LOG");
        let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start");
        eprintln!(
            "hostile bench_input case {} ({:?}): {}",
            case.index,
            case.class,
            o.summary().lines().next().unwrap_or("")
        );
        files::check_refused(&case, &o, &limits(), &file, Some("more than 256 MiB"));
    });
}
