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

/// Every function of the suite against the account named by `SNOWFLAKE_*`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_runs_the_whole_suite() {
    let Some(target) = account() else { return };
    conformance::per_row_tokens_out_of_order_are_refused(Arc::clone(&target) as _).await;
    conformance::the_second_opener_fences_the_first(Arc::clone(&target) as _).await;
    conformance::a_hand_over_passes_the_channel_on(Arc::clone(&target) as _).await;
    conformance::thirty_kb_appends_resume_exactly(Arc::clone(&target) as _).await;
    conformance::a_prefixed_span_larger_than_a_request_resumes_exactly(Arc::clone(&target) as _)
        .await;
    conformance::crash_and_resume(target, 1..2).await;
}
