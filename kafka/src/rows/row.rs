//! Where a message becomes a row: its candidate row written into the batch buffer as its
//! [`Layout`](crate::rows::layout::Layout) says ([`write_row`]; in `columns`
//! [`write_candidate`]: the value as the producer wrote it, after a `RECORD_METADATA` object),
//! how many bytes that takes before it is written ([`row_len`], [`side_len`]: the budget is
//! charged for them), the check the partition's worker makes before it appends ([`finish`]),
//! and, for a message that is no row, the dead letter's reason ([`reason`]).

use serde::de::IgnoredAny;

use crate::formats::json_text::one_line_json;
use crate::rows::layout::{is_tombstone, LayoutKind, OnNullValue, Shape, ValueText};
use crate::rows::record::{write_metadata, MetaOptions, Record, RowOptions};

const METADATA_KEY: &[u8] = b"{\"RECORD_METADATA\":";
const CONTENT_KEY: &[u8] = b"\"RECORD_CONTENT\":";

/// Where a candidate row is in the buffer it was written to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Candidate {
    /// Its first byte.
    pub start: usize,
    /// Where the value's own bytes start in it (`start` without metadata).
    pub rest: usize,
    /// How many leading bytes of the value are not in it (blanks, and the `{` metadata
    /// replaces): the value is `value[..prefix]` followed by the row from `rest`.
    pub prefix: usize,
    /// How the value sits in it (`Object` here; the other layouts are `layout`'s).
    pub shape: Shape,
}

/// Writes the candidate row of a message whose value is `value` into `rows`, followed by
/// `\n`, and says where it is; or `None` (nothing written) when the value cannot be a row
/// whatever its JSON: a tombstone, or a first non-blank byte that is not `{`. The candidate is
/// the value as written, or with `metadata` (a `RECORD_METADATA` object, [`metadata_of`](crate::rows::record::metadata_of))
/// `{"RECORD_METADATA":{…},` and the value after its `{`. It is a row once [`finish_row`]
/// accepts it.
pub(crate) fn write_candidate(
    value: Option<&[u8]>,
    metadata: Option<&[u8]>,
    rows: &mut Vec<u8>,
) -> Option<Candidate> {
    let value = value?;
    let prefix = candidate_prefix_len(value, metadata.is_some())?;
    let start = rows.len();
    if let Some(meta) = metadata {
        let inner = &value[prefix..];
        rows.extend_from_slice(b"{\"RECORD_METADATA\":");
        rows.extend_from_slice(meta);
        if inner.first() != Some(&b'}') {
            rows.push(b',');
        }
        let rest = rows.len();
        rows.extend_from_slice(inner);
        rows.push(b'\n');
        return Some(Candidate {
            start,
            rest,
            prefix,
            shape: Shape::Object,
        });
    }
    rows.extend_from_slice(value);
    rows.push(b'\n');
    Some(Candidate {
        start,
        rest: start,
        prefix: 0,
        shape: Shape::Object,
    })
}

/// The bytes of `value` before its candidate row's own (`Candidate::prefix`), as
/// [`write_candidate`] would write it with or without metadata; `None` when it writes none.
pub(crate) fn candidate_prefix_len(value: &[u8], metadata: bool) -> Option<usize> {
    let lead = value.iter().position(|b| !b.is_ascii_whitespace())?;
    if value[lead] != b'{' {
        return None;
    }
    if !metadata {
        return Some(0);
    }
    Some(
        value[lead + 1..]
            .iter()
            .position(|b| !b.is_ascii_whitespace())
            .map_or(value.len(), |p| lead + 1 + p),
    )
}

/// The bytes [`write_candidate`] writes for `value` with metadata of `metadata` bytes (an
/// upper bound).
pub(crate) fn candidate_len(value: &[u8], metadata: Option<usize>) -> usize {
    value.len() + metadata.map_or(0, |m| m + 21) + 1
}

/// Checks a candidate row (without its `\n`): UTF-8, one JSON value (which a candidate makes an
/// object), at most `max_row_bytes`; then turns its line breaks (JSON allows them only as
/// white space) into spaces so it stays one NDJSON line. Whether it is a row: when it is not,
/// [`reason`] on the message says why.
pub(crate) fn finish_row(row: &mut [u8], max_row_bytes: usize) -> bool {
    if row.len() > max_row_bytes {
        return false;
    }
    one_line_json(row)
}

/// Why `record` is not a row (the dead-letter reason), or `None` when it is one.
pub(crate) fn reason(record: &Record<'_>, options: RowOptions) -> Option<String> {
    let Some(value) = record.value.filter(|v| {
        options.layout.kind == LayoutKind::Columns && !is_tombstone(Some(v), options.layout)
    }) else {
        let mut meta = Vec::new();
        if options.metadata {
            if let Err(why) = write_metadata(record, MetaOptions::now(&options.layout), &mut meta) {
                return Some(why);
            }
        }
        return content_reason(record, &options, options.metadata.then_some(meta.len()));
    };
    let text = match std::str::from_utf8(value) {
        Ok(t) => t,
        Err(e) => {
            return Some(format!(
                "the value is not UTF-8 text ({e}): a row must be a JSON object"
            ))
        }
    };
    if let Err(e) = serde_json::from_str::<IgnoredAny>(text) {
        return Some(format!(
            "the value is not JSON ({e}): a row must be a JSON object"
        ));
    }
    if let Some(why) = key_twice_reason(text) {
        return Some(why);
    }
    let body = value.trim_ascii();
    if body.first() != Some(&b'{') {
        let kind = match body.first() {
            Some(b'[') => "an array",
            Some(b'"') => "a string",
            Some(b't' | b'f') => "a boolean",
            Some(b'n') => "null",
            _ => "a number",
        };
        return Some(format!(
            "the value is JSON {kind}, not an object: a row needs column names"
        ));
    }
    let mut meta = Vec::new();
    if options.metadata {
        if let Err(why) = write_metadata(record, MetaOptions::now(&options.layout), &mut meta) {
            return Some(why);
        }
    }
    let len = body.len() + if options.metadata { 20 + meta.len() } else { 0 };
    if len > options.max_row_bytes {
        return Some(format!(
            "the row is about {len} bytes, more than the {} a request may carry: split the message",
            options.max_row_bytes
        ));
    }
    None
}

