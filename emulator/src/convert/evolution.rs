//! Schema evolution (`ENABLE_SCHEMA_EVOLUTION = TRUE`; docs/protocol-types-and-sql.md "Table features"):
//! what a batch of rows needs its table to become before it is converted.
//!
//! A top-level field that names no column adds a column, typed from the field's first
//! non-null value ([`infer_type`]): an integer is `NUMBER(38,0)`, another number `FLOAT`, a
//! string `VARCHAR`, a boolean `BOOLEAN`, an object or an array `VARIANT`. A field whose
//! values are all `null` adds nothing. The new column is named like the field, upper-cased
//! when the pipe matches names ignoring case (the default pipe). A `NOT NULL` column a row
//! leaves empty (missing without a default, or `null`) loses its `NOT NULL`.
//!
//! Evolution applies to the default pipe and to pipes that match by column name; a pipe
//! with a transform names its columns itself and evolves nothing.
//!
//! Detection costs time linear in the request: every name is looked up in a hash set of the
//! table's columns and of the columns found so far, upper-cased once. A request that would
//! add more than [`MAX_ADDED_COLUMNS_PER_REQUEST`] columns, take its table past
//! [`MAX_TABLE_COLUMNS`], or add a column named by more than [`MAX_COLUMN_NAME_CHARS`]
//! characters is refused as a whole with an [`EvolutionLimit`] naming the limit, as soon as
//! the detector meets the field that breaks it (docs/protocol-types-and-sql.md "Table features (emulator)").

use std::collections::{HashMap, HashSet};
use std::fmt;

use serde_json::{Map, Value};

use crate::catalog::{Column, ColumnType, MatchByColumnName, PipeDefinition, Table};

use super::quote_ident;

/// What a batch needs its table to become: columns to add and columns to make nullable.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Evolution {
    /// New columns, in the order their fields first appeared.
    pub add: Vec<Column>,
    /// Names of `NOT NULL` columns the rows leave empty.
    pub drop_not_null: Vec<String>,
}

impl Evolution {
    /// Whether the table needs no change.
    pub fn is_empty(&self) -> bool {
        self.add.is_empty() && self.drop_not_null.is_empty()
    }

    /// What of this evolution `table` still needs (another batch may have evolved it
    /// meanwhile), matching names as the pipe does.
    pub fn still_needed(&self, table: &Table, ignore_case: bool) -> Self {
        Self {
            add: self
                .add
                .iter()
                .filter(|c| table.column_for_key(&c.name, ignore_case).is_none())
                .cloned()
                .collect(),
            drop_not_null: self
                .drop_not_null
                .iter()
                .filter(|name| table.column(name).is_some_and(|c| !c.nullable))
                .cloned()
                .collect(),
        }
    }

    /// The Snowflake DDL of this evolution, every name quoted as stored, one statement per
    /// change: what the catalog applies and the data directory keeps (replayed at start).
    pub fn ddl(&self, table: &Table) -> String {
        let name = format!(
            "{}.{}.{}",
            quote_ident(&table.database),
            quote_ident(&table.schema),
            quote_ident(&table.name)
        );
        let adds = self.add.iter().map(|c| {
            format!(
                "ALTER TABLE {name} ADD COLUMN {} {}",
                quote_ident(&c.name),
                c.ty.sql_name()
            )
        });
        let drops = self.drop_not_null.iter().map(|c| {
            format!(
                "ALTER TABLE {name} ALTER COLUMN {} DROP NOT NULL",
                quote_ident(c)
            )
        });
        adds.chain(drops).collect::<Vec<_>>().join(";\n")
    }

    /// The SQLite statements of this evolution (NOT NULL is enforced by the conversion, not
    /// by SQLite, so only added columns need one).
    pub fn sqlite(&self, table: &Table) -> Vec<String> {
        // The added columns' storage names, as the catalog will have them after the DDL.
        let all: Vec<_> = table.columns.iter().chain(&self.add).cloned().collect();
        let stored = crate::catalog::storage_names(&all);
        self.add
            .iter()
            .zip(&stored[table.columns.len()..])
            .map(|(c, stored)| {
                format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    quote_ident(&table.qualified_name()),
                    quote_ident(stored),
                    c.ty.sql_name()
                )
            })
            .collect()
    }
}

