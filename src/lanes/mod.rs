//! [`LaneStream`]: one logical stream over several channels ("lanes") of one pipe, for a
//! source faster than one channel's paced 20 MB/s, exactly once across crashes and resizes.
//!
//! Each lane is a [`Channel`] of the client: the client's memory budget binds them all, their
//! metrics carry each lane's channel name, and reopening a lane fences its older holder as
//! reopening any channel does, so two writers of one stream are fenced lane by lane. Records
//! go to a lane by a key the caller gives (FNV-1a, fixed: `layout.rs`) or to a lane it names;
//! each append carries its rows' positions, which on one lane follow the one token rule
//! (`src/offset.rs`). The caller's positions must be one order across the stream (a source
//! offset, a sequence number): a lane's committed token then says which of its records landed,
//! and [`LaneStream::is_committed`] answers for any record.
//!
//! **Resize: drain and hand over.** [`LaneStream::resize`] takes the caller's boundary (every
//! record at or before it was handed to the stream), flushes every lane and waits until each
//! has committed what it was given, records the new lane count and the boundary in the
//! stream's layout (`layout.rs`: a channel's token set without a row), then closes the lanes
//! past the new count or opens the new ones. Records at or before the boundary are committed
//! whichever lane they map to now; records after it go to the new lanes. A crash at any point
//! leaves either the old layout (nothing moved) or the new one. The first open records the
//! count too, so a reopen with another count is refused rather than routing keys elsewhere.
//!
//! **Routed by the caller.** A caller whose rule never moves a record between lanes when the
//! count changes (a file's range `k` on lane `k mod 16`) opens the stream with
//! [`LaneRouting::Caller`]: nothing is recorded, any count opens, and the lanes' channels
//! are exactly those a caller that opened them one by one had, tokens and all (`snowpipe
//! load`'s lanes, written by a release before this type, reopen as a stream unchanged).

mod layout;
mod options;

use std::time::Duration;

use futures_util::future::try_join_all;
use serde::Serialize;

use crate::channel::{Channel, OpenChannelOptions, Positions, Rows};
use crate::client::Pipe;
use crate::{Error, OffsetToken, Result};

use layout::{fnv1a64, lane_name, layout_name, Layout, MAX_LANES};
pub use options::{LaneRouting, OpenLanesOptions};

/// One logical stream over `lanes()` channels of one pipe: lane 0 is the base name, lane `j`
/// is `<base>_<j>`.
///
/// ```no_run
/// # async fn run(client: snowpipe_streaming::StreamingIngestClient) -> snowpipe_streaming::Result<()> {
/// use snowpipe_streaming::{OffsetToken, Positions, Rows};
/// let pipe = client.table_pipe("DB", "PUBLIC", "EVENTS");
/// let stream = pipe.open_lanes("events", 4).await?;
/// // The source's records, each with a key and a position in one order (its offset).
/// let records = [("user-7", 100u64), ("user-9", 101), ("user-7", 102)];
/// for (key, offset) in records {
///     let lane = stream.lane_of(key.as_bytes());
///     let position = OffsetToken::from(offset);
///     // After a crash, the same stream reopened with the same count says what landed.
///     if stream.is_committed(lane, &position) {
///         continue;
///     }
///     let row = serde_json::json!({"USER": key, "OFFSET": offset});
///     stream.append(lane, Rows::serde([row]), Positions::at(position)).await?;
/// }
/// stream.close().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct LaneStream {
    pipe: Pipe,
    base: String,
    lanes: Vec<Channel>,
    /// Each lane's last position appended through this value.
    appended: Vec<std::sync::Mutex<Option<OffsetToken>>>,
    /// Records at or before it are committed (a resize's drain reached it).
    boundary: Option<OffsetToken>,
    routing: LaneRouting,
    /// What each lane's channel is opened with (a resize opens new lanes with it too).
    channel: OpenChannelOptions,
}

impl Pipe {
    /// Opens the logical stream `base` over `lanes` channels of this pipe (lane 0 is `base`,
    /// lane `j` is `<base>_<j>`), taking each over from any earlier holder.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for 0 lanes or more than [`LaneStream::MAX_LANES`], or when the stream
    /// was resized to another count (open it with that count); a lane's open errors
    /// ([`Pipe::open_channel`]).
    ///
    /// # Cancellation
    /// Dropping the future abandons the opens; lanes already opened on the server stay so.
    pub async fn open_lanes(&self, base: &str, lanes: usize) -> Result<LaneStream> {
        self.open_lanes_with(base, lanes, OpenLanesOptions::default())
            .await
    }

