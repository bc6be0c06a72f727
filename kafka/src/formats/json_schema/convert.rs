//! A payload converted through a compiled schema as `JsonSchemaData.toConnectData` reads it and
//! the connector's `KafkaRecordConverter` writes it (the rules are listed in the parent module's
//! docs).

use std::collections::HashMap;
use std::fmt::Write as _;

use base64::Engine as _;

use super::{JsonSchema, Kind, MAX_NUMBER_DIGITS, ONE_OF};
use crate::formats::avro::{java_big_decimal, special, write_base64};
use crate::formats::java_map::{self, Capacity, JavaKey};
use crate::formats::json_tree::{Decimal, J, MAX_DEPTH};
use crate::formats::walk::Walk;

impl JsonSchema {
    /// Writes `v` (`None`: missing) as node `at` at `path` (for reasons).
    pub(super) fn write(
        &self,
        out: &mut String,
        at: usize,
        v: Option<&J>,
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        if walk.depth > 2 * MAX_DEPTH {
            return Err(format!("{}: nested too deep", field(path)));
        }
        walk.check_len(out.len())?;
        let optional = self.nodes[at].optional;
        let node = &self.nodes[self.resolve(at)];
        let v = match v {
            None | Some(J::Null) => {
                let default = self.nodes[at].default.as_ref().or(node.default.as_ref());
                match default {
                    Some(d) => out.push_str(d),
                    None if optional || node.optional => out.push_str("null"),
                    None => {
                        return Err(format!(
                            "{}: {} for a field that is required (its schema admits no null) \
                             and has no default: the connector fails the record (ERROR_5015)",
                            field(path),
                            if v.is_none() { "missing" } else { "null" }
                        ))
                    }
                }
                return Ok(());
            }
            Some(v) => v,
        };
        let mismatch = || {
            let coerced = matches!(
                node.kind,
                Kind::Bool
                    | Kind::Int8
                    | Kind::Int16
                    | Kind::Int32
                    | Kind::Int64
                    | Kind::Float32
                    | Kind::Float64
                    | Kind::String
                    | Kind::Array(_)
            );
            format!(
                "{}: a JSON {} where the schema has {} ({})",
                field(path),
                v.kind(),
                node.kind.name(),
                if coerced {
                    "the connector would coerce it to 0, false, null or []; refused"
                } else {
                    "the connector's converter fails the record too"
                }
            )
        };
        let number = || match v {
            J::Num(t) => Ok(*t),
            _ => Err(mismatch()),
        };
        let finite = |t| finite(t, path);
        match &node.kind {
            Kind::Bool => match v {
                J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
                _ => return Err(mismatch()),
            },
            Kind::Int8 | Kind::Int16 | Kind::Int32 | Kind::Int64 => {
                let n = finite(number()?)?.low_bits();
                let n = match node.kind {
                    Kind::Int8 => i64::from(n as i8),
                    Kind::Int16 => i64::from(n as i16),
                    Kind::Int32 => i64::from(n as i32),
                    _ => n,
                };
                let _ = write!(out, "{n}");
            }
            Kind::Float32 | Kind::Float64 => {
                let t = number()?;
                let f: f64 = match t {
                    "NaN" => f64::NAN,
                    "Infinity" | "+Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    t => t.parse().map_err(|_| mismatch())?,
                };
                let f = if matches!(node.kind, Kind::Float32) {
                    f64::from(t.parse::<f32>().unwrap_or(f as f32))
                } else {
                    f
                };
                match special(f) {
                    Some(s) => out.push_str(s),
                    None if matches!(node.kind, Kind::Float32) => {
                        out.push_str(&serde_json::to_string(&(f as f32)).unwrap_or_default())
                    }
                    None => out.push_str(&serde_json::to_string(&f).unwrap_or_default()),
                }
            }
            Kind::String => match v {
                J::Str(s) => crate::formats::avro::write_str(out, s),
                _ => return Err(mismatch()),
            },
            Kind::Bytes => match v {
                J::Str(s) => write_base64(out, &base64_of(s, path)?),
                _ => return Err(mismatch()),
            },
            Kind::Decimal(scale) => {
                let (unscaled, scale) = match v {
                    J::Num(t) => finite(t)?.unscaled_and_scale(),
                    J::Str(s) => {
                        let bytes = base64_of(s, path)?;
                        if bytes.is_empty() {
                            return Err(format!("{}: a decimal of no bytes", field(path)));
                        }
                        let scale = scale.ok_or_else(|| {
                            format!(
                                "{}: the Decimal schema has no scale in connect.parameters",
                                field(path)
                            )
                        })?;
                        let n = num_bigint::BigInt::from_signed_bytes_be(&bytes);
                        (n.to_string(), scale)
                    }
                    _ => return Err(mismatch()),
                };
                write_decimal(out, &unscaled, scale);
            }
            Kind::Date | Kind::Time => {
                let d = finite(number()?)?;
                if !d.is_int() {
                    return Err(format!(
                        "{}: a {} must be an int (Connect's DataException)",
                        field(path),
                        if matches!(node.kind, Kind::Date) {
                            "Date"
                        } else {
                            "Time"
                        }
                    ));
                }
                let n = d.low_bits();
                if matches!(node.kind, Kind::Date) {
                    crate::formats::avro::write_iso_millis(out, n * 86_400_000);
                } else {
                    if !(0..=86_400_000).contains(&n) {
                        return Err(format!(
                            "{}: a Time must be 0 to 86400000 ms (Connect's DataException)",
                            field(path)
                        ));
                    }
                    crate::formats::avro::write_time_millis(out, n);
                }
            }
            Kind::Timestamp => {
                let d = finite(number()?)?;
                if !d.is_integral() {
                    return Err(format!(
                        "{}: a Timestamp must be an integer (Connect's DataException)",
                        field(path)
                    ));
                }
                crate::formats::avro::write_iso_millis(out, d.low_bits());
            }
            Kind::Array(item) => {
                let J::Arr(items) = v else {
                    return Err(mismatch());
                };
                out.push('[');
                for (i, x) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write(out, *item, Some(x), &format!("{path}[{i}]"), walk.deeper())?;
                }
                out.push(']');
            }
            Kind::StringMap(values) => {
                let J::Obj(members) = v else {
                    return Err(mismatch());
                };
                let members = members.iter().map(|(k, x)| (k.as_str(), x));
                write_object(out, members, |out, k, x| {
                    let p = format!("{path}.{k}");
                    match values {
                        Some(s) => self.write(out, *s, Some(x), &p, walk.deeper()),
                        None => write_schemaless(out, x, &p),
                    }
                })?;
            }
            Kind::EntryMap(k, x) => self.write_entries(out, (*k, *x), v, path, walk)?,
            Kind::Struct(fields) => {
                let J::Obj(_) = v else {
                    return Err(mismatch());
                };
                let fields = fields.iter().map(|(name, s)| (&**name, *s));
                write_object(out, fields, |out, name, s| {
                    self.write(
                        out,
                        s,
                        v.get(name),
                        &format!("{path}.{name}"),
                        walk.deeper(),
                    )
                })?;
            }
            Kind::OneOf(branches) => {
                let chosen = self.branch(branches, v).ok_or_else(|| {
                    format!(
                        "{}: no oneOf branch matches the {} (\"Did not find matching oneof \
                         field for data\")",
                        field(path),
                        v.kind()
                    )
                })?;
                let names: Vec<String> = (0..branches.len())
                    .map(|i| format!("{ONE_OF}.field.{i}"))
                    .collect();
                let fields = names
                    .iter()
                    .map(String::as_str)
                    .zip(branches.iter().enumerate());
                write_object(out, fields, |out, _, (i, b)| {
                    let value = (i == chosen).then_some(v);
                    self.write(out, *b, value, &format!("{path}.{i}"), walk.deeper())
                })?;
            }
            Kind::Ref(_) | Kind::Pending => {
                return Err(format!(
                    "{}: a $ref that refers only to itself",
                    field(path)
                ))
            }
        }
        Ok(())
    }

    /// The index of the branch a `oneOf` value goes to: the first whose simple type the value
    /// is, else the struct branch sharing the most property names (`matchStructSchema`).
    fn branch(&self, branches: &[usize], v: &J) -> Option<usize> {
        let mut best = (0, None);
        for (i, b) in branches.iter().enumerate() {
            let kind = &self.nodes[self.resolve(*b)].kind;
            let simple = match kind {
                Kind::Int8
                | Kind::Int16
                | Kind::Int32
                | Kind::Int64
                | Kind::Date
                | Kind::Time
                | Kind::Timestamp => {
                    matches!(v, J::Num(t) if Decimal::of(t).is_some_and(|d| d.is_integral()))
                }
                Kind::Float32 | Kind::Float64 => matches!(v, J::Num(_)),
                Kind::Bool => matches!(v, J::Bool(_)),
                Kind::String => matches!(v, J::Str(_)),
                Kind::Bytes | Kind::Decimal(_) => {
                    matches!(v, J::Num(t) if Decimal::of(t).is_some_and(|d| !d.is_integral()))
                }
                Kind::Array(_) => matches!(v, J::Arr(_)),
                Kind::StringMap(_) | Kind::EntryMap(..) => matches!(v, J::Obj(_) | J::Arr(_)),
                _ => false,
            };
            if simple {
                return Some(i);
            }
            let score = self.match_struct(*b, v, 0);
            if score > best.0 {
                best = (score, Some(i));
            }
        }
        best.1
    }

    /// `matchStructSchema`: property names the struct `at` shares with `v`, counted down.
    fn match_struct(&self, at: usize, v: &J, depth: usize) -> usize {
        let J::Obj(members) = v else { return 0 };
        if depth > MAX_DEPTH {
            return 0;
        }
        let names: Vec<(std::borrow::Cow<str>, usize)> = match &self.nodes[self.resolve(at)].kind {
            Kind::Struct(fields) => fields.iter().map(|(n, s)| ((&**n).into(), *s)).collect(),
            Kind::OneOf(branches) => branches
                .iter()
                .enumerate()
                .map(|(i, b)| (format!("{ONE_OF}.field.{i}").into(), *b))
                .collect(),
            _ => return 0,
        };
        // Many names among many members: the members are indexed (each name's first member),
        // not searched for each name (a schema's default or a payload could make that
        // fields × members comparisons).
        let index: Option<HashMap<&str, &J>> = (names.len().saturating_mul(members.len()) > 4_096)
            .then(|| {
                let mut index = HashMap::with_capacity(members.len());
                for (k, x) in members {
                    index.entry(k.as_str()).or_insert(x);
                }
                index
            });
        let mut score = 0;
        for (name, s) in &names {
            let child = match &index {
                Some(index) => index.get(&**name).copied(),
                None => members.iter().find(|(k, _)| k == name).map(|(_, x)| x),
            };
            if let Some(child) = child {
                score += 1 + self.match_struct(*s, child, depth + 1);
            }
        }
        score
    }

    /// A map of keys of schema `k` to values of schema `x`: from an object when the keys are
    /// required text, else from `[{"key": …, "value": …}]`; written as an object for text keys,
    /// else as `[key, value]` pairs in the order a Java `HashMap` of the keys iterates them.
    fn write_entries(
        &self,
        out: &mut String,
        (k, x): (usize, usize),
        v: &J,
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        let key_kind = &self.nodes[self.resolve(k)].kind;
        let text_keys = matches!(key_kind, Kind::String);
        let required_text = text_keys && !self.nodes[k].optional;
        // Each key once, at its first place, with its last value (a Java map's `put`); the
        // written pairs count against the row's limit as they are added.
        let mut pairs: Vec<(String, String, JavaKey)> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut written = out.len();
        let mut add = |key: String, value: String, java: JavaKey| -> Result<(), String> {
            written += key.len() + value.len() + 3;
            walk.check_len(written)?;
            match index.get(&key) {
                Some(&i) => pairs[i].1 = value,
                None => {
                    index.insert(key.clone(), pairs.len());
                    pairs.push((key, value, java));
                }
            }
            Ok(())
        };
        if required_text {
            let J::Obj(members) = v else {
                return Err(format!(
                    "{}: a map with text keys must be a JSON object, not {}",
                    field(path),
                    v.kind()
                ));
            };
            for (name, value) in members {
                let mut key = String::new();
                crate::formats::avro::write_str(&mut key, name);
                let mut text = String::new();
                self.write(
                    &mut text,
                    x,
                    Some(value),
                    &format!("{path}.{name}"),
                    walk.deeper(),
                )?;
                add(key, text, JavaKey::Str(name.clone()))?;
            }
        } else {
            let J::Arr(entries) = v else {
                return Err(format!(
                    "{}: a map with non-text keys must be a JSON array of {{\"key\", \"value\"}} \
                     objects, not {}",
                    field(path),
                    v.kind()
                ));
            };
            for (i, e) in entries.iter().enumerate() {
                let J::Obj(members) = e else {
                    return Err(format!(
                        "{}[{i}]: a map entry that is no object",
                        field(path)
                    ));
                };
                if members.len() != 2 {
                    return Err(format!(
                        "{}[{i}]: a map entry of {} members, not 2",
                        field(path),
                        members.len()
                    ));
                }
                let p = format!("{path}[{i}]");
                let mut key = String::new();
                self.write(&mut key, k, e.get("key"), &p, walk.deeper())?;
                let mut text = String::new();
                self.write(&mut text, x, e.get("value"), &p, walk.deeper())?;
                let java = java_key(key_kind, &key).ok_or_else(|| {
                    format!(
                        "{p}: a map key of {} (the connector writes such pairs in an order \
                         this sink cannot reproduce; refused)",
                        key_kind.name()
                    )
                })?;
                add(key, text, java)?;
            }
        }
        if text_keys {
            out.push('{');
            for (i, (key, value, _)) in pairs.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                let _ = write!(out, "{key}:{value}");
            }
            out.push('}');
        } else {
            out.push('[');
            let keys: Vec<JavaKey> = pairs.iter().map(|p| p.2.clone()).collect();
            let order = java_map::iteration_order(&keys, Capacity::Default)
                .map_err(|e| format!("{}: {e}", field(path)))?;
            for (n, i) in order.into_iter().map(|e| e.first).enumerate() {
                if n > 0 {
                    out.push(',');
                }
                let _ = write!(out, "[{},{}]", pairs[i].0, pairs[i].1);
            }
            out.push(']');
        }
        Ok(())
    }
}

