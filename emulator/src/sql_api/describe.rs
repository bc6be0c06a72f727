//! `DESC[RIBE] TABLE <name>`: a table's columns, as Snowflake lists them, or Snowflake's
//! "does not exist or not authorized" (`002003`). Snowflake's Kafka connector asks it before it
//! creates a table (`internal/StandardSnowflakeConnectionService.java`, `tableExist`), so a role
//! without CREATE still writes to a table that exists; `snowpipe-kafka` does the same.
//!
//! The answer's columns are Snowflake's first ten (`name`, `type`, `kind`, `null?`,
//! `default`, `primary key`, `unique key`, `check`, `expression`, `comment`), one row per
//! column. The name resolves in the request's database and schema; the caller's role must be
//! granted the table's database (`--grant`), as a `SELECT` must.
//!
//! `DESC[RIBE] PIPE <name>`: one row for a pipe declared with `CREATE PIPE` (a table's default
//! pipe `<TABLE>-STREAMING` is not a declared object), with Snowflake's first five columns
//! (`created_on` left empty, `name`, `database_name`, `schema_name`, `definition`: the target
//! table; a transform is not written back as text), or `002003`. Connector v4 asks it for a pipe
//! named exactly like the table, which it then writes through instead of the default pipe
//! (`SnowflakeSinkServiceV2.startPartitions`, `pipeExist`).

use serde_json::Value;
use sqlparser::tokenizer::Token;

use crate::base::api_error::ApiError;

use super::failure::failed;
use super::show_words::Lookup;

/// The columns of a described table (or the row of a described pipe), ready to answer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Described {
    pub columns: &'static [&'static str],
    pub rows: Vec<Vec<String>>,
}

const PIPE_COLUMNS: [&str; 5] = [
    "created_on",
    "name",
    "database_name",
    "schema_name",
    "definition",
];

const COLUMNS: [&str; 10] = [
    "name",
    "type",
    "kind",
    "null?",
    "default",
    "primary key",
    "unique key",
    "check",
    "expression",
    "comment",
];

/// Reads `DESC TABLE x` / `DESCRIBE TABLE x` / `DESC PIPE x` (`None` for any other
/// statement) and describes the table or pipe.
///
/// # Errors
/// 422 `002003` for a table (pipe) that does not exist or whose database the role may not read
/// (the same answer, as Snowflake's), `001003` for a name that cannot be read.
pub(crate) fn parse(statement: &str, at: &Lookup<'_>) -> Result<Option<Described>, ApiError> {
    let text = statement.trim().trim_end_matches(';').trim();
    let mut words = text.splitn(3, char::is_whitespace);
    let (Some(verb), Some(kind), Some(name)) = (words.next(), words.next(), words.next()) else {
        return Ok(None);
    };
    let pipe = kind.eq_ignore_ascii_case("PIPE");
    if !(verb.eq_ignore_ascii_case("DESC") || verb.eq_ignore_ascii_case("DESCRIBE"))
        || !(pipe || kind.eq_ignore_ascii_case("TABLE"))
    {
        return Ok(None);
    }
    let name = name.trim();
    let parts = split_name(name).ok_or_else(|| {
        failed(
            "001003",
            "42000",
            format!(
                "SQL compilation error: cannot read the {} name {name:?}",
                if pipe { "pipe" } else { "table" }
            ),
        )
    })?;
    let missing = || {
        failed(
            "002003",
            "42S02",
            format!(
                "SQL compilation error:\n{} '{}' does not exist or not authorized.",
                if pipe { "Pipe" } else { "Table" },
                name.to_uppercase()
            ),
        )
    };
    let (db, sch, table) = match parts.as_slice() {
        [t] => (
            at.database.map(str::to_owned),
            at.schema.map(str::to_owned),
            t.clone(),
        ),
        [s, t] => (at.database.map(str::to_owned), Some(s.clone()), t.clone()),
        [d, s, t] => (Some(d.clone()), Some(s.clone()), t.clone()),
        _ => return Err(missing()),
    };
    let (Some(db), Some(sch)) = (db, sch) else {
        return Err(missing());
    };
    let norm = |s: &str| super::identifier(s);
    let (db, sch, table) = (norm(&db), norm(&sch), table);
    if pipe {
        let Some(p) = at.catalog.pipe_exact(&db, &sch, &table) else {
            return Err(missing());
        };
        if !at.may_read(&db) {
            return Err(missing());
        }
        let definition = format!(
            "COPY INTO {}.{}.{} FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))",
            p.table_database, p.table_schema, p.table
        );
        return Ok(Some(Described {
            columns: &PIPE_COLUMNS,
            rows: vec![vec![
                String::new(),
                p.name.clone(),
                p.database.clone(),
                p.schema.clone(),
                definition,
            ]],
        }));
    }
    let Some(t) = at.catalog.table_exact(&db, &sch, &table) else {
        return Err(missing());
    };
    if !at.may_read(&db) {
        return Err(missing());
    }
    let rows = t
        .columns
        .iter()
        .map(|c| {
            vec![
                c.name.clone(),
                c.ty.sql_name(),
                "COLUMN".to_owned(),
                if c.nullable { "Y" } else { "N" }.to_owned(),
                String::new(),
                "N".to_owned(),
                "N".to_owned(),
                String::new(),
                String::new(),
                String::new(),
            ]
        })
        .collect();
    Ok(Some(Described {
        columns: &COLUMNS,
        rows,
    }))
}

