//! Operations: the Prometheus metrics, health and readiness ([`metrics`](mod@metrics)), and the
//! process's allocator policy ([`malloc`]).

pub(crate) mod malloc;
pub(crate) mod metrics;
