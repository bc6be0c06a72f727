//! What parsing a registered Avro schema will cost, judged on its JSON before `apache-avro`
//! parses it (docs/SECURITY.md, "Hostile schemas").
//!
//! **Why.** `apache-avro` (0.21) keeps a copy of each named type (record, enum, fixed) under
//! its name and another under each of its aliases, while it parses. A record of 3,000 fields
//! with 3,000 aliases is a 112 KB schema, and took 14.7 s and 4.6 GB to parse (measured, a
//! release build); a 1 MB answer of the registry would ask for hundreds of GB. Named records
//! nested 40 deep around 600 KB of fields took 395 MB. The schema comes from the registry, so
//! from whoever may register one, and is parsed on the sink's runtime threads.
//!
//! One more copy of the same kind (issue 72): each reference to a named type (a union of
//! thousands of `"A"`, all one type: `apache-avro` refuses repeated unnamed types only) holds
//! its full name, the enclosing namespace included: 50,000 references read in a 10 KB
//! namespace, a 210 KB schema, took 1.0 GB and 1.25 s to parse (measured, release). (A
//! field's `default` is also copied for each branch of its union while the parser looks for
//! the branch it fits, but one copy at a time: 3,000 branches and a 900 KB default took 0.19 s
//! and 11 MB, so that is not counted.)
//!
//! **How.** [`check`] walks the schema's JSON once, bottom up: each named type costs its
//! text's size (estimated from the JSON value) once for its name and once for each alias, each
//! reference its name and the namespace it is read in, and the sum may be at most
//! [`MAX_COPIED_BYTES`]. A schema within it parses as before;
//! past it, the schema is refused with the figures, as any schema that cannot be used is
//! (its messages become dead letters naming the reason).

use serde_json::Value;

/// The most schema text the parser may copy for names and aliases: a 0.9 MB schema with an
/// alias on its root (1.8 MiB) parsed in 0.11 s with the test process peaking at 72 MB
/// (measured, a release build). A schema whose aliases or nesting multiply its size does not
/// fit.
pub(crate) const MAX_COPIED_BYTES: u64 = 2 << 20;

/// Refuses a schema whose names and aliases would copy more than [`MAX_COPIED_BYTES`].
///
/// # Errors
/// The reason, with the sum and the limit. Text that is not JSON passes: the parser refuses
/// it with its own message.
pub(crate) fn check(text: &str) -> Result<(), String> {
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return Ok(());
    };
    let mut copied = 0u64;
    walk(&json, 0, &mut copied);
    if copied > MAX_COPIED_BYTES {
        return Err(format!(
            "not an Avro schema this sink parses: its named types, their aliases and the \
             references to them would copy {copied} bytes of schema while it is parsed, more \
             than the sink's {} MiB (too many aliases, large types named at many levels, or \
             many references in a long namespace)",
            MAX_COPIED_BYTES >> 20
        ));
    }
    Ok(())
}

/// Type names that are no reference to a named type.
const BUILT_IN: [&str; 14] = [
    "null", "boolean", "int", "long", "float", "double", "bytes", "string", "record", "error",
    "enum", "fixed", "array", "map",
];

/// What the references among the type or union `t` copy, read in a namespace of `ns` bytes.
fn references(t: &Value, ns: u64) -> u64 {
    let one = |v: &Value| match v.as_str() {
        Some(name) if !BUILT_IN.contains(&name) => ns + name.len() as u64 + 16,
        _ => 0,
    };
    match t {
        Value::Array(branches) => branches.iter().map(one).sum(),
        other => one(other),
    }
}