/// `a.b.c` with each part unquoted (`"x"` as written) or upper-cased, as the DDL reads a name
/// (`ddl::object_name`): 1 to 3 parts and nothing after them.
fn split_name(name: &str) -> Option<Vec<String>> {
    let tokens = super::show_words::tokens(name)?;
    let words: Vec<&Token> = tokens.iter().collect();
    let (parts, taken) = super::ddl::object_name(&words)?;
    (taken == words.len() && parts.len() <= 3).then_some(parts)
}

/// The SQL API answer: one row per column.
pub(crate) fn answer(d: &Described, handle: &str) -> Value {
    super::encode::text_rows(d.columns, &d.rows, handle)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    fn catalog() -> Catalog {
        let mut c = Catalog::new();
        c.apply_sql(
            "CREATE DATABASE D; CREATE SCHEMA D.S; \
             CREATE TABLE D.S.ORDERS (ID NUMBER NOT NULL, RECORD_METADATA VARIANT); \
             CREATE TABLE D.S.\"Mixed\" (A VARCHAR); \
             CREATE PIPE D.S.ORDERS AS COPY INTO D.S.ORDERS FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'));",
        )
        .unwrap();
        c
    }

    #[test]
    fn a_table_is_described_and_a_missing_one_is_002003() {
        let c = catalog();
        let all = |_: &str| true;
        let at = |granted| Lookup::new(&c, Some("D"), Some("S"), granted);
        let d = |sql: &str| parse(sql, &at(&all));
        let got = d("desc table ORDERS").unwrap().unwrap();
        assert_eq!(got.rows.len(), 2);
        assert_eq!(got.rows[0][..4], ["ID", "NUMBER(38,0)", "COLUMN", "N"]);
        assert_eq!(got.rows[1][0], "RECORD_METADATA");
        for name in [
            "orders",
            "S.ORDERS",
            "d.s.orders;",
            "\"D\".\"S\".\"ORDERS\"",
        ] {
            assert!(
                d(&format!("DESCRIBE TABLE {name}")).unwrap().is_some(),
                "{name}"
            );
        }
        assert!(d("desc table \"Mixed\"").unwrap().is_some());
        for missing in ["mixed", "NOPE", "D.X.ORDERS", "\"orders\""] {
            let e = d(&format!("desc table {missing}")).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (422, "002003"), "{missing}");
        }
        assert_eq!(d("SELECT 1").unwrap(), None);
        assert_eq!(d("desc view ORDERS").unwrap(), None);
        assert_eq!(d("desc table a b").unwrap_err().code, "001003");
        // A role not granted the database is told the same as for a missing table.
        let none = |_: &str| false;
        let e = parse("desc table ORDERS", &at(&none)).unwrap_err();
        assert_eq!(e.code, "002003");
    }

    #[test]
    fn a_declared_pipe_is_described_and_a_default_or_missing_one_is_002003() {
        let c = catalog();
        let all = |_: &str| true;
        let at = |granted| Lookup::new(&c, Some("D"), Some("S"), granted);
        let d = |sql: &str| parse(sql, &at(&all));
        for name in ["ORDERS", "orders", "d.s.ORDERS", "\"ORDERS\""] {
            let got = d(&format!("desc pipe {name}")).unwrap().unwrap();
            assert_eq!(got.columns[1], "name");
            assert_eq!(
                got.rows,
                vec![vec![
                    String::new(),
                    "ORDERS".into(),
                    "D".into(),
                    "S".into(),
                    "COPY INTO D.S.ORDERS FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))".into(),
                ]]
            );
        }
        for missing in ["\"orders\"", "\"ORDERS-STREAMING\"", "Mixed", "D.X.ORDERS"] {
            let e = d(&format!("DESCRIBE PIPE {missing}")).unwrap_err();
            assert_eq!((e.status, e.code.as_str()), (422, "002003"), "{missing}");
            assert!(e.message.contains("Pipe '"), "{}", e.message);
        }
        let none = |_: &str| false;
        let e = parse("desc pipe ORDERS", &at(&none)).unwrap_err();
        assert_eq!(e.code, "002003");
    }
}
