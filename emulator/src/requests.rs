//! The request log: an in-memory ring for tests and an optional JSON-lines file.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::faults::Endpoint;
use crate::EmulatorError;

/// One handled request. Never contains credentials or bodies.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RequestRecord {
    /// Arrival time, milliseconds since the Unix epoch.
    pub timestamp_ms: i64,
    /// HTTP method.
    pub method: String,
    /// Path as received (percent-encoded).
    pub path: String,
    /// Raw query string.
    pub query: String,
    /// Which protocol endpoint it addressed.
    pub endpoint: Endpoint,
    /// Channel name, when the path names one (percent-decoded).
    pub channel: Option<String>,
    /// HTTP status answered (0 when the response was dropped by a `lost_ack` fault).
    pub status: u16,
    /// Error code answered, if any.
    pub error_code: Option<String>,
    /// `requestId` query parameter.
    pub request_id: Option<String>,
    /// `retryCount` query parameter.
    pub retry_count: Option<u32>,
    /// Body bytes received.
    pub request_bytes: u64,
    /// Time spent handling, in milliseconds.
    pub duration_ms: f64,
    /// Faults that fired on this request.
    pub faults: Vec<String>,
    /// `X-Snowflake-Authorization-Token-Type` header.
    pub token_type: Option<String>,
    /// Why an accepted append's offset tokens cannot name its rows, if they cannot (see
    /// [`offset_span_violation`](crate::offset_span_violation)).
    pub offset_violation: Option<String>,
    /// On an accepted append: whether it echoed the channel's `x-snowflake-session`
    /// (`echoed`), sent none (`missing`) or sent another incarnation's (`stale`).
    pub session: Option<String>,
}

pub(crate) struct RequestLog {
    ring: Mutex<VecDeque<RequestRecord>>,
    capacity: usize,
    file: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    total: AtomicU64,
}

impl RequestLog {
    pub(crate) fn new(capacity: usize, file: Option<&Path>) -> Result<Self, EmulatorError> {
        let file = match file {
            Some(p) => Some(Mutex::new(std::io::BufWriter::new(
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(p)
                    .map_err(|e| {
                        EmulatorError::config(format!(
                            "cannot open the request log {}: {e}",
                            p.display()
                        ))
                        .with_source(e)
                    })?,
            ))),
            None => None,
        };
        Ok(Self {
            ring: Mutex::new(VecDeque::new()),
            capacity,
            file,
            total: AtomicU64::new(0),
        })
    }

    pub(crate) fn push(&self, r: RequestRecord) {
        self.total.fetch_add(1, Ordering::Relaxed);
        tracing::debug!(
            method = %r.method, path = %r.path, status = r.status,
            request_id = r.request_id.as_deref().unwrap_or(""),
            retry_count = r.retry_count.unwrap_or(0),
            ms = r.duration_ms, faults = ?r.faults, "request"
        );
        if let Some(f) = &self.file {
            if let Ok(line) = serde_json::to_string(&r) {
                let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
                let _ = writeln!(f, "{line}");
                let _ = f.flush();
            }
        }
        if self.capacity == 0 {
            return;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        if ring.len() >= self.capacity {
            ring.pop_front();
        }
        ring.push_back(r);
    }

    pub(crate) fn snapshot(&self) -> Vec<RequestRecord> {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// The latest `n` records, oldest first.
    pub(crate) fn recent(&self, n: usize) -> Vec<RequestRecord> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        ring.iter()
            .skip(ring.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}
