//! The seam between channel logic and the REST layer.
//!
//! Channel actors and the commit poller talk to Snowflake only through [`IngestApi`], so their
//! logic is testable against an in-memory fake under paused tokio time, while the real
//! implementation (the REST layer) is tested with wiremock in real time.

use std::collections::HashMap;
use std::fmt;

use async_trait::async_trait;
use bytes::Bytes;

use crate::api::{ChannelStatusWire, OpenChannelRequest, OpenChannelResponse};
use crate::{Compression, OffsetToken, Result};

/// A pipe: database, schema and pipe name exactly as the user gave them.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct PipePath {
    pub(crate) database: String,
    pub(crate) schema: String,
    pub(crate) pipe: String,
}

/// The default pipe of a table (docs/protocol.md "Names"): `<TABLE>-STREAMING`, the suffix
/// appended verbatim; for a quoted (case-sensitive) table name `"My Table"` the suffix goes
/// inside the quotes, `"My Table-STREAMING"`, as Snowflake's Openflow client sends it. This is
/// the pipe [`StreamingIngestClient::table_pipe`](crate::StreamingIngestClient::table_pipe) writes
/// through; [`default_pipe_table`] is its inverse.
///
/// ```
/// use snowpipe_streaming::default_pipe_name;
/// assert_eq!(default_pipe_name("ORDERS"), "ORDERS-STREAMING");
/// assert_eq!(default_pipe_name("\"Click Log\""), "\"Click Log-STREAMING\"");
/// ```
pub fn default_pipe_name(table: &str) -> String {
    match table
        .strip_prefix('"')
        .and_then(|t| t.strip_suffix('"'))
        .filter(|inner| !inner.is_empty())
    {
        Some(inner) => format!("\"{inner}-STREAMING\""),
        None => format!("{table}-STREAMING"),
    }
}

/// The table whose default pipe is `pipe` ([`default_pipe_name`] undone): `ORDERS-STREAMING`
/// → `ORDERS`, `"Click Log-STREAMING"` → `"Click Log"`; `None` for a pipe of any other name
/// (the suffix is matched as written, upper case, as [`default_pipe_name`] writes it).
///
/// ```
/// use snowpipe_streaming::default_pipe_table;
/// assert_eq!(default_pipe_table("ORDERS-STREAMING").as_deref(), Some("ORDERS"));
/// assert_eq!(default_pipe_table("\"Click Log-STREAMING\"").as_deref(), Some("\"Click Log\""));
/// assert_eq!(default_pipe_table("ORDERS_PIPE"), None);
/// ```
pub fn default_pipe_table(pipe: &str) -> Option<String> {
    match pipe.strip_prefix('"').and_then(|p| p.strip_suffix('"')) {
        Some(inner) => inner
            .strip_suffix("-STREAMING")
            .filter(|t| !t.is_empty())
            .map(|t| format!("\"{t}\"")),
        None => pipe
            .strip_suffix("-STREAMING")
            .filter(|t| !t.is_empty())
            .map(str::to_owned),
    }
}

/// A channel of a pipe.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct ChannelPath {
    pub(crate) pipe: PipePath,
    pub(crate) channel: String,
}

impl fmt::Display for ChannelPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}.{}.{}/{}",
            self.pipe.database, self.pipe.schema, self.pipe.pipe, self.channel
        )
    }
}

/// One append-rows request, already encoded and compressed by the channel. The REST layer
/// sends `body` as it is, on every attempt (never re-serialized or re-compressed).
#[derive(Debug, Clone)]
pub(crate) struct AppendRequest {
    /// The (compressed) NDJSON body.
    pub(crate) body: Bytes,
    /// How `body` is compressed.
    pub(crate) compression: Compression,
    /// Length of the NDJSON before compression (`x-snowflake-uncompressed-content-length`).
    pub(crate) uncompressed_len: usize,
    /// Number of rows in the body.
    pub(crate) row_count: usize,
    /// Offset token of the first append in the batch (`startOffsetToken`, empty when none).
    pub(crate) start_offset_token: Option<OffsetToken>,
    /// Offset token of the last append in the batch (`endOffsetToken`, empty when none).
    pub(crate) end_offset_token: Option<OffsetToken>,
    /// The continuation token from the previous open/append of this channel.
    pub(crate) continuation_token: String,
    /// Epoch milliseconds of the earliest append in the batch
    /// (`x-snowflake-min-append-timestamp-ms`).
    pub(crate) min_append_timestamp_ms: u64,
}

/// What the REST layer keeps between the appends of one channel: the pacing clock. Owned by
/// the channel's actor and lent to each of its appends (at most one in flight), so it lives
/// and dies with the channel: nothing client-wide grows with the number of channel names an
/// application goes through.
#[derive(Debug, Default)]
pub(crate) struct ChannelWire {
    /// The earliest start of the channel's next append (request and byte rate pacing).
    pub(crate) next_append: std::sync::Mutex<Option<tokio::time::Instant>>,
}

