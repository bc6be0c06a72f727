//! A `Binary` lands as the same bytes whatever the account's `BINARY_INPUT_FORMAT`: the SDK
//! learns each pipe's format from the pipe-info call and writes the bytes in it. On an account
//! reading base64, the hex text `"CAFE"` would be the bytes `08 01 44`, with no row error
//! (issue 39; docs/protocol-types-and-sql.md "Type conversion (emulator)").

use snowpipe_streaming::{Positions, Rows};
use std::time::Duration;

use serde::Serialize;
use snowpipe_emulator::BinaryFormat as ServerFormat;
use snowpipe_emulator::Emulator;
use snowpipe_streaming::binary::{self, Binary, BinaryFormat};
use snowpipe_streaming::{Channel, ClientBuilder, Error, OffsetToken, StreamingIngestClient};

use crate::common::emulator::{builder, config_with_ddl};

const DDL: &str = "
CREATE DATABASE IF NOT EXISTS DB;
CREATE SCHEMA IF NOT EXISTS SCH;
CREATE OR REPLACE TABLE B (ID NUMBER NOT NULL, B BINARY, V BINARY);
";

#[derive(Serialize)]
struct Row {
    #[serde(rename = "ID")]
    id: u64,
    #[serde(rename = "B")]
    b: Binary,
    #[serde(rename = "V", with = "binary::pipe")]
    v: Vec<u8>,
}

async fn emulator(format: ServerFormat) -> Emulator {
    let mut config = config_with_ddl(DDL);
    config.binary_format = format;
    Emulator::start(config).await.expect("emulator starts")
}

/// An emulator reading binary as `format`, a client of it built by `configure` from the
/// common builder, and channel `c` opened on table `B`.
async fn open_c(
    format: ServerFormat,
    configure: impl FnOnce(ClientBuilder) -> ClientBuilder,
) -> (Emulator, StreamingIngestClient, Channel) {
    let emu = emulator(format).await;
    let client = configure(builder(&emu)).build().await.unwrap();
    let ch = client
        .table_pipe("DB", "SCH", "B")
        .open_channel("c")
        .await
        .unwrap();
    (emu, client, ch)
}

/// Row 1 with `B` = `CA FE` and an empty `V`.
fn cafe() -> Row {
    Row {
        id: 1,
        b: Binary(vec![0xca, 0xfe]),
        v: vec![],
    }
}

fn hex_of(emu: &Emulator, column: &str) -> Vec<String> {
    emu.query(&format!(
        "SELECT HEX({column}) FROM \"DB.SCH.B\" ORDER BY ID"
    ))
    .unwrap()
    .into_iter()
    .map(|r| r[0].as_str().unwrap_or("NULL").to_owned())
    .collect()
}

/// Every format the service names: the same bytes land, through a named channel and
/// through an elastic one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_lands_as_the_same_bytes_in_every_input_format() {
    for (server, expected) in [
        (ServerFormat::Base64, BinaryFormat::Base64),
        (ServerFormat::Hex, BinaryFormat::Hex),
        (ServerFormat::Utf8, BinaryFormat::Utf8),
    ] {
        let emu = emulator(server).await;
        let client = builder(&emu).build().await.unwrap();
        let pipe = client.table_pipe("DB", "SCH", "B");
        let ch = pipe.open_channel("c").await.unwrap();
        assert_eq!(ch.binary_format(), Some(expected), "{server:?}");
        // UTF-8 pipes take only UTF-8 bytes.
        let (b, v) = if expected == BinaryFormat::Utf8 {
            (b"hi".to_vec(), "é".as_bytes().to_vec())
        } else {
            (vec![0xca, 0xfe], vec![0x00, 0xff, 0x10])
        };
        ch.append(
            Rows::serde([Row {
                id: 1,
                b: Binary(b.clone()),
                v: v.clone(),
            }]),
            Positions::at(OffsetToken::from(1u64)),
        )
        .await
        .unwrap();
        ch.wait_for_commit(&OffsetToken::from(1u64), Duration::from_secs(10))
            .await
            .unwrap();
        let elastic = pipe.elastic_channel();
        elastic
            .append(Rows::serde([Row {
                id: 2,
                b: Binary(b.clone()),
                v: v.clone(),
            }]))
            .await
            .unwrap();
        elastic.close().await.unwrap();
        ch.close().await.unwrap();
        client.close().await.unwrap();
        let hex = |bytes: &[u8]| bytes.iter().map(|x| format!("{x:02X}")).collect::<String>();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while hex_of(&emu, "B").len() < 2 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(hex_of(&emu, "B"), [hex(&b), hex(&b)], "{server:?}");
        assert_eq!(hex_of(&emu, "V"), [hex(&v), hex(&v)], "{server:?}");
        emu.shutdown().await;
    }
}

/// The acceptance case of issue 39: base64 account, `Binary(CA FE)`, `HEX(B)` = `CAFE`.
/// A UTF-8 pipe refuses bytes that are not UTF-8 with an error that says so, and nothing
/// of the refused append is sent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base64_accounts_get_cafe_and_utf8_pipes_refuse_other_bytes() {
    let (emu, client, ch) = open_c(ServerFormat::Base64, |b| b).await;
    ch.append(Rows::serde([&cafe()]), Positions::none())
        .await
        .unwrap();
    ch.close().await.unwrap();
    client.close().await.unwrap();
    assert_eq!(hex_of(&emu, "B"), ["CAFE"]);
    emu.shutdown().await;

    let (emu, client, ch) = open_c(ServerFormat::Utf8, |b| b).await;
    let err = ch
        .append(Rows::serde([&cafe()]), Positions::none())
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Serialization { .. }), "{err:?}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
    ch.close().await.unwrap();
    client.close().await.unwrap();
    assert!(hex_of(&emu, "B").is_empty());
    emu.shutdown().await;
}

/// `ClientBuilder::binary_format` replaces what the service says (here wrongly: the
/// emulator reads base64, so hex text lands as other bytes, which is what the override is
/// for only when the pipe-info call is unavailable).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_format_named_on_the_builder_replaces_the_pipes() {
    let (emu, client, ch) =
        open_c(ServerFormat::Base64, |b| b.binary_format(BinaryFormat::Hex)).await;
    assert_eq!(ch.binary_format(), Some(BinaryFormat::Hex));
    ch.append(Rows::serde([&cafe()]), Positions::none())
        .await
        .unwrap();
    ch.close().await.unwrap();
    client.close().await.unwrap();
    // "CAFE" read as base64 is 08 01 44: why the SDK asks the pipe by default.
    assert_eq!(hex_of(&emu, "B"), ["080144"]);
    emu.shutdown().await;
}
