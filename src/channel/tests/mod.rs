//! Actor, timer, budget and recovery tests against the fake server under paused time, by
//! topic; the helpers every topic uses are here.

use crate::{Positions, Rows};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;

use super::testing::{server_error, token_violation, FakeApi};
use super::CloseOptions;
use crate::settings::ChannelSettings;
use crate::test_support::row_too_large;
use crate::Compression;
use crate::{Channel, Error, OffsetToken, StreamingIngestClient};

#[derive(Serialize)]
pub(super) struct Row {
    id: u64,
}

pub(super) fn tok(n: u64) -> Option<OffsetToken> {
    Some(OffsetToken::from(n))
}

pub(super) fn settings() -> ChannelSettings {
    ChannelSettings {
        max_client_lag: Duration::from_secs(1),
        compression: Compression::None,
        ..ChannelSettings::default()
    }
}

/// Appends rows `first..first + count` with their dense tokens (one per row).
pub(super) async fn append_dense(ch: &Channel, first: u64, count: u64) {
    ch.append(
        Rows::serde((first..first + count).map(|id| Row { id })),
        Positions::from_span(tok(first), tok(first + count - 1)),
    )
    .await
    .unwrap();
}

/// The test settings with 1 KB requests.
pub(super) fn kib_requests() -> ChannelSettings {
    ChannelSettings {
        max_request_bytes: 1024,
        ..settings()
    }
}

/// The test settings with 1 KB requests and a 4 KB memory budget.
pub(super) fn small_budget() -> ChannelSettings {
    ChannelSettings {
        memory_budget_bytes: 4096,
        ..kib_requests()
    }
}

pub(super) fn client(fake: &Arc<FakeApi>, settings: ChannelSettings) -> StreamingIngestClient {
    StreamingIngestClient::from_parts(Arc::clone(fake) as _, settings)
}

/// A client with the test settings and `compression`.
pub(super) fn compressing(fake: &Arc<FakeApi>, compression: Compression) -> StreamingIngestClient {
    client(
        fake,
        ChannelSettings {
            compression,
            ..settings()
        },
    )
}

pub(super) async fn open(client: &StreamingIngestClient, name: &str) -> Channel {
    client
        .pipe("DB", "SC", "P")
        .open_channel(name)
        .await
        .unwrap()
}

/// Lets spawned tasks run until the fake saw `n` appends to `channel`.
pub(super) async fn until_appends(fake: &FakeApi, channel: &str, n: usize) {
    for _ in 0..100_000 {
        if fake.appends_to(channel).len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    panic!("fake never saw {n} appends to {channel}");
}

pub(super) fn ids(rows: &[String]) -> Vec<u64> {
    rows.iter()
        .map(|r| {
            serde_json::from_str::<serde_json::Value>(r).unwrap()["id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

#[derive(Serialize)]
pub(super) struct Wide {
    id: u64,
    pad: &'static str,
}

const PAD: &str = "0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz\
0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdef";

/// A client with requests of 10 KB (so a few appends fill one) and an 8 MiB budget (far more
/// than the channel's queue limit lets it use).
pub(super) fn small_requests(
    fake: &Arc<FakeApi>,
    compression: Compression,
) -> StreamingIngestClient {
    client(
        fake,
        ChannelSettings {
            memory_budget_bytes: 8 << 20,
            max_request_bytes: 10_000,
            compression,
            ..settings()
        },
    )
}

/// Rows `first..first + n` of ≈175 bytes each.
pub(super) fn wide(first: u64, n: u64) -> impl Iterator<Item = Wide> {
    (first..first + n).map(|id| Wide { id, pad: PAD })
}

mod batching;
mod commits;
mod door;
mod lifecycle;
mod memory;
mod merge;
mod recovery;
mod throughput;
