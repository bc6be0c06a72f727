//! One NDJSON line parsed as a row, refusing a key given twice at its top level.
//!
//! `serde_json` keeps the last of two equal keys, silently: a message value carrying its own
//! `RECORD_METADATA` after the sink's made the row's metadata the producer's (issue 81), and
//! `snowpipe-kafka audit` then trusted it. Snowflake parses JSON strictly by default: its
//! `PARSE_JSON` refuses duplicate keys unless given `'d'` (docs.snowflake.com,
//! `sql-reference/functions/parse_json`, parameter `s`, "the default"), and neither the
//! Snowpipe Streaming documentation nor the SDKs say the service keeps either copy. The
//! emulator therefore rejects such a row (a row error, the row's other columns not stored)
//! rather than choose one. Nested objects (a VARIANT's content) keep `serde_json`'s rule.
//!
//! The check is made while the row's map is built, in the one parse the row gets.

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Map, Value};

/// A row: a JSON object whose top-level keys are distinct.
pub(super) struct StrictRow(pub(super) Map<String, Value>);

impl<'de> Deserialize<'de> for StrictRow {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(RowVisitor)
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = StrictRow;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<StrictRow, A::Error> {
        let mut out = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(serde::de::Error::custom(format_args!(
                    "duplicate object attribute {}: a row names each column once",
                    serde_json::Value::String(key)
                )));
            }
            let value: Value = access.next_value()?;
            out.insert(key, value);
        }
        Ok(StrictRow(out))
    }
}

/// `line` as a row when it is a JSON object: `Ok(Ok(row))`; `Ok(Err(value))` when it is
/// JSON of another kind.
///
/// # Errors
/// `serde_json`'s error for text that is not JSON, or for an object with a key twice at its
/// top level.
pub(super) fn parse(line: &[u8]) -> serde_json::Result<Result<Map<String, Value>, Value>> {
    let first = line.iter().find(|b| !b.is_ascii_whitespace());
    if first == Some(&b'{') {
        serde_json::from_slice::<StrictRow>(line).map(|r| Ok(r.0))
    } else {
        serde_json::from_slice::<Value>(line).map(Err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A key twice at the top level is refused, naming it; nested duplicates and distinct
    /// keys (also ones differing in case) are not; other JSON is returned as it is.
    #[test]
    fn a_key_twice_at_the_top_level_is_refused() {
        let e = parse(br#"{"RECORD_METADATA":{"offset":1},"A":1,"RECORD_METADATA":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("duplicate object attribute \"RECORD_METADATA\""),
            "{e}"
        );
        let e = parse(br#"{"a":1,"\u0061":2}"#).unwrap_err().to_string();
        assert!(e.contains("\"a\""), "{e}");
        let row = parse(br#" {"a":1,"A":2,"n":{"x":1,"x":2}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(row.len(), 3);
        assert_eq!(row["n"]["x"], 2);
        assert_eq!(parse(b"[1]").unwrap().unwrap_err(), serde_json::json!([1]));
        assert!(parse(b"{").is_err());
    }
}
