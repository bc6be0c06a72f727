//! Ownership: how a channel's actor learns that another writer opened its channel, and why
//! that is final for this handle.
//!
//! Snowflake lets one writer at a time append to a channel: an open, by anyone, bumps the
//! channel's client sequencer, discards what the previous session had not committed, and
//! makes the previous holder's continuation token stale (`docs/protocol.md`, "Ownership").
//! Two answers show that this handle has been fenced that way:
//!
//! * an append answered 400 `STALE_CONTINUATION_TOKEN_SEQUENCER`;
//! * a committed offset token this handle never sent: neither the token its session started
//!   from nor the end token of one of its batches. After this handle's open discarded every
//!   other session's uncommitted rows, only a writer that opened the channel later can have
//!   committed it.
//!
//! Either fails the channel with [`Error::OwnershipLost`]. The actor does not reopen: a
//! reopen would fence the other writer in turn, and both would go on appending from their
//! own positions in the source, which duplicates rows. The batches it kept for replay are
//! dropped: they belong to a session that no longer exists, and the new owner resumes after
//! the committed token.
//!
//! The automatic reopens that remain (server-side invalidation and lost responses, see
//! `recovery`) hold the same rule. Before reopening, the actor reads the channel's status, so
//! a writer that was fenced while it was paused does not take the channel back from one that
//! has committed since. After reopening, it replays only when the committed token is one of its
//! own. When the other writer had not yet committed anything, the reopen fences it instead;
//! that writer then fails with `OwnershipLost`, and exactly one of the two goes on from a
//! position consistent with the table.

use std::cmp::Ordering;
use std::collections::VecDeque;

use super::Actor;
use crate::channel::shared::FailureKind;
use crate::{Error, OffsetToken};

/// The server's answer to an append from a session that another open has replaced.
pub(super) const STALE_SEQUENCER: &str = "STALE_CONTINUATION_TOKEN_SEQUENCER";

/// How many end tokens of released batches the actor remembers. A status poll that was still
/// running across a commit can report an earlier token of this handle's. Polls of one channel
/// overlap at most by one, so a few suffice.
pub(super) const RELEASED_ENDS: usize = 8;

/// Whether an append's error says another open replaced this handle's session.
pub(super) fn is_fenced(e: &Error) -> bool {
    matches!(e, Error::Server(s) if s.code.as_deref() == Some(STALE_SEQUENCER))
}

/// Remembers the end token of a batch the server committed, in `ends` (the last
/// [`RELEASED_ENDS`]).
pub(super) fn remember_released(ends: &mut VecDeque<OffsetToken>, end: OffsetToken) {
    if ends.len() == RELEASED_ENDS {
        ends.pop_front();
    }
    ends.push_back(end);
}

impl Actor {
    /// Whether this handle's session can have committed `committed`: it is the token the
    /// session started from, the end token of a batch it sent, or a token older than the start
    /// (an answer to a status poll that was running across a reopen).
    pub(super) fn committed_is_ours(&self, committed: Option<&OffsetToken>) -> bool {
        let base = self.base.as_ref();
        if committed == base {
            return true;
        }
        // A committed token that disappeared: the channel was dropped and created again.
        let Some(c) = committed else {
            return false;
        };
        let sent = self
            .retained
            .iter()
            .chain(self.inflight.iter().map(|f| &f.batch))
            .filter_map(|b| b.end.as_ref());
        if sent.chain(self.released_ends.iter()).any(|e| e == c) {
            return true;
        }
        base.is_some_and(|b| c.partial_cmp_numeric(b) == Some(Ordering::Less))
    }

    /// Fails the channel with [`Error::OwnershipLost`] when the committed token is not one of
    /// this handle's (see the module docs). `when` says when it was read (e.g. "after reopening
    /// the channel"). Returns whether the channel is still this handle's. A channel that has
    /// already failed is not checked: its batches are gone, so its own tokens are unknown.
    pub(super) fn check_owner(&mut self, committed: Option<&OffsetToken>, when: &str) -> bool {
        if self.failed() || self.committed_is_ours(committed) {
            return !self.failed();
        }
        let shown = committed.map_or_else(
            || "no committed offset token (the channel was dropped and created again)".to_owned(),
            |c| format!("offset token {:?} committed", c.as_str()),
        );
        self.fail_as(
            FailureKind::OwnershipLost,
            format!(
                "{when}, the server reports {shown}, which this handle never sent: another \
                 writer opened the channel and wrote to it"
            ),
            None,
        );
        false
    }

    /// An append was answered `STALE_CONTINUATION_TOKEN_SEQUENCER`: another open replaced
    /// this handle's session.
    pub(super) fn fenced(&mut self, e: Error) {
        let retried = matches!(&e, Error::Server(s) if s.attempts > 1);
        let reason = if retried {
            "the server answered STALE_CONTINUATION_TOKEN_SEQUENCER: another client opened \
             the channel after this one (or the server had applied an earlier attempt of this \
             retried append)"
        } else {
            "the server answered STALE_CONTINUATION_TOKEN_SEQUENCER: another client opened \
             the channel after this one"
        };
        self.fail_as(FailureKind::OwnershipLost, reason.into(), Some(e));
    }
}
