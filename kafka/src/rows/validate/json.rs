//! A row's values as the Java objects connector v4 validates (`java.lang.String`, `Long`,
//! `Double`, `Boolean`, `LinkedHashMap`, `ArrayList`), read from our JSON text, and a map or
//! list written back as Jackson writes it for a TEXT column (`RowValidator`: `OBJECT_MAPPER
//! .writeValueAsString`): keys in Java `HashMap` order (every level: `JsonConverter` builds a
//! `HashMap` of each object, `KafkaRecordConverter` copies it in that order), Jackson's string
//! escapes, numbers as their text.

use std::collections::HashMap;

use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::value::RawValue;

use crate::formats::java_map::string_order;

/// One JSON value, as the Java type v4 holds it.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Java<'a> {
    Null,
    Bool(bool),
    /// An integer (`Long`), its text.
    Long(&'a str),
    /// A number with a fraction or an exponent (`Double`), its text.
    Double(&'a str),
    /// A string, decoded; `None` when it holds a lone surrogate (Java's "Invalid Unicode").
    Str(Option<String>),
    /// An object (`LinkedHashMap`), its text.
    Map(&'a str),
    /// An array (`ArrayList`), its text.
    List(&'a str),
}

impl Java<'_> {
    /// The Java class v4 names in a refusal.
    pub(super) fn class(&self) -> &'static str {
        match self {
            Java::Null => "null",
            Java::Bool(_) => "java.lang.Boolean",
            Java::Long(_) => "java.lang.Long",
            Java::Double(_) => "java.lang.Double",
            Java::Str(_) => "java.lang.String",
            Java::Map(_) => "java.util.LinkedHashMap",
            Java::List(_) => "java.util.ArrayList",
        }
    }
}

/// What `raw` holds.
pub(super) fn java(raw: &RawValue) -> Java<'_> {
    let text = raw.get();
    match text.as_bytes().first() {
        Some(b'n') => Java::Null,
        Some(b't') => Java::Bool(true),
        Some(b'f') => Java::Bool(false),
        Some(b'"') => Java::Str(serde_json::from_str::<String>(text).ok()),
        Some(b'{') => Java::Map(text),
        Some(b'[') => Java::List(text),
        _ if text.contains(['.', 'e', 'E']) => Java::Double(text),
        _ => Java::Long(text),
    }
}

/// An object's entries in their written order; a key given twice keeps its first place and
/// its last value, as a `HashMap` filled in that order.
struct Entries<'a>(Vec<(String, &'a RawValue)>);

