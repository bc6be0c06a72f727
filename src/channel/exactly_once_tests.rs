//! The exactly-once rule from the user's side: whatever the append sizes, request size,
//! compression and kind of tokens, every request the channel sends carries exactly the rows its
//! tokens name (checked on every request with [`token_violation`]), appends that cannot be
//! split exactly are refused, and every accepted row arrives once, in order. (The checks of
//! per-row tokens at the call are the conformance suite's, `test_util::conformance`.)

use crate::{Positions, Rows};
use std::sync::Arc;
use std::time::Duration;

use proptest::prelude::*;
use serde::Serialize;

use super::testing::{token_violation, FakeApi};
use crate::settings::ChannelSettings;
use crate::Compression;
use crate::{Error, OffsetToken, StreamingIngestClient};

/// A row that says which token covers it (see [`token_violation`]).
#[derive(Serialize, Clone, Debug)]
struct Row {
    seq: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    tok: Option<String>,
    head: bool,
    tail: bool,
    pad: String,
}

/// How one append gives its tokens.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// `append_rows(start, end)` with one number per row.
    Dense,
    /// `append_rows_with_tokens` with sparse numbers.
    PerRow,
    /// `append_rows(k, k)`: one token for the whole append.
    Single,
    /// No tokens.
    Untokened,
}

fn kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Dense),
        Just(Kind::PerRow),
        Just(Kind::Single),
        Just(Kind::Untokened)
    ]
}

/// One append: its kind, how many rows, and each row's padding.
type Append = (Kind, Vec<usize>);

fn appends() -> impl Strategy<Value = Vec<Append>> {
    prop::collection::vec((kind(), prop::collection::vec(0usize..300, 1..120)), 1..25)
}

/// Streams `appends` through one channel to the fake server and checks every request, the
/// refusals and the delivered rows.
async fn stream(appends: Vec<Append>, settings: ChannelSettings) -> Result<(), TestCaseError> {
    let fake = FakeApi::new();
    let client = StreamingIngestClient::from_parts(Arc::clone(&fake) as _, settings.clone());
    let ch = client
        .pipe("DB", "SC", "P")
        .open_channel("c")
        .await
        .unwrap();
    let mut next_tok = 1u64;
    let mut seq = 0u64;
    let mut expected = Vec::new();
    for (kind, pads) in appends {
        let n = pads.len() as u64;
        let rows: Vec<Row> = pads
            .iter()
            .enumerate()
            .map(|(i, &pad)| {
                let (tok, head, tail) = match kind {
                    Kind::Dense => (Some(next_tok + i as u64), true, true),
                    Kind::PerRow => (Some(next_tok + 3 * i as u64), true, true),
                    Kind::Single => (Some(next_tok), i == 0, i + 1 == pads.len()),
                    Kind::Untokened => (None, true, true),
                };
                seq += 1;
                Row {
                    seq,
                    tok: tok.map(|t| t.to_string()),
                    head,
                    tail,
                    pad: "x".repeat(pad),
                }
            })
            .collect();
        let bytes: usize = rows
            .iter()
            .map(|r| serde_json::to_vec(r).unwrap().len() + 1)
            .sum();
        let t = |x: u64| Some(OffsetToken::from(x));
        let res = match kind {
            Kind::Dense => {
                ch.append(
                    Rows::serde(rows.clone()),
                    Positions::from_span(t(next_tok), t(next_tok + n - 1)),
                )
                .await
            }
            Kind::PerRow => {
                let tokens = rows
                    .iter()
                    .map(|r| OffsetToken::new(r.tok.clone().unwrap()).unwrap());
                ch.append(Rows::serde(rows.clone()), Positions::per_row(tokens))
                    .await
            }
            Kind::Single => {
                ch.append(
                    Rows::serde(rows.clone()),
                    Positions::from_span(t(next_tok), t(next_tok)),
                )
                .await
            }
            Kind::Untokened => {
                ch.append(Rows::serde(rows.clone()), Positions::none())
                    .await
            }
        };
        let splits = bytes > settings.batch_cap();
        match (kind, res) {
            (Kind::Single, Err(Error::InvalidArgument { what: "rows", .. })) if splits => {}
            (_, Ok(())) if !(splits && matches!(kind, Kind::Single)) => {
                expected.extend(rows.iter().map(|r| r.seq));
            }
            (k, r) => prop_assert!(false, "{k:?} append of {bytes} bytes: {r:?}"),
        }
        next_tok += match kind {
            Kind::Dense => n,
            Kind::PerRow => 3 * n,
            Kind::Single => 1,
            Kind::Untokened => 0,
        };
    }
    ch.close().await.unwrap();
    let appends = fake.appends_to("c");
    for a in &appends {
        prop_assert_eq!(token_violation(a), None);
        prop_assert!(a.wire_len <= settings.max_request_bytes);
    }
    let got: Vec<u64> = appends
        .iter()
        .flat_map(|a| &a.rows)
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r).unwrap()["seq"]
                .as_u64()
                .unwrap()
        })
        .collect();
    prop_assert_eq!(got, expected);
    Ok(())
}

