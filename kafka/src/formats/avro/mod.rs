//! One Avro datum (the body of a Schema Registry message) → the JSON text of its row.
//!
//! The JSON is what Snowflake's Kafka connector v4 writes for the same message read with
//! Confluent's `AvroConverter` (Avro → Kafka Connect data, then the connector's
//! `KafkaRecordConverter`, `snowflakedb/snowflake-kafka-connector` at v4.1.0,
//! `src/main/java/com/snowflake/kafka/connector/records/KafkaRecordConverter.java`; the
//! comparison, row by row, is `kafka/docs/connector-compatibility.md`):
//!
//! | Avro | JSON |
//! | --- | --- |
//! | record, map | object (map keys sorted, so a row is the same every time) |
//! | array | array |
//! | `null`, boolean, int, long | as they are |
//! | float, double | number; NaN and infinities as the strings `"NaN"`, `"Inf"`, `"-Inf"` (`handleFloatSpecialValues`) |
//! | string, enum, `uuid` | string |
//! | bytes, fixed, `duration` | base64 string (the connector's Jackson binary node) |
//! | `decimal` of at most 38 digits | number, exact (`12345.6789000000`: scale digits kept; `convertBytes`) |
//! | `decimal` of more digits | string, as Java's `BigDecimal.toString` writes it |
//! | `big-decimal` | string, exact |
//! | `date` | `"2024-01-15T00:00:00.000Z"` (Connect `Date`, `ISO_DATE_TIME_FORMAT`) |
//! | `time-millis` | `"13:45:30.123Z"` (Connect `Time`, `HH:mm:ss.SSSXXX` in a UTC worker) |
//! | `timestamp-millis` | `"2023-11-14T22:13:20.123Z"` (Connect `Timestamp`, `ISO_DATE_TIME_FORMAT`) |
//! | `timestamp-micros`, `time-micros`, `timestamp-nanos`, `local-timestamp-*` | number as written (Connect passes them as plain `INT64`) |
//! | union of `null` and one type | that type's JSON, or `null` |
//! | union of several non-null types | Connect's `io.confluent.connect.avro.Union` struct: one key per non-null branch, named by its type (`int`, `string`, …; a record, enum or fixed by its simple name), the chosen branch's value, the others `null` (`AvroData` with its default `enhanced.avro.schema.support=false`) |
//! | array of `io.confluent.connect.avro.MapEntry` records (AvroConverter's Connect map with non-string keys) | `[[key, value], …]`, or an object for string keys (`convertMapValue`), each key once (its last value) in the order of the Java `HashMap` `AvroData` puts the entries in ([`crate::formats::java_map`]) |
//!
//! In the `columns` layout the value must be a record or a map (a map's keys are the columns,
//! `convertMapToMap`). A standalone `null` schema is refused, as `AvroData` refuses it.
//!
//! Both the decoder and the writer recurse, so a body is first walked for its depth
//! ([`crate::formats::avro_depth`]): one nested deeper than [`crate::formats::avro_depth::MAX_DEPTH`] levels of
//! records, arrays and maps is refused before it could overflow the thread's stack.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use apache_avro::schema::{Name, ResolvedSchema, Schema};
use apache_avro::types::Value;
use base64::Engine as _;

use crate::formats::connect_type::FieldTypes;
use crate::formats::java_map::{self, Capacity, JavaKey};

mod connect;

/// The pattern of the Avro values that hold a `long` (binding `$n`): `long` and its logical
/// types but `timestamp-millis` (times and timestamps in micro- and nanoseconds, local
/// timestamps).
macro_rules! long_value {
    ($n:ident) => {
        Value::Long($n)
            | Value::TimeMicros($n)
            | Value::TimestampMicros($n)
            | Value::TimestampNanos($n)
            | Value::LocalTimestampMillis($n)
            | Value::LocalTimestampMicros($n)
            | Value::LocalTimestampNanos($n)
    };
}

/// A writer schema from the registry, with its named types for references.
#[derive(Debug)]
pub struct AvroSchema {
    root: Schema,
    names: HashMap<String, Schema>,
    /// The named types by their fully qualified names, as the decoder resolves references
    /// (`None` when the decoder cannot resolve them: it refuses every body before decoding).
    resolved: Option<HashMap<Name, Schema>>,
    /// The Connect types of the top-level record's fields (`avro/connect.rs`).
    fields: Arc<FieldTypes>,
}

