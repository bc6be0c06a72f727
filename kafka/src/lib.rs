//! `snowpipe-kafka`: a Kafka consumer-group sink for Snowpipe Streaming.
//!
//! Users scale out by running more instances in one consumer group; the group coordinator moves
//! partitions between them, and every message still lands in Snowflake exactly once:
//!
//! * **One channel per partition**, named `<prefix>_<topic>_<partition>` (the prefix defaults to
//!   the group; `--connector-name` takes Snowflake's Kafka connector's names, `connector::naming`),
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
//!   in a header, or is skipped, logged and counted (`sink::dead_letter`).
//!
//! The crate's face is the few names re-exported here: the command line ([`SinkArgs`],
//! [`CheckArgs`] and [`check`], [`AuditArgs`] and [`audit`], [`ENV_PREFIX`]), the connector's
//! file ([`expand_connector_config`], [`ConnectorConfig`]), a run ([`run`], [`run_with`], with
//! [`Health`], [`install_metrics`] and [`serve_metrics`]), and one [`Error`] with a variant per
//! room that fails. The rooms themselves are private, lowest first: each uses only the rooms
//! listed before it (`module_graph_tests` checks, with this order):
//!
//! * `lock`: a mutex locked whether a holder panicked or not;
//! * `error`: the crate's [`Error`];
//! * `formats`: what a message's bytes are: the JSON check, Avro, Protobuf and JSON Schema
//!   values and the Schema Registry client;
//! * `rows`: where a message becomes a row (`rows::row`), in a per-partition batch charged to
//!   the memory budget (`rows::batch`);
//! * `ops`: metrics, health and readiness, and the allocator policy;
//! * `source`: librdkafka's consumer on its own thread, the fetch queue it reads in batches,
//!   the router that copies each message into its partition's batch, the subscription and the
//!   user's librdkafka properties;
//! * `connector`: Snowflake's Kafka connector's names, config files, tables and offsets;
//! * `sink`: the async side: one worker per partition appending its batches to its channel,
//!   dead letters, and the progress and closing report;
//! * `cli`: the command line, the settings it becomes, and `check` (the read-only plan of a run).
//!
//! The lab (`demo`, `bench`, `soak` and the `Lab` the tests run in, with the embedded
//! emulator) is a package of its own, `snowpipe-kafka-lab` (`kafka/lab/`, not published): this
//! crate is the sink alone.
#![deny(unsafe_code)]
#![warn(missing_docs)]
// Unsafe code is denied crate-wide; each use allows it where it stands, with its reason (the
// FFI of librdkafka's queues, glibc's allocator and regex, the kernel's counters, one SIMD
// scan), and a `SAFETY:` comment on the block.

mod cli;
mod connector;
mod error;
mod formats;
mod lock;
mod ops;
mod rows;
mod sink;
mod source;

pub use cli::args::{fetch_properties, parse_bytes, parse_duration, MemoryBudget, SinkArgs};
pub use cli::audit::{run as audit, AuditArgs};
pub use cli::check::{run as check, CheckArgs, Format as CheckFormat};
pub use cli::entry::{main, runtime};
pub use connector::config_file::{
    expand as expand_connector_config, parse as parse_connector_config,
    translate as translate_connector_config, ConnectorConfig, ENV_PREFIX,
};
pub use connector::create_tables::statement as create_table_statement;
pub use error::{Detail, Error, Result};
pub use formats::avro_depth::STACK_BYTES;
pub use formats::json_check::{is_one_value, is_one_value_by_one_pass, key_named_twice};
pub use ops::malloc::keep_freed_memory;
pub use ops::metrics::{install as install_metrics, serve as serve_metrics, Health};
pub use rows::layout::LayoutKind;
pub use sink::dead_letter::{REASON_HEADER, SOURCE_HEADERS};
pub use sink::{run, run_with};
pub use source::properties::secrets_on_command_line;

#[cfg(test)]
mod module_graph_tests;
