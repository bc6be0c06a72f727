//! Protobuf `map` fields in the order Snowflake's Kafka connector v4 writes them
//! (`kafka/docs/connector-compatibility-registry.md` §6.13, §6.14).
//!
//! **Why.** `ProtobufData.toConnectData` (schema-registry v7.9.2) reads a map field as the
//! list of its entry messages, in the order they came on the wire (protobuf-java's
//! `DynamicMessage.Builder.addRepeatedField` appends each entry to a plain list, duplicates
//! included) and puts each into a `new HashMap<>()`; the connector writes the map in that
//! `HashMap`'s iteration order (`KafkaRecordConverter.convertMapValue`). `prost-reflect`
//! decodes a map field into a hash map of its own, so the wire order would be gone.
//!
//! **How.** The compiled schema's descriptors are made into the pool the payload is decoded
//! with after every map entry message's `map_entry` option is cleared ([`wire_pool`]): a map
//! field then decodes as a repeated field of entry messages in wire order, and [`write_map`]
//! puts them through
//! [`crate::formats::java_map`] (each key once, at its first place, with its last value).
//! The names of the entry messages are kept to know a map field from a repeated message field.

use std::collections::HashSet;

use prost_reflect::prost_types::{DescriptorProto, FileDescriptorSet};
use prost_reflect::{DescriptorPool, FieldDescriptor, Kind, MessageDescriptor, Value};

use crate::formats::java_map::{iteration_order, Capacity, JavaKey};
use crate::formats::walk::Walk;

/// The full names of map entry messages.
pub(super) type MapEntries = HashSet<String>;

/// The pool `set` makes with no message marked as a map entry, and the full names of those
/// that were.
///
/// # Errors
/// The set does not make a pool (the reason names why).
pub(super) fn wire_pool(
    mut set: FileDescriptorSet,
) -> Result<(DescriptorPool, MapEntries), String> {
    let mut entries = MapEntries::new();
    for file in &mut set.file {
        let package = file.package().to_owned();
        for message in &mut file.message_type {
            clear_map_entries(message, &package, &mut entries);
        }
    }
    let pool = DescriptorPool::from_file_descriptor_set(set)
        .map_err(|e| format!("the Protobuf schema does not compile: {e}"))?;
    Ok((pool, entries))
}

fn clear_map_entries(message: &mut DescriptorProto, scope: &str, entries: &mut MapEntries) {
    let name = if scope.is_empty() {
        message.name().to_owned()
    } else {
        format!("{scope}.{}", message.name())
    };
    if let Some(options) = message.options.as_mut() {
        if options.map_entry() {
            options.map_entry = None;
            entries.insert(name.clone());
        }
    }
    for nested in &mut message.nested_type {
        clear_map_entries(nested, &name, entries);
    }
}

/// The entry message of `field` when it is a map field.
pub(super) fn entry_of(field: &FieldDescriptor, entries: &MapEntries) -> Option<MessageDescriptor> {
    match field.kind() {
        Kind::Message(m) if field.is_list() && entries.contains(m.full_name()) => Some(m),
        _ => None,
    }
}

/// The map field `field` of entry messages `items` (wire order) as the connector writes it:
/// string keys as an object, other keys as `[[key, value], …]`, in `HashMap` order.
///
/// # Errors
/// An entry that is no message, a key or value `write` refuses.
pub(super) fn write_map(
    field: &FieldDescriptor,
    entry: &MessageDescriptor,
    items: &[Value],
    out: &mut String,
    at: Walk,
    mut write: impl FnMut(&Kind, &Value, &mut String) -> Result<(), String>,
) -> Result<(), String> {
    let (Some(key_field), Some(value_field)) = (entry.get_field(1), entry.get_field(2)) else {
        return Err(format!(
            "the map entry {} has no key or value",
            entry.full_name()
        ));
    };
    let mut keys = Vec::with_capacity(items.len());
    let mut values = Vec::with_capacity(items.len());
    for item in items {
        let Value::Message(m) = item else {
            return Err(format!(
                "a map entry of {} that is no message",
                field.full_name()
            ));
        };
        keys.push(m.get_field(&key_field));
        values.push(m.get_field(&value_field));
    }
    let java: Vec<JavaKey> = keys.iter().map(|k| java_key(k)).collect();
    let (key_kind, value_kind) = (key_field.kind(), value_field.kind());
    let strings = matches!(key_kind, Kind::String);
    out.push(if strings { '{' } else { '[' });
    for (n, e) in iteration_order(&java, Capacity::Default)?
        .into_iter()
        .enumerate()
    {
        if n > 0 {
            out.push(',');
        }
        if !strings {
            out.push('[');
        }
        write(&key_kind, &keys[e.first], out)?;
        out.push(if strings { ':' } else { ',' });
        write(&value_kind, &values[e.last], out)?;
        if !strings {
            out.push(']');
        }
        at.check_len(out.len())?;
    }
    out.push(if strings { '}' } else { ']' });
    Ok(())
}

/// The Java object `ProtobufData` makes of a map key: `int32`, `sint32`, `sfixed32` an
/// `Integer`; `int64`, `sint64`, `sfixed64` a `Long`, as are `uint32`, `fixed32` (widened) and
/// `uint64`, `fixed64` (wrapped to signed: Connect INT64); `bool` a `Boolean`; `string` a
/// `String`.
fn java_key(key: &Value) -> JavaKey {
    match key {
        Value::I32(n) => JavaKey::Int(*n),
        Value::I64(n) => JavaKey::Long(*n),
        Value::U32(n) => JavaKey::Long(i64::from(*n)),
        Value::U64(n) => JavaKey::Long(*n as i64),
        Value::Bool(b) => JavaKey::Bool(*b),
        Value::String(s) => JavaKey::Str(s.clone()),
        // Protobuf allows no other map key type.
        _ => JavaKey::Null,
    }
}