/// The type of a new column whose first non-null value is `value`; `None` for `null`.
pub fn infer_type(value: &Value) -> Option<ColumnType> {
    Some(match value {
        Value::Null => return None,
        Value::Bool(_) => ColumnType::Boolean,
        Value::Number(n) if n.is_i64() || n.is_u64() => ColumnType::Number {
            precision: 38,
            scale: 0,
        },
        Value::Number(_) => ColumnType::Float,
        Value::String(_) => ColumnType::Varchar { max_len: None },
        Value::Object(_) | Value::Array(_) => ColumnType::Variant,
    })
}

/// Most columns one request may add: Snowflake's default for one `COPY` with schema
/// evolution (docs/protocol-types-and-sql.md "Table features (emulator)", \[SEVL\]).
pub const MAX_ADDED_COLUMNS_PER_REQUEST: usize = 100;

/// Most columns an evolving table may reach by evolution. Snowflake documents no column
/// limit per table; 1,000 is the emulator's guess, below SQLite's 2,000 (`SQLITE_MAX_COLUMN`)
/// so that the `ALTER TABLE` never fails (docs/protocol-types-and-sql.md "Still guessed").
pub const MAX_TABLE_COLUMNS: usize = 1_000;

/// Longest name of an added column, in characters: the catalog's identifier limit.
pub use crate::catalog::MAX_COLUMN_NAME_CHARS;

/// A schema-evolution limit a request would break; its message names the limit and the fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EvolutionLimit {
    /// More than [`MAX_ADDED_COLUMNS_PER_REQUEST`] new columns in one request.
    AddedPerRequest,
    /// The table would have more than [`MAX_TABLE_COLUMNS`] columns.
    TableColumns {
        /// The table's columns now.
        existing: usize,
    },
    /// A new field's name is longer than [`MAX_COLUMN_NAME_CHARS`] characters.
    NameLength {
        /// The name's first characters.
        prefix: String,
        /// Its length in characters.
        chars: usize,
    },
}

impl fmt::Display for EvolutionLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::AddedPerRequest => write!(
                f,
                "the rows would add more than {MAX_ADDED_COLUMNS_PER_REQUEST} columns to the \
                 table, the schema-evolution limit per request; send rows with fewer new fields \
                 or add the columns with ALTER TABLE first"
            ),
            Self::TableColumns { existing } => write!(
                f,
                "the table has {existing} columns and the rows would take it past \
                 {MAX_TABLE_COLUMNS}, the emulator's column limit for schema evolution; send \
                 rows with fewer distinct fields (nest them in a VARIANT)"
            ),
            Self::NameLength { prefix, chars } => write!(
                f,
                "field {prefix:?}… is {chars} characters long: a new column's name may have at \
                 most {MAX_COLUMN_NAME_CHARS} (Snowflake's identifier limit); shorten the field \
                 name"
            ),
        }
    }
}

impl std::error::Error for EvolutionLimit {}

/// Collects the [`Evolution`] a batch of rows needs, row by row.
#[derive(Debug)]
pub struct Detector<'a> {
    table: &'a Table,
    ignore_case: bool,
    fill_defaults: bool,
    evolution: Evolution,
    /// Names of the table's columns and of the columns added so far ([`known_name`]).
    known: HashSet<String>,
    /// Indexes of the table's `NOT NULL` columns.
    not_null: Vec<usize>,
    /// Names already in `evolution.drop_not_null`.
    dropping: HashSet<String>,
}

/// The name a key or column is known by: upper-cased when the pipe ignores case (a new
/// column's name, as an unquoted identifier), else as it is.
fn known_name(name: &str, ignore_case: bool) -> String {
    if ignore_case {
        name.to_uppercase()
    } else {
        name.to_owned()
    }
}

