//! Formats: what a message's bytes are. The one-pass JSON check, Schema Registry values (Avro,
//! Protobuf, JSON Schema) decoded to JSON, and the registry client that fetches their schemas.
//! Nothing here knows about Kafka, rows or Snowflake.

pub mod avro;
pub mod avro_depth;
pub mod avro_idents;
pub mod avro_names;
pub mod connect_type;
pub mod java_map;
pub mod json_check;
pub mod json_schema;
pub mod json_text;
pub mod json_tree;
pub mod protobuf;
pub mod registry;
pub mod walk;

use clap::ValueEnum;

/// How message values are encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueFormat {
    /// JSON text (the default).
    Json,
    /// UTF-8 text, stored as a JSON string (the connector's StringConverter; `--layout
    /// record-content` only).
    #[value(name = "string")]
    String,
    /// Avro in the Schema Registry wire format.
    Avro,
    /// JSON in the Schema Registry wire format (a JSON Schema subject).
    JsonSchema,
    /// Protobuf in the Schema Registry wire format.
    Protobuf,
}