    /// [`open_lanes`](Self::open_lanes) with options: routed by the caller's own rule
    /// ([`LaneRouting::Caller`]: nothing recorded, any count), or each lane's channel opened
    /// with [`OpenChannelOptions`].
    ///
    /// # Errors
    /// As [`open_lanes`](Self::open_lanes) for [`LaneRouting::Keyed`]; for
    /// [`LaneRouting::Caller`], [`Error::InvalidArgument`] when the stream was opened keyed
    /// (it has a layout). [`Error::InvalidArgument`] when the channel options set an offset
    /// token.
    ///
    /// # Cancellation
    /// As [`open_lanes`](Self::open_lanes).
    pub async fn open_lanes_with(
        &self,
        base: &str,
        lanes: usize,
        options: OpenLanesOptions,
    ) -> Result<LaneStream> {
        check_count(lanes)?;
        if let Some(t) = &options.channel.offset_token {
            return Err(Error::invalid_argument(
                "offset_token",
                format!(
                    "the lanes of a stream keep their own tokens, so none is set for all ({t}): \
                     leave OpenLanesOptions::channel's offset_token unset"
                ),
            ));
        }
        let layout = match (self.layout(base).await?, options.routing) {
            (Some(l), LaneRouting::Caller) => {
                return Err(routes_by_key(
                    "routing",
                    base,
                    &l,
                    "open it with LaneRouting::Keyed",
                ));
            }
            (None, LaneRouting::Caller) => Layout {
                lanes,
                boundary: None,
            },
            (Some(l), _) if l.lanes != lanes => {
                return Err(Error::invalid_argument(
                    "lanes",
                    format!(
                        "the stream {base} has {} lanes (its layout, {}): open it with {} \
                         (then resize it if you want {lanes}); with another count its lanes' \
                         tokens would say nothing about where a key's records are",
                        l.lanes,
                        layout_name(base),
                        l.lanes
                    ),
                ));
            }
            (Some(l), _) => l,
            (None, _) => {
                // The first open records the count: a later open with another count, which
                // would route keys to other lanes, is refused.
                let first = Layout {
                    lanes,
                    boundary: None,
                };
                self.record_layout(base, &first).await?;
                first
            }
        };
        let opened = self
            .open_lanes_range(base, 0..lanes, &options.channel)
            .await?;
        Ok(LaneStream {
            pipe: self.clone(),
            base: base.to_owned(),
            appended: opened.iter().map(|_| std::sync::Mutex::new(None)).collect(),
            lanes: opened,
            boundary: layout.boundary,
            routing: options.routing,
            channel: options.channel,
        })
    }

    /// Opens lanes `range` of the stream `base`, side by side.
    async fn open_lanes_range(
        &self,
        base: &str,
        range: std::ops::Range<usize>,
        options: &OpenChannelOptions,
    ) -> Result<Vec<Channel>> {
        let names: Vec<String> = range.map(|j| lane_name(base, j)).collect();
        try_join_all(
            names
                .iter()
                .map(|n| self.open_channel_with(n, options.clone())),
        )
        .await
    }

    /// Opens lane `lane` of the caller-routed stream `base` on its own (its channel,
    /// [`LaneStream::lane_name`]), for a caller that loads its lanes at different times:
    /// `snowpipe load` opens each lane of a file as one of its `--channels` slots frees up,
    /// and closes it when the lane's ranges are done. The lane is the channel a
    /// [`LaneRouting::Caller`] stream of any count has at `lane`, token and all; `options`
    /// may set its offset token, as for any channel.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a lane at or past [`LaneStream::MAX_LANES`], or when
    /// `base` routes by key (it has a layout: open its lanes together with
    /// [`open_lanes`](Self::open_lanes), which checks the count); the layout's status call
    /// and the open's errors ([`Pipe::open_channel_with`]).
    ///
    /// # Cancellation
    /// Dropping the future abandons the open; a lane already opened on the server stays so.
    pub async fn open_lane(
        &self,
        base: &str,
        lane: usize,
        options: OpenChannelOptions,
    ) -> Result<Channel> {
        if lane >= MAX_LANES {
            return Err(Error::invalid_argument(
                "lane",
                format!("lane {lane} of {base}: a stream has at most {MAX_LANES} lanes"),
            ));
        }
        if let Some(l) = self.layout(base).await? {
            return Err(routes_by_key(
                "lane",
                base,
                &l,
                "open its lanes together with open_lanes",
            ));
        }
        self.open_channel_with(&lane_name(base, lane), options)
            .await
    }

