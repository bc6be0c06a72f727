//! The hostile-input suite (issue 81, item 21) on the SDK's side of the wire: a hostile
//! server's answers, through the real `snowpipe load` (which drives the SDK end to end).
//!
//! The harness's hostile proxy (`snowpipe_hostile::http::Proxy`, its hook made from a
//! [`plan`]) sits in front of the lab's emulator on loopback
//! (plain HTTP: the SDK sends `http://` to loopback hosts) and answers one step of the
//! protocol (hostname, token, pipe info and open, append, status) with one hostile [`Answer`]
//! while the others behave like the emulator. Each case loads a small NDJSON file through it
//! under the harness's memory cap and asserts: no crash or hang, peak RSS within the SDK's
//! memory budget + 64 MiB; a fault that passes (sent a limited number of times) or a token
//! lifetime the SDK clamps must be got through, every row loaded exactly once by that run;
//! any other class ends in exit 0 or a non-zero exit whose error names the step. Then the
//! hostile server is replaced by a good one and a rerun must load every row exactly once
//! (nothing lost or duplicated because of what the hostile server said). `HOSTILE_SEED` / `HOSTILE_CASES`: `hostile/README.md`.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::time::Duration;

use snowpipe_hostile::http::Proxy;
use snowpipe_hostile::{check, Case, Input, Limits, Outcome, Suite, MIB};

use crate::common::Lab;

mod answers;
mod plan;

use answers::Answer;
use plan::{Plan, Step};

/// The SDK's memory budget in these runs (`memory_budget_bytes` in the profile).
const BUDGET: u64 = 256 * MIB;
/// The rows of the file.
const ROWS: u64 = 200;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A call retries for 5 s, a request takes 3 s, a channel recovers for 10 s and the last
    // commit is awaited 8 s: 40 s means a hang.
    l.wall = Duration::from_secs(40);
    l
}

/// Forever, for a plan.
const ALWAYS: u32 = u32::MAX;

const fn c(step: Step, answer: Answer, times: u32) -> Plan {
    Plan {
        step,
        answer,
        times,
    }
}

/// The classes: a hostile answer at a step, how many times.
const CLASSES: &[Plan] = &[
    c(Step::Hostname, Answer::EndlessChunked, ALWAYS),
    c(Step::Hostname, Answer::HugeLength, ALWAYS),
    c(Step::Hostname, Answer::GzipBomb, ALWAYS),
    c(Step::Hostname, Answer::DeepJson, ALWAYS),
    c(Step::Hostname, Answer::InvalidUtf8, ALWAYS),
    c(Step::Hostname, Answer::SlowDrip, 1),
    c(Step::Token, Answer::HugeLength, ALWAYS),
    c(Step::Token, Answer::WrongTypes, ALWAYS),
    c(Step::Token, Answer::TokenForever, ALWAYS),
    c(Step::Token, Answer::RetryAfterHuge, ALWAYS),
    c(Step::Open, Answer::GzipBomb, ALWAYS),
    c(Step::Open, Answer::WrongTypes, ALWAYS),
    c(Step::Open, Answer::CommittedAhead, ALWAYS),
    c(Step::Open, Answer::RetryAfterNegative, 2),
    c(Step::Open, Answer::ResetMidway, 1),
    c(Step::Append, Answer::EndlessChunked, ALWAYS),
    c(Step::Append, Answer::DeepJson, 1),
    c(Step::Append, Answer::ResetMidway, 1),
    c(Step::Append, Answer::SlowDrip, 1),
    c(Step::Append, Answer::Unavailable, ALWAYS),
    c(Step::Append, Answer::RetryAfterHuge, 1),
    c(Step::Append, Answer::HugeLength, 1),
    c(Step::Status, Answer::RetryAfterHuge, 2),
    c(Step::Status, Answer::GzipBomb, ALWAYS),
    c(Step::Status, Answer::DeepJson, 3),
    c(Step::Status, Answer::CommittedBackwards, ALWAYS),
    c(Step::Status, Answer::CommittedAhead, ALWAYS),
    c(Step::Status, Answer::OtherChannel, ALWAYS),
    c(Step::Status, Answer::InvalidUtf8, ALWAYS),
    c(Step::Status, Answer::SlowDrip, 1),
];

/// What an error about `step` names (the SDK's operation names, `src/rest.rs`).
fn step_names(step: Step) -> &'static [&'static str] {
    match step {
        Step::Hostname => &["hostname discovery"],
        Step::Token => &["token exchange"],
        Step::Open => &["open channel", "pipe info"],
        Step::Append => &["append"],
        Step::Status => &["status", "commit"],
    }
}

/// Whether the SDK must get through `plan` by itself: a fault that passes (it retries, or
/// reopens and replays after the committed token), or a token lifetime it clamps.
fn retried_through(plan: &Plan) -> bool {
    plan.times != ALWAYS || plan.answer == Answer::TokenForever
}

fn run_load(lab: &Lab, file: &Path, profile: &Path) -> Outcome {
    let mut cmd = lab.command(&[file], &[]);
    cmd.arg("--profile").arg(profile);
    cmd.args(["--max-client-lag", "20ms", "--commit-timeout", "8s"]);
    snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start snowpipe")
}

fn one_case(case: &Case<Plan>) {
    let lab = Lab::new();
    let file = lab.path("rows.ndjson");
    std::fs::write(&file, crate::common::ndjson(1..=ROWS)).unwrap();
    let proxy = Proxy::start(lab.emulator.as_ref().unwrap().addr());
    let profile = lab.profile_at(
        &proxy.url(),
        &serde_json::json!({
            "memory_budget_bytes": BUDGET,
            "retry_total_budget": "5s",
            "retry_initial_backoff": "50ms",
            "retry_max_backoff": "1s",
            "request_timeout": "3s",
            "recovery_timeout": "10s",
        }),
    );
    proxy.set(Some(plan::hook(case.class)));
    let o = run_load(&lab, &file, &profile);
    eprintln!("{:?}: {}", case.class, o.summary());
    check::no_crash(case, &o);
    check::rss_within(case, &o, &limits());
    if retried_through(&case.class) {
        // A passing fault (or a lifetime the SDK clamps): this run itself loads every row once.
        check::exited_ok(case, &o);
        let counts = lab.counts();
        if counts != (ROWS, ROWS) {
            case.fail(format!(
                "rows (count, distinct) {counts:?}, want {ROWS} each"
            ));
        }
    } else if o.code != Some(0) {
        let err = o.stderr_text().to_lowercase();
        if !step_names(case.class.step).iter().any(|n| err.contains(n)) {
            case.fail(format!(
                "the error names none of {:?}: {}",
                step_names(case.class.step),
                o.summary()
            ));
        }
    }
    proxy.set(None);
    let again = run_load(&lab, &file, &profile);
    check::exited_ok(case, &again);
    let counts = lab.counts();
    if counts != (ROWS, ROWS) {
        case.fail(format!(
            "after the hostile run ({}) and a good rerun, rows (count, distinct) {counts:?}, \
             want {ROWS} each",
            o.summary()
        ));
    }
}

#[test]
fn hostile_server_answers() {
    let suite = Suite::from_env("server_answers", CLASSES.len());
    suite.for_each(CLASSES, |case| one_case(&case));
}
