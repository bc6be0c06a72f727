//! The sink's own column in a `columns` row: a message value that carries a top-level
//! `RECORD_METADATA` of its own does not replace the sink's.
//!
//! With `--metadata` a `columns` row is `{"RECORD_METADATA":{…},` followed by the value's own
//! members (`row::write_candidate`). A value with a `RECORD_METADATA` key made the row name
//! the column twice; a parser that keeps the last key (the emulator did, so do most) stored
//! the producer's metadata (any topic, partition, offset and push time) instead of the sink's,
//! and `snowpipe-kafka audit` then took it for a copy of a real offset (issue 81).
//!
//! The sink's column wins, as in Snowflake's Kafka connector v4: its
//! `SnowflakeTableStreamingRecordMapper.processSnowflakeRecord` builds the row as a map of
//! the value's keys and then `put`s `RECORD_METADATA` over whatever the value had
//! (`snowflakedb/snowflake-kafka-connector`, `src/main/java/com/snowflake/kafka/connector/
//! records/SnowflakeTableStreamingRecordMapper.java`, commit 0957c9ca). The value's member is
//! turned into JSON white space in place ([`blank_forged_metadata`]), so the row keeps its
//! length and the rest of the value is untouched. Beyond v4 (whose map is case-sensitive), a
//! key that names the column in another case (`record_metadata`), escaped
//! (`"RECORD\u005fMETADATA"`) or quoted as `--normalize-columns` reads it
//! (`"\"RECORD_METADATA\""`) is blanked too: each would name the same column where keys match
//! columns ignoring case. Without `--metadata` the sink writes no such column and a value's
//! `RECORD_METADATA` is the producer's data, as in v4.

/// The sink's column.
const METADATA: &[u8] = b"RECORD_METADATA";

/// Turns every top-level member of `row` after its first (the sink's `RECORD_METADATA`) whose
/// key names `RECORD_METADATA` ([`names_metadata`]), with the comma before it, into spaces.
/// `row` must be one JSON object (checked before: `formats::json_text::one_line_json`).
/// Returns how many members were blanked. Linear in `row`'s length; a row with no `_` and no
/// `\` after its first member is not scanned at all.
pub(crate) fn blank_forged_metadata(row: &mut [u8], value_start: usize) -> usize {
    if !may_name_metadata(row.get(value_start..).unwrap_or_default()) {
        return 0;
    }
    let mut blanked = 0;
    let mut i = skip_ws(row, 0) + 1; // past `{`
    let mut comma: Option<usize> = None;
    let mut first = true;
    loop {
        i = skip_ws(row, i);
        if i >= row.len() || row[i] != b'"' {
            return blanked; // `}` (or not an object: nothing to do)
        }
        let key_end = string_end(row, i);
        let forged = !first && names_metadata(&row[i..key_end]);
        i = skip_ws(row, key_end) + 1; // past `:`
        i = value_end(row, skip_ws(row, i));
        if let (true, Some(c)) = (forged, comma) {
            row[c..i].fill(b' ');
            blanked += 1;
        }
        first = false;
        i = skip_ws(row, i);
        if row.get(i) == Some(&b',') {
            comma = Some(i);
            i += 1;
        } else {
            return blanked;
        }
    }
}

/// Whether `value` could hold a key naming `RECORD_METADATA`: an escape anywhere, or a `_`
/// between `RECORD` and `METADATA` (any case).
fn may_name_metadata(value: &[u8]) -> bool {
    memchr::memchr2_iter(b'_', b'\\', value).any(|at| {
        value[at] == b'\\'
            || (at >= 6
                && value[at - 6..at].eq_ignore_ascii_case(b"RECORD")
                && value
                    .get(at + 1..at + 9)
                    .is_some_and(|m| m.eq_ignore_ascii_case(b"METADATA")))
    })
}

