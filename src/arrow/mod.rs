//! Arrow record batches into a channel (feature `arrow`): [`Channel::append_record_batch`]
//! and [`Channel::append_record_batch_with_tokens`].
//!
//! A batch is written column by column straight into the request's NDJSON: one writer per
//! column, chosen once per batch from the column's type, then one call per value — no serde
//! value per row or per cell. Columns are matched to the table by name, as a row's keys are
//! (so a field `city` fills column `CITY`, as `{"city": …}` would). The NDJSON then takes the
//! path every append takes: the memory budget, requests of at most the request size, and the
//! offset tokens' exactly-once rules (`docs/GUARANTEES.md`).
//!
//! How each Arrow type is written, and what Snowflake makes of it (docs/protocol-types-and-sql.md "Type
//! conversion"):
//!
//! | Arrow | written as | columns that take it |
//! | --- | --- | --- |
//! | `Null`, any null value | `null` | any (SQL NULL; a VARIANT null inside a VARIANT) |
//! | `Boolean` | `true` / `false` | BOOLEAN, VARIANT |
//! | `Int8` … `Int64`, `UInt8` … `UInt64` | a JSON number, every digit | NUMBER, FLOAT, VARIANT |
//! | `Float16`, `Float32`, `Float64` | a JSON number; NaN, ±∞ as `"NaN"`, `"inf"`, `"-inf"` | FLOAT (NaN and ±∞ too), NUMBER |
//! | `Decimal32/64/128/256(p, s)` | a JSON number with exactly `s` decimals (`12.50`) | NUMBER(p, s) exactly |
//! | `Utf8`, `LargeUtf8`, `Utf8View` | a JSON string | VARCHAR, and any type that reads text |
//! | `Binary`, `LargeBinary`, `BinaryView`, `FixedSizeBinary` | a string in the pipe's `BINARY_INPUT_FORMAT` (hex, base64 or UTF-8, [`crate::binary`]) | BINARY |
//! | `Date32`, `Date64` | `"YYYY-MM-DD"` (`Date64`: its day) | DATE, TIMESTAMP_* (midnight) |
//! | `Time32(s, ms)`, `Time64(µs, ns)` | `"HH:MM:SS[.f…]"`, the unit's digits | TIME |
//! | `Timestamp(unit, None)` | `"YYYY-MM-DD HH:MM:SS[.f…]"`: Arrow's wall clock | TIMESTAMP_NTZ as is; LTZ/TZ read it in the session's zone |
//! | `Timestamp(unit, Some(zone))` | the wall clock in `zone` with its offset then (the tz database's, bundled, for every zone and year), `"… +01:00"` | TIMESTAMP_LTZ (the instant), TZ (the instant and that offset), NTZ (the zone's wall clock) |
//! | `List`, `LargeList`, `FixedSizeList` | a JSON array of the values | ARRAY, VARIANT |
//! | `Struct` | a JSON object, fields in the schema's order | OBJECT, VARIANT |
//! | `Map` | a JSON object; keys that are not text become strings (`{"1": …}`) | OBJECT, VARIANT |
//! | `Dictionary` | its values | as the values' type |
//! | `Duration`, `Interval` | refused: Snowflake has no such type (cast to `Int64` or text first) | — |
//! | `Union`, `RunEndEncoded`, `ListView` | refused, naming the type and a cast | — |
//!
//! Values Snowflake cannot store are refused before anything is buffered, naming the column and
//! the row: a date or timestamp outside the years 1 to 9999, bytes that are not UTF-8 for a
//! `UTF-8` pipe. Bytes need the pipe's BINARY format, which the channel learns when it opens
//! ([`Channel::binary_format`]); when it could not, a batch with a bytes column is refused (a
//! batch without one goes).
//!
//! The arrow-rs crates are re-exported ([`arrow_array`], [`arrow_schema`]) so a caller builds
//! batches with the version this crate takes: 59, the newest on the crate's minimum Rust
//! (1.85).

#[cfg(doc)]
use crate::Channel;

mod column;
mod temporal;
#[cfg(test)]
mod tests;
mod zone;

pub use arrow_array;
pub use arrow_schema;

use std::collections::HashSet;
use std::sync::Arc;

use arrow_array::RecordBatch;

use crate::binary::BinaryFormat;
use crate::{Error, Result};

/// The pipe's BINARY format as the channel knows it, or why it does not.
pub(crate) type PipeFormat = std::result::Result<BinaryFormat, Arc<str>>;

/// `batch` as NDJSON, one line per row, each a JSON object of the batch's columns by name.
///
/// # Errors
/// [`Error::InvalidArgument`] naming the column for a type that is not written, two columns
/// of one name, or a bytes column when the pipe's BINARY format is not known;
/// [`Error::Serialization`] naming the column (the row in `row_index`) for a value Snowflake
/// cannot store.
pub(crate) fn encode(batch: &RecordBatch, binary: PipeFormat) -> Result<Vec<u8>> {
    let schema = batch.schema();
    let mut seen = HashSet::new();
    for field in schema.fields() {
        if !seen.insert(field.name().as_str()) {
            return Err(Error::invalid_argument(
                "record batch",
                format!(
                    "two columns are named {:?}: a row holds a name once; rename one",
                    field.name()
                ),
            ));
        }
    }
    let cx = column::Context { binary };
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (field, array) in schema.fields().iter().zip(batch.columns()) {
        let mut key = Vec::with_capacity(field.name().len() + 4);
        crate::json::write_str(&mut key, field.name());
        key.push(b':');
        let writer = column::writer(array.as_ref(), &cx).map_err(|e| {
            Error::invalid_argument("record batch", format!("column {:?}: {e}", field.name()))
        })?;
        columns.push((key, writer));
    }
    let mut out = Vec::with_capacity(batch.num_rows() * (16 + 12 * columns.len()));
    for row in 0..batch.num_rows() {
        out.push(b'{');
        for (i, (key, writer)) in columns.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(key);
            writer
                .write(row, &mut out)
                .map_err(|e| Error::Serialization {
                    row_index: row,
                    message: format!("column {:?}: {e}", schema.field(i).name()),
                    source: None,
                })?;
        }
        out.extend_from_slice(b"}\n");
    }
    Ok(out)
}
