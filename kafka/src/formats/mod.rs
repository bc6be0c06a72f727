//! Formats: what a message's bytes are. The one-pass JSON check, Schema Registry values (Avro,
//! Protobuf, JSON Schema) decoded to JSON, and the registry client that fetches their schemas.
//! Nothing here knows about Kafka, rows or Snowflake.

pub mod avro;
pub mod avro_depth;
pub mod json_check;
pub mod json_schema;
pub mod json_tree;
pub mod protobuf;
pub mod registry;
pub mod walk;
