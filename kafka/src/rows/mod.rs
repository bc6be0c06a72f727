//! Rows: where a message becomes a row. A [`record::Record`] (one message's parts) is written as
//! the row the layout asks for, with its `RECORD_METADATA`, into a per-partition [`batch::Batch`]
//! whose bytes are charged to the sink's [`batch::Budget`] (the one place memory is charged).
//! Schema Registry values are decoded here too ([`value_format`]), on the partition's worker.

pub mod batch;
pub mod connect_values;
pub mod layout;
pub mod metadata_fields;
pub mod prefault;
pub mod record;
pub mod row;
pub mod validate;
pub mod value_format;
