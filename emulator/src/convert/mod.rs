//! JSON rows → typed column values, with Snowflake's conversion rules, for storage in SQLite.
//!
//! Columns are matched to JSON keys by name, case-insensitively (`MATCH_BY_COLUMN_NAME =
//! CASE_INSENSITIVE`; an exact match wins over a case-insensitive one). A column missing from
//! the row gets its `DEFAULT` (a constant or the current time) or the next value of its
//! `AUTOINCREMENT`/`IDENTITY` sequence ([`SqlValue::NextIdentity`], numbered when the row is
//! stored) on the default pipe and, for the columns a transform does not fill, on a pipe with
//! a transform; a pipe declared with `MATCH_BY_COLUMN_NAME` leaves it NULL, as `COPY INTO`
//! does. Otherwise a missing column, or one given as JSON `null`, is SQL NULL; keys that
//! match no column are ignored. Any failure rejects the whole row with a [`RowError`]; so does
//! a key given twice in any of the row's objects, its top level or a VARIANT's content
//! (`strict_row.rs`: Snowflake's JSON is strict).
//!
//! How each Snowflake type is stored in SQLite (the SQLite column is declared with
//! [`ColumnType::sql_name`], so tools show Snowflake types):
//!
//! | Snowflake type | accepted JSON | stored as |
//! | --- | --- | --- |
//! | `NUMBER(p,0)` | numbers, numeric strings (`"123"`, `"1e3"`, `"12.5"` rounds to 13) | INTEGER when it fits `i64`, else exact (see below) |
//! | `NUMBER(p,s>0)` | same | rounded half away from zero to `s` digits, precision checked, then stored exactly (see below) |
//! | `FLOAT` | numbers, numeric strings, `"NaN"`, `"inf"`, `"-inf"`, `"Infinity"`; a finite string beyond a double (`"1e400"`) is out of range | REAL; NaN as TEXT `'NaN'` (SQLite would store NaN as NULL) |
//! | `VARCHAR(n)` | strings as-is; numbers/booleans as their text; objects/arrays as compact JSON | TEXT; at most `n` characters, and at most 16 MB (16,777,216) of UTF-8 bytes whatever `n` |
//! | `BOOLEAN` | `true`/`false`; strings `true/false/yes/no/on/off/1/0/t/f/y/n` (any case); JSON numbers are refused, as the service refuses them | INTEGER 0/1 |
//! | `DATE` | the service's date/timestamp formats (the date part), epoch numbers (the date in the session zone) | TEXT `YYYY-MM-DD` |
//! | `TIME(p)` | the service's seven TIME formats: `"HH24:MI"`, `"HH24:MI:SS"`, `"HH24:MI:SS.FF"`, `"HH24:MI:SS.FFTZH:TZM"` (`Z` or `±hh:mm`, dropped), `"HH12:MI[:SS[.FF]] AM"`/`PM` (upper case); integer-stored times (integers and integer strings: the time of day of that epoch value in the session zone); no timestamp strings | TEXT `HH:MM:SS.fffffffff` |
//! | `TIMESTAMP_NTZ(p)` | the service's formats (`formats.rs`: ISO with `T` or a space, `DD-MON-YYYY`, RFC 2822, `MM/DD/YYYY`, …; an offset is dropped, the wall clock kept); epoch numbers (their wall clock in the session zone); years 1 to 9999 | TEXT `YYYY-MM-DD HH:MM:SS.fffffffff` |
//! | `TIMESTAMP_LTZ(p)` | same; a string without an offset is read in the session zone | converted to UTC, TEXT `YYYY-MM-DD HH:MM:SS.fffffffffZ` |
//! | `TIMESTAMP_TZ(p)` | same; a string without an offset, or an epoch, takes the session zone's offset | the wall clock and its offset, TEXT `YYYY-MM-DD HH:MM:SS.fffffffff+hh:mm` |
//! | `VARIANT` | any JSON; JSON `null` is a VARIANT null (TEXT `null`), a missing key SQL NULL | TEXT of compact JSON (a string is stored as a JSON string: `"abc"` → `"\"abc\""`); at most 16 MiB ([`SEMI_STRUCTURED_MAX`]) |
//! | `OBJECT` | a JSON object, or a string of JSON text that parses to an object | TEXT of compact JSON; at most 16 MiB |
//! | `ARRAY` | a JSON array; any other value becomes a one-element array (a string is not parsed: `"x"` → `["x"]`) | TEXT of compact JSON; at most 16 MiB |
//! | `BINARY(n)` | a hex string (default, Snowflake's `BINARY_INPUT_FORMAT`), or base64 / UTF-8 text per [`BinaryFormat`]; whitespace ignored | BLOB; at most `n` bytes (8 MB without `n`) |
//!
//! Times and timestamps keep `p` fractional digits (9 when the type has none): the digits
//! past `p` are dropped (truncated, as Snowflake's ingest SDKs do: `12:00:00.1239` in a
//! `TIME(3)` is `12:00:00.123`). The text always has 9 fractional digits (zeros past `p`), so
//! text order is time order, and SQLite's date functions (`strftime`, `datetime`,
//! `julianday`) parse them.
//!
//! The session zone is [`ConvertOptions::timezone`] (Snowflake's `TIMEZONE`, default
//! `America/Los_Angeles`): an epoch number is an instant, shown as a wall clock in that zone
//! for TIMESTAMP_NTZ, DATE and TIME, as the service stores an integer epoch in TIMESTAMP_NTZ
//! (docs/protocol-types-and-sql.md "Type conversion (emulator)").
//!
//! Epoch numbers (for DATE, TIME and TIMESTAMP_*), as Snowflake reads integer strings: a JSON
//! integer or integer string `v` is seconds when `|v| < 31536000000`, milliseconds when
//! `|v| < 31536000000000`, microseconds when `|v| < 31536000000000000`, else nanoseconds (a
//! negative value is scaled like a positive one); a number with a fraction is seconds
//! (DATE, TIMESTAMP_*) or refused (TIME).
//!
//! NUMBER values are stored exactly, never rounded through a double: after rounding to the
//! column's scale, a value is stored as INTEGER when the scale is 0 and it fits `i64`; else
//! as REAL when the nearest double printed with `s` decimals is the exact decimal again (so
//! `0.1234567890` in `NUMBER(38,10)` and `3194301642615.2778` in `NUMBER(18,4)` are REALs);
//! else ([`SqlValue::Decimal`]) as a BLOB of its decimal text
//! (`123456789012345678901234567890`), because SQLite's NUMERIC affinity (from the declared
//! type `NUMBER(..)`) turns TEXT that looks like a number into a REAL. Every output reads a
//! value back through one printer, [`output::number_text`], which prints INTEGER, REAL and
//! BLOB alike at the column's scale (`3194301642615.2778`, `12.5000`); the REAL check above
//! calls that same function, so what is stored as a REAL prints as the exact decimal.
//!
//! Why not one exact form for every value: SQLite has no decimal type. A REAL or an INTEGER
//! compares, sorts and sums as a number; TEXT or a BLOB that keeps more digits than a double
//! does not, and a scaled integer (`1250` for `12.50`) would compare wrong with a literal
//! (`WHERE D = 12.5`). So values a double holds exactly at their scale stay numbers — every
//! value with at most 15 digits at its column's scale (any `NUMBER(15,s)`), many with 16 or
//! 17 — and only the rest are BLOBs: SQL arithmetic (`SUM`, `+`) reads those as numbers (to
//! about 15 digits), but comparisons and `ORDER BY` see a BLOB, which SQLite orders after
//! every number: compare such values in the client.
//!
//! Known limit: JSON numbers arrive as `f64` from `serde_json` when they are not integers in
//! the `u64`/`i64` range, and keep only the digits of the double's shortest form (17 at most:
//! the JSON number `3194301642615.2778` arrives as `3194301642615.278`); send such values as
//! strings (as the Python SDK does for `Decimal`).

