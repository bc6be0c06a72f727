//! The crate's single public error type.
//!
//! Variants are grouped by what the caller must do next, not by which module failed:
//!
//! | Variant | What to do |
//! |---|---|
//! | [`Error::Config`] | fix the named setting |
//! | [`Error::InvalidArgument`] | fix the argument (name, token, ...) |
//! | [`Error::Auth`] | fix the key, user, role or token; not retryable |
//! | [`Error::ChannelInvalidated`] | reopen the channel and replay after its committed token |
//! | [`Error::OwnershipLost`] | stop writing the channel: another writer opened it (reopen only when you know that writer is gone) |
//! | [`Error::Backpressure`] | wait and try again (the memory budget is full) |
//! | [`Error::RowTooLarge`] / [`Error::Serialization`] | fix the data |
//! | [`Error::Server`] | inspect [`Error::status`] and [`Error::snowflake_code`] |
//! | [`Error::Transport`] | network trouble that outlasted the retries (retry later), or a TLS or decode failure (see [`TransportErrorKind`]; not retryable) |
//! | [`Error::Timeout`] | a wait ran out; retry or wait longer |
//! | [`Error::Shutdown`] | the client or channel was closed |
//! | `Error::Sql` (feature `sql`) | a SQL statement failed: fix the statement or the grants |
//!
//! `Display` messages are short and lowercase and never repeat the source error; walk
//! [`std::error::Error::source`] (or print with `{:#}` in anyhow) for the chain. No message,
//! `Debug` output or source ever contains key material or tokens.

use std::sync::Arc;
use std::time::Duration;

use crate::OffsetToken;

