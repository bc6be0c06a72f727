//! `--normalize-columns`: the connector's
//! `snowflake.compatibility.enable.column.identifier.normalization=true`. Each top-level key of
//! a row (its columns) is rewritten as Snowflake stores the identifier it names, as the
//! connector's `SqlIdentifierNormalizer` does (`snowflakedb/snowflake-kafka-connector` v4.1.0,
//! `internal/validation/SqlIdentifierNormalizer.java`; `kafka/docs/connector-compatibility.md`
//! §8): a quoted key (`"city"`, quotes included) loses its quotes and keeps its case (`""`
//! inside becomes `"`), any other key is upper-cased, its escaped spaces (`\ `) made plain.
//!
//! A row-layout option ([`crate::rows::layout::Layout::normalized`]): the worker asks the layout,
//! never `connector/`. Rows are rewritten only when a key changes; `RECORD_METADATA` and `RECORD_CONTENT` never do.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;

/// An unquoted identifier as Snowflake stores it (docs/protocol.md "Names"): upper-cased, as
/// Java's `toUpperCase` does (Unicode, so `straße` is `STRASSE`). The one place the sink folds
/// a name: tables of the topic-to-table map, the table and classic channel of a v3 migration,
/// and `--normalize-columns`' keys.
pub(crate) fn fold_unquoted(name: &str) -> String {
    name.to_uppercase()
}

/// `SqlIdentifierNormalizer.normalizeSqlIdentifier`.
pub(crate) fn identifier(key: &str) -> Cow<'_, str> {
    if let Some(inner) = key
        .strip_prefix('"')
        .and_then(|k| k.strip_suffix('"'))
        .filter(|_| key.len() >= 2)
    {
        // No single double quote inside: `""` pairs are escaped quotes.
        if !inner.replace("\"\"", "").contains('"') {
            return Cow::Owned(inner.replace("\"\"", "\""));
        }
    }
    let plain = if key.contains("\\ ") {
        Cow::Owned(key.replace("\\ ", " "))
    } else {
        Cow::Borrowed(key)
    };
    let upper = fold_unquoted(&plain);
    if upper == key {
        Cow::Borrowed(key)
    } else {
        Cow::Owned(upper)
    }
}

/// `row` (one JSON object) with its top-level keys normalized, or `None` when none changes (or
/// it is no object: such a row was refused before).
pub(crate) fn row(row: &[u8]) -> Option<Vec<u8>> {
    let map: BTreeMap<String, &RawValue> = serde_json::from_slice(row).ok()?;
    if map.keys().all(|k| identifier(k) == k.as_str()) {
        return None;
    }
    let mut out = Vec::with_capacity(row.len());
    out.push(b'{');
    // Two keys that normalize alike: the last in key order wins, as one map entry.
    let mut normalized: BTreeMap<String, &RawValue> = BTreeMap::new();
    for (k, v) in map {
        normalized.insert(identifier(&k).into_owned(), v);
    }
    for (i, (k, v)) in normalized.into_iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        // Writing into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut out, &k);
        out.push(b':');
        out.extend_from_slice(v.get().as_bytes());
    }
    out.push(b'}');
    Some(out)
}

/// `ndjson` (rows, one per line) with every row's keys normalized ([`row`]), or `None` when no
/// row changes.
pub(crate) fn ndjson(ndjson: &[u8]) -> Option<Vec<u8>> {
    let mut out: Option<Vec<u8>> = None;
    let mut start = 0;
    for line in ndjson.split_inclusive(|b| *b == b'\n') {
        let body = line.strip_suffix(b"\n").unwrap_or(line);
        match (row(body), &mut out) {
            (Some(new), o) => {
                let o = o.get_or_insert_with(|| {
                    let mut v = Vec::with_capacity(ndjson.len() + 64);
                    v.extend_from_slice(&ndjson[..start]);
                    v
                });
                o.extend_from_slice(&new);
                o.push(b'\n');
            }
            (None, Some(o)) => o.extend_from_slice(line),
            (None, None) => {}
        }
        start += line.len();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_as_the_connectors_normalizer() {
        // `SqlIdentifierNormalizerTest` and `SnowflakeSinkRecordTest` at v4.1.0.
        for (key, want) in [
            ("city", "CITY"),
            ("Country", "COUNTRY"),
            ("\"city\"", "city"),
            ("\"a\"\"b\"", "a\"b"),
            ("a\\ b", "A B"),
            ("ALREADY", "ALREADY"),
            ("\"a\"b\"", "\"A\"B\""),
            ("\"", "\""),
            ("", ""),
        ] {
            assert_eq!(identifier(key), want, "{key:?}");
        }
    }

    #[test]
    fn rows_change_only_where_a_key_does() {
        assert_eq!(row(br#"{"CITY":1,"RECORD_METADATA":{"a":1}}"#), None);
        let got = row(br#"{"RECORD_METADATA":{"topic":"t"},"city":"x","\"Zip\"":[1, 2]}"#).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&got).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"RECORD_METADATA":{"topic":"t"},"CITY":"x","Zip":[1,2]})
        );
        let lines = b"{\"A\":1}\n{\"b\":2}\n{\"C\":3}\n";
        assert_eq!(
            ndjson(lines).unwrap(),
            b"{\"A\":1}\n{\"B\":2}\n{\"C\":3}\n".to_vec()
        );
        assert_eq!(ndjson(b"{\"A\":1}\n"), None);
    }
}
