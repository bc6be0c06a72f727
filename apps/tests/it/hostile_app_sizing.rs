//! `hostile_app_sizing`: the numbers that size an application's own workload
//! (`ski_resort --events` and `--events-per-day`, `ecommerce --orders`, `--instances` and
//! `--customers`, `sensor_stream publish --count`, `--shards` and `--rate`, `table_replay
//! --rows`) given 0, −1, 10^12, u64::MAX, `1e9`, `NaN` and text through the real binaries
//! under the suite's memory cap. A value past a flag's cap (or not a whole number, or under its least) is refused
//! as clap refuses a bad value (exit 2), naming the flag, the value and (past the cap) the
//! limit and the fix, before anything is sized or spawned; an accepted value runs (each
//! command here then fails fast, reaching no server, or finishes) within the budget.
//!
//! Before round twelve (this test, debug build): `ecommerce --instances 4294967295` aborted
//! on a failed allocation of 34 GB (one counter set per instance); `--customers u64::MAX
//! --instances 2` panicked on an overflow splitting the customers; `ski_resort --events
//! 10^12` (and `generate`'s) and `table_replay --rows 10^12` ran until killed (a queue growing
//! ~290 bytes an event, a private MariaDB filling); `sensor_stream publish --count` and
//! `table_replay sample --rows` took 10^12 and u64::MAX (they failed only for want of a
//! server); `--events-per-day 0` was taken as 1; `ecommerce --orders` past an instance's ids
//! was refused, but with exit 1 naming `--instances`. −1, `1e9`, `NaN` and text clap refused.
//! Before round thirteen `sensor_stream publish --rate 0` was refused with exit 1 after
//! parsing, and `--rate` 10^12 by clap without the limit or the fix.
//! `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Suite, MIB};

/// The memory budget of these runs (the applications' default client budget).
const BUDGET: u64 = 256 * MIB;

/// The values a case gives every flag.
#[derive(Debug, Clone, Copy)]
enum Value {
    Zero,
    MinusOne,
    Trillion,
    Max,
    Scientific,
    NaN,
    Text,
}

impl Value {
    fn text(self) -> String {
        match self {
            Value::Zero => "0".into(),
            Value::MinusOne => "-1".into(),
            Value::Trillion => 1_000_000_000_000u64.to_string(),
            Value::Max => u64::MAX.to_string(),
            Value::Scientific => "1e9".into(),
            Value::NaN => "NaN".into(),
            Value::Text => "lots".into(),
        }
    }
}

/// One sizing flag: the program, the words before the flag, the flag, its least value.
struct Target {
    program: &'static str,
    exe: &'static str,
    words: Vec<String>,
    flag: &'static str,
    least: u64,
}

fn targets(dir: &Path) -> Vec<Target> {
    let queue = dir.join("q.db").display().to_string();
    let missing = dir.join("no-such-data-dir").display().to_string();
    let words = |w: &[&str]| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let t = |program, exe, words: Vec<String>, flag, least| Target {
        program,
        exe,
        words,
        flag,
        least,
    };
    let ski = env!("CARGO_BIN_EXE_ski_resort");
    let shop = env!("CARGO_BIN_EXE_ecommerce");
    let sensors = env!("CARGO_BIN_EXE_sensor_stream");
    let replay = env!("CARGO_BIN_EXE_table_replay");
    let generate = words(&["generate", "--quiet", "--rate", "0", "--queue", &queue]);
    let report = words(&["report", "--data-dir", &missing]);
    let publish = words(&["publish", "--nats", "nats://127.0.0.1:9"]);
    let sample = words(&["sample", "--source", "mysql://u@127.0.0.1:9/d"]);
    let mut per_day = generate.clone();
    per_day.extend(words(&["--events", "10"]));
    let mut shards = publish.clone();
    shards.extend(words(&["--count", "1"]));
    let rate = shards.clone();
    vec![
        t("ski_resort", ski, generate, "--events", 0),
        t("ski_resort", ski, per_day, "--events-per-day", 1),
        t("ecommerce", shop, report.clone(), "--orders", 0),
        t("ecommerce", shop, report.clone(), "--instances", 1),
        t("ecommerce", shop, report, "--customers", 1),
        t("sensor_stream", sensors, publish, "--count", 0),
        t("sensor_stream", sensors, shards, "--shards", 1),
        t("sensor_stream", sensors, rate, "--rate", 1),
        t("table_replay", replay, sample, "--rows", 0),
        // The all-in-one runs take the same flags (an accepted value starts their servers).
        t("ski_resort", ski, Vec::new(), "--events", 0),
        t("ecommerce", shop, Vec::new(), "--instances", 1),
        t("table_replay", replay, Vec::new(), "--rows", 0),
    ]
}

#[test]
fn hostile_app_sizing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let targets = targets(dir.path());
    let classes = [
        Value::Zero,
        Value::MinusOne,
        Value::Trillion,
        Value::Max,
        Value::Scientific,
        Value::NaN,
        Value::Text,
    ];
    let suite = Suite::from_env("app_sizing", classes.len());
    suite.for_each(&classes, |case| {
        for target in &targets {
            probe(&case, target);
        }
    });
}

/// Gives `target`'s flag the case's value (as `--flag=VALUE`, so that `-1` reaches the
/// flag's parser) and checks the answer.
fn probe(case: &Case<Value>, target: &Target) {
    let value = case.class.text();
    let accepted = matches!(case.class, Value::Zero) && target.least == 0;
    if matches!(case.class, Value::Zero) && target.words.is_empty() {
        return; // an all-in-one run would start its servers: the subcommand's case covers 0
    }
    let mut cmd = Command::new(target.exe);
    cmd.args(&target.words)
        .arg(format!("{}={value}", target.flag))
        .env_remove("RUST_LOG")
        .env("TABLE_REPLAY_PASSWORD", "x");
    let mut limits = Limits::with_budget(BUDGET);
    limits.wall = Duration::from_secs(if accepted { 20 } else { 15 });
    let o = snowpipe_hostile::run(cmd, Input::Null, &limits).expect("start");
    eprintln!(
        "hostile app_sizing case {} ({:?}, {} {} {}): {}",
        case.index,
        case.class,
        target.program,
        target.words.first().map_or("", String::as_str),
        target.flag,
        o.summary().lines().next().unwrap_or("")
    );
    check::rss_within(case, &o, &limits);
    if accepted {
        // Taken: the command goes on to fail (no server at that port) or to finish.
        check::no_crash(case, &o);
        return;
    }
    let mut needles = vec![target.flag, value.as_str()];
    if matches!(case.class, Value::Trillion | Value::Max) {
        needles.extend(["at most", "give"]);
    }
    check::refused_naming(case, &o, &needles);
    if o.code != Some(2) {
        case.fail(format!(
            "{} {}={value}: expected exit 2 (a bad value, as clap's own errors): {}",
            target.program,
            target.flag,
            o.summary()
        ));
    }
}