use serde_json::{Map, Value};

use crate::catalog::{Column, ColumnDefault, ColumnType, MatchByColumnName, PipeDefinition, Table};

/// Converts one NDJSON row (a JSON object) to values in the table's column order, with the
/// default [`ConvertOptions`].
///
/// # Errors
///
/// A [`RowError`] when a NOT NULL column is NULL or missing, a value cannot be converted to
/// its column's type, a string is longer than `VARCHAR(n)`, or a number overflows
/// `NUMBER(p,s)`.
pub fn convert_row(table: &Table, row: &Map<String, Value>) -> Result<Vec<SqlValue>, RowError> {
    convert_row_with(table, row, &ConvertOptions::default())
}

/// Like [`convert_row`], with options.
///
/// # Errors
///
/// As [`convert_row`].
pub fn convert_row_with(
    table: &Table,
    row: &Map<String, Value>,
    options: &ConvertOptions,
) -> Result<Vec<SqlValue>, RowError> {
    convert_matched(table, row, options, true, true)
}

fn convert_matched(
    table: &Table,
    row: &Map<String, Value>,
    options: &ConvertOptions,
    ignore_case: bool,
    fill_defaults: bool,
) -> Result<Vec<SqlValue>, RowError> {
    let columns = &table.columns;
    let slots = matching::slots(columns, row, ignore_case);
    columns
        .iter()
        .zip(slots)
        .map(|(column, value)| convert_slot(column, value, options, fill_defaults))
        .collect()
}

