//! `snowpipe-kafka`: a Kafka consumer-group sink for Snowpipe Streaming.
//!
//! Users scale out by running more instances in one consumer group; the group coordinator moves
//! partitions between them, and every message still lands in Snowflake exactly once:
//!
//! * **One channel per partition**, named `<prefix>_<topic>_<partition>` (the prefix defaults to
//!   the group; `--connector-name` takes Snowflake's Kafka connector's names, [`connector`]),
//!   so whichever instance gets a partition opens the same channel.
//! * **The Kafka offset is each row's offset token** (one token per row: offsets have gaps).
//!   Snowflake's committed token is the position; Kafka's group offsets are committed after it,
//!   for lag tooling only, and never read back for correctness.
//! * **A rebalance is a hand-over** ([`snowpipe_streaming::Channel::hand_over`]): on revoke, the
//!   partition's worker delivers what was fetched, waits (bounded) for the commit and closes; on
//!   assign, the channel is opened and the partition starts at the committed token + 1. A
//!   worker also skips any offset at or before what it knows is in, so a seek that comes too
//!   late cannot duplicate.
//! * **A zombie stops**: an instance paused while its partitions moved gets
//!   `OwnershipLost` from the SDK (the new owner's open fenced it) and stops writing; it asks to
//!   rejoin the group, whose next assignment opens the channel afresh.
//! * **A bad message never stops a partition**: it goes to `--dead-letter-topic` with the reason
//!   in a header, or is skipped, logged and counted ([`dead_letter`]).
//!
//! Modules: [`config`] (the command line), [`connector`] (the channel names of Snowflake's Kafka
//! connector, to continue its channels), [`properties`] (librdkafka properties and their secrets),
//! [`consumer`] (librdkafka on its own thread, the rebalance callbacks), [`batch`] (messages copied
//! into per-partition batches within the byte budget), [`prefault`] (their fresh buffers faulted in
//! off the poll thread), [`sink`] (the async side), [`subscription`] (which subscription errors
//! stop the sink), [`partition`] (one partition's worker), [`record`] (message → row),
//! [`json_check`] (the one-pass check that a row is JSON), [`layout`] (the connector's row layouts
//! and tombstones), [`metadata_fields`] (its `snowflake.metadata.*` flags), [`create_tables`]
//! (`--create-tables`), [`migrate_v3`] (`--migrate-v3-offsets`), [`dead_letter`], [`report`] (the
//! progress and closing lines), [`metrics`](mod@metrics) (Prometheus, health and readiness);
//! [`value_format`] (Schema Registry values: `--value-format`), with [`registry`] (the registry
//! client), [`avro`] (Avro → JSON) and [`avro_depth`] (how deep an Avro body nests). With the
//! default feature `demo`: `demo` (`snowpipe-kafka demo`, and the lab the tests use) and `bench`
//! (`snowpipe-kafka bench`), which embed the emulator; without it (`--no-default-features`) the
//! crate is the sink alone.

pub mod avro;
pub mod avro_depth;
pub mod batch;
#[cfg(feature = "demo")]
pub mod bench;
#[cfg(feature = "demo")]
mod bench_steady;
pub mod config;
pub mod connect_values;
pub mod connector;
pub mod connector_config;
pub mod consumer;
pub mod create_tables;
pub mod dead_letter;
#[cfg(feature = "demo")]
pub mod demo;
pub mod fetch_queue;
pub mod json_check;
pub mod json_schema;
pub mod json_tree;
pub mod layout;
pub mod malloc;
pub mod metadata_fields;
pub mod metrics;
pub mod migrate_v3;
pub mod normalize;
pub mod partition;
pub mod prefault;
pub mod properties;
pub mod protobuf;
pub mod record;
pub mod registry;
pub mod report;
pub mod sink;
pub mod subscription;
pub mod topic_table;
pub mod value_format;
pub mod walk;
