//! The Kafka Connect type of each top-level field of a Schema Registry schema, as Confluent's
//! converters make it (`AvroData`, `ProtobufData`, `JsonSchemaData` at v7.9.2, their default
//! configs): what connector v4's schema evolution types a new column by
//! (`TableSchemaResolver.getTableSchemaFromRecordSchema`, the field's `schema().type()` and
//! `schema().name()`). Each decoder works it out once per schema (`avro.rs`, `protobuf.rs`,
//! `json_schema/`); the registry caches the schema, so it is made once per schema id.

use std::collections::HashMap;
use std::sync::OnceLock;

/// A Connect schema's type, with the logical types Connect names (`Decimal`, `Date`, `Time`,
/// `Timestamp`) told apart from their base types: the one enum of Connect's types, for the
/// Schema Registry decoders here (`json_schema`'s nodes hold it) and for the key and header
/// converters in `rows` (`Values.parseString`'s types). The numbers are in the order Connect
/// widens them (`INT8` < … < `INT64` < `FLOAT32` < `FLOAT64`: `Ord`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ConnectType {
    /// `INT8`.
    Int8,
    /// `INT16`.
    Int16,
    /// `INT32`.
    Int32,
    /// `INT64`.
    Int64,
    /// `FLOAT32`.
    Float32,
    /// `FLOAT64`.
    Float64,
    /// `BOOLEAN`.
    Boolean,
    /// `STRING`.
    String,
    /// `BYTES` (the row holds them as base64 text).
    Bytes,
    /// `BYTES` named `org.apache.kafka.connect.data.Decimal`.
    Decimal,
    /// `INT32` named `org.apache.kafka.connect.data.Date`.
    Date,
    /// `INT32` named `org.apache.kafka.connect.data.Time`.
    Time,
    /// `INT64` named `org.apache.kafka.connect.data.Timestamp`.
    Timestamp,
    /// `ARRAY`.
    Array,
    /// `MAP`.
    Map,
    /// `STRUCT`.
    Struct,
}

impl ConnectType {
    /// Connect's name of its base type (`Schema.Type`: a `Date` is `INT32`, a `Decimal`
    /// `BYTES`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Int8 => "INT8",
            Self::Int16 => "INT16",
            Self::Int32 | Self::Date | Self::Time => "INT32",
            Self::Int64 | Self::Timestamp => "INT64",
            Self::Float32 => "FLOAT32",
            Self::Float64 => "FLOAT64",
            Self::Boolean => "BOOLEAN",
            Self::String => "STRING",
            Self::Bytes | Self::Decimal => "BYTES",
            Self::Array => "ARRAY",
            Self::Map => "MAP",
            Self::Struct => "STRUCT",
        }
    }

    /// Whether it is one of the six number types (`INT8` to `FLOAT64`).
    pub fn is_number(self) -> bool {
        self <= Self::Float64
    }
}

/// The Connect types of a schema's top-level fields, by field name (empty when the value's
/// schema is not a struct with fields: v4 then types new columns from the values).
#[derive(Debug, Default)]
pub struct FieldTypes {
    by_name: HashMap<String, ConnectType>,
    /// The same fields under their normalized names, made the first time they are asked for.
    renamed: OnceLock<Box<FieldTypes>>,
}

impl FieldTypes {
    /// The fields, given as (name, type); a name given twice keeps its last type.
    pub fn new(fields: impl IntoIterator<Item = (String, ConnectType)>) -> Self {
        Self {
            by_name: fields.into_iter().collect(),
            renamed: OnceLock::new(),
        }
    }

    /// The type of the field named `name`.
    pub fn get(&self, name: &str) -> Option<ConnectType> {
        self.by_name.get(name).copied()
    }

    /// The same fields under the names `rename` gives them (v4's `normalizeSchemaFieldNames`
    /// when column names are normalized), renamed once: a run has one renaming.
    pub fn renamed(&self, rename: impl Fn(&str) -> String) -> &FieldTypes {
        self.renamed
            .get_or_init(|| Box::new(Self::new(self.by_name.iter().map(|(k, t)| (rename(k), *t)))))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}
