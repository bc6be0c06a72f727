//! `hostile_password_file`: the file `table_replay --password-file` names (the source
//! database's password, its first line), made each kind of hostile file
//! (`snowpipe_hostile::files`: `/dev/zero`, a FIFO nobody writes, a sparse 2 GiB file, a
//! directory, random bytes, a link loop), through the real binary's `ddl` and `sample` (which
//! read it before connecting) under the suite's memory cap: each refused naming the file (and
//! the limit, for the endless and the huge), no crash, no hang, peak RSS within the budget +
//! 64 MiB. No database is needed: the source address is one nothing listens on.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{Input, Limits, Suite, MIB};

/// The memory budget of these runs: a refusal needs a few MiB.
const BUDGET: u64 = 256 * MIB;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second; a FIFO waited on would hang until killed here.
    l.wall = Duration::from_secs(20);
    l
}

#[test]
fn hostile_password_file() {
    let suite = Suite::from_env("password_file", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join(format!("password{}", case.index));
        let file = files::write(case.class, &mut case.rng, &at);
        for command in ["ddl", "sample"] {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_table_replay"));
            cmd.arg(command)
                .args(["--source", "mysql://replay@127.0.0.1:1/db"])
                .arg("--password-file")
                .arg(&file)
                .env_remove("TABLE_REPLAY_PASSWORD")
                .env_remove("TABLE_REPLAY_SOURCE")
                .env_remove("RUST_LOG");
            if command == "ddl" {
                cmd.args(["--table", "t"]);
            }
            let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start");
            eprintln!(
                "hostile password_file case {} ({:?}, {command}): {}",
                case.index,
                case.class,
                o.summary().lines().next().unwrap_or("")
            );
            files::check_refused(&case, &o, &limits(), &file, Some("more than"));
        }
    });
}
