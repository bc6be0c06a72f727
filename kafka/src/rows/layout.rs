//! The row layouts of Snowflake's Kafka connector: which row a message becomes, and what
//! becomes of a message without a value (a tombstone).
//!
//! * `--layout columns` (the default; the connector's `snowflake.enable.schematization=true`):
//!   a JSON object's keys are the columns, plus `RECORD_METADATA` with `--metadata`
//!   (`row::write_candidate`).
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
//! Rows are written ([`crate::rows::row`]) straight into the batch buffer on the poll thread,
//! as in `columns`; a string value is escaped once, there. The worker then checks what it must
//! (`row::finish`): the whole row in `columns`, the value alone in `record-content` (the rest is
//! ours), nothing for a string or a tombstone (checked when written).

use clap::ValueEnum;

/// `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LayoutKind {
    /// The value's keys are columns (the connector's schematized mode).
    Columns,
    /// `RECORD_CONTENT` holds the value (the connector with schematization off).
    RecordContent,
}

/// The text the row writer takes a value's bytes for (from `--value-format`, which is
/// `formats::ValueFormat`; Schema Registry formats are decoded by the partition worker into
/// JSON first, see `rows::value_format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueText {
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
    /// What `--value-format` makes of a value's bytes.
    pub value_text: ValueText,
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
        value_text: ValueText::Json,
        on_null: OnNullValue::Write,
        push_time: true,
        structured_headers: false,
        fields: crate::rows::metadata_fields::MetadataFields::ALL,
        key_converter: crate::rows::connect_values::KeyConverter::Raw,
        header_converter: crate::rows::connect_values::HeaderConverter::Raw,
        normalize_columns: false,
    };
}

impl Layout {
    /// `ndjson`'s rows with their columns normalized when the layout asks (`--normalize-columns`
    /// in the `columns` layout, [`crate::rows::normalize`]), or `None` when nothing changes.
    pub fn normalized(&self, ndjson: &[u8]) -> Option<Vec<u8>> {
        (self.normalize_columns && self.kind == LayoutKind::Columns)
            .then(|| crate::rows::normalize::ndjson(ndjson))
            .flatten()
    }
}

impl Default for Layout {
    fn default() -> Self {
        Self::DEFAULT
    }
}

/// How a value sits in its candidate row, and what is left to check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
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

/// Whether `value` is a tombstone in `layout`: no value, or with JSON values (the
/// JsonConverter's null) the text `null` or nothing but white space, in either layout.
pub(crate) fn is_tombstone(value: Option<&[u8]>, layout: Layout) -> bool {
    match value {
        None => true,
        Some(v) => layout.value_text == ValueText::Json && matches!(v.trim_ascii(), b"null" | b""),
    }
}
