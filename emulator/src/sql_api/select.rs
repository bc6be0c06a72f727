//! A prepared `SELECT` run: in the sandbox (`sql_sandbox.rs`: the tables the caller's role
//! may read, the statement's time limit), read-only or refused, its rows encoded by each
//! result column's declared Snowflake type (`encode.rs`; an expression column takes the type of
//! its first non-NULL value) into the SQL API's answer, within the result cap
//! ([`results::MAX_RESULT_BYTES`], checked value by value). SQLite's refusals become
//! Snowflake's codes.

use rusqlite::types::ValueRef;
use serde_json::Value;

use super::encode::{self, Kind};
use super::failure::failed;
use super::results;
use crate::base::api_error::ApiError;
use crate::sql_sandbox::{run_sandboxed_for, Readable};

/// A statement ready to run: the SQLite SQL and what it may read.
#[derive(Debug)]
pub(crate) struct Prepared {
    /// The SQLite statement (table names rewritten).
    pub sql: String,
    /// The tables the caller's role may read.
    pub readable: Readable,
    /// (storage name, Snowflake name) of columns stored under another name
    /// (`rewrite::Rewritten::renamed`): result columns are named by the Snowflake one.
    pub renamed: Vec<(String, String)>,
}

/// Runs the prepared statement in the sandbox and builds the SQL API answer.
///
/// # Errors
/// 422 with Snowflake's codes when SQLite or the sandbox refuses the statement.
pub(crate) fn run(
    conn: &rusqlite::Connection,
    prepared: Prepared,
    handle: &str,
    limit: std::time::Duration,
) -> Result<Value, ApiError> {
    let Prepared {
        sql,
        readable,
        renamed,
    } = prepared;
    // The tables' columns as they are now, not as this reader last saw them (a `SELECT *`
    // after schema evolution would lose the new columns: `storage::with_current_schema`).
    crate::storage::with_current_schema(conn, |conn| {
        run_sandboxed_for(conn, readable, limit, |conn| {
            answer(conn, &sql, handle, &renamed)
        })
    })
    .map_err(|e| ApiError::new(500, "ERR_INTERNAL", format!("reading the schema: {e}")))?
}

/// Runs `sql` and builds the SQL API answer, a result column named by a storage name of
/// `renamed` named by its Snowflake name.
fn answer(
    conn: &rusqlite::Connection,
    sql: &str,
    handle: &str,
    renamed: &[(String, String)],
) -> Result<Value, ApiError> {
    let sqlite = |e: rusqlite::Error| match e.to_string().strip_prefix("no such table: ") {
        // A name the rewrite left as it is and SQLite does not know either.
        Some(name) => failed(
            "002003",
            "42S02",
            format!(
                "SQL compilation error:\nObject '{}' does not exist or not authorized.",
                name.to_ascii_uppercase()
            ),
        ),
        None if e.to_string().contains("string or blob too big") => failed(
            "000603",
            "54000",
            format!(
                "a value of the statement is larger than the emulator's limit of {} MiB per \
                 value; compute a smaller value",
                crate::sql_sandbox::VALUE_LIMIT >> 20
            ),
        ),
        None if e.to_string().contains("LIKE or GLOB pattern too complex") => failed(
            "001003",
            "42000",
            format!(
                "a LIKE or GLOB pattern of the statement is longer than the emulator's limit of \
                 {} bytes; use a shorter pattern (or instr() for a long literal)",
                crate::sql_sandbox::LIKE_PATTERN_LIMIT
            ),
        ),
        None => failed("001003", "42000", format!("SQL compilation error: {e}")),
    };
    let mut stmt = conn.prepare(sql).map_err(sqlite)?;
    if !stmt.readonly() {
        return Err(super::ddl::not_accepted("statements that write"));
    }
    let declared: Vec<(String, Option<String>)> = stmt
        .columns()
        .iter()
        .map(|c| {
            let name = renamed
                .iter()
                .find(|(stored, _)| stored == c.name())
                .map_or(c.name(), |(_, snowflake)| snowflake.as_str());
            (name.to_owned(), c.decl_type().map(str::to_owned))
        })
        .collect();
    let n = declared.len();
    let mut kinds: Vec<Option<Kind>> = declared
        .iter()
        .map(|(_, d)| d.as_deref().map(Kind::declared))
        .collect();
    let mut rows = stmt.query([]).map_err(sqlite)?;
    let mut data = Vec::new();
    let mut bytes = 0usize;
    while let Some(row) = rows.next().map_err(sqlite)? {
        let mut out = Vec::with_capacity(n);
        for (i, kind) in kinds.iter_mut().enumerate() {
            let v = row.get_ref(i).map_err(sqlite)?;
            if v == ValueRef::Null {
                // A NULL says nothing about an expression column's type: the first value does.
                out.push(Value::Null);
                bytes += 5;
                continue;
            }
            let kind = kind.get_or_insert_with(|| Kind::of_value(v)).clone();
            // Checked before the value is encoded (a blob's hex is twice its size), and
            // again after: no value takes the result past the cap, however wide the row.
            let too_big = |bytes: usize| {
                (bytes > results::MAX_RESULT_BYTES).then(|| {
                    let column = &declared[i].0;
                    over_cap(data.len(), i + 1, column)
                })
            };
            if let Some(e) = too_big(bytes + kind.encoded_len_at_least(v)) {
                return Err(e);
            }
            let encoded = kind.encode(v);
            bytes += match &encoded {
                Value::String(s) => s.len() + 3,
                _ => 9,
            };
            if let Some(e) = too_big(bytes) {
                return Err(e);
            }
            out.push(encoded);
        }
        bytes += 3;
        // NULLs and the row's brackets count too.
        if bytes > results::MAX_RESULT_BYTES {
            let last = declared.last().map_or("", |(name, _)| name.as_str());
            return Err(over_cap(data.len(), n, last));
        }
        data.push(Value::Array(out));
    }
    let row_type: Vec<Value> = declared
        .iter()
        .zip(&kinds)
        .map(|((name, decl), kind)| {
            let mut t = kind.clone().unwrap_or(Kind::Text).row_type(name);
            // Snowflake's rowType gives a text's or binary's declared length.
            if let Some(n) = decl.as_deref().and_then(encode::declared_length) {
                t["length"] = n.into();
            }
            t
        })
        .collect();
    Ok(encode::success(handle, row_type, data))
}

