//! The Connect type `AvroData.toConnectSchema` gives each field of the top-level record
//! (`confluentinc/schema-registry` v7.9.2, `avro-data/…/AvroData.java`, default config):
//! `int` INT32 (INT8 or INT16 with `connect.type` `int8`/`int16`), `date` Date, `time-millis`
//! Time, `long` INT64, `timestamp-millis` Timestamp (the other time types stay INT64),
//! `float` FLOAT32, `double` FLOAT64, `bytes`/`fixed` BYTES, `decimal` Decimal, `string`,
//! `enum` STRING, `array` ARRAY (MAP for an array of `io.confluent.connect.avro.MapEntry`),
//! `map` MAP, `record` STRUCT, `[null, T]` T, a union of several non-null types STRUCT.

use apache_avro::schema::Schema;
use serde_json::Value as Json;

use super::AvroSchema;
use crate::formats::connect_type::{ConnectType, FieldTypes};

impl AvroSchema {
    /// The Connect types of the top-level record's fields (`text`: the schema's text, for the
    /// `connect.type` of `int` fields, which the parsed schema does not keep).
    pub(super) fn connect_fields(&self, text: &str) -> FieldTypes {
        let root = match self.resolve(&self.root) {
            Schema::Union(u) => {
                let mut branches = u.variants().iter().filter(|v| !matches!(v, Schema::Null));
                match (branches.next(), branches.next()) {
                    (Some(one), None) => self.resolve(one),
                    _ => return FieldTypes::default(),
                }
            }
            s => s,
        };
        let Schema::Record(r) = root else {
            return FieldTypes::default();
        };
        let widths = int_widths(text);
        FieldTypes::new(r.fields.iter().filter_map(|f| {
            let t = match self.connect_type(&f.schema)? {
                ConnectType::Int32 => widths
                    .iter()
                    .find(|(n, _)| *n == f.name)
                    .map_or(ConnectType::Int32, |(_, t)| *t),
                t => t,
            };
            Some((f.name.clone(), t))
        }))
    }

    /// The Connect type of a value of `schema` (`None` for `null`).
    fn connect_type(&self, schema: &Schema) -> Option<ConnectType> {
        Some(match self.resolve(schema) {
            Schema::Null | Schema::Ref { .. } => return None,
            Schema::Boolean => ConnectType::Boolean,
            Schema::Int => ConnectType::Int32,
            Schema::Date => ConnectType::Date,
            Schema::TimeMillis => ConnectType::Time,
            Schema::TimestampMillis => ConnectType::Timestamp,
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => ConnectType::Int64,
            Schema::Float => ConnectType::Float32,
            Schema::Double => ConnectType::Float64,
            Schema::Bytes | Schema::Fixed(_) | Schema::Duration | Schema::BigDecimal => {
                ConnectType::Bytes
            }
            Schema::Decimal(_) => ConnectType::Decimal,
            Schema::String | Schema::Uuid | Schema::Enum(_) => ConnectType::String,
            Schema::Array(a) if self.map_entry(&a.items).is_some() => ConnectType::Map,
            Schema::Array(_) => ConnectType::Array,
            Schema::Map(_) => ConnectType::Map,
            Schema::Record(_) => ConnectType::Struct,
            Schema::Union(u) => {
                let mut branches = u.variants().iter().filter(|v| !matches!(v, Schema::Null));
                match (branches.next(), branches.next()) {
                    (Some(one), None) => return self.connect_type(one),
                    (Some(_), Some(_)) => ConnectType::Struct,
                    _ => return None,
                }
            }
        })
    }
}

/// The top-level record's `int` fields annotated `"connect.type": "int8"` or `"int16"` (how
/// AvroConverter writes Connect's INT8 and INT16), read from the schema's text.
fn int_widths(text: &str) -> Vec<(String, ConnectType)> {
    let Ok(root) = serde_json::from_str::<Json>(text) else {
        return Vec::new();
    };
    let record = match &root {
        Json::Array(branches) => branches.iter().find(|b| b.get("fields").is_some()),
        other => Some(other),
    };
    let Some(Json::Array(fields)) = record.and_then(|r| r.get("fields")) else {
        return Vec::new();
    };
    fields
        .iter()
        .filter_map(|f| {
            let name = f.get("name")?.as_str()?;
            let ty = f.get("type")?;
            let int = match ty {
                Json::Array(branches) => branches.iter().find(|b| b.is_object())?,
                other => other,
            };
            if int.get("type")?.as_str()? != "int" || int.get("logicalType").is_some() {
                return None;
            }
            let width = match int.get("connect.type")?.as_str()? {
                "int8" => ConnectType::Int8,
                "int16" => ConnectType::Int16,
                _ => return None,
            };
            Some((name.to_owned(), width))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_take_the_types_avro_data_gives_them() {
        let text = r#"{"type": "record", "name": "R", "fields": [
            {"name": "i", "type": "int"},
            {"name": "i8", "type": {"type": "int", "connect.type": "int8"}},
            {"name": "i16", "type": ["null", {"type": "int", "connect.type": "int16"}]},
            {"name": "l", "type": "long"},
            {"name": "f", "type": "float"},
            {"name": "d", "type": "double"},
            {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 9, "scale": 2}},
            {"name": "day", "type": {"type": "int", "logicalType": "date"}},
            {"name": "t", "type": {"type": "int", "logicalType": "time-millis"}},
            {"name": "ts", "type": {"type": "long", "logicalType": "timestamp-millis"}},
            {"name": "us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
            {"name": "b", "type": "bytes"},
            {"name": "fx", "type": {"type": "fixed", "name": "F", "size": 2}},
            {"name": "s", "type": ["null", "string"]},
            {"name": "e", "type": {"type": "enum", "name": "E", "symbols": ["A"]}},
            {"name": "n", "type": {"type": "record", "name": "N", "fields": [{"name": "a", "type": "int"}]}},
            {"name": "n2", "type": "N"},
            {"name": "a", "type": {"type": "array", "items": "int"}},
            {"name": "m", "type": {"type": "map", "values": "int"}},
            {"name": "u", "type": ["int", "string"]},
            {"name": "ok", "type": "boolean"}
        ]}"#;
        let f = AvroSchema::parse(text).unwrap();
        let f = f.field_types();
        let want = [
            ("i", ConnectType::Int32),
            ("i8", ConnectType::Int8),
            ("i16", ConnectType::Int16),
            ("l", ConnectType::Int64),
            ("f", ConnectType::Float32),
            ("d", ConnectType::Float64),
            ("dec", ConnectType::Decimal),
            ("day", ConnectType::Date),
            ("t", ConnectType::Time),
            ("ts", ConnectType::Timestamp),
            ("us", ConnectType::Int64),
            ("b", ConnectType::Bytes),
            ("fx", ConnectType::Bytes),
            ("s", ConnectType::String),
            ("e", ConnectType::String),
            ("n", ConnectType::Struct),
            ("n2", ConnectType::Struct),
            ("a", ConnectType::Array),
            ("m", ConnectType::Map),
            ("u", ConnectType::Struct),
            ("ok", ConnectType::Boolean),
        ];
        for (name, t) in want {
            assert_eq!(f.get(name), Some(t), "{name}");
        }
        // Not a record: no fields (v4 types the columns from the values).
        assert!(AvroSchema::parse(r#"{"type": "map", "values": "int"}"#)
            .unwrap()
            .field_types()
            .is_empty());
    }
}
