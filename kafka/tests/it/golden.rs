//! Golden rows: connector v4's own expectations run through the real sink.
//!
//! `kafka/tests/golden/cases.json` holds 123 cases taken from the Kafka connector's unit and
//! end-to-end tests at v4.1.0 (`kafka/docs/connector-compatibility-tables.md` §17 describes the file).
//! Each case is a message (key, value, headers, timestamp), the connector configuration, and
//! the row v4 appends. Here every case that `ours_today` marks `same` and that this harness
//! can produce is sent by a test-side producer into librdkafka's mock cluster (its value in
//! the Confluent wire format under a schema the test registry serves), the `snowpipe-kafka`
//! binary runs with the case's configuration as a `--connector-config` file until idle, and
//! the row read back from the emulator must be v4's, column by column. A case whose expected
//! outcome is no row (skipped, or an error that v4 dead-letters) must land no row.
//!
//! Keys are produced as the case gives them: text, raw bytes, or a registry format's wire bytes.
//! What the harness cannot produce is left out and counted: values other than JSON and the
//! three registry formats, and `LogAppendTime`; a `NoTimestampType` case's `CreateTime` is not
//! compared (a producer always stamps a message). The cases marked `DIFFERS` are the known
//! differences the compatibility document lists one by one. A case may bring its own typed
//! table and say what it then holds, and which dead letter its message is
//! (`common/typed_tables.rs`: the v3-compatible shape's cases, `snowflake.validation=client_side`).
#![cfg(unix)]

use std::collections::{BTreeMap, HashMap};

use apache_avro::types::Value as Avro;
use apache_avro::Schema as AvroSchema;
use base64::Engine as _;
use prost_reflect::{DynamicMessage, Kind, MapKey, MessageDescriptor, Value as Pb};
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use serde_json::Value;
use snowpipe_kafka_lab::demo::Lab;

use crate::common::registry::{compile_proto, registry, wire, Schemas, CREDENTIALS};
use crate::common::typed_tables;
use crate::common::{bin, deliver, lab_with_tables};

const CASES: &str = include_str!("../golden/cases.json");

/// The formats a case's value may have that this harness produces.
const FORMATS: [&str; 4] = ["json", "avro", "protobuf", "json_schema"];

/// Whether the harness can produce `case`, and why not.
fn producible(case: &Value) -> Result<(), String> {
    let format = case["format"].as_str().unwrap_or("");
    if !FORMATS.contains(&format) {
        return Err(format!("format {format}"));
    }
    if !case["ours_today"]
        .as_str()
        .unwrap_or("")
        .starts_with("same")
    {
        return Err("a known difference".into());
    }
    if !["string", "json", "avro", "protobuf"].contains(&case["key_format"].as_str().unwrap_or(""))
    {
        return Err(format!("key format {}", case["key_format"]));
    }
    if case["timestamp_type"] == "LogAppendTime" {
        return Err("LogAppendTime (a topic setting the mock cluster does not take)".into());
    }
    Ok(())
}

/// A Protobuf message from the cases' datum conventions (§17): fields by name, enums by name,
/// maps as objects with text keys, `{"$base64": …}` bytes, `{"$float": …}` specials. A map
/// given as `[[key, value], …]` is left out: [`pb_ordered_maps`] writes it.
fn pb_message(desc: &MessageDescriptor, datum: &Value) -> DynamicMessage {
    let mut m = DynamicMessage::new(desc.clone());
    for (name, v) in datum.as_object().expect("a message datum is an object") {
        let field = desc.get_field_by_name(name).expect(name);
        if field.is_map() && v.is_array() {
            continue;
        }
        let value = if field.is_map() {
            let Kind::Message(entry) = field.kind() else {
                unreachable!()
            };
            let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
            let map = v
                .as_object()
                .expect("a map")
                .iter()
                .map(|(k, v)| {
                    let key = match kf.kind() {
                        Kind::String => MapKey::String(k.clone()),
                        Kind::Bool => MapKey::Bool(k == "true"),
                        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
                            MapKey::I32(k.parse().unwrap())
                        }
                        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
                            MapKey::I64(k.parse().unwrap())
                        }
                        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(k.parse().unwrap()),
                        _ => MapKey::U64(k.parse().unwrap()),
                    };
                    (key, pb_single(&vf.kind(), v))
                })
                .collect();
            Pb::Map(map)
        } else if field.is_list() {
            Pb::List(
                v.as_array()
                    .expect("a list")
                    .iter()
                    .map(|i| pb_single(&field.kind(), i))
                    .collect(),
            )
        } else {
            pb_single(&field.kind(), v)
        };
        m.set_field(&field, value);
    }
    m
}

