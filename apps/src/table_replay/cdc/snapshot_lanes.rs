//! A snapshot spread over several channels ("lanes") of the change table's pipe, past one
//! channel's paced 20 MB/s: lane 0 is the table's change channel, lane `j` is `<CHANNEL>_<j>`
//! (the SDK's `LaneStream` names and opens them). The count is recorded when a new snapshot
//! opens its lanes (the stream's layout), so a restart goes on with that count whatever
//! `--snapshot-lanes` says; a change channel with a token but no layout (a snapshot begun by
//! a release before lanes, or with one lane) goes on with one lane.
//!
//! **Which row, which lane.** A row goes to the lane of its key's token text
//! (`LaneStream::lane_among`), never by where a page or a restart cuts the table, so each
//! lane sees its keys in increasing order and its committed token says which of its rows
//! landed. Lanes are for keys of integer columns that never repeat (a primary or unique key):
//! those compare exactly without the server (`TokenKey::covers`). A text or binary key
//! compares in its collation, and `--key` columns may repeat: those tables take one lane.
//!
//! **Restart.** Each lane's committed key of this snapshot is read; the table is read again
//! after the least of them (from the start when a lane has none), and a row whose lane has
//! committed its key is left out.
//!
//! **Which snapshot.** Lane 0's snapshot token names the snapshot (the binlog position its
//! tokens resume at); without one, the other lanes' do (a snapshot whose lane 0 had
//! committed nothing yet), unless the table takes a new snapshot (`--resnapshot`, after a
//! purge): their tokens are then the old snapshot's, at an earlier position (`--resnapshot`
//! first waits for the binlog to move: `snapshot::binlog_moves`). Such a new snapshot waits
//! for its `p` row to commit on lane 0 before any row goes to another lane, so a restart finds
//! it named.
//!
//! **Complete.** The table's last row is held back until every lane has committed the rows
//! before it, then appended (its token done, `S:…`) and waited for. So a lane whose committed
//! token is done means every row of the snapshot is committed; the binlog (lane 0 alone)
//! begins only after that. Once every lane committed, the snapshot is also recorded complete
//! in its plan channel (`snapshot_plan.rs`), for when the last row marks no lane: it was a
//! dead letter, or the last page read none.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::future::try_join_all;
use snowpipe_streaming::{Channel, LaneStream, OffsetToken};

use crate::common::say::say;
use crate::table_replay::cdc::key::TokenKey;
use crate::table_replay::cdc::rejected::{Kind, Rejected};
use crate::table_replay::cdc::token::{BinlogPos, Token};
use crate::table_replay::cdc::{changes, Followed};
use crate::table_replay::row_text::Page;
use crate::table_replay::schema::Kind as ColumnKind;

/// How long the snapshot waits for its lanes to commit what they were given.
const COMMIT_WAIT: Duration = Duration::from_secs(120);

/// A table's snapshot lanes.
pub(super) struct Lanes {
    /// Lanes 1 and on (lane 0 is `Followed::channel`).
    others: Vec<Lane>,
    /// Lane 0's committed key of this snapshot.
    first: Option<TokenKey>,
    /// The binlog position this snapshot's tokens resume at.
    pub(super) resume: BinlogPos,
    /// A lane committed the snapshot's last row: nothing is left to read.
    pub(super) complete: bool,
}

/// One lane past the first.
struct Lane {
    channel: Channel,
    /// Its committed key of this snapshot.
    committed: Option<TokenKey>,
    /// The last token appended to it in this run.
    appended: Option<OffsetToken>,
    rejected: Rejected,
}

/// Whether `f`'s rows can be spread over lanes: a key of integer columns that never repeat.
fn spreadable(f: &Followed<'_>) -> bool {
    !f.keyed_by_user
        && f.table
            .keys
            .iter()
            .all(|&k| matches!(f.table.columns[k].kind, ColumnKind::Int { .. }))
}

