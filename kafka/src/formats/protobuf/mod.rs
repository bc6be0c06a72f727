//! Protobuf values (`--value-format protobuf`): the registry's `.proto` text compiled to
//! descriptors ([`ProtoSchema::parse`]) and a message's body decoded into the JSON text of its
//! row ([`ProtoSchema::to_json`]).
//!
//! After the Schema Registry header (magic byte, schema id) a Confluent Protobuf value holds
//! the *message indexes*: which message of the schema file the payload is, as a zigzag varint
//! count and then that many zigzag varint indexes (the first into the file's top-level
//! messages, each next one into the previous message's nested messages); a count of `0` (a
//! single `0x00` byte) means `[0]`, the file's first message. The payload follows.
//!
//! The `.proto` text is compiled with `protox` (pure Rust); the well-known `google/protobuf/*`
//! imports resolve, other imports are schema references, which the registry client refuses.
//! The payload is decoded with `prost-reflect` as a dynamic message, and the row is the JSON
//! Snowflake's Kafka connector v4 writes for the record read with Confluent's
//! `ProtobufConverter` in its default configuration (the message as a Connect struct by
//! `ProtobufData`, then v4.1.0's `KafkaRecordConverter`; row by row:
//! `kafka/docs/connector-compatibility-registry.md` §6):
//!
//! * field names as in the `.proto`, in declaration order;
//! * integers as JSON numbers (64-bit ones exact; `uint64` above `i64::MAX` as the unsigned
//!   number, where Connect's `INT64` wraps it to a negative one: deliberately different);
//! * `float`, `double` as numbers, NaN and infinities as the strings `"NaN"`, `"Inf"`,
//!   `"-Inf"`; `bool` as `true`/`false`;
//! * `string` as a string, `bytes` as base64, an enum as its value's name;
//! * a nested message as an object, `repeated` as an array, a `map` with string keys as an
//!   object, a `map` with other keys as an array of `[key, value]` pairs, both in the order
//!   of the Java `HashMap` Confluent's converter puts the entries in (`protobuf/maps.rs`);
//! * a `oneof` as one field `<oneof>_<its index among the message's oneofs>` holding an object
//!   of all its members, the set one with its value and the others `null`; `null` when none is
//!   set;
//! * `google.protobuf.Timestamp` as `"2024-01-15T10:00:00.123Z"` (Connect's `Timestamp`:
//!   milliseconds, UTC); the other well-known messages (`Duration`, the wrappers such as
//!   `Int32Value`, `Any`, `Empty`, `FieldMask`) as the plain messages they are
//!   (`{"value":5}`, `{"seconds":90,"nanos":500}`);
//! * a field without presence that is not set as its default (`0`, `""`, `false`, the first
//!   enum value), as proto3 reads it; a field with presence that is not set (a message, a
//!   proto3 `optional`, a proto2 `optional`) as `null`.
//!
//! Refused (the message is a dead letter naming the field), because guessing Connect's shape
//! could land different data: `google.protobuf.Struct`, `Value` and `ListValue` (their
//! recursive shape through Connect is not verified), enum numbers the schema does not name.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use prost_reflect::{
    DescriptorPool, DynamicMessage, FieldDescriptor, Kind, MessageDescriptor, ReflectMessage as _,
    Value,
};

use crate::formats::connect_type::FieldTypes;
use crate::formats::walk::Walk;

mod connect;
mod maps;
mod names;
mod scan;

/// The deepest the schema text may nest braces, brackets, parentheses and angle brackets:
/// `protox` parses it recursively, option values too, and 120 levels overflowed a 2 MiB
/// stack in a debug build.
const MAX_TEXT_NESTING: usize = 48;

