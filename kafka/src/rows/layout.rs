//! The row layouts of Snowflake's Kafka connector: which row a message becomes, and what
//! becomes of a message without a value (a tombstone).
//!
//! * `--layout columns` (the default; the connector's `snowflake.enable.schematization=true`):
//!   a JSON object's keys are the columns, plus `RECORD_METADATA` with `--metadata`
//!   (`record::write_candidate`, unchanged: this module only routes to it).
//! * `--layout record-content` (the connector with `snowflake.enable.schematization=false`):
//!   `{"RECORD_METADATA":{…},"RECORD_CONTENT":<value>}`. With `--value-format json` (the
//!   connector's JsonConverter) the value is any JSON value, copied as the producer wrote it and
//!   checked alone (so a value cannot close the object and add keys of its own); primitives go
//!   in as they are, not quoted again (the connector's `SnowflakeSinkRecord`,
//!   `wrapValueAsRecordContent`). With `--value-format string` (its StringConverter) the value
//!   is UTF-8 text, written as a JSON string. The metadata comes first in the line so the value
//!   ends the row; the line's key order does not matter, each key is a column.
//! * A tombstone (no value; in `record-content` with JSON values also the JSON text `null`,
//!   which the JsonConverter reads as no value) is, by `--on-null-value`: `write` (the
//!   connector's `behavior.on.null.values=DEFAULT`) a row of `RECORD_METADATA` alone in either
//!   layout, or nothing when there is no metadata to write (the connector then skips the row
//!   and counts the offset as processed); `skip` (its `IGNORE`) nothing, the offset processed;
//!   `dead-letter` a dead letter, as the sink did before layouts existed.
//!
//! Rows are written straight into the batch buffer on the poll thread, as in `columns`; a
//! string value is escaped once, there. The worker then checks what it must
//! ([`finish`]): the whole row in `columns`, the value alone in `record-content` (the rest is
//! ours), nothing for a string or a tombstone (checked when written).

use clap::ValueEnum;
use serde::de::IgnoredAny;

use crate::rows::record::{Candidate, Record, RowOptions};

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutKind {
    /// The value's keys are columns (the connector's schematized mode).
    Columns,
    /// `RECORD_CONTENT` holds the value (the connector with schematization off).
    RecordContent,
}

/// How the row writer reads a value's bytes (from `--value-format`; Schema Registry formats
/// are decoded by the partition worker instead, see `value_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueFormat {
    /// JSON text (the connector's JsonConverter with `schemas.enable=false`).
    Json,
    /// UTF-8 text, stored as a JSON string (its StringConverter; `record-content` only).
    Text,
}

/// `--on-null-value`: what a tombstone becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnNullValue {
    /// A row of `RECORD_METADATA` alone (nothing without `--metadata`).
    Write,
    /// Nothing; the offset counts as processed.
    Skip,
    /// A dead letter.
    DeadLetter,
}

/// How messages become rows (beyond `--metadata`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    /// `--layout`.
    pub kind: LayoutKind,
    /// `--value-format`.
    pub value_format: ValueFormat,
    /// `--on-null-value`.
    pub on_null: OnNullValue,
    /// `RECORD_METADATA` gets `SnowflakeConnectorPushTime` (not `--no-push-time`).
    pub push_time: bool,
    /// Header values keep their JSON type (`--structured-headers`).
    pub structured_headers: bool,
    /// The `RECORD_METADATA` fields left out (`--no-metadata-…`).
    pub fields: crate::rows::metadata_fields::MetadataFields,
    /// How keys are written (`--key-converter`).
    pub key_converter: crate::rows::connect_values::KeyConverter,
    /// How header values are written (`--header-converter`).
    pub header_converter: crate::rows::connect_values::HeaderConverter,
    /// Top-level keys are normalized as SQL identifiers (`--normalize-columns`).
    pub normalize_columns: bool,
}

impl Layout {
    /// The defaults of the command line (and of the connector).
    pub const DEFAULT: Layout = Layout {
        kind: LayoutKind::Columns,
        value_format: ValueFormat::Json,
        on_null: OnNullValue::Write,
        push_time: true,
        structured_headers: false,
        fields: crate::rows::metadata_fields::MetadataFields::ALL,
        key_converter: crate::rows::connect_values::KeyConverter::Raw,
        header_converter: crate::rows::connect_values::HeaderConverter::Raw,
        normalize_columns: false,
    };
}

