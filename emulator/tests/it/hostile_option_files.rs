//! The hostile-input suite (issue 81, item 21) on the files `snowpipe-emulator`'s options
//! name: `--public-key` (a file, or `USER=FILE`), `--ddl`, `--faults`, `--tls-cert` and
//! `--tls-key`, given to the real binary under an address-space cap.
//!
//! Each case names one hostile file (endless `/dev/zero`, a FIFO nobody writes, a sparse
//! 2 GiB file, a directory, megabytes of random bytes) in one option and asserts: the binary
//! exits refusing it, naming the file, with no crash or hang and peak RSS within the budget +
//! 64 MiB. `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{Input, Limits, Suite, MIB};

/// The emulator's memory budget in these runs (`--max-pending-bytes`).
const BUDGET: u64 = 256 * MIB;

/// The options that name a file: the arguments around the hostile path.
const OPTIONS: [&str; 5] = [
    "--public-key",
    "--public-key USER=",
    "--ddl",
    "--faults",
    "--tls-cert",
];

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second; a file accepted would leave the emulator serving.
    l.wall = Duration::from_secs(20);
    l
}

#[test]
fn hostile_option_files() {
    let suite = Suite::from_env("option_files", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let file = files::write(
            case.class,
            &mut case.rng,
            &dir.path().join(format!("file{}", case.index)),
        );
        for option in OPTIONS {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe-emulator"));
            cmd.args(["--port", "0", "--accept-any-key"])
                .args(["--max-pending-bytes", &BUDGET.to_string()])
                .env_remove("RUST_LOG");
            match option.split_once(' ') {
                Some((flag, prefix)) => {
                    cmd.arg(flag).arg(format!("{prefix}{}", file.display()));
                }
                None => {
                    cmd.arg(option).arg(&file);
                }
            }
            if option == "--tls-cert" {
                cmd.arg("--tls-key").arg(&file);
            }
            let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start");
            eprintln!(
                "hostile option_files case {} ({:?}, {option}): {}",
                case.index,
                case.class,
                o.summary().lines().next().unwrap_or("")
            );
            files::check_refused(&case, &o, &limits(), &file, None);
        }
    });
}