fn convert_slot(
    column: &Column,
    value: Option<&Value>,
    options: &ConvertOptions,
    fill_defaults: bool,
) -> Result<SqlValue, RowError> {
    if let (None, true, Some(default)) = (value, fill_defaults, &column.default) {
        return default_value(column, default, options);
    }
    match value {
        None | Some(Value::Null) if !column.nullable => Err(RowError::column(
            column,
            RowErrorKind::NullInNotNullColumn,
            "NULL result in a non-nullable column",
        )),
        // A JSON null in a VARIANT is a VARIANT null (the JSON text `null`), not SQL NULL;
        // a missing key is SQL NULL.
        Some(Value::Null) if column.ty == ColumnType::Variant => Ok(SqlValue::Text("null".into())),
        None | Some(Value::Null) => Ok(SqlValue::Null),
        Some(value) => convert_value(column, value, options),
    }
}

/// Converts one row for a declared pipe: by name as the pipe's `MATCH_BY_COLUMN_NAME` says
/// (`CASE_SENSITIVE` matches keys exactly, otherwise case-insensitively), or through its
/// transform `FROM (SELECT <expr>, ... [WHERE <predicate>])`. `Ok(None)`: the transform's
/// `WHERE` drops the row (neither stored nor a row error).
///
/// With a transform, the i-th SELECT item fills the i-th target column (the column list
/// after `COPY INTO t`, else the table's columns in order); the other columns get their
/// `DEFAULT`/`AUTOINCREMENT` or NULL. Each item is evaluated (`$1:path`, casts that convert
/// as a column of that type would, operators and the scalar functions the catalog accepts;
/// docs/protocol-types-and-sql.md "Pipe transforms (emulator)"), then converted to its column's type.
///
/// # Errors
///
/// As [`convert_row`], and a [`RowError`] for an expression that cannot be computed (a failed
/// cast, division by zero, ...), naming its target column, or `WHERE` (no column).
pub fn convert_row_for_pipe(
    table: &Table,
    pipe: &PipeDefinition,
    row: &Map<String, Value>,
    options: &ConvertOptions,
) -> Result<Option<Vec<SqlValue>>, RowError> {
    let Some(transform) = &pipe.transform else {
        let ignore_case = pipe.match_by_column_name != MatchByColumnName::CaseSensitive;
        // `COPY INTO … MATCH_BY_COLUMN_NAME` inserts NULL into the columns the data does not
        // name (docs/protocol-types-and-sql.md "Table features").
        return convert_matched(table, row, options, ignore_case, false).map(Some);
    };
    let ctx = pipe_eval::RowContext {
        row,
        scan_time: options.scan_time.unwrap_or_else(chrono::Utc::now),
        options,
        work: pipe_work::Work::new(options.deadline),
    };
    // Past the append's deadline the rest of its rows fail at once, however little each
    // would cost.
    if let Err(message) = ctx.work.check_clock() {
        return Err(RowError {
            column: None,
            kind: RowErrorKind::from_message(&message),
            message,
        });
    }
    if let Some(filter) = &transform.filter {
        match pipe_eval::keeps(filter, &ctx) {
            Ok(true) => {}
            Ok(false) => return Ok(None),
            Err(message) => {
                return Err(RowError {
                    column: None,
                    kind: RowErrorKind::from_message(&message),
                    message: format!("WHERE: {}", bounded_message(message)),
                })
            }
        }
    }
    let columns = &table.columns;
    // The value of each column a transform fills (even with NULL); the others get their
    // DEFAULT/AUTOINCREMENT, as in an INSERT that names only some columns.
    let mut filled: Vec<Option<SqlValue>> = vec![None; columns.len()];
    for (i, item) in transform.items.iter().enumerate() {
        let target = match &transform.target_columns {
            Some(names) => names
                .get(i)
                .and_then(|name| columns.iter().position(|c| c.name == *name)),
            None => (i < columns.len()).then_some(i),
        };
        let Some(target) = target else {
            continue;
        };
        let column = &columns[target];
        let value = pipe_eval::eval(&item.expr, &ctx, &column.name).map_err(|message| {
            let kind = RowErrorKind::from_message(&message);
            RowError::column(column, kind, bounded_message(message))
        })?;
        filled[target] = Some(match value {
            pipe_value::Val::Null => convert_slot(column, None, options, false)?,
            value => {
                let json = pipe_value::to_json(value, &column.ty);
                convert_slot(column, Some(&json), options, false)?
            }
        });
    }
    columns
        .iter()
        .zip(filled)
        .map(|(column, value)| match value {
            Some(value) => Ok(value),
            None => convert_slot(column, None, options, true),
        })
        .collect::<Result<_, _>>()
        .map(Some)
}