/// Refuses schema text nested deeper than [`MAX_TEXT_NESTING`], strings and comments aside.
///
/// # Errors
/// The reason, naming the limit.
fn check_nesting(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' | '\'' => {
                while let Some(d) = chars.next() {
                    match d {
                        '\\' => {
                            chars.next();
                        }
                        '\n' => break,
                        d if d == c => break,
                        _ => {}
                    }
                }
            }
            '/' if chars.peek() == Some(&'/') => {
                chars.find(|&d| d == '\n');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                for d in chars.by_ref() {
                    if star && d == '/' {
                        break;
                    }
                    star = d == '*';
                }
            }
            '{' | '[' | '(' | '<' => {
                depth += 1;
                if depth > MAX_TEXT_NESTING {
                    return Err(format!(
                        "the Protobuf schema nests deeper than {MAX_TEXT_NESTING} levels of \
                         braces and brackets; the sink refuses it before compiling it"
                    ));
                }
            }
            '}' | ']' | ')' | '>' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// The file name the registry's schema text is compiled as.
const FILE_NAME: &str = "schema.proto";
/// The most message indexes a value may hold (nesting deeper than this is garbage).
const MAX_INDEXES: usize = 64;
/// The deepest nesting written (a recursive message type in a hostile payload stops here).
const MAX_DEPTH: usize = 100;

/// A registered Protobuf schema, compiled.
#[derive(Debug)]
pub struct ProtoSchema {
    /// The file's top-level messages, in order (map fields decode as repeated entries:
    /// `maps::wire_pool`).
    messages: Vec<MessageDescriptor>,
    /// The full names of the map entry messages.
    maps: maps::MapEntries,
    /// The Connect types of each top-level message's fields, by its full name, worked out the
    /// first time a value of it comes (`protobuf/connect.rs`).
    field_types: Mutex<HashMap<String, Arc<FieldTypes>>>,
}

impl ProtoSchema {
    /// Compiles the registry's `.proto` text.
    ///
    /// # Errors
    /// Text that does not compile (the reason holds the compiler's message), an import other
    /// than `google/protobuf/*`, a file without messages; text nested too deep, or whose full
    /// names would take too much once compiled (`names`), before it is compiled.
    pub fn parse(text: &str) -> Result<Self, String> {
        check_nesting(text)?;
        names::check(text)?;
        #[cfg(test)]
        names::tests::COMPILES.with(|c| c.set(c.get() + 1));
        Self::compile(text)
    }

    /// [`ProtoSchema::parse`] without its checks.
    fn compile(text: &str) -> Result<Self, String> {
        let mut parsed: prost_reflect::prost_types::FileDescriptorProto =
            protox::file::File::from_source(FILE_NAME, text)
                .map_err(|e| format!("the Protobuf schema does not parse: {e}"))?
                .into();
        // Compiled without its source locations: the descriptor pool looks up each error's
        // place among them and in the text (a scan of both per error), so a schema of
        // thousands of invalid fields cost the errors times the text (`hostile_registry_schemas`,
        // class `Count`: 20 s of CPU). The error quoted names the field; no place is shown.
        parsed.source_code_info = None;
        let file = protox::file::File::from_file_descriptor_proto(parsed);
        let mut resolver = protox::file::ChainFileResolver::new();
        resolver.add(OneFile(file));
        resolver.add(protox::file::GoogleFileResolver::new());
        let mut compiler = protox::Compiler::with_file_resolver(resolver);
        compiler.include_imports(true);
        compiler
            .open_file(FILE_NAME)
            .map_err(|e| format!("the Protobuf schema does not compile: {e}"))?;
        // The compiler's own pool is dropped before the one without map entries is built: one
        // pool and its descriptors' protos at a time.
        let set = compiler.file_descriptor_set();
        drop(compiler);
        let (pool, maps): (DescriptorPool, _) = maps::wire_pool(set)?;
        let file = pool
            .get_file_by_name(FILE_NAME)
            .ok_or("the Protobuf schema compiled to no file")?;
        let messages: Vec<_> = file.messages().collect();
        if messages.is_empty() {
            return Err("the Protobuf schema defines no message".into());
        }
        Ok(Self {
            messages,
            maps,
            field_types: Mutex::default(),
        })
    }

    /// The JSON text of the row `body` (the value after the 5-byte header) is, at most about
    /// `max_len` bytes.
    ///
    /// # Errors
    /// The dead-letter reason: message indexes that are cut short or name no message of the
    /// schema, a payload that does not decode as that message, a value this sink refuses
    /// (see the module docs), a row that grows past `max_len`.
    pub fn to_json(&self, body: &[u8], max_len: usize) -> Result<String, String> {
        let (indexes, payload) = message_indexes(body)?;
        let descriptor = self.message_at(&indexes)?;
        // What the decode and the row will cost, before the decoder builds anything.
        let at = Walk::new(max_len);
        scan::check(&descriptor, payload, at)?;
        let message = DynamicMessage::decode(descriptor.clone(), payload).map_err(|e| {
            format!(
                "the Protobuf payload does not decode as {} ({e})",
                descriptor.full_name()
            )
        })?;
        let mut out = String::new();
        write_message(&message, &mut out, at, &self.maps)?;
        Ok(out)
    }

    /// The message `indexes` name.
    fn message_at(&self, indexes: &[i64]) -> Result<MessageDescriptor, String> {
        let unknown = || {
            format!(
                "the message indexes {indexes:?} name no message of the schema (its top-level \
                 messages: {})",
                self.messages
                    .iter()
                    .map(|m| m.name().to_owned())
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        };
        let mut current: Option<MessageDescriptor> = None;
        for &i in indexes {
            let i = usize::try_from(i).map_err(|_| unknown())?;
            let next = match &current {
                None => self.messages.get(i).cloned(),
                Some(m) => m
                    .child_messages()
                    .filter(|c| !self.maps.contains(c.full_name()))
                    .nth(i),
            };
            current = Some(next.ok_or_else(unknown)?);
        }
        current.ok_or_else(unknown)
    }
}

/// A resolver that knows the registry's one file.
struct OneFile(protox::file::File);

impl protox::file::FileResolver for OneFile {
    fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
        if name == FILE_NAME {
            Ok(self.0.clone())
        } else {
            Err(protox::Error::file_not_found(name))
        }
    }
}

/// Splits `body` into its message indexes and the payload.
///
/// # Errors
/// Indexes cut short, a negative count or more than 64.
pub(crate) fn message_indexes(body: &[u8]) -> Result<(Vec<i64>, &[u8]), String> {
    let mut rest = body;
    let count = read_zigzag(&mut rest)?;
    if count == 0 {
        return Ok((vec![0], rest));
    }
    let count = usize::try_from(count)
        .ok()
        .filter(|c| *c <= MAX_INDEXES)
        .ok_or_else(|| {
            format!(
                "the Protobuf message-index count is {count}: this is not a Confluent Protobuf \
                 value (check --value-format)"
            )
        })?;
    let mut indexes = Vec::with_capacity(count);
    for _ in 0..count {
        indexes.push(read_zigzag(&mut rest)?);
    }
    Ok((indexes, rest))
}

/// Reads one zigzag varint (Confluent's `ByteUtils.readVarint`).
fn read_zigzag(rest: &mut &[u8]) -> Result<i64, String> {
    let mut raw: u64 = 0;
    for shift in (0..64).step_by(7) {
        let Some((&byte, tail)) = rest.split_first() else {
            return Err("the Protobuf message indexes are cut short".into());
        };
        *rest = tail;
        raw |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let v = (raw >> 1) as i64 ^ -((raw & 1) as i64);
            return Ok(v);
        }
    }
    Err("a Protobuf message index is not a varint".into())
}

