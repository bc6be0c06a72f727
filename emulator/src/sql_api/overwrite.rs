//! `INSERT OVERWRITE INTO <t> SELECT * FROM <t> QUALIFY <condition>`: a table rewritten with
//! only the rows the condition keeps, in one transaction. Snowflake runs it as "truncate, then
//! insert the query's rows"; selecting the same table, that keeps exactly the rows for which
//! `<condition>` (which may use window functions, such as `ROW_NUMBER() OVER (…)`) is TRUE,
//! and it is the one Snowflake statement that can keep one of two identical rows (a `DELETE`
//! cannot tell them apart). `snowpipe-kafka audit` prints it to remove duplicates
//! (`kafka/docs/audit.md`).
//!
//! Only this shape is accepted: the same table on both sides, `*`, and a `QUALIFY` with no
//! subquery (no `SELECT`, `FROM` or `JOIN` in it). The emulator runs it on the writer thread
//! in one transaction ([`run`]): the condition is evaluated for every row in the SQL API's
//! sandbox (the caller's grants, the statement time limit, the functions the sandbox offers;
//! `NULL` counts as not TRUE, as in `QUALIFY`), then the rows it does not keep are deleted by
//! `rowid`. Nothing is appended and no other overwrite runs in between, so a `rowid` always
//! names the row that was evaluated (SQLite gives a deleted row's `rowid` to the next row
//! appended: evaluated on a reader and deleted later, two overlapping overwrites deleted rows
//! appended in between, issue 81). The answer is Snowflake's: one row, `number of rows
//! inserted`.

use serde_json::{json, Value};
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Token, Tokenizer};

use crate::base::api_error::ApiError;
use crate::catalog::Catalog;
use crate::sql_sandbox::Readable;

use super::caller::Caller;
use super::ddl::object_name;
use super::failure::failed;
use super::rewrite::rewrite;
use super::select::Prepared;

/// An accepted `INSERT OVERWRITE … QUALIFY`.
#[derive(Debug)]
pub(crate) struct Overwrite {
    /// The SQLite table (`DB.SCHEMA.TABLE`).
    pub table: String,
    /// `SELECT rowid, <keep> FROM <table>`, rewritten, with what the caller may read.
    pub select: Prepared,
}

/// The refusal of an `INSERT` of another shape (naming what the SQL API runs).
fn other_shape() -> ApiError {
    super::ddl::not_accepted("this INSERT")
}

/// Parses the request's `INSERT`, as the caller's role may read (see [`Caller::role`]).
///
/// # Errors
/// As [`parse`]; 422 for an `INSERT` of another shape, and `390189` for a requested role the
/// user may not use.
pub(super) fn prepare(
    catalog: &Catalog,
    caller: &Caller<'_>,
    req: &super::StatementBody,
) -> Result<Overwrite, ApiError> {
    let role = caller.role(catalog, req.role.as_deref())?;
    let readable = Readable::for_role(catalog, caller.grants, role);
    let (db, schema) = (req.database.as_deref(), req.schema.as_deref());
    parse(catalog, &req.statement, db, schema, readable)?.ok_or_else(other_shape)
}

