//! Exactly once across crashes, from the user's side, against the in-process emulator in
//! strict-offsets mode (every request whose tokens cannot name its rows is refused, so a
//! violation fails loudly): the conformance suite's writer model
//! (`snowpipe_streaming::test_util::conformance::crash_and_resume`, whose docs describe the
//! processes and their crash points; the unit tests run it against the fake). After the last
//! process the table must hold every source row exactly once.
//!
//! Inputs come from fixed seeds (`cargo test` explores the same cases every run); set
//! `EXACTLY_ONCE_SEED=N` to try another seed, `EXACTLY_ONCE_CASES=N` for more cases.

use snowpipe_streaming::test_util::conformance;

use crate::common::conformance::EmulatorTarget;

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// The crash-and-resume matrix: fixed seeds cover the three compressions, both token forms and
/// every crash point. Commits come 100 ms after the append and every append takes 3 ms, so
/// crashes land between them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashes_at_any_point_then_resuming_after_the_committed_token_lands_every_row_once() {
    let first = env_u64("EXACTLY_ONCE_SEED").unwrap_or(1);
    let cases = env_u64("EXACTLY_ONCE_CASES").unwrap_or(6);
    let target = EmulatorTarget::start(100, 3).await;
    conformance::crash_and_resume(target, first..first + cases).await;
}

/// The reproduction: 64 KiB requests, ten 300-row appends of ~30 KB, a crash at
/// the first commit, resume after the committed token in a new client: 3,000 rows for 3,000 ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thirty_kb_appends_with_64_kib_requests_resume_exactly() {
    let target = EmulatorTarget::start(0, 3).await;
    conformance::thirty_kb_appends_resume_exactly(target).await;
}

/// A span of `order_` tokens larger than one request, split into exact sub-spans: a crash
/// mid-stream, resume after the committed token in a new client: 4,000 rows for 4,000 ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prefixed_span_larger_than_a_request_resumes_exactly() {
    let target = EmulatorTarget::start(0, 3).await;
    conformance::a_prefixed_span_larger_than_a_request_resumes_exactly(target).await;
}
