//! What the parser is not given: a statement's tokens read before parsing (`ERROR_LOGGING`,
//! which sqlparser does not know, and statements the catalog does not model).

use sqlparser::tokenizer::Token;

/// `CREATE … TABLE … ERROR_LOGGING = TRUE|FALSE …`: the setting and the statement's text
/// without it (sqlparser does not know the option); `None` for every other statement.
pub(super) fn strip_error_logging(tokens: &[Token]) -> Option<(bool, String)> {
    let word = |t: Option<&Token>| match t {
        Some(Token::Word(w)) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
        _ => None,
    };
    if word(tokens.first()).as_deref() != Some("CREATE") {
        return None;
    }
    let table_at = tokens
        .iter()
        .position(|t| word(Some(t)).as_deref() == Some("TABLE"))?;
    let at = (table_at..tokens.len())
        .find(|&i| word(tokens.get(i)).as_deref() == Some("ERROR_LOGGING"))?;
    if tokens.get(at + 1) != Some(&Token::Eq) {
        return None;
    }
    let on = match word(tokens.get(at + 2)).as_deref() {
        Some("TRUE") => true,
        Some("FALSE") => false,
        _ => return None,
    };
    let text = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| !(at..at + 3).contains(i))
        .map(|(_, t)| t.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    Some((on, text))
}

/// An `ALTER TABLE … ADD COLUMN … COMMENT '…'` without its column comments (`COMMENT` and a
/// string, not `COMMENT = …`, which is a table's), which sqlparser does not read there and
/// the emulator does not keep: Snowflake's Kafka connector adds each column with one
/// (`ColumnInfos.getDdlComments`). `None` for other statements or when there is none.
pub(super) fn strip_column_comments(tokens: &[Token]) -> Option<String> {
    let is_word = |t: Option<&Token>, k: &str| matches!(t, Some(Token::Word(w)) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(k));
    if !is_word(tokens.first(), "ALTER") {
        return None;
    }
    let at: Vec<usize> = (0..tokens.len())
        .filter(|&i| {
            is_word(tokens.get(i), "COMMENT")
                && matches!(tokens.get(i + 1), Some(Token::SingleQuotedString(_)))
        })
        .collect();
    if at.is_empty() {
        return None;
    }
    let text = tokens
        .iter()
        .enumerate()
        .filter(|(i, _)| !at.iter().any(|a| *i == *a || *i == *a + 1))
        .map(|(_, t)| t.to_string())
        .collect::<Vec<_>>()
        .join(" ");
    Some(text)
}

/// Statements sqlparser may fail on that the emulator would ignore anyway: access control,
/// session settings, inspection, and CREATE/DROP/ALTER of objects it does not model.
pub(super) fn is_unmodelled(tokens: &[Token]) -> bool {
    let words = first_words(tokens);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    match words.as_slice() {
        ["GRANT" | "REVOKE" | "SHOW" | "DESC" | "DESCRIBE" | "ALTER" | "COMMENT" | "SET"
        | "UNSET", ..] => true,
        ["CREATE", "OR", "REPLACE", kind, ..] | ["CREATE", kind, ..] | ["DROP", kind, ..] => {
            !MODELLED.contains(kind) && SNOWFLAKE_KINDS.contains(kind)
        }
        _ => false,
    }
}

/// The words after `CREATE [OR REPLACE]` or `DROP` that lead to a kind of object the catalog
/// models (`CREATE TRANSIENT TABLE`, `CREATE IF …` is sqlparser's to read).
const MODELLED: [&str; 13] = [
    "TABLE",
    "DATABASE",
    "SCHEMA",
    "PIPE",
    "TRANSIENT",
    "TEMPORARY",
    "TEMP",
    "LOCAL",
    "GLOBAL",
    "VOLATILE",
    "HYBRID",
    "OR",
    "IF",
];

/// The first word of each other kind of object Snowflake's `CREATE` and `DROP` take (its SQL
/// command reference, "All commands": `CREATE WAREHOUSE`, `CREATE FILE FORMAT`,
/// `CREATE SECURE VIEW`, …). A `CREATE` or `DROP` of one of these is ignored with a note; any
/// other word (`CREATE TABLEX`) is a syntax error naming it, as on Snowflake, rather than a
/// typo that silently declares nothing.
const SNOWFLAKE_KINDS: [&str; 59] = [
    "ACCOUNT",
    "AGGREGATION",
    "ALERT",
    "API",
    "APPLICATION",
    "AUTHENTICATION",
    "CATALOG",
    "COMPUTE",
    "CONNECTION",
    "CORTEX",
    "DATA",
    "DYNAMIC",
    "EVENT",
    "EXTERNAL",
    "FAILOVER",
    "FILE",
    "FUNCTION",
    "GIT",
    "ICEBERG",
    "IMAGE",
    "INDEX",
    "INTEGRATION",
    "JOIN",
    "MANAGED",
    "MASKING",
    "MATERIALIZED",
    "MODEL",
    "NETWORK",
    "NOTEBOOK",
    "NOTIFICATION",
    "ORGANIZATION",
    "PACKAGES",
    "PASSWORD",
    "PRIVACY",
    "PROCEDURE",
    "PROJECTION",
    "RECURSIVE",
    "REPLICATION",
    "RESOURCE",
    "ROLE",
    "ROW",
    "SECRET",
    "SECURE",
    "SECURITY",
    "SEMANTIC",
    "SEQUENCE",
    "SERVICE",
    "SESSION",
    "SHARE",
    "SNAPSHOT",
    "STAGE",
    "STORAGE",
    "STREAM",
    "STREAMLIT",
    "TAG",
    "TASK",
    "USER",
    "VIEW",
    "WAREHOUSE",
];

