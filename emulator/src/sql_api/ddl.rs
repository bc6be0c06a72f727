//! The catalog DDL the SQL API runs: `CREATE [OR REPLACE] [TRANSIENT] TABLE [IF NOT EXISTS]`,
//! `CREATE [OR REPLACE] PIPE [IF NOT EXISTS]` and the `ALTER TABLE`s the catalog models (`ADD
//! [COLUMN]`, `ALTER [COLUMN] … DROP|SET NOT NULL`, `ALTER [COLUMN] … SET DATA TYPE` (a
//! widening: `catalog/apply/alter_table.rs`), `SET ENABLE_SCHEMA_EVOLUTION = TRUE|FALSE`)
//! and `DROP TABLE|PIPE [IF EXISTS]`, as users create (and drop) their tables through
//! Snowflake's SQL API (the Kafka connector does; `table_replay follow`'s "new snapshot"
//! fix drops and makes again its change table and pipe).
//!
//! A statement is recognised by its first words ([`parse`]); its object's name is resolved
//! with the request's `database` and `schema` (matched case-sensitively, as for `SELECT`s).
//! It runs as a script of the catalog, `USE SCHEMA "<db>"."<schema>"; <statement>`: the text
//! stored in `_emulator_ddl` and replayed at start, the same path as `--ddl` scripts and
//! schema evolution. [`Ddl::apply`] decides on a copy of the catalog; the caller stores the
//! SQLite tables and the script in one transaction, then swaps the model
//! (`service/ddl.rs`).
//!
//! The caller's role must be granted the object's database (`--grant`), as a `SELECT` must
//! to read it: a role creates tables only where it reads them, so the table it creates is
//! readable by it (as its owner's), and by no role without a grant on its database.
//!
//! A `DROP`, and `OR REPLACE` of an existing table or pipe (Snowflake's drop and create),
//! remove what goes with the old object ([`Ddl::removes`]; `service/dropped.rs`): a table's
//! stored rows and the channels of the pipes loading into it, a pipe's channels and their
//! committed tokens. `DROP … IF EXISTS` of a missing object is answered and not stored.
//!
//! Refused (each naming what is accepted): other statements (`INSERT`, `DROP VIEW`, `GRANT`,
//! …) and a statement the catalog would ignore.
//!
//! Bounded (issue 72): a statement over [`MAX_DDL_BYTES`] is refused before it is read, and
//! an `ALTER` that leaves its table as it was is answered but neither stored nor logged.

use serde_json::Value;
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::tokenizer::{Token, Tokenizer, Word};

use crate::base::api_error::ApiError;
use crate::catalog::{Catalog, CatalogError, StatementError};

use super::current::{current_database, current_schema};
use super::failure::failed;

/// What the SQL API runs besides read-only `SELECT`s, for messages.
pub(crate) const ACCEPTED: &str = "read-only SELECT/WITH statements and the DDL CREATE \
     [OR REPLACE] [TRANSIENT] TABLE [IF NOT EXISTS], CREATE [OR REPLACE] PIPE [IF NOT EXISTS] \
     and ALTER TABLE … ADD [COLUMN] / ALTER [COLUMN] … DROP|SET NOT NULL / ALTER [COLUMN] … \
     SET DATA TYPE (a widening) / SET ENABLE_SCHEMA_EVOLUTION = TRUE|FALSE, DROP TABLE|PIPE \
     [IF EXISTS], and INSERT OVERWRITE INTO <t> SELECT * FROM <t> \
     QUALIFY <condition> (the same table, no subquery)";

/// The most bytes of one DDL statement through the SQL API: the statement is stored in
/// `_emulator_ddl`, logged and replayed at every start (wider tables go in `--ddl` scripts;
/// a `CREATE TABLE` of 2,000 columns of 30 bytes each fits).
pub(crate) const MAX_DDL_BYTES: usize = 64 << 10;

