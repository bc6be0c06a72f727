//! Applying one DDL statement to the catalog: `CREATE`/`DROP`/`USE` of databases, schemas,
//! tables and pipes, within a session (the current database and schema).

use sqlparser::ast::{
    CreateTableLikeKind, ObjectName, ObjectNamePart, ObjectType, SchemaName, Statement, Use,
};
use sqlparser::dialect::SnowflakeDialect;
use sqlparser::parser::Parser;

pub(crate) use model::Table;

use pipe_ddl::{CreatePipe, PipeStatement};
use script::RawStatement;

use super::*;

mod alter_table;
mod column_defs;
mod expression_depth;
mod statement_text;
mod table_options;

use column_defs::columns;
use statement_text::{is_unmodelled, strip_error_logging, structured_array, unknown_kind};

impl Catalog {
    pub(super) fn apply_statement(
        &mut self,
        session: &mut Session,
        statement: &RawStatement,
        notes: &mut Vec<String>,
    ) -> Result<(), StatementError> {
        let ignored = || format!("ignored: {}", statement.snippet());
        // Before any parser builds a tree of it (expression_depth.rs).
        let depth = expression_depth::expression_depth(&statement.tokens);
        if depth > expression_depth::MAX_EXPRESSION_DEPTH {
            return Err(StatementError::Syntax(format!(
                "the statement's expressions nest {depth} operators and parentheses deep, more \
                 than the emulator's limit of {}: split long chains of operators (a + b + …, \
                 a AND b AND …) into several columns or conditions",
                expression_depth::MAX_EXPRESSION_DEPTH
            )));
        }
        if let Some((user, slots)) = user_keys::parse_unset(&statement.tokens) {
            self.user_keys
                .retain(|k| k.user != user || !slots.contains(&k.slot));
            return Ok(());
        }
        if let Some(grant) = user_keys::parse_role_grant(&statement.tokens) {
            let grant = grant.map_err(StatementError::Syntax)?;
            let pair = (grant.user, grant.role);
            if grant.granted {
                self.user_roles.insert(pair);
            } else {
                self.user_roles.remove(&pair);
            }
            return Ok(());
        }
        let keys = user_keys::parse(&statement.tokens);
        let default_role = user_keys::parse_default_role(&statement.tokens);
        if keys.is_some() || default_role.is_some() {
            if let Some(keys) = keys {
                // Setting a slot again replaces its key, as on Snowflake.
                for key in keys.map_err(StatementError::Syntax)? {
                    self.user_keys
                        .retain(|k| k.user != key.user || k.slot != key.slot);
                    self.user_keys.push(key);
                }
            }
            if let Some(default_role) = default_role {
                let (user, role) = default_role.map_err(StatementError::Syntax)?;
                self.default_roles.insert(user, role);
            }
            return Ok(());
        }
        if let Some(set) = table_options::parse(&statement.tokens) {
            let name = qualify(session, &set.name)?;
            match self.schema_mut(&name)?.tables.get_mut(&name.name) {
                Some(table) => table.schema_evolution = set.enabled,
                None if set.if_exists => {}
                None => {
                    return Err(StatementError::DoesNotExist {
                        kind: "table",
                        name: name.display(),
                    })
                }
            }
            return Ok(());
        }
        if pipe_ddl::is_pipe_statement(&statement.tokens) {
            let parsed = pipe_ddl::parse(&statement.tokens)?;
            return self.apply_pipe_statement(session, parsed);
        }
        let stripped = strip_error_logging(&statement.tokens);
        session.error_logging = stripped.as_ref().map(|(on, _)| *on);
        let text = stripped.map_or_else(|| statement.text.clone(), |(_, text)| text);
        let text = statement_text::strip_column_comments(&statement.tokens).unwrap_or(text);
        let parsed = match Parser::parse_sql(&SnowflakeDialect, &text) {
            Ok(parsed) => parsed,
            Err(_) if is_unmodelled(&statement.tokens) => {
                notes.push(ignored());
                return Ok(());
            }
            Err(e) => {
                if let Some(kind) = unknown_kind(&statement.tokens) {
                    return Err(StatementError::Syntax(format!(
                        "`{kind}` is not a kind of object Snowflake creates or drops: check \
                         the word after CREATE or DROP (TABLE, SCHEMA, DATABASE, PIPE, …)"
                    )));
                }
                let mut message = strip_parser_prefix(&e.to_string());
                if let Some(ty) = structured_array(&statement.tokens) {
                    message.push_str(&format!(
                        "; structured type {ty}(…) is not supported by the emulator (it would \
                         not check or convert the elements to their declared types): declare \
                         the column as semi-structured ARRAY, OBJECT or VARIANT, or test \
                         structured types against a Snowflake account"
                    ));
                }
                return Err(StatementError::Syntax(message));
            }
        };
        for parsed in parsed {
            if !self.apply_parsed(session, parsed)? {
                notes.push(ignored());
            }
        }
        Ok(())
    }

