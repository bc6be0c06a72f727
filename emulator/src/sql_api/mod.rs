//! `POST /api/v2/statements`: Snowflake's SQL API, for read-only `SELECT`s over the emulator's
//! tables, so a client can check what landed with the same code against the emulator and a
//! real account, and for the catalog DDL that creates tables and pipes (`CREATE TABLE`, `CREATE
//! PIPE`, `ALTER TABLE … ADD COLUMN`, `DROP TABLE|PIPE`; `sql_api/ddl.rs`), applied as the emulator's `--ddl`
//! scripts are and answered with Snowflake's one-row `status` result. `INSERT OVERWRITE … QUALIFY`
//! (`sql_api/overwrite.rs`) removes duplicates; `DESC TABLE|PIPE` (`sql_api/describe.rs`) and
//! `SHOW TABLES LIKE` (`sql_api/show_tables.rs`) answer from the catalog, `SHOW CHANNELS`
//! (`sql_api/show_channels.rs`) from the channels.
//!
//! The statement runs in SQLite, on a reader connection, in one read transaction that sees
//! the tables' columns as they are now (`storage::with_current_schema`: a `SELECT *` after
//! schema evolution answers the new columns too): table names after `FROM` and `JOIN` (`T`, `S.T` or `D.S.T`,
//! resolved with the request's `database` and `schema`, `sql_api/current.rs`) are rewritten
//! to the emulator's SQLite tables (`sql_api/rewrite.rs`), and Snowflake's paths
//! (`m:key.sub`) and `::STRING` casts become SQLite's JSON extraction and `CAST`
//! (`sql_api/paths.rs`); everything else is SQLite SQL, so use portable SQL (`COUNT`, `MIN`,
//! `MAX`, `SUM`, `WHERE`, `ORDER BY`, `LIMIT`). Statements that are neither `SELECT`/`WITH` nor
//! accepted DDL, that SQLite does not consider read-only, or several statements in one request
//! are refused with 422. The statement runs in a sandbox (`sql_sandbox.rs`; `sql_api/select.rs`
//! runs it and encodes its rows): it reads only catalog tables whose database the caller's role
//! is granted (the token's role, else the user's default role; the request's `role` only when
//! `GRANT ROLE … TO USER` granted it to the user: `sql_api/caller.rs`), wherever in the
//! statement a table is named; anything else is "does not exist or not
//! authorized". A statement still running after `sql_async_after` (default 45 s, as
//! Snowflake) is answered HTTP 202 and polled; a result of more than `sql_partition_rows`
//! rows comes in partitions, the later ones gzip-encoded when the client accepts it (see
//! `results.rs`). Values are encoded as the SQL API encodes them, by each result column's
//! declared Snowflake type:
//!
//! | type | encoding |
//! |---|---|
//! | `fixed` (NUMBER(p,s)) | the exact decimal text with `s` digits after the point |
//! | `real` (FLOAT) | text; `NaN`, `inf`, `-inf` |
//! | `boolean` | `true` / `false` |
//! | `date` | days since 1970-01-01 |
//! | `time` | seconds since midnight, with the column's `p` fractional digits (none for 0) |
//! | `timestamp_ntz` / `timestamp_ltz` | seconds since the epoch (UTC), `p` fractional digits |
//! | `timestamp_tz` | the same, a space, and the value's offset in minutes plus 1440 (`1770` for `+05:30`) |
//! | `binary` | upper-case hex |
//! | `variant` / `object` / `array` / `text` | the text |
//!
//! NUMBER and BINARY values print through `convert::output`, the printer every output of the
//! emulator shares: NUMBER exactly as stored (see the storage notes in `convert/`), at the
//! column's scale.

use crate::base::api_error::ApiError;
use crate::catalog::Catalog;
use crate::sql_sandbox::Readable;

mod caller;
mod current;
mod ddl;
mod describe;
mod encode;
mod failure;
mod like;
mod migrate;
pub(crate) mod overwrite;
mod paths;
mod results;
mod rewrite;
mod select;
pub(crate) mod show_channels;
mod show_tables;
mod show_words;
pub(crate) mod sink;