fn write_message(
    message: &DynamicMessage,
    out: &mut String,
    at: Walk,
    maps: &maps::MapEntries,
) -> Result<(), String> {
    if at.depth > MAX_DEPTH {
        return Err(format!("the message nests deeper than {MAX_DEPTH} levels"));
    }
    at.check_len(out.len())?;
    out.push('{');
    let descriptor = message.descriptor();
    let mut first = true;
    let mut oneofs_written = Vec::new();
    for field in descriptor.fields() {
        if !first {
            out.push(',');
        }
        first = false;
        // A real oneof is one field at its first member's place (Confluent's
        // `generate.index.for.unions`): `<name>_<index>`, an object of every member.
        if let Some(oneof) = field.containing_oneof().filter(|o| !o.is_synthetic()) {
            let index = descriptor
                .oneofs()
                .filter(|o| !o.is_synthetic())
                .position(|o| o.name() == oneof.name())
                .unwrap_or_default();
            if oneofs_written.contains(&index) {
                // Its members after the first are inside the object already.
                if out.ends_with(',') {
                    out.pop();
                }
                continue;
            }
            oneofs_written.push(index);
            write_str(out, &format!("{}_{index}", oneof.name()));
            out.push(':');
            if !oneof.fields().any(|f| message.has_field(&f)) {
                out.push_str("null");
                continue;
            }
            out.push('{');
            for (i, member) in oneof.fields().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_str(out, member.name());
                out.push(':');
                if message.has_field(&member) {
                    write_value(&member, &message.get_field(&member), out, at, maps).map_err(
                        |e| format!("field {}.{}: {e}", descriptor.full_name(), member.name()),
                    )?;
                } else {
                    out.push_str("null");
                }
            }
            out.push('}');
            continue;
        }
        write_str(out, field.name());
        out.push(':');
        let path = || format!("{}.{}", descriptor.full_name(), field.name());
        if field.supports_presence() && !field.is_list() && !message.has_field(&field) {
            // An absent message, or a proto3 `optional` / proto2 field that is not set
            // (Confluent's `optional.for.proto2`).
            out.push_str("null");
            continue;
        }
        write_value(&field, &message.get_field(&field), out, at, maps)
            .map_err(|e| format!("field {}: {e}", path()))?;
    }
    out.push('}');
    Ok(())
}

