//! The hostile-input suite (issue 81, item 21) on the file `snowpipe load --emulator-ddl @FILE`
//! names (the embedded emulator's DDL, used when `SNOWFLAKE_ACCOUNT` is not set), through the
//! real binary under an address-space cap.
//!
//! Each case names one hostile file (endless `/dev/zero`, a FIFO nobody writes, a sparse
//! 2 GiB file, a directory, megabytes of random bytes) and asserts: the binary exits refusing
//! it, naming the file, with no crash or hang and peak RSS within the SDK's budget + 64 MiB.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{Input, Limits, Suite, MIB};

/// `snowpipe load` runs with the SDK's default memory budget.
const BUDGET: u64 = 256 * MIB;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second: 20 s is a hang.
    l.wall = Duration::from_secs(20);
    l
}

#[test]
fn hostile_emulator_ddl() {
    let suite = Suite::from_env("emulator_ddl", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let file = files::write(
            case.class,
            &mut case.rng,
            &dir.path().join(format!("file{}", case.index)),
        );
        let data = dir.path().join("rows.ndjson");
        std::fs::write(&data, "{\"ID\":1}\n").unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe"));
        cmd.arg("load")
            .arg(&data)
            .args(["--database", "D", "--schema", "S", "--table", "T"])
            .arg("--emulator-ddl")
            .arg(format!("@{}", file.display()))
            .env_remove("SNOWFLAKE_ACCOUNT")
            .env_remove("SNOWFLAKE_URL")
            .env_remove("RUST_LOG");
        let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start");
        eprintln!(
            "hostile emulator_ddl case {} ({:?}): {}",
            case.index,
            case.class,
            o.summary().lines().next().unwrap_or("")
        );
        files::check_refused(&case, &o, &limits(), &file, None);
    });
}
