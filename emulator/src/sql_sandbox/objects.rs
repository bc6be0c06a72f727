//! Snowflake's `OBJECT_KEYS(object)`, `ARRAY_SIZE(array)` and `IS_OBJECT(variant)` for SQL API
//! statements, over the JSON text the emulator stores semi-structured values as: `OBJECT_KEYS`
//! gives the top-level keys of an object as a JSON array, sorted as Snowflake keeps an object's
//! keys; `ARRAY_SIZE` the number of elements of an array; `IS_OBJECT` 1 for an object, 0 for
//! any other JSON. Anything else (not JSON, another type) is NULL to the first two, and NULL
//! is NULL to all three. One pass over the value without recursion (serde_json skips nested values
//! iteratively), within the statement's value limit like every argument.

use std::fmt;

use rusqlite::functions::{Context, FunctionFlags};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use serde::de::{IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserializer as _;

use super::calls::text_of;

/// The top-level keys of a JSON object, or `None` for anything else.
fn keys_of(text: &[u8]) -> Option<Vec<String>> {
    struct Keys;
    impl<'de> Visitor<'de> for Keys {
        type Value = Option<Vec<String>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a JSON value")
        }
        fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
            let mut keys = Vec::new();
            while let Some(k) = map.next_key::<String>()? {
                map.next_value::<IgnoredAny>()?;
                keys.push(k);
            }
            Ok(Some(keys))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
            Ok(None)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    let mut de = serde_json::Deserializer::from_slice(text);
    let keys = de.deserialize_any(Keys).ok()?;
    de.end().ok()?;
    keys
}

/// The number of elements of a JSON array, or `None` for anything else.
fn size_of(text: &[u8]) -> Option<i64> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let items: Vec<IgnoredAny> = serde::Deserialize::deserialize(&mut de).ok()?;
    de.end().ok()?;
    i64::try_from(items.len()).ok()
}

/// The argument's text, `None` for NULL.
fn argument<'a>(ctx: &'a Context<'_>, buf: &'a mut String) -> rusqlite::Result<Option<&'a [u8]>> {
    let raw = ctx.get_raw(0);
    if raw == ValueRef::Null {
        return Ok(None);
    }
    text_of(raw, buf)
}

fn object_keys(ctx: &Context<'_>) -> rusqlite::Result<Option<String>> {
    let mut buf = String::new();
    let Some(text) = argument(ctx, &mut buf)? else {
        return Ok(None);
    };
    let Some(mut keys) = keys_of(text) else {
        return Ok(None);
    };
    keys.sort_unstable();
    serde_json::to_string(&keys)
        .map(Some)
        .map_err(|e| rusqlite::Error::UserFunctionError(e.into()))
}

fn array_size(ctx: &Context<'_>) -> rusqlite::Result<Option<i64>> {
    let mut buf = String::new();
    Ok(argument(ctx, &mut buf)?.and_then(size_of))
}

fn is_object(ctx: &Context<'_>) -> rusqlite::Result<Option<bool>> {
    let mut buf = String::new();
    Ok(argument(ctx, &mut buf)?.map(|t| keys_of(t).is_some()))
}

/// Puts `object_keys`, `array_size` and `is_object` on `conn`.
///
/// # Errors
/// When SQLite refuses to register a function.
pub(super) fn install(conn: &Connection) -> rusqlite::Result<()> {
    let flags = FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC;
    conn.create_scalar_function("object_keys", 1, flags, object_keys)?;
    conn.create_scalar_function("array_size", 1, flags, array_size)?;
    conn.create_scalar_function("is_object", 1, flags, is_object)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(conn: &Connection, sql: &str) -> Option<String> {
        conn.query_row(sql, [], |r| {
            Ok(match r.get_ref(0)? {
                ValueRef::Null => None,
                ValueRef::Integer(i) => Some(i.to_string()),
                v => Some(v.as_str().unwrap_or_default().to_owned()),
            })
        })
        .unwrap()
    }

    #[test]
    fn object_keys_gives_the_top_level_keys_sorted_and_null_for_the_rest() {
        let conn = Connection::open_in_memory().unwrap();
        install(&conn).unwrap();
        let keys = |v: &str| one(&conn, &format!("SELECT object_keys('{v}')"));
        assert_eq!(
            keys(r#"{"b":1,"a":{"c":2,"d":[1,{"e":3}]},"C":null}"#).as_deref(),
            Some(r#"["C","a","b"]"#)
        );
        assert_eq!(keys("{}").as_deref(), Some("[]"));
        for not_object in [
            "[1,2]", "1", r#""s""#, "null", "true", "{", "{} x", "not json",
        ] {
            assert_eq!(keys(not_object), None, "{not_object}");
        }
        assert_eq!(one(&conn, "SELECT object_keys(NULL)"), None);
        assert_eq!(
            one(&conn, r#"SELECT is_object('{"a":1}')"#).as_deref(),
            Some("1")
        );
        assert_eq!(one(&conn, "SELECT is_object('[1]')").as_deref(), Some("0"));
        assert_eq!(one(&conn, "SELECT is_object(NULL)"), None);
        // Nested far past serde_json's recursion limit: skipped, not refused.
        let deep = format!(r#"{{"k":{}1{}}}"#, "[".repeat(10_000), "]".repeat(10_000));
        assert_eq!(keys(&deep).as_deref(), Some(r#"["k"]"#));
    }

    #[test]
    fn array_size_counts_an_arrays_elements_and_is_null_for_the_rest() {
        let conn = Connection::open_in_memory().unwrap();
        install(&conn).unwrap();
        let size = |v: &str| one(&conn, &format!("SELECT array_size('{v}')"));
        assert_eq!(size(r#"[1,[2,3],{"a":4}]"#).as_deref(), Some("3"));
        assert_eq!(size("[]").as_deref(), Some("0"));
        assert_eq!(
            one(&conn, r#"SELECT array_size(object_keys('{"a":1,"b":2}'))"#).as_deref(),
            Some("2")
        );
        for not_array in ["{}", "1", "null", "[", "x"] {
            assert_eq!(size(not_array), None, "{not_array}");
        }
    }
}
