//! Catalog tests: Snowflake DDL scripts → tables and pipes, and REST-name lookups.

use std::path::Path;

use snowpipe_emulator::catalog::{
    Catalog, CatalogError, ColumnType, LookupError, MatchByColumnName, StatementError,
};

fn setup_sql_path() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../apps/src/ski_resort/sql/setup.sql")
}

fn catalog(sql: &str) -> Catalog {
    let mut catalog = Catalog::new();
    catalog.apply_sql(sql).expect("script applies");
    catalog
}

fn statement_error(sql: &str) -> (usize, StatementError, String) {
    let mut catalog = Catalog::new();
    match catalog.apply_sql(sql) {
        Err(e @ CatalogError::Statement { .. }) => {
            let message = e.to_string();
            let CatalogError::Statement {
                statement, kind, ..
            } = e
            else {
                unreachable!()
            };
            (statement, kind, message)
        }
        other => panic!("expected a statement error, got {other:?}"),
    }
}

const PRELUDE: &str = "CREATE DATABASE D; CREATE SCHEMA S;";

#[test]
fn ski_resort_setup_declares_three_tables_and_six_pipes() {
    let mut catalog = Catalog::new();
    let notes = catalog.apply_sql_file(&setup_sql_path()).unwrap();

    let names: Vec<_> = catalog.tables().map(|t| t.qualified_name()).collect();
    assert_eq!(
        names,
        [
            "STREAMING_INGEST.STREAMING_INGEST.LIFT_RIDE",
            "STREAMING_INGEST.STREAMING_INGEST.RESORT_TICKET",
            "STREAMING_INGEST.STREAMING_INGEST.SEASON_PASS",
        ]
    );
    let ticket = catalog
        .table("STREAMING_INGEST", "STREAMING_INGEST", "RESORT_TICKET")
        .unwrap();
    assert_eq!(
        ticket.column_summary(),
        [
            ("TXID", "VARCHAR(255)".to_string(), true),
            ("RFID", "VARCHAR(255)".into(), true),
            ("RESORT", "VARCHAR(255)".into(), true),
            ("PURCHASE_TIME", "TIMESTAMP_NTZ".into(), true),
            ("PRICE_USD", "NUMBER(7,2)".into(), true),
            ("EXPIRATION_TIME", "DATE".into(), true),
            ("DAYS", "NUMBER(38,0)".into(), true),
            ("NAME", "VARCHAR(255)".into(), true),
            ("ADDRESS", "VARIANT".into(), true),
            ("PHONE", "VARCHAR(255)".into(), true),
            ("EMAIL", "VARCHAR(255)".into(), true),
            ("EMERGENCY_CONTACT", "VARIANT".into(), true),
        ]
    );
    let lift = catalog
        .table("streaming_ingest", "streaming_ingest", "lift_ride")
        .unwrap();
    assert_eq!(lift.columns[5].ty, ColumnType::INTEGER);
    assert_eq!(catalog.tables().count(), 3);

    let pipes: Vec<_> = catalog
        .pipes()
        .into_iter()
        .map(|p| (p.name, p.table, p.is_default))
        .collect();
    assert_eq!(
        pipes,
        [
            ("LIFT_RIDE_PIPE".to_string(), "LIFT_RIDE".to_string(), false),
            ("RESORT_TICKET_PIPE".into(), "RESORT_TICKET".into(), false),
            ("SEASON_PASS_PIPE".into(), "SEASON_PASS".into(), false),
            ("LIFT_RIDE-STREAMING".into(), "LIFT_RIDE".into(), true),
            (
                "RESORT_TICKET-STREAMING".into(),
                "RESORT_TICKET".into(),
                true
            ),
            ("SEASON_PASS-STREAMING".into(), "SEASON_PASS".into(), true),
        ]
    );

    // USE ROLE x2, CREATE ROLE, GRANT x2 (privileges), CREATE WAREHOUSE; CREATE USER …
    // DEFAULT_ROLE and GRANT ROLE … TO USER are applied: the user's default and granted role.
    assert_eq!(notes.len(), 6, "{notes:#?}");
    assert_eq!(
        catalog.default_role("streaming_ingest"),
        Some("STREAMING_INGEST")
    );
    assert!(catalog.role_granted_to_user("STREAMING_INGEST", "streaming_ingest"));
    assert!(notes.iter().all(|n| n.starts_with("ignored: ")));
    assert!(notes.contains(&"ignored: USE ROLE ACCOUNTADMIN".to_string()));
    assert!(notes
        .iter()
        .any(|n| n.starts_with("ignored: GRANT OWNERSHIP ON DATABASE STREAMING_INGEST")));

    let resolved = catalog
        .resolve_pipe("STREAMING_INGEST", "STREAMING_INGEST", "RESORT_TICKET_PIPE")
        .unwrap();
    assert_eq!(resolved.table.name, "RESORT_TICKET");
    let definition = catalog
        .pipe_definition("STREAMING_INGEST", "STREAMING_INGEST", "resort_ticket_pipe")
        .unwrap();
    assert_eq!(
        definition.match_by_column_name,
        MatchByColumnName::CaseInsensitive
    );
    assert!(definition.transform.is_none());
}