impl<'de> Deserialize<'de> for Entries<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entries<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut out: Vec<(String, &'de RawValue)> = Vec::new();
                // Each key's place in `out`: a key given again is found in constant time (a
                // search of `out` made 100,000 keys cost 13.9 s, issue 81).
                let mut places: HashMap<String, usize> = HashMap::new();
                while let Some((k, v)) = map.next_entry::<String, &'de RawValue>()? {
                    match places.get(&k) {
                        Some(&i) => out[i].1 = v,
                        None => {
                            places.insert(k.clone(), out.len());
                            out.push((k, v));
                        }
                    }
                }
                Ok(Entries(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// A string as Jackson writes it: `"` and `\` escaped, `\b \t \f \n \r`, other control
/// characters as `\u00XX` (upper-case hex), everything else as it is.
pub(super) fn write_jackson_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{8}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// The deepest nesting a map or list is written with (Jackson's default
/// `StreamReadConstraints.maxNestingDepth`, which Kafka's JsonConverter reads values with):
/// [`write_value`] takes a stack frame a level.
pub(super) const MAX_DEPTH: usize = 1_000;

/// Whether the JSON `text` nests arrays and objects deeper than `max`, in one pass over its
/// bytes (strings skipped, their escapes included).
pub(super) fn deeper_than(text: &str, max: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for b in text.bytes() {
        if in_string {
            match b {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > max {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// `raw` (a map or list) as Jackson writes it, compact, maps in Java `HashMap` order. `None`
/// when a string in it holds a lone surrogate. Check its depth first ([`deeper_than`]).
pub(super) fn jackson_text(raw: &RawValue) -> Option<String> {
    let mut out = String::with_capacity(raw.get().len());
    write_value(&mut out, raw)?;
    Some(out)
}

fn write_value(out: &mut String, raw: &RawValue) -> Option<()> {
    match java(raw) {
        Java::Null => out.push_str("null"),
        Java::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        Java::Long(t) | Java::Double(t) => out.push_str(t),
        Java::Str(s) => write_jackson_str(out, &s?),
        Java::Map(text) => {
            let Entries(entries) = serde_json::from_str(text).ok()?;
            let keys: Vec<&str> = entries.iter().map(|(k, _)| k.as_str()).collect();
            out.push('{');
            for (n, i) in string_order(&keys).into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_jackson_str(out, &entries[i].0);
                out.push(':');
                write_value(out, entries[i].1)?;
            }
            out.push('}');
        }
        Java::List(text) => {
            let items: Vec<&RawValue> = serde_json::from_str(text).ok()?;
            out.push('[');
            for (n, item) in items.into_iter().enumerate() {
                if n > 0 {
                    out.push(',');
                }
                write_value(out, item)?;
            }
            out.push(']');
        }
    }
    Some(())
}

/// The first JSON value of `text`, as Jackson's `readTree` takes it (anything after it is not
/// read): `Ok(None)` for no value at all (white space: Jackson's `MissingNode`), `Err` for
/// text that does not start with one.
pub(super) fn first_value(text: &str) -> Result<Option<&RawValue>, ()> {
    if text.trim_matches([' ', '\t', '\n', '\r']).is_empty() {
        return Ok(None);
    }
    let mut values = serde_json::Deserializer::from_str(text).into_iter::<&RawValue>();
    match values.next() {
        Some(Ok(v)) => Ok(Some(v)),
        _ => Err(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> &RawValue {
        serde_json::from_str(s).unwrap()
    }

    #[test]
    fn values_are_the_java_types_v4_holds() {
        assert_eq!(java(raw("12")), Java::Long("12"));
        assert_eq!(java(raw("1.5e3")), Java::Double("1.5e3"));
        assert_eq!(java(raw(r#""a\nb""#)), Java::Str(Some("a\nb".into())));
        assert_eq!(java(raw(r#""\ud800""#)), Java::Str(None));
        assert_eq!(java(raw("[1]")).class(), "java.util.ArrayList");
        assert_eq!(java(raw("{}")).class(), "java.util.LinkedHashMap");
    }

    #[test]
    fn maps_are_written_in_hash_map_order_with_jacksons_escapes() {
        // Buckets of 16: "a" (97) and "ab" (3105) in 1, in the order inserted; "b" (98) in 2.
        assert_eq!(
            jackson_text(raw(r#"{"b":1,"a":[true,null,"x"],"ab":{"z":"\u001f\n"}}"#)).unwrap(),
            r#"{"a":[true,null,"x"],"ab":{"z":"\u001F\n"},"b":1}"#
        );
        // A key given twice: its first place, its last value.
        assert_eq!(
            jackson_text(raw(r#"{"a":1,"b":2,"a":3}"#)).unwrap(),
            r#"{"a":3,"b":2}"#
        );
        assert_eq!(jackson_text(raw(r#"["\ud800"]"#)), None);
    }

    #[test]
    fn the_first_value_as_read_tree() {
        assert_eq!(
            first_value(" {\"a\":1} x").unwrap().unwrap().get(),
            "{\"a\":1}"
        );
        assert!(first_value(" \n").unwrap().is_none());
        assert!(first_value("hello").is_err());
        assert!(first_value("{\"a\":").is_err());
    }
}
