//! The lab of `snowpipe-kafka`: everything its tests, its demo, its bench and its soak run on
//! this machine, kept apart from the sink's library so the sink carries none of it (no
//! emulator, no `anyhow`, no lab commands in the published crate).
//!
//! * `demo`: [`demo::Lab`] (librdkafka's mock Kafka cluster, or a broker's address, with the
//!   embedded emulator, its tables and a key) and `snowpipe-kafka-lab demo`;
//! * `bench`: `snowpipe-kafka-lab bench`, the sink's CPU per GB beside a consume-only floor and
//!   a Python peer on the official SDK;
//! * `soak`: `snowpipe-kafka-lab soak`, the real topology (tansu, the emulator in its own
//!   process, three instances) through kills, stops, scale-outs and network faults.
//!
//! The lab's sink instances are processes of the lab's binary: with arguments that are not a
//! lab command it runs [`snowpipe_kafka::main`], the sink's own command line. Each room uses
//! only the rooms listed before it (`module_graph_tests` checks).

pub mod bench;
pub mod demo;
pub mod soak;

#[cfg(test)]
mod module_graph_tests;