/// The refusal of a statement the SQL API does not run.
pub(crate) fn not_accepted(what: &str) -> ApiError {
    failed(
        "002003",
        "0A000",
        format!("the emulator's SQL API does not run {what}: it runs {ACCEPTED}"),
    )
}

/// The kind of object a statement creates or alters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Object {
    Table,
    Pipe,
}

/// What the statement does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verb {
    Create {
        or_replace: bool,
        if_not_exists: bool,
    },
    Alter,
    Drop {
        if_exists: bool,
    },
}

/// What a statement removes with its object: the stored rows of a table, the channels of a
/// pipe (`DROP`, and `CREATE OR REPLACE` of an existing object).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Removed {
    /// The table `(database, schema, name)` as the catalog stores it.
    Table(String, String, String),
    /// The pipe `(database, schema, name)` as the catalog stores it.
    Pipe(String, String, String),
}

/// A DDL statement of the SQL API, resolved against the request and ready to apply.
#[derive(Debug, Clone)]
pub(crate) struct Ddl {
    object: Object,
    verb: Verb,
    /// The object's database, schema and name as the catalog stores them.
    database: String,
    schema: String,
    name: String,
    /// The catalog script: the statement in the request's database and schema.
    pub(crate) script: String,
    /// The role grants (`--grant`) and the role the statement runs as.
    grants: Vec<(String, String)>,
    role: Option<String>,
}

/// The outcome of [`Ddl::apply`].
pub(crate) enum Applied {
    /// Nothing changed (`IF NOT EXISTS` of an existing object, an `ALTER` that leaves the
    /// table as it was): the status to answer; nothing is stored.
    Unchanged(String),
    /// The catalog after the statement, and the status to answer.
    Changed(Catalog, String),
}

