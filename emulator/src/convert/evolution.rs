//! Schema evolution (`ENABLE_SCHEMA_EVOLUTION = TRUE`; docs/protocol.md "Table features"):
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

use serde_json::{Map, Value};

use crate::catalog::{
    same_name_ignoring_case, Column, ColumnType, MatchByColumnName, PipeDefinition, Table,
};

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
        self.add
            .iter()
            .map(|c| {
                format!(
                    "ALTER TABLE {} ADD COLUMN {} {}",
                    quote_ident(&table.qualified_name()),
                    quote_ident(&c.name),
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

/// Collects the [`Evolution`] a batch of rows needs, row by row.
#[derive(Debug)]
pub struct Detector<'a> {
    table: &'a Table,
    ignore_case: bool,
    fill_defaults: bool,
    evolution: Evolution,
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
        })
    }

    /// Whether the pipe matches keys to columns ignoring case.
    pub fn ignore_case(&self) -> bool {
        self.ignore_case
    }

    /// Notes what `row` needs.
    pub fn row(&mut self, row: &Map<String, Value>) {
        for (key, value) in row {
            // SQLite's column names ignore case: on a case-sensitive pipe a field that differs
            // from a column (or from a field added before) only by case cannot become a column
            // of its own, and stays unmatched, as without evolution (docs/protocol.md "Still
            // guessed"), instead of failing the append on every retry.
            if self.table.column_for_key(key, true).is_some() {
                continue;
            }
            let name = if self.ignore_case {
                key.to_uppercase()
            } else {
                key.clone()
            };
            let known = self
                .evolution
                .add
                .iter()
                .any(|c| same_name_ignoring_case(&c.name, &name));
            if known || name.is_empty() {
                continue;
            }
            if let Some(ty) = infer_type(value) {
                self.evolution.add.push(Column {
                    name,
                    ty,
                    nullable: true,
                    default: None,
                });
            }
        }
        for column in self.table.columns.iter().filter(|c| !c.nullable) {
            let value = row.get(&column.name).or_else(|| {
                self.ignore_case
                    .then(|| {
                        row.iter()
                            .find(|(k, _)| same_name_ignoring_case(&column.name, k))
                            .map(|(_, v)| v)
                    })
                    .flatten()
            });
            let empty = match value {
                None => !(self.fill_defaults && column.default.is_some()),
                Some(v) => v.is_null(),
            };
            if empty && !self.evolution.drop_not_null.contains(&column.name) {
                self.evolution.drop_not_null.push(column.name.clone());
            }
        }
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
            d.row(row.as_object().unwrap());
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
        );
        let added: Vec<_> = d.finish().add.into_iter().map(|c| c.name).collect();
        // `id` and one of `Note`/`NOTE` differ from a column only by case: SQLite cannot hold
        // both, so they stay unmatched rather than fail every retry of the append.
        assert_eq!(added.len(), 1, "{added:?}");
        assert!(added[0].eq_ignore_ascii_case("note"), "{added:?}");
    }
}
