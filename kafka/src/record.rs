//! One Kafka message → one row, or the reason it cannot be one.
//!
//! A message whose value is a JSON object is a row, kept as the producer wrote it (its text is
//! not parsed into a tree and written again; only line breaks, which JSON allows only as white
//! space, become spaces so the row stays one NDJSON line). With `--metadata` the row gets a
//! `RECORD_METADATA` object first, as Snowflake's Kafka connector writes it: `topic`,
//! `partition`, `offset`, `CreateTime` or `LogAppendTime` (ms), `key` and `headers` (text
//! values as strings, other bytes as base64 under `key_base64` / in a `{"base64": …}` object).
//!
//! Anything else — no value (a tombstone), bytes that are not UTF-8, text that is not JSON,
//! JSON that is not an object, a row larger than a request — is a dead letter with a reason
//! that names the problem; it never stops the partition.

use base64::Engine as _;
use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

/// How a message's timestamp was set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampKind {
    /// Set by the producer.
    CreateTime,
    /// Set by the broker.
    LogAppendTime,
}

/// The parts of a Kafka message a row is made of.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The topic.
    pub topic: &'a str,
    /// The partition.
    pub partition: i32,
    /// The offset in the partition.
    pub offset: i64,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
    /// The timestamp, if the broker reported one.
    pub timestamp: Option<(TimestampKind, i64)>,
    /// The headers, in order.
    pub headers: &'a [(&'a str, Option<&'a [u8]>)],
}

/// Options of the conversion.
#[derive(Debug, Clone, Copy)]
pub struct RowOptions {
    /// Add the `RECORD_METADATA` column.
    pub metadata: bool,
    /// The largest row accepted, in bytes (a row must fit in one append request).
    pub max_row_bytes: usize,
}

/// Converts `record` into a row, or says why it cannot be one.
///
/// # Errors
/// The dead-letter reason: what is wrong with the message, for the dead-letter header and
/// the log.
pub fn to_row(record: &Record<'_>, options: RowOptions) -> Result<Box<RawValue>, String> {
    let Some(value) = record.value else {
        return Err("the message has no value (a tombstone): there is no row to write".into());
    };
    let text = std::str::from_utf8(value)
        .map_err(|e| format!("the value is not UTF-8 text ({e}): a row must be a JSON object"))?;
    let raw: &RawValue = serde_json::from_str(text)
        .map_err(|e| format!("the value is not JSON ({e}): a row must be a JSON object"))?;
    let body = raw.get().trim();
    if !body.starts_with('{') {
        let kind = match body.as_bytes().first() {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            _ => "a number",
        };
        return Err(format!(
            "the value is JSON {kind}, not an object: a row needs column names"
        ));
    }
    let mut row = String::with_capacity(body.len() + if options.metadata { 256 } else { 0 });
    if options.metadata {
        let inner = body[1..].trim_start();
        row.push_str("{\"RECORD_METADATA\":");
        row.push_str(&metadata(record).to_string());
        if !inner.starts_with('}') {
            row.push(',');
        }
        row.push_str(inner);
    } else {
        row.push_str(body);
    }
    if row.contains(['\n', '\r']) {
        // Outside strings (where JSON forbids them raw), line breaks are white space.
        row = row.replace(['\n', '\r'], " ");
    }
    if row.len() > options.max_row_bytes {
        return Err(format!(
            "the row is {} bytes, more than the {} a request may carry: split the message",
            row.len(),
            options.max_row_bytes
        ));
    }
    RawValue::from_string(row).map_err(|e| format!("the row could not be built: {e}"))
}

fn bytes_value(b: &[u8]) -> Value {
    match std::str::from_utf8(b) {
        Ok(s) => Value::String(s.to_owned()),
        Err(_) => json!({ "base64": base64::engine::general_purpose::STANDARD.encode(b) }),
    }
}