impl AvroSchema {
    /// Parses the schema text the registry answered.
    ///
    /// # Errors
    /// Text that is not an Avro schema (the reason names the problem).
    pub fn parse(text: &str) -> Result<Self, String> {
        // Names and aliases copy the schema while it is parsed: judged first.
        crate::formats::avro_names::check(text)?;
        // Names the parser would panic on (an `unwrap` in `apache-avro`): refused first.
        crate::formats::avro_idents::check(text)?;
        #[cfg(test)]
        crate::formats::avro_names::tests::PARSES.with(|p| p.set(p.get() + 1));
        let root = Schema::parse_str(text).map_err(|e| format!("not an Avro schema: {e}"))?;
        let mut names = HashMap::new();
        collect_names(&root, None, &mut names);
        let resolved = ResolvedSchema::try_from(&root).ok().map(|r| {
            r.get_names()
                .iter()
                .map(|(name, schema)| (name.clone(), (*schema).clone()))
                .collect()
        });
        let mut schema = Self {
            root,
            names,
            resolved,
            fields: Arc::default(),
        };
        schema.fields = Arc::new(schema.connect_fields(text));
        Ok(schema)
    }

    /// The Connect types `AvroData` gives the top-level record's fields (worked out once,
    /// when the schema was parsed).
    pub fn field_types(&self) -> &Arc<FieldTypes> {
        &self.fields
    }

    /// Decodes `body` (one Avro binary datum, all of it) and writes its row's JSON object, or
    /// `null` for a null (a `[null, T]` union's: Kafka Connect's tombstone).
    ///
    /// # Errors
    /// Bytes that are not a datum of this schema, bytes left after it, a value nested deeper
    /// than [`crate::formats::avro_depth::MAX_DEPTH`] levels, a value that is not a record (or null), or
    /// a value JSON cannot hold (see the module docs): the reason names it.
    pub fn to_json(&self, body: &[u8]) -> Result<String, String> {
        self.decode(body, true)
    }

    /// Decodes `body` as [`AvroSchema::to_json`] does, any value (not only a record): the
    /// JSON of `RECORD_CONTENT` (`--layout record-content`; a `[null, T]` union's null is
    /// `null`).
    ///
    /// # Errors
    /// As [`AvroSchema::to_json`], but for the value not being a record.
    pub fn value_to_json(&self, body: &[u8]) -> Result<String, String> {
        self.decode(body, false)
    }

    fn decode(&self, body: &[u8], record_only: bool) -> Result<String, String> {
        if let Some(names) = &self.resolved {
            crate::formats::avro_depth::check(&self.root, names, body)?;
        }
        let mut reader = body;
        let value = apache_avro::from_avro_datum(&self.root, &mut reader, None)
            .map_err(|e| format!("the Avro body does not decode with its schema: {e}"))?;
        if !reader.is_empty() {
            return Err(format!(
                "{} bytes are left after the Avro value: the body does not match its schema",
                reader.len()
            ));
        }
        if matches!(self.resolve(&self.root), Schema::Null) {
            return Err(
                "the schema is a standalone \"null\" (Kafka Connect's AvroConverter refuses it: \
                 \"Standalone null schemas are not supported\")"
                    .into(),
            );
        }
        let (schema, value) = self.unwrap_null_union(&self.root, &value);
        // A null (a `[null, T]` union's) is no value: Connect's tombstone, in either layout.
        if record_only && !matches!(value, Value::Record(_) | Value::Map(_) | Value::Null) {
            return Err(format!(
                "the Avro value is {}, not a record: a row needs column names",
                kind(value)
            ));
        }
        let mut out = String::with_capacity(body.len() * 2 + 16);
        self.write(&mut out, schema, value, "")?;
        Ok(out)
    }

    fn resolve<'s>(&'s self, schema: &'s Schema) -> &'s Schema {
        match schema {
            Schema::Ref { name } => self
                .names
                .get(&full(name, None))
                .or_else(|| {
                    self.names
                        .iter()
                        .find(|(k, _)| k.rsplit('.').next() == Some(name.name.as_str()))
                        .map(|(_, s)| s)
                })
                .unwrap_or(schema),
            s => s,
        }
    }

