//! `SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('<table>', '<classic channel>', '<channel>',
//! '<pipe>')`, as connector v4 runs it when its channel has no committed offset token: the
//! classic channels are seeded (`--classic-channel`); a found one's offset becomes the
//! channel's committed token, which an open then reports and which survives a restart.

use crate::common::*;
use serde_json::{json, Value};
use snowpipe_emulator::{ClassicChannel, Emulator, EmulatorConfig};

fn migrate(table: &str, classic: &str, channel: &str, pipe: &str) -> String {
    format!(
        "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('{table}', '{classic}', '{channel}', '{pipe}')"
    )
}

/// The function's JSON answer (one row, one text column).
fn answer(r: &Resp) -> Value {
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["resultSetMetaData"]["numRows"], 1, "{}", r.text);
    let row_type = &r.body["resultSetMetaData"]["rowType"];
    assert_eq!(row_type[0]["type"], "text", "{}", r.text);
    serde_json::from_str(r.body["data"][0][0].as_str().unwrap()).unwrap()
}

fn seeded() -> EmulatorConfig {
    config()
        .with_classic_channel("T/topic_0=41".parse::<ClassicChannel>().unwrap())
        .with_classic_channel("db.sch.t/TOPIC_1=".parse::<ClassicChannel>().unwrap())
}

/// The channel's committed offset token, as an open reports it.
async fn committed_on_open(c: &Client, channel: &str) -> Value {
    let r = c.open(channel, json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    r.body["channel_status"]["last_committed_offset_token"].clone()
}

#[tokio::test]
async fn a_found_classic_offset_becomes_the_channels_committed_token_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let (emu, c) = connected(seeded().with_data_dir(dir.path())).await;
    // (table, classic channel, new channel, pipe, answer, committed token on open)
    let cases = [
        // The connector's spelling: quoted table, upper-cased classic channel.
        (
            "\"T\"",
            "TOPIC_0",
            "k_topic_0",
            "P",
            json!({"ssv1_channel_found": true, "migrated_offset": 41}),
            json!("41"),
        ),
        // Names compare ignoring case; the default pipe works too.
        (
            "t",
            "Topic_0",
            "k2_topic_0",
            "T-STREAMING",
            json!({"ssv1_channel_found": true, "migrated_offset": 41}),
            json!("41"),
        ),
        // Found but nothing committed: the channel keeps no token.
        (
            "T",
            "TOPIC_1",
            "k_topic_1",
            "P",
            json!({"ssv1_channel_found": true, "migrated_offset": null}),
            Value::Null,
        ),
        // Unknown classic channel.
        (
            "T",
            "TOPIC_2",
            "k_topic_2",
            "P",
            json!({"ssv1_channel_found": false, "migrated_offset": null}),
            Value::Null,
        ),
    ];
    for (table, classic, channel, pipe, expected, token) in &cases {
        let r = sql_statement(&emu, &migrate(table, classic, channel, pipe), None, "").await;
        assert_eq!(&answer(&r), expected, "{classic} -> {channel}");
        if *pipe == "P" {
            assert_eq!(&committed_on_open(&c, channel).await, token, "{channel}");
        }
    }
    // An opened channel that then gets the offset (the connector opens first) resumes there.
    c.open_ok("opened_first").await;
    let r = sql_statement(
        &emu,
        &migrate("T", "TOPIC_0", "opened_first", "P"),
        None,
        "",
    )
    .await;
    assert_eq!(answer(&r)["migrated_offset"], 41);
    assert_eq!(committed_on_open(&c, "opened_first").await, json!("41"));
    emu.shutdown().await;

    let emu = Emulator::start(seeded().with_data_dir(dir.path()))
        .await
        .unwrap();
    let c = Client::connect(&emu).await;
    assert_eq!(committed_on_open(&c, "k_topic_0").await, json!("41"));
    assert_eq!(committed_on_open(&c, "opened_first").await, json!("41"));
}

#[tokio::test]
async fn a_channel_with_a_token_unknown_names_and_bad_calls_are_refused() {
    let (emu, c) = connected(seeded()).await;
    c.commit_rows("has_token", "7", "{\"ID\":1}\n").await;
    for (statement, code, needle) in [
        (
            migrate("T", "TOPIC_0", "has_token", "P"),
            "002003",
            "already has committed offset token 7",
        ),
        (
            migrate("NOPE", "TOPIC_0", "c", "P"),
            "002003",
            "Table 'DB.SCH.NOPE' does not exist",
        ),
        (
            migrate("\"t\"", "TOPIC_0", "c", "P"),
            "002003",
            "Table 'DB.SCH.t' does not exist",
        ),
        (
            migrate("T", "TOPIC_0", "c", "NOPE"),
            "002003",
            "Pipe 'DB.SCH.NOPE' does not exist",
        ),
        (
            "SELECT SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET('T', 'TOPIC_0', 'c')".to_owned(),
            "001044",
            "four string literals",
        ),
    ] {
        let r = sql_statement(&emu, &statement, None, "").await;
        assert_eq!(r.status, 422, "{statement}: {}", r.text);
        assert_eq!(r.body["code"], code, "{statement}: {}", r.text);
        assert!(
            r.body["message"].as_str().unwrap().contains(needle),
            "{statement}: {}",
            r.text
        );
    }
    // The refused call left the channel's token alone.
    assert_eq!(
        c.status(&["has_token"]).await["has_token"]["last_committed_offset_token"],
        "7"
    );
}

/// `--limits snowflake` caps a pipe at 2,000 named channels; a migration creates a channel as
/// an open does, so it is refused past the cap too (it was not), while a channel that exists
/// can still be given its offset.
#[tokio::test]
async fn a_migration_counts_against_the_channels_per_pipe_limit() {
    let mut cfg = seeded();
    cfg.limits = snowpipe_emulator::Limits::Snowflake;
    let (emu, c) = connected(cfg).await;
    for i in 0..2000 {
        assert_eq!(c.open(&format!("c{i}"), json!({})).await.status, 200);
    }
    let r = sql_statement(
        &emu,
        &migrate("T", "TOPIC_0", "one-too-many", "P"),
        None,
        "",
    )
    .await;
    assert_eq!(r.status, 400, "{}", r.text);
    assert!(r.text.contains("already has 2000 channels"), "{}", r.text);
    let r = sql_statement(&emu, &migrate("T", "TOPIC_0", "c7", "P"), None, "").await;
    assert_eq!(answer(&r)["migrated_offset"], 41);
    emu.shutdown().await;
}