fn write_value(
    field: &FieldDescriptor,
    value: &Value,
    out: &mut String,
    at: Walk,
    maps: &maps::MapEntries,
) -> Result<(), String> {
    match value {
        Value::List(items) => {
            // A map field: Connect's map, as `convertMapValue` writes it.
            if let Some(entry) = maps::entry_of(field, maps) {
                return maps::write_map(field, &entry, items, out, at, |kind, v, out| {
                    write_single(field, kind, v, out, at, maps)
                });
            }
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_single(field, &field.kind(), item, out, at, maps)?;
            }
            out.push(']');
            Ok(())
        }
        single => write_single(field, &field.kind(), single, out, at, maps),
    }
}

fn write_single(
    field: &FieldDescriptor,
    kind: &Kind,
    value: &Value,
    out: &mut String,
    at: Walk,
    maps: &maps::MapEntries,
) -> Result<(), String> {
    match value {
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::I32(n) => {
            let _ = write!(out, "{n}");
        }
        Value::I64(n) => {
            let _ = write!(out, "{n}");
        }
        Value::U32(n) => {
            let _ = write!(out, "{n}");
        }
        Value::U64(n) => {
            let _ = write!(out, "{n}");
        }
        Value::F32(f) => match crate::formats::avro::special(f64::from(*f)) {
            Some(s) => out.push_str(s),
            None => out.push_str(&serde_json::to_string(f).map_err(|e| e.to_string())?),
        },
        Value::F64(f) => match crate::formats::avro::special(*f) {
            Some(s) => out.push_str(s),
            None => out.push_str(&serde_json::to_string(f).map_err(|e| e.to_string())?),
        },
        Value::String(s) => write_str(out, s),
        Value::Bytes(b) => {
            out.push('"');
            out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
            out.push('"');
        }
        Value::EnumNumber(n) => {
            let Kind::Enum(e) = kind else {
                return Err("an enum number for a field that is no enum".into());
            };
            let v = e.get_value(*n).ok_or_else(|| {
                format!("{n} is not a value of enum {} in the schema", e.full_name())
            })?;
            write_str(out, v.name());
        }
        Value::Message(m) => {
            let name = m.descriptor().full_name().to_owned();
            match name.as_str() {
                "google.protobuf.Timestamp" => write_timestamp(m, out)?,
                "google.protobuf.Struct"
                | "google.protobuf.Value"
                | "google.protobuf.ListValue" => {
                    return Err(format!(
                        "{name} is not read: the shape Connect gives it is not verified \
                         (kafka/docs/connector-compatibility-registry.md §6.19)"
                    ))
                }
                _ => write_message(m, out, at.deeper(), maps)?,
            }
        }
        Value::List(_) | Value::Map(_) => {
            return Err(format!("a nested list or map in {}", field.full_name()))
        }
    }
    at.check_len(out.len())
}

/// A `google.protobuf.Timestamp` as Connect's `Timestamp` (milliseconds, the sub-millisecond
/// part dropped: `Timestamps.toMillis`) in the connector's `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'`.
fn write_timestamp(m: &DynamicMessage, out: &mut String) -> Result<(), String> {
    let get = |name: &str| m.get_field_by_name(name).map(|v| v.into_owned());
    let seconds = match get("seconds") {
        Some(Value::I64(s)) => s,
        _ => 0,
    };
    let nanos = match get("nanos") {
        Some(Value::I32(n)) => i64::from(n),
        _ => 0,
    };
    let ms = seconds
        .checked_mul(1000)
        .and_then(|ms| ms.checked_add(nanos.div_euclid(1_000_000)))
        .ok_or_else(|| format!("the timestamp {seconds}s {nanos}ns is out of range"))?;
    crate::formats::avro::write_iso_millis(out, ms);
    Ok(())
}

fn write_str(out: &mut String, s: &str) {
    out.push_str(&serde_json::to_string(s).unwrap_or_else(|_| "\"\"".into()));
}

#[cfg(test)]
mod tests;