/// The server's answer to a named channel's append.
#[derive(Debug, Clone)]
pub(crate) struct AppendAck {
    /// The continuation token of the channel's next append.
    pub(crate) next_continuation_token: String,
    /// The `x-snowflake-session` the insert was answered with (none when absent or empty):
    /// the channel echoes it on its next insert (docs/protocol.md "Sticky sessions"), until
    /// it reopens. The actor keeps it; the REST layer only reads and returns it.
    pub(crate) session: Option<http::HeaderValue>,
}

/// Where an elastic append goes (docs/protocol-types-and-sql.md "Elastic channels").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum ElasticTarget {
    /// `…/tables/{table}/rows`: the table's default pipe, created on first use.
    Table {
        database: String,
        schema: String,
        table: String,
    },
    /// `…/pipes/{pipe}/channels/ELASTIC/rows`.
    Pipe(PipePath),
}

impl ElasticTarget {
    /// The pipe the target writes through: the pipe, or a table's default pipe (named by
    /// [`default_pipe_name`], the rule every path uses).
    pub(crate) fn pipe_path(&self) -> PipePath {
        match self {
            Self::Pipe(p) => p.clone(),
            Self::Table {
                database,
                schema,
                table,
            } => PipePath {
                database: database.clone(),
                schema: schema.clone(),
                pipe: default_pipe_name(table),
            },
        }
    }
}

impl fmt::Display for ElasticTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Table {
                database,
                schema,
                table,
            } => write!(f, "{database}.{schema}.{table} (elastic)"),
            Self::Pipe(p) => write!(f, "{}.{}.{}/ELASTIC", p.database, p.schema, p.pipe),
        }
    }
}

/// What an elastic append's successful response says about duplicates: the request id and
/// the attempt that succeeded (`retry_count > 0`: an earlier attempt may have been applied).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ElasticAck {
    pub(crate) request_id: String,
    pub(crate) retry_count: u32,
}

/// The REST operations channels need. Implemented by the REST layer and by test fakes.
///
/// Retry contract: implementations retry what is safe to retry (429, 5xx, connect failures,
/// 401 after one token refresh, 409 open-in-progress) inside the call. For `append_rows`, a
/// failure after which the server *may* have applied the request (a timeout or a connection
/// broken after the request was sent) is NOT retried in place: it is returned as
/// [`crate::Error::Transport`] with kind `Timeout`/`Interrupted`, and the channel recovers by
/// reopening and replaying after the committed offset token, which is exactly-once whatever
/// the server did with the lost request.
#[async_trait]
pub(crate) trait IngestApi: Send + Sync + fmt::Debug + 'static {
    /// `PUT …/channels/{channel}`: opens or reopens the channel.
    async fn open_channel(
        &self,
        channel: &ChannelPath,
        request: &OpenChannelRequest,
    ) -> Result<OpenChannelResponse>;

    /// `POST /v2/streaming/data/…/channels/{channel}/rows`: returns the next continuation token
    /// and the sticky session to echo next. `session` is the one the channel's previous
    /// insert was answered with; `wire` is the channel's pacing clock, updated by this call.
    async fn append_rows(
        &self,
        channel: &ChannelPath,
        request: &AppendRequest,
        session: Option<&http::HeaderValue>,
        wire: &ChannelWire,
    ) -> Result<AppendAck>;

    /// `POST …/pipes/{pipe}:bulk-channel-status` for up to any number of names (split into
    /// requests of at most 100 names). Unknown channels are absent from the result.
    async fn bulk_channel_status(
        &self,
        pipe: &PipePath,
        channel_names: &[String],
    ) -> Result<HashMap<String, ChannelStatusWire>>;

    /// `POST …/pipes/{pipe}:pipe-info`: the pipe's parameters (docs/protocol-wire.md §4.2).
    async fn pipe_info(&self, pipe: &PipePath) -> Result<crate::api::PipeInfoResponse> {
        let _ = pipe;
        Err(crate::Error::invalid_argument(
            "pipe",
            "this transport has no pipe-info endpoint",
        ))
    }

    /// `DELETE …/channels/{channel}`: returns the last committed offset token if reported.
    async fn drop_channel(&self, channel: &ChannelPath) -> Result<Option<String>>;

    /// An elastic append: no offset or continuation tokens; every retry (timeouts included:
    /// at-least-once) carries the same `requestId` with `retryCount` counting.
    async fn append_elastic(
        &self,
        target: &ElasticTarget,
        request: &AppendRequest,
    ) -> Result<ElasticAck> {
        let _ = (target, request);
        Err(crate::Error::invalid_argument(
            "elastic channel",
            "this transport has no elastic endpoint",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_is_the_default_pipes() {
        let cases = [
            ("ORDERS-STREAMING", Some("ORDERS")),
            ("\"Click Log-STREAMING\"", Some("\"Click Log\"")),
            ("orders-STREAMING", Some("orders")),
            ("ORDERS_PIPE", None),
            ("-STREAMING", None),
            ("\"-STREAMING\"", None),
            ("ORDERS-streaming", None),
        ];
        for (pipe, table) in cases {
            assert_eq!(default_pipe_table(pipe).as_deref(), table, "{pipe}");
        }
        for table in ["ORDERS", "orders", "\"Click Log\"", "\"a\"\"b\""] {
            assert_eq!(
                default_pipe_table(&default_pipe_name(table)).as_deref(),
                Some(table)
            );
        }
    }
}
