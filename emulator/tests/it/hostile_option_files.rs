//! The hostile-input suite (issue 81, item 21) on the files `snowpipe-emulator`'s options
//! name: `--public-key` (a file, or `USER=FILE`), `--ddl`, `--faults`, `--tls-cert` and
//! `--tls-key`, given to the real binary under an address-space cap.
//!
//! Each case names one hostile file (endless `/dev/zero`, a FIFO nobody writes, a sparse
//! 2 GiB file, a directory, megabytes of random bytes) in one option and asserts: the binary
//! exits refusing it, naming the file, with no crash or hang and peak RSS within the budget +
//! 64 MiB. `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Suite, MIB};

/// The emulator's memory budget in these runs (`--max-pending-bytes`).
const BUDGET: u64 = 256 * MIB;

/// The kinds of hostile file.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `/dev/zero`: NUL bytes without end (valid UTF-8, no line break).
    Endless,
    /// A FIFO no one writes to.
    Fifo,
    /// A sparse file of 2 GiB.
    Huge,
    /// A directory.
    Directory,
    /// 1–3 MiB of random bytes.
    Garbage,
}

impl Kind {
    const ALL: [Kind; 5] = [
        Kind::Endless,
        Kind::Fifo,
        Kind::Huge,
        Kind::Directory,
        Kind::Garbage,
    ];
}

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

/// Writes the case's hostile file into `dir` and returns its path.
fn write(case: &mut Case<Kind>, dir: &Path) -> PathBuf {
    let path = dir.join(format!("file{}", case.index));
    match case.class {
        Kind::Endless => return PathBuf::from("/dev/zero"),
        Kind::Fifo => {
            let made = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .expect("mkfifo");
            assert!(made.success(), "mkfifo");
        }
        Kind::Huge => std::fs::File::create(&path)
            .unwrap()
            .set_len(2 << 30)
            .unwrap(),
        Kind::Directory => std::fs::create_dir(&path).unwrap(),
        Kind::Garbage => {
            let len = (1 + case.rng.next_u64() % 3) * MIB;
            let bytes: Vec<u8> = (0..len).map(|_| case.rng.next_u64() as u8).collect();
            std::fs::write(&path, bytes).unwrap();
        }
    }
    path
}

#[test]
fn hostile_option_files() {
    let suite = Suite::from_env("option_files", Kind::ALL.len());
    suite.for_each(&Kind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&mut case, dir.path());
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
            check::no_crash(&case, &o);
            check::rss_within(&case, &o, &limits());
            check::refused_naming(&case, &o, &[file.to_str().unwrap()]);
        }
    });
}
