//! Rows: where a message becomes a row. A [`record::Record`] (one message's parts) is written as
//! the row the layout asks for, with its `RECORD_METADATA`, into a per-partition [`batch::Batch`]
//! whose bytes are charged to the sink's [`batch::Budget`] (the one place memory is charged).
//! Schema Registry values are decoded here too ([`value_format`]), on the partition's worker.
//! A partition is named by a [`TopicPartition`], here because it is the lowest room that
//! needs one (the metrics in `ops` are keyed by it); a message's offset meets the SDK's offset
//! tokens in [`KafkaOffset`].

pub mod batch;
pub mod connect_values;
pub mod layout;
pub mod metadata_fields;
pub mod normalize;
mod offset;
pub mod own_columns;
pub mod prefault;
pub mod record;
pub mod row;
mod topic_partition;
pub mod validate;
pub mod value_format;

pub use offset::KafkaOffset;
pub use topic_partition::TopicPartition;