    /// Applies one parsed statement; `Ok(false)` when the statement is not modelled.
    pub(super) fn apply_parsed(
        &mut self,
        session: &mut Session,
        statement: Statement,
    ) -> Result<bool, StatementError> {
        match statement {
            Statement::Use(use_) => self.apply_use(session, use_),
            Statement::CreateDatabase {
                db_name,
                if_not_exists,
                or_replace,
                clone,
                ..
            } => {
                refuse_clone(clone.is_some(), "DATABASE")?;
                let parts = idents(&db_name)?;
                let [name] = parts.as_slice() else {
                    return Err(StatementError::Syntax(format!(
                        "a database name has one part, found {db_name}"
                    )));
                };
                let name = name.normalized();
                let exists = self.databases.contains_key(&name);
                if keep_existing(exists, if_not_exists, or_replace, "database", || {
                    name.clone()
                })? {
                    return Ok(true);
                }
                let mut db = Database::default();
                db.schemas.insert("PUBLIC".into(), Schema::default());
                self.databases.insert(name.clone(), db);
                session.database = Some(name);
                session.schema = Some("PUBLIC".into());
                Ok(true)
            }
            Statement::CreateSchema {
                schema_name,
                if_not_exists,
                or_replace,
                clone,
                ..
            } => {
                refuse_clone(clone.is_some(), "SCHEMA")?;
                let (SchemaName::Simple(name) | SchemaName::NamedAuthorization(name, _)) =
                    &schema_name
                else {
                    return Err(StatementError::Unsupported(
                        "CREATE SCHEMA AUTHORIZATION without a schema name".into(),
                    ));
                };
                let (database, schema) = self.schema_name(session, &idents(name)?)?;
                let db = self.databases.get_mut(&database).ok_or_else(|| {
                    StatementError::DoesNotExist {
                        kind: "database",
                        name: database.clone(),
                    }
                })?;
                let exists = db.schemas.contains_key(&schema);
                if keep_existing(exists, if_not_exists, or_replace, "schema", || {
                    format!("{database}.{schema}")
                })? {
                    return Ok(true);
                }
                db.schemas.insert(schema.clone(), Schema::default());
                session.database = Some(database);
                session.schema = Some(schema);
                Ok(true)
            }
            Statement::CreateTable(create) => {
                let name = qualify(session, &idents(&create.name)?)?;
                if create.query.is_some() {
                    return Err(StatementError::Unsupported(
                        "CREATE TABLE ... AS SELECT; declare the columns instead".into(),
                    ));
                }
                let source = match (&create.like, &create.clone) {
                    (
                        Some(
                            CreateTableLikeKind::Parenthesized(like)
                            | CreateTableLikeKind::Plain(like),
                        ),
                        _,
                    ) => Some(&like.name),
                    (None, Some(clone)) => Some(clone),
                    (None, None) => None,
                };
                let columns = if let Some(source) = source {
                    let source = qualify(session, &idents(source)?)?;
                    self.table_exact(&source.database, &source.schema, &source.name)
                        .ok_or_else(|| StatementError::DoesNotExist {
                            kind: "table",
                            name: source.display(),
                        })?
                        .columns
                        .clone()
                } else {
                    columns(&create.columns)?
                };
                if columns.is_empty() {
                    return Err(StatementError::Syntax(
                        "a table needs at least one column".into(),
                    ));
                }
                let schema = self.schema_mut(&name)?;
                let exists = schema.tables.contains_key(&name.name);
                if name.keep_existing(exists, create.if_not_exists, create.or_replace, "table")? {
                    return Ok(true);
                }
                let error_logging = session.error_logging.unwrap_or(false);
                let schema_evolution = create.enable_schema_evolution.unwrap_or(false);
                schema.tables.insert(
                    name.name.clone(),
                    Table {
                        database: name.database,
                        schema: name.schema,
                        name: name.name,
                        columns,
                        error_logging,
                        schema_evolution,
                    },
                );
                Ok(true)
            }
            Statement::AlterTable(alter) => self.alter_table(session, alter),
            Statement::Drop {
                object_type,
                if_exists,
                names,
                ..
            } => {
                for name in &names {
                    self.drop_object(session, object_type, if_exists, &idents(name)?)?;
                }
                Ok(matches!(
                    object_type,
                    ObjectType::Table | ObjectType::Schema | ObjectType::Database
                ))
            }
            _ => Ok(false),
        }
    }