/// Recognises a DDL statement the SQL API runs; `Ok(None)` when `sql` is no DDL at all (a
/// `SELECT` goes on to the sandbox).
///
/// # Errors
/// 422 `001003` (SQLSTATE `54000`) for a statement over [`MAX_DDL_BYTES`], before it is
/// read (the SQL API sends here only statements whose first word is not `SELECT`/`WITH`);
/// `002003` for a `CREATE`/`ALTER`/`DROP`/… the SQL API does not run, `000008` for
/// several statements, `001003` for a name it cannot read, and `090105`/`090106` when the name
/// needs a current database or schema the request does not give.
pub(crate) fn parse(
    catalog: &Catalog,
    sql: &str,
    database: Option<&str>,
    schema: Option<&str>,
    grants: &[(String, String)],
    role: Option<&str>,
) -> Result<Option<Ddl>, ApiError> {
    // Before the tokenizer: a 1 MB statement is refused in microseconds.
    if sql.len() > MAX_DDL_BYTES {
        return Err(failed(
            "001003",
            "54000",
            format!(
                "SQL compilation error: the statement has {} bytes; DDL through the emulator's \
                 SQL API takes at most 65,536 bytes (each statement is stored and replayed at \
                 every start): declare larger tables in a --ddl script",
                sql.len()
            ),
        ));
    }
    let tokens = Tokenizer::new(&SnowflakeDialect {}, sql)
        .tokenize()
        .map_err(|e| failed("001003", "42000", format!("SQL compilation error: {e}")))?;
    let words: Vec<&Token> = tokens
        .iter()
        .filter(|t| !matches!(t, Token::Whitespace(_)))
        .collect();
    let keyword = |i: usize| match words.get(i) {
        Some(Token::Word(w)) if w.quote_style.is_none() => w.value.to_ascii_uppercase(),
        _ => String::new(),
    };
    let first = keyword(0);
    if first == "SELECT" || first == "WITH" {
        return Ok(None);
    }
    if let Some(semi) = words.iter().position(|t| **t == Token::SemiColon) {
        if words[semi..].iter().any(|t| **t != Token::SemiColon) {
            return Err(failed(
                "000008",
                "0A000",
                "Actual statement count 2 did not match the desired statement count 1.",
            ));
        }
    }
    let at = std::cell::Cell::new(1);
    let take = |kw: &str| {
        let found = keyword(at.get()) == kw;
        if found {
            at.set(at.get() + 1);
        }
        found
    };
    let (object, verb) = match first.as_str() {
        "CREATE" => {
            let or_replace = take("OR") && take("REPLACE");
            take("TRANSIENT");
            let object = if take("TABLE") {
                Object::Table
            } else if take("PIPE") {
                Object::Pipe
            } else {
                return Err(not_accepted(&format!("CREATE {}", keyword(at.get()))));
            };
            let if_not_exists = take("IF") && take("NOT") && take("EXISTS");
            (
                object,
                Verb::Create {
                    or_replace,
                    if_not_exists,
                },
            )
        }
        "DROP" => {
            let object = if take("TABLE") {
                Object::Table
            } else if take("PIPE") {
                Object::Pipe
            } else {
                return Err(not_accepted(&format!("DROP {}", keyword(at.get()))));
            };
            let if_exists = take("IF") && take("EXISTS");
            (object, Verb::Drop { if_exists })
        }
        "ALTER" if take("TABLE") => {
            // IF EXISTS: the catalog reads it; the name follows.
            let _ = take("IF") && take("EXISTS");
            (Object::Table, Verb::Alter)
        }
        "" => return Err(not_accepted("an empty statement")),
        other => return Err(not_accepted(&format!("{other} statements"))),
    };
    let parts = name_parts(&words[at.get()..])?;
    let what = match (verb, object) {
        (Verb::Alter, _) => "ALTER TABLE",
        (Verb::Drop { .. }, Object::Table) => "DROP TABLE",
        (Verb::Drop { .. }, Object::Pipe) => "DROP PIPE",
        (_, Object::Table) => "CREATE TABLE",
        (_, Object::Pipe) => "CREATE PIPE",
    };
    let context = |e: ApiError| ApiError {
        message: e.message.replacen(
            "Cannot perform SELECT.",
            &format!("Cannot perform {what}."),
            1,
        ),
        ..e
    };
    let (db, sch, name, prefix) = resolve(
        &parts,
        current_database(catalog, database),
        current_schema(catalog, database, schema),
        context,
    )?;
    Ok(Some(Ddl {
        object,
        verb,
        database: db,
        schema: sch,
        name,
        script: format!("{prefix}\n{}", sql.trim().trim_end_matches(';')),
        grants: grants.to_vec(),
        role: role.map(str::to_owned),
    }))
}

/// The object's database, schema and name, and the `USE` the script starts with: the
/// request's schema (or database) when it names them; a name that needs one it does not
/// name is refused as a SELECT's is (`context` names the statement).
fn resolve(
    parts: &[String],
    use_database: Result<String, ApiError>,
    use_schema: Result<String, ApiError>,
    context: impl Fn(ApiError) -> ApiError,
) -> Result<(String, String, String, String), ApiError> {
    Ok(match parts {
        [name] => {
            let s = use_schema.map_err(&context)?;
            let d = use_database.map_err(&context)?;
            let prefix = format!("USE SCHEMA {}.{};", quote(&d), quote(&s));
            (d, s, name.clone(), prefix)
        }
        [s, name] => {
            let d = use_database.map_err(&context)?;
            let prefix = match &use_schema {
                Ok(current) => format!("USE SCHEMA {}.{};", quote(&d), quote(current)),
                Err(_) => format!("USE DATABASE {};", quote(&d)),
            };
            (d, s.clone(), name.clone(), prefix)
        }
        [d, s, name] => {
            let prefix = match (&use_database, &use_schema) {
                (Ok(db), Ok(current)) => format!("USE SCHEMA {}.{};", quote(db), quote(current)),
                (Ok(db), Err(_)) => format!("USE DATABASE {};", quote(db)),
                _ => String::new(),
            };
            (d.clone(), s.clone(), name.clone(), prefix)
        }
        _ => {
            return Err(failed(
                "001003",
                "42000",
                "SQL compilation error: a name has at most 3 parts (database.schema.object)",
            ))
        }
    })
}

