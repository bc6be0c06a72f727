use super::*;

/// An error table an older emulator wrote (with `ERROR_MESSAGE`, no code) is rewritten
/// at start into Snowflake's shape, each row's code read from its message; the codes read
/// that way are the codes the conversion gives.
#[test]
fn an_old_error_table_is_upgraded_with_the_codes_its_messages_name() {
    let mut catalog = crate::catalog::Catalog::new();
    catalog
        .apply_sql(
            "CREATE DATABASE D; CREATE SCHEMA D.S; CREATE TABLE D.S.L (ID NUMBER NOT NULL, \
                 N NUMBER(3,0), B BOOLEAN, D DATE, T TIME, TS TIMESTAMP_NTZ, V VARCHAR(2), \
                 BIN BINARY(1), O OBJECT, S VARCHAR) ERROR_LOGGING = TRUE;",
        )
        .unwrap();
    let table = catalog.table_exact("D", "S", "L").unwrap();
    let long = format!(r#"{{"ID":1,"S":"{}"}}"#, "a".repeat(16_777_217));
    let lines = [
        long.as_str(),
        r#"{"N":1}"#,
        r#"{"ID":1,"N":"x"}"#,
        r#"{"ID":1,"N":1000}"#,
        r#"{"ID":1,"B":"maybe"}"#,
        r#"{"ID":1,"D":"x"}"#,
        r#"{"ID":1,"T":"x"}"#,
        r#"{"ID":1,"TS":"x"}"#,
        r#"{"ID":1,"V":"abc"}"#,
        r#"{"ID":1,"BIN":"zz"}"#,
        r#"{"ID":1,"BIN":"AABB"}"#,
        r#"{"ID":1,"O":"[1]"}"#,
        r#"{"ID":1,"O":"{x"}"#,
        "[1]",
        "{",
    ];
    let conn = Connection::open_in_memory().unwrap();
    let name = table.error_table_name();
    conn.execute_batch(&format!(
        "CREATE TABLE {} (TIMESTAMP TIMESTAMP_LTZ, QUERY_ID VARCHAR, \
             ERROR_CODE \"NUMBER(38,0)\", ERROR_MESSAGE VARCHAR, ERROR_METADATA OBJECT, \
             ERROR_DATA VARIANT)",
        crate::convert::quote_ident(&name)
    ))
    .unwrap();
    let mut codes = Vec::new();
    for line in lines {
        let e = crate::convert::convert_line(table, line.as_bytes()).unwrap_err();
        codes.push(i64::from(e.code()));
        conn.execute(
            &format!(
                "INSERT INTO {} VALUES ('2026-01-01 00:00:00.000000000Z', NULL, NULL, ?1, \
                     json_object('service', 'snowpipe_streaming', 'pipe', 'L-STREAMING', \
                     'channel', 'c', 'column', ?2), ?3)",
                crate::convert::quote_ident(&name)
            ),
            rusqlite::params![e.to_string(), e.column, line],
        )
        .unwrap();
    }
    let distinct: std::collections::BTreeSet<_> = codes.iter().collect();
    assert_eq!(distinct.len(), 12, "every kind is covered: {codes:?}");
    upgrade_error_table(&conn, &name).unwrap();
    upgrade_error_table(&conn, &name).unwrap();
    let columns: Vec<String> = conn
        .prepare(&format!(
            "SELECT * FROM {}",
            crate::convert::quote_ident(&name)
        ))
        .unwrap()
        .column_names()
        .into_iter()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        columns,
        [
            "TIMESTAMP",
            "QUERY_ID",
            "ERROR_CODE",
            "ERROR_METADATA",
            "ERROR_DATA"
        ]
    );
    let rows: Vec<(i64, String, String, String)> = conn
        .prepare(&format!(
            "SELECT ERROR_CODE, ERROR_METADATA ->> '$.details.pipe_name', \
                 ERROR_METADATA ->> '$.error_message', ERROR_DATA ->> '$.\"$1\"' FROM {} \
                 ORDER BY rowid",
            crate::convert::quote_ident(&name)
        ))
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        codes,
        "{rows:?}"
    );
    assert!(rows.iter().all(|r| r.1 == "L-STREAMING" && !r.2.is_empty()));
    assert_eq!(rows.iter().map(|r| r.3.as_str()).collect::<Vec<_>>(), lines);
}

#[test]
fn identity_columns_are_numbered_in_commit_order_and_survive_commits() {
    let mut conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    conn.execute_batch("CREATE TABLE \"D.S.T\" (ID INTEGER, NAME TEXT)")
        .unwrap();
    let insert = |names: &[&str]| TableInsert {
        insert_sql: "INSERT INTO \"D.S.T\" (ID, NAME) VALUES (?1, ?2)".into(),
        table: "D.S.T".into(),
        identities: vec![IdentityColumn {
            index: 0,
            column: "ID".into(),
            start: 10,
            increment: 5,
        }],
        rows: names
            .iter()
            .map(|n| {
                let id = if *n == "given" {
                    SqlValue::Integer(1)
                } else {
                    SqlValue::NextIdentity
                };
                vec![id, SqlValue::Text((*n).into())]
            })
            .collect(),
    };
    write_commit(&mut conn, &[insert(&["a", "given", "b"])], &[]).unwrap();
    write_commit(&mut conn, &[insert(&["c"])], &[]).unwrap();
    let rows: Vec<(i64, String)> = conn
        .prepare("SELECT ID, NAME FROM \"D.S.T\" ORDER BY rowid")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let expected = [(10, "a"), (1, "given"), (15, "b"), (20, "c")].map(|(i, n)| (i, n.to_string()));
    assert_eq!(rows, expected);
}

/// A reader connection that last read before another connection added a column answers a
/// `SELECT *` with the column (issue: the golden rows' flake). SQLite expands `*` when it
/// prepares, from the connection's cached schema, and re-prepares on the first step when the
/// file's schema moved on: the names read at prepare time were the old ones, so the result
/// lost every column added since (a prefix of the table, as the golden test saw).
#[test]
fn a_select_star_sees_columns_another_connection_added() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("db.sqlite3");
    let writer = Connection::open(&file).unwrap();
    writer.pragma_update(None, "journal_mode", "WAL").unwrap();
    writer
        .execute_batch("CREATE TABLE T (A INTEGER); INSERT INTO T VALUES (1);")
        .unwrap();
    let reader = Connection::open(&file).unwrap();
    // The reader caches the schema of one column.
    assert_eq!(query(&reader, "SELECT * FROM T").unwrap().0, ["A"]);
    writer
        .execute_batch("ALTER TABLE T ADD COLUMN B TEXT; UPDATE T SET B = 'b';")
        .unwrap();
    let (columns, rows) = query(&reader, "SELECT * FROM T").unwrap();
    assert_eq!(columns, ["A", "B"]);
    assert_eq!(rows, [vec![serde_json::json!(1), serde_json::json!("b")]]);
    let (_, declared, _) = query_declared(&reader, "SELECT * FROM T").unwrap();
    assert_eq!(
        declared,
        [Some("INTEGER".to_owned()), Some("TEXT".to_owned())]
    );
}