    pub(super) fn apply_use(
        &mut self,
        session: &mut Session,
        use_: Use,
    ) -> Result<bool, StatementError> {
        match use_ {
            Use::Database(name) | Use::Catalog(name) => {
                let parts = idents(&name)?;
                let [db] = parts.as_slice() else {
                    return Err(StatementError::Syntax(format!(
                        "USE DATABASE takes a one-part name, found {name}"
                    )));
                };
                let db = db.normalized();
                self.require_database(&db)?;
                session.database = Some(db);
                session.schema = None;
                if self.databases[session.database.as_deref().unwrap_or_default()]
                    .schemas
                    .contains_key("PUBLIC")
                {
                    session.schema = Some("PUBLIC".into());
                }
                Ok(true)
            }
            Use::Schema(name) => {
                let (db, schema) = self.schema_name(session, &idents(&name)?)?;
                self.require_schema(&db, &schema)?;
                session.database = Some(db);
                session.schema = Some(schema);
                Ok(true)
            }
            Use::Object(name) => {
                let parts = idents(&name)?;
                match parts.as_slice() {
                    [_] => self.apply_use(session, Use::Database(name)),
                    [_, _] => self.apply_use(session, Use::Schema(name)),
                    _ => Err(StatementError::Syntax(format!(
                        "USE takes a database or database.schema, found {name}"
                    ))),
                }
            }
            _ => Ok(false),
        }
    }

    pub(super) fn apply_pipe_statement(
        &mut self,
        session: &Session,
        statement: PipeStatement,
    ) -> Result<(), StatementError> {
        match statement {
            PipeStatement::Drop { if_exists, name } => {
                let name = qualify(session, &name)?;
                let removed = self.schema_mut(&name)?.pipes.remove(&name.name);
                if removed.is_none() && !if_exists {
                    return Err(StatementError::DoesNotExist {
                        kind: "pipe",
                        name: name.display(),
                    });
                }
                Ok(())
            }
            PipeStatement::Create(create) => self.create_pipe(session, create),
        }
    }

