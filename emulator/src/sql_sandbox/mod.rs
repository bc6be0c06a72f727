//! The SQL API's sandbox: an SQLite authorizer that lets a statement read only the catalog's
//! tables the caller's role is granted, and nothing else.
//!
//! Rewriting table names (see `sql_api.rs`) is a convenience, not a boundary: a name it does
//! not rewrite (`FROM (SELECT 1) a, _emulator_channels`, `sqlite_master`, a subquery, a CTE,
//! `IN (SELECT …)`) reaches SQLite as written. The boundary is SQLite's own authorizer, which
//! SQLite asks about every table a statement reads, wherever the name appears, while it
//! prepares the statement:
//!
//! - `SELECT`, recursive CTEs and the functions of an allow-list (`functions.rs`) are
//!   allowed;
//! - a table is read only when it is a catalog table (`"DB.SCHEMA.TABLE"` in `main`) whose
//!   database the role is granted (`--grant`; every table without grants), or, named without
//!   a schema, one of the statement's CTEs;
//! - everything else is denied: the emulator's `_emulator_*` tables, `sqlite_*`, `pragma_*`
//!   and other virtual tables (`main.json_each` too when a CTE is called `json_each`),
//!   `ATTACH`/`DETACH`, `PRAGMA`, transactions, any write or DDL, and any other function
//!   (`sqlite_version`, `sqlite_compileoption_*`, `load_extension`, ...).
//!
//! While the statement runs the connection is also `PRAGMA query_only` (the SQL API runs it on
//! a read-only reader connection besides, see `storage/readers.rs`), its value and pattern
//! limits are lowered (`limits.rs`), the SQLite memory it holds at once is bounded
//! (`heap.rs`), and it is cancelled at its time limit
//! (`EmulatorConfig::sql_statement_timeout`, 10 s by default): between
//! SQLite's instructions by a progress handler, wherever SQLite looks at its interrupt flag by
//! a watcher that interrupts the connection at the deadline (`alarm.rs`), and within one call
//! of the functions whose
//! single call could otherwise run for minutes, which the sandbox replaces with equivalents
//! that watch the deadline or take linear time (`LIKE`/`GLOB` in `patterns.rs`; `instr`,
//! `replace`, two-argument `trim` in `scans.rs`).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};

use rusqlite::hooks::{AuthAction, AuthContext, Authorization};
use rusqlite::Connection;

use crate::base::api_error::ApiError;
use crate::catalog::Catalog;

mod alarm;
mod calls;
mod functions;
#[allow(
    unsafe_code,
    reason = "SQLite's allocator hooks: C callbacks over Rust's allocator (SAFETY on each block)"
)]
pub(crate) mod heap;
mod limits;
mod objects;
mod patterns;
mod scans;

pub(crate) use limits::{LIKE_PATTERN_LIMIT, VALUE_LIMIT};

/// What a statement may read: the SQLite names of the tables granted to the caller's role,
/// and the statement's own common table expressions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Readable {
    tables: HashSet<String>,
    /// Lower-cased CTE names; those that are also the name of a real table are removed
    /// before the statement runs (a CTE in one subquery must not open a real table of that
    /// name elsewhere in the statement).
    ctes: HashSet<String>,
}

impl Readable {
    /// The catalog tables whose database `role` (`PUBLIC` when `None`) is granted.
    pub(crate) fn for_role(
        catalog: &Catalog,
        grants: &[(String, String)],
        role: Option<&str>,
    ) -> Self {
        let tables = catalog
            .tables()
            .filter(|t| crate::security::auth::role_granted(grants, role, &t.database))
            .flat_map(|t| {
                let error_table = t.error_logging.then(|| t.error_table_name());
                std::iter::once(t.qualified_name()).chain(error_table)
            })
            .collect();
        Self {
            tables,
            ctes: HashSet::new(),
        }
    }

    /// Also the statement's common table expressions `ctes` (SQLite asks about a CTE read
    /// without columns, such as `COUNT(*) FROM cte`, as about a table).
    pub(crate) fn with_ctes(mut self, ctes: Vec<String>) -> Self {
        self.ctes = ctes.iter().map(|c| c.to_ascii_lowercase()).collect();
        self
    }