    /// A `[null, T]` union's branch: its schema and value.
    fn unwrap_null_union<'v>(
        &'v self,
        schema: &'v Schema,
        value: &'v Value,
    ) -> (&'v Schema, &'v Value) {
        match (self.resolve(schema), value) {
            (Schema::Union(u), Value::Union(i, inner)) => {
                let branch = usize::try_from(*i)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .unwrap_or(schema);
                (self.resolve(branch), inner)
            }
            (s, v) => (s, v),
        }
    }

    /// Writes `value` (of `schema`) at `path` (for reasons).
    fn write(
        &self,
        out: &mut String,
        schema: &Schema,
        value: &Value,
        path: &str,
    ) -> Result<(), String> {
        let schema = self.resolve(schema);
        match value {
            Value::Null => out.push_str("null"),
            Value::Boolean(b) => out.push_str(if *b { "true" } else { "false" }),
            Value::Int(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Date(days) => {
                let (y, m, d) = civil_from_days(i64::from(*days));
                let _ = write!(out, "\"{y:04}-{m:02}-{d:02}T00:00:00.000Z\"");
            }
            Value::TimeMillis(ms) => write_time_millis(out, i64::from(*ms)),
            Value::TimestampMillis(ms) => write_iso_millis(out, *ms),
            long_value!(n) => {
                let _ = write!(out, "{n}");
            }
            Value::Float(f) => match special(f64::from(*f)) {
                Some(s) => out.push_str(s),
                None => out.push_str(&serde_json::to_string(f).map_err(|e| e.to_string())?),
            },
            Value::Double(f) => match special(*f) {
                Some(s) => out.push_str(s),
                None => out.push_str(&serde_json::to_string(f).map_err(|e| e.to_string())?),
            },
            Value::Bytes(b) | Value::Fixed(_, b) => write_base64(out, b),
            Value::Duration(d) => write_base64(out, &<[u8; 12]>::from(*d)),
            Value::String(s) | Value::Enum(_, s) => write_str(out, s),
            Value::Uuid(u) => write_str(out, &u.to_string()),
            Value::Decimal(d) => {
                let Schema::Decimal(ds) = schema else {
                    return Err(format!("{}: a decimal without its schema", at(path)));
                };
                let unscaled = num_bigint::BigInt::from(d.clone()).to_string();
                let digits = unscaled.trim_start_matches('-').len();
                if digits <= MAX_NUMBER_DIGITS {
                    out.push_str(&with_scale(&unscaled, ds.scale));
                } else {
                    write_str(out, &java_big_decimal(&unscaled, ds.scale as i64));
                }
            }
            Value::BigDecimal(d) => write_str(out, &d.to_string()),
            Value::Array(items) => {
                let item = match schema {
                    Schema::Array(a) => &*a.items,
                    _ => return Err(format!("{}: an array without its schema", at(path))),
                };
                if let Some(string_keys) = self.map_entry(item) {
                    return self.write_map_entries(out, item, items, string_keys, path);
                }
                out.push('[');
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    self.write(out, item, v, path)?;
                }
                out.push(']');
            }
            Value::Map(entries) => {
                let values = match schema {
                    Schema::Map(m) => &*m.types,
                    _ => return Err(format!("{}: a map without its schema", at(path))),
                };
                let mut keys: Vec<&String> = entries.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, k);
                    out.push(':');
                    self.write(out, values, &entries[k], &format!("{path}.{k}"))?;
                }
                out.push('}');
            }
            Value::Record(fields) => {
                let Schema::Record(r) = schema else {
                    return Err(format!("{}: a record without its schema", at(path)));
                };
                out.push('{');
                for (i, ((name, v), field)) in fields.iter().zip(&r.fields).enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_str(out, name);
                    out.push(':');
                    self.write(out, &field.schema, v, &format!("{path}.{name}"))?;
                }
                out.push('}');
            }
            Value::Union(i, inner) => {
                let Schema::Union(u) = schema else {
                    return Err(format!("{}: a union without its schema", at(path)));
                };
                let branch = usize::try_from(*i)
                    .ok()
                    .filter(|i| *i < u.variants().len())
                    .ok_or_else(|| format!("{}: a union branch out of range", at(path)))?;
                let non_null: Vec<usize> = (0..u.variants().len())
                    .filter(|b| !matches!(u.variants()[*b], Schema::Null))
                    .collect();
                if non_null.len() <= 1 || matches!(**inner, Value::Null) {
                    self.write(out, &u.variants()[branch], inner, path)?;
                } else {
                    // Connect's Union struct: a key per non-null branch, the chosen one set.
                    out.push('{');
                    for (n, b) in non_null.into_iter().enumerate() {
                        if n > 0 {
                            out.push(',');
                        }
                        let variant = &u.variants()[b];
                        write_str(out, &self.branch_name(variant));
                        out.push(':');
                        if b == branch {
                            self.write(out, variant, inner, path)?;
                        } else {
                            out.push_str("null");
                        }
                    }
                    out.push('}');
                }
            }
        }
        Ok(())
    }

    /// `AvroData.unionMemberFieldName`: a record, enum or fixed by its simple name, anything else
    /// by its Avro type's name (of the Connect type it becomes: a logical type by its base).
    fn branch_name(&self, variant: &Schema) -> String {
        match self.resolve(variant) {
            Schema::Record(r) => r.name.name.clone(),
            Schema::Enum(e) => e.name.name.clone(),
            Schema::Fixed(f) => f.name.name.clone(),
            Schema::Duration => "fixed".into(),
            Schema::Null => "null".into(),
            Schema::Boolean => "boolean".into(),
            Schema::Int | Schema::Date | Schema::TimeMillis => "int".into(),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => "long".into(),
            Schema::Float => "float".into(),
            Schema::Double => "double".into(),
            Schema::Bytes | Schema::Decimal(_) | Schema::BigDecimal => "bytes".into(),
            Schema::String | Schema::Uuid => "string".into(),
            Schema::Array(_) => "array".into(),
            Schema::Map(_) => "map".into(),
            Schema::Union(_) => "union".into(),
            Schema::Ref { name } => name.name.clone(),
        }
    }

    /// Whether `item` is AvroConverter's `io.confluent.connect.avro.MapEntry` record (a Connect
    /// map with non-string keys, `AvroData.isMapEntry`), and if so whether its key is a string
    /// (or an optional one: the connector writes a map of Connect STRING keys as an object).
    fn map_entry(&self, item: &Schema) -> Option<bool> {
        let Schema::Record(r) = self.resolve(item) else {
            return None;
        };
        let full = full(&r.name, None);
        let names: Vec<&str> = r.fields.iter().map(|f| f.name.as_str()).collect();
        (full == "io.confluent.connect.avro.MapEntry" && names == ["key", "value"]).then(|| {
            match self.resolve(&r.fields[0].schema) {
                Schema::String => true,
                Schema::Union(u) => {
                    let mut branches = u.variants().iter().filter(|v| !matches!(v, Schema::Null));
                    matches!(
                        (branches.next().map(|b| self.resolve(b)), branches.next()),
                        (Some(Schema::String), None)
                    )
                }
                _ => false,
            }
        })
    }

    /// An array of MapEntry records as `convertMapValue` writes the map `AvroData` makes of it
    /// (`new HashMap<>(entries)`, each entry put in order): an object for string keys, else
    /// `[[key, value], …]`, in that `HashMap`'s order ([`crate::formats::java_map`]). Keys
    /// whose Java hash depends on object identity (records, arrays, maps: Connect `Struct`,
    /// `List` and `Map` hash their schema, whose `Type` is an enum) keep the wire order.
    fn write_map_entries(
        &self,
        out: &mut String,
        item: &Schema,
        items: &[Value],
        string_keys: bool,
        path: &str,
    ) -> Result<(), String> {
        let Schema::Record(r) = self.resolve(item) else {
            return Err(format!("{}: a map entry without its schema", at(path)));
        };
        let mut pairs = Vec::with_capacity(items.len());
        for entry in items {
            let Value::Record(fields) = entry else {
                return Err(format!("{}: a map entry that is not a record", at(path)));
            };
            pairs.push((&fields[0].1, &fields[1].1));
        }
        let keys: Option<Vec<JavaKey>> = pairs
            .iter()
            .map(|(k, _)| self.java_key(&r.fields[0].schema, k))
            .collect();
        let order = match keys {
            Some(keys) => java_map::iteration_order(&keys, Capacity::Sized(items.len()))
                .map_err(|e| format!("{}: {e}", at(path)))?,
            None => self.wire_order(&r.fields[0].schema, &pairs, path)?,
        };
        out.push(if string_keys { '{' } else { '[' });
        for (i, e) in order.into_iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let (key, value) = (pairs[e.first].0, pairs[e.last].1);
            if string_keys {
                match self.unwrap_null_union(&r.fields[0].schema, key).1 {
                    Value::String(k) => write_str(out, k),
                    // String.valueOf(null)
                    Value::Null => out.push_str("\"null\""),
                    _ => return Err(format!("{}: a map key that is not a string", at(path))),
                }
                out.push(':');
            } else {
                out.push('[');
                self.write(out, &r.fields[0].schema, key, path)?;
                out.push(',');
            }
            self.write(out, &r.fields[1].schema, value, path)?;
            if !string_keys {
                out.push(']');
            }
        }
        out.push(if string_keys { '}' } else { ']' });
        Ok(())
    }

    /// Each distinct key (by its JSON) once, at its first place, with its last value.
    fn wire_order(
        &self,
        schema: &Schema,
        pairs: &[(&Value, &Value)],
        path: &str,
    ) -> Result<Vec<java_map::Entry>, String> {
        let mut order: Vec<java_map::Entry> = Vec::new();
        let mut seen: HashMap<String, usize> = HashMap::new();
        for (i, (key, _)) in pairs.iter().enumerate() {
            let mut text = String::new();
            self.write(&mut text, schema, key, path)?;
            match seen.get(&text) {
                Some(&at) => order[at].last = i,
                None => {
                    seen.insert(text, order.len());
                    order.push(java_map::Entry { first: i, last: i });
                }
            }
        }
        Ok(order)
    }

    /// The Java object `AvroData.toConnectData` makes of a map key of `schema`; `None` for a
    /// record, array or map (whose `hashCode` no one can reproduce) and `big-decimal`.
    fn java_key(&self, schema: &Schema, value: &Value) -> Option<JavaKey> {
        let (schema, value) = self.unwrap_null_union(schema, value);
        Some(match value {
            Value::Null => JavaKey::Null,
            Value::Boolean(b) => JavaKey::Bool(*b),
            // Connect INT8 and INT16 (`connect.type`) are a Byte and a Short: the same hash.
            Value::Int(n) => JavaKey::Int(*n),
            long_value!(n) => JavaKey::Long(*n),
            // Connect Date, Time and Timestamp: a java.util.Date of milliseconds.
            Value::Date(days) => JavaKey::Date(i64::from(*days) * 86_400_000),
            Value::TimeMillis(ms) => JavaKey::Date(i64::from(*ms)),
            Value::TimestampMillis(ms) => JavaKey::Date(*ms),
            Value::Float(f) => JavaKey::Float(*f),
            Value::Double(f) => JavaKey::Double(*f),
            Value::String(s) | Value::Enum(_, s) => JavaKey::Str(s.clone()),
            Value::Uuid(u) => JavaKey::Str(u.to_string()),
            Value::Bytes(b) | Value::Fixed(_, b) => JavaKey::Bytes(b.clone()),
            Value::Duration(d) => JavaKey::Bytes(<[u8; 12]>::from(*d).to_vec()),
            Value::Decimal(d) => {
                let Schema::Decimal(ds) = schema else {
                    return None;
                };
                JavaKey::Decimal(
                    num_bigint::BigInt::from(d.clone()),
                    i32::try_from(ds.scale).ok()?,
                )
            }
            _ => return None,
        })
    }
}