impl<'a> Detector<'a> {
    /// A detector for rows appended to `table` through `pipe` (`None`: the default pipe);
    /// `None` when the table does not evolve (`ENABLE_SCHEMA_EVOLUTION` not set) or the pipe
    /// has a transform.
    pub fn new(table: &'a Table, pipe: Option<&PipeDefinition>) -> Option<Self> {
        if !table.schema_evolution {
            return None;
        }
        let (ignore_case, fill_defaults) = match pipe {
            None => (true, true),
            Some(p) if p.transform.is_some() => return None,
            // `COPY INTO … MATCH_BY_COLUMN_NAME` leaves the columns the data lacks NULL.
            Some(p) => (
                p.match_by_column_name != MatchByColumnName::CaseSensitive,
                false,
            ),
        };
        Some(Self {
            table,
            ignore_case,
            fill_defaults,
            evolution: Evolution::default(),
            known: table
                .columns
                .iter()
                .map(|c| known_name(&c.name, ignore_case))
                .collect(),
            not_null: (0..table.columns.len())
                .filter(|&i| !table.columns[i].nullable)
                .collect(),
            dropping: HashSet::new(),
        })
    }

    /// Whether the pipe matches keys to columns ignoring case.
    pub fn ignore_case(&self) -> bool {
        self.ignore_case
    }

    /// Notes what `row` needs, in time linear in its size.
    ///
    /// # Errors
    ///
    /// The [`EvolutionLimit`] the row breaks; the detector should then be dropped.
    pub fn row(&mut self, row: &Map<String, Value>) -> Result<(), EvolutionLimit> {
        for (key, value) in row {
            // On a case-sensitive pipe a field that differs from a column (or from a field
            // added before) only by case becomes a column of its own, as in Snowflake (stored
            // apart in SQLite: `catalog::storage_names`); on any other pipe it fills that
            // column. A key with a NUL cannot name a SQLite column (SQLite ends a name at its first
            // NUL): it stays unmatched, as an empty key does, instead of failing the append
            // on every retry.
            if key.is_empty() || key.contains('\0') {
                continue;
            }
            let known = known_name(key, self.ignore_case);
            if self.known.contains(&known) {
                continue;
            }
            let Some(ty) = infer_type(value) else {
                continue;
            };
            let chars = key.chars().count();
            if chars > MAX_COLUMN_NAME_CHARS {
                return Err(EvolutionLimit::NameLength {
                    prefix: key.chars().take(32).collect(),
                    chars,
                });
            }
            if self.evolution.add.len() >= MAX_ADDED_COLUMNS_PER_REQUEST {
                return Err(EvolutionLimit::AddedPerRequest);
            }
            if self.table.columns.len() + self.evolution.add.len() >= MAX_TABLE_COLUMNS {
                return Err(EvolutionLimit::TableColumns {
                    existing: self.table.columns.len(),
                });
            }
            self.known.insert(known.clone());
            self.evolution.add.push(Column {
                name: known,
                ty,
                nullable: true,
                default: None,
            });
        }
        if self.not_null.is_empty() {
            return Ok(());
        }
        // The row's keys by upper-cased name (the first of each), for the case-insensitive
        // match of NOT NULL columns.
        let by_upper: HashMap<String, &Value> = if self.ignore_case {
            let mut m = HashMap::with_capacity(row.len());
            for (k, v) in row {
                m.entry(k.to_uppercase()).or_insert(v);
            }
            m
        } else {
            HashMap::new()
        };
        for &i in &self.not_null {
            let column = &self.table.columns[i];
            let value = row.get(&column.name).or_else(|| {
                self.ignore_case
                    .then(|| by_upper.get(&column.name.to_uppercase()).copied())
                    .flatten()
            });
            let empty = match value {
                None => !(self.fill_defaults && column.default.is_some()),
                Some(v) => v.is_null(),
            };
            if empty && self.dropping.insert(column.name.clone()) {
                self.evolution.drop_not_null.push(column.name.clone());
            }
        }
        Ok(())
    }

