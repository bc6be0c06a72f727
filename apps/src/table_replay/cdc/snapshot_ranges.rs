//! A snapshot read by several readers at once (`--snapshot-readers`): past one connection's
//! read, the table is cut into ranges of its first key column, each read by a reader of its
//! own (a connection, each page its own snapshot transaction and position, `snapshot.rs`),
//! and each reader's rows go to lanes of its own (`snapshot_lanes.rs`).
//!
//! **The plan.** A new snapshot over several lanes (MariaDB: a position per transaction)
//! cuts the first key column's span, `MIN` to `MAX` as its first transaction sees them, into
//! `R` even ranges (the first from below every value, the last past every value), and records
//! them before any row: the committed token of the channel `<CHANNEL>_ranges`, set without a
//! row (`r:B1,…:FILE:POS`, the bounds and the snapshot's resume position). A restart of that
//! snapshot (the same resume position) reads the same ranges, whatever the flag says; a
//! snapshot under way with no plan of its own (begun by one reader, or by a release before
//! readers) goes on with one reader.
//!
//! **Which lane.** Reader `r` owns the lanes `j` with `j mod R = r` and spreads its rows over
//! them by key (`LaneStream::lane_among`). Each lane is one reader's, and a reader reads its
//! range in key order, so each lane sees its keys in increasing order and its committed token
//! says which of its rows landed: a restart reads each range after the least committed key of
//! its reader's lanes and leaves out a row its lane committed, as one reader does over all.
//!
//! **Dead letters.** Reader `r`'s go to a dead-letter channel of its own
//! (`dead_letters.rs`), so each channel's committed token is one reader's, in its key order,
//! as `dead_resume.rs` needs.
//!
//! **Complete.** The last reader to reach its range's end holds its last row until every lane
//! has committed the rows before it, then appends it with the done token (`S:…`), as one
//! reader does with the table's last row (`snapshot_lanes.rs`). That row may be a dead letter,
//! or that reader's last page may hold none, so once every lane committed, the plan is
//! recorded again marked done (`R:…`; one reader's, `R::FILE:POS`, for a snapshot without
//! one): a restart finds the snapshot complete there too.

use anyhow::{bail, Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use snowpipe_streaming::{LaneStream, OffsetToken, OpenChannelOptions};
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::common::say::say;
use crate::table_replay::cdc::changes::{self, Origin};
use crate::table_replay::cdc::key::{Pager, TokenKey};
use crate::table_replay::cdc::snapshot::{self, PageWriter};
use crate::table_replay::cdc::snapshot_lanes::Lanes;
use crate::table_replay::cdc::token::BinlogPos;
use crate::table_replay::cdc::Followed;
use crate::table_replay::source::{self, quote};

/// The most readers `--snapshot-readers` takes (a source connection each).
pub const MAX_READERS: u16 = 16;

/// A snapshot's ranges: reader `r` reads the rows whose first key column is at least
/// `bounds[r - 1]` (none for the first) and below `bounds[r]` (none for the last).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Plan {
    resume: BinlogPos,
    bounds: Vec<i128>,
    /// Every lane committed every row of the snapshot (recorded after the last commit).
    done: bool,
}

impl Plan {
    fn readers(&self) -> usize {
        self.bounds.len() + 1
    }

    /// `r:B1,…:FILE:POS` (`R:` once done; a binlog file name holds no `:` before its
    /// position's).
    fn render(&self) -> String {
        let bounds: Vec<String> = self.bounds.iter().map(i128::to_string).collect();
        let tag = if self.done { "R" } else { "r" };
        format!("{tag}:{}:{}", bounds.join(","), self.resume)
    }

    fn parse(text: &str) -> Option<Self> {
        let (done, rest) = match text.split_at_checked(2)? {
            ("r:", rest) => (false, rest),
            ("R:", rest) => (true, rest),
            _ => return None,
        };
        let (bounds, at) = rest.split_once(':')?;
        let (file, pos) = at.rsplit_once(':')?;
        let bounds = match bounds {
            "" => Vec::new(),
            some => some
                .split(',')
                .map(str::parse)
                .collect::<Result<Vec<i128>, _>>()
                .ok()?,
        };
        let sorted = bounds.windows(2).all(|w| w[0] <= w[1]);
        let pos = pos.parse().ok()?;
        (sorted && !file.is_empty() && bounds.len() < usize::from(MAX_READERS)).then(|| Self {
            resume: BinlogPos {
                file: file.to_owned(),
                pos,
            },
            bounds,
            done,
        })
    }

