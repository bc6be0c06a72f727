//! The statement's current database and schema: the request's `database` and `schema` fields,
//! matched case-sensitively as Snowflake does ("must match the case of the field returned by a
//! SQL SHOW command" [SQL]), with a hint when a name differs only in case. Unqualified names in
//! `SELECT`s (`rewrite.rs`), DDL (`ddl.rs`), `INSERT OVERWRITE` (`overwrite.rs`) and
//! `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET` (`migrate.rs`) resolve against them.

use super::failure::failed;
use crate::base::api_error::ApiError;
use crate::catalog::Catalog;

/// The statement's current database: the request's `database`, matched case-sensitively as
/// Snowflake does ("must match the case of the field returned by a SQL SHOW command" [SQL]).
///
/// # Errors
///
/// 422 `090105` when the request names none, or none of exactly that name exists (a hint
/// names the database that differs only in case).
pub(super) fn current_database(
    catalog: &Catalog,
    database: Option<&str>,
) -> Result<String, ApiError> {
    match database {
        Some(d) if catalog.has_database_exact(d) => Ok(d.to_owned()),
        _ => Err(no_current(
            "090105",
            "database",
            database,
            catalog.has_database(database.unwrap_or("")),
        )),
    }
}

/// The statement's current schema: the request's `schema` in its current database, matched
/// case-sensitively.
///
/// # Errors
///
/// As [`current_database`], and 422 `090106` for a schema that is not there.
pub(super) fn current_schema(
    catalog: &Catalog,
    database: Option<&str>,
    schema: Option<&str>,
) -> Result<String, ApiError> {
    let db = current_database(catalog, database)?;
    match schema {
        Some(s) if catalog.has_schema_exact(&db, s) => Ok(s.to_owned()),
        _ => Err(no_current(
            "090106",
            "schema",
            schema,
            catalog.has_schema(&db, schema.unwrap_or("")),
        )),
    }
}

/// A hint when a request field names an object only in another case.
/// 422 `code`: the session has no current `kind` (`database` or `schema`), with a hint when
/// one differs from the requested name only in case.
fn no_current(code: &str, kind: &str, given: Option<&str>, exists_ignoring_case: bool) -> ApiError {
    failed(
        code,
        "22000",
        format!(
            "Cannot perform SELECT. This session does not have a current {kind}. Call \
             'USE {}', or use a qualified name.{}",
            kind.to_ascii_uppercase(),
            case_hint(kind, given, exists_ignoring_case)
        ),
    )
}

fn case_hint(kind: &str, given: Option<&str>, exists_ignoring_case: bool) -> String {
    match given {
        Some(name) if exists_ignoring_case => format!(
            " (the request's {kind} \"{name}\" matches only in another case: the SQL API's \
             database and schema fields are case-sensitive; an unquoted name is stored in \
             upper case)"
        ),
        _ => String::new(),
    }
}
