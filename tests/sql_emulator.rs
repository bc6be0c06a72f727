//! The SDK's SQL API client (`sql` feature) against the emulator's `/api/v2/statements`:
//! rows streamed through a channel come back through SQL; failures are typed.

use std::time::Duration;

use serde::Serialize;
use snowpipe_streaming::sql::SqlErrorKind;
use snowpipe_streaming::{Error, OffsetToken};

mod common;

use common::emulator::{self as emu, DB, PIPE, SCHEMA};

#[derive(Serialize)]
struct Row {
    #[serde(rename = "ID")]
    id: u64,
    #[serde(rename = "NAME")]
    name: Option<String>,
}

#[tokio::test]
async fn streamed_rows_come_back_through_the_sql_api() {
    let emulator = emu::start().await;
    let client = emu::client(&emulator).await;
    let channel = client.open_channel(DB, SCHEMA, PIPE, "sql").await.unwrap();
    let rows = (1..=5u64).map(|id| {
        let name = (id != 3).then(|| format!("name {id} ✓"));
        (Row { id, name }, OffsetToken::from(id * 10))
    });
    channel.append_rows_with_tokens(rows).await.unwrap();
    channel
        .wait_for_commit(&OffsetToken::from(50), Duration::from_secs(10))
        .await
        .unwrap();
    channel.close().await.unwrap();
    client.close().await.unwrap();

    let sql = emu::builder(&emulator)
        .build_sql()
        .unwrap()
        .database(DB)
        .schema(SCHEMA);
    let result = sql
        .query("SELECT ID, NAME FROM T WHERE ID > 1 ORDER BY ID DESC LIMIT 3")
        .await
        .unwrap();
    assert_eq!(result.columns[0].type_name, "fixed");
    assert_eq!(result.columns[1].type_name, "text");
    assert_eq!(
        result.rows,
        vec![
            vec![Some("5".into()), Some("name 5 ✓".into())],
            vec![Some("4".into()), Some("name 4 ✓".into())],
            vec![Some("3".into()), None],
        ]
    );
    let count = sql
        .query(&format!("SELECT COUNT(*), MAX(ID) FROM {DB}.{SCHEMA}.T"))
        .await
        .unwrap();
    assert_eq!(count.rows, vec![vec![Some("5".into()), Some("5".into())]]);
}

#[tokio::test]
async fn missing_tables_and_writes_are_typed_errors_and_a_wrong_key_is_refused() {
    let emulator = emu::start().await;
    let sql = emu::builder(&emulator)
        .build_sql()
        .unwrap()
        .database(DB)
        .schema(SCHEMA);
    let err = sql.query("SELECT * FROM NOPE").await.unwrap_err();
    let Error::Sql(e) = &err else {
        panic!("expected Error::Sql, got {err:?}")
    };
    assert_eq!(e.kind, SqlErrorKind::Failed);
    assert_eq!(
        (e.code.as_deref(), e.sql_state.as_deref()),
        (Some("002003"), Some("42S02"))
    );
    for statement in [
        "DELETE FROM T",
        "SELECT 1; DROP TABLE T",
        "INSERT INTO T VALUES (1, 'x')",
    ] {
        let err = sql.query(statement).await.unwrap_err();
        assert!(matches!(&err, Error::Sql(_)), "{statement}: {err:?}");
    }
    assert_eq!(emu::ids(&emulator), Vec::<i64>::new());

    let (other, _) = emu::other_key();
    let err = emu::builder(&emulator)
        .private_key_pem(other.clone())
        .build_sql()
        .unwrap()
        .query("SELECT 1")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Auth { .. }), "{err:?}");
    assert!(!err.to_string().contains("PRIVATE KEY"));
}