/// The field a reason is about.
pub(crate) fn at(path: &str) -> String {
    if path.is_empty() {
        "the value".to_owned()
    } else {
        format!("field {}", &path[1..])
    }
}

/// The most digits a decimal may have to be written as a number (Snowflake's `NUMBER(38)`;
/// the connector's `MAX_SNOWFLAKE_NUMBER_PRECISION`).
const MAX_NUMBER_DIGITS: usize = 38;

/// The connector's text for a float that JSON has no number for (`handleFloatSpecialValues`),
/// for Avro and Protobuf values alike.
pub(crate) fn special(f: f64) -> Option<&'static str> {
    if f.is_nan() {
        Some("\"NaN\"")
    } else if f.is_infinite() {
        Some(if f > 0.0 { "\"Inf\"" } else { "\"-Inf\"" })
    } else {
        None
    }
}

/// `ms` into a day as the connector's `HH:mm:ss.SSSXXX` in UTC (`…Z`), quoted.
pub(crate) fn write_time_millis(out: &mut String, ms: i64) {
    let ms = ms.rem_euclid(86_400_000);
    let _ = write!(
        out,
        "\"{:02}:{:02}:{:02}.{:03}Z\"",
        ms / 3_600_000,
        ms / 60_000 % 60,
        ms / 1000 % 60,
        ms % 1000
    );
}