    /// Exactly these SQLite tables.
    #[cfg(test)]
    pub(crate) fn tables(names: &[&str]) -> Self {
        Self {
            tables: names.iter().map(|n| (*n).to_owned()).collect(),
            ctes: HashSet::new(),
        }
    }
}

/// Why the authorizer refused a statement.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Denied {
    /// A table the caller may not read, as Snowflake would print it.
    Object(String),
    /// A function the sandbox does not offer.
    Function(String),
    /// Anything that is not a read (`ATTACH`, `PRAGMA`, a write, ...).
    Action(String),
}

impl Denied {
    fn of(ctx: &AuthContext<'_>, readable: &Readable) -> Option<Self> {
        match ctx.action {
            AuthAction::Select | AuthAction::Recursive => None,
            AuthAction::Read { table_name, .. } => {
                // `accessor` names the CTE (or view) a read is in: not a boundary here, the
                // emulator creates no views or triggers.
                // SQLite names no database for a table read without its columns (`COUNT(*)`)
                // and named without one; the only reads it reports of a CTE are of that kind
                // (the columns of a CTE are not a table's). So a CTE name opens only an
                // unqualified name: `main.json_each` is the virtual table, whatever CTE the
                // statement calls `json_each`.
                let unqualified = ctx.database_name.is_none();
                let known = matches!(ctx.database_name, None | Some("main"))
                    && readable.tables.contains(table_name)
                    || unqualified && readable.ctes.contains(&table_name.to_ascii_lowercase());
                (!known).then(|| Self::Object(display_name(table_name)))
            }
            AuthAction::Function { function_name } => (!functions::allowed(function_name))
                .then(|| Self::Function(function_name.to_ascii_uppercase())),
            AuthAction::Pragma { pragma_name, .. } => {
                Some(Self::Action(format!("PRAGMA {pragma_name}")))
            }
            AuthAction::Attach { .. } => Some(Self::Action("ATTACH".into())),
            AuthAction::Detach { .. } => Some(Self::Action("DETACH".into())),
            ref other => Some(Self::Action(action_name(other))),
        }
    }

    fn into_error(self) -> ApiError {
        match self {
            Self::Object(name) => ApiError::new(
                422,
                "002003",
                format!(
                    "SQL compilation error:\nObject '{name}' does not exist or not authorized."
                ),
            )
            .with_sql_state("42S02"),
            Self::Function(name) => ApiError::new(
                422,
                "002140",
                format!(
                    "SQL compilation error:\nUnknown function {name}: the emulator's SQL API \
                     does not offer it (it runs SQLite's portable functions only, see \
                     emulator/README.md \"SQL API\")"
                ),
            )
            .with_sql_state("42601"),
            Self::Action(what) => ApiError::new(
                422,
                "002003",
                format!(
                    "SQL compilation error:\n{what} is not allowed: the emulator's SQL API runs \
                     read-only SELECT statements over the catalog's tables only"
                ),
            )
            .with_sql_state("0A000"),
        }
    }
}

/// A catalog table keeps its name (`DB.SCHEMA.TABLE`); anything else is shown upper-cased,
/// as Snowflake shows an unquoted identifier.
fn display_name(sqlite_name: &str) -> String {
    if sqlite_name.contains('.') {
        sqlite_name.to_owned()
    } else {
        sqlite_name.to_ascii_uppercase()
    }
}

/// `Insert`, `CreateTable`, ... → `INSERT`, `CREATE TABLE`.
fn action_name(action: &AuthAction<'_>) -> String {
    let debug = format!("{action:?}");
    let variant = debug.split([' ', '{', '(']).next().unwrap_or("");
    let mut out = String::new();
    for (i, c) in variant.char_indices() {
        if i > 0 && c.is_ascii_uppercase() {
            out.push(' ');
        }
        out.push(c.to_ascii_uppercase());
    }
    out
}

