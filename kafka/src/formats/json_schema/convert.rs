//! A payload converted through a compiled schema as `JsonSchemaData.toConnectData` reads it and
//! the connector's `KafkaRecordConverter` writes it (the rules are listed in the parent module's
//! docs): [`JsonSchema::write`] checks a value's JSON type against its node and writes the
//! structures (arrays, maps, structs, `oneOf`s) here; the scalars are written by
//! [`super::scalars`].

use crate::formats::connect_type::ConnectType;
use std::collections::HashMap;
use std::fmt::Write as _;

use super::scalars::{
    base64_of, write_date_or_time, write_decimal_value, write_float, write_int, write_timestamp,
};
use super::{field, JsonSchema, Kind, ONE_OF};
use crate::formats::avro::{special, write_base64};
use crate::formats::java_map::{self, Capacity, JavaKey};
use crate::formats::json_tree::{Decimal, J, MAX_DEPTH};
use crate::formats::walk::Walk;

impl JsonSchema {
    /// Writes `v` (`None`: missing) as node `at` at `path` (for reasons): a missing or `null`
    /// value by [`JsonSchema::write_absent`], else by its node's kind, each kind taking only
    /// the JSON type it is written from.
    pub(super) fn write(
        &self,
        out: &mut String,
        at: usize,
        v: Option<&J<'_>>,
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        if walk.depth > 2 * MAX_DEPTH {
            return Err(format!("{}: nested too deep", field(path)));
        }
        walk.check_len(out.len())?;
        let node = &self.nodes[self.resolve(at)];
        let Some(v) = v.filter(|v| !matches!(v, J::Null)) else {
            return self.write_absent(out, at, v.is_none(), path);
        };
        let mismatch = || mismatch_reason(&node.kind, v, path);
        match (&node.kind, v) {
            (Kind::Scalar(ConnectType::Boolean), J::Bool(b)) => {
                out.push_str(if *b { "true" } else { "false" })
            }
            (
                Kind::Scalar(ConnectType::Int8)
                | Kind::Scalar(ConnectType::Int16)
                | Kind::Scalar(ConnectType::Int32)
                | Kind::Scalar(ConnectType::Int64),
                J::Num(t),
            ) => {
                write_int(out, &node.kind, t, path)?;
            }
            (
                Kind::Scalar(ConnectType::Float32) | Kind::Scalar(ConnectType::Float64),
                J::Num(t),
            ) => {
                write_float(out, &node.kind, t, mismatch)?;
            }
            (Kind::Scalar(ConnectType::String), J::Str(s)) => {
                crate::formats::avro::write_str(out, s)
            }
            (Kind::Scalar(ConnectType::Bytes), J::Str(s)) => {
                write_base64(out, &base64_of(s, path)?)
            }
            (Kind::Decimal(scale), _) => write_decimal_value(out, *scale, v, path, mismatch)?,
            (Kind::Scalar(ConnectType::Date) | Kind::Scalar(ConnectType::Time), J::Num(t)) => {
                write_date_or_time(out, &node.kind, t, path)?
            }
            (Kind::Scalar(ConnectType::Timestamp), J::Num(t)) => write_timestamp(out, t, path)?,
            (Kind::Array(item), J::Arr(items)) => {
                self.write_array(out, *item, items, path, walk)?
            }
            (Kind::StringMap(values), J::Obj(members)) => {
                self.write_string_map(out, *values, members, path, walk)?;
            }
            (Kind::EntryMap(k, x), _) => self.write_entries(out, (*k, *x), v, path, walk)?,
            (Kind::Struct(fields), J::Obj(_)) => self.write_struct(out, fields, v, path, walk)?,
            (Kind::OneOf(branches), _) => self.write_one_of(out, branches, v, path, walk)?,
            (Kind::Ref(_) | Kind::Pending, _) => {
                return Err(format!(
                    "{}: a $ref that refers only to itself",
                    field(path)
                ))
            }
            _ => return Err(mismatch()),
        }
        Ok(())
    }

    /// Writes a value that is `missing` (else `null`) as node `at`: its default (the node's,
    /// else its target's), else `null` where either admits it; else the record fails.
    fn write_absent(
        &self,
        out: &mut String,
        at: usize,
        missing: bool,
        path: &str,
    ) -> Result<(), String> {
        let node = &self.nodes[self.resolve(at)];
        let default = self.nodes[at].default.as_ref().or(node.default.as_ref());
        match default {
            Some(d) => out.push_str(d),
            None if self.nodes[at].optional || node.optional => out.push_str("null"),
            None => {
                return Err(format!(
                    "{}: {} for a field that is required (its schema admits no null) and has no \
                     default: the connector fails the record (ERROR_5015)",
                    field(path),
                    if missing { "missing" } else { "null" }
                ))
            }
        }
        Ok(())
    }

