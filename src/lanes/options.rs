//! How a lane stream is opened: how its records find their lane, and the options each lane's
//! channel is opened with.

use crate::channel::OpenChannelOptions;
#[cfg(doc)]
use crate::{LaneStream, Pipe};

/// How a [`LaneStream`]'s records find their lane.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum LaneRouting {
    /// By key ([`LaneStream::lane_of`]: FNV-1a modulo the count), or to a lane the caller
    /// names. The first open records the count, so a reopen with another is refused (it
    /// would send keys to lanes whose tokens say nothing about them), and
    /// [`LaneStream::resize`] changes it by drain and hand-over.
    #[default]
    Keyed,
    /// By the caller's own rule, one under which a record's lane never changes when the
    /// count does: `snowpipe load`'s range `k` on lane `k mod 16` with at most 16 lanes, a
    /// snapshot's chunks on lanes it names and keeps. Nothing is recorded: the stream opens
    /// with any count, lanes past it keep their tokens (read them with
    /// [`Pipe::channel_statuses`]), new lanes start empty, and a lane may be opened on its
    /// own ([`Pipe::open_lane`]) when the caller loads lanes at different times. A stream
    /// opened once with [`Keyed`](Self::Keyed) is refused (its layout moves keys), as are
    /// [`LaneStream::append_keyed`] and [`LaneStream::resize`] (reopen with the new count).
    Caller,
}

/// Options for [`Pipe::open_lanes_with`].
#[derive(Debug, Clone, Default)]
#[non_exhaustive]
pub struct OpenLanesOptions {
    /// How records find their lane (default [`LaneRouting::Keyed`]).
    pub routing: LaneRouting,
    /// The options every lane's channel is opened with. Its `offset_token` must be unset:
    /// each lane keeps its own token.
    pub channel: OpenChannelOptions,
}

impl OpenLanesOptions {
    /// Sets [`routing`](Self::routing).
    #[must_use]
    pub fn routing(mut self, routing: LaneRouting) -> Self {
        self.routing = routing;
        self
    }

    /// Sets [`channel`](Self::channel).
    #[must_use]
    pub fn channel(mut self, options: OpenChannelOptions) -> Self {
        self.channel = options;
        self
    }
}
