use super::*;

use crate::catalog::Catalog;

fn table(sql: &str) -> Table {
    crate::catalog::table_from_ddl(sql)
}

#[test]
fn defaults_and_identities_are_read_from_create_table() {
    let t = table(
        "CREATE TABLE T (ID INT AUTOINCREMENT START 10 INCREMENT 5, \
             ID2 NUMBER(10,0) IDENTITY(100, -1), ID3 INT AUTOINCREMENT, \
             S VARCHAR DEFAULT 'x', N NUMBER(5,2) DEFAULT -1.5, B BOOLEAN DEFAULT TRUE, \
             Z VARCHAR DEFAULT NULL, TS TIMESTAMP_NTZ DEFAULT CURRENT_TIMESTAMP(), \
             D DATE DEFAULT CURRENT_DATE, PLAIN INT)",
    );
    let defaults: Vec<_> = t.columns.iter().map(|c| c.default.clone()).collect();
    assert_eq!(
        defaults,
        [
            Some(ColumnDefault::Identity {
                start: 10,
                increment: 5
            }),
            Some(ColumnDefault::Identity {
                start: 100,
                increment: -1
            }),
            Some(ColumnDefault::Identity {
                start: 1,
                increment: 1
            }),
            Some(ColumnDefault::Constant(serde_json::json!("x"))),
            Some(ColumnDefault::Constant(serde_json::json!("-1.5"))),
            Some(ColumnDefault::Constant(serde_json::json!(true))),
            Some(ColumnDefault::Constant(serde_json::Value::Null)),
            Some(ColumnDefault::CurrentTimestamp),
            Some(ColumnDefault::CurrentDate),
            None,
        ]
    );
}

#[test]
fn error_logging_is_read_from_create_table() {
    assert!(table("CREATE TABLE T (A INT) ENABLE_SCHEMA_EVOLUTION = TRUE ERROR_LOGGING = TRUE COMMENT = 'x'").error_logging);
    assert!(!table("CREATE TABLE T (A INT) error_logging = false").error_logging);
    assert!(!table("CREATE TABLE T (A INT)").error_logging);
    assert_eq!(
        table("CREATE TABLE T (A INT) ERROR_LOGGING = TRUE").error_table_name(),
        "ERROR_TABLE(D.PUBLIC.T)"
    );
}

#[test]
fn schema_evolution_is_read_from_create_table() {
    assert!(table("CREATE TABLE T (A INT) ENABLE_SCHEMA_EVOLUTION = TRUE").schema_evolution);
    assert!(
        table("CREATE TABLE T (A INT) ERROR_LOGGING = TRUE ENABLE_SCHEMA_EVOLUTION = TRUE")
            .schema_evolution
    );
    assert!(!table("CREATE TABLE T (A INT) ENABLE_SCHEMA_EVOLUTION = FALSE").schema_evolution);
    assert!(!table("CREATE TABLE T (A INT)").schema_evolution);
}

#[test]
fn alter_table_adds_columns_and_drops_not_null() {
    let t = table(
        "CREATE TABLE T (A INT NOT NULL, B VARCHAR); \
             ALTER TABLE T ADD COLUMN \"Mixed\" VARIANT; \
             ALTER TABLE D.PUBLIC.T ADD C NUMBER(38,0); \
             ALTER TABLE T ADD COLUMN IF NOT EXISTS C FLOAT; \
             ALTER TABLE T ALTER COLUMN a DROP NOT NULL; \
             ALTER TABLE T ALTER B SET NOT NULL",
    );
    assert_eq!(
        t.column_summary(),
        [
            ("A", "NUMBER(38,0)".to_owned(), true),
            ("B", "VARCHAR".to_owned(), false),
            ("Mixed", "VARIANT".to_owned(), true),
            ("C", "NUMBER(38,0)".to_owned(), true),
        ]
    );
    let mut catalog = Catalog::new();
    catalog
        .apply_sql("CREATE DATABASE D; CREATE TABLE T (A INT)")
        .unwrap();
    for (sql, expected) in [
        ("ALTER TABLE T ADD COLUMN A INT", "already exists"),
        ("ALTER TABLE NOPE ADD COLUMN X INT", "does not exist"),
        (
            "ALTER TABLE T ALTER COLUMN X DROP NOT NULL",
            "does not exist",
        ),
    ] {
        let e = catalog
            .apply_sql(&format!("USE D; {sql}"))
            .unwrap_err()
            .to_string();
        assert!(e.contains(expected), "{sql}: {e}");
    }
    // Other ALTERs stay ignored, even of tables the catalog does not know.
    let notes = catalog
            .apply_sql("USE D; ALTER TABLE NOPE RENAME TO X; ALTER TABLE T SET DATA_RETENTION_TIME_IN_DAYS = 1")
            .unwrap();
    assert_eq!(notes.len(), 2, "{notes:?}");
}

#[test]
fn unsupported_defaults_and_identities_are_refused() {
    let mut catalog = Catalog::new();
    for sql in [
        "CREATE TABLE T (A INT DEFAULT S.NEXTVAL)",
        "CREATE TABLE T (A VARCHAR AUTOINCREMENT)",
        "CREATE TABLE T (A INT IDENTITY(1, 0))",
    ] {
        let e = catalog
            .apply_sql(&format!("CREATE DATABASE D; {sql}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("DEFAULT") || e.contains("AUTOINCREMENT") || e.contains("IDENTITY"),
            "{sql}: {e}"
        );
    }
}

/// Issue 81 item 17: a column whose name folds (ASCII case) to an earlier one's is stored
/// under `<name>~<position>`, `~` added until it folds to no earlier storage name; every
/// other column (every column of a table without such twins) under its own name.
#[test]
fn twins_in_case_get_storage_names_of_their_own_and_the_rest_keep_theirs() {
    let t = table("CREATE TABLE T (ID INT, \"a\" INT, A INT, \"A~2\" INT, \"b\" INT, \"id\" INT)");
    assert_eq!(
        t.storage_names(),
        vec!["ID", "a", "A~2", "A~2~3", "b", "id~5"]
    );
    let plain = table("CREATE TABLE P (ID INT, \"name\" VARCHAR, X INT)");
    let names: Vec<String> = plain.columns.iter().map(|c| c.name.clone()).collect();
    assert_eq!(plain.storage_names(), names);
}
