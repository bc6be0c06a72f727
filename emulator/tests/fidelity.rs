//! Protocol fidelity with the real service (issue 14, docs/protocol.md): the hard 4 MB cap,
//! names, roles, sticky sessions, limits and elastic channels.

mod common;

use common::*;
use serde_json::json;
use snowpipe_emulator::{Emulator, EmulatorConfig, MAX_PAYLOAD_BYTES};

/// `n` bytes of NDJSON: rows, then blank lines (which the server skips) up to exactly `n`.
fn body_of(n: usize) -> Vec<u8> {
    let mut b = rows(0..1000).into_bytes();
    b.resize(n, b'\n');
    b
}

#[tokio::test]
async fn the_default_payload_cap_is_4_mb_on_the_wire() {
    assert_eq!(EmulatorConfig::default().max_payload_bytes, 4_000_000);
    let emu = Emulator::start(config()).await.unwrap();
    let c = Client::connect(&emu).await;
    let ct = c.open_ok("c").await;
    let q = format!("endOffsetToken=1&continuationToken={ct}");
    let r = c
        .append_raw("c", &q, body_of(MAX_PAYLOAD_BYTES + 1), None)
        .await
        .unwrap();
    assert_eq!(r.status, 413, "{}", r.text);
    assert_eq!(r.body["code"], "ERR_PAYLOAD_TOO_LARGE");
    let r = c
        .append_raw("c", &q, body_of(MAX_PAYLOAD_BYTES), None)
        .await
        .unwrap();
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(c.wait_committed("c", "1").await["rows_inserted"], 1000);
    emu.shutdown().await;
}
