//! The hostile-input suite (issue 81, item 21) on the files the applications' options name:
//! the demos' `emulator --public-key` and `--ddl` (`ski_resort`, `ecommerce`, read by
//! `apps/src/common/mod.rs`) and `ecommerce --config`, given to the real binaries under an
//! address-space cap.
//!
//! Each case names one hostile file (endless `/dev/zero`, a FIFO nobody writes, a sparse
//! 2 GiB file, a directory, megabytes of random bytes) in one option and asserts: the binary
//! exits refusing it, naming the file, with no crash or hang and peak RSS within the budget +
//! 64 MiB. `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Suite, MIB};

/// The budget the checks allow (the demos' emulator keeps its default 512 MiB pending budget,
/// which a refusal never approaches).
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
fn hostile_app_option_files() {
    let suite = Suite::from_env("app_option_files", Kind::ALL.len());
    suite.for_each(&Kind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&mut case, dir.path());
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
            check::no_crash(&case, &o);
            check::rss_within(&case, &o, &limits());
            check::refused_naming(&case, &o, &[file.to_str().unwrap()]);
        }
    });
}
