//! The hostile-input suite (issue 81, item 21) on the file `snowpipe load --emulator-ddl @FILE`
//! names (the embedded emulator's DDL, used when `SNOWFLAKE_ACCOUNT` is not set), through the
//! real binary under an address-space cap.
//!
//! Each case names one hostile file (endless `/dev/zero`, a FIFO nobody writes, a sparse
//! 2 GiB file, a directory, megabytes of random bytes) and asserts: the binary exits refusing
//! it, naming the file, with no crash or hang and peak RSS within the SDK's budget + 64 MiB.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Suite, MIB};

/// `snowpipe load` runs with the SDK's default memory budget.
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

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second: 20 s is a hang.
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
fn hostile_emulator_ddl() {
    let suite = Suite::from_env("emulator_ddl", Kind::ALL.len());
    suite.for_each(&Kind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let file = write(&mut case, dir.path());
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
        check::no_crash(&case, &o);
        check::rss_within(&case, &o, &limits());
        check::refused_naming(&case, &o, &[file.to_str().unwrap()]);
    });
}