    /// The lane count the stream `base` has recorded (its first open's, or its last
    /// resize's): the count to reopen it with after a restart. `None` when it was never
    /// opened.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `<base>_lanes` holds a token that is not a stream's
    /// layout; the status call's errors ([`Pipe::channel_statuses`]).
    ///
    /// # Cancellation
    /// Safe: it only reads.
    pub async fn lane_count(&self, base: &str) -> Result<Option<usize>> {
        Ok(self.layout(base).await?.map(|l| l.lanes))
    }

    /// Records `layout` as the stream's: the committed token of its layout channel, set by
    /// opening it with that token (no row), then closed.
    async fn record_layout(&self, base: &str, layout: &Layout) -> Result<()> {
        let recorder = self
            .open_channel_with(
                &layout_name(base),
                OpenChannelOptions::default().offset_token(layout.token()?),
            )
            .await?;
        recorder.close().await
    }

    /// The layout a resize of `base` recorded, if any.
    async fn layout(&self, base: &str) -> Result<Option<Layout>> {
        let name = layout_name(base);
        let statuses = self.channel_statuses(&[&name]).await?;
        let Some(token) = statuses
            .get(&name)
            .and_then(|s| s.committed_offset_token.clone())
        else {
            return Ok(None);
        };
        Layout::parse(&token).map(Some).ok_or_else(|| {
            Error::invalid_argument(
                "lanes",
                format!(
                    "the channel {name} holds {token}, not a stream's layout: was it written by \
                     another tool? (name the stream otherwise)"
                ),
            )
        })
    }
}

/// The refusal of a caller-routed use of the stream `base`, which routes by key (`layout`
/// recorded): `fix` first, or another name.
fn routes_by_key(argument: &'static str, base: &str, layout: &Layout, fix: &str) -> Error {
    Error::invalid_argument(
        argument,
        format!(
            "the stream {base} routes by key ({} records {} lanes): {fix}, or give the \
             caller-routed stream another name",
            layout_name(base),
            layout.lanes
        ),
    )
}

impl LaneStream {
    /// The most lanes one stream has.
    pub const MAX_LANES: usize = MAX_LANES;

    /// The channel of lane `lane` of the stream `base`: `base` for lane 0, `<base>_<lane>`
    /// after (the names `snowpipe load` gives a file's ranges).
    pub fn lane_name(base: &str, lane: usize) -> String {
        lane_name(base, lane)
    }

    /// The stream's base name.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// How its records find their lane.
    pub fn routing(&self) -> LaneRouting {
        self.routing
    }

    /// How many lanes it has.
    pub fn lanes(&self) -> usize {
        self.lanes.len()
    }

    /// Lane `lane`'s channel.
    ///
    /// # Panics
    /// When `lane` is not below [`lanes`](Self::lanes).
    pub fn lane(&self, lane: usize) -> &Channel {
        &self.lanes[lane]
    }

    /// The lane of `key`: FNV-1a (64 bits) of its bytes modulo the lane count, the same in
    /// every release.
    pub fn lane_of(&self, key: &[u8]) -> usize {
        Self::lane_among(key, self.lanes.len())
    }

    /// The lane of `key` among `lanes` lanes, as [`lane_of`](Self::lane_of) routes it: for a
    /// caller that holds the lanes' channels itself ([`into_lanes`](Self::into_lanes)).
    ///
    /// # Panics
    /// When `lanes` is 0.
    pub fn lane_among(key: &[u8], lanes: usize) -> usize {
        (fnv1a64(key) % lanes as u64) as usize
    }

    /// Records at or before this position are committed, whatever lane they map to: the
    /// boundary the last resize drained to (`None`: never resized).
    pub fn boundary(&self) -> Option<&OffsetToken> {
        self.boundary.as_ref()
    }

    /// Whether the record at `position` that maps to `lane` is committed: at or before the
    /// [`boundary`](Self::boundary), or at or before the lane's committed token (both compared
    /// as the one token rule compares: a number, or a number after one prefix).
    pub fn is_committed(&self, lane: usize, position: &OffsetToken) -> bool {
        self.boundary.as_ref().is_some_and(|b| b.reaches(position))
            || self.lanes[lane]
                .latest_committed_offset_token()
                .is_some_and(|c| c.reaches(position))
    }

