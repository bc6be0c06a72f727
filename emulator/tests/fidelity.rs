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

#[tokio::test]
async fn channel_names_fold_case_in_urls_but_not_in_bulk_status() {
    let emu = Emulator::start(config()).await.unwrap();
    let c = Client::connect(&emu).await;
    let ct = c.open_ok("Orders").await;
    // The URL names the channel in another case: the same channel.
    let next = c.append_ok("ORDERS", &ct, "1", &rows(0..3)).await;
    c.append_ok("orders", &next, "2", &rows(3..5)).await;
    let s = c.status(&["Orders", "orders", "ORDERS"]).await;
    assert_eq!(s["Orders"]["last_committed_offset_token"], "2");
    assert_eq!(s["Orders"]["channel_name"], "Orders");
    assert!(s.get("orders").is_none() && s.get("ORDERS").is_none(), "{s}");
    assert_eq!(count(&emu), 5);
    // Reopening under another case bumps the same channel's sequencer.
    let r = c.open("oRdErS", json!({})).await;
    assert_eq!(r.status, 200, "{}", r.text);
    assert_eq!(r.body["channel_status"]["channel_name"], "Orders");
    let stale = c.append("Orders", &next, "", "3", &rows(5..6)).await;
    assert_eq!(stale.status, 400, "{}", stale.text);
    emu.shutdown().await;
}

#[tokio::test]
async fn elastic_is_reserved_in_any_case() {
    let emu = Emulator::start(config()).await.unwrap();
    let c = Client::connect(&emu).await;
    for name in ["ELASTIC", "elastic", "Elastic"] {
        let r = c.open(name, json!({})).await;
        assert_eq!(r.status, 400, "{name}: {}", r.text);
        assert_eq!(r.body["code"], "ERR_ELASTIC_CHANNEL_RESERVED_NAME");
        let r = c
            .send(reqwest::Method::DELETE, &format!("{BASE}/channels/{name}"), None)
            .await;
        assert_eq!(r.status, 400, "{name}: {}", r.text);
    }
    emu.shutdown().await;
}