    pub(super) fn create_pipe(
        &mut self,
        session: &Session,
        create: CreatePipe,
    ) -> Result<(), StatementError> {
        let name = qualify(session, &create.name)?;
        let target = qualify(session, &create.target)?;
        let table = self
            .table_exact(&target.database, &target.schema, &target.name)
            .ok_or_else(|| StatementError::DoesNotExist {
                kind: "table",
                name: target.display(),
            })?;
        if let Some(transform) = &create.transform {
            let targets = transform.target_columns.as_ref();
            if let Some(missing) = targets
                .into_iter()
                .flatten()
                .find(|c| table.column(c).is_none())
            {
                return Err(StatementError::DoesNotExist {
                    kind: "column",
                    name: format!("{}.{missing}", target.display()),
                });
            }
            // docs/protocol-types-and-sql.md "Pipe transforms (emulator)": a transform that filters or
            // computes names its target columns; a plain projection of `$1` paths may fill the
            // table's columns in order.
            if targets.is_none() {
                let computed = transform.items.iter().find(|i| i.path.is_none());
                if transform.filter.is_some() || computed.is_some() {
                    let what = computed.map_or("a WHERE clause".to_string(), |i| {
                        format!("the expression `{}`", i.text)
                    });
                    return Err(StatementError::Compilation(format!(
                        "a streaming transform with {what} needs an explicit column list: \
                         COPY INTO {} (c1, c2, ...) FROM (SELECT ...), one column per SELECT item",
                        target.display()
                    )));
                }
            }
            let slots = targets.map_or(table.columns.len(), Vec::len);
            if transform.items.len() != slots {
                return Err(StatementError::Compilation(format!(
                    "Insert value list does not match column list expecting {slots} but got {}",
                    transform.items.len()
                )));
            }
        }
        let schema = self.schema_mut(&name)?;
        let exists = schema.pipes.contains_key(&name.name);
        if name.keep_existing(exists, create.if_not_exists, create.or_replace, "pipe")? {
            return Ok(());
        }
        schema.pipes.insert(
            name.name.clone(),
            PipeDefinition {
                database: name.database,
                schema: name.schema,
                name: name.name,
                table_database: target.database,
                table_schema: target.schema,
                table: target.name,
                match_by_column_name: create.match_by_column_name,
                transform: create.transform,
            },
        );
        Ok(())
    }

    pub(super) fn drop_object(
        &mut self,
        session: &Session,
        object_type: ObjectType,
        if_exists: bool,
        parts: &[Ident],
    ) -> Result<(), StatementError> {
        let (kind, removed) = match object_type {
            ObjectType::Table => {
                let name = qualify(session, parts)?;
                let removed = self.schema_mut(&name)?.tables.remove(&name.name).is_some();
                ("table", (removed, name.display()))
            }
            ObjectType::Schema => {
                let (db, schema) = self.schema_name(session, parts)?;
                self.require_database(&db)?;
                let removed = self
                    .databases
                    .get_mut(&db)
                    .is_some_and(|d| d.schemas.remove(&schema).is_some());
                ("schema", (removed, format!("{db}.{schema}")))
            }
            ObjectType::Database => {
                let [db] = parts else {
                    return Err(StatementError::Syntax(
                        "a database name has one part".into(),
                    ));
                };
                let db = db.normalized();
                let removed = self.databases.remove(&db).is_some();
                ("database", (removed, db))
            }
            _ => return Ok(()),
        };
        match removed {
            (false, name) if !if_exists => Err(StatementError::DoesNotExist { kind, name }),
            _ => Ok(()),
        }
    }

    /// `schema` or `db.schema` → (database, schema).
    pub(super) fn schema_name(
        &self,
        session: &Session,
        parts: &[Ident],
    ) -> Result<(String, String), StatementError> {
        match parts {
            [schema] => Ok((
                session
                    .database
                    .clone()
                    .ok_or(StatementError::NoCurrent("database"))?,
                schema.normalized(),
            )),
            [db, schema] => Ok((db.normalized(), schema.normalized())),
            _ => Err(StatementError::Syntax(
                "a schema name has at most 2 parts (database.schema)".into(),
            )),
        }
    }

    pub(super) fn require_database(&self, db: &str) -> Result<(), StatementError> {
        if self.databases.contains_key(db) {
            Ok(())
        } else {
            Err(StatementError::DoesNotExist {
                kind: "database",
                name: db.into(),
            })
        }
    }