impl Default for Layout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl crate::cli::args::SinkArgs {
    /// The layout the command line gives.
    ///
    /// # Errors
    /// `--value-format string` with `--layout columns` (text has no column names).
    pub fn row_layout(&self) -> Result<Layout, String> {
        use crate::rows::value_format::ValueFormat as Cli;
        let value_format = match self.value_format {
            Cli::String => ValueFormat::Text,
            Cli::Json => ValueFormat::Json,
            // Decoded by the partition worker into JSON, then written as JSON values are
            // (`value_format::Decoder::rows`).
            Cli::Avro | Cli::JsonSchema | Cli::Protobuf => ValueFormat::Json,
        };
        if value_format == ValueFormat::Text && self.layout == LayoutKind::Columns {
            return Err(
                "--value-format string needs --layout record-content: text has no \
                        column names (the connector refuses it in schematized mode too)"
                    .into(),
            );
        }
        Ok(Layout {
            kind: self.layout,
            value_format,
            on_null: self.on_null_value,
            push_time: !self.no_push_time,
            structured_headers: self.structured_headers,
            fields: crate::rows::metadata_fields::MetadataFields {
                no_metadata_topic: self.no_metadata_topic,
                no_metadata_offset_and_partition: self.no_metadata_offset_and_partition,
                no_metadata_createtime: self.no_metadata_createtime,
            },
            key_converter: self.key_converter,
            header_converter: self.header_converter,
            normalize_columns: self.normalize_columns,
        })
    }
}

/// How a value sits in its candidate row, and what is left to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `columns`: the value (its first bytes replaced) runs to the row's end; the whole row is
    /// checked.
    Object,
    /// `record-content`, JSON: the value runs to the row's last byte (`}`); it alone is checked.
    Content,
    /// `record-content`, text: the value is the JSON string before the row's last byte; checked
    /// when written.
    Text,
    /// A tombstone's `RECORD_METADATA` alone; checked when written.
    Tombstone,
}

/// What [`write_row`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Written {
    /// A candidate row, followed by `\n`.
    Row(Candidate),
    /// Nothing, and none is due: a tombstone skipped.
    Skip,
    /// Nothing: the message cannot be a row (`record::reason` says why).
    NotRow,
}

const METADATA_KEY: &[u8] = b"{\"RECORD_METADATA\":";
const CONTENT_KEY: &[u8] = b"\"RECORD_CONTENT\":";

/// Whether `value` is a tombstone in `layout`: no value, or with JSON values (the
/// JsonConverter's null) the text `null` or nothing but white space, in either layout.
pub(crate) fn is_tombstone(value: Option<&[u8]>, layout: Layout) -> bool {
    match value {
        None => true,
        Some(v) => {
            layout.value_format == ValueFormat::Json && matches!(v.trim_ascii(), b"null" | b"")
        }
    }
}

/// Whether `value` is a JSON object without a key (`{}`, white space aside).
fn is_empty_object(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    v.len() >= 2
        && v[0] == b'{'
        && v[v.len() - 1] == b'}'
        && v[1..v.len() - 1].trim_ascii().is_empty()
}

/// Bytes of a `record-content` row (without `\n`) whose value, as written, is `value_len`.
fn content_len(value_len: usize, metadata: Option<usize>) -> usize {
    value_len + CONTENT_KEY.len() + 2 + metadata.map_or(0, |m| m + METADATA_KEY.len())
}

