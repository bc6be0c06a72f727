//! Hostile schemas as a registry could serve them, per format and class: what a careless or
//! malicious producer may register (nothing checks a schema's cost before it is stored).
//! Each returns the schema's text and, for the classes that claim them, its `references`.

use serde_json::{json, Value};
use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::Rng;

use super::Format;

/// A hostile schema: its text and its `references` (if it claims any).
pub(super) type Hostile = (String, Option<Value>);

/// The largest schema text written (the registry's answer must stay under the sink's 1 MiB, so
/// that the parser, not the answer's cap, meets it).
const MAX_TEXT: u64 = 900_000;

/// A hostile schema of `format` and `class`.
pub(super) fn schema(format: Format, class: Class, rng: &mut Rng) -> Hostile {
    match format {
        Format::Avro => avro(class, rng),
        Format::Protobuf => protobuf(class, rng),
        Format::Json => json_schema(class, rng),
    }
}

/// References in a cycle: `a` imports `b` imports `a` (the registry resolves subjects; the
/// sink does not follow references at all).
fn cyclic_references(names: [&str; 2]) -> Value {
    json!([
        {"name": names[0], "subject": names[1], "version": 1},
        {"name": names[1], "subject": names[0], "version": 1}
    ])
}

fn avro(class: Class, rng: &mut Rng) -> Hostile {
    let record = |name: &str, fields: &str| {
        format!(r#"{{"type":"record","name":"{name}","fields":[{fields}]}}"#)
    };
    let text = match class {
        // A huge default, or a huge doc.
        Class::Size => {
            let n = rng.range(100_000, MAX_TEXT - 200) as usize;
            let mut d = Vec::new();
            gen::long_json_string(&mut d, n, rng);
            let d = String::from_utf8(d).unwrap();
            let key = if rng.one_in(2) { "default" } else { "doc" };
            record(
                "S",
                &format!(r#"{{"name":"id","type":"string","{key}":{d}}}"#),
            )
        }
        // Records (or arrays, maps, unions) nested thousands deep.
        Class::Depth => {
            let depth = rng.range(100, 20_000) as usize;
            let (open, close): (String, String) = match rng.below(3) {
                0 => (
                    (0..depth)
                        .map(|i| {
                            format!(
                                r#"{{"type":"record","name":"R{i}","fields":[{{"name":"f","type":"#
                            )
                        })
                        .collect(),
                    "}]}".repeat(depth),
                ),
                1 => (
                    r#"{"type":"array","items":"#.repeat(depth),
                    "}".repeat(depth),
                ),
                _ => (r#"["null","#.repeat(depth), "]".repeat(depth)),
            };
            format!("{open}\"long\"{close}")
        }
        // A huge enum, a huge union of named types, or aliases and names that multiply.
        Class::Count => {
            let n = rng.range(1_000, 40_000);
            match rng.below(3) {
                0 => {
                    let symbols: Vec<String> = (0..n).map(|i| format!("\"S{i}\"")).collect();
                    format!(
                        r#"{{"type":"enum","name":"E","symbols":[{}]}}"#,
                        symbols.join(",")
                    )
                }
                1 => {
                    let branches: Vec<String> = (0..n)
                        .map(|i| format!(r#"{{"type":"fixed","name":"F{i}","size":1}}"#))
                        .collect();
                    format!("[{}]", branches.join(","))
                }
                _ => {
                    let aliases: Vec<String> =
                        (0..n.min(5_000)).map(|i| format!("\"a{i}\"")).collect();
                    let aliases = aliases.join(",");
                    // As many fields as fit: each a record with every alias.
                    let fields: Vec<String> = (0..(800_000 / (aliases.len() + 80)).max(1))
                        .map(|i| {
                            format!(
                                r#"{{"name":"f{i}","type":{{"type":"record","name":"N{i}","aliases":[{aliases}],"fields":[]}}}}"#
                            )
                        })
                        .collect();
                    record("C", &fields.join(","))
                }
            }
        }
        // Sizes and precisions at the edges.
        Class::Number => {
            let n = gen::edge_number(rng);
            match rng.below(3) {
                0 => format!(r#"{{"type":"fixed","name":"F","size":{n}}}"#),
                1 => format!(
                    r#"{{"type":"bytes","logicalType":"decimal","precision":{n},"scale":2}}"#
                ),
                _ => record(
                    "N",
                    &format!(r#"{{"name":"id","type":"long","default":{n}}}"#),
                ),
            }
        }
        // Invalid JSON, control characters in names, a byte order mark.
        Class::Encoding => match rng.below(3) {
            0 => r#"{"type":"record","name":"T","fields":[{"name":"id","type":"lo"#.to_owned(),
            1 => {
                let c = String::from_utf8_lossy(gen::control_chars(rng)).into_owned();
                record(&format!("T{c}"), r#"{"name":"id","type":"long"}"#)
            }
            _ => format!("\u{feff}{}", record("T", r#"{"name":"id","type":"long"}"#)),
        },
        // A named type that names itself, a name never defined, references in a cycle.
        Class::Claim => match rng.below(3) {
            0 => record(
                "L",
                r#"{"name":"next","type":["null","L"]},{"name":"id","type":"long"}"#,
            ),
            1 => record("X", r#"{"name":"id","type":"Missing"}"#),
            _ => {
                let t = record(
                    "Y",
                    r#"{"name":"a","type":"ns.A"},{"name":"b","type":"ns.B"}"#,
                );
                return (t, Some(cyclic_references(["ns.A", "ns.B"])));
            }
        },
        // A name defined twice, a primitive's name as a record's, a field twice.
        Class::Reserved => match rng.below(3) {
            0 => record(
                "D",
                r#"{"name":"a","type":{"type":"fixed","name":"D2","size":1}},{"name":"b","type":{"type":"enum","name":"D2","symbols":["X"]}}"#,
            ),
            1 => record("long", r#"{"name":"id","type":"long"}"#),
            _ => record(
                "F",
                r#"{"name":"id","type":"long"},{"name":"id","type":"string"}"#,
            ),
        },
    };
    (text, None)
}

fn protobuf(class: Class, rng: &mut Rng) -> Hostile {
    let text = match class {
        // A name of hundreds of kilobytes.
        Class::Size => {
            let n = rng.range(10_000, MAX_TEXT - 100) as usize;
            let name = format!("M{}", "m".repeat(n));
            format!("syntax = \"proto3\"; message {name} {{ int64 id = 1; }}")
        }
        // Messages (or braces) nested thousands deep.
        Class::Depth => {
            let depth = rng.range(50, 20_000) as usize;
            let open: String = (0..depth).map(|i| format!("message N{i} {{ ")).collect();
            format!(
                "syntax = \"proto3\"; {open}int64 id = 1; {}",
                "} ".repeat(depth)
            )
        }
        // Many fields, or many messages.
        Class::Count => {
            let n = rng.range(1_000, 30_000);
            if rng.one_in(2) {
                let fields: String = (1..=n).map(|i| format!("int32 f{i} = {i}; ")).collect();
                format!("syntax = \"proto3\"; message G {{ {fields}}}")
            } else {
                let msgs: String = (0..n).map(|i| format!("message M{i} {{ }} ")).collect();
                format!("syntax = \"proto3\"; message G {{ int64 id = 1; }} {msgs}")
            }
        }
        // Field numbers at the edges: 0, negative, past 2^29, in the reserved range, huge.
        Class::Number => {
            let n = *rng.pick(&["0", "-1", "536870912", "19000", "4294967296"]);
            let n = if rng.one_in(3) {
                gen::edge_number(rng)
            } else {
                n.to_owned()
            };
            format!("syntax = \"proto3\"; message G {{ int64 id = {n}; }}")
        }
        // A schema that is not text: control characters, NUL, replacement characters.
        Class::Encoding => {
            let n = rng.range(16, 4_096) as usize;
            let mut bytes = rng.bytes(n);
            bytes.extend_from_slice(gen::control_chars(rng));
            bytes.push(0);
            String::from_utf8_lossy(&bytes).into_owned()
        }
        // Imports in a cycle (as references), an import nobody serves, a syntax error.
        Class::Claim => match rng.below(3) {
            0 => {
                let t = "syntax = \"proto3\"; import \"a.proto\"; message G { int64 id = 1; }";
                return (
                    t.to_owned(),
                    Some(cyclic_references(["a.proto", "b.proto"])),
                );
            }
            1 => "syntax = \"proto3\"; import \"nowhere.proto\"; message G { int64 id = 1; }"
                .to_owned(),
            _ => "syntax = \"proto3\"; message G { int64 id = 1; ".to_owned(),
        },
        // A field twice, a number twice, a syntax nobody knows.
        Class::Reserved => match rng.below(3) {
            0 => "syntax = \"proto3\"; message G { int64 id = 1; string id = 2; }".to_owned(),
            1 => "syntax = \"proto3\"; message G { int64 id = 1; string b = 1; }".to_owned(),
            _ => "syntax = \"proto4\"; message G { int64 id = 1; }".to_owned(),
        },
    };
    (text, None)
}

fn json_schema(class: Class, rng: &mut Rng) -> Hostile {
    let object = |props: &str| format!(r#"{{"type":"object","properties":{{{props}}}}}"#);
    let text = match class {
        // A huge default, or defaults multiplied by references.
        Class::Size => {
            if rng.one_in(2) {
                let mut d = Vec::new();
                gen::long_json_string(&mut d, rng.range(100_000, MAX_TEXT - 200) as usize, rng);
                object(&format!(
                    r#""id":{{"type":"string","default":{}}}"#,
                    String::from_utf8(d).unwrap()
                ))
            } else {
                let d = "d".repeat(rng.range(100_000, 400_000) as usize);
                let props: Vec<String> = (0..rng.range(10, 100))
                    .map(|i| format!(r##""p{i}":{{"$ref":"#/definitions/big"}}"##))
                    .collect();
                format!(
                    r#"{{"type":"object","definitions":{{"big":{{"type":"string","default":"{d}"}}}},"properties":{{{}}}}}"#,
                    props.join(",")
                )
            }
        }
        // A `$ref` chain thousands long, or properties nested thousands deep.
        Class::Depth => {
            let n = rng.range(100, 20_000);
            if rng.one_in(2) {
                let defs: Vec<String> = (0..n)
                    .map(|i| format!(r##""d{i}":{{"$ref":"#/definitions/d{}"}}"##, i + 1))
                    .chain([format!(r#""d{n}":{{"type":"integer"}}"#)])
                    .collect();
                format!(
                    r##"{{"definitions":{{{}}},"type":"object","properties":{{"id":{{"$ref":"#/definitions/d0"}}}}}}"##,
                    defs.join(",")
                )
            } else {
                let open = r#"{"type":"object","properties":{"a":"#.repeat(n as usize);
                format!(r#"{open}{{"type":"integer"}}{}"#, "}}".repeat(n as usize))
            }
        }
        // `anyOf` / `allOf` doubling at every level: 2^n if expanded.
        Class::Count => {
            let n = rng.range(20, 2_000);
            let key = if rng.one_in(2) { "anyOf" } else { "allOf" };
            let defs: Vec<String> = (0..n)
                .map(|i| {
                    let next = format!(r##"{{"$ref":"#/definitions/a{}"}}"##, i + 1);
                    format!(r#""a{i}":{{"{key}":[{next},{next}]}}"#)
                })
                .chain([format!(r#""a{n}":{{"type":"object","properties":{{"id":{{"type":"integer"}}}}}}"#)])
                .collect();
            format!(
                r##"{{"definitions":{{{}}},"$ref":"#/definitions/a0"}}"##,
                defs.join(",")
            )
        }
        Class::Number => {
            let n = gen::edge_number(rng);
            let key = *rng.pick(&["minimum", "maxLength", "multipleOf", "default", "maxItems"]);
            object(&format!(r#""id":{{"type":"integer","{key}":{n}}}"#))
        }
        Class::Encoding => match rng.below(3) {
            0 => r#"{"type":"object","properties":{"id":{"type":"integ"#.to_owned(),
            1 => {
                let c = String::from_utf8_lossy(gen::control_chars(rng)).into_owned();
                object(&format!(r#""id{}":{{"type":"integer"}}"#, c.escape_default()))
            }
            _ => format!("\u{feff}{}", object(r#""id":{"type":"integer"}"#)),
        },
        // `$ref` cycles, a `$ref` to nowhere, a `$ref` to another host.
        Class::Claim => match rng.below(3) {
            0 => r##"{"definitions":{"a":{"$ref":"#/definitions/b"},"b":{"$ref":"#/definitions/a"}},"type":"object","properties":{"id":{"$ref":"#/definitions/a"}}}"##.to_owned(),
            1 => object(r##""id":{"$ref":"#/definitions/nowhere"}"##),
            _ => object(r#""id":{"$ref":"http://127.0.0.1:9/other.json"}"#),
        },
        // Patterns that backtrack, the sink's own column as a property, a key twice.
        Class::Reserved => match rng.below(3) {
            0 => object(r#""id":{"type":"string","pattern":"^(a+)+$"},"b":{"patternProperties":{"(a|aa)*c":{}}}"#),
            1 => object(r#""RECORD_METADATA":{"type":"string"},"id":{"type":"integer"}"#),
            _ => object(r#""id":{"type":"integer"},"id":{"type":"string"}"#),
        },
    };
    (text, None)
}