/// A boxed error used as a source.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// `Result` with this crate's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error this crate returns.
///
/// Variants are grouped by what the caller must do next, not by which module failed:
///
/// | Variant | What to do |
/// |---|---|
/// | [`Error::Config`] | fix the named setting |
/// | [`Error::InvalidArgument`] | fix the argument (name, token, ...) |
/// | [`Error::Auth`] | fix the key, user, role or token; not retryable |
/// | [`Error::ChannelInvalidated`] | reopen the channel and replay after its committed token |
/// | [`Error::OwnershipLost`] | stop writing the channel: another writer opened it (reopen only when you know that writer is gone) |
/// | [`Error::Backpressure`] | wait and try again (the memory budget is full) |
/// | [`Error::RowTooLarge`] / [`Error::Serialization`] | fix the data |
/// | [`Error::Server`] | inspect [`Error::status`] and [`Error::snowflake_code`] |
/// | [`Error::Transport`] | network trouble that outlasted the retries (retry later), or a TLS or decode failure (see [`TransportErrorKind`]; not retryable) |
/// | [`Error::Timeout`] | a wait ran out; retry or wait longer |
/// | [`Error::Shutdown`] | the client or channel was closed |
///
/// `Display` messages are short and lowercase and never repeat the source error; walk
/// [`std::error::Error::source`] (or print with `{:#}` in anyhow) for the chain. No message,
/// `Debug` output or source ever contains key material or tokens.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration setting is missing or invalid.
    #[error("invalid configuration: {setting}: {message}")]
    Config {
        /// The setting's name as in the builder, profile.json or env var (e.g. `private_key`).
        setting: String,
        /// What is wrong and how to fix it.
        message: String,
        /// The underlying error, if any (e.g. a PEM parse error or an I/O error).
        #[source]
        source: Option<BoxError>,
    },

    /// An argument passed to a method is invalid (a channel name, an offset token, ...).
    #[error("invalid {what}: {message}")]
    InvalidArgument {
        /// Which argument.
        what: &'static str,
        /// What is wrong and how to fix it.
        message: String,
    },

    /// Authentication failed: the key, user, account, role or token was rejected, or a token
    /// could not be obtained. Not retryable without a configuration change.
    #[error("authentication failed: {message}")]
    Auth {
        /// What failed and what to check.
        message: String,
        /// The underlying error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The channel can no longer be used as it is: the server invalidated it and automatic
    /// recovery failed (or was impossible), or rows were dropped when it was closed. Another
    /// writer taking the channel is [`Error::OwnershipLost`] instead. Reopen it ([`Channel::reopen`] or
    /// [`Pipe::open_channel`]) and replay rows after
    /// [`Error::last_committed_offset_token`].
    ///
    /// [`Channel::reopen`]: crate::Channel::reopen
    /// [`Pipe::open_channel`]: crate::Pipe::open_channel
    #[error("channel {channel} must be reopened: {reason}")]
    ChannelInvalidated {
        /// The channel's name.
        channel: String,
        /// Why the channel is unusable.
        reason: String,
        /// The last offset token the server reported committed, to resume after.
        last_committed: Option<OffsetToken>,
        /// The error that invalidated the channel, shared by every caller that sees it.
        #[source]
        source: Option<Arc<Self>>,
    },

    /// Another writer opened this channel after this handle did, so the server fenced this
    /// handle: the server answered an append with `STALE_CONTINUATION_TOKEN_SEQUENCER`, or
    /// reported a committed offset token this handle never sent. This is final for the
    /// handle: it sends nothing more, it does not reopen the channel by itself, and the rows
    /// it had not yet seen committed are dropped (they belonged to a session that no longer
    /// exists; the new owner resumes after the committed token).
    ///
    /// What to do: stop writing this channel, and give up the source position it stood for
    /// (a Kafka partition, a shard). Call [`Channel::reopen`] only when you know the other
    /// writer is gone (it would in turn be fenced), then replay after the token it returns.
    ///
    /// [`Channel::reopen`]: crate::Channel::reopen
    #[error(
        "channel {channel} is now written by another client: {reason}; this handle sends \
         nothing more (last committed offset token: {})",
        display_token(.last_committed.as_ref())
    )]
    OwnershipLost {
        /// The channel's name.
        channel: String,
        /// What showed it.
        reason: String,
        /// The last offset token the server reported committed.
        last_committed: Option<OffsetToken>,
        /// The server's answer that showed it, if it was an answer.
        #[source]
        source: Option<Arc<Self>>,
    },

    /// The client's memory budget is full: a non-blocking append was refused. Wait for
    /// in-flight data to be committed (or use the awaiting `append_*` methods) and retry.
    #[error("memory budget full: {requested} bytes requested, {available} of {budget} available")]
    Backpressure {
        /// Bytes the append needed.
        requested: usize,
        /// Bytes free in the budget when it was refused.
        available: usize,
        /// The configured budget.
        budget: usize,
    },

    /// A single row is larger than one append request may carry: over `max_request_bytes`
    /// uncompressed and over it compressed too (`size` is then the compressed size), or over
    /// the largest row sent alone (64 MiB, or half the memory budget).
    #[error("row of {size} bytes exceeds the {max} byte limit; split it (a row larger than a request goes alone only when it compresses into max_request_bytes and is at most 64 MiB)")]
    RowTooLarge {
        /// The row's serialized size in bytes.
        size: usize,
        /// The largest size accepted.
        max: usize,
        /// Index of the row within the append call, when known.
        row_index: Option<usize>,
    },

    /// A row could not be serialized to JSON (or raw input was not valid NDJSON).
    #[error("row {row_index} cannot be serialized: {message}")]
    Serialization {
        /// Index of the row within the append call.
        row_index: usize,
        /// What is wrong.
        message: String,
        /// The serializer's error, if any.
        #[source]
        source: Option<BoxError>,
    },

    /// The server answered with an error that is not retryable, or retries were exhausted.
    #[error("{0}")]
    Server(Box<ServerError>),

    /// The request could not be completed over the network (connect, TLS, DNS, timeout),
    /// after retries. [`std::error::Error::source`] leads to the underlying cause (the DNS,
    /// TLS or socket error).
    #[error(transparent)]
    Transport(Box<TransportError>),

    /// Waiting for something (a commit, a flush, a close) took longer than allowed.
    #[error("timed out after {waited:?} waiting for {operation}")]
    Timeout {
        /// What was being waited for.
        operation: &'static str,
        /// How long it waited.
        waited: Duration,
    },

    /// A SQL statement failed or was cancelled (the [`sql`](crate::sql) module, feature
    /// `sql`): inspect its Snowflake code and SQLSTATE.
    #[cfg(feature = "sql")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sql")))]
    #[error(transparent)]
    Sql(Box<SqlError>),

    /// The client or channel has been closed.
    #[error("{what} is closed")]
    Shutdown {
        /// What was closed (`"client"` or `"channel NAME"`).
        what: String,
    },
}

/// An optional offset token as an error message shows it.
fn display_token(token: Option<&OffsetToken>) -> String {
    token.map_or_else(
        || "none".to_owned(),
        |t| format!("{:?}", t.as_ref() as &str),
    )
}

/// Details of an error response from Snowflake (or retries exhausted against one).
#[derive(Debug)]
#[non_exhaustive]
pub struct ServerError {
    /// The HTTP status code.
    pub status: u16,
    /// The Snowflake error code from the body (`code` or `error_code`), if any.
    pub code: Option<String>,
    /// The message from the body (or a short description of a non-JSON body).
    pub message: String,
    /// The `requestId` sent with the request (same across its retries).
    pub request_id: Option<String>,
    /// The operation, e.g. `"append rows"` or `"open channel"`.
    pub operation: &'static str,
    /// How many attempts were made.
    pub attempts: u32,
}

