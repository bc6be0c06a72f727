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

use crate::record::{Candidate, Record, RowOptions};

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutKind {
    /// The value's keys are columns (the connector's schematized mode).
    Columns,
    /// `RECORD_CONTENT` holds the value (the connector with schematization off).
    RecordContent,
}

/// `--value-format`: how the value's bytes are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValueFormat {
    /// JSON text (the connector's JsonConverter with `schemas.enable=false`).
    Json,
    /// UTF-8 text, stored as a JSON string (its StringConverter; `record-content` only).
    #[value(name = "string")]
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
}

impl Layout {
    /// The defaults of the command line (and of the connector).
    pub const DEFAULT: Layout = Layout {
        kind: LayoutKind::Columns,
        value_format: ValueFormat::Json,
        on_null: OnNullValue::Write,
        push_time: true,
        structured_headers: false,
    };
}

impl Default for Layout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl crate::config::SinkArgs {
    /// The layout the command line gives.
    ///
    /// # Errors
    /// `--value-format string` with `--layout columns` (text has no column names).
    pub fn row_layout(&self) -> Result<Layout, String> {
        if self.value_format == ValueFormat::Text && self.layout == LayoutKind::Columns {
            return Err(
                "--value-format string needs --layout record-content: text has no \
                        column names (the connector refuses it in schematized mode too)"
                    .into(),
            );
        }
        Ok(Layout {
            kind: self.layout,
            value_format: self.value_format,
            on_null: self.on_null_value,
            push_time: !self.no_push_time,
            structured_headers: self.structured_headers,
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

/// Whether `value` is a tombstone in `layout`.
fn is_tombstone(value: Option<&[u8]>, layout: Layout) -> bool {
    match value {
        None => true,
        Some(v) => {
            layout.kind == LayoutKind::RecordContent
                && layout.value_format == ValueFormat::Json
                && v.trim_ascii() == b"null"
        }
    }
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

/// The most bytes [`write_row`] writes for `value` with metadata of `metadata` bytes.
pub fn row_len(value: Option<&[u8]>, metadata: Option<usize>, options: &RowOptions) -> usize {
    let layout = options.layout;
    if is_tombstone(value, layout) {
        return metadata.map_or(0, |m| m + METADATA_KEY.len() + 2);
    }
    let v = value.unwrap_or_default();
    match (layout.kind, layout.value_format) {
        (LayoutKind::Columns, _) => crate::record::candidate_len(v, metadata),
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
        return crate::record::write_candidate(Some(value), metadata, rows)
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
        Shape::Object => crate::record::finish_row(row, max_row_bytes),
        Shape::Text | Shape::Tombstone => true,
        Shape::Content => {
            if row.len() > max_row_bytes {
                return false;
            }
            let end = row.len() - 1;
            let value = &mut row[rest..end];
            if !is_one_json_value(value) {
                return false;
            }
            for i in memchr::memchr2_iter(b'\n', b'\r', value).collect::<Vec<_>>() {
                value[i] = b' ';
            }
            true
        }
    }
}

fn is_one_json_value(value: &[u8]) -> bool {
    // UTF-8 first: serde_json does not check the strings it skips.
    std::str::from_utf8(value).is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok())
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