/// The top-level map fields `datum` gives as `[[key, value], …]`, as wire bytes: one entry
/// message per pair, in the pairs' order, duplicates kept (the order a producer wrote them).
fn pb_ordered_maps(desc: &MessageDescriptor, datum: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    for (name, v) in datum.as_object().expect("a message datum is an object") {
        let field = desc.get_field_by_name(name).expect(name);
        let (true, Some(pairs), Kind::Message(entry)) =
            (field.is_map(), v.as_array(), field.kind())
        else {
            continue;
        };
        let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
        for pair in pairs {
            let mut e = DynamicMessage::new(entry.clone());
            e.set_field(&kf, pb_single(&kf.kind(), &pair[0]));
            e.set_field(&vf, pb_single(&vf.kind(), &pair[1]));
            let bytes = prost::Message::encode_to_vec(&e);
            prost::encoding::encode_varint(u64::from((field.number() << 3) | 2), &mut out);
            prost::encoding::encode_varint(bytes.len() as u64, &mut out);
            out.extend(bytes);
        }
    }
    out
}

fn float(v: &Value) -> f64 {
    match v.get("$float").and_then(Value::as_str) {
        Some("NaN") => f64::NAN,
        Some("Infinity") => f64::INFINITY,
        Some("-Infinity") => f64::NEG_INFINITY,
        _ => v.as_f64().expect("a number"),
    }
}

fn bytes(v: &Value) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(v["$base64"].as_str().expect("{\"$base64\": …}"))
        .expect("base64")
}

fn pb_single(kind: &Kind, v: &Value) -> Pb {
    match kind {
        Kind::Double => Pb::F64(float(v)),
        Kind::Float => Pb::F32(float(v) as f32),
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => Pb::I32(v.as_i64().unwrap() as i32),
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => Pb::I64(v.as_i64().unwrap()),
        Kind::Uint32 | Kind::Fixed32 => Pb::U32(v.as_u64().unwrap() as u32),
        Kind::Uint64 | Kind::Fixed64 => Pb::U64(v.as_u64().unwrap()),
        Kind::Bool => Pb::Bool(v.as_bool().unwrap()),
        Kind::String => Pb::String(v.as_str().unwrap().to_owned()),
        Kind::Bytes => Pb::Bytes(bytes(v).into()),
        Kind::Enum(e) => Pb::EnumNumber(
            e.get_value_by_name(v.as_str().unwrap())
                .expect("an enum name")
                .number(),
        ),
        Kind::Message(m) => Pb::Message(pb_message(m, v)),
    }
}