pub(crate) use caller::Caller;
pub(crate) use ddl::{answer as ddl_answer, Applied, Ddl, Removed};
pub(crate) use describe::{answer as describe_answer, Described};
pub(crate) use migrate::{answer as migrate_answer, identifier, Migrate};
pub(crate) use results::{running, Fetched, ResultStore};
use rewrite::rewrite;
pub(crate) use select::{run, Prepared};

#[derive(Debug, Default, serde::Deserialize)]
struct StatementBody {
    #[serde(default)]
    statement: String,
    #[serde(default)]
    database: Option<String>,
    #[serde(default)]
    schema: Option<String>,
    #[serde(default)]
    role: Option<String>,
}

/// A statement request, ready to run.
#[derive(Debug)]
pub(crate) enum Request {
    /// A read-only `SELECT`, for the sandbox.
    Read(Prepared),
    /// Catalog DDL (`ddl.rs`), for the service that owns the model.
    Ddl(Ddl),
    /// `SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET(...)` (`migrate.rs`), for the service that
    /// owns the channels.
    Migrate(Migrate),
    /// `DESC TABLE …` (`describe.rs`), answered from the catalog.
    Describe(Described),
    /// `INSERT OVERWRITE INTO t SELECT * FROM t QUALIFY …` (`overwrite.rs`).
    Overwrite(overwrite::Overwrite),
    /// `SHOW CHANNELS …` (`show_channels.rs`), for the service that owns the channels, with
    /// the role it lists for.
    ShowChannels(show_channels::ShowChannels, Option<String>),
}

/// Parses the request. A `SELECT`/`WITH` has its table names rewritten and comes back with the
/// tables the caller's role may read: the token's (else the user's default role, else
/// `PUBLIC`), or the request's `role` when the user may use it ([`Caller::role`]). Accepted DDL
/// (see `ddl.rs`) comes back resolved against the request's database and schema, with the
/// role it runs as.
///
/// # Errors
/// 400 for a body that is not a statement request; 422 (Snowflake's codes) for a statement
/// that is neither one read-only `SELECT`/`WITH` nor accepted DDL, or names a table after
/// `FROM`/`JOIN` that the catalog does not have, and `390189` for a requested role the user
/// may not use.
pub(crate) fn prepare(
    catalog: &Catalog,
    caller: &Caller<'_>,
    body: &[u8],
) -> Result<Request, ApiError> {
    let req: StatementBody = serde_json::from_slice(body)
        .map_err(|e| ApiError::new(400, "390142", format!("invalid statement request: {e}")))?;
    let first = req
        .statement
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    // Answered from the catalog: `DESC TABLE|PIPE`, `SHOW TABLES LIKE`.
    if matches!(first.as_str(), "DESC" | "DESCRIBE" | "SHOW") {
        let role = caller.role(catalog, req.role.as_deref())?;
        let granted = |db: &str| crate::security::auth::role_granted(caller.grants, role, db);
        let (db, schema) = (req.database.as_deref(), req.schema.as_deref());
        let at = show_words::Lookup::new(catalog, db, schema, &granted);
        if let Some(show) = show_channels::parse(&req.statement, &at)? {
            return Ok(Request::ShowChannels(show, role.map(str::to_owned)));
        }
        let answered = if first == "SHOW" {
            show_tables::parse(&req.statement, &at)?
        } else {
            describe::parse(&req.statement, &at)?
        };
        if let Some(d) = answered {
            return Ok(Request::Describe(d));
        }
    }
    if first == "INSERT" {
        return overwrite::prepare(catalog, caller, &req).map(Request::Overwrite);
    }
    if first != "SELECT" && first != "WITH" {
        let role = caller.role(catalog, req.role.as_deref())?;
        return match ddl::parse(
            catalog,
            &req.statement,
            req.database.as_deref(),
            req.schema.as_deref(),
            caller.grants,
            role,
        )? {
            Some(ddl) => Ok(Request::Ddl(ddl)),
            None => Err(ddl::not_accepted("this statement")),
        };
    }
    if let Some(m) = migrate::parse(
        catalog,
        &req.statement,
        req.database.as_deref(),
        req.schema.as_deref(),
    )? {
        return Ok(Request::Migrate(m));
    }
    let rewritten = rewrite(
        catalog,
        &req.statement,
        req.database.as_deref(),
        req.schema.as_deref(),
    )?;
    let role = caller.role(catalog, req.role.as_deref())?;
    Ok(Request::Read(Prepared {
        sql: rewritten.sql,
        readable: Readable::for_role(catalog, caller.grants, role).with_ctes(rewritten.ctes),
        renamed: rewritten.renamed,
    }))
}