    /// Reader `r`'s bounds as the pager binds them.
    fn range(&self, r: usize) -> (Option<Value>, Option<Value>) {
        let value = |b: i128| match i64::try_from(b) {
            Ok(v) => Value::Int(v),
            Err(_) => Value::UInt(u64::try_from(b).unwrap_or(u64::MAX)),
        };
        let lo = r.checked_sub(1).map(|i| value(self.bounds[i]));
        let hi = self.bounds.get(r).copied().map(value);
        (lo, hi)
    }
}

/// The channel whose token records the plan of a table's snapshot.
fn plan_name(table: &str) -> String {
    format!("{}_ranges", changes::channel_name(table))
}

/// Cuts `lo..=hi` into `readers` even ranges: the `readers - 1` bounds between them.
fn cut(lo: i128, hi: i128, readers: usize) -> Vec<i128> {
    let n = readers as i128;
    (1..n).map(|i| lo + (hi - lo) * i / n).collect()
}

/// The plan of `f`'s snapshot over `lanes`: the one recorded for it; else, for a snapshot of
/// which no lane committed a row, a new one of up to `readers` readers (at most one a lane),
/// recorded before any row (`per_page`: the server gives each transaction its position, so
/// each reader's pages are at their own); else none (one reader).
///
/// # Errors
/// The plan channel's status or open; a token there that is not a plan; a plan of more
/// readers than lanes; the span's query.
pub(super) async fn plan(
    conn: &mut Conn,
    f: &Followed<'_>,
    lanes: &Lanes,
    (readers, per_page): (usize, bool),
) -> Result<Option<Plan>> {
    if lanes.count() == 1 {
        return Ok(None);
    }
    let name = plan_name(&f.table.name);
    if let Some(plan) = recorded(f, &lanes.resume).await? {
        if plan.readers() > lanes.count() {
            bail!(
                "{}'s snapshot plan ({name}) has {} readers for {} lanes: {}",
                f.table.name,
                plan.readers(),
                lanes.count(),
                changes::new_snapshot_fix([f.table.name.as_str()])
            );
        }
        say!(
            "{}: snapshot read by {} readers (its plan, {name})",
            f.table.name,
            plan.readers()
        );
        return Ok(Some(plan));
    }
    let readers = readers.min(lanes.count());
    if readers < 2 || !per_page || !lanes.fresh() {
        return Ok(None);
    }
    let column = quote(&f.table.columns[f.table.keys[0]].name);
    let span: Option<(Option<String>, Option<String>)> = conn
        .query_first(format!(
            "SELECT CAST(MIN({column}) AS CHAR), CAST(MAX({column}) AS CHAR) FROM {}",
            quote(&f.table.name)
        ))
        .await
        .with_context(|| format!("cannot read the span of {}'s key", f.table.name))?;
    let number = |v: Option<String>| v.and_then(|v| v.parse::<i128>().ok());
    let (lo, hi) = span.map_or((None, None), |(lo, hi)| (number(lo), number(hi)));
    let plan = Plan {
        resume: lanes.resume.clone(),
        bounds: cut(lo.unwrap_or(0), hi.unwrap_or(0), readers),
        done: false,
    };
    record(f, &plan).await?;
    say!(
        "{}: snapshot read by {readers} readers over ranges of {column} ({name})",
        f.table.name
    );
    Ok(Some(plan))
}

