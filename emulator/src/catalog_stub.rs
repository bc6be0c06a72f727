//! Throw-away stand-in for the `catalog` and `convert` modules written on another branch.
//!
//! It implements the agreed API with a crude DDL reader (good enough for the ski_resort setup
//! script and the tests). It is deleted once the real modules land on `main`.

/// Catalog stand-in: databases, schemas, tables and pipes declared by DDL.
pub mod catalog {
    use std::collections::BTreeMap;
    use std::path::Path;

    /// A column type (stand-in: the upper-cased type name).
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct ColumnType(pub String);

    /// One table column.
    #[derive(Debug, Clone)]
    pub struct Column {
        /// Column name (upper-cased unless quoted).
        pub name: String,
        /// Declared type.
        pub ty: ColumnType,
        /// Whether NULL is allowed.
        pub nullable: bool,
    }

    /// A table.
    #[derive(Debug, Clone)]
    pub struct Table {
        /// Database name.
        pub database: String,
        /// Schema name.
        pub schema: String,
        /// Table name.
        pub name: String,
        /// Columns in declaration order.
        pub columns: Vec<Column>,
    }

    impl Table {
        /// `DB.SCHEMA.TABLE`, also the SQLite table name.
        pub fn qualified_name(&self) -> String {
            format!("{}.{}.{}", self.database, self.schema, self.name)
        }
    }

    /// A pipe as listed by [`Catalog::pipes`].
    #[derive(Debug, Clone)]
    pub struct PipeInfo {
        /// Database name.
        pub database: String,
        /// Schema name.
        pub schema: String,
        /// Pipe name.
        pub name: String,
        /// Target table name.
        pub table: String,
        /// Whether this is the default `<TABLE>-STREAMING` pipe.
        pub is_default: bool,
    }