#[cfg(test)]
mod tests {
    use super::select::tests::run;
    use super::*;
    use serde_json::json;

    fn prepare(c: &Catalog, body: &[u8]) -> Result<String, ApiError> {
        let caller = Caller {
            grants: &[],
            token_role: None,
            user: None,
            any_role: false,
        };
        match super::prepare(c, &caller, body)? {
            Request::Read(p) => Ok(p.sql),
            Request::Ddl(d) => Ok(d.script),
            Request::Migrate(m) => Ok(format!("migrate {} to {}", m.classic, m.channel)),
            Request::Describe(d) => Ok(format!("describe {} columns", d.rows.len())),
            Request::Overwrite(o) => Ok(o.select.sql),
            Request::ShowChannels(s, _) => Ok(format!("{s:?}")),
        }
    }

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.apply_sql(
            "CREATE DATABASE D; CREATE SCHEMA D.S; \
             CREATE TABLE D.S.T (ID NUMBER(20,0), PRICE NUMBER(10,2), OK BOOLEAN, DAY DATE, \
             AT TIMESTAMP_NTZ, BIN BINARY, DOC VARIANT, F FLOAT);",
        )
        .unwrap();
        c
    }

    #[test]
    fn table_names_are_rewritten_and_other_statements_refused() {
        let c = catalog();
        let body = |s: &str| json!({"statement": s, "database": "D", "schema": "S"}).to_string();
        assert_eq!(
            prepare(&c, body("SELECT COUNT(*) FROM t WHERE ID > 3").as_bytes()).unwrap(),
            "SELECT COUNT(*) FROM \"D.S.T\" WHERE ID > 3"
        );
        assert_eq!(
            prepare(
                &c,
                body("select a.ID from D.S.T a join s.t b on a.ID = b.ID").as_bytes()
            )
            .unwrap(),
            "select a.ID from \"D.S.T\" a join \"D.S.T\" b on a.ID = b.ID"
        );
        let missing = prepare(&c, body("SELECT * FROM NOPE").as_bytes()).unwrap_err();
        assert_eq!((missing.status, missing.code.as_str()), (422, "002003"));
        assert!(missing.message.contains("'NOPE' does not exist"));
        let two = prepare(&c, body("SELECT 1; DROP TABLE T").as_bytes()).unwrap_err();
        assert_eq!(two.code, "000008");
        assert!(prepare(&c, body("SELECT 1;").as_bytes()).is_ok());
        let write = prepare(&c, body("DELETE FROM T").as_bytes()).unwrap_err();
        assert!(write.message.contains("read-only SELECT"));
        // Common table expressions are not tables.
        assert_eq!(
            prepare(
                &c,
                body("WITH s AS (SELECT ID FROM T), d AS (SELECT * FROM s) SELECT * FROM d JOIN T ON 1 = 1")
                    .as_bytes()
            )
            .unwrap(),
            "WITH s AS (SELECT ID FROM \"D.S.T\"), d AS (SELECT * FROM s) SELECT * FROM d JOIN \"D.S.T\" ON 1 = 1"
        );
        assert_eq!(
            prepare(
                &c,
                body("WITH RECURSIVE n(i, j) AS (SELECT 1, 1 UNION ALL SELECT i + 1, j FROM n) SELECT * FROM n")
                    .as_bytes()
            )
            .unwrap(),
            "WITH RECURSIVE n(i, j) AS (SELECT 1, 1 UNION ALL SELECT i + 1, j FROM n) SELECT * FROM n"
        );
    }

    #[test]
    fn request_database_and_schema_are_case_sensitive_statement_names_are_not() {
        let c = catalog();
        let body = |d: &str, s: &str, sql: &str| {
            json!({"statement": sql, "database": d, "schema": s}).to_string()
        };
        // Unquoted names in the statement fold to upper case.
        assert_eq!(
            prepare(&c, body("D", "S", "SELECT 1 FROM t").as_bytes()).unwrap(),
            "SELECT 1 FROM \"D.S.T\""
        );
        // The request's fields must match the stored case.
        let e = prepare(&c, body("d", "S", "SELECT 1 FROM t").as_bytes()).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (422, "090105"),
            "{}",
            e.message
        );
        assert!(e.message.contains("case-sensitive"), "{}", e.message);
        let e = prepare(&c, body("D", "s", "SELECT 1 FROM t").as_bytes()).unwrap_err();
        assert_eq!(e.code, "090106", "{}", e.message);
        // A qualified name needs no current database or schema.
        assert_eq!(
            prepare(&c, body("d", "s", "SELECT 1 FROM d.s.t").as_bytes()).unwrap(),
            "SELECT 1 FROM \"D.S.T\""
        );
        // A quoted name in the statement is exact too.
        let e = prepare(&c, body("D", "S", "SELECT 1 FROM \"t\"").as_bytes()).unwrap_err();
        assert_eq!(e.code, "002003", "{}", e.message);
    }

    #[test]
    fn error_table_reads_the_error_table_of_a_table_with_error_logging() {
        let mut c = catalog();
        c.apply_sql("USE SCHEMA D.S; CREATE TABLE L (A INT) ERROR_LOGGING = TRUE;")
            .unwrap();
        let body =
            |sql: &str| json!({"statement": sql, "database": "D", "schema": "S"}).to_string();
        assert_eq!(
            prepare(
                &c,
                body("SELECT * FROM error_table(l) e JOIN T ON 1 = 1").as_bytes()
            )
            .unwrap(),
            "SELECT * FROM \"ERROR_TABLE(D.S.L)\" e JOIN \"D.S.T\" ON 1 = 1"
        );
        // T has no error logging: no error table.
        let e = prepare(&c, body("SELECT * FROM ERROR_TABLE(T)").as_bytes()).unwrap_err();
        assert_eq!(e.code, "002003", "{}", e.message);
        assert!(e.message.contains("ERROR_LOGGING"), "{}", e.message);
    }

    #[test]
    fn semi_structured_paths_and_text_casts_become_sqlite_json_extraction() {
        let c = catalog();
        let body = |s: &str| json!({"statement": s, "database": "D", "schema": "S"}).to_string();
        for (snowflake, sqlite) in [
            (
                "SELECT DOC:a FROM t",
                "SELECT (DOC ->> '$.\"a\"') FROM \"D.S.T\"",
            ),
            (
                "SELECT DOC:\"Key\".b[2]:c FROM t",
                "SELECT (DOC ->> '$.\"Key\".\"b\"[2].\"c\"') FROM \"D.S.T\"",
            ),
            (
                "SELECT x.DOC:$1::string FROM t x",
                "SELECT CAST((x.DOC ->> '$.\"$1\"') AS TEXT) FROM \"D.S.T\" x",
            ),
            (
                "SELECT ID::VARCHAR FROM t WHERE DOC:s = 'it''s'",
                "SELECT CAST(ID AS TEXT) FROM \"D.S.T\" WHERE (DOC ->> '$.\"s\"') = 'it''s'",
            ),
            // A colon inside a string is no path.
            ("SELECT 'a:b' FROM t", "SELECT 'a:b' FROM \"D.S.T\""),
        ] {
            assert_eq!(
                prepare(&c, body(snowflake).as_bytes()).unwrap(),
                sqlite,
                "{snowflake}"
            );
        }
        for refused in [
            "SELECT DOC:a::NUMBER FROM t",
            "SELECT 1::STRING FROM t",
            "SELECT DOC: FROM t",
        ] {
            let e = prepare(&c, body(refused).as_bytes()).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (422, "001003"), "{refused}");
        }
        // The rewritten paths run: strings come back as text, numbers as numbers.
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"D.S.T\" (DOC VARIANT); \
             INSERT INTO \"D.S.T\" VALUES ('{\"s\":\"x\",\"n\":[1,2],\"o\":{\"k\":true}}');",
        )
        .unwrap();
        let sql = prepare(
            &c,
            body("SELECT DOC:s, DOC:n[1], DOC:o.k::STRING FROM t WHERE DOC:s = 'x'").as_bytes(),
        )
        .unwrap();
        let answer = run(&conn, &sql, "h").unwrap();
        assert_eq!(answer["data"], json!([["x", "2", "1"]]));
    }

    /// `ID::TEXT::TEXT…` 100,000 times (under the 1 MiB statement limit): each cast rewrote
    /// the text before it, ~10^10 bytes copied before the statement's deadline started. Past
    /// 64 casts on one column the statement is refused. A long path (`DOC:a:a:…`) is one
    /// link, rewritten once.
    #[test]
    fn long_chains_of_casts_are_refused_before_they_are_rewritten() {
        let c = catalog();
        let body = |s: &str| json!({"statement": s, "database": "D", "schema": "S"}).to_string();
        let ok = format!("SELECT ID{} FROM t", "::TEXT".repeat(64));
        prepare(&c, body(&ok).as_bytes()).unwrap();
        super::rewrite::work::take();
        let long = format!("SELECT ID{} FROM t", "::TEXT".repeat(100_000));
        let e = prepare(&c, body(&long).as_bytes()).unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (422, "001003"),
            "{}",
            e.message
        );
        assert!(e.message.contains("more than 64"), "{}", e.message);
        // Counted, not timed: 64 rewrites of a short text, not 10^10 bytes.
        let copied = super::rewrite::work::take();
        assert!(copied < 1 << 20, "{copied} bytes copied");
        // Casts on different columns do not add up.
        let many = format!("SELECT {} FROM t", vec!["ID::TEXT"; 200].join(", "));
        prepare(&c, body(&many).as_bytes()).unwrap();
        let path = format!("SELECT DOC{} FROM t", ":a".repeat(100_000));
        let sql = prepare(&c, body(&path).as_bytes()).unwrap();
        assert_eq!(sql.matches("->>").count(), 1, "one path, rewritten once");
    }

    /// `SELECT 1 FROM t WHERE f(, a(, a(, …` (garbage SQLite refuses later): every `, a(`
    /// looked like a CTE's column list and was scanned to its end, 10^10 steps for 120,000
    /// of them; the parentheses are now matched once.
    #[test]
    fn nested_look_alike_cte_column_lists_cost_one_pass() {
        let c = catalog();
        let body = |s: &str| json!({"statement": s, "database": "D", "schema": "S"}).to_string();
        let garbage = format!("SELECT 1 FROM t WHERE f({}", ", a(".repeat(120_000));
        super::rewrite::work::take();
        let _ = prepare(&c, body(&garbage).as_bytes());
        // Counted, not timed: each significant token (`SELECT 1 FROM t WHERE f (`, then `,`
        // `a` `(` 120,000 times) visited once per pass (two passes), not each `, a(` scanned
        // to its end (10^10 steps).
        let tokens = 7 + 3 * 120_000;
        let visited = super::rewrite::work::take();
        assert!(
            (tokens..=2 * tokens).contains(&visited),
            "{visited} tokens visited"
        );
        // CTE names are still found, column lists and all.
        let cte = "WITH a (x, y) AS (SELECT 1, 2), \"b\" AS (SELECT 3) SELECT * FROM a, \"b\"";
        assert_eq!(
            prepare(&c, body(cte).as_bytes()).unwrap(),
            "WITH a (x, y) AS (SELECT 1, 2), \"b\" AS (SELECT 3) SELECT * FROM a, \"b\""
        );
    }
}
