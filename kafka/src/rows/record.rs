//! One Kafka message → one row, or the reason it cannot be one.
//!
//! A message whose value is a JSON object is a row, kept as the producer wrote it: its text is
//! copied once, on the poll thread, into the batch buffer the channel takes as it is
//! (`snowpipe_streaming::RawRows`), and validated once there by the partition's worker (never
//! parsed into a tree and written again). Line breaks, which JSON allows only as white space,
//! become spaces so the row stays one NDJSON line. With `--metadata` the row gets a
//! `RECORD_METADATA` object first, as Snowflake's Kafka connector writes it, in its order
//! (the connector's v3 `RecordService`): `topic`, `offset`, `partition`, `CreateTime` or
//! `LogAppendTime` (ms), `SnowflakeConnectorPushTime` (ms, when the row is written; not with
//! `--no-push-time`), `key` and `headers` (text values as strings, or with
//! `--structured-headers` as the JSON they hold; other bytes as base64 under `key_base64` / in
//! a `{"base64": …}` object; a header key given twice keeps its last value). `topic`,
//! `offset` and `partition`, and the timestamp are left out on request
//! ([`metadata_fields`](crate::rows::metadata_fields)).
//!
//! Anything else — bytes that are not UTF-8, text that is not JSON, JSON that is not an
//! object, a header key that is not UTF-8, a row larger than a request — is a dead letter with
//! a reason that names the problem; it never stops the partition. Tombstones and the
//! `record-content` layout are the [`layout`](crate::rows::layout) module's; the row itself
//! is written by [`row`](crate::rows::row).

use crate::formats::json_text::{base64, write_str};
use crate::rows::offset::KafkaOffset;

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
    pub offset: KafkaOffset,
    /// The key, if any.
    pub key: Option<&'a [u8]>,
    /// The value (`None` for a tombstone).
    pub value: Option<&'a [u8]>,
    /// The timestamp, if the broker reported one.
    pub timestamp: Option<(TimestampKind, i64)>,
    /// The headers, in order, keys and values as the producer wrote them.
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// The largest row: a row must fit in one append request, with room for the request's other
/// bytes.
pub(crate) const MAX_ROW_BYTES: usize = 4_000_000 - 4_096;

/// Options of the conversion.
#[derive(Debug, Clone, Copy)]
pub struct RowOptions {
    /// Add the `RECORD_METADATA` column.
    pub metadata: bool,
    /// The largest row accepted, in bytes (a row must fit in one append request).
    pub max_row_bytes: usize,
    /// The row layout, tombstones and metadata details.
    pub layout: crate::rows::layout::Layout,
}

/// What `RECORD_METADATA` holds beyond the message.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct MetaOptions {
    /// `SnowflakeConnectorPushTime`, epoch ms.
    pub push_time: Option<i64>,
    /// Header values that are JSON are written as that JSON.
    pub structured_headers: bool,
    /// The fields left out (`--no-metadata-…`).
    pub fields: crate::rows::metadata_fields::MetadataFields,
    /// How the key is written (`--key-converter`).
    pub key: crate::rows::connect_values::KeyConverter,
    /// How header values are written (`--header-converter`).
    pub headers: crate::rows::connect_values::HeaderConverter,
}

impl MetaOptions {
    /// The metadata options of `layout`, the push time now.
    pub(crate) fn now(layout: &crate::rows::layout::Layout) -> Self {
        let push_time = layout.push_time.then(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        });
        Self {
            push_time,
            structured_headers: layout.structured_headers,
            fields: layout.fields,
            key: layout.key_converter,
            headers: layout.header_converter,
        }
    }
}

/// The `RECORD_METADATA` object `record` gets, written into `scratch` (emptied first); `Ok(false)`
/// without `--metadata`.
///
/// # Errors
/// A header key that is not UTF-8 (with `--metadata`).
pub(crate) fn metadata_of(
    record: &Record<'_>,
    options: RowOptions,
    scratch: &mut Vec<u8>,
) -> Result<bool, String> {
    metadata_with_key(record, options, None, scratch)
}

/// [`metadata_of`], the key already decoded by its Schema Registry converter (`decoded_key`,
/// JSON). A map with no field (every field turned off, no key, no headers) is no metadata:
/// the connector then writes no `RECORD_METADATA` (its `getContentWithMetadata`).
///
/// # Errors
/// As [`write_metadata`].
pub(crate) fn metadata_with_key(
    record: &Record<'_>,
    options: RowOptions,
    decoded_key: Option<&str>,
    scratch: &mut Vec<u8>,
) -> Result<bool, String> {
    scratch.clear();
    if !options.metadata {
        return Ok(false);
    }
    write_metadata_with(
        record,
        MetaOptions::now(&options.layout),
        decoded_key,
        scratch,
    )?;
    if scratch[..] == *b"{}" {
        scratch.clear();
        return Ok(false);
    }
    Ok(true)
}