/// The dead letter's reason for a value (JSON) whose object names a key twice, which the
/// server refuses as a row error (`json_check`'s `keys`).
fn key_twice_reason(text: &str) -> Option<String> {
    let key = crate::formats::json_check::key_named_twice(text)?;
    Some(format!(
        "the value names the key {key} twice in one object (Snowflake refuses such JSON): \
         give each key once"
    ))
}

/// What [`write_row`] did with a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Written {
    /// A candidate row, followed by `\n`.
    Row(Candidate),
    /// Nothing, and none is due: a tombstone skipped.
    Skip,
    /// Nothing: the message cannot be a row (`record::reason` says why).
    NotRow,
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
pub(crate) fn side_len(
    value: Option<&[u8]>,
    metadata: bool,
    row: usize,
    options: &RowOptions,
) -> usize {
    let layout = options.layout;
    let whole = value.map_or(0, <[u8]>::len);
    if is_tombstone(value, layout) {
        return match layout.on_null {
            OnNullValue::DeadLetter => whole,
            OnNullValue::Skip | OnNullValue::Write => 0,
        };
    }
    let v = value.unwrap_or_default();
    match (layout.kind, layout.value_text) {
        (LayoutKind::Columns, _) => candidate_prefix_len(v, metadata).unwrap_or(whole),
        (LayoutKind::RecordContent, ValueText::Json) => 0,
        (LayoutKind::RecordContent, ValueText::Text) => {
            if row > options.max_row_bytes || std::str::from_utf8(v).is_err() {
                whole
            } else {
                0
            }
        }
    }
}

/// The most bytes [`write_row`] writes for `value` with metadata of `metadata` bytes.
pub(crate) fn row_len(
    value: Option<&[u8]>,
    metadata: Option<usize>,
    options: &RowOptions,
) -> usize {
    let layout = options.layout;
    if is_tombstone(value, layout) {
        return metadata.map_or(0, |m| m + METADATA_KEY.len() + 2);
    }
    let v = value.unwrap_or_default();
    match (layout.kind, layout.value_text) {
        (LayoutKind::Columns, _) => candidate_len(v, metadata),
        (LayoutKind::RecordContent, ValueText::Json) => content_len(v.len(), metadata) + 1,
        (LayoutKind::RecordContent, ValueText::Text) => content_len(escaped_len(v), metadata) + 1,
    }
}

/// Writes the candidate row of a message whose value is `value` into `rows` (with `metadata`,
/// a `RECORD_METADATA` object, when given), or says why nothing was written.
pub(crate) fn write_row(
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
        return write_candidate(Some(value), metadata, rows).map_or(Written::NotRow, Written::Row);
    }
    let text = match layout.value_text {
        ValueText::Json => None,
        ValueText::Text => match std::str::from_utf8(value) {
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
/// `row`) in place, as `record::finish_row` does for `columns`: whether it is a row. A
/// `columns` row with metadata loses any `RECORD_METADATA` member of the value's own
/// (`rows/own_columns.rs`).
pub(crate) fn finish(row: &mut [u8], rest: usize, shape: Shape, max_row_bytes: usize) -> bool {
    match shape {
        // With metadata (`rest` past it) the sink's `RECORD_METADATA` wins over a value's.
        Shape::Object if rest > 0 => {
            if finish_row(row, max_row_bytes) {
                crate::rows::own_columns::blank_forged_metadata(row, rest);
                return true;
            }
            // A value's own `RECORD_METADATA` names the sink's column twice: blanked, the row
            // is checked again (a key the value itself names twice still refuses it).
            row.len() <= max_row_bytes
                && crate::formats::json_check::is_one_value_with_any_keys(row)
                && crate::rows::own_columns::blank_forged_metadata(row, rest) > 0
                && one_line_json(row)
        }
        Shape::Object => finish_row(row, max_row_bytes),
        Shape::Text | Shape::Tombstone => true,
        Shape::Content => {
            if row.len() > max_row_bytes {
                return false;
            }
            let end = row.len() - 1;
            one_line_json(&mut row[rest..end])
        }
    }
}

/// The value of a candidate row of `shape` whose value is `prefix` then `rest` (the row from
/// the value's first byte, without its `\n`); `None` for a tombstone.
pub(crate) fn value_of(prefix: &[u8], rest: &[u8], shape: Shape) -> Option<Vec<u8>> {
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
pub(crate) fn content_reason(
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
    let written = match layout.value_text {
        ValueText::Json => {
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
            if let Some(why) = key_twice_reason(text) {
                return Some(why);
            }
            value.len()
        }
        ValueText::Text => {
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

/// Whether `value` is a JSON object without a key (`{}`, white space aside).
fn is_empty_object(value: &[u8]) -> bool {
    let v = value.trim_ascii();
    v.len() >= 2
        && v[0] == b'{'
        && v[v.len() - 1] == b'}'
        && v[1..v.len() - 1].trim_ascii().is_empty()
}

#[cfg(test)]
#[path = "row_tests.rs"]
mod tests;
