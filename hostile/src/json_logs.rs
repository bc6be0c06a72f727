//! The JSON log format's checks (`<PREFIX>LOG_FORMAT=json`), shared by every package's
//! `json_logs` tests: each stderr line is one JSON object with the logger's keys, and the
//! fatal error is the last line, an `ERROR` whose message and causes are fields.

use serde_json::Value;

/// Every line of `stderr`, each parsed as one JSON object with the logger's keys
/// (`timestamp`, `level`, `target`, `fields`).
///
/// # Panics
/// When a line is not such an object, or there is no line at all (the message quotes the
/// line and the whole of `stderr`).
pub fn json_lines(stderr: &str) -> Vec<Value> {
    let lines: Vec<Value> = stderr
        .lines()
        .map(|l| {
            let v: Value = serde_json::from_str(l)
                .unwrap_or_else(|e| panic!("a stderr line is not JSON ({e}): {l}\n{stderr}"));
            assert!(v.is_object(), "not an object: {l}");
            for key in ["timestamp", "level", "target", "fields"] {
                assert!(v.get(key).is_some(), "{key} missing: {l}");
            }
            v
        })
        .collect();
    assert!(!lines.is_empty(), "no stderr at all");
    lines
}

/// The fatal error of `lines`: the last line, an `ERROR` whose `message` and `causes` are
/// fields and whose `error` (when present) is the chain the text format prints. Returns the
/// line, the chain joined with `: `, and how many causes it has.
///
/// # Panics
/// When the last line is not such an error, or its `error` is not its chain.
pub fn fatal(lines: &[Value]) -> (&Value, String, usize) {
    let last = lines.last().expect("a line");
    assert_eq!(last["level"], "ERROR", "{last}");
    let fields = &last["fields"];
    let causes = fields["causes"].as_array().expect("causes");
    let mut chain = vec![fields["message"].as_str().expect("message")];
    chain.extend(causes.iter().map(|c| c.as_str().expect("a cause is text")));
    let joined = chain.join(": ");
    if let Some(error) = fields.get("error") {
        assert_eq!(error.as_str(), Some(joined.as_str()), "{last}");
    }
    (last, joined, causes.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fatal_errors_chain_is_its_message_and_causes() {
        let stderr = concat!(
            r#"{"timestamp":"t","level":"WARN","target":"x","fields":{"message":"w"}}"#,
            "\n",
            r#"{"timestamp":"t","level":"ERROR","target":"x","fields":{"message":"a","causes":["b","c"],"error":"a: b: c"}}"#,
        );
        let lines = json_lines(stderr);
        assert_eq!(lines.len(), 2);
        let (last, chain, causes) = fatal(&lines);
        assert_eq!((chain.as_str(), causes), ("a: b: c", 2));
        assert_eq!(last["fields"]["message"], "a");
    }

    #[test]
    #[should_panic(expected = "a stderr line is not JSON")]
    fn a_text_line_is_refused() {
        json_lines("2026-11-27T00:00:00Z ERROR x: a");
    }
}
