//! `DROP TABLE|PIPE [IF EXISTS]` and `CREATE OR REPLACE` of an existing object through the
//! SQL API, as `table_replay follow`'s "take a new snapshot" fix runs them: a dropped pipe
//! takes its channels and their committed tokens with it, a dropped table its rows and the
//! channels of the pipes loading into it; made again, they start empty (a channel opened
//! again has a null token), and a channel open across the drop gets the service's 404 on its
//! next append, never a silent loss.

use crate::common::*;
use serde_json::{json, Value};
use snowpipe_emulator::{Emulator, EmulatorConfig};

/// Runs `statement` in `DB.SCH` and returns its one-row `status`.
async fn run(emu: &Emulator, statement: &str) -> String {
    let r = sql_statement(emu, statement, None, "").await;
    assert_eq!(r.status, 200, "{statement}: {}", r.text);
    r.body["data"][0][0].as_str().unwrap_or_default().to_owned()
}

/// The rows of `select` through the SQL API.
async fn rows_of(emu: &Emulator, select: &str) -> Value {
    let r = sql_statement(emu, select, None, "").await;
    assert_eq!(r.status, 200, "{select}: {}", r.text);
    r.body["data"].clone()
}

const PIPE_AGAIN: &str =
    "CREATE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))";

#[tokio::test]
async fn a_dropped_pipe_and_table_come_back_empty_and_their_channel_with_a_null_token() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, c) = connected(config().with_data_dir(dir.path())).await;
    c.commit_rows("c", "3", &rows(0..4)).await;
    let default_ct = c.open_on("T-STREAMING", "d").await;
    c.append_on("T-STREAMING", "d", &default_ct, "7", &rows(10..12))
        .await;
    for (statement, expected) in [
        ("DROP PIPE P", "P successfully dropped."),
        ("drop table db.sch.t;", "T successfully dropped."),
        (
            "CREATE TABLE T (ID NUMBER, NAME VARCHAR)",
            "Table T successfully created.",
        ),
        (PIPE_AGAIN, "Pipe P successfully created."),
    ] {
        assert_eq!(run(&emu, statement).await, expected, "{statement}");
    }
    assert_eq!(
        rows_of(&emu, "SELECT COUNT(*) FROM T").await,
        json!([["0"]])
    );
    // Both pipes' channels went with them: opened again, they have no token.
    for (pipe, channel) in [("P", "c"), ("T-STREAMING", "d")] {
        let r = c
            .send(
                reqwest::Method::PUT,
                &format!("{}/channels/{channel}", pipe_path(pipe)),
                Some(json!({})),
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text);
        assert_eq!(
            r.body["channel_status"]["last_committed_offset_token"],
            Value::Null,
            "{pipe}/{channel} kept the dropped pipe's token: {}",
            r.text
        );
    }
    let ct = c.open_ok("c").await;
    c.append_on("P", "c", &ct, "1", &rows(100..102)).await;
    let read = "SELECT ID FROM T ORDER BY ID";
    assert_eq!(rows_of(&emu, read).await, json!([["100"], ["101"]]));
    emu.shutdown().await;
    // The drops replay at start: the old rows and tokens stay gone.
    let cfg = EmulatorConfig::for_tests()
        .with_public_key(keys(0).1)
        .with_data_dir(dir.path());
    let emu = Emulator::start(cfg).await.unwrap();
    assert_eq!(rows_of(&emu, read).await, json!([["100"], ["101"]]));
    let c = Client::connect(&emu).await;
    assert_eq!(
        c.status(&["c"]).await["c"]["last_committed_offset_token"],
        "1"
    );
    let r = c
        .send(
            reqwest::Method::PUT,
            &format!("{}/channels/d", pipe_path("T-STREAMING")),
            Some(json!({})),
        )
        .await;
    assert_eq!(
        r.body["channel_status"]["last_committed_offset_token"],
        Value::Null,
        "{}",
        r.text
    );
    emu.shutdown().await;
}

