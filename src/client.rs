//! [`StreamingIngestClient`]: the entry point.

use std::sync::Arc;

use crate::channel::{Channel, ChannelRuntime, ChannelSettings, OpenChannelOptions};
use crate::transport::{ChannelPath, IngestApi, PipePath};
use crate::Result;

pub use crate::config::ClientBuilder;

/// A client for Snowpipe Streaming: a cheap `Clone` handle over shared state (configuration,
/// authentication, the HTTP transport, the client-wide memory budget and the commit poller).
#[derive(Debug, Clone)]
pub struct StreamingIngestClient {
    inner: Arc<ClientInner>,
}

#[derive(Debug)]
struct ClientInner {
    runtime: ChannelRuntime,
}

impl StreamingIngestClient {
    /// Starts configuring a client. See [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::new()
    }

    /// Assembles a client from its REST layer and channel settings (used by the builder and
    /// by tests with a fake transport).
    pub(crate) fn from_parts(api: Arc<dyn IngestApi>, settings: ChannelSettings) -> Self {
        Self {
            inner: Arc::new(ClientInner {
                runtime: ChannelRuntime::new(api, settings),
            }),
        }
    }

    /// Opens (or reopens) channel `channel` of pipe `database.schema.pipe`.
    ///
    /// Reopening a channel bumps its server-side client sequencer: any other handle to the same
    /// channel (in this or another process) is fenced and fails with
    /// [`Error::OwnershipLost`](crate::Error::OwnershipLost) (see *Ownership* in the
    /// [`channel`](crate::channel) module docs). The returned channel carries the last
    /// committed offset token ([`Channel::latest_committed_offset_token`]): resume after it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for an empty name,
    /// [`Error::Server`](crate::Error::Server) when the pipe does not exist or is not
    /// authorised, [`Error::Auth`](crate::Error::Auth), [`Error::Transport`](crate::Error::Transport).
    ///
    /// # Cancellation
    /// Dropping the future abandons the open; the server may still have opened (and so
    /// reopened) the channel.
    pub async fn open_channel(
        &self,
        database: &str,
        schema: &str,
        pipe: &str,
        channel: &str,
    ) -> Result<Channel> {
        self.open_channel_with(
            database,
            schema,
            pipe,
            channel,
            OpenChannelOptions::default(),
        )
        .await
    }

    /// Opens channel `channel` on the default pipe of table `database.schema.table`
    /// (`<TABLE>-STREAMING`, which Snowflake creates on first use). A mixed-case table is
    /// named quoted, `"My Table"`, and its pipe is then `"My Table-STREAMING"`.
    ///
    /// # Errors
    /// As [`open_channel`](Self::open_channel).
    ///
    /// # Cancellation
    /// As [`open_channel`](Self::open_channel).
    pub async fn open_table_channel(
        &self,
        database: &str,
        schema: &str,
        table: &str,
        channel: &str,
    ) -> Result<Channel> {
        self.open_table_channel_with(
            database,
            schema,
            table,
            channel,
            OpenChannelOptions::default(),
        )
        .await
    }

    /// [`open_table_channel`](Self::open_table_channel) with options (for example resetting
    /// its offset token, or `fail_on_uncommitted_rows`).
    ///
    /// # Errors
    /// As [`open_channel`](Self::open_channel).
    ///
    /// # Cancellation
    /// As [`open_channel`](Self::open_channel).
    pub async fn open_table_channel_with(
        &self,
        database: &str,
        schema: &str,
        table: &str,
        channel: &str,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        let pipe = crate::transport::default_pipe_name(table);
        self.open_channel_with(database, schema, &pipe, channel, options)
            .await
    }

    /// Opens a channel with options (for example resetting its offset token).
    ///
    /// # Errors
    /// As [`open_channel`](Self::open_channel).
    ///
    /// # Cancellation
    /// As [`open_channel`](Self::open_channel).
    pub async fn open_channel_with(
        &self,
        database: &str,
        schema: &str,
        pipe: &str,
        channel: &str,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        let path = ChannelPath {
            pipe: PipePath {
                database: database.to_owned(),
                schema: schema.to_owned(),
                pipe: pipe.to_owned(),
            },
            channel: channel.to_owned(),
        };
        self.inner.runtime.open(path, options).await
    }

    /// The channel runtime (tests inspect the memory budget).
    #[cfg(test)]
    pub(crate) fn inner_runtime(&self) -> &ChannelRuntime {
        &self.inner.runtime
    }

    /// The channel runtime (the client-level calls in `client_calls.rs`).
    pub(crate) fn runtime(&self) -> &ChannelRuntime {
        &self.inner.runtime
    }

    /// Closes every channel opened through this client and stops its background tasks.
    /// Returns once every channel's task has stopped: its buffered rows were sent and
    /// acknowledged by the server (not necessarily committed), or it gave up after 30 s.
    ///
    /// # Errors
    /// The first error met while closing a channel (a channel that had failed, an append
    /// that failed while draining, or rows still unsent after 30 s — as
    /// [`Error::ChannelInvalidated`](crate::Error::ChannelInvalidated) carrying the committed
    /// offset token to replay after); every channel is still closed.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; channels not yet closed keep running.
    pub async fn close(&self) -> Result<()> {
        self.inner.runtime.close_all().await
    }
}
