//! The connector's `KafkaRecordConverter.convertValue` of a Connect value, and Java's
//! `toString` of what it makes (flattened headers).

use super::parse_string::Cv;
use crate::formats::connect_type::ConnectType;
use crate::formats::json_text::write_str as write_json_str;

/// A converted value: what the connector hands the SDK.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Out {
    /// null.
    Null,
    /// A boolean.
    Bool(bool),
    /// A number, as Java writes it (valid JSON).
    Num(String),
    /// A string.
    Str(String),
    /// A list.
    Arr(Vec<Out>),
    /// A map with string keys, in order.
    Obj(Vec<(String, Out)>),
}

/// `KafkaRecordConverter.convertValue` of a parsed header value.
pub(crate) fn converted(v: Cv) -> Out {
    match v {
        Cv::Null => Out::Null,
        Cv::Bool(b) => Out::Bool(b),
        Cv::Int(n, _) => Out::Num(n.to_string()),
        Cv::F32(f) => Out::Num(java_float(f64::from(f), &format!("{f:e}"))),
        Cv::F64(f) => Out::Num(java_float(f, &format!("{f:e}"))),
        Cv::Decimal(text, precision) if precision > 38 => Out::Str(text),
        Cv::Decimal(text, _) => Out::Num(text),
        Cv::Str(s) => Out::Str(s),
        Cv::Temporal(ConnectType::Time, ms) => {
            let of_day = ms.rem_euclid(86_400_000);
            Out::Str(format!(
                "{:02}:{:02}:{:02}.{:03}Z",
                of_day / 3_600_000,
                of_day / 60_000 % 60,
                of_day / 1000 % 60,
                of_day % 1000
            ))
        }
        Cv::Temporal(_, ms) => {
            let mut s = String::new();
            crate::formats::avro::write_iso_millis(&mut s, ms);
            Out::Str(s.trim_matches('"').to_owned())
        }
        Cv::Array(items) => Out::Arr(items.into_iter().map(converted).collect()),
        Cv::Map(entries, true) => Out::Obj(
            entries
                .into_iter()
                .map(|(k, v)| (converted(k).java_string(), converted(v)))
                .collect(),
        ),
        Cv::Map(entries, false) => Out::Arr(
            entries
                .into_iter()
                .map(|(k, v)| Out::Arr(vec![converted(k), converted(v)]))
                .collect(),
        ),
    }
}

/// Java's `Float.toString`/`Double.toString` of `f`, whose shortest digits Rust's `{:e}` gave
/// (`sci`, e.g. `3.1415927e0`): plain from 10^-3 to 10^7, else `d.dddE±n`.
pub(super) fn java_float(f: f64, sci: &str) -> String {
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let negative = mantissa.starts_with('-');
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let sign = if negative { "-" } else { "" };
    let a = f.abs();
    if a == 0.0 {
        return format!("{sign}0.0");
    }
    if (1e-3..1e7).contains(&a) {
        let point = exp + 1; // digits before the point
        if point <= 0 {
            format!("{sign}0.{}{digits}", "0".repeat((-point) as usize))
        } else if (point as usize) >= digits.len() {
            format!(
                "{sign}{digits}{}.0",
                "0".repeat(point as usize - digits.len())
            )
        } else {
            let (x, y) = digits.split_at(point as usize);
            format!("{sign}{x}.{y}")
        }
    } else {
        let (x, y) = digits.split_at(1);
        let y = if y.is_empty() { "0" } else { y };
        format!("{sign}{x}.{y}E{exp}")
    }
}

impl Out {
    /// Java's `String.valueOf` of the value (`AbstractMap.toString`, `AbstractCollection.toString`).
    pub(crate) fn java_string(&self) -> String {
        match self {
            Out::Null => "null".into(),
            Out::Bool(b) => b.to_string(),
            Out::Num(n) => n.clone(),
            Out::Str(s) => s.clone(),
            Out::Arr(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(Out::java_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            Out::Obj(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.java_string()))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }

    /// The value as the SDK serializes it (Jackson).
    pub(crate) fn write_json(&self, out: &mut Vec<u8>) {
        match self {
            Out::Null => out.extend_from_slice(b"null"),
            Out::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
            Out::Num(n) => out.extend_from_slice(n.as_bytes()),
            Out::Str(s) => write_json_str(out, s),
            Out::Arr(items) => {
                out.push(b'[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    v.write_json(out);
                }
                out.push(b']');
            }
            Out::Obj(entries) => {
                out.push(b'{');
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write_json_str(out, k);
                    out.push(b':');
                    v.write_json(out);
                }
                out.push(b'}');
            }
        }
    }
}

/// Java's `String.valueOf` of the Connect value the `JsonConverter` (schemaless) makes of
/// `v`: objects are `HashMap`s (their hash order), integers `Long`, other numbers `Double`.
pub(super) fn java_string_of_json(v: &serde_json::Value) -> String {
    use serde_json::Value as J;
    match v {
        J::Null => "null".into(),
        J::Bool(b) => b.to_string(),
        J::Number(n) => match n.as_i64() {
            Some(i) => i.to_string(),
            None => {
                let f = n.as_f64().unwrap_or(f64::NAN);
                if f.is_finite() {
                    java_float(f, &format!("{f:e}"))
                } else {
                    n.to_string()
                }
            }
        },
        J::String(s) => s.clone(),
        J::Array(items) => format!(
            "[{}]",
            items
                .iter()
                .map(java_string_of_json)
                .collect::<Vec<_>>()
                .join(", ")
        ),
        J::Object(m) => {
            let keys: Vec<&String> = m.keys().collect();
            let order = java_hash_map_order(&keys);
            format!(
                "{{{}}}",
                order
                    .into_iter()
                    .map(|i| format!("{}={}", keys[i], java_string_of_json(&m[keys[i].as_str()])))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
    }
}

/// The order a `java.util.HashMap` of these (distinct) keys, inserted in order, iterates them
/// ([`crate::formats::java_map::string_order`]).
pub(super) fn java_hash_map_order(keys: &[&String]) -> Vec<usize> {
    crate::formats::java_map::string_order(keys)
}
