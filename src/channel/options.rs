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
    /// When `Some(true)`, the open fails (HTTP 409, `ERR_CHANNEL_HAS_UNCOMMITTED_DATA`) if the
    /// channel still has rows the server accepted but has not committed, instead of discarding
    /// them. `None` (default) leaves it to the server, whose default is `false`.
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
