//! Kafka Connect's key and header converters, as the Connect worker runs them before Snowflake's
//! Kafka connector v4 sees a record, and as the connector's `KafkaRecordConverter` then writes
//! their output into `RECORD_METADATA` (`kafka/docs/connector-compatibility.md` §10, §11).
//!
//! * **Keys** (`--key-converter`, the connector's `key.converter`): `string` decodes UTF-8 with
//!   each malformed sequence as U+FFFD (`new String(bytes, UTF_8)`); `json` writes the key's JSON
//!   value (a JSON `null` or an empty key is no key; text that is not JSON is the worker's
//!   converter error: a dead letter); `bytes` writes base64 (the SDK's form of a `byte[]`);
//!   the Schema Registry formats write the decoded value (decoded by `value_format`). `raw`, this
//!   sink's own default without `--connector-config`, writes text, or `key_base64` for bytes that
//!   are not UTF-8, so nothing is lost.
//! * **Header values** (`--header-converter`, the connector's `header.converter`): `simple` is
//!   Connect's `SimpleHeaderConverter`: the text parsed by `Values.parseString`
//!   ([`parse_string`], a port of `apache/kafka` `connect/api/…/data/Values.java`): numbers take
//!   the smallest integer type they fit, else `float32`, `float64` or a decimal; `true`, `false`
//!   and `null`; `[…]` and `{…}` with their elements' common type; date, time and timestamp
//!   text of ISO length; anything else the whole text. `string` keeps the text, `json` parses
//!   JSON, `bytes` writes base64. `raw` (the default without a connector file) writes the text,
//!   or `{"base64": …}` for bytes that are not UTF-8.
//!
//! With `snowflake.feature.structured.headers=false` (the connector's default) each converted
//! value is flattened by Java's `String.valueOf` (maps as `{a=1}`, lists as `[1, 2, 3]`, floats
//! by `Float.toString`); with `true` it keeps its JSON type. A `ByteArrayConverter` header
//! flattened is `String.valueOf(byte[])` in the connector, a JVM identity (`[B@1b6d3586`) and no
//! data: here it is base64 either way (deliberately different, the document's §11.15).

use clap::ValueEnum;

mod convert;
mod parse_string;

use convert::java_string_of_json;
pub(crate) use convert::{converted, Out};
pub(crate) use parse_string::parse_string;

use crate::formats::json_text::{base64, write_str as write_json_str};

/// `--key-converter`: how a message's key becomes `RECORD_METADATA.key`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum KeyConverter {
    /// Text, or `key_base64` for bytes that are not UTF-8 (nothing lost; this sink's default).
    #[default]
    Raw,
    /// Connect's `StringConverter`: UTF-8, malformed sequences as U+FFFD.
    String,
    /// Connect's `JsonConverter` (`schemas.enable=false`): the key's JSON value.
    Json,
    /// Connect's `ByteArrayConverter`: base64.
    Bytes,
    /// Confluent's `AvroConverter`: the decoded value (needs a Schema Registry `--value-format`).
    Avro,
    /// Confluent's `ProtobufConverter`: the decoded message.
    Protobuf,
    /// Confluent's `JsonSchemaConverter`: the payload.
    JsonSchema,
}

impl KeyConverter {
    /// The Schema Registry format that decodes the key, if it is one.
    pub fn registry_format(self) -> Option<crate::formats::ValueFormat> {
        use crate::formats::ValueFormat as F;
        match self {
            KeyConverter::Avro => Some(F::Avro),
            KeyConverter::Protobuf => Some(F::Protobuf),
            KeyConverter::JsonSchema => Some(F::JsonSchema),
            _ => None,
        }
    }
}

/// `--header-converter`: how a header's value becomes a `RECORD_METADATA.headers` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum HeaderConverter {
    /// Text (JSON with `--structured-headers`), or `{"base64": …}` for bytes that are not UTF-8
    /// (nothing lost; this sink's default).
    #[default]
    Raw,
    /// Connect's `SimpleHeaderConverter` (the worker's default): `Values.parseString`.
    Simple,
    /// Connect's `StringConverter`: the text.
    String,
    /// Connect's `JsonConverter` (`schemas.enable=false`): the JSON value.
    Json,
    /// Connect's `ByteArrayConverter`: base64.
    Bytes,
}

/// JSON text, trimmed, its line breaks (white space there) as spaces; `None` when `bytes` are
/// not one JSON value.
fn one_line(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut v = bytes.trim_ascii().to_vec();
    crate::formats::json_text::one_line_json(&mut v).then_some(v)
}

/// What the `JsonConverter` (schemaless) reads in `bytes`: `Ok(None)` for no value (`null`, or
/// nothing but white space), else the JSON as one line.
///
/// # Errors
/// `not_json`, when `bytes` are not one JSON value (the worker's converter error).
fn json_converter(bytes: &[u8], not_json: &str) -> Result<Option<Vec<u8>>, String> {
    let t = bytes.trim_ascii();
    if t.is_empty() || t == b"null" {
        return Ok(None);
    }
    one_line(t).map(Some).ok_or_else(|| not_json.to_owned())
}

