//! The Connect type `JsonSchemaData.toConnectSchema` gives each property of the top-level
//! object (the compiled nodes hold Connect's types already: `integer` INT64, `number`
//! FLOAT64, `connect.type` overrides, the logical types named by `title`, `oneOf` a STRUCT).

use super::{JsonSchema, Kind};
use crate::formats::connect_type::{ConnectType, FieldTypes};

impl JsonSchema {
    /// The Connect types of the top-level object's properties (none when the schema is not an
    /// object).
    pub(super) fn connect_fields(&self) -> FieldTypes {
        let Kind::Struct(fields) = &self.nodes[self.resolve(self.root)].kind else {
            return FieldTypes::default();
        };
        FieldTypes::new(
            fields
                .iter()
                .map(|(name, at)| (name.to_string(), self.connect_type(*at))),
        )
    }

    /// The Connect type of node `at`.
    fn connect_type(&self, at: usize) -> ConnectType {
        match &self.nodes[self.resolve(at)].kind {
            Kind::Scalar(t) => *t,
            Kind::Decimal(_) => ConnectType::Decimal,
            Kind::Array(_) => ConnectType::Array,
            Kind::StringMap(_) | Kind::EntryMap(..) => ConnectType::Map,
            Kind::Struct(_) | Kind::OneOf(_) | Kind::Ref(_) | Kind::Pending => ConnectType::Struct,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn properties_take_the_types_json_schema_data_gives_them() {
        let text = r##"{"type":"object","properties":{
            "i":{"type":"integer"},
            "i8":{"type":"integer","connect.type":"int8"},
            "n":{"type":"number"},
            "s":{"type":["string","null"]},
            "b":{"type":"boolean"},
            "day":{"type":"integer","connect.type":"int32","title":"org.apache.kafka.connect.data.Date"},
            "ts":{"type":"integer","title":"org.apache.kafka.connect.data.Timestamp"},
            "dec":{"type":"number","connect.type":"bytes","title":"org.apache.kafka.connect.data.Decimal"},
            "raw":{"type":"string","connect.type":"bytes"},
            "o":{"type":"object","properties":{"a":{"type":"integer"}}},
            "r":{"$ref":"#/definitions/o"},
            "a":{"type":"array","items":{"type":"integer"}},
            "m":{"type":"object","connect.type":"map","additionalProperties":{"type":"integer"}}},
            "definitions":{"o":{"type":"object","properties":{}}}}"##;
        let schema = JsonSchema::parse(text).unwrap();
        let f = schema.field_types();
        let want = [
            ("i", ConnectType::Int64),
            ("i8", ConnectType::Int8),
            ("n", ConnectType::Float64),
            ("s", ConnectType::String),
            ("b", ConnectType::Boolean),
            ("day", ConnectType::Date),
            ("ts", ConnectType::Timestamp),
            ("dec", ConnectType::Decimal),
            ("raw", ConnectType::Bytes),
            ("o", ConnectType::Struct),
            ("r", ConnectType::Struct),
            ("a", ConnectType::Array),
            ("m", ConnectType::Map),
        ];
        for (name, t) in want {
            assert_eq!(f.get(name), Some(t), "{name}");
        }
        let not_an_object = JsonSchema::parse(r#"{"type":"integer"}"#).unwrap();
        assert!(not_an_object.field_types().is_empty());
    }
}
