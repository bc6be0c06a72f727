//! The official SDK's client-level calls (issue 14 item 11): statuses and committed offset
//! tokens of many channels by name, drop a channel by name, flush every open channel, and
//! wait until everything appended so far is committed.

use std::collections::HashMap;
use std::time::Duration;

use crate::channel::ChannelStatus;
use crate::elastic::ElasticSettings;
use crate::transport::{ChannelPath, ElasticTarget, PipePath};
use crate::{ElasticChannel, OffsetToken, Result, StreamingIngestClient};

fn pipe(database: &str, schema: &str, pipe: &str) -> PipePath {
    PipePath {
        database: database.to_owned(),
        schema: schema.to_owned(),
        pipe: pipe.to_owned(),
    }
}

impl StreamingIngestClient {
    /// An elastic channel on table `database.schema.table` (`POST …/tables/{table}/rows`,
    /// which resolves or creates the table's default pipe): at-least-once, unordered, no
    /// open call and no offset tokens — Snowflake's recommended starting point when ordering
    /// and exactly-once are not needed. Batching, compression and `max_client_lag` are the
    /// client's. A mixed-case table is named quoted (`"My Table"`).
    ///
    /// Nothing is sent until rows are appended, so a wrong name shows up at the first send.
    pub fn elastic_channel(&self, database: &str, schema: &str, table: &str) -> ElasticChannel {
        ElasticChannel::new(
            self.runtime().api(),
            ElasticTarget::Table {
                database: database.to_owned(),
                schema: schema.to_owned(),
                table: table.to_owned(),
            },
            ElasticSettings::of(self.runtime()),
        )
    }

    /// An elastic channel on pipe `database.schema.pipe` (its implicit `ELASTIC` channel,
    /// `POST …/pipes/{pipe}/channels/ELASTIC/rows`). See
    /// [`elastic_channel`](Self::elastic_channel).
    pub fn elastic_pipe_channel(
        &self,
        database: &str,
        schema: &str,
        pipe_name: &str,
    ) -> ElasticChannel {
        ElasticChannel::new(
            self.runtime().api(),
            ElasticTarget::Pipe(pipe(database, schema, pipe_name)),
            ElasticSettings::of(self.runtime()),
        )
    }

    /// The server's status of each named channel of pipe `database.schema.pipe`, by name
    /// (one bulk-status request per 100 names). A channel the server does not know is absent
    /// from the map. Names are matched as the server reports them (case-sensitively). The
    /// client-side fields of [`ChannelStatus`] (buffers, recoveries) are zero: use
    /// [`Channel::status`](crate::Channel::status) for a channel open in this client.
    ///
    /// # Errors
    /// [`Error::Server`](crate::Error::Server) when the pipe does not exist or is not
    /// authorised, [`Error::Auth`](crate::Error::Auth),
    /// [`Error::Transport`](crate::Error::Transport).
    ///
    /// # Cancellation
    /// Dropping the future abandons the remaining requests; nothing changes on the server.
    pub async fn channel_statuses(
        &self,
        database: &str,
        schema: &str,
        pipe_name: &str,
        channels: &[&str],
    ) -> Result<HashMap<String, ChannelStatus>> {
        let names: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
        self.runtime()
            .statuses(&pipe(database, schema, pipe_name), &names)
            .await
    }

    /// The last committed offset token of each named channel (`None`: the channel exists
    /// without a committed token). A channel the server does not know is absent. As
    /// [`channel_statuses`](Self::channel_statuses), keeping only the token.
    ///
    /// # Errors
    /// As [`channel_statuses`](Self::channel_statuses).
    ///
    /// # Cancellation
    /// As [`channel_statuses`](Self::channel_statuses).
    pub async fn latest_committed_offset_tokens(
        &self,
        database: &str,
        schema: &str,
        pipe_name: &str,
        channels: &[&str],
    ) -> Result<HashMap<String, Option<OffsetToken>>> {
        Ok(self
            .channel_statuses(database, schema, pipe_name, channels)
            .await?
            .into_iter()
            .map(|(name, s)| (name, s.committed_offset_token))
            .collect())
    }

    /// Drops channel `channel` of pipe `database.schema.pipe` on the server (its committed
    /// offset token is deleted) and returns the last committed token the server reported. A
    /// channel open in this client is refused: use
    /// [`Channel::drop_channel`](crate::Channel::drop_channel), which flushes and waits first.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a bad or reserved name
    /// (`ELASTIC`) or a channel open in this client; [`Error::Server`](crate::Error::Server)
    /// when the channel does not exist; [`Error::Auth`](crate::Error::Auth),
    /// [`Error::Transport`](crate::Error::Transport).
    ///
    /// # Cancellation
    /// Dropping the future may leave the channel dropped or not.
    pub async fn drop_channel(
        &self,
        database: &str,
        schema: &str,
        pipe_name: &str,
        channel: &str,
    ) -> Result<Option<OffsetToken>> {
        self.runtime()
            .drop_by_name(ChannelPath {
                pipe: pipe(database, schema, pipe_name),
                channel: channel.to_owned(),
            })
            .await
    }

    /// Sends every row appended so far on every channel open in this client and resolves
    /// when the server has acknowledged them (HTTP 200, not yet committed), as
    /// [`Channel::flush`](crate::Channel::flush) on each.
    ///
    /// # Errors
    /// The first error of a channel's flush (for example
    /// [`Error::ChannelInvalidated`](crate::Error::ChannelInvalidated)); the other channels
    /// are still flushed.
    ///
    /// # Cancellation
    /// Dropping the future only stops waiting; the rows are still sent.
    pub async fn flush(&self) -> Result<()> {
        self.runtime().flush_all().await.map(|_| ())
    }

    /// Flushes every channel open in this client, then waits until each reports the last
    /// offset token it sent committed. Channels whose appends carried no offset token are
    /// only flushed (a commit cannot be seen without one).
    ///
    /// # Errors
    /// [`Error::Timeout`](crate::Error::Timeout) after `timeout`;
    /// [`Error::ChannelInvalidated`](crate::Error::ChannelInvalidated) when a channel fails
    /// meanwhile; errors of the flushes.
    ///
    /// # Cancellation
    /// Dropping the future only stops waiting.
    pub async fn wait_for_commit(&self, timeout: Duration) -> Result<()> {
        self.runtime().wait_for_all_committed(timeout).await
    }
}
