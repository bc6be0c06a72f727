//! Which key an object names twice, for the dead letter's reason (and the tests' reference):
//! serde_json reading the value with a set of each object's keys, as the emulator does
//! (`emulator/src/convert/strict_row.rs`). Only for a value the check refused, so its speed
//! does not matter; past serde_json's depth of 128 it cannot tell (`None`).

use std::collections::HashSet;
use std::fmt;

use serde::de::{Deserialize, Deserializer, Error as _, MapAccess, SeqAccess, Visitor};

/// The error's text that marks a key given twice, followed by the key as a JSON string.
const TWICE: &str = "key named twice: ";

/// The first key `text` (JSON) names twice in one object, as a JSON string (escaped, so a
/// control character in it stays visible); `None` when there is none or serde_json cannot
/// read `text`.
pub fn key_named_twice(text: &str) -> Option<String> {
    let e = serde_json::from_str::<Strict>(text).err()?.to_string();
    let at = e.find(TWICE)? + TWICE.len();
    // serde_json appends " at line L column C".
    let end = e.rfind(" at line ").unwrap_or(e.len());
    Some(e.get(at..end)?.to_owned())
}

/// Any JSON value, refusing an object that names a key twice.
struct Strict;

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Strict)
    }
}

impl<'de> Visitor<'de> for Strict {
    type Value = Strict;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_str<E>(self, _: &str) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_unit<E>(self) -> Result<Strict, E> {
        Ok(Strict)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
        while a.next_element::<Strict>()?.is_some() {}
        Ok(Strict)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut a: A) -> Result<Strict, A::Error> {
        let mut seen = HashSet::new();
        while let Some(k) = a.next_key::<String>()? {
            if seen.contains(&k) {
                return Err(A::Error::custom(format_args!(
                    "{TWICE}{}",
                    serde_json::Value::String(k)
                )));
            }
            a.next_value::<Strict>()?;
            seen.insert(k);
        }
        Ok(Strict)
    }
}