#[tokio::test]
async fn a_channel_appending_across_the_drop_gets_the_services_404() {
    let (emu, c) = connected(config()).await;
    let ct = c.open_append_ok("c", "1", &rows(0..2)).await;
    c.wait_committed("c", "1").await;
    assert_eq!(run(&emu, "DROP PIPE P").await, "P successfully dropped.");
    let r = c.append("c", &ct, "", "2", &rows(2..4)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(
        r.text.contains("ERR_PIPE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
        "{}",
        r.text
    );
    // The pipe made again: the old channel is gone, its continuation token names nothing.
    assert_eq!(run(&emu, PIPE_AGAIN).await, "Pipe P successfully created.");
    let r = c.append("c", &ct, "", "2", &rows(2..4)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(
        r.text
            .contains("ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED"),
        "{}",
        r.text
    );
    // The table dropped under the declared pipe: its appends name the missing table.
    let ct = c.open_ok("c").await;
    assert_eq!(run(&emu, "DROP TABLE T").await, "T successfully dropped.");
    let r = c.append("c", &ct, "", "3", &rows(4..6)).await;
    assert_eq!(r.status, 404, "{}", r.text);
    assert!(
        r.text.contains("ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED"),
        "{}",
        r.text
    );
    let r = sql_statement(&emu, "SELECT COUNT(*) FROM T", None, "").await;
    assert_eq!(r.status, 422, "T is gone: {}", r.text);
    emu.shutdown().await;
}

#[tokio::test]
async fn if_exists_names_and_create_or_replace() {
    let (emu, c) = connected(config()).await;
    c.commit_rows("c", "3", &rows(0..4)).await;
    for (statement, expected) in [
        (
            "DROP TABLE IF EXISTS NOPE",
            "Drop statement executed successfully (NOPE already dropped).",
        ),
        (
            "DROP PIPE IF EXISTS DB.SCH.NOPE",
            "Drop statement executed successfully (NOPE already dropped).",
        ),
        (
            "CREATE TABLE \"lower t\" (ID NUMBER)",
            "Table lower t successfully created.",
        ),
        // Unquoted, the name is upper-cased: a different table.
        (
            "DROP TABLE IF EXISTS lower_t",
            "Drop statement executed successfully (LOWER_T already dropped).",
        ),
        (
            "DROP TABLE SCH.\"lower t\"",
            "lower t successfully dropped.",
        ),
        // Snowflake's drop and create: the old rows and the channels of the pipe on it go.
        (
            "CREATE OR REPLACE TABLE T (ID NUMBER, NAME VARCHAR)",
            "Table T successfully created.",
        ),
    ] {
        assert_eq!(run(&emu, statement).await, expected, "{statement}");
    }
    assert_eq!(
        rows_of(&emu, "SELECT COUNT(*) FROM T").await,
        json!([["0"]])
    );
    let r = c.open("c", json!({})).await;
    assert_eq!(
        r.body["channel_status"]["last_committed_offset_token"],
        Value::Null,
        "{}",
        r.text
    );
    c.commit_rows("c", "9", &rows(0..1)).await;
    assert_eq!(
        run(
            &emu,
            "CREATE OR REPLACE PIPE P AS COPY INTO T FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))"
        )
        .await,
        "Pipe P successfully created."
    );
    let r = c.open("c", json!({})).await;
    assert_eq!(
        r.body["channel_status"]["last_committed_offset_token"],
        Value::Null,
        "{}",
        r.text
    );
    assert_eq!(
        rows_of(&emu, "SELECT COUNT(*) FROM T").await,
        json!([["1"]]),
        "a pipe replaced keeps its table's rows"
    );
    for (statement, code, needle) in [
        ("DROP TABLE NOPE", "002003", "DB.SCH.NOPE does not exist"),
        ("DROP PIPE \"p\"", "002003", "DB.SCH.p does not exist"),
        ("DROP VIEW V", "002003", "DROP TABLE|PIPE [IF EXISTS]"),
        ("DROP TABLE T; DROP PIPE P", "000008", "count 2"),
        ("DROP TABLE", "001003", "names no object"),
    ] {
        let r = sql_statement(&emu, statement, None, "").await;
        r.assert_error(code, needle);
    }
    emu.shutdown().await;
}