/// The `RECORD_METADATA` object of `record`.
pub fn metadata(record: &Record<'_>) -> Value {
    let mut m = Map::new();
    m.insert("topic".into(), record.topic.into());
    m.insert("partition".into(), record.partition.into());
    m.insert("offset".into(), record.offset.into());
    if let Some((kind, ms)) = record.timestamp {
        let name = match kind {
            TimestampKind::CreateTime => "CreateTime",
            TimestampKind::LogAppendTime => "LogAppendTime",
        };
        m.insert(name.into(), ms.into());
    }
    if let Some(key) = record.key {
        match std::str::from_utf8(key) {
            Ok(s) => m.insert("key".into(), s.into()),
            Err(_) => m.insert(
                "key_base64".into(),
                base64::engine::general_purpose::STANDARD.encode(key).into(),
            ),
        };
    }
    if !record.headers.is_empty() {
        let headers: Map<String, Value> = record
            .headers
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.map_or(Value::Null, bytes_value)))
            .collect();
        m.insert("headers".into(), Value::Object(headers));
    }
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record<'a>(
        value: Option<&'a [u8]>,
        headers: &'a [(&'a str, Option<&'a [u8]>)],
    ) -> Record<'a> {
        Record {
            topic: "orders",
            partition: 3,
            offset: 42,
            key: Some(b"k-1"),
            value,
            timestamp: Some((TimestampKind::CreateTime, 1_700_000_000_000)),
            headers,
        }
    }

    const PLAIN: RowOptions = RowOptions {
        metadata: false,
        max_row_bytes: 1 << 20,
    };
    const META: RowOptions = RowOptions {
        metadata: true,
        max_row_bytes: 1 << 20,
    };

    #[test]
    fn a_json_object_is_a_row_as_written_and_one_line() {
        let row = to_row(
            &record(Some(b" {\"a\": 1,\n \"b\": \"x\\ny\"}\n"), &[]),
            PLAIN,
        )
        .unwrap();
        assert_eq!(row.get(), "{\"a\": 1,  \"b\": \"x\\ny\"}");
        let v: Value = serde_json::from_str(row.get()).unwrap();
        assert_eq!(v["b"], "x\ny");
    }

    #[test]
    fn metadata_comes_first_with_topic_partition_offset_time_key_and_headers() {
        let headers: &[(&str, Option<&[u8]>)] = &[
            ("trace", Some(b"t-9")),
            ("bin", Some(&[0xff, 0x00])),
            ("none", None),
        ];
        let row = to_row(&record(Some(b"{\"a\":1}"), headers), META).unwrap();
        let v: Value = serde_json::from_str(row.get()).unwrap();
        assert!(row.get().starts_with("{\"RECORD_METADATA\":"));
        assert_eq!(v["a"], 1);
        let m = &v["RECORD_METADATA"];
        assert_eq!(m["topic"], "orders");
        assert_eq!(m["partition"], 3);
        assert_eq!(m["offset"], 42);
        assert_eq!(m["CreateTime"], 1_700_000_000_000_i64);
        assert_eq!(m["key"], "k-1");
        assert_eq!(m["headers"]["trace"], "t-9");
        assert_eq!(m["headers"]["bin"]["base64"], "/wA=");
        assert_eq!(m["headers"]["none"], Value::Null);
        let empty = to_row(&record(Some(b"{ }"), &[]), META).unwrap();
        let v: Value = serde_json::from_str(empty.get()).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
    }

    #[test]
    fn anything_but_a_json_object_is_a_dead_letter_that_says_why() {
        let cases: &[(Option<&[u8]>, &str)] = &[
            (None, "tombstone"),
            (Some(&[0xc3, 0x28]), "not UTF-8"),
            (Some(b"garbage{"), "not JSON"),
            (Some(b""), "not JSON"),
            (Some(b"[1,2]"), "JSON an array, not an object"),
            (Some(b"\"s\""), "JSON a string"),
            (Some(b"12.5"), "JSON a number"),
            (Some(b"null"), "JSON null"),
            (Some(b"true"), "JSON a boolean"),
            (Some(b"{\"a\":1} trailing"), "not JSON"),
        ];
        for (value, why) in cases {
            let err = to_row(&record(*value, &[]), META).unwrap_err();
            assert!(err.contains(why), "{value:?}: {err}");
        }
    }

    #[test]
    fn a_row_larger_than_a_request_is_a_dead_letter() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
        let small = RowOptions {
            metadata: false,
            max_row_bytes: 50,
        };
        let err = to_row(&record(Some(big.as_bytes()), &[]), small).unwrap_err();
        assert!(err.contains("more than the 50"), "{err}");
    }
}