    /// An array of `items`, each written as node `item`.
    fn write_array(
        &self,
        out: &mut String,
        item: usize,
        items: &[J<'_>],
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        out.push('[');
        for (i, x) in items.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            self.write(out, item, Some(x), &format!("{path}[{i}]"), walk.deeper())?;
        }
        out.push(']');
        Ok(())
    }

    /// A map of text keys: the object's `members`, each value written as node `values`
    /// (`None`: without a schema).
    fn write_string_map(
        &self,
        out: &mut String,
        values: Option<usize>,
        members: &[(String, J<'_>)],
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        let members = members.iter().map(|(k, x)| (k.as_str(), x));
        write_object(out, members, |out, k, x| {
            let p = format!("{path}.{k}");
            match values {
                Some(s) => self.write(out, s, Some(x), &p, walk.deeper()),
                None => write_schemaless(out, x, &p),
            }
        })
    }

    /// A struct of `fields`, each written from the object `v`'s member of its name (missing:
    /// its default or `null`); the object's other members are dropped.
    fn write_struct(
        &self,
        out: &mut String,
        fields: &[(std::sync::Arc<str>, usize)],
        v: &J<'_>,
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        let fields = fields.iter().map(|(name, s)| (&**name, *s));
        write_object(out, fields, |out, name, s| {
            self.write(
                out,
                s,
                v.get(name),
                &format!("{path}.{name}"),
                walk.deeper(),
            )
        })
    }

    /// Connect's `oneOf` struct: one field per branch, `v` in the branch it goes to
    /// ([`JsonSchema::branch`]), the others missing (`null` or their defaults).
    fn write_one_of(
        &self,
        out: &mut String,
        branches: &[usize],
        v: &J<'_>,
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        let chosen = self.branch(branches, v).ok_or_else(|| {
            format!(
                "{}: no oneOf branch matches the {} (\"Did not find matching oneof field for \
                 data\")",
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
        })
    }

    /// The index of the branch a `oneOf` value goes to: the first whose simple type the value
    /// is, else the struct branch sharing the most property names (`matchStructSchema`).
    fn branch(&self, branches: &[usize], v: &J<'_>) -> Option<usize> {
        let mut best = (0, None);
        for (i, b) in branches.iter().enumerate() {
            let kind = &self.nodes[self.resolve(*b)].kind;
            let simple = match kind {
                Kind::Scalar(ConnectType::Int8)
                | Kind::Scalar(ConnectType::Int16)
                | Kind::Scalar(ConnectType::Int32)
                | Kind::Scalar(ConnectType::Int64)
                | Kind::Scalar(ConnectType::Date)
                | Kind::Scalar(ConnectType::Time)
                | Kind::Scalar(ConnectType::Timestamp) => {
                    matches!(v, J::Num(t) if Decimal::of(t).is_some_and(|d| d.is_integral()))
                }
                Kind::Scalar(ConnectType::Float32) | Kind::Scalar(ConnectType::Float64) => {
                    matches!(v, J::Num(_))
                }
                Kind::Scalar(ConnectType::Boolean) => matches!(v, J::Bool(_)),
                Kind::Scalar(ConnectType::String) => matches!(v, J::Str(_)),
                Kind::Scalar(ConnectType::Bytes) | Kind::Decimal(_) => {
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
    fn match_struct(&self, at: usize, v: &J<'_>, depth: usize) -> usize {
        let J::Obj(members) = v else { return 0 };
        if depth > MAX_DEPTH {
            return 0;
        }
        let names: Vec<(std::borrow::Cow<'_, str>, usize)> =
            match &self.nodes[self.resolve(at)].kind {
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
        let index: Option<HashMap<&str, &J<'_>>> =
            (names.len().saturating_mul(members.len()) > 4_096).then(|| {
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
        v: &J<'_>,
        path: &str,
        walk: Walk,
    ) -> Result<(), String> {
        let text_keys = matches!(
            self.nodes[self.resolve(k)].kind,
            Kind::Scalar(ConnectType::String)
        );
        let mut pairs = Pairs::new(out.len(), walk);
        if text_keys && !self.nodes[k].optional {
            self.object_entries(x, v, path, walk, &mut pairs)?;
        } else {
            self.array_entries((k, x), v, path, walk, &mut pairs)?;
        }
        pairs.write_to(out, text_keys, path)
    }

    /// The pairs of a map with required text keys: the object `v`'s members, each value
    /// written as node `x`.
    fn object_entries(
        &self,
        x: usize,
        v: &J<'_>,
        path: &str,
        walk: Walk,
        pairs: &mut Pairs,
    ) -> Result<(), String> {
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
            pairs.add(key, text, JavaKey::Str(name.clone()))?;
        }
        Ok(())
    }

    /// The pairs of a map of keys of schema `k`: the array `v` of `{"key", "value"}` objects,
    /// each key with the Java object its hash is taken of.
    fn array_entries(
        &self,
        (k, x): (usize, usize),
        v: &J<'_>,
        path: &str,
        walk: Walk,
        pairs: &mut Pairs,
    ) -> Result<(), String> {
        let key_kind = &self.nodes[self.resolve(k)].kind;
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
            pairs.add(key, text, java)?;
        }
        Ok(())
    }
}

/// A map's pairs as a Java map's `put`s leave them: each key once, at its first place, with
/// its last value; the written pairs count against the row's limit as they are added.
struct Pairs {
    /// Each key's JSON text, its value's, and the Java object its hash is taken of.
    pairs: Vec<(String, String, JavaKey)>,
    /// Each key's place in `pairs`.
    index: HashMap<String, usize>,
    /// The row's length with the pairs so far.
    written: usize,
    walk: Walk,
}

impl Pairs {
    /// No pairs yet, in a row of `written` bytes so far.
    fn new(written: usize, walk: Walk) -> Self {
        Self {
            pairs: Vec::new(),
            index: HashMap::new(),
            written,
            walk,
        }
    }

    /// `put(key, value)`.
    ///
    /// # Errors
    /// The row grows past its limit.
    fn add(&mut self, key: String, value: String, java: JavaKey) -> Result<(), String> {
        self.written += key.len() + value.len() + 3;
        self.walk.check_len(self.written)?;
        #[cfg(test)]
        crate::formats::json_schema::tests::count_work();
        match self.index.get(&key) {
            Some(&i) => self.pairs[i].1 = value,
            None => {
                self.index.insert(key.clone(), self.pairs.len());
                self.pairs.push((key, value, java));
            }
        }
        Ok(())
    }

    /// Writes the pairs: an object for `text_keys`, else `[key, value]` pairs in the order a
    /// Java `HashMap` of the keys iterates them.
    fn write_to(self, out: &mut String, text_keys: bool, path: &str) -> Result<(), String> {
        let pairs = self.pairs;
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

/// A value of no schema, as `toConnectData(null, …)` and `convertValue(null, …)` make it:
/// integers as `long`s, other numbers as `double`s, objects as maps.
fn write_schemaless(out: &mut String, v: &J<'_>, path: &str) -> Result<(), String> {
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
        Kind::Scalar(ConnectType::Int8)
        | Kind::Scalar(ConnectType::Int16)
        | Kind::Scalar(ConnectType::Int32) => text.parse::<i32>().ok().map(JavaKey::Int),
        Kind::Scalar(ConnectType::Int64) => text.parse::<i64>().ok().map(JavaKey::Long),
        Kind::Scalar(ConnectType::Boolean) => Some(JavaKey::Bool(text == "true")),
        Kind::Scalar(ConnectType::String) => {
            serde_json::from_str::<String>(text).ok().map(JavaKey::Str)
        }
        _ => None,
    }
}

/// Why `v` cannot be written as a value of `kind`: a JSON type the kind is not written from
/// (where Jackson would coerce it, the record is refused rather than given a silent `0`).
fn mismatch_reason(kind: &Kind, v: &J<'_>, path: &str) -> String {
    let coerced = matches!(
        kind,
        Kind::Scalar(ConnectType::Boolean)
            | Kind::Scalar(ConnectType::Int8)
            | Kind::Scalar(ConnectType::Int16)
            | Kind::Scalar(ConnectType::Int32)
            | Kind::Scalar(ConnectType::Int64)
            | Kind::Scalar(ConnectType::Float32)
            | Kind::Scalar(ConnectType::Float64)
            | Kind::Scalar(ConnectType::String)
            | Kind::Array(_)
    );
    format!(
        "{}: a JSON {} where the schema has {} ({})",
        field(path),
        v.kind(),
        kind.name(),
        if coerced {
            "the connector would coerce it to 0, false, null or []; refused"
        } else {
            "the connector's converter fails the record too"
        }
    )
}