/// Opens `f`'s snapshot lanes: the count recorded, else `wanted` for a new snapshot of a
/// table whose rows can be spread (else one lane); a new snapshot is at `at`. Lanes past
/// the first reopen `f`'s change channel as lane 0 (the same channel, a new handle).
///
/// # Errors
/// The lanes' opens or the layout's read; a lane's token that is not `follow`'s; a recorded
/// count over a table whose key can no longer be spread (naming the fix).
///
/// # Cancellation
/// Dropping the future abandons the opens; the recorded count stays.
pub(super) async fn open(f: &mut Followed<'_>, wanted: usize, at: &BinlogPos) -> Result<Lanes> {
    let base = changes::channel_name(&f.table.name);
    let recorded = f
        .pipe
        .lane_count(&base)
        .await
        .with_context(|| format!("cannot read the snapshot lanes of {}", f.table.name))?;
    let count = match recorded {
        Some(n) if n > 1 && !spreadable(f) => bail!(
            "{}'s snapshot was begun over {n} lanes, but its key is no longer integer columns \
             that never repeat: {}",
            f.table.name,
            changes::new_snapshot_fix([f.table.name.as_str()])
        ),
        Some(n) => n,
        None if f.committed.is_some() || !spreadable(f) => 1,
        None => wanted.max(1),
    };
    if count == 1 {
        return Ok(match &f.committed {
            Some(Token::Snapshot { resume, key, .. }) => Lanes {
                others: Vec::new(),
                first: Some(key.clone()),
                resume: resume.clone(),
                complete: false,
            },
            _ => Lanes {
                others: Vec::new(),
                first: None,
                resume: at.clone(),
                complete: false,
            },
        });
    }
    // Lane 0 is the change channel, opened by `follow` with nothing appended yet: closed and
    // opened again as the stream's first lane (a client opens a channel once at a time).
    if let Some(channel) = f.channel.take() {
        channel
            .close()
            .await
            .context("closing a change channel failed")?;
    }
    let stream = f
        .pipe
        .open_lanes(&base, count)
        .await
        .with_context(|| format!("cannot open {count} snapshot lanes of {}", f.table.name))?;
    say!(
        "{}: snapshot over {count} lanes ({base} and {} …)",
        f.table.name,
        LaneStream::lane_name(&base, 1)
    );
    let mut channels = stream.into_lanes().into_iter();
    let first = channels.next().context("a stream without lane 0")?;
    f.rejected.rewatch(&f.table.name, Kind::Changes, &first);
    f.channel = Some(first);
    let theirs = channels
        .map(|channel| {
            let token = channel
                .latest_committed_offset_token()
                .map(|t| Token::parse(t.as_str()))
                .transpose()?;
            Ok((channel, token))
        })
        .collect::<Result<Vec<_>>>()?;
    let snapshot_of = |t: &Option<Token>| match t {
        Some(Token::Snapshot { resume, .. }) => Some(resume.clone()),
        _ => None,
    };
    let resume = match snapshot_of(&f.committed) {
        Some(resume) => resume,
        None if f.resnapshot => at.clone(),
        None => theirs
            .iter()
            .find_map(|(_, t)| snapshot_of(t))
            .unwrap_or_else(|| at.clone()),
    };
    // This snapshot's committed key of a lane, and whether it is the last row.
    let of_this = |t: &Option<Token>| match t {
        Some(Token::Snapshot {
            resume: r,
            key,
            done,
        }) if *r == resume => Some((key.clone(), *done)),
        _ => None,
    };
    // A lane's committed key: none before its first row (a `p` row's empty key).
    let mut complete = false;
    let mut key_of = |t: &Option<Token>| {
        of_this(t)
            .map(|(key, done)| {
                complete |= done;
                key
            })
            .filter(|k| !k.key.is_empty())
    };
    let first = key_of(&f.committed);
    let mut others = Vec::new();
    for (channel, token) in theirs {
        let committed = key_of(&token);
        let rejected = Rejected::watch(&f.table.name, Kind::Changes, &channel);
        others.push(Lane {
            channel,
            committed,
            appended: None,
            rejected,
        });
    }
    Ok(Lanes {
        others,
        first,
        resume,
        complete,
    })
}

