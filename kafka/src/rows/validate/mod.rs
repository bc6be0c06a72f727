//! Client-side validation (`snowflake.validation=client_side`, connector v4.1.0's v3-compatible
//! shape): each row checked against its table's columns, as the connector's `RowValidator`
//! checks it (`src/main/java/com/snowflake/kafka/connector/internal/validation/RowValidator
//! .java` at v4.1.0), and some values rewritten so the server stores what v3 stored: a JSON
//! string into a VARIANT or ARRAY parsed, an integer epoch into a TIMESTAMP formatted in UTC,
//! `0`/`1`/`yes`/`on`… into a BOOLEAN as `true`/`false`, a TIME's offset dropped, a map or list
//! into a TEXT column as JSON text (the rules: [`rules`], one function per type; the Java
//! values they see: `json.rs`; dates and times: `time.rs`).
//!
//! This room holds the rules only: the columns come from `DESC TABLE` (read once per table
//! and after each evolution, `connector/table_columns.rs`, through [`table::TableColumns`])
//! and the verdicts are applied where a batch is split (`rows/batch/split.rs`). A row is:
//!
//! * kept as it is, or rewritten ([`Outcome::Rewritten`], only the values that change);
//! * refused ([`Outcome::Refused`]): the first value v4 refuses, with v4's message, for the
//!   dead-letter topic;
//! * structurally off ([`Outcome::Structural`]): keys with no column, NOT NULL columns it lacks
//!   or gives null, which schema evolution may fix (new columns typed by [`json_column_type`],
//!   `SnowflakeColumnTypeMapper` over the value as `TableSchemaResolver.getTableSchemaFromJson`
//!   reads it).
//!
//! Column names match the row's keys exactly, as DESC TABLE lists them (v4 validates after its
//! own column normalization, `--normalize-columns`). `RECORD_CONTENT` is never checked.

mod json;
pub(crate) mod rules;
pub(crate) mod table;
#[cfg(test)]
mod tests;
mod time;

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde_json::value::RawValue;

use crate::formats::connect_type::{ConnectType, FieldTypes};
pub(crate) use rules::Kind;

/// One column as `DESC TABLE` gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Column {
    /// Its type.
    pub kind: Kind,
    /// `null?` is `Y`.
    pub nullable: bool,
    /// It has a default (the server fills it: `isServerFilled`).
    pub server_filled: bool,
}

/// A table's columns, by exact name.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Columns {
    by_name: HashMap<String, Column>,
}

impl Columns {
    /// The columns of `DESC TABLE` rows: (`name`, `type`, `null?`, `default`).
    ///
    /// # Errors
    /// A column of a type v4 does not validate (`RowValidator.validateSchema`): v4 then runs
    /// without client-side validation for the table, and so do we.
    pub(crate) fn from_describe<'a>(
        rows: impl IntoIterator<Item = (&'a str, &'a str, &'a str, &'a str)>,
    ) -> Result<Self, String> {
        let mut by_name = HashMap::new();
        for (name, ty, null, default) in rows {
            let kind = Kind::of(ty).map_err(|e| format!("column {name}: {e}"))?;
            let column = Column {
                kind,
                nullable: null == "Y",
                server_filled: !default.is_empty(),
            };
            by_name.insert(name.to_owned(), column);
        }
        Ok(Self { by_name })
    }

    /// How many columns.
    pub(crate) fn len(&self) -> usize {
        self.by_name.len()
    }

    /// Whether a column is named exactly `name`.
    pub(crate) fn has(&self, name: &str) -> bool {
        self.by_name.contains_key(name)
    }

    /// Whether there are none.
    pub(crate) fn is_empty(&self) -> bool {
        self.by_name.is_empty()
    }
}

/// What a row is, checked.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Outcome {
    /// Valid as it is.
    Same,
    /// Valid once these values are rewritten: the new row.
    Rewritten(Vec<u8>),
    /// v4 refuses a value: its dead-letter reason (`Validation failed for column …`).
    Refused(String),
    /// Columns missing or NOT NULL ones unfilled.
    Structural(Structural),
}

/// A row's structural mismatch (`ValidationResult.structuralError`).
#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Structural {
    /// Keys with no column, and the type schema evolution gives each.
    pub extra: Vec<(String, &'static str)>,
    /// NOT NULL columns (without a default) the row lacks.
    pub missing_not_null: Vec<String>,
    /// NOT NULL columns the row gives null.
    pub null_not_null: Vec<String>,
}

/// Java's `Set.toString`: `[a, b]`.
fn java_set<'a>(names: impl Iterator<Item = &'a str>) -> String {
    format!("[{}]", names.collect::<Vec<_>>().join(", "))
}

impl Structural {
    /// The dead letter's reason, after `head` (v4's
    /// `SnowpipeStreamingPartitionChannel.handleStructuralError` texts: `Structural validation
    /// error (schema evolution disabled)`, `Schema mismatch after evolution attempt`), naming
    /// at most the first 20 keys with no column, then how many there are: v4 names them all,
    /// and a message of many keys then made a reason header as large as itself, past what the
    /// dead-letter topic takes (the dead letter was lost).
    pub(crate) fn reason(&self, head: &str) -> String {
        const SHOWN: usize = 20;
        let mut extra = java_set(self.extra.iter().take(SHOWN).map(|(c, _)| c.as_str()));
        if self.extra.len() > SHOWN {
            extra.insert_str(extra.len() - 1, &format!(", … {} in all", self.extra.len()));
        }
        let missing = self
            .missing_not_null
            .iter()
            .chain(&self.null_not_null)
            .map(String::as_str);
        format!(
            "{head}: extraCols={extra}, missingNotNull={}",
            java_set(missing)
        )
    }
}