fn write_int(out: &mut Vec<u8>, n: i64) {
    out.extend_from_slice(itoa::Buffer::new().format(n).as_bytes());
}

/// Writes the `RECORD_METADATA` object of `record` into `out`.
///
/// # Errors
/// A header key that is not UTF-8 (a JSON object's keys are text) with the `raw` header
/// converter; a key or header value its converter cannot read (`connect_values`).
pub(crate) fn write_metadata(
    record: &Record<'_>,
    options: MetaOptions,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    write_metadata_with(record, options, None, out)
}

/// [`write_metadata`] with the key already decoded by its Schema Registry converter.
///
/// # Errors
/// As [`write_metadata`].
pub(crate) fn write_metadata_with(
    record: &Record<'_>,
    options: MetaOptions,
    decoded_key: Option<&str>,
    out: &mut Vec<u8>,
) -> Result<(), String> {
    let start = out.len();
    out.push(b'{');
    let fields = options.fields;
    if fields.topic() {
        out.extend_from_slice(b",\"topic\":");
        write_str(out, record.topic);
    }
    if fields.offset_and_partition() {
        out.extend_from_slice(b",\"offset\":");
        write_int(out, record.offset.get());
        out.extend_from_slice(b",\"partition\":");
        write_int(out, i64::from(record.partition));
    }
    if let Some((kind, ms)) = record.timestamp.filter(|_| fields.createtime()) {
        out.extend_from_slice(match kind {
            TimestampKind::CreateTime => b",\"CreateTime\":",
            TimestampKind::LogAppendTime => b",\"LogAppendTime\":",
        });
        write_int(out, ms);
    }
    if let Some(ms) = options.push_time {
        out.extend_from_slice(b",\"SnowflakeConnectorPushTime\":");
        write_int(out, ms);
    }
    if let Some(key) = record.key {
        crate::rows::connect_values::write_key(out, key, options.key, decoded_key)?;
    }
    if !record.headers.is_empty() {
        out.extend_from_slice(b",\"headers\":{");
        let mut first = true;
        // Many headers (a 1 MB message holds 150,000): which are given again, found at once.
        let many = (record.headers.len() > FEW_HEADERS).then(|| given_again(record.headers));
        for (i, (k, v)) in record.headers.iter().enumerate() {
            // Connect's converters take the Java client's header keys, decoded with U+FFFD for
            // what is not UTF-8; the raw converter keeps the refusal (nothing is replaced).
            let key = match options.headers {
                crate::rows::connect_values::HeaderConverter::Raw => {
                    std::borrow::Cow::Borrowed(header_key(k)?)
                }
                _ => String::from_utf8_lossy(k),
            };
            // A key given again later: the last value is the one kept.
            let again = match &many {
                Some(again) => again[i],
                None => record.headers[i + 1..].iter().any(|(later, _)| later == k),
            };
            if again {
                continue;
            }
            if !first {
                out.push(b',');
            }
            first = false;
            write_str(out, &key);
            out.push(b':');
            crate::rows::connect_values::write_header(
                out,
                *v,
                options.headers,
                options.structured_headers,
            )?;
        }
        out.push(b'}');
    }
    out.push(b'}');
    // Every field above starts with a comma: drop the first one.
    if out.get(start + 1) == Some(&b',') {
        out.remove(start + 1);
    }
    Ok(())
}

/// Up to this many headers, a key given twice is found by looking at the later ones (no
/// allocation); beyond, by [`given_again`], whose work grows with the count, not its square.
const FEW_HEADERS: usize = 32;

/// Whether each header's key is given again by a later header (whose value is then the one
/// kept).
fn given_again(headers: &[(&[u8], Option<&[u8]>)]) -> Vec<bool> {
    let mut last = std::collections::HashMap::with_capacity(headers.len());
    for (i, (k, _)) in headers.iter().enumerate() {
        last.insert(*k, i);
    }
    headers
        .iter()
        .enumerate()
        .map(|(i, (k, _))| last.get(k) != Some(&i))
        .collect()
}

