//! The conformance suite (`snowpipe_streaming::test_util::conformance`) against the backends
//! of `common::conformance`: the emulator (its crash model and two-writer cases run in
//! `exactly_once` and `ownership`; the rest here) and, when `SNOWFLAKE_ACCOUNT`,
//! `SNOWFLAKE_DATABASE` and `SNOWFLAKE_SCHEMA` are set, an account (the whole suite, one crash
//! case; skipped with a message otherwise). The unit tests run it against the in-memory fake.

use std::sync::Arc;

use snowpipe_streaming::test_util::conformance;

use crate::common::conformance::{account, EmulatorTarget};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_refuses_per_row_tokens_out_of_order() {
    let target = EmulatorTarget::start(0, 0).await;
    conformance::per_row_tokens_out_of_order_are_refused(target).await;
}

/// The strict emulator refuses a request naming fewer tokens than rows: appends sharing a
/// request must not name one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_accepts_appends_sharing_a_request() {
    let target = EmulatorTarget::start(0, 0).await;
    conformance::appends_sharing_a_request_name_their_rows(Arc::clone(&target) as _).await;
    let appends: Vec<String> = target
        .emulator
        .requests()
        .iter()
        .filter(|r| r.endpoint == snowpipe_emulator::Endpoint::AppendRows)
        .map(|r| format!("{} {}", r.status, r.query))
        .collect();
    assert_eq!(
        appends.iter().filter(|a| a.starts_with("200 ")).count(),
        2,
        "two requests of two appends each, accepted: {appends:?}"
    );
    assert_eq!(target.server_channel("c")["offset_span_violations"], 0);
}

/// Every function of the suite against the account named by `SNOWFLAKE_*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_runs_the_whole_suite() {
    let Some(target) = account() else { return };
    conformance::per_row_tokens_out_of_order_are_refused(Arc::clone(&target) as _).await;
    conformance::appends_sharing_a_request_name_their_rows(Arc::clone(&target) as _).await;
    conformance::the_second_opener_fences_the_first(Arc::clone(&target) as _).await;
    conformance::a_hand_over_passes_the_channel_on(Arc::clone(&target) as _).await;
    conformance::thirty_kb_appends_resume_exactly(Arc::clone(&target) as _).await;
    conformance::a_prefixed_span_larger_than_a_request_resumes_exactly(Arc::clone(&target) as _)
        .await;
    conformance::a_lane_stream_resumes_and_resizes_exactly(Arc::clone(&target) as _).await;
    conformance::a_caller_routed_stream_resumes_lanes_opened_one_by_one(Arc::clone(&target) as _)
        .await;
    conformance::crash_and_resume(target, 1..2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_runs_a_lane_stream_exactly() {
    let target = EmulatorTarget::start(0, 0).await;
    conformance::a_lane_stream_resumes_and_resizes_exactly(target).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emulator_runs_a_caller_routed_stream_exactly() {
    let target = EmulatorTarget::start(0, 0).await;
    conformance::a_caller_routed_stream_resumes_lanes_opened_one_by_one(target).await;
}