/// The value the engine writes for a column the row omits.
fn default_value(
    column: &Column,
    default: &ColumnDefault,
    options: &ConvertOptions,
) -> Result<SqlValue, RowError> {
    // The current time in the session zone, as Snowflake's CURRENT_* functions give it.
    let now = chrono::Utc::now().with_timezone(&options.timezone);
    let value = match default {
        ColumnDefault::Identity { .. } => return Ok(SqlValue::NextIdentity),
        ColumnDefault::Constant(value) => value.clone(),
        ColumnDefault::CurrentTimestamp => {
            Value::String(now.format("%Y-%m-%dT%H:%M:%S%.9f%:z").to_string())
        }
        ColumnDefault::CurrentDate => Value::String(now.format("%Y-%m-%d").to_string()),
        ColumnDefault::CurrentTime => Value::String(now.format("%H:%M:%S%.9f").to_string()),
    };
    convert_slot(column, Some(&value), options, false)
}

/// Converts one NDJSON line with [`convert_row`].
///
/// Callers skip blank lines (NDJSON allows them); a blank line here is an error.
///
/// # Errors
///
/// A [`RowError`] without a column when the line is not a JSON object, else the errors of
/// [`convert_row`].
pub fn convert_line(table: &Table, line: &[u8]) -> Result<Vec<SqlValue>, RowError> {
    convert_line_with(table, line, &ConvertOptions::default())
}

/// Like [`convert_line`], with options.
///
/// # Errors
///
/// As [`convert_line`].
pub fn convert_line_with(
    table: &Table,
    line: &[u8],
    options: &ConvertOptions,
) -> Result<Vec<SqlValue>, RowError> {
    convert_line_for(table, None, line, options).map(|values| values.unwrap_or_default())
}

/// Converts `row` as a pipe loads it: by its definition ([`convert_row_for_pipe`]), or, for a
/// table's default pipe (`None`), by column name ([`convert_row_with`]). `Ok(None)`: the
/// pipe's `WHERE` drops the row.
///
/// # Errors
///
/// As [`convert_row_for_pipe`].
pub fn convert_row_for(
    table: &Table,
    pipe: Option<&PipeDefinition>,
    row: &Map<String, Value>,
    options: &ConvertOptions,
) -> Result<Option<Vec<SqlValue>>, RowError> {
    match pipe {
        Some(pipe) => convert_row_for_pipe(table, pipe, row, options),
        None => convert_row_with(table, row, options).map(Some),
    }
}

/// Converts one NDJSON line with [`convert_row_for`].
///
/// # Errors
///
/// As [`convert_line`].
pub fn convert_line_for(
    table: &Table,
    pipe: Option<&PipeDefinition>,
    line: &[u8],
    options: &ConvertOptions,
) -> Result<Option<Vec<SqlValue>>, RowError> {
    match strict_row::parse(line) {
        Ok(Ok(mut row)) => {
            exact_numbers::keep_exact_numbers(table, pipe, &mut row, line);
            convert_row_for(table, pipe, &row, options)
        }
        Ok(Err(other)) => Err(RowError {
            column: None,
            kind: RowErrorKind::InvalidJson,
            message: format!(
                "Row is not a JSON object: {}",
                truncate(&other.to_string(), 100)
            ),
        }),
        Err(e) => Err(RowError {
            column: None,
            kind: RowErrorKind::InvalidJson,
            message: format!("Error parsing JSON: {e}"),
        }),
    }
}

