//! Options for opening a channel.

#[cfg(doc)]
use crate::Error;
use crate::OffsetToken;

/// Options for opening a channel.
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenChannelOptions {
    /// Reset the channel's committed offset token to this value at open.
    pub offset_token: Option<OffsetToken>,
    /// What the open does when the channel still has rows the server accepted but has not
    /// committed (another writer's, or a crashed process's, in flight):
    /// * `None` (default), the official SDK's policy: the open asks the server not to discard
    ///   them (`fail_on_uncommitted_rows: true`), retries its 409
    ///   `ERR_CHANNEL_HAS_UNCOMMITTED_DATA` within the client's retry budget while they
    ///   commit, and if they are still uncommitted after that, opens with `false`, discarding
    ///   them. Rows in flight are thus committed rather than thrown away, which also spares
    ///   the channels that share the server's resources (the REST reference).
    /// * `Some(true)`: the same, but the open fails with that 409 instead of discarding.
    /// * `Some(false)`: the rows in flight are discarded at once (the behaviour before 0.2:
    ///   the fastest open, for a writer that replays them anyway).
    ///
    /// Either way the committed offset token the open returns says which rows are in the
    /// table, so exactly-once replay holds.
    pub fail_on_uncommitted_rows: Option<bool>,
    /// Accept appends larger than one request whose offset tokens do not say which rows each
    /// request carries (sparse, single or non-numeric tokens over many rows): they are split
    /// anyway, only the last request carrying the end token. Such an append is delivered
    /// **at least once**: if the channel is invalidated, or the process dies, after some of its
    /// requests were committed, the replay stores those rows again. Default `false`: such an
    /// append is refused with [`Error::InvalidArgument`] (see `docs/GUARANTEES.md`).
    pub at_least_once_splits: bool,
}

impl OpenChannelOptions {
    /// Sets [`fail_on_uncommitted_rows`](Self::fail_on_uncommitted_rows).
    #[must_use]
    pub fn fail_on_uncommitted_rows(mut self, fail: bool) -> Self {
        self.fail_on_uncommitted_rows = Some(fail);
        self
    }

    /// Sets [`at_least_once_splits`](Self::at_least_once_splits).
    #[must_use]
    pub fn at_least_once_splits(mut self, allow: bool) -> Self {
        self.at_least_once_splits = allow;
        self
    }

    /// Sets [`offset_token`](Self::offset_token).
    #[must_use]
    pub fn offset_token(mut self, token: impl Into<OffsetToken>) -> Self {
        self.offset_token = Some(token.into());
        self
    }
}
