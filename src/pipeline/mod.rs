//! The data path both channel kinds share, below them: rows serialized to NDJSON
//! (`encode`) into buffers from the client's pool (`pool`), charged to the client-wide memory
//! budget (`budget`), cut into requests (`batch`), compressed (`compress`), and counted
//! (`metrics`); and each pipe's parameters (`pipe_params`: its `BINARY_INPUT_FORMAT`).
//!
//! Nothing here knows a channel: named channels (`channel`) and elastic channels (`elastic`)
//! build on it, and the client (`client::core`) owns the shared instances (one budget, one
//! buffer pool, one compressor pool per client). The compressors take the numbers they need
//! (codec, level, batch cap, budget), not the client's settings.

pub(crate) mod batch;
pub(crate) mod budget;
pub(crate) mod compress;
pub(crate) mod encode;
pub(crate) mod metrics;
pub(crate) mod pipe_params;
pub(crate) mod pool;
