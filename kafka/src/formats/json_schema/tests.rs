//! The JSON Schema conversion against `JsonSchemaData` and `KafkaRecordConverter` (v7.9.2, v4.1.0).
use super::*;

fn row(schema: &str, payload: &str) -> Result<serde_json::Value, String> {
    let s = JsonSchema::parse(schema)?;
    let text = s.to_json(payload, true, 1 << 20)?;
    Ok(serde_json::from_str(&text).expect("the sink writes JSON"))
}

fn ok(schema: &str, payload: &str) -> serde_json::Value {
    row(schema, payload).unwrap_or_else(|e| panic!("{schema} / {payload}: {e}"))
}

fn refused(schema: &str, payload: &str, why: &str) {
    match row(schema, payload) {
        Err(e) => assert!(e.contains(why), "{schema} / {payload}: {e}"),
        Ok(v) => panic!("{schema} / {payload}: wrote {v}"),
    }
}

const PERSON: &str = r#"{"type":"object","properties":{"id":{"type":"integer"},
    "name":{"type":"string"},"score":{"type":"number"}}}"#;

#[test]
fn objects_keep_declared_properties_and_require_them() {
    use serde_json::json;
    assert_eq!(
        ok(PERSON, r#"{"id":1,"name":"a","score":1.5,"extra":true}"#),
        json!({"id":1,"name":"a","score":1.5})
    );
    // Not in `required` does not make a property optional (use.optional.for.nonrequired).
    refused(PERSON, r#"{"id":1,"score":1.5}"#, "field name: missing");
    refused(
        PERSON,
        r#"{"id":1,"name":null,"score":1}"#,
        "field name: null",
    );
    let nested = r#"{"type":"object","properties":{"c":{"type":"object",
        "properties":{"name":{"type":"string"}}},"tags":{"type":"array","items":{"type":"string"}}}}"#;
    assert_eq!(
        ok(nested, r#"{"c":{"name":"Ann","age":3},"tags":["x"]}"#),
        json!({"c":{"name":"Ann"},"tags":["x"]})
    );
    refused(
        nested,
        r#"{"c":{"name":"Ann"},"tags":[null]}"#,
        "field tags[0]: null",
    );
    assert_eq!(ok(r#"{"type":"object"}"#, r#"{"a":1}"#), json!({}));
}

#[test]
fn nullable_properties_are_null_and_defaults_fill_in() {
    use serde_json::json;
    let schema = r#"{"type":"object","properties":{"id":{"type":"integer"},
        "a":{"oneOf":[{"type":"null"},{"type":"string"}]},
        "b":{"type":["string","null"]},
        "c":{"type":"integer","default":7},
        "d":{"anyOf":[{"type":"string"}]}}}"#;
    assert_eq!(
        ok(schema, r#"{"id":1,"d":"x"}"#),
        json!({"id":1,"a":null,"b":null,"c":7,"d":"x"})
    );
    assert_eq!(
        ok(schema, r#"{"id":1,"a":"s","b":"t","c":null,"d":"x"}"#),
        json!({"id":1,"a":"s","b":"t","c":7,"d":"x"})
    );
    // A null payload is a tombstone only when the schema admits null.
    assert_eq!(
        ok(r#"{"oneOf":[{"type":"null"},{"type":"object"}]}"#, "null"),
        json!(null)
    );
    refused(PERSON, "null", "admits no null");
}

#[test]
fn numbers_are_connect_types() {
    use serde_json::json;
    let schema = r#"{"type":"object","properties":{"pi":{"type":"number"},
        "n":{"type":"integer"},"f":{"type":"integer"},
        "i8":{"type":"integer","connect.type":"int8"},
        "i32":{"type":"number","connect.type":"int32"},
        "f32":{"type":"number","connect.type":"float32"},
        "big":{"type":"number"}}}"#;
    let v = ok(
        schema,
        r#"{"pi":3.141592653589793238,"n":12345678901234567890,"f":-1.9,"i8":300,
            "i32":4294967297,"f32":0.1,"big":1e400}"#,
    );
    assert_eq!(
        v,
        json!({"pi":std::f64::consts::PI,"n":-6101065172474983726_i64,"f":-1,"i8":44,
               "i32":1,"f32":0.1,"big":"Inf"})
    );
    let specials = r#"{"type":"array","items":{"type":"number"}}"#;
    assert_eq!(
        ok(specials, "[NaN, -Infinity, 2]"),
        json!(["NaN", "-Inf", 2.0])
    );
    refused(r#"{"type":"integer"}"#, "NaN", "not a finite number");
}

#[test]
fn wrong_json_types_are_refused_not_coerced() {
    for (schema, payload) in [
        (r#"{"type":"number"}"#, r#""3""#),
        (r#"{"type":"integer"}"#, "true"),
        (r#"{"type":"string"}"#, "3"),
        (r#"{"type":"boolean"}"#, "0"),
        (
            r#"{"type":"array","items":{"type":"string"}}"#,
            r#"{"a":"b"}"#,
        ),
    ] {
        refused(schema, payload, "would coerce it");
    }
    refused(
        r#"{"type":"object","properties":{}}"#,
        "[]",
        "a JSON ARRAY where the schema has STRUCT (the connector's converter fails",
    );
}

#[test]
fn one_of_is_a_struct_of_branches() {
    use serde_json::json;
    let schema = r#"{"oneOf":[{"type":"string"},{"type":"integer"},
        {"type":"object","properties":{"a":{"type":"integer"}}},
        {"type":"object","properties":{"b":{"type":"integer"},"c":{"type":"integer"}}}]}"#;
    let f = |i: usize| format!("io.confluent.connect.json.OneOf.field.{i}");
    let mut want = serde_json::Map::new();
    for i in 0..4 {
        want.insert(f(i), json!(null));
    }
    let with = |i: usize, v: serde_json::Value| {
        let mut w = want.clone();
        w.insert(f(i), v);
        serde_json::Value::Object(w)
    };
    assert_eq!(ok(schema, r#""x""#), with(0, json!("x")));
    assert_eq!(ok(schema, "5"), with(1, json!(5)));
    assert_eq!(ok(schema, r#"{"a":1}"#), with(2, json!({"a":1})));
    // The object branch sharing most names; its undeclared `x` dropped.
    assert_eq!(
        ok(schema, r#"{"b":1,"c":2,"x":0}"#),
        with(3, json!({"b":1,"c":2}))
    );
    refused(schema, "1.5", "no oneOf branch");
    refused(schema, r#"{"z":1}"#, "no oneOf branch");
    // A `type` list is an anyOf; with null among three it is optional.
    let list = r#"{"type":["string","integer","null"]}"#;
    assert_eq!(ok(list, "null"), json!(null));
    assert_eq!(ok(list, "2"), json!({f(0): null, f(1): 2}));
}

#[test]
fn refs_allof_and_maps() {
    use serde_json::json;
    let tree = r##"{"$ref":"#/definitions/node","definitions":{"node":{"type":"object",
        "properties":{"v":{"type":"integer"},
        "next":{"oneOf":[{"type":"null"},{"$ref":"#/definitions/node"}]}}}}}"##;
    assert_eq!(
        ok(tree, r#"{"v":1,"next":{"v":2,"next":null,"x":1}}"#),
        json!({"v":1,"next":{"v":2,"next":null}})
    );
    let all = r#"{"allOf":[{"type":"object","properties":{"a":{"type":"string"}}},
        {"type":"object","properties":{"b":{"type":"integer"}}}]}"#;
    assert_eq!(ok(all, r#"{"a":"x","b":1,"c":2}"#), json!({"a":"x","b":1}));
    let map = r#"{"type":"object","connect.type":"map",
        "additionalProperties":{"type":"integer"}}"#;
    assert_eq!(ok(map, r#"{"x":1,"y":2}"#), json!({"x":1,"y":2}));
    let untyped = r#"{"type":"object","connect.type":"map"}"#;
    assert_eq!(
        ok(untyped, r#"{"x":1.5,"y":[1,"a"]}"#),
        json!({"x":1.5,"y":[1,"a"]})
    );
    // Integer keys: [key, value] pairs in a Java HashMap's order (by hash: 1, 2, 17 in
    // buckets 1, 2, 1 of 16).
    let pairs = r#"{"type":"array","connect.type":"map","items":{"type":"object",
        "properties":{"key":{"type":"integer","connect.type":"int32"},"value":{"type":"string"}}}}"#;
    assert_eq!(
        ok(
            pairs,
            r#"[{"key":2,"value":"b"},{"key":17,"value":"q"},{"key":1,"value":"a"}]"#
        ),
        json!([[17, "q"], [1, "a"], [2, "b"]])
    );
}

#[test]
fn logical_types_by_title() {
    use serde_json::json;
    let schema = r#"{"type":"object","properties":{
        "ts":{"type":"integer","connect.type":"int64","title":"org.apache.kafka.connect.data.Timestamp"},
        "d":{"type":"integer","connect.type":"int32","title":"org.apache.kafka.connect.data.Date"},
        "t":{"type":"integer","connect.type":"int32","title":"org.apache.kafka.connect.data.Time"},
        "dec":{"type":"number","connect.type":"bytes","title":"org.apache.kafka.connect.data.Decimal",
               "connect.parameters":{"scale":"2"}},
        "enc":{"type":"string","connect.type":"bytes","title":"org.apache.kafka.connect.data.Decimal",
               "connect.parameters":{"scale":"2"}},
        "raw":{"type":"string","connect.type":"bytes"}}}"#;
    assert_eq!(
        ok(
            schema,
            r#"{"ts":1700000000123,"d":19000,"t":3723004,"dec":12.345,"enc":"MDk=","raw":"AAE="}"#
        ),
        json!({"ts":"2023-11-14T22:13:20.123Z","d":"2022-01-08T00:00:00.000Z",
               "t":"01:02:03.004Z","dec":12.345,"enc":123.45,"raw":"AAE="})
    );
    // Past 38 digits a decimal is text (BigDecimal.toString).
    let dec = r#"{"type":"number","connect.type":"bytes","title":"org.apache.kafka.connect.data.Decimal"}"#;
    assert_eq!(
        ok(dec, "123456789012345678901234567890123456789.5"),
        json!("123456789012345678901234567890123456789.5")
    );
    // A few bytes of exponent stay a few bytes (BigDecimal.toString), never a million zeros.
    let d = JsonSchema::parse(dec).unwrap();
    assert_eq!(d.to_json("1e1000000", true, 1 << 20).unwrap(), "1E+1000000");
    assert_eq!(
        d.to_json("-2.5e-1000000", true, 1 << 20).unwrap(),
        "-2.5E-1000000"
    );
    assert_eq!(d.to_json("1.50e2", true, 1 << 20).unwrap(), "150");
    refused(
        r#"{"type":"string","title":"org.apache.kafka.connect.data.Timestamp"}"#,
        "1",
        "logical type",
    );
}

#[test]
fn schemas_v4_has_no_connect_type_for_are_refused() {
    for (schema, why) in [
        ("{}", "no type"),
        ("true", "the schema `true`"),
        (r#"{"type":"null"}"#, "lone `null`"),
        (r#"{"not":{"type":"string"}}"#, "`not`"),
        (r#"{"$ref":"other.json#/x"}"#, "outside the schema"),
        (
            r##"{"$ref":"#/definitions/a","definitions":{"a":{"$ref":"#/definitions/a"}}}"##,
            "refers only to itself",
        ),
        (r#"{"type":"array"}"#, "items"),
        (r#"{"type":"array","items":[{"type":"string"}]}"#, "items"),
        (
            r#"{"type":"integer","connect.type":"int128"}"#,
            "connect.type",
        ),
        (r#"{"type":"object","properties":{"a":{}}}"#, "no type"),
    ] {
        match JsonSchema::parse(schema) {
            Err(e) => assert!(e.contains(why), "{schema}: {e}"),
            Ok(_) => panic!("{schema} compiled"),
        }
    }
}

#[test]
fn hostile_schemas_are_bounded() {
    // $refs fanning out 2^40 ways compile once per target.
    let mut defs = Vec::new();
    for i in 0..40 {
        defs.push(format!(
            r##""d{i}":{{"type":"object","properties":{{"a":{{"$ref":"#/definitions/d{n}"}},"b":{{"$ref":"#/definitions/d{n}"}}}}}}"##,
            n = i + 1
        ));
    }
    defs.push(r#""d40":{"type":"string"}"#.into());
    let schema = format!(
        r##"{{"$ref":"#/definitions/d0","definitions":{{{}}}}}"##,
        defs.join(",")
    );
    let s = JsonSchema::parse(&schema).unwrap();
    assert!(s.nodes.len() < 200, "{} nodes", s.nodes.len());
    // A payload nested past the reader's depth is refused, not a stack overflow.
    let deep = "[".repeat(100_000);
    let list = JsonSchema::parse(r#"{"type":"array","items":{"type":"string"}}"#).unwrap();
    assert!(list
        .to_json(&deep, true, 1 << 20)
        .unwrap_err()
        .contains("nested deeper"));
}

/// Three bytes of payload (`{},`) per item, each written with 30 defaults of 100 characters:
/// 100,000 items would be a 330 MB row. It is refused when the row passes the limit, having
/// built no more than the limit and one value.
#[test]
fn empty_objects_that_ask_for_a_huge_row_are_refused_at_the_row_limit() {
    let default = "d".repeat(100);
    let props: Vec<String> = (1..=30)
        .map(|i| format!(r#""field_{i}":{{"type":"string","default":"{default}"}}"#))
        .collect();
    let schema = format!(
        r#"{{"type":"array","items":{{"type":"object","properties":{{{}}}}}}}"#,
        props.join(",")
    );
    let s = JsonSchema::parse(&schema).unwrap();
    let items = |n: usize| format!("[{}]", vec!["{}"; n].join(","));
    let small = s.to_json(&items(10), true, 1 << 20).unwrap();
    assert_eq!(small.matches(&default).count(), 300);
    let err = s.to_json(&items(100_000), true, 1 << 20).unwrap_err();
    assert!(err.contains("grows past 1048576 bytes"), "{err}");
}

/// A map of 200,000 `[key, value]` entries: each key was looked up among the pairs before it
/// (2·10^10 comparisons, minutes); now through an index. A repeated key keeps its first place
/// and its last value, as a Java map's `put` does.
#[test]
fn a_map_of_many_entries_is_written_in_linear_time() {
    let schema = r#"{"type":"array","connect.type":"map","items":{"type":"object",
        "properties":{"key":{"type":"integer","connect.type":"int32"},"value":{"type":"string"}}}}"#;
    let s = JsonSchema::parse(schema).unwrap();
    let mut entries: Vec<String> = (0..200_000)
        .map(|i| format!(r#"{{"key":{i},"value":"v{i}"}}"#))
        .collect();
    entries.push(r#"{"key":7,"value":"again"}"#.into());
    let payload = format!("[{}]", entries.join(","));
    work_done();
    let text = s.to_json(&payload, true, 64 << 20).unwrap();
    // Counted, not timed: one indexed put an entry (the quadratic form compared each key
    // with every pair before it).
    assert_eq!(work_done(), 200_001);
    let pairs: Vec<(i64, String)> = serde_json::from_str(&text).unwrap();
    assert_eq!(pairs.len(), 200_000);
    assert!(pairs.contains(&(7, "again".into())));
    assert!(!pairs.contains(&(7, "v7".into())));
    let err = s.to_json(&payload, true, 1 << 20).unwrap_err();
    assert!(err.contains("grows past"), "{err}");
}

/// Issue 56: `allOf` collected each branch's properties into a list searched from the start
/// for every name, and a `$ref` repeated in one `allOf` visited its target's properties each
/// time: 5,000 references to an object of 2,000 properties were 10^7 visits of a list of
/// 2,000 (about 2·10^10 comparisons, estimated). Visits now count against the schema's node
/// limit (refused at once, naming it), and names are found by a map: eight branches of 1,000
/// properties each still compile and read.
#[test]
fn an_all_of_that_repeats_a_large_reference_is_refused_and_wide_branches_compile() {
    let props: Vec<String> = (0..2_000)
        .map(|i| format!("\"p{i}\":{{\"type\":\"integer\"}}"))
        .collect();
    let refs = vec!["{\"$ref\":\"#/definitions/big\"}"; 5_000].join(",");
    let bomb = format!(
        "{{\"definitions\":{{\"big\":{{\"type\":\"object\",\"properties\":{{{}}}}}}},\
         \"allOf\":[{refs}]}}",
        props.join(",")
    );
    work_done();
    let err = JsonSchema::parse(&bomb).unwrap_err();
    assert!(err.contains("allOf of too many"), "{err}");
    // Counted, not timed: collecting stops within one reference past the node limit (10^7
    // properties before the limit).
    let collected = work_done();
    assert!(
        collected <= crate::formats::json_schema::MAX_NODES + 2_000,
        "{collected} properties collected"
    );
    let branches: Vec<String> = (0..8)
        .map(|b| {
            let p: Vec<String> = (0..1_000)
                .map(|i| format!("\"b{b}_{i}\":{{\"type\":\"integer\"}}"))
                .collect();
            format!("{{\"type\":\"object\",\"properties\":{{{}}}}}", p.join(","))
        })
        .collect();
    let wide = format!("{{\"allOf\":[{}]}}", branches.join(","));
    work_done();
    let payload: serde_json::Map<String, serde_json::Value> = (0..8)
        .flat_map(|b| {
            (0..1_000).map(move |i| (format!("b{b}_{i}"), serde_json::json!(b * 1_000 + i)))
        })
        .collect();
    // The error cut short: it may quote the 100 KB schema.
    let row = row(&wide, &serde_json::Value::Object(payload).to_string())
        .map_err(|e| e.chars().take(300).collect::<String>())
        .unwrap();
    assert_eq!(row["b7_999"], 7_999);
    assert_eq!(row.as_object().unwrap().len(), 8_000);
    // Each property collected once (and each found by its name in a map).
    assert_eq!(work_done(), 8_000);
}

/// Issue 72: `{"type": [3,000 × "string"], "default": "<900 KB>"}` made one node per type
/// branch, each holding its own written copy of the default (2.6 GB; the process aborted).
/// Scaled down: 300 branches of a 10 KB default. The default is now written once, shared by
/// the branches (one `Arc`), and the schema weighs about the default once.
#[test]
fn a_type_list_of_one_default_holds_it_once() {
    let default = "d".repeat(10_000);
    let types = vec!["\"string\""; 300].join(",");
    let schema = format!(r#"{{"type":[{types}],"default":"{default}"}}"#);
    let s = JsonSchema::parse(&schema).unwrap();
    let defaults: Vec<&Arc<str>> = s.nodes.iter().filter_map(|n| n.default.as_ref()).collect();
    assert_eq!(defaults.len(), 300);
    assert!(defaults.iter().all(|d| Arc::ptr_eq(d, defaults[0])));
    assert!(
        s.weight() < 10_000 + 128 * s.nodes.len(),
        "{} bytes held by {} nodes",
        s.weight(),
        s.nodes.len()
    );
    // Property names too: 300 structs of one 10 KB property name hold the name once.
    let name = "n".repeat(10_000);
    let types = vec!["\"object\""; 300].join(",");
    let schema = format!(r#"{{"type":[{types}],"properties":{{"{name}":{{"type":"string"}}}}}}"#);
    let s = JsonSchema::parse(&schema).unwrap();
    assert!(
        s.weight() < 10_000 + 128 * s.nodes.len(),
        "{} bytes held by {} nodes",
        s.weight(),
        s.nodes.len()
    );
}

/// Issue 72, without duplicate types (753 MB): distinct objects, each `{}` by default, whose
/// properties refer to one large defaulted schema, each wrote its own copy of the large
/// default. The schema's defaults are now one budget ([`MAX_DEFAULTS_TOTAL`], text read and
/// written): past it the schema is refused, naming the limit, having built no more than it.
#[test]
fn defaults_multiplied_by_references_are_refused_at_the_schemas_total() {
    let big = "b".repeat(100_000);
    let objects = vec![
        r##"{"type":"object","default":{},"properties":{
        "a":{"$ref":"#/definitions/big"},"b":{"$ref":"#/definitions/big"}}}"##;
        200
    ];
    let schema = format!(
        r#"{{"definitions":{{"big":{{"type":"string","default":"{big}"}}}},
        "type":"object","properties":{{"x":{{"anyOf":[{}]}}}}}}"#,
        objects.join(",")
    );
    let err = JsonSchema::parse(&schema).unwrap_err();
    assert!(
        err.contains("defaults take more than 4194304 bytes"),
        "{err}"
    );
    // Below the total, defaults through references are written as before.
    let few = format!(
        r#"{{"definitions":{{"big":{{"type":"string","default":"{big}"}}}},
        "type":"object","properties":{{"x":{{"anyOf":[{}]}}}}}}"#,
        objects[..4].join(",")
    );
    let s = JsonSchema::parse(&few).unwrap();
    assert!(s.weight() < 4 << 20, "{} bytes held", s.weight());
    let row = row(&few, r#"{"x":{"a":"q"}}"#).unwrap();
    let chosen = &row["x"]["io.confluent.connect.json.OneOf.field.0"];
    assert_eq!(chosen["a"], "q");
    assert_eq!(chosen["b"].as_str().map(str::len), Some(100_000));
}

/// Issue 72: an `allOf` of 1,200 `$ref`s to an object with a large `anyOf` built the target's
/// whole view (every branch) for each reference: 36 s of CPU on an async worker for 823 KB.
/// Views are now built a schema object at a time, when visited, and each `$ref` text is
/// resolved once: the same shape compiles in a few thousand steps.
#[test]
fn an_all_of_of_references_to_a_large_any_of_compiles_in_little_work() {
    let branches = vec![r#"{"type":"null"}"#; 20_000].join(",");
    let refs = vec![r##"{"$ref":"#/definitions/big"}"##; 1_200].join(",");
    let schema = format!(
        r#"{{"definitions":{{"big":{{"type":"object","properties":{{"a":{{"type":"string"}}}},
        "anyOf":[{branches}]}}}},"allOf":[{refs}]}}"#
    );
    let s = JsonSchema::parse(&schema).unwrap();
    assert!(s.compile_steps() < 10_000, "{} steps", s.compile_steps());
    assert_eq!(ok(&schema, r#"{"a":"x"}"#)["a"], "x");
    // Compiling the large anyOf itself is paid once, however many references reach it.
    let schema = format!(
        r#"{{"definitions":{{"big":{{"anyOf":[{branches},{{"type":"string"}}]}}}},
        "type":"object","properties":{{"a":{{"allOf":[{refs}]}}}}}}"#
    );
    let s = JsonSchema::parse(&schema).unwrap();
    assert!(s.compile_steps() < 30_000, "{} steps", s.compile_steps());
    // A shape that would repeat large work past the bound is refused, naming it: a `type`
    // list of 3,000 objects, each a property holding an `anyOf` of 2,000 branches.
    let nulls = vec![r#"{"type":"null"}"#; 2_000].join(",");
    let types = vec!["\"object\""; 3_000].join(",");
    let schema = format!(r#"{{"type":[{types}],"properties":{{"p":{{"anyOf":[{nulls}]}}}}}}"#);
    let err = JsonSchema::parse(&schema).unwrap_err();
    assert!(err.contains("steps to compile"), "{err}");
}

/// The issue's attacks at full size, measured (opt-in: `SNOWPIPE_MEASURE_SCHEMA=types`,
/// `allof` or `refs`; run a release build under `/usr/bin/time -v` for the peak RSS).
#[test]
fn measure_the_full_size_schema_attacks() {
    let Ok(which) = std::env::var("SNOWPIPE_MEASURE_SCHEMA") else {
        return;
    };
    let schema = match which.as_str() {
        // 936 KB: 3,000 × "string" and a 900 KB default.
        "types" => format!(
            r#"{{"type":[{}],"default":"{}"}}"#,
            vec!["\"string\""; 3_000].join(","),
            "d".repeat(900_000)
        ),
        // 823 KB: an allOf of 1,200 $refs to an object with an anyOf of 49,000 branches.
        "allof" => format!(
            r#"{{"definitions":{{"big":{{"type":"object","properties":{{"a":{{"type":"string"}}}},
            "anyOf":[{}]}}}},"allOf":[{}]}}"#,
            vec![r#"{"type":"null"}"#; 49_000].join(","),
            vec![r##"{"$ref":"#/definitions/big"}"##; 1_200].join(",")
        ),
        // Distinct objects defaulting to `{}` with two references to a 450 KB default each.
        _ => format!(
            r#"{{"definitions":{{"big":{{"type":"string","default":"{}"}}}},
            "type":"object","properties":{{"x":{{"anyOf":[{}]}}}}}}"#,
            "b".repeat(450_000),
            vec![
                r##"{"type":"object","default":{},"properties":{"a":{"$ref":"#/definitions/big"},"b":{"$ref":"#/definitions/big"}}}"##;
                4_000
            ]
            .join(",")
        ),
    };
    let t = std::time::Instant::now();
    let outcome = JsonSchema::parse(&schema);
    eprintln!(
        "{which}: {} bytes of schema, {:?}: {}",
        schema.len(),
        t.elapsed(),
        match outcome {
            Ok(s) => format!("{} bytes held, {} steps", s.weight(), s.compile_steps()),
            Err(e) => e.chars().take(200).collect(),
        }
    );
}

thread_local! {
    /// Map entries put and `allOf` properties collected on this thread (tests count the work
    /// instead of timing it).
    static WORK: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Adds one step to this thread's work.
pub(super) fn count_work() {
    WORK.with(|w| w.set(w.get() + 1));
}

/// This thread's work since the last call.
fn work_done() -> usize {
    WORK.with(|w| w.replace(0))
}