    /// A resolved pipe.
    #[derive(Debug)]
    pub struct ResolvedPipe<'a> {
        /// Canonical database name.
        pub database: &'a str,
        /// Canonical schema name.
        pub schema: &'a str,
        /// Canonical pipe name.
        pub pipe: String,
        /// Target table.
        pub table: &'a Table,
    }

    /// DDL error.
    #[derive(Debug)]
    pub struct CatalogError(pub String);
    impl std::fmt::Display for CatalogError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(&self.0)
        }
    }
    impl std::error::Error for CatalogError {}

    /// Lookup failure.
    #[derive(Debug)]
    pub enum LookupError {
        /// Unknown database.
        Database(String),
        /// Unknown schema.
        Schema(String),
        /// Unknown pipe.
        Pipe(String),
        /// Unknown table.
        Table(String),
    }
    impl LookupError {
        /// Snowflake error code.
        pub fn code(&self) -> &'static str {
            match self {
                LookupError::Database(_) | LookupError::Schema(_) => {
                    "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"
                }
                LookupError::Pipe(_) => "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                LookupError::Table(_) => "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED",
            }
        }
        /// HTTP status.
        pub fn http_status(&self) -> u16 {
            404
        }
    }
    impl std::fmt::Display for LookupError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match self {
                LookupError::Database(n) => write!(f, "database {n} does not exist"),
                LookupError::Schema(n) => write!(f, "schema {n} does not exist"),
                LookupError::Pipe(n) => write!(f, "pipe {n} does not exist"),
                LookupError::Table(n) => write!(f, "table {n} does not exist"),
            }
        }
    }

    /// The catalog.
    #[derive(Debug, Default, Clone)]
    pub struct Catalog {
        dbs: BTreeMap<String, BTreeMap<String, ()>>,
        tables: BTreeMap<(String, String, String), Table>,
        pipes: BTreeMap<(String, String, String), String>,
        cur_db: Option<String>,
        cur_schema: Option<String>,
    }

    fn ident(s: &str) -> String {
        let s = s.trim();
        if s.starts_with('"') && s.ends_with('"') && s.len() >= 2 {
            s[1..s.len() - 1].to_string()
        } else {
            s.to_ascii_uppercase()
        }
    }

    impl Catalog {
        /// Empty catalog.
        pub fn new() -> Self {
            Self::default()
        }

        /// Apply a DDL script.
        ///
        /// # Errors
        /// On statements it cannot read.
        pub fn apply_sql(&mut self, sql: &str) -> Result<Vec<String>, CatalogError> {
            let cleaned: String = sql
                .lines()
                .map(|l| match l.find("--") {
                    Some(i) => &l[..i],
                    None => l,
                })
                .collect::<Vec<_>>()
                .join("\n");
            for stmt in cleaned.split(';') {
                let words: Vec<&str> = stmt.split_whitespace().collect();
                if words.is_empty() {
                    continue;
                }
                let up: Vec<String> = words.iter().map(|w| w.to_ascii_uppercase()).collect();
                let mut i = 0;
                if up[0] == "USE" && up.len() >= 3 {
                    match up[1].as_str() {
                        "DATABASE" => {
                            self.cur_db = Some(ident(words[2]));
                            self.cur_schema = None;
                        }
                        "SCHEMA" => self.set_schema(words[2]),
                        _ => {}
                    }
                    continue;
                }
                if up[0] != "CREATE" {
                    continue;
                }
                i += 1;
                if up.get(i).map(String::as_str) == Some("OR") {
                    i += 2;
                }
                let kind = up.get(i).cloned().unwrap_or_default();
                i += 1;
                if up.get(i).map(String::as_str) == Some("IF") {
                    i += 3;
                }
                let Some(name) = words.get(i) else { continue };
                match kind.as_str() {
                    "DATABASE" => {
                        let n = ident(name);
                        self.dbs.entry(n.clone()).or_default();
                        self.cur_db = Some(n);
                        self.cur_schema = Some("PUBLIC".into());
                    }
                    "SCHEMA" => {
                        self.set_schema(name);
                    }
                    "TABLE" => {
                        let open = stmt.find('(').ok_or_else(|| CatalogError("no (".into()))?;
                        let close = stmt.rfind(')').ok_or_else(|| CatalogError("no )".into()))?;
                        let name = stmt[..open].split_whitespace().last().unwrap_or_default();
                        let (db, sch, t) = self.qualify(name)?;
                        let mut columns = Vec::new();
                        for part in split_top(&stmt[open + 1..close]) {
                            let mut it = part.split_whitespace();
                            let (Some(c), Some(ty)) = (it.next(), it.next()) else {
                                continue;
                            };
                            let ty = ty.split('(').next().unwrap_or(ty).to_ascii_uppercase();
                            columns.push(Column {
                                name: ident(c),
                                ty: ColumnType(ty),
                                nullable: !part.to_ascii_uppercase().contains("NOT NULL"),
                            });
                        }
                        self.tables.insert(
                            (db.clone(), sch.clone(), t.clone()),
                            Table {
                                database: db,
                                schema: sch,
                                name: t,
                                columns,
                            },
                        );
                    }
                    "PIPE" => {
                        let (db, sch, p) = self.qualify(name)?;
                        let into = up
                            .iter()
                            .position(|w| w == "INTO")
                            .ok_or_else(|| CatalogError("pipe without COPY INTO".into()))?;
                        let (_, _, t) = self.qualify(words[into + 1])?;
                        self.pipes.insert((db, sch, p), t);
                    }
                    _ => {}
                }
            }
            Ok(Vec::new())
        }

        fn set_schema(&mut self, name: &str) {
            let parts: Vec<&str> = name.split('.').collect();
            if parts.len() == 2 {
                self.cur_db = Some(ident(parts[0]));
                self.cur_schema = Some(ident(parts[1]));
            } else {
                self.cur_schema = Some(ident(name));
            }
            if let (Some(d), Some(s)) = (&self.cur_db, &self.cur_schema) {
                self.dbs.entry(d.clone()).or_default().insert(s.clone(), ());
            }
        }

        fn qualify(&self, name: &str) -> Result<(String, String, String), CatalogError> {
            let parts: Vec<&str> = name.split('.').collect();
            let missing = || CatalogError(format!("no current database/schema for {name}"));
            Ok(match parts.as_slice() {
                [t] => (
                    self.cur_db.clone().ok_or_else(missing)?,
                    self.cur_schema.clone().ok_or_else(missing)?,
                    ident(t),
                ),
                [s, t] => (self.cur_db.clone().ok_or_else(missing)?, ident(s), ident(t)),
                [d, s, t] => (ident(d), ident(s), ident(t)),
                _ => return Err(CatalogError(format!("bad name {name}"))),
            })
        }

        /// Apply a DDL file.
        ///
        /// # Errors
        /// On I/O errors or statements it cannot read.
        pub fn apply_sql_file(&mut self, p: &Path) -> Result<Vec<String>, CatalogError> {
            let sql = std::fs::read_to_string(p).map_err(|e| CatalogError(e.to_string()))?;
            self.apply_sql(&sql)
        }

        /// Resolve a pipe (names folded to upper case unless an exact match exists).
        ///
        /// # Errors
        /// Unknown database, schema or pipe.
        pub fn resolve_pipe(
            &self,
            db: &str,
            schema: &str,
            pipe: &str,
        ) -> Result<ResolvedPipe<'_>, LookupError> {
            let d = db.to_ascii_uppercase();
            let s = schema.to_ascii_uppercase();
            let (dk, schemas) = self
                .dbs
                .get_key_value(&d)
                .ok_or_else(|| LookupError::Database(db.into()))?;
            let (sk, _) = schemas
                .get_key_value(&s)
                .ok_or_else(|| LookupError::Schema(schema.into()))?;
            let p_up = pipe.to_ascii_uppercase();
            if let Some(t) = self.pipes.get(&(d.clone(), s.clone(), p_up.clone())) {
                let table = self
                    .tables
                    .get(&(d.clone(), s.clone(), t.clone()))
                    .ok_or_else(|| LookupError::Table(t.clone()))?;
                return Ok(ResolvedPipe {
                    database: dk,
                    schema: sk,
                    pipe: p_up,
                    table,
                });
            }
            if let Some(t) = pipe.strip_suffix("-STREAMING") {
                if let Some(table) = self.tables.get(&(d, s, t.to_ascii_uppercase())) {
                    return Ok(ResolvedPipe {
                        database: dk,
                        schema: sk,
                        pipe: format!("{}-STREAMING", table.name),
                        table,
                    });
                }
            }
            Err(LookupError::Pipe(pipe.into()))
        }

        /// Look a table up.
        pub fn table(&self, db: &str, schema: &str, table: &str) -> Option<&Table> {
            self.tables.get(&(
                db.to_ascii_uppercase(),
                schema.to_ascii_uppercase(),
                table.to_ascii_uppercase(),
            ))
        }

        /// All tables.
        pub fn tables(&self) -> impl Iterator<Item = &Table> {
            self.tables.values()
        }

        /// All pipes, including default ones.
        pub fn pipes(&self) -> Vec<PipeInfo> {
            let mut v: Vec<PipeInfo> = self
                .pipes
                .iter()
                .map(|((d, s, p), t)| PipeInfo {
                    database: d.clone(),
                    schema: s.clone(),
                    name: p.clone(),
                    table: t.clone(),
                    is_default: false,
                })
                .collect();
            for t in self.tables.values() {
                v.push(PipeInfo {
                    database: t.database.clone(),
                    schema: t.schema.clone(),
                    name: format!("{}-STREAMING", t.name),
                    table: t.name.clone(),
                    is_default: true,
                });
            }
            v
        }
    }

    fn split_top(s: &str) -> Vec<&str> {
        let mut out = Vec::new();
        let mut depth = 0;
        let mut start = 0;
        for (i, c) in s.char_indices() {
            match c {
                '(' => depth += 1,
                ')' => depth -= 1,
                ',' if depth == 0 => {
                    out.push(&s[start..i]);
                    start = i + 1;
                }
                _ => {}
            }
        }
        out.push(&s[start..]);
        out
    }
}