/// Whether the snapshot `f`'s change channel names is complete: a lane committed its last
/// row (`S:`, the same resume position), or its plan says so (`snapshot_plan.rs`). Lane 0's
/// token alone does not say: the last row is on the lane of its key. Read from the
/// channels' statuses; nothing is opened.
///
/// # Errors
/// The layout's or the statuses' read.
pub(super) async fn finished(f: &Followed<'_>) -> Result<bool> {
    let Some(Token::Snapshot { resume, done, .. }) = &f.committed else {
        return Ok(false);
    };
    if *done {
        return Ok(true);
    }
    let base = changes::channel_name(&f.table.name);
    let Some(count) = f.pipe.lane_count(&base).await? else {
        return Ok(false);
    };
    let names: Vec<String> = (1..count)
        .map(|j| LaneStream::lane_name(&base, j))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let statuses = f.pipe.channel_statuses(&names).await?;
    let lane_done = statuses
        .values()
        .filter_map(|s| s.committed_offset_token.as_ref())
        .filter_map(|t| Token::parse(t.as_str()).ok())
        .any(|t| matches!(t, Token::Snapshot { resume: r, done: true, .. } if &r == resume));
    Ok(lane_done || crate::table_replay::cdc::snapshot_plan::complete(f, resume).await?)
}

/// The least of the lanes' committed keys (integers: `TokenKey::covers` decides), or before
/// every key when a lane has none.
fn least<'a>(committed: impl IntoIterator<Item = Option<&'a TokenKey>>) -> TokenKey {
    let Some(keys) = committed.into_iter().collect::<Option<Vec<_>>>() else {
        return TokenKey::default();
    };
    keys.iter()
        .find(|k| keys.iter().all(|o| o.covers(k)))
        .map(|&k| k.clone())
        .unwrap_or_default()
}

impl Lanes {
    /// How many lanes.
    pub(super) fn count(&self) -> usize {
        1 + self.others.len()
    }

    /// The lane of the row whose token key is `key`.
    pub(super) fn lane_of(&self, key: &TokenKey) -> usize {
        match self.count() {
            1 => 0,
            n => LaneStream::lane_among(key.key.as_bytes(), n),
        }
    }

    /// The key the table is read after: one lane's committed key, or the least of the
    /// lanes' (every key when a lane has none).
    pub(super) fn start(&self) -> TokenKey {
        if self.count() == 1 {
            return self.first.clone().unwrap_or_default();
        }
        least(
            std::iter::once(self.first.as_ref())
                .chain(self.others.iter().map(|l| l.committed.as_ref())),
        )
    }

    /// Whether no lane committed a row of this snapshot (a `p` row aside).
    pub(super) fn fresh(&self) -> bool {
        !self.complete && self.first.is_none() && self.others.iter().all(|l| l.committed.is_none())
    }

    /// The key a reader of the lanes `of` reads after: the least of their committed keys
    /// (every key when one has none), as [`start`](Self::start) for them alone.
    pub(super) fn start_of(&self, of: &[usize]) -> TokenKey {
        least(of.iter().map(|&j| match j {
            0 => self.first.as_ref(),
            j => self.others[j - 1].committed.as_ref(),
        }))
    }

    /// Whether lane `lane` committed the row whose token key is `key` (one lane: never, the
    /// read starts after its committed key).
    pub(super) fn has(&self, lane: usize, key: &TokenKey) -> bool {
        let committed = match lane {
            _ if self.count() == 1 => None,
            0 => self.first.as_ref(),
            j => self.others[j - 1].committed.as_ref(),
        };
        committed.is_some_and(|c| c.covers(key))
    }

