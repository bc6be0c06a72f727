//! Golden cases with a table of their own (`kafka/tests/golden/cases.json`, §17 of
//! `kafka/docs/connector-compatibility.md`): the v3-compatible shape's cases
//! (`snowflake.validation=client_side`) need typed columns, made before the sink runs, and say
//! what the table then holds.
//!
//! * `table`: `{"columns": [[name, type], …], "enable_schema_evolution": bool}`: the table
//!   `GOLDEN_<n>` is created with `RECORD_METADATA VARIANT` and these columns.
//! * `expected_stored`: per column, the value the table holds for v4's appended value (v4
//!   hands the SDK `"2024-01-15T10:00"`; a TIMESTAMP_NTZ holds `2024-01-15
//!   00:00:00.000000000`, as the emulator reads it back). It replaces `expected_row`'s value
//!   in the comparison.
//! * `expected_types`: per column, the type the table has after the run (a column schema
//!   evolution added), its name without length or precision (`NUMBER` for `NUMBER(38,0)`), as
//!   the connector's `TestUtils.checkTableSchema` compares it.
//! * `expected_dead_letter`: text the dead letter's `snowpipe.error` header holds.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde_json::Value;
use snowpipe_kafka_lab::demo::Lab;

/// The DDL of the cases' own tables (`n`: the case's table number).
pub(crate) fn ddl<'a>(cases: impl Iterator<Item = (usize, &'a Value)>) -> String {
    let mut out = String::new();
    for (n, case) in cases {
        let Some(table) = case.get("table") else {
            continue;
        };
        let mut columns = vec!["RECORD_METADATA VARIANT".to_owned()];
        for c in table["columns"].as_array().into_iter().flatten() {
            columns.push(format!(
                "{} {}",
                c[0].as_str().unwrap(),
                c[1].as_str().unwrap()
            ));
        }
        let evolves = if table["enable_schema_evolution"] == true {
            " ENABLE_SCHEMA_EVOLUTION = TRUE"
        } else {
            ""
        };
        out.push_str(&format!(
            "CREATE TABLE DEMO.KAFKA.GOLDEN_{n} ({}){evolves};\n",
            columns.join(", ")
        ));
    }
    out
}

/// `expected` (v4's row, by upper-case column) with the case's `expected_stored` values in
/// place of v4's appended ones.
pub(crate) fn stored(case: &Value, expected: &mut BTreeMap<String, Value>) {
    for (k, v) in case["expected_stored"].as_object().into_iter().flatten() {
        expected.insert(k.to_uppercase(), v.clone());
    }
}

/// Whether table `GOLDEN_<n>` has the case's `expected_types`.
pub(crate) fn types(lab: &Lab, case: &Value, n: usize) -> Result<(), String> {
    let Some(want) = case["expected_types"].as_object() else {
        return Ok(());
    };
    let rows = lab
        .emulator()
        .query(&format!(
            "SELECT name, type FROM pragma_table_info('DEMO.KAFKA.GOLDEN_{n}')"
        ))
        .map_err(|e| e.to_string())?;
    let have: HashMap<String, String> = rows
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or("").to_owned(),
                r[1].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    for (column, ty) in want {
        // As the connector's test compares: the type's name, without its length or precision.
        let base = have.get(column).map(|t| t.split('(').next().unwrap_or(t));
        if base != ty.as_str() {
            return Err(format!(
                "{}: column {column} should be {ty}; the table has {have:?}",
                case["name"]
            ));
        }
    }
    Ok(())
}

/// `snowpipe.topic` → `snowpipe.error` of every dead letter on `topic` (none when the topic
/// cannot be read).
pub(crate) fn dead_letter_reasons(lab: &Lab, topic: &str) -> HashMap<String, String> {
    let letters = lab
        .headers_on(topic, Duration::from_secs(2))
        .unwrap_or_default();
    let mut out = HashMap::new();
    for mut headers in letters {
        if let (Some(t), Some(why)) = (
            headers.remove("snowpipe.topic"),
            headers.remove("snowpipe.error"),
        ) {
            out.insert(t, why);
        }
    }
    out
}