/// [`run_sandboxed_for`] with the default time limit.
#[cfg(test)]
pub(crate) fn run_sandboxed<R>(
    conn: &Connection,
    readable: Readable,
    f: impl FnOnce(&Connection) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    run_sandboxed_for(
        conn,
        readable,
        crate::settings::config::DEFAULT_SQL_STATEMENT_TIMEOUT,
        f,
    )
}

/// Runs `f` on `conn` with the sandbox in place: the authorizer (for every statement `f`
/// prepares) and `PRAGMA query_only`, cancelled after `limit`; both are removed again before returning.
///
/// # Errors
/// A statement the authorizer refused becomes Snowflake's error for it (`002003`
/// "Object '…' does not exist or not authorized.", `002140` "Unknown function", or `0A000`
/// for anything but a read); other errors are `f`'s, and a failure to set up or remove the
/// sandbox is an internal error.
pub(crate) fn run_sandboxed_for<R>(
    conn: &Connection,
    mut readable: Readable,
    limit: std::time::Duration,
    f: impl FnOnce(&Connection) -> Result<R, ApiError>,
) -> Result<R, ApiError> {
    let internal =
        |e: rusqlite::Error| ApiError::new(500, "ERR_INTERNAL", format!("SQL API sandbox: {e}"));
    if !readable.ctes.is_empty() {
        let real = real_names(conn).map_err(internal)?;
        readable
            .ctes
            .retain(|c| !real.contains(c) && !c.starts_with("sqlite_"));
    }
    let denied: Arc<Mutex<Option<Denied>>> = Arc::default();
    let seen = Arc::clone(&denied);
    let was_query_only: bool = conn
        .query_row("PRAGMA query_only", [], |r| r.get(0))
        .map_err(internal)?;
    conn.pragma_update(None, "query_only", "ON")
        .map_err(internal)?;
    let deadline = std::time::Instant::now() + limit;
    let saved_limits = limits::lower(conn).map_err(internal)?;
    let guard = Guard {
        conn,
        was_query_only,
        saved_limits,
    };
    patterns::install(conn).map_err(internal)?;
    scans::install(conn).map_err(internal)?;
    objects::install(conn).map_err(internal)?;
    let _watch = calls::Watch::start(deadline, LIKE_PATTERN_LIMIT);
    conn.authorizer(Some(move |ctx: AuthContext<'_>| {
        match Denied::of(&ctx, &readable) {
            None => Authorization::Allow,
            Some(d) => {
                let mut first = seen.lock().unwrap_or_else(|e| e.into_inner());
                first.get_or_insert(d);
                Authorization::Deny
            }
        }
    }))
    .map_err(internal)?;
    // A time limit: a statement without end (a recursive CTE without LIMIT) must not hold a
    // reader connection and its blocking thread for ever. The progress handler stops it
    // between instructions, `LIKE`/`GLOB` within one call (`patterns.rs`).
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = Arc::clone(&timed_out);
    conn.progress_handler(
        10_000,
        Some(move || {
            let late = std::time::Instant::now() >= deadline;
            if late {
                flag.store(true, std::sync::atomic::Ordering::Relaxed);
            }
            late
        }),
    )
    .map_err(internal)?;
    let alarm = alarm::Alarm::set(conn.get_interrupt_handle(), deadline);
    let heap = heap::Meter::start(heap::STATEMENT_HEAP_LIMIT);
    // A refused allocation may also show while a row is read: rusqlite asserts on a text
    // SQLite could not give (a panic), and a blob it could not expand reads as empty. Either
    // way the answer is not served.
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| f(conn)));
    let out_of_memory = heap.refused();
    drop(heap);
    drop(alarm);
    drop(guard);
    if out_of_memory {
        return Err(ApiError::new(
            422,
            "000603",
            format!(
                "the statement needed more than the emulator's limit of {} MiB of memory at \
                 once (the values of one row, or its sorts); select fewer or smaller values",
                heap::STATEMENT_HEAP_LIMIT >> 20
            ),
        )
        .with_sql_state("54000"));
    }
    let result = result.unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    let refused = denied.lock().unwrap_or_else(|e| e.into_inner()).take();
    let late = timed_out.load(std::sync::atomic::Ordering::Relaxed)
        || std::time::Instant::now() >= deadline;
    if result.is_err() && late {
        return Err(ApiError::new(
            422,
            "000630",
            format!(
                "Statement reached its statement or warehouse timeout of {:?} and was canceled \
                 (the emulator's limit for SQL API statements).",
                limit
            ),
        )
        .with_sql_state("57014"));
    }
    match (result, refused) {
        (Err(_), Some(d)) => Err(d.into_error()),
        (result, _) => result,
    }
}

