//! The names of a registered Avro schema, checked before `apache-avro` parses it.
//!
//! **Why.** `apache-avro` (0.21) validates a named type's name, its aliases and the name of a
//! field's type with `unwrap()` (`Name::parse`, `aliases`, `get_schema_type_name` in its
//! `schema.rs`): a schema whose record is named `"T\u007f"` panics the thread that parses it,
//! where every other invalid schema is an error. The standing suite found it
//! (`hostile_registry_schemas`, docs/SECURITY.md "Found by the standing suite"): the panic
//! was caught by the blocking pool, but it was a panic on the sink's threads, printed as
//! one, and the failure was not remembered, so each message of the id parsed (and panicked)
//! again.
//!
//! **How.** [`check`] walks the schema's positions (the root, `type`, `items`, `values`, union
//! branches, each field's `type`; never a `default` or another property's value) and refuses
//! a `name`, an alias or a `namespace` that the Avro specification does not allow, naming it
//! (escaped, at most 100 characters), as any schema that cannot be used is refused.

use serde_json::Value;

/// Refuses a schema with a name, alias or namespace that is not an Avro one.
///
/// # Errors
/// The reason, naming the name. Text that is not JSON passes: the parser refuses it with its
/// own message.
pub(crate) fn check(text: &str) -> Result<(), String> {
    let Ok(json) = serde_json::from_str::<Value>(text) else {
        return Ok(());
    };
    walk(&json)
}

/// An identifier: `[A-Za-z_][A-Za-z0-9_]*`.
fn ident(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A namespace: identifiers joined by dots, or nothing.
fn namespace(s: &str) -> bool {
    s.is_empty() || s.split('.').all(ident)
}

/// A full name as `apache-avro` takes it: an identifier, after a namespace and a dot (the
/// namespace may be empty: `.name`).
fn full_name(s: &str) -> bool {
    match s.rsplit_once('.') {
        Some((ns, name)) => namespace(ns) && ident(name),
        None => ident(s),
    }
}

/// The reason for refusing `value`, a `what` that is not an Avro one.
fn refuse(what: &str, value: &str) -> String {
    let shown: String = value
        .chars()
        .take(100)
        .collect::<String>()
        .escape_debug()
        .to_string();
    format!(
        "not an Avro schema: the {what} \"{shown}\" is not an Avro name (letters, digits and \
         _, not starting with a digit; a namespace joins such names with dots)"
    )
}

/// Checks the schema at `value` and the schemas inside it.
fn walk(value: &Value) -> Result<(), String> {
    match value {
        Value::Array(branches) => branches.iter().try_for_each(walk),
        Value::Object(map) => {
            if let Some(name) = map.get("name").and_then(Value::as_str) {
                if !full_name(name) {
                    return Err(refuse("name", name));
                }
            }
            if let Some(ns) = map.get("namespace").and_then(Value::as_str) {
                if !namespace(ns) {
                    return Err(refuse("namespace", ns));
                }
            }
            for alias in map
                .get("aliases")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(a) = alias.as_str().filter(|a| !full_name(a)) {
                    return Err(refuse("alias", a));
                }
            }
            for key in ["type", "items", "values"] {
                if let Some(inner) = map.get(key) {
                    walk(inner)?;
                }
            }
            let fields = map.get("fields").and_then(Value::as_array);
            for field in fields.into_iter().flatten() {
                // A field's own name and aliases are the parser's to check (it returns errors
                // for them); its type is a schema.
                if let Some(t) = field.get("type") {
                    walk(t)?;
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use crate::formats::avro::AvroSchema;

    /// Every place `apache-avro` unwraps a name: a named type's name, its alias (qualified by
    /// its namespace), a field's type's name; each refused naming it, escaped, never a panic.
    /// Valid names (with namespaces, a leading dot) and a default holding an object with a
    /// `name` parse.
    #[test]
    fn names_the_parser_would_panic_on_are_refused_naming_them() {
        let bad = [
            (
                r#"{"type":"record","name":"T\u007f","fields":[]}"#,
                "T\\u{7f}",
            ),
            (r#"{"type":"enum","name":"1E","symbols":["A"]}"#, "1E"),
            (r#"{"type":"fixed","name":"a b","size":1}"#, "a b"),
            (
                r#"{"type":"record","name":"R","aliases":["x-y"],"fields":[]}"#,
                "x-y",
            ),
            (
                r#"{"type":"record","name":"R","namespace":"b c","aliases":["x"],"fields":[]}"#,
                "b c",
            ),
            (
                r#"{"type":"record","name":"R","fields":[{"name":"f","type":{"type":"array","name":"é","items":"int"}}]}"#,
                "é",
            ),
            (
                r#"["null",{"type":"record","name":"a..b","fields":[]}]"#,
                "a..b",
            ),
        ];
        for (text, name) in bad {
            let why = std::panic::catch_unwind(|| AvroSchema::parse(text).map(|_| ()))
                .unwrap_or_else(|_| panic!("a panic on {text}"))
                .expect_err(text);
            assert!(why.contains(&format!("\"{name}\"")), "{text}: {why}");
        }
        for ok in [
            r#"{"type":"record","name":"a.b.R","aliases":["Q",".S"],"fields":[{"name":"f","type":{"type":"record","name":"P","fields":[{"name":"name","type":"string"}]},"default":{"name":"x y"}}]}"#,
            r#"{"type":"record","name":".R","namespace":"","fields":[]}"#,
            r#"{"type":"record","name":"R","fields":[{"name":"f","type":{"type":"map","values":{"type":"fixed","name":"F","size":2}}}]}"#,
        ] {
            AvroSchema::parse(ok).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }
}