/// An Avro value from the cases' datum conventions (§17).
fn avro(schema: &AvroSchema, names: &HashMap<String, AvroSchema>, v: &Value) -> Avro {
    use apache_avro::schema::Schema as S;
    let schema = match schema {
        S::Ref { name } => names
            .iter()
            .find(|(k, _)| k.rsplit('.').next() == Some(name.name.as_str()))
            .map(|(_, s)| s)
            .expect("a named type"),
        s => s,
    };
    match schema {
        S::Null => Avro::Null,
        S::Boolean => Avro::Boolean(v.as_bool().unwrap()),
        S::Int => Avro::Int(v.as_i64().unwrap() as i32),
        S::Long => Avro::Long(v.as_i64().unwrap()),
        S::Float => Avro::Float(float(v) as f32),
        S::Double => Avro::Double(float(v)),
        S::String => Avro::String(v.as_str().unwrap().to_owned()),
        S::Bytes => Avro::Bytes(bytes(v)),
        S::Fixed(f) => Avro::Fixed(f.size, bytes(v)),
        S::Uuid => Avro::Uuid(v.as_str().unwrap().parse().unwrap()),
        S::Date => Avro::Date(v.as_i64().unwrap() as i32),
        S::TimeMillis => Avro::TimeMillis(v.as_i64().unwrap() as i32),
        S::TimeMicros => Avro::TimeMicros(v.as_i64().unwrap()),
        S::TimestampMillis => Avro::TimestampMillis(v.as_i64().unwrap()),
        S::TimestampMicros => Avro::TimestampMicros(v.as_i64().unwrap()),
        S::LocalTimestampMillis => Avro::LocalTimestampMillis(v.as_i64().unwrap()),
        S::LocalTimestampMicros => Avro::LocalTimestampMicros(v.as_i64().unwrap()),
        S::Decimal(d) => {
            // "123.45" at the schema's scale: the unscaled digits.
            let text = v["$decimal"].as_str().expect("$decimal");
            let (int, frac) = text.split_once('.').unwrap_or((text, ""));
            let digits = format!("{int}{frac}{}", "0".repeat(d.scale - frac.len()));
            let unscaled: num_bigint::BigInt = digits.parse().expect("decimal digits");
            let mut bytes = unscaled.to_signed_bytes_be();
            if let S::Fixed(f) = &*d.inner {
                let pad = if unscaled.sign() == num_bigint::Sign::Minus {
                    0xff
                } else {
                    0
                };
                let mut fixed = vec![pad; f.size.saturating_sub(bytes.len())];
                fixed.append(&mut bytes);
                bytes = fixed;
            }
            Avro::Decimal(apache_avro::Decimal::from(bytes))
        }
        S::Enum(e) => {
            let s = v.as_str().unwrap();
            let i = e.symbols.iter().position(|x| x == s).expect("a symbol");
            Avro::Enum(i as u32, s.to_owned())
        }
        S::Array(a) => Avro::Array(
            v.as_array()
                .unwrap()
                .iter()
                .map(|i| avro(&a.items, names, i))
                .collect(),
        ),
        S::Map(m) => Avro::Map(
            v.as_object()
                .unwrap()
                .iter()
                .map(|(k, i)| (k.clone(), avro(&m.types, names, i)))
                .collect(),
        ),
        S::Record(r) => Avro::Record(
            r.fields
                .iter()
                .map(|f| {
                    let x = v.get(&f.name).unwrap_or(&Value::Null);
                    (f.name.clone(), avro(&f.schema, names, x))
                })
                .collect(),
        ),
        S::Union(u) => {
            let variants = u.variants();
            let (i, branch, inner) = if v.is_null() {
                let i = variants
                    .iter()
                    .position(|s| matches!(s, S::Null))
                    .expect("null");
                (i, &variants[i], v)
            } else if let Some(b) = v.get("$branch").and_then(Value::as_str) {
                let i = variants
                    .iter()
                    .position(|s| {
                        let name = match s {
                            S::Record(r) => r.name.fullname(None),
                            S::Enum(e) => e.name.fullname(None),
                            S::Fixed(f) => f.name.fullname(None),
                            S::Ref { name } => name.fullname(None),
                            other => format!("{other:?}").to_lowercase(),
                        };
                        name == b || name.rsplit('.').next() == Some(b)
                    })
                    .expect("the branch");
                (i, &variants[i], &v["value"])
            } else {
                let i = variants
                    .iter()
                    .position(|s| !matches!(s, S::Null))
                    .expect("a branch");
                (i, &variants[i], v)
            };
            Avro::Union(i as u32, Box::new(avro(branch, names, inner)))
        }
        other => panic!("no datum convention for {other:?}"),
    }
}

fn avro_names(s: &AvroSchema, out: &mut HashMap<String, AvroSchema>) {
    use apache_avro::schema::Schema as S;
    match s {
        S::Record(r) => {
            out.insert(r.name.fullname(None), s.clone());
            for f in &r.fields {
                avro_names(&f.schema, out);
            }
        }
        S::Enum(e) => {
            out.insert(e.name.fullname(None), s.clone());
        }
        S::Fixed(f) => {
            out.insert(f.name.fullname(None), s.clone());
        }
        S::Array(a) => avro_names(&a.items, out),
        S::Map(m) => avro_names(&m.types, out),
        S::Union(u) => u.variants().iter().for_each(|v| avro_names(v, out)),
        _ => {}
    }
}

/// The value's bytes as a producer in the case's format writes them, registering its schema
/// under a fresh id.
fn value_bytes(case: &Value, schemas: &mut Schemas) -> Option<Vec<u8>> {
    encode(case["format"].as_str().unwrap(), &case["value"], schemas)
}

/// The case's key: text (`{"base64": …}` for raw bytes) or a registry format's wire bytes.
fn key_bytes(case: &Value, schemas: &mut Schemas) -> Option<Vec<u8>> {
    let k = &case["key"];
    if let Some(b) = k.get("base64").and_then(Value::as_str) {
        return Some(base64::engine::general_purpose::STANDARD.decode(b).unwrap());
    }
    match case["key_format"].as_str().unwrap() {
        "string" | "json" => encode("json", k, schemas),
        format => encode(format, k, schemas),
    }
}