/// `SnowflakeColumnTypeMapper` over a value without a schema (`mapJsonNodeTypeToKafkaType`,
/// then `mapToColumnType`): an integer is `INT64` (`BIGINT`), a fraction `FLOAT64`
/// (`DOUBLE`), text and null `VARCHAR`, a boolean `BOOLEAN`, an array `ARRAY`, an object
/// `VARIANT`.
pub(crate) fn json_column_type(raw: &RawValue) -> &'static str {
    match json::java(raw) {
        json::Java::Null | json::Java::Str(_) => "VARCHAR",
        json::Java::Long(_) => "BIGINT",
        json::Java::Double(_) => "DOUBLE",
        json::Java::Bool(_) => "BOOLEAN",
        json::Java::List(_) => "ARRAY",
        json::Java::Map(_) => "VARIANT",
    }
}

/// `SnowflakeColumnTypeMapper.mapToColumnType` over a field's Connect type (its schema's type
/// and name, `TableSchemaResolver.getFullSchemaMapFromRecord`): INT8 `BYTEINT`, INT16
/// `SMALLINT`, INT32 `INT` (Date `DATE`, Time `TIME(6)`), INT64 `BIGINT` (Timestamp
/// `TIMESTAMP(6)`), FLOAT32 `FLOAT`, FLOAT64 `DOUBLE`, BOOLEAN, STRING `VARCHAR`, BYTES
/// `BINARY` (Decimal `VARCHAR`), ARRAY, MAP and STRUCT `VARIANT`.
pub(crate) fn schema_column_type(t: ConnectType) -> &'static str {
    match t {
        ConnectType::Int8 => "BYTEINT",
        ConnectType::Int16 => "SMALLINT",
        ConnectType::Int32 => "INT",
        ConnectType::Date => "DATE",
        ConnectType::Time => "TIME(6)",
        ConnectType::Int64 => "BIGINT",
        ConnectType::Timestamp => "TIMESTAMP(6)",
        ConnectType::Float32 => "FLOAT",
        ConnectType::Float64 => "DOUBLE",
        ConnectType::Boolean => "BOOLEAN",
        ConnectType::String | ConnectType::Decimal => "VARCHAR",
        ConnectType::Bytes => "BINARY",
        ConnectType::Array => "ARRAY",
        ConnectType::Map | ConnectType::Struct => "VARIANT",
    }
}

/// `row` (one JSON object) against `columns`; `normalize_time`:
/// `snowflake.feature.normalize.time`. A row without a schema: [`typed_row`] with no fields.
#[cfg(test)]
pub(crate) fn row(row: &[u8], columns: &Columns, normalize_time: bool) -> Outcome {
    typed_row(row, columns, normalize_time, None)
}

/// [`row`] for a row made from a Schema Registry value whose schema gave its top-level
/// fields' Connect types (`fields`, by column name): new columns are typed from them
/// ([`schema_column_type`], v4's `getTableSchemaFromRecordSchema`; a key the schema does not
/// name from its value), and BYTES into a BINARY column land as their bytes
/// ([`rules::connect_bytes`]).
pub(crate) fn typed_row(
    row: &[u8],
    columns: &Columns,
    normalize_time: bool,
    fields: Option<&FieldTypes>,
) -> Outcome {
    let field = |k: &str| fields.and_then(|f| f.get(k));
    let Ok(map) = serde_json::from_slice::<BTreeMap<String, &RawValue>>(row) else {
        // Not an object: refused before it got here.
        return Outcome::Same;
    };
    let mut s = Structural::default();
    for (k, v) in &map {
        match columns.by_name.get(k) {
            None => s.extra.push((
                k.clone(),
                field(k).map_or_else(|| json_column_type(v), schema_column_type),
            )),
            Some(c) if !c.nullable && v.get() == "null" => s.null_not_null.push(k.clone()),
            Some(_) => {}
        }
    }
    let present: BTreeSet<&str> = map.keys().map(String::as_str).collect();
    let mut missing: Vec<String> = columns
        .by_name
        .iter()
        .filter(|(n, c)| !c.nullable && !c.server_filled && !present.contains(n.as_str()))
        .map(|(n, _)| n.clone())
        .collect();
    missing.sort();
    s.missing_not_null = missing;
    if !s.extra.is_empty() || !s.missing_not_null.is_empty() || !s.null_not_null.is_empty() {
        return Outcome::Structural(s);
    }
    let mut changed: Vec<(&str, String)> = Vec::new();
    for (k, v) in &map {
        if k == "RECORD_CONTENT" || v.get() == "null" {
            continue;
        }
        let Some(c) = columns.by_name.get(k) else {
            continue;
        };
        let checked = match (c.kind, field(k)) {
            (Kind::Binary(max), Some(ConnectType::Bytes)) => rules::connect_bytes(k, v, max),
            _ => rules::check(k, c.kind, v, normalize_time),
        };
        match checked {
            Ok(None) => {}
            Ok(Some(new)) => changed.push((k, new)),
            Err(why) => {
                return Outcome::Refused(format!("Validation failed for column {k}: {why}"))
            }
        }
    }
    if changed.is_empty() {
        return Outcome::Same;
    }
    let mut out = Vec::with_capacity(row.len() + 16);
    out.push(b'{');
    for (i, (k, v)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        crate::formats::json_text::write_str(&mut out, k);
        out.push(b':');
        match changed.iter().find(|(c, _)| c == k) {
            Some((_, new)) => out.extend_from_slice(new.as_bytes()),
            None => out.extend_from_slice(v.get().as_bytes()),
        }
    }
    out.push(b'}');
    Outcome::Rewritten(out)
}