/// Conversion stand-in: JSON line → SQLite values.
pub mod convert {
    use super::catalog::Table;

    /// A SQLite value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum SqlValue {
        /// NULL.
        Null,
        /// INTEGER.
        Integer(i64),
        /// REAL.
        Real(f64),
        /// TEXT.
        Text(String),
        /// BLOB.
        Blob(Vec<u8>),
    }

    impl rusqlite::ToSql for SqlValue {
        fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
            use rusqlite::types::{ToSqlOutput, ValueRef};
            Ok(match self {
                SqlValue::Null => ToSqlOutput::Borrowed(ValueRef::Null),
                SqlValue::Integer(i) => ToSqlOutput::Borrowed(ValueRef::Integer(*i)),
                SqlValue::Real(f) => ToSqlOutput::Borrowed(ValueRef::Real(*f)),
                SqlValue::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
                SqlValue::Blob(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            })
        }
    }

    /// A row that could not be converted.
    #[derive(Debug, Clone)]
    pub struct RowError {
        /// Column at fault, if any.
        pub column: Option<String>,
        /// What went wrong.
        pub message: String,
    }
    impl std::fmt::Display for RowError {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            match &self.column {
                Some(c) => write!(f, "column {c}: {}", self.message),
                None => f.write_str(&self.message),
            }
        }
    }

    /// Convert one NDJSON line.
    ///
    /// # Errors
    /// When the line is not a JSON object or a value does not fit its column.
    pub fn convert_line(table: &Table, line: &[u8]) -> Result<Vec<SqlValue>, RowError> {
        let v: serde_json::Value = serde_json::from_slice(line).map_err(|e| RowError {
            column: None,
            message: format!("invalid JSON: {e}"),
        })?;
        let obj = v.as_object().ok_or_else(|| RowError {
            column: None,
            message: "row is not a JSON object".into(),
        })?;
        let mut out = Vec::with_capacity(table.columns.len());
        for c in &table.columns {
            let val = obj
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case(&c.name))
                .map(|(_, v)| v);
            let err = |m: &str| RowError {
                column: Some(c.name.clone()),
                message: m.to_string(),
            };
            let ty = c.ty.0.as_str();
            out.push(match val {
                None | Some(serde_json::Value::Null) => SqlValue::Null,
                Some(v) => match ty {
                    "NUMBER" | "INT" | "INTEGER" | "BIGINT" | "SMALLINT" => match v {
                        serde_json::Value::Number(n) if n.is_i64() => {
                            SqlValue::Integer(n.as_i64().unwrap_or_default())
                        }
                        serde_json::Value::String(s) => {
                            SqlValue::Integer(s.parse().map_err(|_| err("not a number"))?)
                        }
                        _ => return Err(err("not an integer")),
                    },
                    "DECIMAL" | "FLOAT" | "DOUBLE" | "REAL" | "NUMERIC" => match v {
                        serde_json::Value::Number(n) => SqlValue::Real(n.as_f64().unwrap_or(0.0)),
                        serde_json::Value::String(s) => {
                            SqlValue::Real(s.parse().map_err(|_| err("not a number"))?)
                        }
                        _ => return Err(err("not a number")),
                    },
                    "VARIANT" | "OBJECT" | "ARRAY" => SqlValue::Text(v.to_string()),
                    _ => match v {
                        serde_json::Value::String(s) => SqlValue::Text(s.clone()),
                        other => SqlValue::Text(other.to_string()),
                    },
                },
            });
        }
        Ok(out)
    }

    /// `CREATE TABLE IF NOT EXISTS "DB.SCHEMA.TABLE"(...)`.
    pub fn sqlite_create_table(table: &Table) -> String {
        let cols: Vec<String> = table
            .columns
            .iter()
            .map(|c| format!("\"{}\"", c.name.replace('"', "\"\"")))
            .collect();
        format!(
            "CREATE TABLE IF NOT EXISTS \"{}\" ({})",
            table.qualified_name().replace('"', "\"\""),
            cols.join(", ")
        )
    }
}
