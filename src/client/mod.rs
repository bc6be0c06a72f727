//! [`StreamingIngestClient`]: the entry point, and the client's home — its state
//! ([`ClientCore`](core::ClientCore)), the client-level calls (`calls.rs`) and [`Pipe`].

use std::sync::Arc;
use std::time::Duration;

use crate::settings::ChannelSettings;
use crate::transport::IngestApi;
use crate::Result;

mod calls;
pub(crate) mod core;
mod memory;
mod pipe;

pub use memory::MemoryReservation;
pub use pipe::Pipe;

use self::core::ClientCore;

/// A client for Snowpipe Streaming: a cheap `Clone` handle over shared state (configuration,
/// authentication, the HTTP transport, the client-wide memory budget and the commit poller).
#[derive(Debug, Clone)]
pub struct StreamingIngestClient {
    core: Arc<ClientCore>,
}

impl StreamingIngestClient {
    /// Assembles a client from its REST layer and channel settings (used by the builder and
    /// by tests with a fake transport).
    pub(crate) fn from_parts(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        Self {
            core: Arc::new(ClientCore::new(api, settings)),
        }
    }

    /// How long this client's channels hold a row before sending it: its `max_client_lag`
    /// setting (the builder's, the profile's or the default 1 s), within the accepted range.
    /// Code that feeds channels can batch on its own side by a fraction of it.
    pub fn max_client_lag(&self) -> std::time::Duration {
        self.core.state.settings.max_client_lag
    }

    /// The client-wide memory budget of buffered and sent-but-uncommitted bytes: its
    /// `memory_budget_bytes` setting (the builder's, the profile's or the default 256 MiB).
    /// Code that decodes rows for this client can bound its own buffers by it.
    pub fn memory_budget_bytes(&self) -> usize {
        self.core.state.settings.memory_budget_bytes
    }

    /// The named channels' runtime (tests inspect the memory budget and the registry).
    #[cfg(test)]
    pub(crate) fn runtime(&self) -> &crate::channel::ChannelRuntime {
        &self.core.channels
    }

    /// Closes every channel opened through this client — named and
    /// [elastic](crate::ElasticChannel) — and stops its background tasks. Returns once every
    /// named channel's task has stopped (its buffered rows were sent and acknowledged by the
    /// server, not necessarily committed, or it gave up after 30 s) and every elastic
    /// channel's buffered rows were sent and acknowledged (also those of elastic channels
    /// whose handles were dropped).
    ///
    /// The client is a cheap `Clone` over one shared state: closing any clone closes the
    /// client for **every** clone. Afterwards no channel opens, elastic channels refuse
    /// appends ([`Error::Shutdown`](crate::Error::Shutdown)), and the channels' handles
    /// report the close.
    ///
    /// # Errors
    /// The first error met while closing a channel (a channel that had failed, an append
    /// that failed while draining, or rows still unsent after 30 s — as
    /// [`Error::ChannelInvalidated`](crate::Error::ChannelInvalidated) carrying the committed
    /// offset token to replay after; for an elastic channel, the error of its last send or of
    /// an earlier timed flush); every channel is still closed.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; channels not yet closed keep running.
    pub async fn close(&self) -> Result<()> {
        let (named, elastic) = tokio::join!(
            self.core.channels.close_all(),
            self.core.elastic.close_all()
        );
        named.and(elastic)
    }

    /// Sends every row appended so far on every channel open in this client — named and
    /// [elastic](crate::ElasticChannel) — and resolves when the server has acknowledged them
    /// (HTTP 200, not yet committed), as [`Channel::flush`](crate::Channel::flush) and
    /// [`ElasticChannel::flush`](crate::ElasticChannel::flush) on each.
    ///
    /// # Errors
    /// The first error of a channel's flush (for example
    /// [`Error::ChannelInvalidated`](crate::Error::ChannelInvalidated), or an elastic
    /// channel's failed send or earlier failed timed flush); the other channels are still
    /// flushed.
    ///
    /// # Cancellation
    /// Dropping the future only stops waiting; the named channels' rows are still sent (an
    /// elastic batch may be sent or not: at-least-once, append again).
    pub async fn flush(&self) -> Result<()> {
        let (named, elastic) = tokio::join!(
            self.core.channels.flush_all(),
            self.core.elastic.flush_all()
        );
        named.map(|_| ()).and(elastic)
    }

    /// Flushes every named channel open in this client, then waits until each reports the
    /// last offset token it sent committed. Channels whose appends carried no offset token
    /// are only flushed (a commit cannot be seen without one). Elastic channels have no
    /// offset tokens: [`flush`](Self::flush) sends what they hold.
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) after `timeout`;
    /// [`Error::ChannelInvalidated`](crate::Error::ChannelInvalidated) when a channel fails
    /// meanwhile; errors of the flushes.
    ///
    /// # Cancellation
    /// Dropping the future only stops waiting.
    pub async fn wait_for_commit(&self, timeout: Duration) -> Result<()> {
        self.core.channels.wait_for_all_committed(timeout).await
    }
}
