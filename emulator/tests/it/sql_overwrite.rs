//! `INSERT OVERWRITE INTO t SELECT * FROM t QUALIFY <condition>` through the SQL API
//! (`emulator/src/sql_api/overwrite.rs`): the rows the condition keeps stay, the others go, the
//! answer is Snowflake's `number of rows inserted`; a role that may not read the table changes
//! nothing; other `INSERT`s stay refused.

use crate::common::*;
use serde_json::json;

#[tokio::test]
async fn the_rows_the_condition_keeps_stay_and_a_role_without_a_grant_changes_nothing() {
    let cfg = config()
        .with_ddl("CREATE DATABASE OTHER; CREATE SCHEMA OTHER.S;")
        .with_ddl("GRANT ROLE ANALYST TO USER BOB;")
        .with_role_grant("PUBLIC", "DB")
        .with_role_grant("ANALYST", "OTHER");
    let (emu, c) = connected(cfg).await;
    // Offset 1 twice (t 2, then t 1), offset 2 twice alike, a row without an offset.
    let ndjson = "{\"ID\":1,\"DOC\":{\"o\":1,\"t\":2}}\n{\"ID\":1,\"DOC\":{\"o\":1,\"t\":1}}\n\
                  {\"ID\":2,\"DOC\":{\"o\":2}}\n{\"ID\":2,\"DOC\":{\"o\":2}}\n{\"ID\":3}\n";
    c.commit_rows("c", "5", ndjson).await;
    let statement = "INSERT OVERWRITE INTO T SELECT * FROM T QUALIFY CAST(DOC:o AS NUMBER) IS \
                     NULL OR ROW_NUMBER() OVER (PARTITION BY CAST(DOC:o AS NUMBER) ORDER BY \
                     CAST(DOC:t AS NUMBER) ASC NULLS LAST) = 1";

    let r = sql_statement(&emu, statement, Some("ANALYST"), "").await;
    r.assert_error("002003", "does not exist or not authorized");
    let count = sql_statement(&emu, "SELECT COUNT(*) FROM T", None, "").await;
    assert_eq!(
        count.body["data"],
        json!([["5"]]),
        "unchanged: {}",
        count.text
    );

    let r = sql_statement(&emu, statement, None, "").await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["data"], json!([["3"]]), "{}", r.text);
    assert_eq!(
        r.body["resultSetMetaData"]["rowType"][0]["name"],
        "number of rows inserted"
    );
    let left = sql_statement(
        &emu,
        "SELECT ID, DOC:t::STRING FROM T ORDER BY ID",
        None,
        "",
    )
    .await;
    assert_eq!(
        left.body["data"],
        json!([["1", "1"], ["2", null], ["3", null]]),
        "{}",
        left.text
    );

    for refused in [
        "INSERT INTO T SELECT * FROM T",
        "INSERT OVERWRITE INTO T SELECT * FROM T QUALIFY ID IN (SELECT 1)",
    ] {
        let r = sql_statement(&emu, refused, None, "").await;
        r.assert_error("002003", "INSERT OVERWRITE INTO <t>");
    }
    emu.shutdown().await;
}
