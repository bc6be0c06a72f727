//! `hostile_secret_files`: the files `snowpipe-kafka`'s flags name and read before anything
//! else runs — `--schema-registry-basic-auth file:PATH` (the registry's `USER:PASSWORD`),
//! `--kafka-config`, `--connector-config` and `--topic-map` — each given a hostile file
//! (`snowpipe_hostile::files`: `/dev/zero`, a FIFO nobody writes, a sparse 2 GiB file, a
//! directory, random bytes, a link loop) through `snowpipe-kafka check` under the suite's
//! memory cap. Each is refused naming the file (and the limit, for the endless and the
//! huge), with no crash, no hang and peak RSS within the budget + 64 MiB.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::time::Duration;

use snowpipe_hostile::files::{self, FileKind};
use snowpipe_hostile::{check, Input, Limits, Suite, MIB};

/// The memory budget of these runs: a refusal needs a few MiB.
const BUDGET: u64 = 256 * MIB;

/// The flags that name a file: the argument before the hostile path, and the path's prefix.
const FLAGS: [(&str, &str); 4] = [
    ("--schema-registry-basic-auth", "file:"),
    ("--kafka-config", ""),
    ("--connector-config", ""),
    ("--topic-map", ""),
];

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second; a FIFO waited on would hang until killed here.
    l.wall = Duration::from_secs(20);
    l
}

#[test]
fn hostile_secret_files() {
    let suite = Suite::from_env("secret_files", FileKind::ALL.len());
    suite.for_each(&FileKind::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let at = dir.path().join(format!("file{}", case.index));
        let file = files::write(case.class, &mut case.rng, &at);
        let name = file.to_str().unwrap().to_owned();
        for (flag, prefix) in FLAGS {
            let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe-kafka"));
            cmd.arg("check")
                .args(["--brokers", "127.0.0.1:1", "--group", "g", "--topic", "t"])
                .args(["--pipe", "P", "--database", "D", "--schema", "S"])
                .env_remove("RUST_LOG");
            if flag == "--schema-registry-basic-auth" {
                cmd.args(["--value-format", "avro"])
                    .args(["--schema-registry-url", "http://127.0.0.1:1"]);
            }
            cmd.arg(flag).arg(format!("{prefix}{name}"));
            let o = snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start");
            eprintln!(
                "hostile secret_files case {} ({:?}, {flag}): {}",
                case.index,
                case.class,
                o.summary().lines().next().unwrap_or("")
            );
            check::no_crash(&case, &o);
            check::rss_within(&case, &o, &limits());
            check::refused_naming(&case, &o, &[&name]);
            if case.class.is_oversized() {
                check::refused_naming(&case, &o, &["more than"]);
            }
        }
    });
}