fn compression() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Zstd)
    ]
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(48))]

    #[test]
    fn every_request_carries_exactly_the_rows_its_tokens_name(
        appends in appends(),
        request_kb in 1usize..24,
        compression in compression(),
    ) {
        let settings = ChannelSettings {
            max_request_bytes: request_kb * 1024,
            compression,
            max_client_lag: Duration::from_millis(50),
            ..ChannelSettings::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        rt.block_on(stream(appends, settings))?;
    }
}

/// The reproduction, against the fake: ten 300-row appends of ~30 KB with 64 KiB
/// requests used to end requests in the middle of an append.
#[tokio::test(start_paused = true)]
async fn thirty_kb_appends_with_64_kib_requests_are_never_cut() {
    let fake = FakeApi::new();
    let settings = ChannelSettings {
        max_request_bytes: 64 << 10,
        compression: Compression::None,
        ..ChannelSettings::default()
    };
    let client = StreamingIngestClient::from_parts(Arc::clone(&fake) as _, settings);
    let ch = client
        .pipe("DB", "SC", "P")
        .open_channel("c")
        .await
        .unwrap();
    for k in 0..10u64 {
        let rows = (k * 300 + 1..=k * 300 + 300)
            .map(|id| serde_json::json!({"id": id, "pad": "y".repeat(90)}));
        ch.append(
            Rows::serde(rows),
            Positions::span(OffsetToken::from(k * 300 + 1)..=OffsetToken::from(k * 300 + 300)),
        )
        .await
        .unwrap();
    }
    ch.close().await.unwrap();
    let appends = fake.appends_to("c");
    for a in &appends {
        assert_eq!(token_violation(a), None);
        assert_eq!(a.rows.len() % 300, 0, "whole appends only");
    }
}

/// An append larger than one request with one token for all its rows is refused (nothing is
/// buffered, the message names the fixes); with `at_least_once_splits` it is split, only the
/// last request carrying the end token.
#[tokio::test(start_paused = true)]
async fn unsplittable_appends_are_refused_unless_at_least_once_is_chosen() {
    let fake = FakeApi::new();
    let settings = ChannelSettings {
        max_request_bytes: 2048,
        compression: Compression::None,
        ..ChannelSettings::default()
    };
    let client = StreamingIngestClient::from_parts(Arc::clone(&fake) as _, settings);
    let rows = || (0..400u64).map(|id| serde_json::json!({ "id": id }));
    let tok = || Some(OffsetToken::new("batch-7").unwrap());
    let exact = client
        .pipe("DB", "SC", "P")
        .open_channel("exact")
        .await
        .unwrap();
    let err = exact
        .append(Rows::serde(rows()), Positions::from_span(tok(), tok()))
        .await
        .unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
    for fix in [
        "Positions::per_row",
        "one token per row",
        "at_least_once_splits(true)",
    ] {
        assert!(msg.contains(fix), "{msg}");
    }
    exact.close().await.unwrap();
    assert!(fake.appends_to("exact").is_empty(), "nothing was buffered");

    let loose = client
        .pipe("DB", "SC", "P")
        .open_channel_with(
            "loose",
            super::OpenChannelOptions::default().at_least_once_splits(true),
        )
        .await
        .unwrap();
    loose
        .append(Rows::serde(rows()), Positions::from_span(tok(), tok()))
        .await
        .unwrap();
    loose.close().await.unwrap();
    let appends = fake.appends_to("loose");
    assert!(appends.len() > 2, "{} requests", appends.len());
    assert_eq!(appends[0].start.as_deref(), Some("batch-7"));
    assert!(appends[..appends.len() - 1].iter().all(|a| a.end.is_none()));
    assert_eq!(appends.last().unwrap().end.as_deref(), Some("batch-7"));
    assert_eq!(appends.iter().map(|a| a.rows.len()).sum::<usize>(), 400);
}