#[test]
fn default_pipe_resolves_in_any_case() {
    let catalog = catalog(&format!("{PRELUDE} CREATE TABLE resort_ticket (id int);"));
    for name in [
        "RESORT_TICKET-STREAMING",
        "resort_ticket-streaming",
        "Resort_Ticket-Streaming",
    ] {
        let resolved = catalog.resolve_pipe("d", "s", name).unwrap();
        assert_eq!(resolved.pipe, "RESORT_TICKET-STREAMING");
        assert_eq!((resolved.database, resolved.schema), ("D", "S"));
        assert_eq!(resolved.table.qualified_name(), "D.S.RESORT_TICKET");
    }
}

#[test]
fn unknown_names_give_the_matching_lookup_error_and_code() {
    let catalog = catalog(&format!(
        "{PRELUDE} CREATE TABLE t (id int); CREATE PIPE p AS COPY INTO t FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'));"
    ));
    let cases = [
        (
            ("X", "S", "P"),
            LookupError::Database("X".into()),
            "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
        (
            ("D", "X", "P"),
            LookupError::Schema("X".into()),
            "ERR_SCHEMA_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
        (
            ("D", "S", "NOPE"),
            LookupError::Pipe("NOPE".into()),
            "ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        ),
        (
            ("D", "S", "NOPE-STREAMING"),
            LookupError::Table("NOPE".into()),
            "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED",
        ),
    ];
    for ((db, schema, pipe), expected, code) in cases {
        let error = catalog.resolve_pipe(db, schema, pipe).unwrap_err();
        assert_eq!(error, expected);
        assert_eq!(error.code(), code);
        assert_eq!(error.http_status(), 404);
    }
    assert_eq!(
        LookupError::Pipe("NOPE".into()).to_string(),
        "Pipe 'NOPE' does not exist or not authorized."
    );
    assert!(catalog.resolve_pipe("d", "s", "p").is_ok());
}

#[test]
fn pipe_whose_table_was_dropped_is_a_table_error() {
    let catalog = catalog(&format!(
        "{PRELUDE} CREATE TABLE t (id int); CREATE PIPE p AS COPY INTO t FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')); DROP TABLE t;"
    ));
    assert_eq!(
        catalog.resolve_pipe("D", "S", "P").unwrap_err(),
        LookupError::Table("D.S.T".into())
    );
}

#[test]
fn quoted_identifiers_keep_case_and_unquoted_fold_to_upper() {
    let catalog = catalog(
        r#"CREATE DATABASE "MixedDb"; CREATE SCHEMA "lower"; CREATE TABLE "Events" ("id" int, Name varchar, "Quoted Col" string);
           CREATE TABLE events (x int);"#,
    );
    let quoted = catalog.table("MixedDb", "lower", "Events").unwrap();
    let names: Vec<_> = quoted.columns.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["id", "NAME", "Quoted Col"]);
    assert_eq!(quoted.qualified_name(), "MixedDb.lower.Events");
    // Exact first, then upper-cased: "events" finds EVENTS, "Events" finds "Events".
    assert_eq!(
        catalog.table("MixedDb", "lower", "events").unwrap().name,
        "EVENTS"
    );
    assert!(catalog.table("mixeddb", "lower", "Events").is_none());
    assert!(catalog
        .resolve_pipe("MixedDb", "LOWER", "Events-STREAMING")
        .is_err());
    assert_eq!(
        catalog
            .resolve_pipe("MixedDb", "lower", "Events-STREAMING")
            .unwrap()
            .pipe,
        "Events-STREAMING"
    );
}

#[test]
fn use_forms_set_the_current_database_and_schema() {
    let catalog = catalog(
        "CREATE DATABASE A; CREATE SCHEMA A.S1; CREATE DATABASE B; CREATE SCHEMA B.S2;
         USE DATABASE A; CREATE TABLE t1 (x int);
         USE SCHEMA S1; CREATE TABLE t2 (x int);
         USE B.S2; CREATE TABLE t3 (x int);
         USE SCHEMA A.S1; CREATE TABLE t4 (x int);
         USE B; CREATE TABLE t5 (x int);",
    );
    let names: Vec<_> = catalog.tables().map(|t| t.qualified_name()).collect();
    assert_eq!(
        names,
        [
            "A.PUBLIC.T1",
            "A.S1.T2",
            "A.S1.T4",
            "B.PUBLIC.T5",
            "B.S2.T3"
        ]
    );
}

#[test]
fn one_two_and_three_part_names() {
    let catalog = catalog(
        "CREATE DATABASE A; CREATE SCHEMA A.S; CREATE DATABASE B; CREATE SCHEMA B.T;
         USE A.S;
         CREATE TABLE one (x int); CREATE TABLE S.two (x int); CREATE TABLE B.T.three (x int);
         CREATE PIPE B.T.p3 AS COPY INTO one FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'));",
    );
    assert!(catalog.table("A", "S", "ONE").is_some());
    assert!(catalog.table("A", "S", "TWO").is_some());
    assert!(catalog.table("B", "T", "THREE").is_some());
    let resolved = catalog.resolve_pipe("B", "T", "P3").unwrap();
    assert_eq!(resolved.table.qualified_name(), "A.S.ONE");
    assert_eq!((resolved.database, resolved.schema), ("B", "T"));
}

#[test]
fn create_database_makes_public_current() {
    let catalog = catalog("CREATE DATABASE d; CREATE TABLE t (x int);");
    assert!(catalog.table("D", "PUBLIC", "T").is_some());
}

#[test]
fn or_replace_replaces_if_not_exists_keeps_and_plain_create_is_an_error() {
    let catalog = catalog(&format!(
        "{PRELUDE} CREATE TABLE t (a int); CREATE OR REPLACE TABLE t (b int); CREATE TABLE IF NOT EXISTS t (c int);"
    ));
    assert_eq!(catalog.table("D", "S", "T").unwrap().columns[0].name, "B");

    let (statement, kind, message) = statement_error(&format!(
        "{PRELUDE} CREATE TABLE t (a int); CREATE TABLE t (b int);"
    ));
    assert_eq!(statement, 4);
    assert_eq!(
        kind,
        StatementError::AlreadyExists {
            kind: "table",
            name: "D.S.T".into()
        }
    );
    assert!(message.contains("CREATE OR REPLACE"), "{message}");

    let pipe = "CREATE PIPE p AS COPY INTO t FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))";
    let (_, kind, _) = statement_error(&format!(
        "{PRELUDE} CREATE TABLE t (a int); {pipe}; {pipe};"
    ));
    assert!(matches!(
        kind,
        StatementError::AlreadyExists { kind: "pipe", .. }
    ));
    let catalog = self::catalog(&format!(
        "{PRELUDE} CREATE TABLE t (a int); CREATE TABLE u (a int); {pipe};
         CREATE PIPE IF NOT EXISTS p AS COPY INTO u FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'));"
    ));
    assert_eq!(catalog.resolve_pipe("D", "S", "P").unwrap().table.name, "T");
    let catalog = self::catalog(&format!(
        "{PRELUDE} CREATE TABLE t (a int); CREATE TABLE u (a int); {pipe};
         CREATE OR REPLACE PIPE p AS COPY INTO u FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'));"
    ));
    assert_eq!(catalog.resolve_pipe("D", "S", "P").unwrap().table.name, "U");

    let (_, kind, _) = statement_error("CREATE DATABASE d; CREATE DATABASE d;");
    assert!(matches!(
        kind,
        StatementError::AlreadyExists {
            kind: "database",
            ..
        }
    ));
    let catalog = self::catalog(
        "CREATE DATABASE d; CREATE TABLE t (x int); CREATE DATABASE IF NOT EXISTS d;",
    );
    assert_eq!(catalog.tables().count(), 1);
    let catalog =
        self::catalog("CREATE DATABASE d; CREATE TABLE t (x int); CREATE OR REPLACE DATABASE d;");
    assert_eq!(catalog.tables().count(), 0);
}

#[test]
fn create_pipe_with_a_transform_records_paths_and_target_order() {
    let catalog = catalog(&format!(
        r#"{PRELUDE} CREATE TABLE t (c1 varchar, c2 timestamp, c3 number(7,2));
        CREATE OR REPLACE PIPE tp AS COPY INTO t FROM (
            SELECT $1:C1, $1:c2::TIMESTAMP_NTZ, $1:"x y".z::NUMBER(7, 2) AS amount
            FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')));
        CREATE PIPE IF NOT EXISTS tp2 AS COPY INTO t (c3, c1) FROM (
            SELECT $1['price'], UPPER($1:name) FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')) src);"#
    ));
    let definition = catalog.pipe_definition("D", "S", "TP").unwrap();
    assert_eq!(definition.match_by_column_name, MatchByColumnName::None);
    let transform = definition.transform.as_ref().unwrap();
    assert_eq!(transform.target_columns, None);
    let items: Vec<_> = transform
        .items
        .iter()
        .map(|i| (i.path.clone(), i.cast.clone()))
        .collect();
    assert_eq!(
        items,
        [
            (Some(vec!["C1".to_string()]), None),
            (
                Some(vec!["c2".to_string()]),
                Some("TIMESTAMP_NTZ".to_string())
            ),
            (
                Some(vec!["x y".to_string(), "z".to_string()]),
                Some("NUMBER(7,2)".to_string())
            ),
        ]
    );
    let transform = catalog
        .pipe_definition("D", "S", "TP2")
        .unwrap()
        .transform
        .clone()
        .unwrap();
    assert_eq!(
        transform.target_columns,
        Some(vec!["C3".to_string(), "C1".to_string()])
    );
    assert_eq!(transform.items[0].path, Some(vec!["price".to_string()]));
    assert_eq!(transform.items[1].path, None);
    assert_eq!(transform.items[1].text, "UPPER($1:name)");
    assert_eq!(
        catalog.resolve_pipe("d", "s", "tp2").unwrap().table.name,
        "T"
    );
}

#[test]
fn create_pipe_errors_name_the_problem() {
    let (statement, kind, message) = statement_error(&format!(
        "{PRELUDE} CREATE TABLE t (a int);\nCREATE PIPE p AS COPY INTO t FROM TABLE(DATA_SOURCE(TYPE => 'KAFKA'));"
    ));
    assert_eq!(statement, 4);
    assert!(matches!(kind, StatementError::Syntax(_)));
    assert!(
        message.contains("DATA_SOURCE(TYPE => 'STREAMING')"),
        "{message}"
    );
    assert!(message.contains("line 2"), "{message}");

    let (_, kind, _) = statement_error(&format!(
        "{PRELUDE} CREATE PIPE p AS COPY INTO missing FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'));"
    ));
    assert_eq!(
        kind,
        StatementError::DoesNotExist {
            kind: "table",
            name: "D.S.MISSING".into()
        }
    );
    let (_, kind, _) = statement_error(&format!(
        "{PRELUDE} CREATE TABLE t (a int, b int); CREATE PIPE p AS COPY INTO t FROM (SELECT $1:A FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')));"
    ));
    assert!(
        matches!(&kind, StatementError::Compilation(m)
            if m == "Insert value list does not match column list expecting 2 but got 1"),
        "{kind:?}"
    );
}

#[test]
fn syntax_errors_name_the_statement_and_a_snippet() {
    let (statement, kind, message) =
        statement_error("CREATE DATABASE d;\n\nCREAT TABLE oops (a int);");
    assert_eq!(statement, 2);
    assert!(matches!(kind, StatementError::Syntax(_)));
    assert!(
        message.starts_with("DDL statement 2 (line 3) `CREAT TABLE oops (a int)`: syntax error"),
        "{message}"
    );
    let (_, kind, _) = statement_error(&format!("{PRELUDE} CREATE TABLE t (a int,);"));
    assert!(matches!(kind, StatementError::Syntax(_)));
    let mut catalog = Catalog::new();
    assert!(matches!(
        catalog.apply_sql("SELECT 'unterminated"),
        Err(CatalogError::Tokenize { line: 1, .. })
    ));
}

#[test]
fn a_failing_script_leaves_the_catalog_unchanged() {
    let mut catalog = Catalog::new();
    catalog
        .apply_sql("CREATE DATABASE d; CREATE TABLE t (x int);")
        .unwrap();
    assert!(catalog
        .apply_sql("USE d.public; CREATE TABLE u (x int); CREATE TABLE t (x int);")
        .is_err());
    assert!(catalog.table("D", "PUBLIC", "U").is_none());
    assert_eq!(catalog.tables().count(), 1);
}

#[test]
fn unsupported_column_types_are_errors_naming_the_column() {
    let (_, kind, message) =
        statement_error(&format!("{PRELUDE} CREATE TABLE t (a int, geo geography);"));
    assert!(matches!(&kind, StatementError::ColumnType { column, .. } if column == "GEO"));
    assert!(message.to_lowercase().contains("geography"), "{message}");
    let (_, kind, _) = statement_error(&format!("{PRELUDE} CREATE TABLE t (n number(40,0));"));
    assert!(matches!(kind, StatementError::ColumnType { .. }));
    for ty in ["timestamp_ntz(10)", "time(12)", "timestamp_ltz(x)"] {
        let (_, kind, _) = statement_error(&format!("{PRELUDE} CREATE TABLE t (n {ty});"));
        assert!(
            matches!(&kind, StatementError::ColumnType { message, .. } if message.contains("fractional-seconds precision")),
            "{ty}: {kind:?}"
        );
    }
}

/// Structured ARRAY/OBJECT/MAP types are refused with a message naming the type and the
/// fix: the emulator would store their values unchecked, as a plain ARRAY/OBJECT.
#[test]
fn structured_types_are_refused_naming_the_type_and_the_fix() {
    for ty in [
        "ARRAY(INT)",
        "ARRAY(VARCHAR NOT NULL)",
        "ARRAY<INT>",
        "OBJECT(city VARCHAR, zip NUMBER)",
        "MAP(VARCHAR, INT)",
    ] {
        let (_, kind, message) =
            statement_error(&format!("{PRELUDE} CREATE TABLE t (a int, s {ty});"));
        // OBJECT and MAP parse and are refused as the column's type; the SQL parser cannot
        // read ARRAY(…), so its syntax error says why.
        assert!(
            matches!(&kind, StatementError::ColumnType { column, .. } if column == "S")
                || matches!(&kind, StatementError::Syntax(_)) && ty.starts_with("ARRAY"),
            "{ty}: {kind:?}"
        );
        assert!(
            message.contains("structured type")
                && message.contains(ty.split('(').next().unwrap())
                && message.contains("semi-structured ARRAY, OBJECT or VARIANT"),
            "{ty}: {message}"
        );
    }
    // The semi-structured types stay.
    let catalog = catalog(&format!(
        "{PRELUDE} CREATE TABLE t (a ARRAY, o OBJECT, v VARIANT);"
    ));
    assert_eq!(table_column_type(&catalog, "A"), ColumnType::Array);
    assert_eq!(table_column_type(&catalog, "O"), ColumnType::Object);
}

fn table_column_type(catalog: &Catalog, column: &str) -> ColumnType {
    catalog
        .table("D", "S", "T")
        .unwrap()
        .column(column)
        .unwrap()
        .ty
        .clone()
}

#[test]
fn column_types_map_like_snowflake() {
    let catalog = catalog(&format!(
        "{PRELUDE} CREATE TABLE t (
            a number, b number(10), c numeric(12,3), d decimal(5,5), e int, f bigint, g smallint,
            h tinyint, i byteint, j integer, k float, l float4, m float8, n double,
            o double precision, p real, q varchar, r varchar(10), s string, t text, u char(5),
            v char, w nvarchar(7), x boolean, y date, z time, aa datetime, ab timestamp,
            ac timestamp_ntz, ad timestamp_ltz, ae timestamp_tz(3), af variant, ag object,
            ah array, ai binary, aj binary(16), ak varbinary, al character(2) not null,
            am int primary key, an time(0), ao timestamp(3), ap datetime(6), aq timestamp_ntz(6),
            ar timestamp_ltz(1), as_ timestamp_tz(9)
        );"
    ));
    let types: Vec<_> = catalog
        .table("D", "S", "T")
        .unwrap()
        .columns
        .iter()
        .map(|c| c.ty.sql_name())
        .collect();
    assert_eq!(
        types,
        [
            "NUMBER(38,0)",
            "NUMBER(10,0)",
            "NUMBER(12,3)",
            "NUMBER(5,5)",
            "NUMBER(38,0)",
            "NUMBER(38,0)",
            "NUMBER(38,0)",
            "NUMBER(38,0)",
            "NUMBER(38,0)",
            "NUMBER(38,0)",
            "FLOAT",
            "FLOAT",
            "FLOAT",
            "FLOAT",
            "FLOAT",
            "FLOAT",
            "VARCHAR",
            "VARCHAR(10)",
            "VARCHAR",
            "VARCHAR",
            "VARCHAR(5)",
            "VARCHAR(1)",
            "VARCHAR(7)",
            "BOOLEAN",
            "DATE",
            "TIME",
            "TIMESTAMP_NTZ",
            "TIMESTAMP_NTZ",
            "TIMESTAMP_NTZ",
            "TIMESTAMP_LTZ",
            "TIMESTAMP_TZ(3)",
            "VARIANT",
            "OBJECT",
            "ARRAY",
            "BINARY",
            "BINARY(16)",
            "BINARY",
            "VARCHAR(2)",
            "NUMBER(38,0)",
            "TIME(0)",
            "TIMESTAMP_NTZ(3)",
            "TIMESTAMP_NTZ(6)",
            "TIMESTAMP_NTZ(6)",
            "TIMESTAMP_LTZ(1)",
            "TIMESTAMP_TZ",
        ]
    );
    assert_eq!(
        table_column_type(&catalog, "AE"),
        ColumnType::TimestampTz { scale: 3 }
    );
    let table = catalog.table("D", "S", "T").unwrap();
    assert!(table.columns[0].nullable);
    assert!(!table.column("AL").unwrap().nullable);
    assert!(!table.column("AM").unwrap().nullable);
}

#[test]
fn unmodelled_statements_are_ignored_with_notes() {
    let mut catalog = Catalog::new();
    let notes = catalog
        .apply_sql(
            "CREATE DATABASE d;
             CREATE OR REPLACE ROLE r;
             GRANT OPERATE ON PIPE p TO ROLE r;
             ALTER USER u SET RSA_PUBLIC_KEY = 'abc';
             SET x = 1;
             USE WAREHOUSE w;
             CREATE TABLE t (a int);
             ALTER TABLE t ADD COLUMN b int;
             ALTER TABLE t RENAME COLUMN a TO c;
             DESC PIPE p;
             -- only a comment;
             ;",
        )
        .unwrap();
    assert_eq!(
        notes,
        [
            "ignored: CREATE OR REPLACE ROLE r",
            "ignored: GRANT OPERATE ON PIPE p TO ROLE r",
            "ignored: SET x = 1",
            "ignored: USE WAREHOUSE w",
            "ignored: ALTER TABLE t RENAME COLUMN a TO c",
            "ignored: DESC PIPE p",
        ]
    );
    // `ALTER TABLE … ADD COLUMN` is modelled (schema evolution stores it).
    let t = catalog.table("D", "PUBLIC", "T").unwrap();
    assert_eq!(
        t.columns
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>(),
        ["A", "B"]
    );
    // The key registration is modelled: recorded for the user (the service registers it).
    let keys = catalog.user_keys();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].user, "U");
    assert!(keys[0].pem.contains("\nabc\n"), "{}", keys[0].pem);
}

#[test]
fn references_to_missing_objects_are_errors() {
    let (_, kind, _) = statement_error("CREATE TABLE t (a int);");
    assert_eq!(kind, StatementError::NoCurrent("database"));
    let (_, kind, _) = statement_error("USE DATABASE nope;");
    assert!(matches!(
        kind,
        StatementError::DoesNotExist {
            kind: "database",
            ..
        }
    ));
    let (_, kind, _) = statement_error("CREATE DATABASE d; CREATE TABLE x.t (a int);");
    assert!(matches!(
        kind,
        StatementError::DoesNotExist { kind: "schema", .. }
    ));
    let (_, kind, _) = statement_error(&format!("{PRELUDE} CREATE TABLE t AS SELECT 1 AS a;"));
    assert!(matches!(kind, StatementError::Unsupported(_)));
}

#[test]
fn like_clone_and_drop() {
    let catalog = catalog(&format!(
        "{PRELUDE} CREATE TABLE t (a int, b varchar(3)); CREATE TABLE u LIKE t; CREATE TABLE v CLONE t;
         CREATE TABLE w (a int); DROP TABLE w; DROP TABLE IF EXISTS nope;
         CREATE PIPE p AS COPY INTO t FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING')); DROP PIPE p;"
    ));
    let t = catalog.table("D", "S", "T").unwrap();
    assert_eq!(catalog.table("D", "S", "U").unwrap().columns, t.columns);
    assert_eq!(catalog.table("D", "S", "V").unwrap().columns, t.columns);
    assert!(catalog.table("D", "S", "W").is_none());
    assert_eq!(
        catalog.resolve_pipe("D", "S", "P").unwrap_err(),
        LookupError::Pipe("P".into())
    );
}

#[test]
fn missing_file_is_an_io_error() {
    let mut catalog = Catalog::new();
    let error = catalog
        .apply_sql_file(Path::new("/nonexistent/setup.sql"))
        .unwrap_err();
    assert!(matches!(error, CatalogError::Io { .. }));
    assert!(error.to_string().contains("/nonexistent/setup.sql"));
}

#[test]
fn short_pipe_form_copies_into_the_table_by_column_name() {
    // The official Python SDK's e-commerce example declares its pipes this way.
    let catalog = catalog(&format!(
        "{PRELUDE} CREATE TABLE orders (order_id int); CREATE TABLE items (id int);
         CREATE OR REPLACE PIPE ORDERS_PIPE AS COPY INTO ORDERS;
         CREATE PIPE items_pipe COMMENT = 'short' AS COPY INTO D.S.items MATCH_BY_COLUMN_NAME = CASE_SENSITIVE"
    ));
    let orders = catalog.pipe_definition("D", "S", "ORDERS_PIPE").unwrap();
    assert_eq!(orders.table, "ORDERS");
    assert_eq!(
        orders.match_by_column_name,
        MatchByColumnName::CaseInsensitive
    );
    assert!(orders.transform.is_none());
    let items = catalog.pipe_definition("D", "S", "ITEMS_PIPE").unwrap();
    assert_eq!(items.table, "ITEMS");
    assert_eq!(items.match_by_column_name, MatchByColumnName::CaseSensitive);

    for (bad, says) in [
        ("CREATE PIPE p AS COPY INTO orders junk", "found junk"),
        (
            "CREATE PIPE p AS COPY INTO orders (order_id)",
            "needs a transform",
        ),
    ] {
        let (_, _, message) = statement_error(&format!(
            "{PRELUDE} CREATE TABLE orders (order_id int); {bad};"
        ));
        assert!(message.contains(says), "{bad}: {message}");
    }
}