/// The plan recorded for `f`'s snapshot resuming at `resume`, if any.
///
/// # Errors
/// The plan channel's status; a token there that is not a plan (naming the fix).
async fn recorded(f: &Followed<'_>, resume: &BinlogPos) -> Result<Option<Plan>> {
    let name = plan_name(&f.table.name);
    let statuses = f
        .pipe
        .channel_statuses(&[&name])
        .await
        .with_context(|| format!("cannot read {}'s snapshot plan ({name})", f.table.name))?;
    let Some(token) = statuses
        .get(&name)
        .and_then(|s| s.committed_offset_token.clone())
    else {
        return Ok(None);
    };
    let plan = Plan::parse(token.as_str()).with_context(|| {
        format!(
            "the channel {name} holds {token}, not follow's snapshot plan: was it written by \
             another tool? {}",
            changes::new_snapshot_fix([f.table.name.as_str()])
        )
    })?;
    Ok((plan.resume == *resume).then_some(plan))
}

/// Records `plan` as the token of `f`'s plan channel (no row).
async fn record(f: &Followed<'_>, plan: &Plan) -> Result<()> {
    let name = plan_name(&f.table.name);
    let token = OffsetToken::new(plan.render())?;
    f.pipe
        .open_channel_with(&name, OpenChannelOptions::default().offset_token(token))
        .await
        .with_context(|| format!("cannot record {}'s snapshot plan ({name})", f.table.name))?
        .close()
        .await?;
    Ok(())
}

/// Whether `f`'s snapshot resuming at `resume` was recorded complete ([`record_complete`]).
///
/// # Errors
/// As [`recorded`].
pub(super) async fn complete(f: &Followed<'_>, resume: &BinlogPos) -> Result<bool> {
    Ok(recorded(f, resume).await?.is_some_and(|p| p.done))
}

/// Records `f`'s snapshot over several lanes complete, once every lane committed its rows:
/// its plan (`plan`, or one reader's) marked done. The table's last row marks a snapshot done
/// on its lane too (`snapshot_lanes.rs`), but not always: the last reader to finish may have
/// read no row in its last page, or its last row may be a dead letter.
///
/// # Errors
/// The plan channel's open.
pub(super) async fn record_complete(
    f: &Followed<'_>,
    plan: Option<Plan>,
    resume: &BinlogPos,
) -> Result<()> {
    let plan = plan.unwrap_or_else(|| Plan {
        resume: resume.clone(),
        bounds: Vec::new(),
        done: false,
    });
    record(f, &Plan { done: true, ..plan }).await
}

/// A page one reader read: its rows, the position and time of its transaction, and whether
/// it reached its range's end.
struct Read {
    reader: usize,
    rows: Vec<Vec<Value>>,
    at: BinlogPos,
    now: i64,
    end: bool,
}

/// Reads reader `reader`'s range after `after`, `batch` rows a page, each page in its own
/// snapshot transaction on `conn`, sending each page to `pages` (an error too, then stops).
async fn read(
    mut conn: Conn,
    (pager, keys): (Pager, Vec<usize>),
    (reader, mut after, batch): (usize, Vec<Value>, usize),
    pages: mpsc::Sender<Result<Read>>,
) {
    let result = async {
        let mut taken = snapshot::begin(&mut conn).await?;
        loop {
            let mut rows: Vec<Vec<Value>> = pager
                .page(&mut conn, &after, batch + 1)
                .await?
                .into_iter()
                .map(Row::unwrap)
                .collect();
            conn.query_drop("COMMIT").await?;
            let end = rows.len() <= batch;
            rows.truncate(batch);
            if let Some(last) = rows.last() {
                after = keys.iter().map(|&k| last[k].clone()).collect();
            }
            let read = Read {
                reader,
                rows,
                at: taken.at.clone(),
                now: taken.now,
                end,
            };
            if pages.send(Ok(read)).await.is_err() || end {
                return anyhow::Ok(());
            }
            taken = snapshot::start(&mut conn).await?;
        }
    }
    .await;
    if let Err(e) = result {
        let _ = pages
            .send(Err(e.context(format!("snapshot reader {reader}"))))
            .await;
    }
}