/// Whether the JSON string `key` (quotes included) names `RECORD_METADATA`: its text, or its
/// text inside one pair of `"`, equal to it ignoring ASCII case.
fn names_metadata(key: &[u8]) -> bool {
    // Longer than the name with every character escaped (`\u0052`) and quoted: not it.
    if key.len() > 2 + 6 * (METADATA.len() + 2) {
        return false;
    }
    let text = if key.contains(&b'\\') {
        match serde_json::from_slice::<String>(key) {
            Ok(s) => s.into_bytes(),
            Err(_) => return false,
        }
    } else {
        key[1..key.len() - 1].to_vec()
    };
    let inner = text
        .strip_prefix(b"\"")
        .and_then(|t| t.strip_suffix(b"\""))
        .unwrap_or(&text);
    inner.eq_ignore_ascii_case(METADATA)
}

/// The first index at or after `i` that is not JSON white space.
fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while i < b.len() && matches!(b[i], b' ' | b'\t' | b'\n' | b'\r') {
        i += 1;
    }
    i
}

/// The index after the string starting at `i` (its `"`).
fn string_end(b: &[u8], i: usize) -> usize {
    let mut j = i + 1;
    while j < b.len() {
        match b[j] {
            b'\\' => j += 2,
            b'"' => return j + 1,
            _ => j += 1,
        }
    }
    b.len()
}

/// The index after the JSON value starting at `i`.
fn value_end(b: &[u8], i: usize) -> usize {
    match b.get(i) {
        Some(b'"') => string_end(b, i),
        Some(b'{' | b'[') => {
            let mut depth = 0usize;
            let mut j = i;
            while j < b.len() {
                match b[j] {
                    b'"' => {
                        j = string_end(b, j);
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return j + 1;
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
            b.len()
        }
        _ => {
            let mut j = i;
            while j < b.len() && !matches!(b[j], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
            {
                j += 1;
            }
            j
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const OURS: &str = r#"{"RECORD_METADATA":{"offset":7,"partition":0}"#;

    fn blank(value_members: &str) -> (String, usize) {
        let mut row = format!("{OURS},{value_members}").into_bytes();
        let n = blank_forged_metadata(&mut row, OURS.len() + 1);
        (String::from_utf8(row).unwrap(), n)
    }

    /// Every spelling of the key is blanked with its comma; the row stays one JSON object
    /// with the sink's metadata and the value's other members; other keys are left alone.
    #[test]
    fn a_values_own_metadata_is_blanked_and_the_rest_kept() {
        for forged in [
            r#""RECORD_METADATA":{"offset":1,"SnowflakeConnectorPushTime":0}"#,
            r#""record_metadata" : [1,{"a":"}"}]"#,
            r#""RECORD\u005fMETADATA":"x""#,
            r#""\"RECORD_METADATA\"":null"#,
        ] {
            for (members, kept) in [
                (format!(r#""A":1,{forged},"B":"_}}""#), 2),
                (format!(r#"{forged},"B":2"#), 1),
                (format!(r#""A":{{"RECORD_METADATA":1}},{forged}"#), 1),
            ] {
                let (row, n) = blank(&format!("{members}}}"));
                assert_eq!(n, 1, "{row}");
                let v: serde_json::Value = serde_json::from_str(&row).expect(&row);
                let obj = v.as_object().unwrap();
                assert_eq!(obj.len(), 1 + kept, "{row}");
                assert_eq!(obj["RECORD_METADATA"]["offset"], 7, "{row}");
            }
        }
        for kept in [
            r#""RECORD_METADATA_X":1}"#,
            r#""A":"RECORD_METADATA"}"#,
            r#""META":{"RECORD_METADATA":1}}"#,
        ] {
            let (row, n) = blank(kept);
            assert_eq!((n, row), (0, format!("{OURS},{kept}")));
        }
        // Two forged members, one after the other.
        let (row, n) = blank(r#""RECORD_METADATA":1,"RECORD_METADATA":2}"#);
        assert_eq!(n, 2);
        let v: serde_json::Value = serde_json::from_str(&row).expect(&row);
        assert_eq!(v.as_object().unwrap().len(), 1);
    }
}