/// The field a reason is about.
fn field(path: &str) -> String {
    crate::formats::avro::at(path)
}

/// Writes a JSON object of `members`, each value written by `each`.
fn write_object<'k, T>(
    out: &mut String,
    members: impl Iterator<Item = (&'k str, T)>,
    mut each: impl FnMut(&mut String, &'k str, T) -> Result<(), String>,
) -> Result<(), String> {
    out.push('{');
    for (i, (name, v)) in members.enumerate() {
        if i > 0 {
            out.push(',');
        }
        crate::formats::avro::write_str(out, name);
        out.push(':');
        each(out, name, v)?;
    }
    out.push('}');
    Ok(())
}

/// The number `t` taken apart, or why not (`NaN` and the infinities).
fn finite<'t>(t: &'t str, path: &str) -> Result<Decimal<'t>, String> {
    Decimal::of(t).ok_or_else(|| format!("{}: {t} is not a finite number", field(path)))
}

/// `s` decoded as base64 (Jackson's `TextNode.binaryValue`).
fn base64_of(s: &str, path: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .map_err(|e| format!("{}: bytes that are not base64 ({e})", field(path)))
}

/// A `BigDecimal` as the connector writes it: a number up to 38 digits, else its text.
fn write_decimal(out: &mut String, unscaled: &str, scale: i64) {
    let digits = unscaled.trim_start_matches('-').len();
    // `BigDecimal.toString` (as Jackson writes one): plain, or `1E+1000000` where plain text
    // would be a million digits long.
    let text = java_big_decimal(unscaled, scale);
    if digits <= MAX_NUMBER_DIGITS {
        out.push_str(&text);
    } else {
        crate::formats::avro::write_str(out, &text);
    }
}

