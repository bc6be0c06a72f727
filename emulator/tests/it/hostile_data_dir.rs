//! `hostile_data_dir`: the emulator's scoped-token secret file in `--data-dir`
//! (`<data-dir>/scoped-token.key`), which it reads at start, made each kind of hostile file
//! (`snowpipe_hostile::files`: `/dev/zero` through a link, a FIFO nobody writes, a sparse
//! 2 GiB file, a directory, random bytes, a link loop), through the real binary under the
//! suite's memory cap: each refused naming the file, no crash, no hang, peak RSS within the
//! budget + 64 MiB. And `Catalog::apply_sql_file` (the library's public API, no binary of its
//! own) given the same kinds in this process: each an error naming the file, not read whole.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snowpipe_emulator::catalog::Catalog;
use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{check, Input, Limits, Suite, MIB};

/// The emulator's memory budget in these runs (`--max-pending-bytes`).
const BUDGET: u64 = 256 * MIB;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second; a secret accepted would leave the emulator serving.
    l.wall = Duration::from_secs(20);
    l
}

/// Makes a file of `kind` at `path`; `/dev/zero` is linked there (the name is fixed).
fn make(kind: FileKind, rng: &mut snowpipe_hostile::Rng, path: &Path) -> PathBuf {
    if kind == FileKind::Endless {
        std::os::unix::fs::symlink("/dev/zero", path).unwrap();
        return path.to_owned();
    }
    files::write(kind, rng, path)
}

#[test]
fn hostile_data_dir() {
    let suite = Suite::from_env("data_dir", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let secret = make(
            case.class,
            &mut case.rng,
            &dir.path().join("scoped-token.key"),
        );
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe-emulator"));
        cmd.args(["--port", "0", "--accept-any-key"])
            .args(["--max-pending-bytes", &BUDGET.to_string()])
            .arg("--data-dir")
            .arg(dir.path())
            .env_remove("RUST_LOG");
        let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start");
        eprintln!(
            "hostile data_dir case {} ({:?}): {}",
            case.index,
            case.class,
            o.summary().lines().next().unwrap_or("")
        );
        check::no_crash(&case, &o);
        check::rss_within(&case, &o, &limits());
        check::refused_naming(&case, &o, &[secret.to_str().unwrap()]);
    });
}

#[test]
fn hostile_apply_sql_file() {
    let suite = Suite::from_env("apply_sql_file", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let file = files::write(case.class, &mut case.rng, &dir.path().join("setup.sql"));
        let error = Catalog::new()
            .apply_sql_file(&file)
            .map(|_| ())
            .unwrap_err();
        let text = format!("{error}: {:?}", std::error::Error::source(&error));
        eprintln!(
            "hostile apply_sql_file case {} ({:?}): {text}",
            case.index, case.class
        );
        if !text.contains(file.to_str().unwrap()) {
            case.fail(format!("the error does not name the file: {text}"));
        }
        if case.class.is_oversized() && !text.contains("more than") {
            case.fail(format!("the error does not name the limit: {text}"));
        }
    });
}
