//! What the hostile server does to the SDK's protocol: a [`Plan`] (one [`Answer`] at one
//! [`Step`], a given number of times) made into a hook of the harness's proxy
//! (`snowpipe_hostile::http::Proxy`), which forwards every other request to the emulator.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use snowpipe_hostile::http::{forward, Hook};

use super::answers::{self, Answer};

/// The step of the SDK's protocol a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// `GET /v2/streaming/hostname`.
    Hostname,
    /// `POST /oauth/token`.
    Token,
    /// `POST …:pipe-info` and `PUT …/channels/{c}` (open).
    Open,
    /// `POST …/channels/{c}/rows`.
    Append,
    /// `POST …:bulk-channel-status`.
    Status,
}

impl Step {
    fn of(method: &str, path: &str) -> Option<Step> {
        let path = path.split('?').next().unwrap_or(path);
        Some(if path.ends_with("/v2/streaming/hostname") {
            Step::Hostname
        } else if path.ends_with("/oauth/token") {
            Step::Token
        } else if path.ends_with(":bulk-channel-status") {
            Step::Status
        } else if path.ends_with("/rows") {
            Step::Append
        } else if path.ends_with(":pipe-info") || (method == "PUT" && path.contains("/channels/")) {
            Step::Open
        } else {
            return None;
        })
    }
}

/// What the hostile server does: `answer` at `step`, `times` times (then it forwards).
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    pub step: Step,
    pub answer: Answer,
    pub times: u32,
}

/// The proxy's hook for `plan`: it answers the requests of the plan's step with its answer
/// while uses remain (one taken a request), and leaves every other request to be forwarded.
pub(super) fn hook(plan: Plan) -> Hook {
    let left = Arc::new(AtomicU32::new(plan.times));
    Arc::new(move |req, conn, upstream| {
        if Step::of(&req.method, &req.path) != Some(plan.step) {
            return false;
        }
        let taken = left.fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1));
        if taken.is_err() {
            return false;
        }
        let _ = answers::hostile(plan.answer, conn, || forward(req, upstream));
        true
    })
}