/// Bytes of `s` written as a JSON string (serde_json's escapes).
fn escaped_len(s: &[u8]) -> usize {
    2 + s
        .iter()
        .map(|&b| match b {
            b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

/// The most bytes of `value` that [`write_row`]'s outcome leaves for the batch's side buffer
/// (with metadata, when `metadata`; `row` being its [`row_len`]): all of it when it cannot be a
/// row (it is kept for its dead letter), else the bytes before the row's own
/// (`record::Candidate::prefix`).
pub fn side_len(value: Option<&[u8]>, metadata: bool, row: usize, options: &RowOptions) -> usize {
    let layout = options.layout;
    let whole = value.map_or(0, <[u8]>::len);
    if is_tombstone(value, layout) {
        return match layout.on_null {
            OnNullValue::DeadLetter => whole,
            OnNullValue::Skip | OnNullValue::Write => 0,
        };
    }
    let v = value.unwrap_or_default();
    match (layout.kind, layout.value_format) {
        (LayoutKind::Columns, _) => {
            crate::rows::record::candidate_prefix_len(v, metadata).unwrap_or(whole)
        }
        (LayoutKind::RecordContent, ValueFormat::Json) => 0,
        (LayoutKind::RecordContent, ValueFormat::Text) => {
            if row > options.max_row_bytes || std::str::from_utf8(v).is_err() {
                whole
            } else {
                0
            }
        }
    }
}

/// The most bytes [`write_row`] writes for `value` with metadata of `metadata` bytes.
pub fn row_len(value: Option<&[u8]>, metadata: Option<usize>, options: &RowOptions) -> usize {
    let layout = options.layout;
    if is_tombstone(value, layout) {
        return metadata.map_or(0, |m| m + METADATA_KEY.len() + 2);
    }
    let v = value.unwrap_or_default();
    match (layout.kind, layout.value_format) {
        (LayoutKind::Columns, _) => crate::rows::record::candidate_len(v, metadata),
        (LayoutKind::RecordContent, ValueFormat::Json) => content_len(v.len(), metadata) + 1,
        (LayoutKind::RecordContent, ValueFormat::Text) => content_len(escaped_len(v), metadata) + 1,
    }
}

/// Writes the candidate row of a message whose value is `value` into `rows` (with `metadata`,
/// a `RECORD_METADATA` object, when given), or says why nothing was written.
pub fn write_row(
    value: Option<&[u8]>,
    metadata: Option<&[u8]>,
    options: &RowOptions,
    rows: &mut Vec<u8>,
) -> Written {
    let layout = options.layout;
    if is_tombstone(value, layout) {
        return match (layout.on_null, metadata) {
            (OnNullValue::DeadLetter, _) => Written::NotRow,
            (OnNullValue::Skip, _) | (OnNullValue::Write, None) => Written::Skip,
            (OnNullValue::Write, Some(meta)) => {
                let start = rows.len();
                rows.extend_from_slice(METADATA_KEY);
                rows.extend_from_slice(meta);
                rows.push(b'}');
                let rest = rows.len();
                rows.push(b'\n');
                Written::Row(Candidate {
                    start,
                    rest,
                    prefix: 0,
                    shape: Shape::Tombstone,
                })
            }
        };
    }
    let value = value.unwrap_or_default();
    if layout.kind == LayoutKind::Columns {
        // No column and no metadata: the connector appends no row (`transformAndSend`).
        if metadata.is_none() && is_empty_object(value) {
            return Written::Skip;
        }
        return crate::rows::record::write_candidate(Some(value), metadata, rows)
            .map_or(Written::NotRow, Written::Row);
    }
    let text = match layout.value_format {
        ValueFormat::Json => None,
        ValueFormat::Text => match std::str::from_utf8(value) {
            Ok(t) => Some(t),
            Err(_) => return Written::NotRow,
        },
    };
    let start = rows.len();
    match metadata {
        Some(meta) => {
            rows.extend_from_slice(METADATA_KEY);
            rows.extend_from_slice(meta);
            rows.push(b',');
        }
        None => rows.push(b'{'),
    }
    rows.extend_from_slice(CONTENT_KEY);
    let rest = rows.len();
    let shape = match text {
        None => {
            rows.extend_from_slice(value);
            Shape::Content
        }
        Some(t) => {
            // Writing a string into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *rows, t);
            if rows.len() + 1 - start > options.max_row_bytes {
                rows.truncate(start);
                return Written::NotRow;
            }
            Shape::Text
        }
    };
    rows.extend_from_slice(b"}\n");
    Written::Row(Candidate {
        start,
        rest,
        prefix: 0,
        shape,
    })
}

/// Checks a candidate `row` of `shape` (without its `\n`; its value from `rest`, an index into
/// `row`) in place, as `record::finish_row` does for `columns`: whether it is a row.
pub fn finish(row: &mut [u8], rest: usize, shape: Shape, max_row_bytes: usize) -> bool {
    match shape {
        Shape::Object => crate::rows::record::finish_row(row, max_row_bytes),
        Shape::Text | Shape::Tombstone => true,
        Shape::Content => {
            if row.len() > max_row_bytes {
                return false;
            }
            let end = row.len() - 1;
            crate::rows::record::one_line_json(&mut row[rest..end])
        }
    }
}

/// The value of a candidate row of `shape` whose value is `prefix` then `rest` (the row from
/// the value's first byte, without its `\n`); `None` for a tombstone.
pub fn value_of(prefix: &[u8], rest: &[u8], shape: Shape) -> Option<Vec<u8>> {
    match shape {
        Shape::Object => Some([prefix, rest].concat()),
        Shape::Content => Some([prefix, &rest[..rest.len() - 1]].concat()),
        Shape::Text => {
            let json = &rest[..rest.len() - 1];
            Some(
                serde_json::from_slice::<String>(json)
                    .map_or_else(|_| json.to_vec(), String::into_bytes),
            )
        }
        Shape::Tombstone => None,
    }
}

/// Why `record` is not a row in `record-content`, or as a tombstone (the dead-letter reason),
/// or `None` when it is one (or is skipped). `metadata`: its `RECORD_METADATA` as written.
pub fn reason(
    record: &Record<'_>,
    options: &RowOptions,
    metadata: Option<usize>,
) -> Option<String> {
    let layout = options.layout;
    if is_tombstone(record.value, layout) {
        return (layout.on_null == OnNullValue::DeadLetter).then(|| {
            "the message has no value (a tombstone) and --on-null-value is dead-letter: write \
             or skip would keep it out of the dead letters"
                .to_owned()
        });
    }
    let value = record.value.unwrap_or_default();
    let written = match layout.value_format {
        ValueFormat::Json => {
            let text = match std::str::from_utf8(value) {
                Ok(t) => t,
                Err(e) => {
                    return Some(format!(
                        "the value is not UTF-8 text ({e}): RECORD_CONTENT takes a JSON value"
                    ))
                }
            };
            if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
                return Some(format!(
                    "the value is not JSON ({e}): RECORD_CONTENT takes one JSON value; give \
                     --value-format string to store text as a JSON string"
                ));
            }
            value.len()
        }
        ValueFormat::Text => {
            if let Err(e) = std::str::from_utf8(value) {
                return Some(format!(
                    "the value is not UTF-8 text ({e}): --value-format string takes text"
                ));
            }
            escaped_len(value)
        }
    };
    let len = content_len(written, metadata);
    (len > options.max_row_bytes).then(|| {
        format!(
            "the row is about {len} bytes, more than the {} a request may carry: split the message",
            options.max_row_bytes
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::record::{metadata_of, Record, TimestampKind};

    type Headers<'a> = &'a [(&'a [u8], Option<&'a [u8]>)];

    fn record<'a>(value: Option<&'a [u8]>, headers: Headers<'a>) -> Record<'a> {
        Record {
            topic: "t",
            partition: 1,
            offset: 9,
            key: Some(b"k"),
            value,
            timestamp: Some((TimestampKind::CreateTime, 5)),
            headers,
        }
    }

    fn options(metadata: bool, layout: Layout) -> RowOptions {
        RowOptions {
            metadata,
            max_row_bytes: 1 << 20,
            layout: Layout {
                push_time: false,
                ..layout
            },
        }
    }

    const CONTENT: Layout = Layout {
        kind: LayoutKind::RecordContent,
        ..Layout::DEFAULT
    };
    const TEXT: Layout = Layout {
        value_format: ValueFormat::Text,
        ..CONTENT
    };

    /// What `record` becomes, as the router and the worker make it: `Ok(Some(row))`,
    /// `Ok(None)` (skipped) or `Err(reason)`; checks that the worker and `record::reason`
    /// agree, that nothing is written for what is no row, that the bytes written fit
    /// [`row_len`] and that the value can be had back from the row.
    fn to_row(record: &Record<'_>, o: RowOptions) -> Result<Option<String>, String> {
        let mut meta = Vec::new();
        let metadata = match metadata_of(record, o, &mut meta) {
            Ok(true) => Some(&meta[..]),
            Ok(false) => None,
            Err(why) => return Err(why),
        };
        let mut rows = b"previous\n".to_vec();
        let kept = rows.len();
        let written = write_row(record.value, metadata, &o, &mut rows);
        let why = crate::rows::record::reason(record, o);
        match written {
            Written::Skip | Written::NotRow => {
                assert_eq!(rows.len(), kept, "nothing written");
                assert_eq!(written == Written::Skip, why.is_none(), "{why:?}");
                why.map_or(Ok(None), Err)
            }
            Written::Row(c) => {
                let len = row_len(record.value, metadata.map(<[u8]>::len), &o);
                assert!(rows.len() - kept <= len, "{} > {len}", rows.len() - kept);
                let end = rows.len() - 1;
                let value = value_of(&[], &rows[c.rest..end], c.shape);
                let is_null = record
                    .value
                    .is_some_and(|v| matches!(v.trim_ascii(), b"null" | b""));
                if !is_null {
                    assert_eq!(value.as_deref(), record.value, "the value from the row");
                }
                let ok = finish(
                    &mut rows[c.start..end],
                    c.rest - c.start,
                    c.shape,
                    o.max_row_bytes,
                );
                assert_eq!(ok, why.is_none(), "{why:?}");
                match why {
                    None => Ok(Some(
                        String::from_utf8(rows[c.start..end].to_vec()).unwrap(),
                    )),
                    Some(why) => Err(why),
                }
            }
        }
    }

    const META: &str = r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"key":"k"}"#;

    #[test]
    fn record_content_holds_any_json_value_as_written() {
        let cases: &[(&[u8], &str)] = &[
            (b"{\"a\":1}", "{\"a\":1}"),
            (b"[1,\"x\"]", "[1,\"x\"]"),
            (b"\"s\"", "\"s\""),
            (b"12.5", "12.5"),
            (b"true", "true"),
            (b" {\"a\":\n 1} ", " {\"a\":  1} "),
        ];
        for (value, content) in cases {
            let row = to_row(&record(Some(value), &[]), options(true, CONTENT));
            let want = format!("{{\"RECORD_METADATA\":{META},\"RECORD_CONTENT\":{content}}}");
            assert_eq!(row, Ok(Some(want)), "{value:?}");
            let row = to_row(&record(Some(value), &[]), options(false, CONTENT));
            assert_eq!(row, Ok(Some(format!("{{\"RECORD_CONTENT\":{content}}}"))));
        }
    }

    #[test]
    fn record_content_refuses_what_is_not_one_json_value_and_says_why() {
        let cases: &[(&[u8], &str)] = &[
            (b"hello", "not JSON"),
            // A value that would close the row and add a RECORD_METADATA of its own.
            (b"1,\"RECORD_METADATA\":{}", "not JSON"),
            (b"{\"a\":1} {", "not JSON"),
            (&[0xff, 0x31], "not UTF-8"),
        ];
        for (value, why) in cases {
            let err = to_row(&record(Some(value), &[]), options(true, CONTENT)).unwrap_err();
            assert!(err.contains(why), "{value:?}: {err}");
        }
        let too_big = RowOptions {
            max_row_bytes: 30,
            ..options(false, CONTENT)
        };
        let err = to_row(&record(Some(b"\"0123456789abcdef\""), &[]), too_big).unwrap_err();
        assert!(err.contains("more than the 30"), "{err}");
    }

    #[test]
    fn string_values_are_json_strings_and_bytes_that_are_not_text_are_refused() {
        let cases: &[(&[u8], &str)] = &[
            (b"plain", "\"plain\""),
            (b"{\"a\":1}", "\"{\\\"a\\\":1}\""),
            (b"two\nlines\t\x01", "\"two\\nlines\\t\\u0001\""),
            (b"", "\"\""),
            ("caf\u{e9}".as_bytes(), "\"caf\u{e9}\""),
        ];
        for (value, content) in cases {
            let row = to_row(&record(Some(value), &[]), options(false, TEXT));
            assert_eq!(row, Ok(Some(format!("{{\"RECORD_CONTENT\":{content}}}"))));
        }
        let err = to_row(&record(Some(&[0xc3, 0x28]), &[]), options(true, TEXT)).unwrap_err();
        assert!(err.contains("not UTF-8"), "{err}");
        let too_big = RowOptions {
            max_row_bytes: 30,
            ..options(false, TEXT)
        };
        let err = to_row(&record(Some(&[b'\n'; 10]), &[]), too_big).unwrap_err();
        assert!(err.contains("more than the 30"), "{err}");
    }

    #[test]
    fn a_tombstone_is_a_metadata_row_skipped_or_a_dead_letter_as_on_null_value_says() {
        let meta_row = Ok(Some(format!("{{\"RECORD_METADATA\":{META}}}")));
        for layout in [Layout::DEFAULT, CONTENT, TEXT] {
            let with = |on_null| options(true, Layout { on_null, ..layout });
            let without = |on_null| RowOptions {
                metadata: false,
                ..with(on_null)
            };
            let tombstone = record(None, &[]);
            assert_eq!(to_row(&tombstone, with(OnNullValue::Write)), meta_row);
            assert_eq!(to_row(&tombstone, without(OnNullValue::Write)), Ok(None));
            assert_eq!(to_row(&tombstone, with(OnNullValue::Skip)), Ok(None));
            let err = to_row(&tombstone, with(OnNullValue::DeadLetter)).unwrap_err();
            assert!(err.contains("tombstone"), "{err}");
        }
        // The JsonConverter reads the JSON text `null` as no value.
        let null = record(Some(b" null "), &[]);
        assert_eq!(to_row(&null, options(true, CONTENT)), meta_row);
        let row = to_row(&null, options(true, TEXT)).unwrap().unwrap();
        assert!(row.ends_with(",\"RECORD_CONTENT\":\" null \"}"), "{row}");
        // In `columns` too, and an empty value (the JsonConverter's no content) alike.
        assert_eq!(to_row(&null, options(true, Layout::DEFAULT)), meta_row);
        let empty = record(Some(b" "), &[]);
        assert_eq!(to_row(&empty, options(true, Layout::DEFAULT)), meta_row);
        assert_eq!(to_row(&empty, options(true, CONTENT)), meta_row);
        // `{}` with no metadata is no row: the connector appends none.
        let bare = record(Some(b"{ }"), &[]);
        assert_eq!(to_row(&bare, options(false, Layout::DEFAULT)), Ok(None));
    }

    #[test]
    fn metadata_is_in_the_connectors_key_order_with_push_time_and_typed_headers_on_request() {
        let headers: Headers<'_> = &[
            (b"n", Some(b"42")),
            (b"obj", Some(b"{\"a\":\n[1]}")),
            (b"text", Some(b"hi")),
            (b"bin", Some(&[0xff])),
            (b"none", None),
        ];
        let r = record(Some(b"{}"), headers);
        let mut meta = Vec::new();
        assert_eq!(metadata_of(&r, options(true, CONTENT), &mut meta), Ok(true));
        assert_eq!(
            String::from_utf8(meta.clone()).unwrap(),
            r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"key":"k","headers":{"n":"42","obj":"{\"a\":\n[1]}","text":"hi","bin":{"base64":"/w=="},"none":null}}"#
        );
        let typed = options(
            true,
            Layout {
                structured_headers: true,
                ..CONTENT
            },
        );
        assert_eq!(metadata_of(&r, typed, &mut meta), Ok(true));
        assert_eq!(
            String::from_utf8(meta.clone()).unwrap(),
            r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"key":"k","headers":{"n":42,"obj":{"a": [1]},"text":"hi","bin":{"base64":"/w=="},"none":null}}"#
        );
        let pushed = RowOptions {
            layout: CONTENT,
            ..options(true, CONTENT)
        };
        let before = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis();
        assert_eq!(metadata_of(&record(None, &[]), pushed, &mut meta), Ok(true));
        let text = String::from_utf8(meta.clone()).unwrap();
        let rest = text
            .strip_prefix(r#"{"topic":"t","offset":9,"partition":1,"CreateTime":5,"SnowflakeConnectorPushTime":"#)
            .unwrap_or_else(|| panic!("{text}"));
        let (ms, tail) = rest.split_once(',').unwrap();
        assert!(ms.parse::<u128>().unwrap() >= before, "{text}");
        assert_eq!(tail, r#""key":"k"}"#);
    }

    #[test]
    fn string_values_need_the_record_content_layout() {
        let parse = |extra: &str| crate::cli::args::args_with(extra).unwrap().row_layout();
        let err = parse("--value-format string").unwrap_err();
        assert!(err.contains("--layout record-content"), "{err}");
        assert_eq!(
            parse("--layout record-content --value-format string --on-null-value skip"),
            Ok(Layout {
                on_null: OnNullValue::Skip,
                ..TEXT
            })
        );
        assert_eq!(parse(""), Ok(Layout::DEFAULT));
        // Registry formats are decoded to JSON, then laid out as JSON values.
        for format in ["avro", "json-schema", "protobuf"] {
            assert_eq!(
                parse(&format!("--layout record-content --value-format {format}")),
                Ok(CONTENT),
                "{format}"
            );
        }
        assert_eq!(
            parse("--no-push-time --structured-headers"),
            Ok(Layout {
                push_time: false,
                structured_headers: true,
                ..Layout::DEFAULT
            })
        );
    }
}