    /// The evolution the rows seen need.
    pub fn finish(self) -> Evolution {
        self.evolution
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    use crate::catalog::Catalog;

    fn table(sql: &str) -> Table {
        crate::catalog::table_from_ddl(sql)
    }

    fn detect(table: &Table, rows: &[Value]) -> Evolution {
        let mut d = Detector::new(table, None).expect("the table evolves");
        for row in rows {
            d.row(row.as_object().unwrap()).unwrap();
        }
        d.finish()
    }

    #[test]
    fn types_are_inferred_from_the_first_non_null_value() {
        let cases = [
            (json!(1), Some("NUMBER(38,0)")),
            (json!(-5), Some("NUMBER(38,0)")),
            (json!(u64::MAX), Some("NUMBER(38,0)")),
            (json!(1.5), Some("FLOAT")),
            (json!(1e300), Some("FLOAT")),
            (json!("x"), Some("VARCHAR")),
            (json!("2024-01-01"), Some("VARCHAR")),
            (json!(true), Some("BOOLEAN")),
            (json!({"a": 1}), Some("VARIANT")),
            (json!([1, 2]), Some("VARIANT")),
            (json!(null), None),
        ];
        for (value, expected) in cases {
            assert_eq!(
                infer_type(&value).map(|t| t.sql_name()).as_deref(),
                expected,
                "{value}"
            );
        }
    }

    #[test]
    fn new_fields_become_upper_cased_columns_once() {
        let t = table("CREATE TABLE T (ID INT) ENABLE_SCHEMA_EVOLUTION = TRUE");
        let e = detect(
            &t,
            &[
                json!({"id": 1, "price": null, "Name": "a"}),
                json!({"ID": 2, "price": 2.5, "NAME": 7, "name": "b", "tags": ["x"]}),
            ],
        );
        let added: Vec<_> = e
            .add
            .iter()
            .map(|c| (c.name.as_str(), c.ty.sql_name()))
            .collect();
        assert_eq!(
            added,
            [
                ("NAME", "VARCHAR".to_owned()),
                ("PRICE", "FLOAT".to_owned()),
                ("TAGS", "VARIANT".to_owned()),
            ]
        );
        assert!(e.drop_not_null.is_empty());
        assert_eq!(
            e.ddl(&t),
            "ALTER TABLE \"D\".\"PUBLIC\".\"T\" ADD COLUMN \"NAME\" VARCHAR;\n\
             ALTER TABLE \"D\".\"PUBLIC\".\"T\" ADD COLUMN \"PRICE\" FLOAT;\n\
             ALTER TABLE \"D\".\"PUBLIC\".\"T\" ADD COLUMN \"TAGS\" VARIANT"
        );
        assert_eq!(
            e.sqlite(&t)[0],
            "ALTER TABLE \"D.PUBLIC.T\" ADD COLUMN \"NAME\" VARCHAR"
        );
        // Applied to the catalog, the DDL leaves nothing more to do.
        let mut catalog = Catalog::new();
        catalog
            .apply_sql("CREATE DATABASE D; CREATE TABLE T (ID INT) ENABLE_SCHEMA_EVOLUTION = TRUE")
            .unwrap();
        catalog.apply_sql(&e.ddl(&t)).unwrap();
        let evolved = catalog.table_exact("D", "PUBLIC", "T").unwrap();
        assert_eq!(evolved.columns.len(), 4);
        assert!(e.still_needed(evolved, true).is_empty());
    }

    #[test]
    fn rows_leaving_not_null_columns_empty_drop_not_null() {
        let t = table(
            "CREATE TABLE T (A INT NOT NULL, B INT NOT NULL DEFAULT 1, C INT NOT NULL, \
             D INT NOT NULL) ENABLE_SCHEMA_EVOLUTION = TRUE",
        );
        // B has a default; C is null; D is missing; A is there (named in another case).
        let e = detect(&t, &[json!({"a": 1, "C": null})]);
        assert_eq!(e.drop_not_null, ["C", "D"]);
        assert!(e.add.is_empty());
        assert!(e.ddl(&t).ends_with("ALTER COLUMN \"D\" DROP NOT NULL"));
        assert!(e.sqlite(&t).is_empty());
    }

    #[test]
    fn only_evolving_tables_and_pipes_without_transform_evolve() {
        let t = table("CREATE TABLE T (ID INT)");
        assert!(Detector::new(&t, None).is_none());
        let mut catalog = Catalog::new();
        catalog
            .apply_sql(
                "CREATE DATABASE D; CREATE TABLE T (ID INT) ENABLE_SCHEMA_EVOLUTION = TRUE; \
                 CREATE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) \
                 MATCH_BY_COLUMN_NAME = CASE_SENSITIVE; \
                 CREATE PIPE X AS COPY INTO T FROM (SELECT $1:id FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')))",
            )
            .unwrap();
        let t = catalog.table_exact("D", "PUBLIC", "T").unwrap();
        let transform = catalog.pipe_definition("D", "PUBLIC", "X").unwrap();
        assert!(Detector::new(t, Some(transform)).is_none());
        let by_name = catalog.pipe_definition("D", "PUBLIC", "P").unwrap();
        let mut d = Detector::new(t, Some(by_name)).unwrap();
        d.row(
            json!({"ID": 1, "id": 2, "Note": "x", "NOTE": "y"})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        let mut added: Vec<_> = d.finish().add.into_iter().map(|c| c.name).collect();
        // On a case-sensitive pipe `id` (beside `ID`) and both `Note` and `NOTE` are columns of
        // their own, as in Snowflake (issue 81 item 17; they stayed unmatched while SQLite
        // could not hold them apart).
        added.sort();
        assert_eq!(added, ["NOTE", "Note", "id"]);
    }

    /// Each limit, at its value and one past it: the request is refused as a whole with the
    /// limit named.
    #[test]
    fn limits_on_added_columns_and_names() {
        let t = table("CREATE TABLE T (ID INT) ENABLE_SCHEMA_EVOLUTION = TRUE");
        let row_of = |keys: &mut dyn Iterator<Item = String>| {
            Value::Object(keys.map(|k| (k, json!(1))).collect())
        };
        let try_rows = |t: &Table, rows: &[Value]| {
            let mut d = Detector::new(t, None).unwrap();
            for row in rows {
                d.row(row.as_object().unwrap())?;
            }
            Ok::<_, EvolutionLimit>(d.finish())
        };
        // 100 new fields pass, also over two rows; the 101st is refused.
        let hundred = row_of(&mut (0..100).map(|i| format!("f{i}")));
        assert_eq!(
            try_rows(&t, std::slice::from_ref(&hundred))
                .unwrap()
                .add
                .len(),
            100
        );
        let again = row_of(&mut (0..100).map(|i| format!("F{i}")));
        assert_eq!(
            try_rows(&t, &[hundred.clone(), again]).unwrap().add.len(),
            100
        );
        let one_more = row_of(&mut std::iter::once("extra".to_string()));
        let e = try_rows(&t, &[hundred, one_more]).unwrap_err();
        assert_eq!(e, EvolutionLimit::AddedPerRequest);
        assert!(e.to_string().contains("more than 100 columns"), "{e}");
        // Null-only fields and known columns add nothing, so they count for nothing.
        let nulls = Value::Object((0..500).map(|i| (format!("n{i}"), json!(null))).collect());
        assert!(try_rows(&t, &[nulls]).unwrap().add.is_empty());
        // Names: 255 characters pass (multi-byte characters count once), 256 do not.
        let ok = "é".repeat(255);
        assert_eq!(try_rows(&t, &[json!({ ok: 1 })]).unwrap().add.len(), 1);
        let long = "a".repeat(256);
        let e = try_rows(&t, &[json!({ long: 1 })]).unwrap_err();
        assert!(
            matches!(e, EvolutionLimit::NameLength { chars: 256, .. }),
            "{e:?}"
        );
        assert!(e.to_string().contains("at most 255"), "{e}");
        // The table limit: a table of 999 columns takes one more, not two.
        let cols: Vec<String> = (0..999).map(|i| format!("C{i} INT")).collect();
        let wide = table(&format!(
            "CREATE TABLE T ({}) ENABLE_SCHEMA_EVOLUTION = TRUE",
            cols.join(", ")
        ));
        assert_eq!(try_rows(&wide, &[json!({"x": 1})]).unwrap().add.len(), 1);
        let e = try_rows(&wide, &[json!({"x": 1, "y": 2})]).unwrap_err();
        assert_eq!(e, EvolutionLimit::TableColumns { existing: 999 });
        assert!(e.to_string().contains("past 1000"), "{e}");
    }
}