/// The object name at the start of `tokens`: `A`, `A.B` or `A.B.C`, each part upper-cased
/// unless quoted.
fn name_parts(tokens: &[&Token]) -> Result<Vec<String>, ApiError> {
    object_name(tokens).map(|(parts, _)| parts).ok_or_else(|| {
        failed(
            "001003",
            "42000",
            "SQL compilation error: the statement names no object after its keywords; write e.g. \
             CREATE TABLE [IF NOT EXISTS] <name> (<column> <type>, …)",
        )
    })
}

/// The dotted object name `tokens` (white space left out) start with, each part upper-cased
/// unless quoted, and how many tokens it takes; `None` when they start with no name.
pub(super) fn object_name(tokens: &[&Token]) -> Option<(Vec<String>, usize)> {
    let mut parts = Vec::new();
    let mut taken = 0;
    loop {
        let Some(Token::Word(Word {
            value, quote_style, ..
        })) = tokens.get(taken)
        else {
            return None;
        };
        parts.push(match quote_style {
            Some(_) => value.clone(),
            None => value.to_uppercase(),
        });
        taken += 1;
        if tokens.get(taken) != Some(&&Token::Period) {
            return Some((parts, taken));
        }
        taken += 1;
    }
}

/// `name` as a quoted identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

impl Ddl {
    /// The object's qualified name `DB.SCHEMA.NAME`.
    pub(crate) fn qualified(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.name)
    }

    /// Applies the statement to a copy of `catalog`.
    ///
    /// # Errors
    /// 422 `003001` when the role is not granted the object's database; `002003` for a
    /// statement the catalog ignores; the catalog's
    /// refusal (`002003` for a missing object, `002002` for an existing one, `001003` for
    /// the rest).
    pub(crate) fn apply(&self, catalog: &Catalog) -> Result<Applied, ApiError> {
        self.authorize(&self.database)?;
        let kind = match self.object {
            Object::Table => "Table",
            Object::Pipe => "Pipe",
        };
        let exists = match self.object {
            Object::Table => catalog
                .table_exact(&self.database, &self.schema, &self.name)
                .is_some(),
            Object::Pipe => catalog
                .pipe_definition(
                    &quote(&self.database),
                    &quote(&self.schema),
                    &quote(&self.name),
                )
                .is_some(),
        };
        let status = match self.verb {
            Verb::Create {
                if_not_exists: true,
                ..
            } if exists => {
                return Ok(Applied::Unchanged(format!(
                    "{} already exists, statement succeeded.",
                    self.name
                )))
            }
            Verb::Drop { if_exists: true } if !exists => {
                return Ok(Applied::Unchanged(format!(
                    "Drop statement executed successfully ({} already dropped).",
                    self.name
                )))
            }
            Verb::Drop { .. } => format!("{} successfully dropped.", self.name),
            Verb::Create { .. } => format!("{kind} {} successfully created.", self.name),
            Verb::Alter => "Statement executed successfully.".to_owned(),
        };
        let mut next = catalog.clone();
        let notes = next.apply_sql(&self.script).map_err(|e| {
            // The script's statement number and line would name the `USE` the emulator
            // added: the statement's own error is the message.
            let (code, state, message) = match &e {
                CatalogError::Statement {
                    kind: StatementError::DoesNotExist { kind, name },
                    ..
                } => (
                    "002003",
                    "42S02",
                    format!("{kind} {name} does not exist or not authorized; create it first"),
                ),
                CatalogError::Statement {
                    kind: kind @ StatementError::AlreadyExists { .. },
                    ..
                } => ("002002", "42710", kind.to_string()),
                CatalogError::Statement {
                    kind: StatementError::TypeChange { code, message },
                    ..
                } => (*code, "22000", message.clone()),
                CatalogError::Statement { kind, .. } => ("001003", "42000", kind.to_string()),
                other => ("001003", "42000", other.to_string()),
            };
            failed(code, state, format!("SQL compilation error:\n{message}"))
        })?;
        if !notes.is_empty() {
            return Err(not_accepted("this form of ALTER TABLE"));
        }
        // An ALTER that leaves the table as it was (`DROP NOT NULL` of a nullable column) is
        // answered as Snowflake does and neither stored nor logged: replayed, it would change
        // nothing either.
        if self.verb == Verb::Alter
            && next.table_exact(&self.database, &self.schema, &self.name)
                == catalog.table_exact(&self.database, &self.schema, &self.name)
        {
            return Ok(Applied::Unchanged(status));
        }
        if self.object == Object::Pipe {
            if let Some(p) = next.pipe_definition(
                &quote(&self.database),
                &quote(&self.schema),
                &quote(&self.name),
            ) {
                self.authorize(&p.table_database)?;
            }
        }
        Ok(Applied::Changed(next, status))
    }

    /// What the statement removes from `old` (the catalog it applies to) with its object:
    /// a `DROP` of an existing object, or `CREATE OR REPLACE` of one (the new object starts
    /// empty, as Snowflake's does).
    pub(crate) fn removes(&self, old: &Catalog) -> Vec<Removed> {
        let replaces = matches!(
            self.verb,
            Verb::Drop { .. }
                | Verb::Create {
                    or_replace: true,
                    if_not_exists: false
                }
        );
        let (d, s, n) = (&self.database, &self.schema, &self.name);
        let exists = match self.object {
            Object::Table => old.table_exact(d, s, n).is_some(),
            Object::Pipe => old
                .pipe_definition(&quote(d), &quote(s), &quote(n))
                .is_some(),
        };
        if !replaces || !exists {
            return Vec::new();
        }
        vec![match self.object {
            Object::Table => Removed::Table(d.clone(), s.clone(), n.clone()),
            Object::Pipe => Removed::Pipe(d.clone(), s.clone(), n.clone()),
        }]
    }

    /// Whether the statement's role may create objects in `database`.
    fn authorize(&self, database: &str) -> Result<(), ApiError> {
        if crate::security::auth::role_granted(&self.grants, self.role.as_deref(), database) {
            return Ok(());
        }
        let role = self.role.as_deref().unwrap_or("PUBLIC").trim_matches('"');
        Err(failed(
            "003001",
            "42501",
            format!(
                "SQL access control error:\nInsufficient privileges to operate on database \
                 '{database}' (the emulator's --grant gives role {role} no access to it: grant \
                 it with --grant {role}={database}, or run the statement as a role granted it)"
            ),
        ))
    }
}