/// A value of no schema, as `toConnectData(null, …)` and `convertValue(null, …)` make it:
/// integers as `long`s, other numbers as `double`s, objects as maps.
fn write_schemaless(out: &mut String, v: &J, path: &str) -> Result<(), String> {
    match v {
        J::Null => out.push_str("null"),
        J::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        J::Str(s) => crate::formats::avro::write_str(out, s),
        J::Num(t) => match Decimal::of(t) {
            Some(d) if d.is_integral() => {
                let _ = write!(out, "{}", d.low_bits());
            }
            _ => {
                let f: f64 = match *t {
                    "NaN" => f64::NAN,
                    "Infinity" | "+Infinity" => f64::INFINITY,
                    "-Infinity" => f64::NEG_INFINITY,
                    t => t
                        .parse()
                        .map_err(|_| format!("{}: a bad number", field(path)))?,
                };
                match special(f) {
                    Some(s) => out.push_str(s),
                    None => out.push_str(&serde_json::to_string(&f).unwrap_or_default()),
                }
            }
        },
        J::Arr(items) => {
            out.push('[');
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_schemaless(out, x, &format!("{path}[{i}]"))?;
            }
            out.push(']');
        }
        J::Obj(members) => {
            let members = members.iter().map(|(k, x)| (k.as_str(), x));
            write_object(out, members, |out, k, x| {
                write_schemaless(out, x, &format!("{path}.{k}"))
            })?;
        }
    }
    Ok(())
}

/// The Java object `JsonSchemaData` makes of a map key of `kind` written as `text` (`None`
/// for kinds whose Java hash is an object identity or a structure's).
fn java_key(kind: &Kind, text: &str) -> Option<JavaKey> {
    match kind {
        Kind::Int8 | Kind::Int16 | Kind::Int32 => text.parse::<i32>().ok().map(JavaKey::Int),
        Kind::Int64 => text.parse::<i64>().ok().map(JavaKey::Long),
        Kind::Bool => Some(JavaKey::Bool(text == "true")),
        Kind::String => serde_json::from_str::<String>(text).ok().map(JavaKey::Str),
        _ => None,
    }
}
