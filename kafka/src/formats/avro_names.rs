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
//! **How.** [`check`] walks the schema's JSON once, bottom up: each named type costs its
//! text's size (estimated from the JSON value) once for its name and once for each alias,
//! and the sum may be at most [`MAX_COPIED_BYTES`]. A schema within it parses as before;
//! past it, the schema is refused with the figures, as any schema that cannot be used is
//! (its messages become dead letters naming the reason).

use serde_json::Value;

/// The most schema text the parser may copy for names and aliases: a 0.9 MB schema with an
/// alias on its root (1.8 MiB) parsed in 0.11 s with the test process peaking at 72 MB
/// (measured, a release build). A schema whose aliases or nesting multiply its size does not
/// fit.
pub const MAX_COPIED_BYTES: u64 = 2 << 20;

/// Refuses a schema whose names and aliases would copy more than [`MAX_COPIED_BYTES`].
///
/// # Errors
/// The reason, with the sum and the limit. Text that is not JSON passes: the parser refuses
/// it with its own message.
pub fn check(text: &str) -> Result<(), String> {
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return Ok(());
    };
    let mut copied = 0u64;
    walk(&json, &mut copied);
    if copied > MAX_COPIED_BYTES {
        return Err(format!(
            "not an Avro schema this sink parses: its named types and their aliases would copy \
             {copied} bytes of schema while it is parsed, more than the sink's {} MiB (too \
             many aliases, or large types named at many levels)",
            MAX_COPIED_BYTES >> 20
        ));
    }
    Ok(())
}

/// The estimated text size of `value`, adding to `copied` what its named types cost.
fn walk(value: &Value, copied: &mut u64) -> u64 {
    match value {
        Value::Null | Value::Bool(_) | Value::Number(_) => 8,
        Value::String(s) => s.len() as u64 + 2,
        Value::Array(items) => 2 + items.iter().map(|v| 1 + walk(v, copied)).sum::<u64>(),
        Value::Object(map) => {
            let size = 2 + map
                .iter()
                .map(|(k, v)| k.len() as u64 + 4 + walk(v, copied))
                .sum::<u64>();
            let named = matches!(
                map.get("type").and_then(Value::as_str),
                Some("record" | "error" | "enum" | "fixed")
            ) && map.contains_key("name");
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
mod tests {
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
        let t = std::time::Instant::now();
        let err = crate::formats::avro::AvroSchema::parse(&bomb).unwrap_err();
        assert!(err.contains("MiB") && err.contains("aliases"), "{err}");
        assert!(
            t.elapsed() < std::time::Duration::from_secs(5),
            "{:?}",
            t.elapsed()
        );
        let mut copied = 0;
        let text = record(1_000, 0);
        let size = walk(&serde_json::from_str(&text).unwrap(), &mut copied);
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
}