    /// The least boundary a [`resize`](Self::resize) takes: the latest position any lane has
    /// committed or was given through this value (`None`: none yet). A resize at an earlier
    /// position would count records after it, committed on a lane the old count routed them
    /// to, as new ones for the new lanes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when the lanes' positions are not comparable.
    pub fn frontier(&self) -> Result<Option<OffsetToken>> {
        let appended = self.appended.iter().filter_map(|a| {
            a.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone()
        });
        latest(
            appended
                .chain(self.committed().into_iter().flatten())
                .chain(self.boundary.clone()),
        )
    }

    /// Each lane's committed token, lane by lane.
    pub fn committed(&self) -> Vec<Option<OffsetToken>> {
        self.lanes
            .iter()
            .map(Channel::latest_committed_offset_token)
            .collect()
    }

    /// Appends `rows` at `positions` to lane `lane` ([`Channel::append`]).
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a lane past the count; the lane's append errors
    /// ([`Error::OwnershipLost`] when another writer opened the stream).
    ///
    /// # Cancellation
    /// As [`Channel::append`].
    pub async fn append<I>(&self, lane: usize, rows: Rows<I>, positions: Positions) -> Result<()>
    where
        I: IntoIterator + Send,
        I::Item: Serialize,
    {
        let Some(channel) = self.lanes.get(lane) else {
            return Err(Error::invalid_argument(
                "lane",
                format!("lane {lane} of a stream of {} lanes", self.lanes.len()),
            ));
        };
        let last = positions.last_token();
        channel.append(rows, positions).await?;
        if let Some(last) = last {
            *self.appended[lane]
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(last);
        }
        Ok(())
    }

    /// Appends `rows` at `positions` to the lane of `key` ([`lane_of`](Self::lane_of)); the
    /// lane.
    ///
    /// # Errors
    /// As [`append`](Self::append); [`Error::InvalidArgument`] on a stream routed by the
    /// caller ([`LaneRouting::Caller`]: its count may change, and a key's lane with it).
    ///
    /// # Cancellation
    /// As [`Channel::append`].
    pub async fn append_keyed<I>(
        &self,
        key: &[u8],
        rows: Rows<I>,
        positions: Positions,
    ) -> Result<usize>
    where
        I: IntoIterator + Send,
        I::Item: Serialize,
    {
        if self.routing == LaneRouting::Caller {
            return Err(Error::invalid_argument(
                "routing",
                format!(
                    "the stream {} is routed by the caller: name each record's lane (append)",
                    self.base
                ),
            ));
        }
        let lane = self.lane_of(key);
        self.append(lane, rows, positions).await.map(|()| lane)
    }

    /// Sends what every lane holds ([`Channel::flush`]).
    ///
    /// # Errors
    /// A lane's flush error.
    ///
    /// # Cancellation
    /// As [`Channel::flush`].
    pub async fn flush(&self) -> Result<()> {
        try_join_all(self.lanes.iter().map(Channel::flush)).await?;
        Ok(())
    }

    /// Flushes every lane and waits until each has committed the last position appended
    /// through this value; the latest of them (`None`: nothing was appended with a position).
    ///
    /// # Errors
    /// [`Error::Timeout`] past `timeout` on a lane; a lane's failure.
    ///
    /// # Cancellation
    /// Safe: nothing is changed by waiting.
    pub async fn wait_for_commit(&self, timeout: Duration) -> Result<Option<OffsetToken>> {
        self.flush().await?;
        let waits = self.lanes.iter().zip(&self.appended).map(|(c, a)| {
            let target = a
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .clone();
            async move {
                if let Some(t) = &target {
                    c.wait_for_commit(t, timeout).await?;
                }
                Ok::<_, Error>(target)
            }
        });
        let reached = try_join_all(waits).await?;
        latest(
            reached
                .into_iter()
                .flatten()
                .chain(self.committed().into_iter().flatten()),
        )
    }