    /// Appends each lane's page (lane 0's last), after `f`'s dead letters before them are
    /// committed.
    ///
    /// # Errors
    /// A dead letter's or a lane's append.
    pub(super) async fn append(&mut self, f: &mut Followed<'_>, pages: Vec<Page>) -> Result<()> {
        f.dead.settle().await?;
        let mut pages = pages.into_iter();
        let first = pages.next().unwrap_or_default();
        for (lane, page) in self.others.iter_mut().zip(pages) {
            let Some(last) = page.last_token().cloned() else {
                continue;
            };
            f.changes += page.len() as u64;
            let (rows, positions) = page.into_append();
            lane.channel
                .append(rows, positions)
                .await
                .with_context(|| format!("append to a snapshot lane of {} failed", f.table.name))?;
            lane.appended = Some(last);
        }
        f.append(first).await
    }

    /// Appends `page` (one row) to lane `lane`.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub(super) async fn append_to(
        &mut self,
        f: &mut Followed<'_>,
        lane: usize,
        page: Page,
    ) -> Result<()> {
        let mut pages: Vec<Page> = (0..self.count()).map(|_| Page::default()).collect();
        pages[lane] = page;
        self.append(f, pages).await
    }

    /// Waits until every lane has committed what this run appended to it.
    ///
    /// # Errors
    /// A lane that did not commit within two minutes, or failed.
    ///
    /// # Cancellation
    /// Safe: nothing changes by waiting.
    pub(super) async fn wait(&self, f: &Followed<'_>) -> Result<()> {
        let lanes = std::iter::once((f.channel(), f.last.as_ref())).chain(
            self.others
                .iter()
                .map(|l| (&l.channel, l.appended.as_ref())),
        );
        try_join_all(lanes.map(|(channel, last)| async move {
            let Some(last) = last else {
                return Ok(());
            };
            channel.flush().await?;
            channel.wait_for_commit(last, COMMIT_WAIT).await
        }))
        .await
        .with_context(|| {
            format!(
                "{}'s snapshot lanes did not commit within {}s",
                f.table.name,
                COMMIT_WAIT.as_secs()
            )
        })?;
        Ok(())
    }

    /// Waits for every lane to commit, closes the lanes past the first and adds the rows
    /// the server rejected on them to `f`'s.
    ///
    /// # Errors
    /// As [`wait`](Self::wait); a lane's close.
    pub(super) async fn close(self, f: &Followed<'_>) -> Result<()> {
        if self.others.is_empty() {
            return Ok(());
        }
        self.wait(f).await?;
        for lane in self.others {
            let status = lane.channel.status();
            lane.channel
                .close()
                .await
                .with_context(|| format!("closing a snapshot lane of {} failed", f.table.name))?;
            f.rejected.absorb(&lane.rejected.finish(&status).await);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(text: &str) -> TokenKey {
        TokenKey::parse(text).unwrap()
    }

    #[test]
    fn a_restart_reads_after_the_least_committed_key_and_from_the_start_when_a_lane_has_none() {
        let (k9, k40, k7) = (key("9/0"), key("40/0"), key("7/0"));
        assert_eq!(least([Some(&k9), Some(&k40), Some(&k7)]), k7);
        assert_eq!(least([Some(&k9), None, Some(&k7)]), TokenKey::default());
        // Composite integer keys compare column by column.
        let (a, b) = (key("2,10/0"), key("2,9/0"));
        assert_eq!(least([Some(&a), Some(&b)]), b);
        // Keys that do not compare without the server (never given lanes): from the start.
        let (x, y) = (key("x61/0"), key("x62/0"));
        assert_eq!(least([Some(&x), Some(&y)]), TokenKey::default());
    }

    #[test]
    fn consecutive_integer_keys_spread_over_every_lane() {
        let mut per_lane = [0; 4];
        for i in 1..=4_000 {
            per_lane[LaneStream::lane_among(format!("{i}").as_bytes(), 4)] += 1;
        }
        // FNV-1a of the key's text: each lane within a fifth of its even share.
        for (lane, n) in per_lane.iter().enumerate() {
            assert!(
                (800..=1200).contains(n),
                "lane {lane}: {n} of 4000 keys: {per_lane:?}"
            );
        }
    }
}