/// `ms` since the epoch as the connector's `yyyy-MM-dd'T'HH:mm:ss.SSS'Z'` (UTC), quoted.
pub(crate) fn write_iso_millis(out: &mut String, ms: i64) {
    let days = ms.div_euclid(86_400_000);
    let of_day = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "\"{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z\"",
        of_day / 3_600_000,
        of_day / 60_000 % 60,
        of_day / 1000 % 60,
        of_day % 1000
    );
}

/// Java's `BigDecimal.toString` of `unscaled` (decimal digits, maybe signed, no leading zero)
/// at `scale`: plain when the scale is not negative and the adjusted exponent is at least -6,
/// else scientific (`1.234E+40`, `1E+400`).
pub(crate) fn java_big_decimal(unscaled: &str, scale: i64) -> String {
    let (sign, digits) = match unscaled.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", unscaled),
    };
    let adjusted = digits.len() as i64 - 1 - scale;
    if let Ok(scale) = usize::try_from(scale) {
        if adjusted >= -6 {
            return with_scale(unscaled, scale);
        }
    }
    let (first, rest) = digits.split_at(1);
    let point = if rest.is_empty() { "" } else { "." };
    format!("{sign}{first}{point}{rest}E{adjusted:+}")
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Boolean(_) => "a boolean",
        Value::String(_) | Value::Enum(..) | Value::Uuid(_) => "a string",
        Value::Bytes(_) | Value::Fixed(..) => "bytes",
        Value::Array(_) => "an array",
        Value::Map(_) => "a map",
        Value::Record(_) => "a record",
        _ => "a number",
    }
}

