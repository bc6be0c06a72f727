//! [`DataMetrics`]: the data-path metrics both channel kinds report (`docs/METRICS.md`).

use metrics::{Counter, Gauge, Histogram};

/// The data-path metrics every channel has, named or elastic (labels `channel`, `pipe`,
/// `kind`): one list, so both kinds report the same names.
#[derive(Debug, Clone)]
pub(crate) struct DataMetrics {
    pub(crate) rows_appended: Counter,
    pub(crate) bytes_appended: Counter,
    pub(crate) requests: Counter,
    pub(crate) request_errors: Counter,
    pub(crate) retries: Counter,
    pub(crate) wire_bytes: Counter,
    pub(crate) backpressure_wait: Histogram,
    pub(crate) buffer_bytes: Gauge,
}

impl DataMetrics {
    /// Registers the metrics of channel `channel` of `pipe`, of `kind` `named` or `elastic`.
    pub(crate) fn new(channel: &str, pipe: &str, kind: &'static str) -> Self {
        let labels = Self::labels(channel, pipe, kind);
        Self {
            rows_appended: metrics::counter!("snowpipe_rows_appended_total", &labels),
            bytes_appended: metrics::counter!("snowpipe_bytes_appended_total", &labels),
            requests: metrics::counter!("snowpipe_requests_total", &labels),
            request_errors: metrics::counter!("snowpipe_request_errors_total", &labels),
            retries: metrics::counter!("snowpipe_append_retries_total", &labels),
            wire_bytes: metrics::counter!("snowpipe_wire_bytes_total", &labels),
            backpressure_wait: metrics::histogram!("snowpipe_backpressure_wait_seconds", &labels),
            buffer_bytes: metrics::gauge!("snowpipe_buffer_bytes", &labels),
        }
    }

    /// The labels of a channel's metrics.
    pub(crate) fn labels(
        channel: &str,
        pipe: &str,
        kind: &'static str,
    ) -> [(&'static str, String); 3] {
        [
            ("channel", channel.to_owned()),
            ("pipe", pipe.to_owned()),
            ("kind", kind.to_owned()),
        ]
    }
}