/// A header key as text.
///
/// # Errors
/// The dead-letter reason when it is not UTF-8.
pub(crate) fn header_key(key: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(key).map_err(|_| {
        format!(
            "a header key is not UTF-8 text (bytes {}): header keys must be text",
            base64(key)
        )
    })
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;
    use crate::rows::row::{finish_row, reason, write_candidate};

    const NO_HEADERS: &[(&[u8], Option<&[u8]>)] = &[];

    fn record<'a>(
        value: Option<&'a [u8]>,
        headers: &'a [(&'a [u8], Option<&'a [u8]>)],
    ) -> Record<'a> {
        Record {
            topic: "orders",
            partition: 3,
            offset: KafkaOffset::new(42),
            key: Some(b"k-1"),
            value,
            timestamp: Some((TimestampKind::CreateTime, 1_700_000_000_000)),
            headers,
        }
    }

    const PLAIN: RowOptions = RowOptions {
        metadata: false,
        max_row_bytes: 1 << 20,
        layout: crate::rows::layout::Layout::DEFAULT,
    };
    const META: RowOptions = RowOptions {
        metadata: true,
        max_row_bytes: 1 << 20,
        layout: crate::rows::layout::Layout::DEFAULT,
    };

    /// The row `record` becomes, as text, or the reason it is none.
    fn to_row(record: &Record<'_>, options: RowOptions) -> Result<String, String> {
        let mut rows = b"previous\n".to_vec();
        let kept = rows.len();
        let mut meta = Vec::new();
        let start = match metadata_of(record, options, &mut meta) {
            Ok(with) => write_candidate(record.value, with.then_some(&meta[..]), &mut rows),
            Err(_) => None,
        };
        if let (Some(c), Some(value)) = (start, record.value) {
            let mut original = value[..c.prefix].to_vec();
            original.extend_from_slice(&rows[c.rest..rows.len() - 1]);
            assert_eq!(original, value, "the value can be rebuilt from the row");
        }
        let accepted = start.map(|c| c.start).and_then(|s| {
            let end = rows.len() - 1;
            if !finish_row(&mut rows[s..end], options.max_row_bytes) {
                return None;
            }
            Some(String::from_utf8(rows[s..end].to_vec()).unwrap())
        });
        match (accepted, reason(record, options)) {
            (Some(row), None) => Ok(row),
            (None, Some(why)) => {
                if start.is_none() {
                    assert_eq!(rows.len(), kept, "nothing written for {why}");
                }
                Err(why)
            }
            (row, why) => panic!("the row ({row:?}) and the reason ({why:?}) disagree"),
        }
    }

    #[test]
    fn a_json_object_is_a_row_as_written_and_one_line() {
        let row = to_row(
            &record(Some(b" {\"a\": 1,\n \"b\": \"x\\ny\"}\n"), NO_HEADERS),
            PLAIN,
        )
        .unwrap();
        assert_eq!(row, " {\"a\": 1,  \"b\": \"x\\ny\"} ");
        let v: Value = serde_json::from_str(&row).unwrap();
        assert_eq!(v["b"], "x\ny");
    }

    #[test]
    fn metadata_comes_first_with_topic_partition_offset_time_key_and_headers() {
        let headers: &[(&[u8], Option<&[u8]>)] = &[
            (b"trace", Some(b"t-0")),
            (b"bin", Some(&[0xff, 0x00])),
            (b"none", None),
            (b"trace", Some(b"t-9")),
        ];
        let row = to_row(&record(Some(b"{\"a\":1}"), headers), META).unwrap();
        let v: Value = serde_json::from_str(&row).unwrap();
        assert!(row.starts_with("{\"RECORD_METADATA\":"));
        assert_eq!(v["a"], 1);
        let m = &v["RECORD_METADATA"];
        assert_eq!(m["topic"], "orders");
        assert_eq!(m["partition"], 3);
        assert_eq!(m["offset"], 42);
        assert_eq!(m["CreateTime"], 1_700_000_000_000_i64);
        assert_eq!(m["key"], "k-1");
        assert_eq!(
            m["headers"]["trace"], "t-9",
            "the last value of a repeated key"
        );
        assert_eq!(m["headers"]["bin"]["base64"], "/wA=");
        assert_eq!(m["headers"]["none"], Value::Null);
        assert_eq!(m["headers"].as_object().unwrap().len(), 3);
        assert_eq!(
            row.matches("\"trace\"").count(),
            1,
            "no duplicate key: {row}"
        );
        let empty = to_row(&record(Some(b"{ }"), NO_HEADERS), META).unwrap();
        let v: Value = serde_json::from_str(&empty).unwrap();
        assert_eq!(v.as_object().unwrap().len(), 1);
        let bin_key = Record {
            key: Some(&[0xfe]),
            ..record(Some(b"{}"), NO_HEADERS)
        };
        let v: Value = serde_json::from_str(&to_row(&bin_key, META).unwrap()).unwrap();
        assert_eq!(v["RECORD_METADATA"]["key_base64"], "/g==");
    }

    #[test]
    fn anything_but_a_json_object_is_a_dead_letter_that_says_why() {
        let cases: &[(Option<&[u8]>, &str)] = &[
            (None, "tombstone"),
            (Some(&[0xc3, 0x28]), "not UTF-8"),
            (Some(b"{\"a\":\"\xff\"}"), "not UTF-8"),
            (Some(b"garbage{"), "not JSON"),
            (Some(b"[1,2]"), "JSON an array, not an object"),
            (Some(b"\"s\""), "JSON a string"),
            (Some(b"12.5"), "JSON a number"),
            // `null` and an empty value are tombstones (the JsonConverter's null): dead letters
            // here only by `--on-null-value dead-letter`.
            (Some(b"null"), "tombstone"),
            (Some(b""), "tombstone"),
            (Some(b"true"), "JSON a boolean"),
            (Some(b"{\"a\":1} trailing"), "not JSON"),
        ];
        // A tombstone is a dead letter only with `--on-null-value dead-letter` (the default
        // writes a metadata-only row, as the connector: `layout`'s tests).
        let dead_on_null = |o: RowOptions| RowOptions {
            layout: crate::rows::layout::Layout {
                on_null: crate::rows::layout::OnNullValue::DeadLetter,
                ..o.layout
            },
            ..o
        };
        for (value, why) in cases {
            let err = to_row(&record(*value, NO_HEADERS), dead_on_null(META)).unwrap_err();
            assert!(err.contains(why), "{value:?}: {err}");
            let err = to_row(&record(*value, NO_HEADERS), dead_on_null(PLAIN)).unwrap_err();
            assert!(err.contains(why), "{value:?}: {err}");
        }
    }

    /// A message may carry 150,000 headers (1 MB of them): a key given twice is found without
    /// comparing every pair (which took seconds on the poll thread), and the last value of each
    /// key is still the one kept, in the order of the values kept.
    #[test]
    fn many_headers_keep_the_last_value_of_each_key_in_order() {
        let owned: Vec<(Vec<u8>, Vec<u8>)> = (0..150_000)
            .map(|i| {
                (
                    format!("k{}", i % 1000).into_bytes(),
                    format!("v{i}").into_bytes(),
                )
            })
            .collect();
        let headers: Vec<(&[u8], Option<&[u8]>)> =
            owned.iter().map(|(k, v)| (&k[..], Some(&v[..]))).collect();
        let mut out = Vec::new();
        write_metadata(&record(None, &headers), MetaOptions::default(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let start = text.find("\"headers\":{").unwrap();
        let want: String = (149_000..150_000)
            .map(|i| format!("\"k{}\":\"v{i}\"", i % 1000))
            .collect::<Vec<_>>()
            .join(",");
        assert_eq!(&text[start..], format!("\"headers\":{{{want}}}}}"));
        // Both ways of finding them agree, on either side of the bound.
        for n in [0, 1, 2, FEW_HEADERS, FEW_HEADERS + 1, 100] {
            let keys: Vec<Vec<u8>> = (0..n).map(|i| vec![b'a' + (i * 7 % 5) as u8]).collect();
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                keys.iter().map(|k| (&k[..], None)).collect();
            let pairwise: Vec<bool> = (0..n)
                .map(|i| headers[i + 1..].iter().any(|(k, _)| *k == headers[i].0))
                .collect();
            assert_eq!(given_again(&headers), pairwise, "{n} headers");
        }
        // A key that is not text is still found, also among many headers.
        let mut bad = headers[..100].to_vec();
        bad.push((&[0xff], None));
        let err = write_metadata(&record(None, &bad), MetaOptions::default(), &mut Vec::new());
        assert!(err.unwrap_err().contains("not UTF-8"));
    }

    #[test]
    fn a_header_key_that_is_not_text_is_a_dead_letter_with_metadata_and_ignored_without() {
        let headers: &[(&[u8], Option<&[u8]>)] = &[(b"ok", None), (&[0x80, 0x61], Some(b"v"))];
        let err = to_row(&record(Some(b"{}"), headers), META).unwrap_err();
        assert!(err.contains("header key is not UTF-8"), "{err}");
        assert_eq!(to_row(&record(Some(b"{}"), headers), PLAIN).unwrap(), "{}");
    }

    #[test]
    fn a_row_larger_than_a_request_is_a_dead_letter() {
        let big = format!("{{\"a\":\"{}\"}}", "x".repeat(100));
        let small = RowOptions {
            metadata: false,
            max_row_bytes: 50,
            layout: crate::rows::layout::Layout::DEFAULT,
        };
        let err = to_row(&record(Some(big.as_bytes()), NO_HEADERS), small).unwrap_err();
        assert!(err.contains("more than the 50"), "{err}");
    }
}