/// The estimated text size of `value` (in a namespace of `ns` bytes), adding to `copied` what
/// its named types and references cost.
fn walk(value: &Value, ns: u64, copied: &mut u64) -> u64 {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => s.len() as u64 + 2,
        Value::Array(items) => 2 + items.iter().map(|v| 1 + walk(v, ns, copied)).sum::<u64>(),
        Value::Object(map) => {
            let named = matches!(
                map.get("type").and_then(Value::as_str),
                Some("record" | "error" | "enum" | "fixed")
            ) && map.contains_key("name");
            // The namespace its parts are read in: its own, or its name's, or the enclosing.
            let ns = match (named, map.get("namespace").and_then(Value::as_str)) {
                (true, Some(own)) => own.len() as u64,
                (true, None) => map
                    .get("name")
                    .and_then(Value::as_str)
                    .and_then(|n| n.rfind('.'))
                    .map_or(ns, |dot| dot as u64),
                (false, _) => ns,
            };
            let size = 2 + map
                .iter()
                .map(|(k, v)| k.len() as u64 + 4 + walk(v, ns, copied))
                .sum::<u64>();
            for key in ["type", "items", "values"] {
                if let Some(t) = map.get(key) {
                    *copied = copied.saturating_add(references(t, ns));
                }
            }
            if named {
                let aliases = map
                    .get("aliases")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len) as u64;
                *copied = copied.saturating_add((1 + aliases).saturating_mul(size));
            }
            size
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    thread_local! {
        /// Schemas this thread gave `apache-avro`'s parser after the checks: a refused one
        /// must cost none (the work is counted, not timed).
        pub(crate) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
    }
    use super::*;

    fn record(fields: usize, aliases: usize) -> String {
        let fields: Vec<String> = (0..fields)
            .map(|i| format!("{{\"name\":\"f{i}\",\"type\":\"int\"}}"))
            .collect();
        let aliases: Vec<String> = (0..aliases).map(|i| format!("\"A{i}\"")).collect();
        format!(
            "{{\"type\":\"record\",\"name\":\"R\",\"aliases\":[{}],\"fields\":[{}]}}",
            aliases.join(","),
            fields.join(",")
        )
    }

    /// The 112 KB schema that took 14.7 s and 4.6 GB is refused at once, naming the sum; the
    /// estimate is within a few percent of the text's size; ordinary schemas with a few
    /// aliases, and a 0.9 MB one with an alias on its root, parse.
    #[test]
    fn aliases_and_names_that_multiply_a_schema_are_refused_before_parsing() {
        let bomb = record(3_000, 3_000);
        PARSES.with(|p| p.set(0));
        let err = crate::formats::avro::AvroSchema::parse(&bomb).unwrap_err();
        assert!(err.contains("MiB") && err.contains("aliases"), "{err}");
        // Refused by one walk of the text's JSON, before the parser ran (counted, not timed).
        assert_eq!(PARSES.with(std::cell::Cell::get), 0);
        let mut copied = 0;
        let text = record(1_000, 0);
        let size = walk(&serde_json::from_str(&text).unwrap(), 0, &mut copied);
        assert!(
            size.abs_diff(text.len() as u64) * 20 < text.len() as u64,
            "{size} vs {}",
            text.len()
        );
        assert_eq!(copied, size);
        for ok in [record(50, 3), record(30_000, 1)] {
            assert!(ok.len() < 1 << 20);
            crate::formats::avro::AvroSchema::parse(&ok).unwrap();
        }
        // Names nested around a large type: each level copies what it holds.
        let mut nested = record(20_000, 0);
        for d in 0..40 {
            nested = format!(
                "{{\"type\":\"record\",\"name\":\"N{d}\",\"fields\":[{{\"name\":\"x\",\"type\":{nested}}}]}}"
            );
        }
        let err = check(&nested).unwrap_err();
        assert!(err.contains("named at many levels"), "{err}");
    }

    /// A record in a namespace of `namespace` characters whose union field refers to its
    /// record `A` `branches` times, with a default of `default` characters.
    fn references(branches: usize, default: usize, namespace: usize) -> String {
        format!(
            r#"{{"type":"record","name":"R","namespace":"{}","fields":[
                {{"name":"a","type":{{"type":"record","name":"A","fields":[]}}}},
                {{"name":"u","type":[{}"string"],"default":"{}"}}]}}"#,
            "n".repeat(namespace),
            "\"A\",".repeat(branches),
            "d".repeat(default)
        )
    }

    /// Issue 72's shapes in Avro. `apache-avro` refuses a union of identical unnamed types, but
    /// not thousands of references to one named type, each holding the namespace it is read
    /// in. Scaled down (300 references in a 10 KB namespace; 50,000 in a 210 KB schema took
    /// 1.0 GB): refused before parsing, naming the cause; many references in a short
    /// namespace, and a large default on a union of many branches (copied one branch at a
    /// time), parse.
    #[test]
    fn references_that_multiply_a_namespace_are_refused() {
        let err = crate::formats::avro::AvroSchema::parse(&references(300, 1, 10_000)).unwrap_err();
        assert!(
            err.contains("MiB") && err.contains("long namespace"),
            "{err}"
        );
        for ok in [references(3_000, 1_000, 1), references(3_000, 1, 30)] {
            crate::formats::avro::AvroSchema::parse(&ok).unwrap();
        }
    }

    /// Issue 72's shapes in Avro at full size, measured (opt-in:
    /// `SNOWPIPE_MEASURE_SCHEMA=avro-default` or `avro-refs`; a release build under
    /// `/usr/bin/time -v`). `SNOWPIPE_MEASURE_RAW=1` parses without this module's check (the cost
    /// before it).
    #[test]
    fn measure_the_full_size_avro_attacks() {
        let Ok(which) = std::env::var("SNOWPIPE_MEASURE_SCHEMA") else {
            return;
        };
        let raw = std::env::var("SNOWPIPE_MEASURE_RAW").is_ok();
        let t = std::time::Instant::now();
        let text = match which.as_str() {
            "avro-default" => references(3_000, 900_000, 1),
            "avro-refs" => references(50_000, 1, 10_000),
            _ => return,
        };
        let outcome = if raw {
            apache_avro::Schema::parse_str(&text)
                .map(|_| ())
                .map_err(|e| e.to_string())
        } else {
            crate::formats::avro::AvroSchema::parse(&text).map(|_| ())
        };
        let size = text.len();
        eprintln!(
            "{which} (raw {raw}): {size} bytes, {:?}: {:?}",
            t.elapsed(),
            outcome.map_err(|e| e.chars().take(200).collect::<String>())
        );
    }
}