/// The SQL API's answer to a DDL statement: one row, column `status`.
pub(crate) fn answer(status: &str, handle: &str) -> Value {
    super::encode::one_text_row("status", status, handle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.apply_sql("CREATE DATABASE D; CREATE SCHEMA D.S; CREATE SCHEMA D.\"lower\";")
            .unwrap();
        c
    }

    #[test]
    fn statements_run_in_the_request_schema_and_others_are_refused() {
        let c = catalog();
        let parse = |sql: &str, db: Option<&str>, schema: Option<&str>| {
            parse(&c, sql, db, schema, &[], None).map(|d| d.map(|d| (d.qualified(), d.script)))
        };
        for (sql, db, schema, qualified, script) in [
            (
                "CREATE TABLE t (A INT)",
                Some("D"),
                Some("S"),
                "D.S.T",
                "USE SCHEMA \"D\".\"S\";\nCREATE TABLE t (A INT)",
            ),
            (
                "create or replace transient table if not exists \"lower\".\"My T\" (A INT);",
                Some("D"),
                Some("S"),
                "D.lower.My T",
                "USE SCHEMA \"D\".\"S\";\ncreate or replace transient table if not exists \
                 \"lower\".\"My T\" (A INT)",
            ),
            (
                "CREATE PIPE d.s.p AS COPY INTO d.s.t FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))",
                None,
                None,
                "D.S.P",
                "\nCREATE PIPE d.s.p AS COPY INTO d.s.t FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))",
            ),
            (
                "ALTER TABLE IF EXISTS s.t ADD COLUMN B INT",
                Some("D"),
                None,
                "D.S.T",
                "USE DATABASE \"D\";\nALTER TABLE IF EXISTS s.t ADD COLUMN B INT",
            ),
        ] {
            assert_eq!(
                parse(sql, db, schema).unwrap(),
                Some((qualified.to_owned(), script.to_owned())),
                "{sql}"
            );
        }
        assert!(parse("SELECT 1", None, None).unwrap().is_none());
        for (sql, db, schema, code) in [
            ("INSERT INTO t VALUES (1)", Some("D"), Some("S"), "002003"),
            ("DROP VIEW v", Some("D"), Some("S"), "002003"),
            ("DROP TABLE", Some("D"), Some("S"), "001003"),
            ("CREATE VIEW v AS SELECT 1", Some("D"), Some("S"), "002003"),
            ("", Some("D"), Some("S"), "002003"),
            ("CREATE TABLE (A INT)", Some("D"), Some("S"), "001003"),
            ("CREATE TABLE t (A INT)", Some("D"), None, "090106"),
            ("CREATE TABLE t (A INT)", Some("d"), Some("S"), "090105"),
            ("CREATE TABLE s.t (A INT)", None, None, "090105"),
            (
                "CREATE TABLE t (A INT); SELECT 1",
                Some("D"),
                Some("S"),
                "000008",
            ),
        ] {
            let e = parse(sql, db, schema).unwrap_err();
            assert_eq!(
                (e.status, e.code.as_str()),
                (422, code),
                "{sql}: {}",
                e.message
            );
        }
    }

    /// `SET DATA TYPE` through the SQL API: a widening changes the table; a narrowing is
    /// answered with Snowflake's code and words, the catalog left as it was.
    #[test]
    fn set_data_type_widens_and_a_narrowing_is_refused_as_snowflake_does() {
        let mut c = catalog();
        c.apply_sql("CREATE TABLE D.S.T (V VARCHAR(20), M NUMBER(10,2))")
            .unwrap();
        let run = |c: &Catalog, sql: &str| {
            parse(c, sql, Some("D"), Some("S"), &[], None)
                .unwrap()
                .unwrap()
                .apply(c)
        };
        let Ok(Applied::Changed(next, status)) = run(
            &c,
            "ALTER TABLE T ALTER COLUMN V SET DATA TYPE VARCHAR(200)",
        ) else {
            panic!("a widening did not change the table");
        };
        assert_eq!(status, "Statement executed successfully.");
        let ty = |c: &Catalog, col: &str| {
            c.table_exact("D", "S", "T")
                .unwrap()
                .column(col)
                .unwrap()
                .ty
                .sql_name()
        };
        assert_eq!(ty(&next, "V"), "VARCHAR(200)");
        let Err(e) = run(
            &next,
            "ALTER TABLE T ALTER COLUMN V SET DATA TYPE VARCHAR(5)",
        ) else {
            panic!("a narrowing was run");
        };
        assert_eq!((e.status, e.code.as_str()), (422, "040050"));
        assert_eq!(
            e.message,
            "SQL compilation error:\ncannot change column V from type VARCHAR(200) to \
             VARCHAR(5) because reducing the byte-length of a varchar is not supported."
        );
        let Err(e) = run(
            &next,
            "ALTER TABLE T ALTER COLUMN M SET DATA TYPE VARCHAR(5)",
        ) else {
            panic!("a type change was run");
        };
        assert_eq!(e.code, "002108", "{}", e.message);
        assert_eq!(ty(&next, "M"), "NUMBER(10,2)");
    }
}
