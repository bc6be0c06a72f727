//! `hostile_app_pace`: a generator's pace (`ski_resort --rate`, `generate --rate`,
//! `ecommerce --rate`, each a decimal number of items a second) given what no pace is —
//! `1e-300`, 0.0009, −1, `NaN`, `inf`, `1e300`, text, nothing — through the real binaries
//! under the suite's memory cap: each is refused as clap refuses a bad value (exit 2), naming
//! the flag, the value and the range to give; 0 (as fast as possible) and 0.5 are taken and
//! the command runs on (to its end, or to failing for want of a server) without a crash.
//!
//! Before round thirteen (this test, debug build): `ecommerce --rate 1e-300` panicked its
//! instance task ("cannot convert float seconds to Duration": the next order due past what a
//! `Duration` holds), and −1 and `NaN` were taken as "as fast as possible".
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::process::Command;
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Suite, MIB};

/// The memory budget of these runs (the applications' default client budget).
const BUDGET: u64 = 256 * MIB;

/// What a case gives every pace flag.
#[derive(Debug, Clone, Copy)]
enum Pace {
    Tiny,
    UnderLeast,
    Negative,
    NaN,
    Infinite,
    Huge,
    Text,
    Empty,
    Zero,
    Half,
}

impl Pace {
    fn text(self) -> &'static str {
        match self {
            Pace::Tiny => "1e-300",
            Pace::UnderLeast => "0.0009",
            Pace::Negative => "-1",
            Pace::NaN => "NaN",
            Pace::Infinite => "inf",
            Pace::Huge => "1e300",
            Pace::Text => "lots",
            Pace::Empty => "",
            Pace::Zero => "0",
            Pace::Half => "0.5",
        }
    }

    fn taken(self) -> bool {
        matches!(self, Pace::Zero | Pace::Half)
    }
}

#[test]
fn hostile_app_pace() {
    let dir = tempfile::tempdir().expect("tempdir");
    let queue = dir.path().join("q.db").display().to_string();
    let ski = env!("CARGO_BIN_EXE_ski_resort");
    let shop = env!("CARGO_BIN_EXE_ecommerce");
    // Each command ends quickly when its pace is taken: one event generated, or a stream that
    // fails for want of a server (port 9 on loopback: nothing listens).
    let targets: [(&str, &str, Vec<&str>); 2] = [
        (
            "ski_resort",
            ski,
            vec!["generate", "--quiet", "--events", "1", "--queue", &queue],
        ),
        (
            "ecommerce",
            shop,
            vec!["stream", "--instance", "0", "--orders", "1"],
        ),
    ];
    let classes = [
        Pace::Tiny,
        Pace::UnderLeast,
        Pace::Negative,
        Pace::NaN,
        Pace::Infinite,
        Pace::Huge,
        Pace::Text,
        Pace::Empty,
        Pace::Zero,
        Pace::Half,
    ];
    let suite = Suite::from_env("app_pace", classes.len());
    suite.for_each(&classes, |case| {
        for (program, exe, words) in &targets {
            probe(&case, program, exe, words);
        }
    });
}

/// Gives `program`'s `--rate` the case's pace (as `--rate=VALUE`, so that `-1` reaches the
/// flag's parser) and checks the answer.
fn probe(case: &Case<Pace>, program: &str, exe: &str, words: &[&str]) {
    let value = case.class.text();
    let mut cmd = Command::new(exe);
    cmd.args(words)
        .arg(format!("--rate={value}"))
        .env_remove("RUST_LOG")
        .env("SNOWFLAKE_URL", "http://127.0.0.1:9")
        .env("SNOWFLAKE_ACCOUNT", "x")
        .env("SNOWFLAKE_USER", "x");
    let mut limits = Limits::with_budget(BUDGET);
    limits.wall = Duration::from_secs(20);
    let o = snowpipe_hostile::run(cmd, Input::Null, &limits).expect("start");
    eprintln!(
        "hostile app_pace case {} ({:?}, {program} --rate={value}): {}",
        case.index,
        case.class,
        o.summary().lines().next().unwrap_or("")
    );
    check::rss_within(case, &o, &limits);
    if case.class.taken() {
        check::no_crash(case, &o);
        if o.code == Some(2) {
            case.fail(format!(
                "{program} --rate={value} was refused: {}",
                o.summary()
            ));
        }
        return;
    }
    check::refused_naming(case, &o, &["--rate", "from 0.001 to 1e9"]);
    if o.code != Some(2) {
        case.fail(format!(
            "{program} --rate={value}: expected exit 2 (a bad value, as clap's own errors): {}",
            o.summary()
        ));
    }
}