/// The statement's error when the value in `column` (1-based, named `name`) of row
/// `rows + 1` would take the result past [`results::MAX_RESULT_BYTES`].
fn over_cap(rows: usize, column: usize, name: &str) -> ApiError {
    failed(
        "000603",
        "54000",
        format!(
            "the result exceeds the emulator's limit of {} MiB per statement at row {}, column \
             {column} ({name}); select fewer rows (WHERE, LIMIT) or fewer or smaller columns",
            results::MAX_RESULT_BYTES >> 20,
            rows + 1,
        ),
    )
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use serde_json::json;

    pub(in crate::sql_api) fn run(
        conn: &rusqlite::Connection,
        sql: &str,
        handle: &str,
    ) -> Result<Value, ApiError> {
        let prepared = Prepared {
            sql: sql.to_owned(),
            readable: Readable::tables(&["D.S.T"]),
            renamed: Vec::new(),
        };
        super::run(
            conn,
            prepared,
            handle,
            crate::settings::config::DEFAULT_SQL_STATEMENT_TIMEOUT,
        )
    }

    #[test]
    fn values_are_encoded_like_the_sql_api() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"D.S.T\" (ID \"NUMBER(20,0)\", PRICE \"NUMBER(10,2)\", OK BOOLEAN, DAY DATE, \
             AT TIMESTAMP_NTZ, BIN BINARY, DOC VARIANT, F FLOAT, Z TIMESTAMP_TZ, TM TIME);
             INSERT INTO \"D.S.T\" VALUES (7, 1.5, 1, '1970-01-11', '1970-01-02 00:00:01.500000000', \
             x'00ff', '{\"a\":1}', 0.1, '2000-01-01 00:00:00.000000000Z', '01:00:00.250000000');
             INSERT INTO \"D.S.T\" VALUES (NULL, NULL, 0, NULL, '1969-12-31 23:59:59.500000000', NULL, NULL, 'NaN', NULL, NULL);",
        )
        .unwrap();
        let answer = run(&conn, "SELECT * FROM \"D.S.T\"", "h").unwrap();
        assert_eq!(
            answer["data"][0],
            json!([
                "7",
                "1.50",
                "true",
                "10",
                "86401.500000000",
                "00FF",
                "{\"a\":1}",
                "0.1",
                "946684800.000000000 1440",
                "3600.250000000"
            ])
        );
        assert_eq!(answer["data"][1][2], json!("false"));
        assert_eq!(answer["data"][1][7], json!("NaN"));
        assert_eq!(
            answer["data"][1][4],
            json!("-0.500000000"),
            "half a second before the epoch"
        );
        assert_eq!(answer["data"][1][0], Value::Null);
        let types: Vec<&str> = answer["resultSetMetaData"]["rowType"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["type"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "fixed",
                "fixed",
                "boolean",
                "date",
                "timestamp_ntz",
                "binary",
                "variant",
                "real",
                "timestamp_tz",
                "time"
            ]
        );
        // An expression column's type comes from its first non-NULL value.
        let mixed = run(
            &conn,
            "SELECT CASE WHEN OK THEN NULL ELSE 2.5 END FROM \"D.S.T\" ORDER BY OK DESC",
            "h",
        )
        .unwrap();
        assert_eq!(mixed["data"], json!([[null], ["2.5"]]));
        assert_eq!(
            mixed["resultSetMetaData"]["rowType"][0]["type"],
            json!("real")
        );
        let count = run(&conn, "SELECT COUNT(*), MAX(F) FROM \"D.S.T\"", "h").unwrap();
        assert_eq!(count["data"][0][0], json!("2"));
        assert_eq!(
            count["resultSetMetaData"]["rowType"][0]["type"],
            json!("fixed")
        );
    }
}