/// `b` as a JSON string of its base64 (the SDK's form of a `byte[]`).
fn write_base64(out: &mut Vec<u8>, b: &[u8]) {
    out.push(b'"');
    out.extend_from_slice(base64(b).as_bytes());
    out.push(b'"');
}

/// Writes `,"key":…` for `key` as `converter` makes it (`decoded`: the registry formats'
/// JSON), or nothing when the converter makes no key (JSON `null`, an empty JSON key).
///
/// # Errors
/// The worker's converter error, as the dead-letter reason: a `json` key that is not JSON, a
/// registry key that was not decoded.
pub(crate) fn write_key(
    out: &mut Vec<u8>,
    key: &[u8],
    converter: KeyConverter,
    decoded: Option<&str>,
) -> Result<(), String> {
    match converter {
        KeyConverter::Raw => match std::str::from_utf8(key) {
            Ok(s) => {
                out.extend_from_slice(b",\"key\":");
                write_json_str(out, s);
            }
            Err(_) => {
                out.extend_from_slice(b",\"key_base64\":\"");
                out.extend_from_slice(base64(key).as_bytes());
                out.push(b'"');
            }
        },
        KeyConverter::String => {
            out.extend_from_slice(b",\"key\":");
            write_json_str(out, &String::from_utf8_lossy(key));
        }
        KeyConverter::Bytes => {
            out.extend_from_slice(b",\"key\":");
            write_base64(out, key);
        }
        KeyConverter::Json => {
            let not_json = "the key is not JSON (key.converter is the JsonConverter): produce \
                            JSON keys, or name the key's converter (e.g. key.converter=org.\
                            apache.kafka.connect.storage.StringConverter)";
            if let Some(json) = json_converter(key, not_json)? {
                out.extend_from_slice(b",\"key\":");
                out.extend_from_slice(&json);
            }
        }
        KeyConverter::Avro | KeyConverter::Protobuf | KeyConverter::JsonSchema => match decoded {
            Some("null") => {}
            Some(json) => {
                out.extend_from_slice(b",\"key\":");
                out.extend_from_slice(json.as_bytes());
            }
            None => return Err("the key was not decoded with its schema".into()),
        },
    }
    Ok(())
}

/// Writes a header's value as `converter` makes it, flattened to a string unless `structured`.
///
/// # Errors
/// The worker's converter error: a `json` header that is not JSON.
pub(crate) fn write_header(
    out: &mut Vec<u8>,
    value: Option<&[u8]>,
    converter: HeaderConverter,
    structured: bool,
) -> Result<(), String> {
    let Some(v) = value else {
        out.extend_from_slice(b"null");
        return Ok(());
    };
    match converter {
        HeaderConverter::Raw => {
            if structured {
                write_typed(out, v);
            } else {
                write_bytes(out, v);
            }
        }
        HeaderConverter::String => write_json_str(out, &String::from_utf8_lossy(v)),
        HeaderConverter::Bytes => write_base64(out, v),
        HeaderConverter::Json => {
            let not_json = "a header value is not JSON (header.converter is the JsonConverter): \
                            produce JSON header values, or drop header.converter for Connect's \
                            SimpleHeaderConverter";
            let Some(json) = json_converter(v, not_json)? else {
                out.extend_from_slice(b"null");
                return Ok(());
            };
            if structured {
                out.extend_from_slice(&json);
            } else {
                // The JsonConverter's Connect value, flattened by Java's toString.
                let parsed: serde_json::Value =
                    serde_json::from_slice(&json).map_err(|e| e.to_string())?;
                write_json_str(out, &java_string_of_json(&parsed));
            }
        }
        HeaderConverter::Simple => {
            let text = String::from_utf8_lossy(v);
            match parse_string(&text) {
                None => out.extend_from_slice(b"null"),
                Some(parsed) => {
                    let c = converted(parsed);
                    if structured {
                        c.write_json(out);
                    } else {
                        match c {
                            Out::Null => out.extend_from_slice(b"null"),
                            c => write_json_str(out, &c.java_string()),
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// A JSON string, or a `{"base64": …}` object for bytes that are not UTF-8.
fn write_bytes(out: &mut Vec<u8>, b: &[u8]) {
    match std::str::from_utf8(b) {
        Ok(s) => write_json_str(out, s),
        Err(_) => {
            out.extend_from_slice(b"{\"base64\":\"");
            out.extend_from_slice(base64(b).as_bytes());
            out.extend_from_slice(b"\"}");
        }
    }
}

/// A header value as the JSON it holds, or as [`write_bytes`] writes it when it holds none.
fn write_typed(out: &mut Vec<u8>, v: &[u8]) {
    match one_line(v) {
        Some(json) => out.extend_from_slice(&json),
        None => write_bytes(out, v),
    }
}

#[cfg(test)]
mod tests;
