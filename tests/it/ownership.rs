//! Two writers of one channel over the wire: the newer opener fences the older one, which
//! must stop (`Error::OwnershipLost`) and never take the channel back; a hand-over passes the
//! channel on at the committed token. The cases are the conformance suite's
//! (`snowpipe_streaming::test_util::conformance`), run here against the emulator, whose
//! count of fenced appends is checked too.
//!
//! * `cargo test -p snowpipe-streaming --test it ownership::`: the CI run.
//!
//! The same with two real processes (the `ecommerce` application, rolling deploys and
//! paused processes) is `apps/tests/it/ownership.rs`; the in-process property test with
//! random interleavings of two writers is `src/channel/ownership_tests.rs`.
#![cfg(unix)]

use std::sync::Arc;

use snowpipe_streaming::test_util::conformance;

use crate::common::conformance::EmulatorTarget;

fn fenced_appends(target: &EmulatorTarget, channel: &str) -> u64 {
    target.server_channel(channel)["fenced_appends"]
        .as_u64()
        .unwrap()
}

/// The suite's fencing case; the emulator counts the fenced append.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_second_opener_fences_the_first_over_the_wire() {
    let target = EmulatorTarget::start(30, 0).await;
    conformance::the_second_opener_fences_the_first(Arc::clone(&target) as _).await;
    assert_eq!(fenced_appends(&target, "c"), 1);
}

/// The suite's hand-over case; nobody was fenced.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_over_passes_the_channel_on_at_the_committed_token() {
    let target = EmulatorTarget::start(30, 0).await;
    conformance::a_hand_over_passes_the_channel_on(Arc::clone(&target) as _).await;
    assert_eq!(fenced_appends(&target, "p3"), 0);
}
