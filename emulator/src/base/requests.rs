//! The request log: an in-memory ring for tests and an optional JSON-lines file.
//!
//! The ring is bounded twice: by records (`request_log_capacity`) and by bytes
//! (`request_log_max_bytes`). Every text field of a record comes from the client (path,
//! query, headers), so each is cut to [`MAX_FIELD_BYTES`] before the record is kept, and
//! [`RequestRecord::approx_bytes`] charges a record its heap text plus its fixed size.

use std::collections::VecDeque;
use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;

use crate::base::error::EmulatorError;
use crate::base::faults::Endpoint;

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
    /// [`offset_span_violation`](crate::service::offsets::offset_span_violation)).
    pub offset_violation: Option<String>,
    /// On an accepted append: whether it echoed the channel's `x-snowflake-session`
    /// (`echoed`), sent none (`missing`) or sent another incarnation's (`stale`).
    pub session: Option<String>,
}

/// Longest text field a logged record keeps (longer ones are cut at a character boundary and
/// end in `…`).
pub const MAX_FIELD_BYTES: usize = 1024;

fn cut(s: &mut String) {
    if s.len() > MAX_FIELD_BYTES {
        let mut end = MAX_FIELD_BYTES;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
        s.shrink_to_fit();
    }
}

impl RequestRecord {
    /// Cuts every client-supplied text field to [`MAX_FIELD_BYTES`].
    pub(crate) fn cap_fields(&mut self) {
        for s in [&mut self.method, &mut self.path, &mut self.query] {
            cut(s);
        }
        for s in [
            &mut self.channel,
            &mut self.error_code,
            &mut self.request_id,
            &mut self.token_type,
            &mut self.offset_violation,
            &mut self.session,
        ]
        .into_iter()
        .flatten()
        {
            cut(s);
        }
        self.faults.iter_mut().for_each(cut);
    }

    /// Memory the record holds, approximately: its fixed size plus the length of its text.
    pub fn approx_bytes(&self) -> usize {
        let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
        std::mem::size_of::<Self>()
            + self.method.len()
            + self.path.len()
            + self.query.len()
            + opt(&self.channel)
            + opt(&self.error_code)
            + opt(&self.request_id)
            + opt(&self.token_type)
            + opt(&self.offset_violation)
            + opt(&self.session)
            + self.faults.len() * std::mem::size_of::<String>()
            + self.faults.iter().map(String::len).sum::<usize>()
    }
}

/// The in-memory ring and the bytes its records hold.
#[derive(Default)]
struct Ring {
    records: VecDeque<RequestRecord>,
    bytes: usize,
}

pub(crate) struct RequestLog {
    ring: Mutex<Ring>,
    capacity: usize,
    max_bytes: usize,
    file: Option<Mutex<std::io::BufWriter<std::fs::File>>>,
    total: AtomicU64,
}

impl RequestLog {
    pub(crate) fn new(
        capacity: usize,
        max_bytes: usize,
        file: Option<&Path>,
    ) -> Result<Self, EmulatorError> {
        let file = match file {
            Some(p) => Some(Mutex::new(std::io::BufWriter::new(
                crate::base::private_fs::open_private_append(p).map_err(|e| {
                    EmulatorError::config(format!("cannot open the request log {}", p.display()))
                        .with_source(e)
                })?,
            ))),
            None => None,
        };
        Ok(Self {
            ring: Mutex::new(Ring::default()),
            capacity,
            max_bytes,
            file,
            total: AtomicU64::new(0),
        })
    }

    pub(crate) fn push(&self, mut r: RequestRecord) {
        r.cap_fields();
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
        let size = r.approx_bytes();
        if self.capacity == 0 || size > self.max_bytes {
            return;
        }
        let mut ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        while ring.records.len() >= self.capacity || ring.bytes + size > self.max_bytes {
            match ring.records.pop_front() {
                Some(old) => ring.bytes -= old.approx_bytes(),
                None => break,
            }
        }
        ring.bytes += size;
        ring.records.push_back(r);
    }

    /// Bytes the in-memory records hold (see [`RequestRecord::approx_bytes`]).
    pub(crate) fn bytes(&self) -> usize {
        self.ring.lock().unwrap_or_else(|e| e.into_inner()).bytes
    }

    pub(crate) fn snapshot(&self) -> Vec<RequestRecord> {
        self.ring
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .records
            .iter()
            .cloned()
            .collect()
    }

    /// The latest `n` records, oldest first.
    pub(crate) fn recent(&self, n: usize) -> Vec<RequestRecord> {
        let ring = self.ring.lock().unwrap_or_else(|e| e.into_inner());
        let ring = &ring.records;
        ring.iter()
            .skip(ring.len().saturating_sub(n))
            .cloned()
            .collect()
    }

    pub(crate) fn total(&self) -> u64 {
        self.total.load(Ordering::Relaxed)
    }
}
