//! Channels: buffered, ordered appends to one Snowpipe Streaming channel.
//!
//! PLACEHOLDER: the channel actor, buffer, memory budget and commit poller land here.

use std::sync::Arc;
use std::time::Duration;

use crate::transport::{ChannelPath, Compression, IngestApi};
use crate::{OffsetToken, Result};

/// Tuning of channels, set through the client builder. Defaults are documented on the
/// builder's setters.
#[derive(Debug, Clone)]
pub(crate) struct ChannelSettings {
    /// Flush a batch this long after its first row was appended. Default 1 s.
    pub(crate) max_client_lag: Duration,
    /// Target size of one append request on the wire (after compression). Default 4 MB.
    pub(crate) max_request_bytes: usize,
    /// Client-wide budget of buffered + sent-but-uncommitted bytes. Default 256 MiB.
    pub(crate) memory_budget_bytes: usize,
    /// Compression of append bodies. Default zstd.
    pub(crate) compression: Compression,
    /// zstd level. Default 3? (tuned by the performance work).
    pub(crate) zstd_level: i32,
    /// Commit poll interval while some channel has uncommitted data. Default 100 ms.
    pub(crate) commit_poll_interval: Duration,
    /// Commit poll interval while everything is committed. Default 5 s.
    pub(crate) idle_poll_interval: Duration,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            max_client_lag: Duration::from_secs(1),
            max_request_bytes: 4_000_000,
            memory_budget_bytes: 256 << 20,
            compression: Compression::Zstd,
            zstd_level: 3,
            commit_poll_interval: Duration::from_millis(100),
            idle_poll_interval: Duration::from_secs(5),
        }
    }
}

/// Options for opening a channel.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenChannelOptions {
    /// Reset the channel's committed offset token to this value at open.
    pub offset_token: Option<OffsetToken>,
}

/// The channels of one client: memory budget, commit poller, and the open-channel logic.
#[derive(Debug)]
pub(crate) struct ChannelRuntime {
    api: Arc<dyn IngestApi>,
    settings: ChannelSettings,
}

impl ChannelRuntime {
    pub(crate) fn new(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        Self { api, settings }
    }

    pub(crate) async fn open(
        &self,
        path: ChannelPath,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        let _ = (&self.api, &self.settings, path, options);
        Err(crate::Error::shutdown(
            "channel support (not yet implemented)",
        ))
    }

    pub(crate) async fn close_all(&self) -> Result<()> {
        Ok(())
    }
}

/// A handle to one open channel.
#[derive(Debug)]
pub struct Channel {
    _private: (),
}
