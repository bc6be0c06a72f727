//! Formats: what a message's bytes are. The one-pass JSON check, Schema Registry values (Avro,
//! Protobuf, JSON Schema) decoded to JSON, and the registry client that fetches their schemas.
//! Nothing here knows about Kafka, rows or Snowflake.

pub(crate) mod avro;
pub(crate) mod avro_depth;
pub(crate) mod avro_idents;
pub(crate) mod avro_names;
pub(crate) mod connect_type;
pub(crate) mod java_map;
pub(crate) mod json_check;
pub(crate) mod json_schema;
pub(crate) mod json_text;
pub(crate) mod json_tree;
pub(crate) mod protobuf;
pub(crate) mod registry;
pub(crate) mod walk;

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