/// Snapshots `f` by `plan`'s readers over `lanes`, each on a connection of its own to
/// `source`, `batch` rows a page; `conn` (its snapshot transaction ended here) asks about dead
/// letters. Returns how many rows were read and not already committed.
///
/// # Errors
/// A reader's source error, a key of no key type, a failed append or dead letter.
///
/// # Cancellation
/// Dropping the future stops the readers (their connections closed); what was committed
/// stays, and a restart goes on from it.
pub(super) async fn table(
    (conn, source): (&mut Conn, &str),
    f: &mut Followed<'_>,
    lanes: &mut Lanes,
    plan: &Plan,
    batch: usize,
) -> Result<u64> {
    // No transaction held for the whole table: the readers' pages have their own.
    conn.query_drop("COMMIT").await?;
    let (readers, count) = (plan.readers(), lanes.count());
    let own: Vec<Vec<usize>> = (0..readers)
        .map(|r| (r..count).step_by(readers).collect())
        .collect();
    let mut keys: Vec<TokenKey> = own.iter().map(|o| lanes.start_of(o)).collect();
    let (sender, mut pages) = mpsc::channel(readers);
    let mut tasks = JoinSet::new();
    for (r, key) in keys.iter().enumerate() {
        let conn = source::connect(source)
            .await
            .with_context(|| format!("snapshot reader {r} of {}", f.table.name))?;
        let pager = (Pager::within(&f.table, plan.range(r)), f.table.keys.clone());
        tasks.spawn(read(conn, pager, (r, key.values()?, batch), sender.clone()));
    }
    drop(sender);
    let resume = lanes.resume.clone();
    let (mut running, mut n) = (readers, 0);
    while let Some(read) = pages.recv().await {
        let read = read?;
        let r = read.reader;
        running -= usize::from(read.end);
        let origin = Origin::read(&read.at, read.now, f.epoch);
        let mut page = PageWriter::new(lanes, &resume, batch / own[r].len() + 1);
        let last = read.rows.len().checked_sub(1);
        for (i, values) in read.rows.iter().enumerate() {
            let key_values: Vec<_> = f.table.keys.iter().map(|&k| &values[k]).collect();
            keys[r] = keys[r]
                .next(&key_values)
                .with_context(|| format!("the key of a row of {}", f.table.name))?;
            let lane = own[r][LaneStream::lane_among(keys[r].key.as_bytes(), own[r].len())];
            let done = running == 0 && Some(i) == last;
            n += page.write(f, (lane, &keys[r]), values, (&origin, done))?;
        }
        snapshot::land(conn, f, lanes, r, page.finish()).await?;
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a snapshot reader stopped")?;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_round_trips_and_refuses_what_is_not_one() {
        let plan = Plan {
            resume: BinlogPos {
                file: "bin.000004".into(),
                pos: 1_234,
            },
            bounds: vec![-5, 0, u64::MAX as i128],
            done: false,
        };
        assert_eq!(
            plan.render(),
            format!("r:-5,0,{}:bin.000004:1234", u64::MAX)
        );
        assert_eq!(Plan::parse(&plan.render()), Some(plan.clone()));
        assert_eq!(plan.readers(), 4);
        assert_eq!(plan.range(0), (None, Some(Value::Int(-5))));
        assert_eq!(plan.range(3), (Some(Value::UInt(u64::MAX)), None));
        let done = Plan {
            done: true,
            bounds: Vec::new(),
            ..plan.clone()
        };
        assert_eq!(done.render(), "R::bin.000004:1234");
        assert_eq!(Plan::parse(&done.render()), Some(done));
        for bad in [
            "é",
            "r:",
            "r:1:x",
            "r:2,1:f:1",
            "r:a:f:1",
            "s:1:f:1",
            "r:1::1",
            "r:1:f:-1",
        ] {
            assert_eq!(Plan::parse(bad), None, "{bad}");
        }
        let too_many = format!("r:{}:f:1", vec!["1"; 16].join(","));
        assert_eq!(Plan::parse(&too_many), None);
    }

    #[test]
    fn ranges_cut_the_span_evenly_and_cover_every_key() {
        assert_eq!(cut(1, 1_000_001, 4), vec![250_001, 500_001, 750_001]);
        assert_eq!(cut(0, 0, 3), vec![0, 0]);
        let wide = cut(i64::MIN as i128, u64::MAX as i128, 16);
        assert!(wide.windows(2).all(|w| w[0] < w[1]), "{wide:?}");
    }
}
