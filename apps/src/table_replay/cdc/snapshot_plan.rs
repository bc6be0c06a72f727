//! A snapshot's plan: the key ranges its readers read (`snapshot_ranges.rs`), and whether it
//! is complete, recorded as the committed token of the channel `<CHANNEL>_ranges`, set
//! without a row (as the SDK records a lane layout).
//!
//! A new snapshot over several lanes (MariaDB: a position per transaction) cuts the first key
//! column's span, `MIN` to `MAX` as its first transaction sees them, into `R` even ranges
//! (the first from below every value, the last past every value), and records them before
//! any row: `r:B1,…:FILE:POS`, the bounds and the snapshot's resume position. A restart of
//! that snapshot (the same resume position) reads the same ranges, whatever the flag says; a
//! snapshot under way with no plan of its own (begun by one reader, or by a release before
//! readers) goes on with one reader.
//!
//! **Complete.** The table's last row marks the snapshot done on its lane (`S:…`,
//! `snapshot_lanes.rs`), but not always: the reader that finishes last may read no row in its
//! last page, or its last row may be a dead letter. So once every lane committed, the plan is
//! recorded again marked done (`R:…`; one reader's, `R::FILE:POS`, for a snapshot without
//! one), and a restart finds the snapshot complete there too.

use anyhow::{bail, Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Value};
use snowpipe_streaming::{OffsetToken, OpenChannelOptions};

use crate::common::say::say;
use crate::table_replay::cdc::changes;
use crate::table_replay::cdc::token::BinlogPos;
use crate::table_replay::cdc::Followed;
use crate::table_replay::source::quote;

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
    pub(super) fn readers(&self) -> usize {
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
    pub(super) fn range(&self, r: usize) -> (Option<Value>, Option<Value>) {
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

/// The plan of `f`'s snapshot over `lanes` lanes resuming at `resume`: the one recorded for
/// it; else, for a snapshot of which no lane committed a row (`fresh`), a new one of up to `readers` readers (at most one a lane),
/// recorded before any row (`per_page`: the server gives each transaction its position, so
/// each reader's pages are at their own); else none (one reader).
///
/// # Errors
/// The plan channel's status or open; a token there that is not a plan; a plan of more
/// readers than lanes; the span's query.
pub(super) async fn plan(
    conn: &mut Conn,
    f: &Followed<'_>,
    (lanes, resume, fresh): (usize, &BinlogPos, bool),
    (readers, per_page): (usize, bool),
) -> Result<Option<Plan>> {
    if lanes == 1 {
        return Ok(None);
    }
    let name = plan_name(&f.table.name);
    if let Some(plan) = recorded(f, resume).await? {
        if plan.readers() > lanes {
            bail!(
                "{}'s snapshot plan ({name}) has {} readers for {} lanes: {}",
                f.table.name,
                plan.readers(),
                lanes,
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
    let readers = readers.min(lanes);
    if readers < 2 || !per_page || !fresh {
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
        resume: resume.clone(),
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
