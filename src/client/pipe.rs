//! [`Pipe`]: a pipe named once, with the calls that act on its channels.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use super::StreamingIngestClient;
use crate::channel::{Channel, OpenChannelOptions, ServerChannelStatus};
use crate::elastic::ElasticChannel;
use crate::transport::{default_pipe_name, ChannelPath, ElasticTarget, PipePath};
use crate::{OffsetToken, Result};

/// A pipe of a client: `database.schema.pipe`, named once and then used for its channels.
///
/// Made by [`StreamingIngestClient::pipe`] (a pipe created with `CREATE PIPE`) or
/// [`StreamingIngestClient::table_pipe`] (a table's default pipe, `<TABLE>-STREAMING`, which
/// Snowflake creates on first use). Cheap to clone; it holds a clone of the client. Names are
/// sent as given: an unquoted name is matched case-insensitively by Snowflake, a quoted one
/// (`"My Table"`) exactly.
///
/// ```no_run
/// # async fn f(client: snowpipe_streaming::StreamingIngestClient) -> snowpipe_streaming::Result<()> {
/// let orders = client.table_pipe("SHOP", "SALES", "ORDERS");
/// let channel = orders.open_channel("orders-0").await?;
/// let resume_after = channel.latest_committed_offset_token();
/// # let _ = resume_after; Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct Pipe {
    client: StreamingIngestClient,
    path: PipePath,
    /// The table, when this is a table's default pipe (elastic appends then go to the
    /// table's endpoint, which creates the pipe on first use).
    table: Option<String>,
}

impl StreamingIngestClient {
    /// Pipe `database.schema.pipe`.
    pub fn pipe(&self, database: &str, schema: &str, pipe: &str) -> Pipe {
        Pipe {
            client: self.clone(),
            path: PipePath {
                database: database.to_owned(),
                schema: schema.to_owned(),
                pipe: pipe.to_owned(),
            },
            table: None,
        }
    }

    /// The default pipe of table `database.schema.table`: `<TABLE>-STREAMING`, which
    /// Snowflake creates on first use. A mixed-case table is named quoted, `"My Table"`, and
    /// its pipe is then `"My Table-STREAMING"`.
    pub fn table_pipe(&self, database: &str, schema: &str, table: &str) -> Pipe {
        let mut pipe = self.pipe(database, schema, &default_pipe_name(table));
        pipe.table = Some(table.to_owned());
        pipe
    }
}

impl Pipe {
    /// The database, as given.
    pub fn database(&self) -> &str {
        &self.path.database
    }

    /// The schema, as given.
    pub fn schema(&self) -> &str {
        &self.path.schema
    }

    /// The pipe's name (for a table's default pipe, `<TABLE>-STREAMING`).
    pub fn name(&self) -> &str {
        &self.path.pipe
    }

    /// The table, when this is a table's default pipe.
    pub fn table(&self) -> Option<&str> {
        self.table.as_deref()
    }

    fn channel_path(&self, channel: &str) -> ChannelPath {
        ChannelPath {
            pipe: self.path.clone(),
            channel: channel.to_owned(),
        }
    }

    /// Opens (or reopens) channel `channel` of this pipe.
    ///
    /// Reopening a channel bumps its server-side client sequencer: any other handle to the
    /// same channel (in this or another process) is fenced and fails with
    /// [`Error::OwnershipLost`](crate::Error::OwnershipLost) (see *Ownership* in the
    /// [`channel`](crate::channel) module docs). The returned channel carries the last
    /// committed offset token ([`Channel::latest_committed_offset_token`]): resume after it.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for an empty name,
    /// [`Error::Server`](crate::Error::Server) when the pipe does not exist or is not
    /// authorised, [`Error::Auth`](crate::Error::Auth), [`Error::Transport`](crate::Error::Transport).
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when the channel is open (or
    /// being opened) in this client. A channel of the same name whose handle was dropped
    /// stops in the background (draining what it holds, at most 5 s): the open waits for that
    /// stop, at most 10 s, and is refused with `InvalidArgument` only past that.
    ///
    /// # Cancellation
    /// Dropping the future abandons the open (also while it waits for a dropped predecessor
    /// to stop); the server may still have opened (and so reopened) the channel.
    pub async fn open_channel(&self, channel: &str) -> Result<Channel> {
        self.open_channel_with(channel, OpenChannelOptions::default())
            .await
    }

    /// [`open_channel`](Self::open_channel) with options (for example resetting its offset
    /// token, or `fail_on_uncommitted_rows`).
    ///
    /// # Errors
    /// As [`open_channel`](Self::open_channel).
    ///
    /// # Cancellation
    /// As [`open_channel`](Self::open_channel).
    pub async fn open_channel_with(
        &self,
        channel: &str,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        self.client
            .core
            .channels
            .open(self.channel_path(channel), options)
            .await
    }

    /// An elastic channel on this pipe: at-least-once, unordered, no open call and no offset
    /// tokens — Snowflake's recommended starting point when ordering and exactly-once are not
    /// needed. Batching, compression and `max_client_lag` are the client's. On a table's
    /// default pipe the rows go to the table (`POST …/tables/{table}/rows`, which resolves or
    /// creates the pipe); on another pipe to its implicit `ELASTIC` channel.
    ///
    /// Nothing is sent until rows are appended, so a wrong name shows up at the first send.
    pub fn elastic_channel(&self) -> ElasticChannel {
        let target = match &self.table {
            Some(table) => ElasticTarget::Table {
                database: self.path.database.clone(),
                schema: self.path.schema.clone(),
                table: table.clone(),
            },
            None => ElasticTarget::Pipe(self.path.clone()),
        };
        let core = &self.client.core;
        ElasticChannel::new(Arc::clone(&core.state), target, Arc::clone(&core.elastic))
    }

    /// The server's status of each named channel of this pipe, by name (one bulk-status
    /// request per 100 names). A channel the server does not know is absent from the map.
    /// Names are matched as the server reports them (case-sensitively). The server's part
    /// alone: [`Channel::status`] adds the client's (buffers, recoveries) for a channel open in
    /// this client.
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
        channels: &[&str],
    ) -> Result<HashMap<String, ServerChannelStatus>> {
        let names: Vec<String> = channels.iter().map(|c| (*c).to_owned()).collect();
        self.client.core.statuses(&self.path, &names).await
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
        channels: &[&str],
    ) -> Result<HashMap<String, Option<OffsetToken>>> {
        Ok(self
            .channel_statuses(channels)
            .await?
            .into_iter()
            .map(|(name, s)| (name, s.committed_offset_token))
            .collect())
    }

    /// Drops channel `channel` of this pipe on the server (its committed offset token is
    /// deleted) and returns the last committed token the server reported. A channel open in
    /// this client is refused: use [`Channel::drop_channel`], which flushes and waits first.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) for a bad or reserved name
    /// (`ELASTIC`) or a channel open in this client; [`Error::Server`](crate::Error::Server)
    /// when the channel does not exist; [`Error::Auth`](crate::Error::Auth),
    /// [`Error::Transport`](crate::Error::Transport).
    ///
    /// # Cancellation
    /// Dropping the future may leave the channel dropped or not.
    pub async fn drop_channel(&self, channel: &str) -> Result<Option<OffsetToken>> {
        self.client
            .core
            .drop_by_name(self.channel_path(channel))
            .await
    }
}

impl fmt::Display for Pipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}",
            self.path.database, self.path.schema, self.path.pipe
        )
    }
}