/// The lower-cased names of every table, view, index and trigger in the database.
fn real_names(conn: &Connection) -> rusqlite::Result<HashSet<String>> {
    let mut stmt = conn.prepare(
        "SELECT lower(name) FROM sqlite_schema UNION SELECT lower(name) FROM sqlite_temp_schema",
    )?;
    let names = stmt.query_map([], |r| r.get::<_, String>(0))?;
    names.collect()
}

/// Removes the authorizer and the time limit and restores `query_only` and the connection's
/// limits, even when `f` panics.
struct Guard<'c> {
    conn: &'c Connection,
    was_query_only: bool,
    saved_limits: limits::Saved,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        limits::restore(self.conn, &self.saved_limits);
        let _ = self
            .conn
            .authorizer(None::<fn(AuthContext<'_>) -> Authorization>);
        let _ = self.conn.progress_handler(0, None::<fn() -> bool>);
        if !self.was_query_only {
            if let Err(e) = self.conn.pragma_update(None, "query_only", "OFF") {
                tracing::error!(error = %e, "cannot leave the SQL API sandbox's query_only mode");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(conn: &Connection, sql: &str) -> Result<i64, ApiError> {
        run_sandboxed(conn, Readable::tables(&["D.S.T"]), |c| {
            let mut stmt = c
                .prepare(sql)
                .map_err(|e| ApiError::new(422, "001003", e.to_string()))?;
            stmt.query_row([], |r| r.get(0))
                .map_err(|e| ApiError::new(422, "001003", e.to_string()))
        })
    }

    /// A statement without end (a recursive CTE without LIMIT) is cancelled at the time
    /// limit with Snowflake's timeout error, and the connection is usable afterwards.
    #[test]
    fn a_statement_without_end_is_cancelled_at_the_time_limit() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"D.S.T\" (ID INTEGER); INSERT INTO \"D.S.T\" VALUES (1);",
        )
        .unwrap();
        let started = std::time::Instant::now();
        let e = run_sandboxed_for(
            &conn,
            Readable::tables(&["D.S.T", "n"]),
            std::time::Duration::from_millis(200),
            |c| {
                c.query_row(
                    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n) \
                     SELECT COUNT(*) FROM n",
                    [],
                    |r| r.get::<_, i64>(0),
                )
                .map_err(|e| ApiError::new(422, "001003", e.to_string()))
            },
        )
        .unwrap_err();
        assert_eq!(
            (e.status, e.code.as_str()),
            (422, "000630"),
            "{}",
            e.message
        );
        assert!(e.message.contains("timeout"), "{}", e.message);
        // The statement is endless: its return is the interrupt. The bound only catches one
        // that came far past its deadline (generous, so a loaded machine cannot fail it).
        assert!(started.elapsed() < std::time::Duration::from_secs(60));
        // The handler is gone: a statement after it runs to its end.
        assert_eq!(run(&conn, "SELECT COUNT(*) FROM \"D.S.T\"").unwrap(), 1);
    }

    /// The CPU time this thread has used (Linux: `/proc/thread-self/schedstat`).
    #[cfg(target_os = "linux")]
    fn thread_cpu() -> std::time::Duration {
        let stat = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap();
        let ns: u64 = stat.split_whitespace().next().unwrap().parse().unwrap();
        std::time::Duration::from_nanos(ns)
    }

    /// One long `LIKE` call stops at the statement's time limit: its CPU time stays within
    /// the limit + 1 s (before, the call ran to its end, about value length × pattern length
    /// steps: 6 s here, 19 s for a 1.5 MB value at 10 s).
    #[cfg(target_os = "linux")]
    #[test]
    fn one_long_like_call_stops_at_the_time_limit() {
        let conn = Connection::open_in_memory().unwrap();
        let limit = std::time::Duration::from_secs(1);
        for sql in [
            "SELECT printf('%.*c', 3000000, 'a') LIKE '%' || printf('%.*c', 900, 'a') || 'b'",
            "SELECT printf('%.*c', 3000000, 'a') GLOB '*' || printf('%.*c', 900, 'a') || 'b'",
        ] {
            let before = thread_cpu();
            let e = run_sandboxed_for(&conn, Readable::default(), limit, |c| {
                c.query_row(sql, [], |r| r.get::<_, bool>(0))
                    .map_err(|e| ApiError::new(422, "001003", e.to_string()))
            })
            .unwrap_err();
            let used = thread_cpu() - before;
            assert_eq!(
                (e.status, e.code.as_str()),
                (422, "000630"),
                "{sql}: {}",
                e.message
            );
            assert!(
                used <= limit + std::time::Duration::from_secs(1),
                "{sql}: {used:?} of CPU"
            );
        }
    }

    #[test]
    fn only_reads_of_readable_tables_pass_and_the_sandbox_is_lifted_afterwards() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE \"D.S.T\" (ID INTEGER); INSERT INTO \"D.S.T\" VALUES (1), (2);
             CREATE TABLE \"D.S.HIDDEN\" (ID INTEGER); CREATE TABLE _emulator_x (v);",
        )
        .unwrap();
        assert_eq!(run(&conn, "SELECT COUNT(*) FROM \"D.S.T\"").unwrap(), 2);
        for (sql, code, says) in [
            (
                "SELECT COUNT(*) FROM \"D.S.HIDDEN\"",
                "002003",
                "Object 'D.S.HIDDEN'",
            ),
            (
                "SELECT COUNT(*) FROM _emulator_x",
                "002003",
                "Object '_EMULATOR_X'",
            ),
            (
                "SELECT COUNT(*) FROM sqlite_temp_master",
                "002003",
                "Object 'SQLITE_TEMP_MASTER'",
            ),
            (
                "ATTACH ':memory:' AS other",
                "002003",
                "ATTACH is not allowed",
            ),
            (
                "PRAGMA writable_schema = 1",
                "002003",
                "PRAGMA writable_schema is not allowed",
            ),
            (
                "PRAGMA query_only = 0",
                "002003",
                "PRAGMA query_only is not allowed",
            ),
            ("CREATE TEMP TABLE t (a)", "002003", "is not allowed"),
            (
                "INSERT INTO \"D.S.T\" VALUES (3)",
                "002003",
                "INSERT is not allowed",
            ),
            ("BEGIN", "002003", "TRANSACTION is not allowed"),
            (
                "SELECT load_extension('x')",
                "002140",
                "Unknown function LOAD_EXTENSION",
            ),
        ] {
            let e = run(&conn, sql).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (422, code),
                "{sql}: {}",
                e.message
            );
            assert!(e.message.contains(says), "{sql}: {}", e.message);
        }
        // The writer's connection writes again, with no trace of the sandbox.
        conn.execute("INSERT INTO \"D.S.T\" VALUES (3)", [])
            .unwrap();
        conn.execute_batch("ATTACH ':memory:' AS other; DETACH other")
            .unwrap();
        let only: i64 = conn
            .query_row("PRAGMA query_only", [], |r| r.get(0))
            .unwrap();
        assert_eq!(only, 0);
    }

    #[test]
    fn action_names_are_sql_words() {
        let insert = AuthAction::Insert { table_name: "t" };
        assert_eq!(action_name(&insert), "INSERT");
        let create = AuthAction::CreateTempTable { table_name: "t" };
        assert_eq!(action_name(&create), "CREATE TEMP TABLE");
    }
}
