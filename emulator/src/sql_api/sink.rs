//! The SQL API in sink mode (`--sink`: rows are counted, not stored). What a client asks
//! before and beside its appends is answered as in normal mode: DDL, `SHOW`, `DESCRIBE` from
//! the catalog (nothing there needs rows), and a `SELECT` whose top level is `LIMIT 0` (how a
//! client reads a table's columns), run against the catalog's tables it names, made empty in
//! a private in-memory SQLite, so its columns and types are normal mode's. Any other `SELECT`
//! would read rows that were never kept: it is refused naming why and the fix, never answered
//! "0 rows" (a client that verifies what landed must not be told nothing landed). The library's
//! [`Emulator::query`](crate::Emulator::query) follows the same rule ([`query`]).

use rusqlite::Connection;
use sqlparser::ast::{Expr, LimitClause, SetExpr, Statement, Value};
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::parser::Parser;

use crate::base::api_error::ApiError;
use crate::catalog::Catalog;
use crate::storage::QueryResult;
use crate::EmulatorError;

/// Why a statement that reads rows is refused in sink mode, and the fix.
const ROWS_NOT_STORED: &str = "sink mode: rows are counted, not stored, so a query that reads \
     rows would see none; DDL, SHOW, DESCRIBE and SELECT … LIMIT 0 are answered: start the \
     emulator without --sink to query rows";

/// The refusal of a statement that reads rows, in sink mode.
pub(crate) fn rows_not_stored() -> ApiError {
    ApiError::new(422, "002003", ROWS_NOT_STORED)
}

/// [`Emulator::query_with_columns`](crate::Emulator::query_with_columns) in sink mode: a
/// query whose top level is `LIMIT 0` answers its columns from the catalog's tables made
/// empty; any other is refused.
///
/// # Errors
/// A query that would read rows (naming sink mode and the fix), or the query's own error.
pub(crate) fn query(catalog: &Catalog, sql: &str) -> Result<QueryResult, EmulatorError> {
    if !reads_no_rows(sql) {
        return Err(EmulatorError::storage(ROWS_NOT_STORED));
    }
    let conn =
        empty_tables(&creates(catalog, sql)).map_err(|e| EmulatorError::storage(e.message))?;
    crate::storage::query(&conn, sql)
}

/// Whether `sql` (one statement, as the rewrite left it) is a query whose top level is
/// `LIMIT 0`: it reads no row, whatever the tables hold.
pub(crate) fn reads_no_rows(sql: &str) -> bool {
    let Ok(statements) = Parser::parse_sql(&SnowflakeDialect, sql) else {
        return false;
    };
    let [Statement::Query(query)] = statements.as_slice() else {
        return false;
    };
    if matches!(*query.body, SetExpr::Insert(_) | SetExpr::Update(_)) {
        return false;
    }
    matches!(
        &query.limit_clause,
        Some(LimitClause::LimitOffset { limit: Some(Expr::Value(v)), .. })
            if matches!(&v.value, Value::Number(n, _) if n.trim_start_matches('0').is_empty())
    )
}

/// The `CREATE TABLE` statements of the catalog's tables (and error tables) whose name `sql`
/// mentions, for [`empty_tables`]: a table whose name is nowhere in the text cannot be read
/// by it, so a `LIMIT 0` costs the tables it names, not the whole catalog. The match ignores
/// ASCII case, as SQLite's names do, and may keep a few tables too many (a name inside
/// another), never one too few.
pub(crate) fn creates(catalog: &Catalog, sql: &str) -> Vec<String> {
    let text = sql.to_ascii_lowercase();
    let named = |name: &str| {
        let name = name.to_ascii_lowercase();
        text.contains(&name) || text.contains(&name.replace('"', "\"\""))
    };
    let mut out = Vec::new();
    for t in catalog.tables() {
        if named(&t.qualified_name()) {
            out.push(crate::convert::sqlite_create_table(t));
        }
        if t.error_logging && named(&t.error_table_name()) {
            out.push(crate::storage::error_table_create(t));
        }
    }
    out
}

/// A private in-memory SQLite holding `creates`' tables, empty.
///
/// # Errors
/// When SQLite cannot open or create them (an internal error).
pub(crate) fn empty_tables(creates: &[String]) -> Result<Connection, ApiError> {
    let internal = |e: rusqlite::Error| {
        ApiError::new(
            500,
            "ERR_INTERNAL",
            format!("sink mode's empty tables: {e}"),
        )
    };
    let conn = Connection::open_in_memory().map_err(internal)?;
    for create in creates {
        conn.execute_batch(create).map_err(internal)?;
    }
    Ok(conn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_top_level_limit_0_reads_no_rows() {
        for sql in [
            "SELECT * FROM \"D.S.T\" LIMIT 0",
            "select a, b from t where x = 1 order by a limit 0",
            "SELECT * FROM t LIMIT 00 OFFSET 5",
            "WITH c AS (SELECT * FROM t) SELECT * FROM c LIMIT 0",
        ] {
            assert!(reads_no_rows(sql), "{sql}");
        }
        for sql in [
            "SELECT * FROM t",
            "SELECT * FROM t LIMIT 1",
            "SELECT * FROM (SELECT * FROM t LIMIT 0) x",
            "SELECT * FROM t WHERE note = 'LIMIT 0'",
            "SELECT * FROM t -- LIMIT 0",
            "SELECT * FROM t LIMIT 0 + 1",
            "SELECT * FROM t UNION ALL SELECT * FROM u LIMIT 10",
            "not sql at all LIMIT 0",
        ] {
            assert!(!reads_no_rows(sql), "{sql}");
        }
    }
}