/// The word after `CREATE [OR REPLACE]` or `DROP` when it names no kind of object Snowflake
/// has (`CREATE TABLEX …`), for the syntax error; `None` for every other statement.
pub(super) fn unknown_kind(tokens: &[Token]) -> Option<String> {
    let words = first_words(tokens);
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let kind = match words.as_slice() {
        ["CREATE", "OR", "REPLACE", kind, ..] | ["CREATE", kind, ..] | ["DROP", kind, ..] => *kind,
        _ => return None,
    };
    let known = MODELLED.contains(&kind) || SNOWFLAKE_KINDS.contains(&kind);
    (!known).then(|| kind.to_string())
}

/// A statement's first six words, upper case, up to the first token that is not a bare word.
fn first_words(tokens: &[Token]) -> Vec<String> {
    tokens
        .iter()
        .take(6)
        .map_while(|t| match t {
            Token::Word(w) if w.quote_style.is_none() => Some(w.value.to_ascii_uppercase()),
            _ => None,
        })
        .collect()
}

/// `ARRAY` when the tokens hold a structured array type (`ARRAY(INT)`, `ARRAY<INT>`
/// in a column list), which the SQL parser cannot read.
pub(super) fn structured_array(tokens: &[Token]) -> Option<&'static str> {
    tokens.windows(2).find_map(|pair| match pair {
        [Token::Word(w), Token::LParen | Token::Lt]
            if w.quote_style.is_none() && w.value.eq_ignore_ascii_case("ARRAY") =>
        {
            Some("ARRAY")
        }
        _ => None,
    })
}

#[cfg(test)]
mod evolution_comment_tests {
    use crate::catalog::Catalog;

    /// Snowflake's Kafka connector adds each column with a comment
    /// (`ColumnInfos.getDdlComments`): the column is added, the comment not kept; a table's
    /// `COMMENT = '…'` is not a column's.
    #[test]
    fn a_column_added_with_a_comment_is_added() {
        let mut catalog = Catalog::new();
        catalog
            .apply_sql("CREATE DATABASE D; CREATE TABLE D.PUBLIC.T (A INT)")
            .unwrap();
        let notes = catalog
            .apply_sql(
                "alter table D.PUBLIC.T add column \"City\" VARCHAR comment 'column created by \
                 schema evolution from Snowflake Kafka Connector'; ALTER TABLE D.PUBLIC.T ADD B BOOLEAN \
                 COMMENT 'x'",
            )
            .unwrap();
        assert!(notes.is_empty(), "{notes:?}");
        let t = catalog.table("D", "PUBLIC", "T").unwrap();
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["A", "City", "B"]);
        assert!(super::strip_column_comments(
            &crate::catalog::script::split_statements("ALTER TABLE T SET COMMENT = 'x'").unwrap()
                [0]
            .tokens
        )
        .is_none());
    }
}

#[cfg(test)]
mod kind_tests {
    use crate::catalog::Catalog;

    #[test]
    fn a_create_of_an_unknown_kind_is_a_syntax_error_and_known_unmodelled_kinds_are_ignored() {
        for typo in [
            "CREATE TABLEX T (A INT);",
            "DROP TABEL T;",
            "CREATE OR REPLACE TALBE T (A INT);",
        ] {
            let err = Catalog::new().apply_sql(typo).expect_err(typo).to_string();
            assert!(err.contains("is not a kind of object"), "{typo}: {err}");
        }
        let notes = Catalog::new()
            .apply_sql(
                "CREATE WAREHOUSE W; CREATE OR REPLACE FILE FORMAT F TYPE = CSV; \
                 CREATE SECURE VIEW V AS SELECT 1; DROP ROLE R; CREATE USER U;",
            )
            .expect("known kinds the catalog does not model are ignored");
        assert_eq!(notes.len(), 5, "{notes:?}");
    }
}
