//! Applications built on `snowpipe_streaming`, each a module with a `main` that its binary
//! (`src/bin/<app>.rs`) and its example (`examples/<app>.rs`) call:
//!
//! * [`ski_resort`]: the Snowflake ski-resort quickstart, exactly once across crashes through
//!   a local queue;
//! * [`ecommerce`]: synthetic orders through two channels per instance, resumable without a
//!   queue;
//! * [`sensor_stream`]: a NATS JetStream feed, exactly once by stream sequence;
//! * [`table_replay`]: a MySQL/MariaDB table replayed and verified with SQL;
//! * [`throughput`]: the throughput, CPU, memory and commit-latency harness.
//!
//! [`common`] is the scaffolding they share and the SDK should not have. The layering: this
//! package uses the SDK's public API (and the emulator's, to run one in-process); neither the
//! SDK nor the emulator knows about it.

pub mod common;
pub mod ecommerce;
pub mod sensor_stream;
pub mod ski_resort;
pub mod table_replay;
pub mod throughput;

#[cfg(test)]
mod module_graph_tests;