/// Fully qualified name of `name` (`namespace` when it has none).
fn full(name: &Name, namespace: Option<&str>) -> String {
    match name.namespace.as_deref().or(namespace) {
        Some(ns) if !ns.is_empty() => format!("{ns}.{}", name.name),
        _ => name.name.clone(),
    }
}

/// Every named type of `schema` by its full name, for `Schema::Ref`.
fn collect_names(schema: &Schema, ns: Option<&str>, names: &mut HashMap<String, Schema>) {
    match schema {
        Schema::Record(r) => {
            let own = full(&r.name, ns);
            let inner_ns = r.name.namespace.as_deref().or(ns).map(str::to_owned);
            names.insert(own, schema.clone());
            for f in &r.fields {
                collect_names(&f.schema, inner_ns.as_deref(), names);
            }
        }
        Schema::Enum(e) => {
            names.insert(full(&e.name, ns), schema.clone());
        }
        Schema::Fixed(f) => {
            names.insert(full(&f.name, ns), schema.clone());
        }
        Schema::Array(a) => collect_names(&a.items, ns, names),
        Schema::Map(m) => collect_names(&m.types, ns, names),
        Schema::Union(u) => {
            for v in u.variants() {
                collect_names(v, ns, names);
            }
        }
        Schema::Decimal(d) => collect_names(&d.inner, ns, names),
        _ => {}
    }
}

pub(crate) fn write_str(out: &mut String, s: &str) {
    // Serializing a string cannot fail.
    out.push_str(&serde_json::to_string(s).unwrap_or_default());
}

pub(crate) fn write_base64(out: &mut String, b: &[u8]) {
    out.push('"');
    out.push_str(&base64::engine::general_purpose::STANDARD.encode(b));
    out.push('"');
}

/// `unscaled` (an integer's digits, maybe signed) with `scale` digits after the point.
pub(crate) fn with_scale(unscaled: &str, scale: usize) -> String {
    if scale == 0 {
        return unscaled.to_owned();
    }
    let (sign, digits) = match unscaled.strip_prefix('-') {
        Some(d) => ("-", d),
        None => ("", unscaled),
    };
    let padded = if digits.len() <= scale {
        format!("{}{digits}", "0".repeat(scale + 1 - digits.len()))
    } else {
        digits.to_owned()
    };
    let (int, frac) = padded.split_at(padded.len() - scale);
    format!("{sign}{int}.{frac}")
}

/// The proleptic Gregorian (year, month, day) of `days` since 1970-01-01 (Howard Hinnant's
/// `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests;