    /// Drains the stream and hands it over to `lanes` lanes (see the module docs): every lane
    /// committed, the new count and the boundary `through` recorded, the lanes past the count
    /// closed, the new ones opened. The same value when the count does not change.
    ///
    /// `through` is the caller's word that every record at or before it was handed to the
    /// stream (appended, or skipped as [`is_committed`](Self::is_committed)), and none after
    /// it: after the resize those records count as committed whatever lane they map to, so
    /// records after it must go to the new lanes only.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for a count out of range, a `through` before the
    /// [`frontier`](Self::frontier), positions that are not comparable (not numbers with one
    /// prefix: a boundary needs an order), or a stream routed by the caller (reopen it with
    /// the new count: [`LaneRouting::Caller`]); as [`wait_for_commit`](Self::wait_for_commit), a lane's open
    /// or close.
    ///
    /// # Cancellation
    /// Dropping the future leaves the old layout or the new one, never a mix: rerun the
    /// resize, or reopen with the count the layout holds.
    pub async fn resize(
        self,
        lanes: usize,
        through: &OffsetToken,
        timeout: Duration,
    ) -> Result<Self> {
        check_count(lanes)?;
        if self.routing == LaneRouting::Caller {
            return Err(Error::invalid_argument(
                "routing",
                format!(
                    "the stream {} is routed by the caller and records no count: close it and \
                     open it with {lanes} lanes",
                    self.base
                ),
            ));
        }
        if lanes == self.lanes.len() {
            return Ok(self);
        }
        self.wait_for_commit(timeout).await?;
        if let Some(f) = self.frontier()?.filter(|f| !through.reaches(f)) {
            return Err(Error::invalid_argument(
                "through",
                format!(
                    "a lane has position {f}, after the boundary {through}: resize at or after \
                     the stream's frontier ({f}), when every record up to it was handed over"
                ),
            ));
        }
        let boundary = latest(std::iter::once(through.clone()).chain(self.boundary.clone()))?;
        let layout = Layout { lanes, boundary };
        self.pipe.record_layout(&self.base, &layout).await?;
        let Self {
            pipe,
            base,
            lanes: mut open,
            routing,
            channel,
            ..
        } = self;
        if lanes < open.len() {
            let past = open.split_off(lanes);
            try_join_all(past.into_iter().map(Channel::close)).await?;
        } else {
            let new = pipe
                .open_lanes_range(&base, open.len()..lanes, &channel)
                .await?;
            open.extend(new);
        }
        Ok(Self {
            pipe,
            base,
            appended: open.iter().map(|_| std::sync::Mutex::new(None)).collect(),
            lanes: open,
            boundary: layout.boundary,
            routing,
            channel,
        })
    }

    /// The lanes' channels, lane 0 first, for a caller that drives them itself (a stream
    /// whose later life is one lane: the rest closed once they have committed). The layout
    /// stays recorded: a reopen of the stream takes the same count.
    pub fn into_lanes(self) -> Vec<Channel> {
        self.lanes
    }

    /// Closes every lane ([`Channel::close`]: what each holds is sent, not waited for).
    ///
    /// # Errors
    /// A lane's close error.
    ///
    /// # Cancellation
    /// Dropping the future drops the lanes unclosed; nothing committed is lost.
    pub async fn close(self) -> Result<()> {
        try_join_all(self.lanes.into_iter().map(Channel::close)).await?;
        Ok(())
    }
}

/// `lanes` is a stream's lane count: 1 to [`MAX_LANES`].
///
/// # Errors
/// [`Error::InvalidArgument`] otherwise.
fn check_count(lanes: usize) -> Result<()> {
    if (1..=MAX_LANES).contains(&lanes) {
        Ok(())
    } else {
        Err(Error::invalid_argument(
            "lanes",
            format!("a stream has 1 to {MAX_LANES} lanes, not {lanes}"),
        ))
    }
}

/// The latest of `tokens` by the one token rule.
///
/// # Errors
/// [`Error::InvalidArgument`] when two are not comparable.
fn latest(tokens: impl IntoIterator<Item = OffsetToken>) -> Result<Option<OffsetToken>> {
    let mut out: Option<OffsetToken> = None;
    for t in tokens {
        out = Some(match out {
            None => t,
            Some(o) => match o.partial_cmp_numeric(&t) {
                Some(std::cmp::Ordering::Less) => t,
                Some(_) => o,
                None => {
                    return Err(Error::invalid_argument(
                        "positions",
                        format!(
                            "the lanes' positions {o} and {t} have no order (a resize needs \
                             numbers, or numbers after one prefix)"
                        ),
                    ))
                }
            },
        });
    }
    Ok(out)
}

#[cfg(test)]
#[path = "lanes_tests.rs"]
mod tests;
