//! `ALTER TABLE [IF EXISTS] t SET ENABLE_SCHEMA_EVOLUTION = TRUE|FALSE`, read from the tokens
//! (sqlparser does not give the option): what Snowflake's Kafka connector sends to turn schema
//! evolution on for a table that exists. Only this one option, alone in its `SET`; other
//! `ALTER TABLE … SET`s stay unmodelled.

use sqlparser::tokenizer::Token;

use super::Ident;

/// A parsed `ALTER TABLE … SET ENABLE_SCHEMA_EVOLUTION = …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct SetSchemaEvolution {
    pub(super) if_exists: bool,
    pub(super) name: Vec<Ident>,
    pub(super) enabled: bool,
}

/// The statement, or `None` for every other statement.
pub(super) fn parse(tokens: &[Token]) -> Option<SetSchemaEvolution> {
    let word = |i: usize| match tokens.get(i) {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    if word(0)? != "ALTER" || word(1)? != "TABLE" {
        return None;
    }
    let mut i = 2;
    let if_exists = word(i).as_deref() == Some("IF") && word(i + 1).as_deref() == Some("EXISTS");
    if if_exists {
        i += 2;
    }
    let mut name = Vec::new();
    loop {
        match tokens.get(i)? {
            Token::Word(w) => name.push(Ident {
                value: w.value.clone(),
                quoted: w.quote_style.is_some(),
            }),
            _ => return None,
        }
        i += 1;
        if tokens.get(i) != Some(&Token::Period) {
            break;
        }
        i += 1;
    }
    if word(i)? != "SET" || word(i + 1)? != "ENABLE_SCHEMA_EVOLUTION" {
        return None;
    }
    if tokens.get(i + 2) != Some(&Token::Eq) || tokens.len() != i + 4 {
        return None;
    }
    let enabled = match word(i + 3)?.as_str() {
        "TRUE" => true,
        "FALSE" => false,
        _ => return None,
    };
    Some(SetSchemaEvolution {
        if_exists,
        name,
        enabled,
    })
}

#[cfg(test)]
mod tests {
    use crate::catalog::Catalog;

    #[test]
    fn alter_table_set_enable_schema_evolution_turns_it_on_and_off() {
        let mut c = Catalog::new();
        c.apply_sql("CREATE DATABASE D; CREATE TABLE T (A INT); CREATE TABLE \"t x\" (A INT);")
            .unwrap();
        let evolves =
            |c: &Catalog, t: &str| c.table_exact("D", "PUBLIC", t).unwrap().schema_evolution;
        for (sql, table, on) in [
            (
                "ALTER TABLE T SET ENABLE_SCHEMA_EVOLUTION = TRUE",
                "T",
                true,
            ),
            (
                "alter table if exists d.public.t set enable_schema_evolution = false",
                "T",
                false,
            ),
            (
                "ALTER TABLE \"t x\" SET ENABLE_SCHEMA_EVOLUTION = TRUE",
                "t x",
                true,
            ),
        ] {
            let notes = c.apply_sql(&format!("USE DATABASE D; {sql}")).unwrap();
            assert!(notes.is_empty(), "{sql}: {notes:?}");
            assert_eq!(evolves(&c, table), on, "{sql}");
        }
        // Missing table: an error, unless IF EXISTS.
        assert!(c
            .apply_sql("USE DATABASE D; ALTER TABLE NOPE SET ENABLE_SCHEMA_EVOLUTION = TRUE")
            .is_err());
        let notes = c
            .apply_sql(
                "USE DATABASE D; ALTER TABLE IF EXISTS NOPE SET ENABLE_SCHEMA_EVOLUTION = TRUE",
            )
            .unwrap();
        assert!(notes.is_empty());
        // Another option, or more than this one, stays unmodelled.
        for sql in [
            "ALTER TABLE T SET DATA_RETENTION_TIME_IN_DAYS = 1",
            "ALTER TABLE T SET ENABLE_SCHEMA_EVOLUTION = TRUE COMMENT = 'x'",
        ] {
            let notes = c.apply_sql(&format!("USE DATABASE D; {sql}")).unwrap();
            assert_eq!(notes.len(), 1, "{sql}: {notes:?}");
        }
        assert!(!evolves(&c, "T"));
    }
}
