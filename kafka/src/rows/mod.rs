//! Rows: where a message becomes a row. A [`record::Record`] (one message's parts) is written as
//! the row the layout asks for, with its `RECORD_METADATA`, into a per-partition [`batch::Batch`]
//! whose bytes are charged to the sink's [`batch::Budget`] (the one place memory is charged).
//! Schema Registry values are decoded here too ([`value_format`]), on the partition's worker.
//! A partition is named by a [`TopicPartition`], here because it is the lowest room that
//! needs one (the metrics in `ops` are keyed by it); a message's offset meets the SDK's offset
//! tokens in [`KafkaOffset`].

pub(crate) mod batch;
pub(crate) mod connect_values;
pub(crate) mod layout;
pub(crate) mod metadata_fields;
pub(crate) mod normalize;
mod offset;
pub(crate) mod own_columns;
pub(crate) mod prefault;
pub(crate) mod record;
pub(crate) mod row;
mod topic_partition;
pub(crate) mod validate;
pub(crate) mod value_format;

pub(crate) use offset::KafkaOffset;
pub(crate) use topic_partition::TopicPartition;