/// `v` in `format` (§17's conventions), its schema registered in `schemas`.
fn encode(format: &str, v: &Value, schemas: &mut Schemas) -> Option<Vec<u8>> {
    if v.is_null() {
        return None;
    }
    let id = 100 + schemas.len() as u32;
    Some(match format {
        "json" => v.as_str().unwrap().as_bytes().to_vec(),
        "avro" => {
            let text = v["schema"].as_str().unwrap();
            let schema = AvroSchema::parse_str(text).expect("the case's Avro schema");
            let mut names = HashMap::new();
            avro_names(&schema, &mut names);
            let datum = avro(&schema, &names, &v["datum"]);
            schemas.insert(id, ("AVRO", text.to_owned()));
            wire(
                id,
                &apache_avro::to_avro_datum(&schema, datum).expect("encode"),
            )
        }
        "protobuf" => {
            let text = v["schema"].as_str().unwrap();
            let pool = compile_proto(text);
            let desc = pool
                .get_message_by_name(v["message"].as_str().unwrap())
                .expect("the case's message");
            let message = pb_message(&desc, &v["datum"]);
            let indexes: Vec<i64> = v["message_indexes"]
                .as_array()
                .unwrap()
                .iter()
                .map(|i| i.as_i64().unwrap())
                .collect();
            let mut body = Vec::new();
            if indexes == [0] {
                body.push(0);
            } else {
                prost::encoding::encode_varint(zigzag(indexes.len() as i64), &mut body);
                for i in indexes {
                    prost::encoding::encode_varint(zigzag(i), &mut body);
                }
            }
            body.extend(prost::Message::encode_to_vec(&message));
            body.extend(pb_ordered_maps(&desc, &v["datum"]));
            schemas.insert(id, ("PROTOBUF", text.to_owned()));
            wire(id, &body)
        }
        "json_schema" => {
            schemas.insert(id, ("JSON", v["schema"].as_str().unwrap().to_owned()));
            wire(id, v["payload"].as_str().unwrap().as_bytes())
        }
        other => panic!("format {other}"),
    })
}

fn zigzag(n: i64) -> u64 {
    ((n << 1) ^ (n >> 63)) as u64
}

/// `actual` (as the emulator reads a column back) against v4's `expected`: `"<any>"` matches
/// anything, objects and arrays compare after parsing a VARIANT's text, numbers as numbers,
/// a boolean against the 0 or 1 the emulator stores a BOOLEAN as.
fn same(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::String(s), _) if s == "<any>" => true,
        (Value::Object(_) | Value::Array(_), Value::String(text)) => {
            serde_json::from_str::<Value>(text).is_ok_and(|a| same(expected, &a))
        }
        (Value::Object(e), Value::Object(a)) => {
            e.len() == a.len() && e.iter().all(|(k, v)| a.get(k).is_some_and(|x| same(v, x)))
        }
        (Value::Array(e), Value::Array(a)) => {
            e.len() == a.len() && e.iter().zip(a).all(|(x, y)| same(x, y))
        }
        (Value::Number(e), Value::Number(a)) => e.as_f64() == a.as_f64(),
        // The emulator keeps a BOOLEAN as SQLite's 0/1 and reads it back so.
        (Value::Bool(e), Value::Number(a)) => a.as_i64() == Some(i64::from(*e)),
        (Value::Number(e), Value::String(a)) => a.parse::<f64>().ok() == e.as_f64(),
        _ => expected == actual,
    }
}