impl std::fmt::Display for ServerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed with HTTP {}", self.operation, self.status)?;
        if let Some(code) = &self.code {
            write!(f, " {code}")?;
        }
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        if let Some(id) = &self.request_id {
            write!(f, " [request id {id}]")?;
        }
        Ok(())
    }
}

/// What kind of network failure a [`TransportError`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum TransportErrorKind {
    /// Could not connect (DNS, refused, unreachable...). The request was not sent.
    Connect,
    /// The request timed out; it may have reached the server.
    Timeout,
    /// The connection broke while sending or receiving; it may have reached the server.
    Interrupted,
    /// The response body could not be read or decoded.
    Decode,
    /// Anything else.
    Other,
    /// The TLS handshake failed: typically the server's certificate is not trusted (a private
    /// CA not configured with `root_ca_pem`/`root_ca_file` or `SSL_CERT_FILE`) or does not
    /// match the host. Not retried; fix the configuration.
    Tls,
}

/// Details of a network failure.
#[derive(Debug)]
#[non_exhaustive]
pub struct TransportError {
    /// The kind of failure.
    pub kind: TransportErrorKind,
    /// The operation, e.g. `"append rows"`.
    pub operation: &'static str,
    /// A description (never contains URLs with tokens or credentials).
    pub message: String,
    /// The `requestId` sent with the request.
    pub request_id: Option<String>,
    /// How many attempts were made.
    pub attempts: u32,
    /// The underlying error.
    pub source: Option<BoxError>,
}

impl std::fmt::Display for TransportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} failed: {}", self.operation, self.message)?;
        if self.attempts > 1 {
            write!(f, " (after {} attempts)", self.attempts)?;
        }
        Ok(())
    }
}

impl std::error::Error for ServerError {}

impl std::error::Error for TransportError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl Error {
    /// Builds an [`Error::Config`] without a source.
    pub(crate) fn config(setting: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Config {
            setting: setting.into(),
            message: message.into(),
            source: None,
        }
    }

