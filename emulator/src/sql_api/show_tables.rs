//! `SHOW TABLES LIKE '<pattern>' [LIMIT <n>]`: the tables of the request's database and
//! schema whose names match, with Snowflake's `name`, `database_name`, `schema_name`, `kind`
//! and `enable_schema_evolution` (`Y`/`N`) columns (a subset of Snowflake's, in its order).
//! Snowflake's Kafka connector asks it before it evolves a table client-side
//! (`StandardSnowflakeConnectionService.shouldEvolveSchema`: `show tables like ? limit 1`), and
//! `snowpipe-kafka` does the same. The pattern is SQL `LIKE` (`%`, `_`, `\` escaping; `like.rs`),
//! case-insensitive as Snowflake's; only tables whose database the role may read are listed.

use sqlparser::tokenizer::Token;

use crate::base::api_error::ApiError;

use super::describe::Described;
use super::failure::failed;
use super::show_words::{self, Lookup};

const COLUMNS: [&str; 5] = [
    "name",
    "database_name",
    "schema_name",
    "kind",
    "enable_schema_evolution",
];

/// Reads `SHOW TABLES LIKE '…' [LIMIT n]` (`None` for any other statement) and lists the
/// matching tables.
///
/// # Errors
/// 422 `001003` for a `SHOW TABLES` this does not read (naming what it reads), `002003` when
/// the request names no database and schema.
pub(crate) fn parse(statement: &str, at: &Lookup<'_>) -> Result<Option<Described>, ApiError> {
    let Some(words) = show_words::show(statement, "TABLES") else {
        return Ok(None);
    };
    let unread = || {
        show_words::unread(
            "SHOW TABLES LIKE '<pattern>' [LIMIT <n>] in the request's database and schema",
        )
    };
    let (Some(pattern), rest) = show_words::like(&words) else {
        return Err(unread());
    };
    let limit = match rest {
        [] => usize::MAX,
        [l, Token::Number(n, _)] if show_words::keyword(l, "LIMIT") => {
            n.parse().map_err(|_| unread())?
        }
        _ => return Err(unread()),
    };
    let (Some(db), Some(sch)) = (at.database, at.schema) else {
        return Err(failed(
            "002003",
            "02000",
            "SQL compilation error: SHOW TABLES needs the request's database and schema",
        ));
    };
    let (db, sch) = (super::identifier(db), super::identifier(sch));
    let rows = at
        .catalog
        .tables()
        .filter(|t| t.database == db && t.schema == sch && at.may_read(&t.database))
        .filter(|t| super::like::like(&pattern, &t.name))
        .take(limit)
        .map(|t| {
            vec![
                t.name.clone(),
                t.database.clone(),
                t.schema.clone(),
                "TABLE".to_owned(),
                if t.schema_evolution { "Y" } else { "N" }.to_owned(),
            ]
        })
        .collect();
    Ok(Some(Described {
        columns: &COLUMNS,
        rows,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::Catalog;

    #[test]
    fn tables_are_listed_by_like_with_their_schema_evolution() {
        let mut c = Catalog::new();
        c.apply_sql(
            "CREATE DATABASE D; CREATE SCHEMA D.S; \
             CREATE TABLE D.S.ORDERS (A INT) ENABLE_SCHEMA_EVOLUTION = TRUE; \
             CREATE TABLE D.S.ORDERSX (A INT); CREATE TABLE D.S.\"my_t\" (A INT); \
             CREATE SCHEMA D.S2; CREATE TABLE D.S2.ORDERS (A INT);",
        )
        .unwrap();
        let all = |_: &str| true;
        let at = |granted| Lookup::new(&c, Some("D"), Some("S"), granted);
        let show = |sql: &str| parse(sql, &at(&all));
        let got = show("show tables like 'orders' limit 1").unwrap().unwrap();
        assert_eq!(got.rows, vec![vec!["ORDERS", "D", "S", "TABLE", "Y"]]);
        let got = show("SHOW TABLES LIKE 'ORDERS%'").unwrap().unwrap();
        assert_eq!(got.rows.len(), 2);
        assert_eq!(got.rows[1][4], "N");
        // `_` matches any one character unless escaped.
        assert_eq!(
            show("show tables like 'my_t'").unwrap().unwrap().rows.len(),
            1
        );
        assert_eq!(
            show(r"show tables like 'my\_t'")
                .unwrap()
                .unwrap()
                .rows
                .len(),
            1
        );
        assert!(show(r"show tables like 'myxt'")
            .unwrap()
            .unwrap()
            .rows
            .is_empty());
        assert_eq!(show("select 1").unwrap(), None);
        assert_eq!(show("show tables").unwrap_err().code, "001003");
        let none = |_: &str| false;
        let hidden = parse("show tables like 'ORDERS'", &at(&none));
        assert!(hidden.unwrap().unwrap().rows.is_empty());
    }
}