/// Parses `statement` when it starts with `INSERT`: `Ok(None)` for any other statement.
///
/// # Errors
/// 422 for an `INSERT` of another shape, a table the catalog does not have, or a condition
/// the rewrite refuses.
pub(crate) fn parse(
    catalog: &Catalog,
    statement: &str,
    database: Option<&str>,
    schema: Option<&str>,
    readable: Readable,
) -> Result<Option<Overwrite>, ApiError> {
    let tokens = Tokenizer::new(&SnowflakeDialect {}, statement)
        .tokenize()
        .map_err(|e| failed("001003", "42000", format!("SQL compilation error: {e}")))?;
    let solid: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let word = |i: usize, kw: &str| {
        matches!(solid.get(i), Some(Token::Word(w)) if w.quote_style.is_none()
            && w.value.eq_ignore_ascii_case(kw))
    };
    if !word(0, "INSERT") {
        return Ok(None);
    }
    if !(word(1, "OVERWRITE") && word(2, "INTO")) {
        return Err(other_shape());
    }
    let (target, n) = object_name(&solid[3..]).ok_or_else(other_shape)?;
    let at = 3 + n;
    if !(word(at, "SELECT") && solid.get(at + 1) == Some(&&Token::Mul) && word(at + 2, "FROM")) {
        return Err(other_shape());
    }
    let (source, m) = object_name(&solid[at + 3..]).ok_or_else(other_shape)?;
    if source != target || !word(at + 3 + m, "QUALIFY") {
        return Err(other_shape());
    }
    // The condition: everything after QUALIFY, as written (white space kept).
    let mut seen = 0;
    let mut condition = String::new();
    for t in &tokens {
        if seen > at + 3 + m {
            condition.push_str(&t.to_string_sql());
        } else if !matches!(t, Token::Whitespace(_)) {
            seen += 1;
        }
    }
    let condition = condition.trim().trim_end_matches(';').trim();
    let nested = Tokenizer::new(&SnowflakeDialect {}, condition)
        .tokenize()
        .unwrap_or_default()
        .iter()
        .any(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => ["SELECT", "FROM", "JOIN"]
                .iter()
                .any(|k| w.value.eq_ignore_ascii_case(k)),
            Token::SemiColon => true,
            _ => false,
        });
    if condition.is_empty() || nested {
        return Err(other_shape());
    }
    let name = target
        .iter()
        .map(|p| format!("\"{}\"", p.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(".");
    let select = format!(
        "SELECT rowid, CASE WHEN ({condition}) THEN 1 ELSE 0 END FROM {name} ORDER BY rowid"
    );
    let super::rewrite::Rewritten { sql, ctes, renamed } =
        rewrite(catalog, &select, database, schema)?;
    let table = {
        let parts: Vec<&str> = target.iter().map(String::as_str).collect();
        let resolved = match parts.as_slice() {
            [t] => (
                super::current::current_database(catalog, database)?,
                super::current::current_schema(catalog, database, schema)?,
                (*t).to_owned(),
            ),
            [s, t] => (
                super::current::current_database(catalog, database)?,
                (*s).to_owned(),
                (*t).to_owned(),
            ),
            [d, s, t] => ((*d).to_owned(), (*s).to_owned(), (*t).to_owned()),
            _ => return Err(other_shape()),
        };
        catalog
            .table_exact(&resolved.0, &resolved.1, &resolved.2)
            .ok_or_else(other_shape)?
            .qualified_name()
    };
    Ok(Some(Overwrite {
        table,
        select: Prepared {
            sql,
            readable: readable.with_ctes(ctes),
            renamed,
        },
    }))
}

/// Token text as SQL (string literals with their quotes doubled again).
trait ToSql {
    fn to_string_sql(&self) -> String;
}

impl ToSql for Token {
    fn to_string_sql(&self) -> String {
        match self {
            Token::SingleQuotedString(s) => format!("'{}'", s.replace('\'', "''")),
            other => other.to_string(),
        }
    }
}

/// Evaluates the condition (in the sandbox): the table's row count and the `rowid`s of the
/// rows it does not keep.
///
/// # Errors
/// SQLite's refusal of the condition, as a 422.
pub(crate) fn doomed(conn: &rusqlite::Connection, sql: &str) -> Result<(u64, Vec<i64>), ApiError> {
    let sqlite =
        |e: rusqlite::Error| failed("001003", "42000", format!("SQL compilation error: {e}"));
    let mut stmt = conn.prepare(sql).map_err(sqlite)?;
    let mut rows = stmt.query([]).map_err(sqlite)?;
    let (mut total, mut out) = (0u64, Vec::new());
    while let Some(row) = rows.next().map_err(sqlite)? {
        total += 1;
        let keep: i64 = row.get(1).map_err(sqlite)?;
        if keep == 0 {
            out.push(row.get(0).map_err(sqlite)?);
        }
    }
    Ok((total, out))
}

/// Runs `o` on the writer's connection in one transaction: [`doomed`] in the sandbox (the
/// caller's grants, `limit`), then [`delete`]. Returns the table's rows before and the rows
/// deleted. On any error nothing is deleted.
///
/// # Errors
/// The sandbox's and [`doomed`]'s refusals (422); SQLite's errors (500).
pub(crate) fn run(
    conn: &mut rusqlite::Connection,
    o: Overwrite,
    limit: std::time::Duration,
) -> Result<(u64, u64), ApiError> {
    let internal = |e: rusqlite::Error| ApiError::new(500, "ERR_INTERNAL", e.to_string());
    let Overwrite { table, select } = o;
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(internal)?;
    let (total, rowids) =
        crate::sql_sandbox::run_sandboxed_for(&tx, select.readable, limit, |c| {
            doomed(c, &select.sql)
        })?;
    let deleted = delete(&tx, &table, &rowids).map_err(internal)?;
    tx.commit().map_err(internal)?;
    Ok((total, deleted))
}

/// Deletes the rows `rowids` of SQLite table `table` (in the caller's transaction).
///
/// # Errors
/// SQLite's errors.
pub(crate) fn delete(
    conn: &rusqlite::Connection,
    table: &str,
    rowids: &[i64],
) -> rusqlite::Result<u64> {
    let mut deleted = 0;
    let mut stmt = conn.prepare(&format!(
        "DELETE FROM {} WHERE rowid = ?1",
        crate::convert::quote_ident(table)
    ))?;
    for id in rowids {
        deleted += stmt.execute([id])? as u64;
    }
    Ok(deleted)
}

/// Snowflake's answer to an `INSERT`: one row, `number of rows inserted`.
pub(crate) fn answer(inserted: u64, handle: &str) -> Value {
    super::encode::success(
        handle,
        vec![super::encode::Kind::Fixed {
            precision: 19,
            scale: 0,
        }
        .row_type("number of rows inserted")],
        vec![json!([inserted.to_string()])],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.apply_sql("CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.T (M VARIANT);")
            .unwrap();
        c
    }

    /// The accepted shape becomes a sandboxed SELECT of the rows and whether each is kept;
    /// other INSERTs and subqueries are refused; other statements are not this module's.
    #[test]
    fn only_the_same_table_qualified_is_accepted() {
        let c = catalog();
        let parse = |sql: &str| parse(&c, sql, Some("D"), Some("S"), Readable::default());
        let o = parse(
            "insert overwrite into T select * from S.T qualify M:offset is null or \
             row_number() over (partition by M:offset order by M:x) = 1;",
        );
        // `T` and `S.T` are different names as written: refused.
        assert!(o.is_err());
        let o = parse(
            "INSERT OVERWRITE INTO T SELECT * FROM T QUALIFY M:offset IS NULL OR \
             ROW_NUMBER() OVER (PARTITION BY M:offset ORDER BY M:x) = 1",
        )
        .unwrap()
        .unwrap();
        assert_eq!(o.table, "D.S.T");
        assert!(o.select.sql.contains("\"D.S.T\""), "{}", o.select.sql);
        assert!(o.select.sql.contains("->>"), "{}", o.select.sql);
        for refused in [
            "INSERT INTO T SELECT * FROM T",
            "INSERT OVERWRITE INTO T SELECT * FROM T",
            "INSERT OVERWRITE INTO T SELECT * FROM T QUALIFY M IN (SELECT 1)",
            "INSERT OVERWRITE INTO T SELECT M FROM T QUALIFY TRUE",
            "INSERT OVERWRITE INTO NOPE SELECT * FROM NOPE QUALIFY TRUE",
        ] {
            assert!(parse(refused).is_err(), "{refused}");
        }
        assert!(parse("SELECT 1").unwrap().is_none());
    }

    /// The condition decides per row; a NULL condition does not keep the row; the delete
    /// removes exactly those rows.
    #[test]
    fn the_rows_not_kept_are_deleted() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"D.S.T\" (M TEXT); INSERT INTO \"D.S.T\" VALUES \
             ('{\"offset\":1,\"t\":5}'), ('{\"offset\":1,\"t\":3}'), ('{\"offset\":2,\"t\":1}'), \
             ('{\"offset\":2,\"t\":1}'), ('{\"x\":0}'), ('{\"x\":0}');",
        )
        .unwrap();
        let c = catalog();
        let o = parse(
            &c,
            "INSERT OVERWRITE INTO T SELECT * FROM T QUALIFY M:offset IS NULL OR ROW_NUMBER() \
             OVER (PARTITION BY M:offset ORDER BY M:t NULLS LAST) = 1",
            Some("D"),
            Some("S"),
            Readable::default(),
        )
        .unwrap()
        .unwrap();
        let (total, rowids) = doomed(&conn, &o.select.sql).unwrap();
        assert_eq!((total, rowids.len()), (6, 2));
        assert_eq!(delete(&conn, &o.table, &rowids).unwrap(), 2);
        let left: Vec<String> = conn
            .prepare("SELECT M FROM \"D.S.T\" ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(
            left,
            [
                r#"{"offset":1,"t":3}"#,
                r#"{"offset":2,"t":1}"#,
                r#"{"x":0}"#,
                r#"{"x":0}"#
            ]
        );
        let answer = answer(4, "h");
        assert_eq!(answer["data"], json!([["4"]]));
        assert_eq!(
            answer["resultSetMetaData"]["rowType"][0]["name"],
            "number of rows inserted"
        );
    }
}