/// Case `n`'s row in table `GOLDEN_<n>` against v4's. The message went to `topic` at offset
/// 0 of partition 0 (the case's own topic, offset and partition are v4's test's), so those
/// metadata fields are compared with ours; a `NoTimestampType` case's time is not compared (a
/// producer always stamps its messages).
fn compare(lab: &Lab, case: &Value, n: usize, topic: &str) -> Result<(), String> {
    let name = case["name"].as_str().unwrap_or("?");
    let (columns, rows) = lab
        .emulator()
        .query_with_columns(&format!(r#"SELECT * FROM "DEMO.KAFKA.GOLDEN_{n}""#))
        .unwrap_or_default();
    // A key in other than upper case stays as it is when v4's row also has its upper-case
    // form (two columns: a quoted one and an unquoted one).
    let upper = |m: &serde_json::Map<String, Value>| -> BTreeMap<String, Value> {
        m.iter()
            .map(|(k, v)| {
                let folded = k.to_uppercase();
                if folded != *k && m.contains_key(&folded) {
                    (k.clone(), v.clone())
                } else {
                    (folded, v.clone())
                }
            })
            .collect()
    };
    match (case["expected_row"].as_object(), rows.as_slice()) {
        (None, []) => Ok(()),
        (None, _) => Err(format!("{name}: v4 appends no row; we landed {rows:?}")),
        (Some(_), []) => Err(format!("{name}: v4 appends a row; we landed none")),
        (Some(e), [row]) => {
            // A column v4 leaves null is a column the table may not even have.
            let mut expected = upper(e);
            typed_tables::stored(case, &mut expected);
            expected.retain(|_, v| !v.is_null());
            if let Some(m) = expected
                .get_mut("RECORD_METADATA")
                .and_then(Value::as_object_mut)
            {
                for (k, v) in [
                    ("topic", Value::from(topic)),
                    ("offset", 0.into()),
                    ("partition", 0.into()),
                ] {
                    if m.contains_key(k) {
                        m.insert(k.into(), v);
                    }
                }
                if case["timestamp_type"] == "NoTimestampType" {
                    m.insert("CreateTime".into(), Value::String("<any>".into()));
                }
            }
            let mut actual = BTreeMap::new();
            for (column, v) in columns.iter().zip(row) {
                if v.is_null() {
                    continue;
                }
                // RECORD_CONTENT and RECORD_METADATA are VARIANTs: their text is JSON.
                let v = match (column.as_str(), v) {
                    ("RECORD_CONTENT" | "RECORD_METADATA", Value::String(t)) => {
                        serde_json::from_str(t).unwrap_or_else(|_| v.clone())
                    }
                    _ => v.clone(),
                };
                actual.insert(column.clone(), v);
            }
            // Columns compare without case, except where the table has a quoted column of
            // that name in other case (v4's normalized `"city"` beside `CITY`).
            let actual: BTreeMap<String, Value> = actual
                .into_iter()
                .map(|(c, v)| {
                    let folded = c.to_uppercase();
                    if c != folded && expected.contains_key(&c) {
                        (c, v)
                    } else {
                        (folded, v)
                    }
                })
                .collect();
            let ok = expected.len() == actual.len()
                && expected
                    .iter()
                    .all(|(k, v)| actual.get(k).is_some_and(|x| same(v, x)));
            if ok {
                Ok(())
            } else {
                Err(format!("{name}: v4 {expected:?}\n    ours {actual:?}"))
            }
        }
        (Some(_), rows) => Err(format!("{name}: {} rows", rows.len())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connector_v4_golden_rows_land_the_same_through_the_real_sink() {
    let cases: Vec<Value> = serde_json::from_str(CASES).expect("cases.json");
    let mut left_out: BTreeMap<String, usize> = BTreeMap::new();
    let runnable: Vec<&Value> = cases
        .iter()
        .filter(|c| match producible(c) {
            Ok(()) => true,
            Err(why) => {
                *left_out.entry(why).or_default() += 1;
                false
            }
        })
        .collect();
    // A case may bring its own typed table (`typed_tables`); the others' are created by the
    // sink, as the connector's.
    let lab = lab_with_tables(
        &[],
        &typed_tables::ddl(runnable.iter().copied().enumerate()),
    )
    .await;
    // One topic (and table) per case: the table takes the case's columns alone.
    let mut schemas = HashMap::new();
    let mut planned = Vec::new();
    for (n, case) in runnable.iter().enumerate() {
        let topic = format!("golden_{n}");
        lab.create_topic(&topic, 1).expect("topic");
        let value = value_bytes(case, &mut schemas);
        let key = key_bytes(case, &mut schemas);
        planned.push((topic, value, key));
    }
    let (url, _) = registry(schemas).await;
    let producer: FutureProducer = lab.producer().expect("producer");
    for (case, (topic, value, key)) in runnable.iter().zip(&planned) {
        let mut record = FutureRecord::<[u8], [u8]>::to(topic).partition(0);
        if let Some(ts) = case["timestamp"].as_i64() {
            record = record.timestamp(ts);
        }
        if let Some(k) = key {
            record = record.key(k);
        }
        if let Some(v) = value {
            record = record.payload(v);
        }
        let mut headers = OwnedHeaders::new();
        let mut raw_headers = Vec::new();
        for h in case["headers"].as_array().into_iter().flatten() {
            let name = h[0].as_str().unwrap().to_owned();
            let value = if let Some(t) = h[1].get("text").and_then(Value::as_str) {
                Some(t.as_bytes().to_vec())
            } else {
                h[1].get("base64").map(|b| {
                    base64::engine::general_purpose::STANDARD
                        .decode(b.as_str().unwrap())
                        .unwrap()
                })
            };
            raw_headers.push((name, value));
        }
        for (name, value) in &raw_headers {
            headers = headers.insert(Header {
                key: name,
                value: value.as_deref(),
            });
        }
        if !raw_headers.is_empty() {
            record = record.headers(headers);
        }
        deliver(&producer, record).await;
    }
    // One sink run per configuration: its cases' topics, each into its own table.
    let bin = bin();
    let dir = tempfile::tempdir().expect("tempdir");
    let mut groups: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (n, case) in runnable.iter().enumerate() {
        let registry_format = case["format"] != "json";
        let key = format!("{registry_format}{}", case["config"]);
        groups.entry(key).or_default().push(n);
    }
    // Build each group's command, then run them twelve at a time: each mostly waits (for its
    // lag, its commits and `--until-idle`, which also needs every partition read to its end,
    // so a slow start under load only delays it). 23 runs took 71 s three at a time, 20 s
    // twelve at a time, for the same 8 CPU-s.
    let mut commands = Vec::new();
    for (g, members) in groups.values().enumerate() {
        let first = runnable[members[0]];
        let mut props = String::from("name=golden\nerrors.tolerance=all\n");
        for (k, v) in first["config"].as_object().into_iter().flatten() {
            let v = v.as_str().map_or_else(|| v.to_string(), str::to_owned);
            let v = if k.ends_with("schema.registry.url") {
                url.clone()
            } else {
                v
            };
            props.push_str(&format!("{k}={v}\n"));
        }
        let file = dir.path().join(format!("group_{g}.properties"));
        std::fs::write(&file, props).unwrap();
        let mut cmd = lab.instance_of(&bin, &format!("golden-{g}"));
        cmd.arg("--connector-config").arg(&file);
        for &n in members {
            cmd.args([
                "--topic",
                &planned[n].0,
                "--pipe",
                &format!("GOLDEN_{n}-STREAMING"),
            ]);
        }
        cmd.args(["--dead-letter-topic", "golden-dlq", "--until-idle", "2s"])
            .stderr(std::process::Stdio::piped());
        if first["format"] != "json" {
            cmd.args(["--schema-registry-basic-auth", "env:TEST_SR_AUTH"])
                .env("TEST_SR_AUTH", CREDENTIALS);
        }
        commands.push((members.clone(), cmd));
    }
    let mut failures = Vec::new();
    for batch in commands.chunks_mut(12) {
        let children: Vec<_> = batch
            .iter_mut()
            .map(|(members, cmd)| (members.clone(), cmd.spawn().expect("start the sink")))
            .collect();
        for (members, child) in children {
            let out = child.wait_with_output().expect("run the sink");
            if !out.status.success() {
                let stderr = String::from_utf8_lossy(&out.stderr);
                let last = stderr.lines().last().unwrap_or("").to_owned();
                for &n in &members {
                    failures.push(format!("{}: the sink failed: {last}", runnable[n]["name"]));
                }
                continue;
            }
            for &n in &members {
                let checked = compare(&lab, runnable[n], n, &planned[n].0)
                    .and_then(|()| typed_tables::types(&lab, runnable[n], n));
                if let Err(why) = checked {
                    failures.push(why);
                }
            }
        }
    }
    // The dead letters a case names: its topic's, with the reason.
    let reasons = typed_tables::dead_letter_reasons(&lab, "golden-dlq");
    for (n, case) in runnable.iter().enumerate() {
        if let Some(want) = case["expected_dead_letter"].as_str() {
            match reasons.get(&planned[n].0) {
                Some(why) if why.contains(want) => {}
                other => failures.push(format!(
                    "{}: dead letter {other:?}, not {want:?}",
                    case["name"]
                )),
            }
        }
    }
    println!("golden rows: {} sink runs", commands.len());
    println!(
        "golden rows: {} run, {} left out ({left_out:?})",
        runnable.len(),
        cases.len() - runnable.len()
    );
    assert!(runnable.len() >= 60, "only {} cases run", runnable.len());
    assert!(
        failures.is_empty(),
        "{} of {} differ:\n{}",
        failures.len(),
        runnable.len(),
        failures.join("\n")
    );
}