    /// Builds an [`Error::Config`] with its underlying cause.
    pub(crate) fn config_caused(
        setting: impl Into<String>,
        message: impl Into<String>,
        source: impl Into<BoxError>,
    ) -> Self {
        Self::Config {
            setting: setting.into(),
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An [`Error::Config`] whose message starts with `prefix` (where the setting was read:
    /// a file, a section); any other error as it is.
    pub(crate) fn config_prefixed(self, prefix: &str) -> Self {
        match self {
            Self::Config {
                setting,
                message,
                source,
            } => Self::Config {
                setting,
                message: format!("{prefix}: {message}"),
                source,
            },
            other => other,
        }
    }

    /// Builds an [`Error::InvalidArgument`].
    pub(crate) fn invalid_argument(what: &'static str, message: impl Into<String>) -> Self {
        Self::InvalidArgument {
            what,
            message: message.into(),
        }
    }

    /// Builds an [`Error::Auth`] without a source.
    pub(crate) fn auth(message: impl Into<String>) -> Self {
        Self::Auth {
            message: message.into(),
            source: None,
        }
    }

    /// Builds an [`Error::Shutdown`].
    pub(crate) fn shutdown(what: impl Into<String>) -> Self {
        Self::Shutdown { what: what.into() }
    }

    /// Whether trying the same operation again later may succeed without any change:
    /// backpressure, timeouts, network failures (transport kinds `Connect`, `Timeout` and
    /// `Interrupted`) and retryable server statuses (408, 429, 5xx). Configuration, auth,
    /// data and invalidation errors are not retryable, and neither are a TLS failure
    /// (`Tls`: a configuration problem), a malformed response (`Decode`) or a request that
    /// could not be built (`Other`).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Backpressure { .. } | Self::Timeout { .. } => true,
            Self::Transport(t) => matches!(
                t.kind,
                TransportErrorKind::Connect
                    | TransportErrorKind::Timeout
                    | TransportErrorKind::Interrupted
            ),
            Self::Server(e) => matches!(e.status, 408 | 429 | 500..=599),
            _ => false,
        }
    }

    /// Whether the channel must be reopened before it can be used again.
    pub fn is_channel_invalidated(&self) -> bool {
        matches!(self, Self::ChannelInvalidated { .. })
    }

    /// Whether another writer opened the channel and this handle was fenced
    /// ([`Error::OwnershipLost`]).
    pub fn is_ownership_lost(&self) -> bool {
        matches!(self, Self::OwnershipLost { .. })
    }

    /// The HTTP status of a server error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Server(e) => Some(e.status),
            Self::ChannelInvalidated {
                source: Some(src), ..
            }
            | Self::OwnershipLost {
                source: Some(src), ..
            } => src.status(),
            _ => None,
        }
    }

    /// The Snowflake error code of a server error (e.g. `STALE_CONTINUATION_TOKEN_SEQUENCER`).
    pub fn snowflake_code(&self) -> Option<&str> {
        match self {
            Self::Server(e) => e.code.as_deref(),
            Self::ChannelInvalidated {
                source: Some(src), ..
            }
            | Self::OwnershipLost {
                source: Some(src), ..
            } => src.snowflake_code(),
            _ => None,
        }
    }

    /// The `requestId` of the failed request, for Snowflake support.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            Self::Server(e) => e.request_id.as_deref(),
            Self::Transport(e) => e.request_id.as_deref(),
            _ => None,
        }
    }

    /// For [`Error::ChannelInvalidated`] and [`Error::OwnershipLost`]: the last offset token
    /// the server reported committed (replay after it when you reopen).
    pub fn last_committed_offset_token(&self) -> Option<&OffsetToken> {
        match self {
            Self::ChannelInvalidated { last_committed, .. }
            | Self::OwnershipLost { last_committed, .. } => last_committed.as_ref(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn _assert_send_sync<T: Send + Sync + 'static>() {}

    #[test]
    fn error_is_send_sync_and_small() {
        _assert_send_sync::<Error>();
        assert!(
            std::mem::size_of::<Error>() <= 96,
            "Error grew to {} bytes; box the large parts",
            std::mem::size_of::<Error>()
        );
    }

    #[test]
    fn retryable_classification() {
        let server = |status| {
            Error::Server(Box::new(ServerError {
                status,
                code: None,
                message: String::new(),
                request_id: None,
                operation: "append rows",
                attempts: 1,
            }))
        };
        assert!(server(503).is_retryable());
        assert!(server(429).is_retryable());
        assert!(!server(400).is_retryable());
        assert!(!Error::config("url", "bad").is_retryable());
        let transport = |kind| {
            Error::Transport(Box::new(TransportError {
                kind,
                operation: "append rows",
                message: String::new(),
                request_id: None,
                attempts: 1,
                source: None,
            }))
        };
        assert!(transport(TransportErrorKind::Connect).is_retryable());
        assert!(transport(TransportErrorKind::Timeout).is_retryable());
        assert!(transport(TransportErrorKind::Interrupted).is_retryable());
        assert!(!transport(TransportErrorKind::Decode).is_retryable());
        assert!(!transport(TransportErrorKind::Other).is_retryable());
        assert!(!transport(TransportErrorKind::Tls).is_retryable());
    }
}

// The SQL API's error detail lives here, beside `Error`, so that `error` depends on no
// other module (`sql` re-exports it).
/// Why a statement failed.
#[cfg(feature = "sql")]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum SqlErrorKind {
    /// Snowflake rejected or failed the statement (HTTP 422): a compilation error, a
    /// missing object or privilege, a runtime error.
    Failed,
    /// The statement ran longer than its timeout and was cancelled (HTTP 408).
    Timeout,
    /// The answer was not a SQL API result.
    Protocol,
}

/// A failed statement: [`Error::Sql`].
#[cfg(feature = "sql")]
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SqlError {
    /// What went wrong.
    pub kind: SqlErrorKind,
    /// Snowflake's error code, e.g. `002003` (object does not exist).
    pub code: Option<String>,
    /// The SQLSTATE, e.g. `42S02`.
    pub sql_state: Option<String>,
    /// Snowflake's message.
    pub message: String,
    /// The statement handle, when Snowflake assigned one.
    pub statement_handle: Option<String>,
}

#[cfg(feature = "sql")]
impl std::fmt::Display for SqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self.kind {
            SqlErrorKind::Failed => "SQL statement failed",
            SqlErrorKind::Timeout => "SQL statement timed out",
            SqlErrorKind::Protocol => "unexpected SQL API answer",
        })?;
        match (&self.code, &self.sql_state) {
            (Some(code), Some(state)) => write!(f, " ({code}, SQLSTATE {state})")?,
            (Some(code), None) => write!(f, " ({code})")?,
            _ => {}
        }
        write!(f, ": {}", self.message)
    }
}

#[cfg(feature = "sql")]
impl std::error::Error for SqlError {}