    pub(super) fn require_schema(&self, db: &str, schema: &str) -> Result<(), StatementError> {
        self.require_database(db)?;
        if self.databases[db].schemas.contains_key(schema) {
            Ok(())
        } else {
            Err(StatementError::DoesNotExist {
                kind: "schema",
                name: format!("{db}.{schema}"),
            })
        }
    }

    pub(super) fn schema_mut(&mut self, name: &Qualified) -> Result<&mut Schema, StatementError> {
        self.require_schema(&name.database, &name.schema)?;
        Ok(self
            .databases
            .get_mut(&name.database)
            .and_then(|db| db.schemas.get_mut(&name.schema))
            .expect("checked above"))
    }
}

/// A 1-, 2- or 3-part name → (database, schema, name), using the session for missing parts.
pub(super) fn qualify(session: &Session, parts: &[Ident]) -> Result<Qualified, StatementError> {
    let current =
        |value: &Option<String>, what| value.clone().ok_or(StatementError::NoCurrent(what));
    let (database, schema, name) = match parts {
        [name] => (
            current(&session.database, "database")?,
            current(&session.schema, "schema")?,
            name.normalized(),
        ),
        [schema, name] => (
            current(&session.database, "database")?,
            schema.normalized(),
            name.normalized(),
        ),
        [db, schema, name] => (db.normalized(), schema.normalized(), name.normalized()),
        _ => {
            return Err(StatementError::Syntax(
                "a name has at most 3 parts (database.schema.object)".into(),
            ))
        }
    };
    Ok(Qualified {
        database,
        schema,
        name,
    })
}

/// The parts of an object's name.
///
/// # Errors
/// A part over 255 characters (Snowflake's identifier limit, as for columns), or an
/// identifier function.
pub(super) fn idents(name: &ObjectName) -> Result<Vec<Ident>, StatementError> {
    name.0
        .iter()
        .map(|part| match part {
            ObjectNamePart::Identifier(ident) => {
                check_name_length("a name", &ident.value).map_err(StatementError::Syntax)?;
                Ok(Ident {
                    value: ident.value.clone(),
                    quoted: ident.quote_style.is_some(),
                })
            }
            ObjectNamePart::Function(_) => Err(StatementError::Unsupported(format!(
                "identifier functions in names ({name})"
            ))),
        })
        .collect()
}

impl Qualified {
    /// [`keep_existing`] for the object of this name.
    fn keep_existing(
        &self,
        exists: bool,
        if_not_exists: bool,
        or_replace: bool,
        kind: &'static str,
    ) -> Result<bool, StatementError> {
        keep_existing(exists, if_not_exists, or_replace, kind, || self.display())
    }
}

/// `CREATE <kind> ... CLONE` is not modelled.
fn refuse_clone(clone: bool, kind: &str) -> Result<(), StatementError> {
    if clone {
        return Err(StatementError::Unsupported(format!(
            "CREATE {kind} ... CLONE"
        )));
    }
    Ok(())
}

/// sqlparser's messages start with "sql parser error: ".
pub(super) fn strip_parser_prefix(message: &str) -> String {
    message
        .strip_prefix("sql parser error: ")
        .unwrap_or(message)
        .to_string()
}

/// Snowflake's rule for `CREATE` of an object that may already exist: `IF NOT EXISTS` keeps it
/// (`Ok(true)`: nothing more to do), `OR REPLACE` replaces it (`Ok(false)`: go on and create),
/// and a plain `CREATE` is an [`StatementError::AlreadyExists`] error.
pub(super) fn keep_existing(
    exists: bool,
    if_not_exists: bool,
    or_replace: bool,
    kind: &'static str,
    name: impl FnOnce() -> String,
) -> Result<bool, StatementError> {
    if !exists || (or_replace && !if_not_exists) {
        return Ok(false);
    }
    if if_not_exists {
        return Ok(true);
    }
    Err(StatementError::AlreadyExists { kind, name: name() })
}
