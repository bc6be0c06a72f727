//! The Connect type `ProtobufData.toConnectSchema` gives each field of a top-level message
//! (`confluentinc/schema-registry` v7.9.2, `protobuf-converter/…/ProtobufData.java`, default
//! config): `int32`, `sint32`, `sfixed32` INT32; `uint32`, `fixed32` and the 64-bit kinds
//! INT64; `float` FLOAT32, `double` FLOAT64, `bool` BOOLEAN, `string` and enums
//! (`int.for.enums=false`) STRING, `bytes` BYTES; `google.protobuf.Timestamp` Timestamp,
//! `google.type.Date` Date, `google.type.TimeOfDay` Time, `confluent.type.Decimal` Decimal,
//! any other message STRUCT (`wrapper.for.nullables=false`); `repeated` ARRAY, `map` MAP; a
//! real `oneof` one STRUCT field `<oneof>_<index>` (`generate.index.for.unions=true`). The
//! `(confluent.field_meta)` `connect.type` `int8`/`int16` annotations are not read (their
//! fields are typed INT32).

use std::sync::Arc;

use prost_reflect::{FieldDescriptor, Kind, MessageDescriptor};

use super::{maps, message_indexes, ProtoSchema};
use crate::formats::connect_type::{ConnectType, FieldTypes};
use crate::lock::lock;

impl ProtoSchema {
    /// The Connect types of the fields of the message `body` (the value after the 5-byte
    /// header) is, worked out once per message of the schema (`None`: indexes that name no
    /// message, which the decoder refuses anyway).
    pub fn field_types(&self, body: &[u8]) -> Option<Arc<FieldTypes>> {
        let (indexes, _) = message_indexes(body).ok()?;
        let message = self.message_at(&indexes).ok()?;
        let mut known = lock(&self.field_types);
        let types = known
            .entry(message.full_name().to_owned())
            .or_insert_with(|| Arc::new(fields_of(&message, &self.maps)));
        Some(Arc::clone(types))
    }
}

/// The Connect types of `message`'s fields (`maps`: the map entry messages).
fn fields_of(message: &MessageDescriptor, maps: &maps::MapEntries) -> FieldTypes {
    let oneofs: Vec<String> = message
        .oneofs()
        .filter(|o| !o.is_synthetic())
        .map(|o| o.name().to_owned())
        .collect();
    FieldTypes::new(message.fields().map(|field| {
        match field.containing_oneof().filter(|o| !o.is_synthetic()) {
            Some(oneof) => {
                let index = oneofs
                    .iter()
                    .position(|o| o == oneof.name())
                    .unwrap_or_default();
                (format!("{}_{index}", oneof.name()), ConnectType::Struct)
            }
            None => (field.name().to_owned(), connect_type(&field, maps)),
        }
    }))
}

/// The Connect type of `field`.
fn connect_type(field: &FieldDescriptor, maps: &maps::MapEntries) -> ConnectType {
    if maps::entry_of(field, maps).is_some() {
        return ConnectType::Map;
    }
    if field.is_list() {
        return ConnectType::Array;
    }
    match field.kind() {
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => ConnectType::Int32,
        Kind::Uint32
        | Kind::Fixed32
        | Kind::Int64
        | Kind::Sint64
        | Kind::Sfixed64
        | Kind::Uint64
        | Kind::Fixed64 => ConnectType::Int64,
        Kind::Float => ConnectType::Float32,
        Kind::Double => ConnectType::Float64,
        Kind::Bool => ConnectType::Boolean,
        Kind::String | Kind::Enum(_) => ConnectType::String,
        Kind::Bytes => ConnectType::Bytes,
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp" => ConnectType::Timestamp,
            "google.type.Date" => ConnectType::Date,
            "google.type.TimeOfDay" => ConnectType::Time,
            "confluent.type.Decimal" => ConnectType::Decimal,
            _ => ConnectType::Struct,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_take_the_types_protobuf_data_gives_them() {
        let text =
            "syntax = \"proto3\";\npackage t;\nimport \"google/protobuf/timestamp.proto\";\n\
            import \"google/protobuf/wrappers.proto\";\n\
            message P {\n int32 i = 1;\n sint32 si = 2;\n uint32 u = 3;\n int64 l = 4;\n\
             uint64 ul = 5;\n float f = 6;\n double d = 7;\n bool b = 8;\n string s = 9;\n\
             bytes raw = 10;\n E e = 11;\n google.protobuf.Timestamp ts = 12;\n\
             google.protobuf.Int32Value w = 13;\n P n = 14;\n repeated string r = 15;\n\
             map<string, int32> m = 16;\n oneof choice { string x = 17; int32 y = 18; }\n\
             optional int32 o = 19;\n}\nmessage Q { int32 q = 1; }\nenum E { Z = 0; }\n";
        let schema = ProtoSchema::parse(text).unwrap();
        let f = schema.field_types(&[0]).unwrap();
        let want = [
            ("i", ConnectType::Int32),
            ("si", ConnectType::Int32),
            ("u", ConnectType::Int64),
            ("l", ConnectType::Int64),
            ("ul", ConnectType::Int64),
            ("f", ConnectType::Float32),
            ("d", ConnectType::Float64),
            ("b", ConnectType::Boolean),
            ("s", ConnectType::String),
            ("raw", ConnectType::Bytes),
            ("e", ConnectType::String),
            ("ts", ConnectType::Timestamp),
            ("w", ConnectType::Struct),
            ("n", ConnectType::Struct),
            ("r", ConnectType::Array),
            ("m", ConnectType::Map),
            ("choice_0", ConnectType::Struct),
            ("o", ConnectType::Int32),
        ];
        for (name, t) in want {
            assert_eq!(f.get(name), Some(t), "{name}");
        }
        assert_eq!(f.get("x"), None);
        // Once per message: the same types again; the second message its own.
        assert!(Arc::ptr_eq(&f, &schema.field_types(&[0]).unwrap()));
        let q = schema.field_types(&[2, 2]).unwrap();
        assert_eq!(q.get("q"), Some(ConnectType::Int32));
        assert!(schema.field_types(&[2, 10]).is_none());
    }
}
