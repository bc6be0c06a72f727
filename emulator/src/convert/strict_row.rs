//! One NDJSON line parsed as a row, refusing a key given twice in any of its objects.
//!
//! `serde_json` keeps the last of two equal keys, silently: a message value carrying its own
//! `RECORD_METADATA` after the sink's made the row's metadata the producer's (issue 81), and
//! `snowpipe-kafka audit` then trusted it. Snowflake parses JSON strictly by default: its
//! `PARSE_JSON` refuses duplicate keys unless given `'d'` (docs.snowflake.com,
//! `sql-reference/functions/parse_json`, parameter `s`, "the default"), and neither the
//! Snowpipe Streaming documentation nor the SDKs say the service keeps either copy. The
//! emulator therefore rejects such a row (a row error, the row's other columns not stored)
//! rather than choose one. The same holds in nested objects (a VARIANT's or an OBJECT's
//! content): `{"RECORD_METADATA": {"offset": 25, "offset": 3}}` kept the last `offset`
//! silently, a copy of offset 3 that `snowpipe-kafka audit --apply` then kept over the genuine
//! row (issue 81, `hostile_audit` class `Reserved`); such a row is rejected too, naming the key.
//!
//! The check is made while the row's values are built, in the one parse the row gets; depth
//! stays bounded by `serde_json`'s recursion limit (128).

use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
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

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<StrictRow, A::Error> {
        strict_map(access, "a row names each column once").map(StrictRow)
    }
}

/// The entries of `access`, refusing a key seen before (`why` ends the message).
fn strict_map<'de, A: MapAccess<'de>>(
    mut access: A,
    why: &str,
) -> Result<Map<String, Value>, A::Error> {
    let mut out = Map::new();
    while let Some(key) = access.next_key::<String>()? {
        if out.contains_key(&key) {
            return Err(serde::de::Error::custom(format_args!(
                "duplicate object attribute {}: {why}",
                serde_json::Value::String(key)
            )));
        }
        let value = access.next_value::<Strict>()?.0;
        out.insert(key, value);
    }
    Ok(out)
}

/// A JSON value whose objects, at every depth, name each key once.
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, access: A) -> Result<Strict, A::Error> {
        strict_map(
            access,
            "an object names each key once (as Snowflake's PARSE_JSON)",
        )
        .map(|m| Strict(Value::Object(m)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut access: A) -> Result<Strict, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = access.next_element::<Strict>()? {
            out.push(v.0);
        }
        Ok(Strict(Value::Array(out)))
    }

    fn visit_bool<E>(self, v: bool) -> Result<Strict, E> {
        Ok(Strict(Value::Bool(v)))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Strict, E> {
        Ok(Strict(Value::from(v)))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Strict, E> {
        Ok(Strict(
            serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
        ))
    }

    fn visit_str<E>(self, v: &str) -> Result<Strict, E> {
        Ok(Strict(Value::String(v.to_owned())))
    }

    fn visit_string<E>(self, v: String) -> Result<Strict, E> {
        Ok(Strict(Value::String(v)))
    }

    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_none<E>(self) -> Result<Strict, E> {
        Ok(Strict(Value::Null))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Strict, D::Error> {
        Strict::deserialize(d)
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

    /// A key twice at the top level is refused, naming it; so is one twice in a nested
    /// object or in an object in an array (issue 81: a forged `RECORD_METADATA` offset);
    /// distinct keys (also ones differing in case) are not; other JSON is returned as it is.
    #[test]
    fn a_key_twice_at_any_depth_is_refused() {
        let e = parse(br#"{"RECORD_METADATA":{"offset":1},"A":1,"RECORD_METADATA":{}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("duplicate object attribute \"RECORD_METADATA\""),
            "{e}"
        );
        let e = parse(br#"{"a":1,"\u0061":2}"#).unwrap_err().to_string();
        assert!(e.contains("\"a\""), "{e}");
        let e = parse(br#"{"RECORD_METADATA":{"offset":25,"partition":0,"offset":3}}"#)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("duplicate object attribute \"offset\": an object names each key once"),
            "{e}"
        );
        let e = parse(br#"{"n":[1,{"x":{"y":1,"y":2}}]}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("\"y\""), "{e}");
        let row = parse(br#" {"a":1,"A":2,"n":{"x":1,"X":[true,null,-1.5,"s",{"x":2}]}}"#)
            .unwrap()
            .unwrap();
        assert_eq!(row.len(), 3);
        assert_eq!(
            row["n"],
            serde_json::json!({"x":1,"X":[true,null,-1.5,"s",{"x":2}]})
        );
        assert_eq!(parse(b"[1]").unwrap().unwrap_err(), serde_json::json!([1]));
        assert!(parse(b"{").is_err());
    }
}