fn convert_value(
    column: &Column,
    value: &Value,
    options: &ConvertOptions,
) -> Result<SqlValue, RowError> {
    let tz = options.timezone;
    match &column.ty {
        ColumnType::Number { precision, scale } => number(column, value, *precision, *scale),
        ColumnType::Float => float(column, value),
        ColumnType::Varchar { max_len } => varchar(column, value, *max_len),
        ColumnType::Boolean => boolean(column, value),
        ColumnType::Date => date(column, value, tz),
        ColumnType::Time { scale } => time(column, value, *scale, tz),
        ColumnType::TimestampNtz { scale } => timestamp(column, value, Zone::Wall, *scale, tz),
        ColumnType::TimestampLtz { scale } => timestamp(column, value, Zone::Utc, *scale, tz),
        ColumnType::TimestampTz { scale } => timestamp(column, value, Zone::Offset, *scale, tz),
        ColumnType::Variant => semi_structured(column, value.to_string()),
        ColumnType::Object => object(column, value),
        // Any other value is ingested as a one-element array (a string is not parsed:
        // `"[1,2]"` becomes `["[1,2]"]`).
        ColumnType::Array => match value {
            Value::Array(_) => semi_structured(column, value.to_string()),
            other => semi_structured(column, Value::Array(vec![other.clone()]).to_string()),
        },
        ColumnType::Binary { max_len } => binary(column, value, *max_len, options.binary_format),
    }
}

/// An OBJECT: a JSON object, or a string of JSON text that parses to one.
fn object(column: &Column, value: &Value) -> Result<SqlValue, RowError> {
    match value {
        Value::Object(_) => semi_structured(column, value.to_string()),
        Value::String(text) => match serde_json::from_str::<Value>(text) {
            Ok(parsed @ Value::Object(_)) => semi_structured(column, parsed.to_string()),
            Ok(parsed) => Err(cast_error(column, &parsed, "OBJECT")),
            Err(e) => Err(RowError::column(
                column,
                RowErrorKind::InvalidJson,
                format!(
                    "Error parsing JSON for OBJECT: {e} in '{}'",
                    display_value(value)
                ),
            )),
        },
        _ => Err(cast_error(column, value, "OBJECT")),
    }
}

/// Bytes of the compact JSON text of one VARIANT, OBJECT or ARRAY value: 16 MiB, the
/// service's maximum size of a semi-structured value (docs/protocol-types-and-sql.md "Type conversion
/// (emulator)").
pub const SEMI_STRUCTURED_MAX: usize = 16_777_216;

/// A VARIANT/OBJECT/ARRAY value's compact JSON, refused when longer than
/// [`SEMI_STRUCTURED_MAX`].
fn semi_structured(column: &Column, json: String) -> Result<SqlValue, RowError> {
    if json.len() > SEMI_STRUCTURED_MAX {
        return Err(RowError::column(
            column,
            RowErrorKind::LobTooLarge,
            format!(
                "{} value of {} bytes exceeds the maximum size of a semi-structured value \
                 ({SEMI_STRUCTURED_MAX} bytes); split it into several rows or columns",
                column.ty,
                json.len()
            ),
        ));
    }
    Ok(SqlValue::Text(json))
}

pub mod evolution;
mod exact_numbers;
mod formats;
mod matching;
mod number;
pub mod output;
mod pipe_eval;
mod pipe_value;
pub(crate) mod pipe_work;
mod sqlite_ddl;
mod strict_row;
mod text;
mod time;
mod value;

pub use sqlite_ddl::{quote_ident, sqlite_create_table, sqlite_insert};
use value::{bounded_message, cast_error, display_value, truncate};
pub use value::{BinaryFormat, ConvertOptions, RowError, RowErrorKind, SqlValue, DEFAULT_TIMEZONE};

use number::*;
use text::*;
use time::*;

#[cfg(test)]
mod tests;
