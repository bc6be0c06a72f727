//! The hostile-input suite (issue 81, item 21) on the files the applications' options name:
//! the demos' `emulator --public-key` and `--ddl` (`ski_resort`, `ecommerce`, read by
//! `apps/src/common/mod.rs`) and `ecommerce --config`, given to the real binaries under an
//! address-space cap.
//!
//! Each case names one hostile file (endless `/dev/zero`, a FIFO nobody writes, a sparse
//! 2 GiB file, a directory, megabytes of random bytes) in one option and asserts: the binary
//! exits refusing it, naming the file, with no crash or hang and peak RSS within the budget +
//! 64 MiB. `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{Input, Limits, Suite, MIB};

/// The budget the checks allow (the demos' emulator keeps its default 512 MiB pending budget,
/// which a refusal never approaches).
const BUDGET: u64 = 256 * MIB;

/// The command lines that name a file: (binary, arguments before the hostile path).
const COMMANDS: [(&str, &[&str]); 4] = [
    (
        env!("CARGO_BIN_EXE_ski_resort"),
        &["emulator", "--port", "0", "--public-key"],
    ),
    (
        env!("CARGO_BIN_EXE_ski_resort"),
        &["emulator", "--port", "0", "--ddl"],
    ),
    (
        env!("CARGO_BIN_EXE_ecommerce"),
        &["emulator", "--port", "0", "--public-key"],
    ),
    (
        env!("CARGO_BIN_EXE_ecommerce"),
        &["stream", "--instance", "0", "--config"],
    ),
];

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second; a file accepted would leave the emulator serving.
    l.wall = Duration::from_secs(20);
    l
}

#[test]
fn hostile_app_option_files() {
    let suite = Suite::from_env("app_option_files", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let file = files::write(
            case.class,
            &mut case.rng,
            &dir.path().join(format!("file{}", case.index)),
        );
        for (exe, args) in COMMANDS {
            let mut cmd = std::process::Command::new(exe);
            cmd.args(args).arg(&file).env_remove("RUST_LOG");
            let option = args.join(" ");
            let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start");
            eprintln!(
                "hostile app_option_files case {} ({:?}, {option}): {}",
                case.index,
                case.class,
                o.summary().lines().next().unwrap_or("")
            );
            files::check_refused(&case, &o, &limits(), &file, None);
        }
    });
}
