//! The binlog goes on for the tables already copied while others are snapshotted: a table
//! added to `--table`, one read again (`--resnapshot`), one whose binlog was purged
//! (`--resnapshot-purged`). A first snapshot of every table has nothing to go on with.
//!
//! Two reads of the source at once: the snapshot's (`snapshot.rs`) and a binlog stream of
//! the copied tables alone (`stream_all`, with no idle end: it stops when the snapshot is
//! done, or when `follow` is stopped). Then the hand-over, as after a lost connection: each
//! streamed table's last appended change is what it has, and the caller's stream of every
//! table reads from the earliest transaction any table needs (the new snapshot's position,
//! earlier), skipping on each table every change at or before what it has. So a change the
//! first stream appended is not written again, and one after it is written once.

use std::future::Future;

use anyhow::Result;

use crate::common::say::say;
use crate::table_replay::cdc::snapshot::{self, Reading};
use crate::table_replay::cdc::snapshot_lanes;
use crate::table_replay::cdc::statement::Names;
use crate::table_replay::cdc::token::Token;
use crate::table_replay::cdc::{stream_all, FollowOptions, Followed};

/// Snapshots the tables of `tables` that need it (no complete snapshot) on `conn`, the binlog
/// going on meanwhile for the rest until the snapshot is done or `stop`; `tables` keeps its
/// order.
///
/// # Errors
/// Reading whether a snapshot over lanes is complete; the snapshot's, or the stream's (the
/// other then stops too: what either committed stays, and a restart goes on from it).
///
/// # Cancellation
/// Dropping the future stops both; `tables` then lacks the tables they held.
pub(super) async fn snapshot(
    conn: &mut mysql_async::Conn,
    opts: &FollowOptions,
    (db, names): (&str, Names),
    tables: &mut Vec<Followed<'_>>,
    stop: impl Future<Output = ()>,
) -> Result<()> {
    let how = Reading {
        batch: opts.batch,
        lanes: opts.snapshot_lanes,
        readers: opts.snapshot_readers,
        source: &opts.source,
    };
    // A snapshot over lanes may be complete with its change channel's token not done (its
    // last row on another lane): the lanes' statuses say.
    let mut needs = Vec::with_capacity(tables.len());
    for f in tables.iter() {
        needs.push(snapshot::needs(f) && !snapshot_lanes::finished(f).await?);
    }
    if needs.iter().all(|&n| n) || !needs.iter().any(|&n| n) {
        return snapshot::where_needed(conn, tables, &how).await.map(drop);
    }
    let (need, mut rest): (Vec<_>, Vec<_>) =
        tables.drain(..).enumerate().partition(|(i, _)| needs[*i]);
    for (_, f) in &mut rest {
        if let Some(Token::Snapshot { resume, .. }) = &f.committed {
            // Complete (its lanes or plan say so), as `snapshot::where_needed` leaves it.
            snapshot::completed(f, resume.clone());
        }
    }
    let (need_at, mut need): (Vec<usize>, Vec<_>) = need.into_iter().unzip();
    let (rest_at, mut rest): (Vec<usize>, Vec<_>) = rest.into_iter().unzip();
    let listed = |v: &[Followed<'_>]| {
        let names: Vec<&str> = v.iter().map(|f| f.table.name.as_str()).collect();
        names.join(", ")
    };
    say!(
        "the binlog goes on for {} while {} is snapshotted",
        listed(&rest),
        listed(&need)
    );
    let (done, snapshot_done) = tokio::sync::oneshot::channel::<()>();
    let snapshotting = async {
        let taken = snapshot::where_needed(conn, &mut need, &how).await;
        drop(done);
        taken.map(drop)
    };
    let ongoing = FollowOptions {
        until_idle: None,
        ..opts.clone()
    };
    let until = async move {
        tokio::select! {
            _ = snapshot_done => {}
            () = stop => {}
        }
    };
    let streaming = stream_all(&ongoing, (db, names), &mut rest, until);
    let handed = tokio::try_join!(snapshotting, streaming).and_then(|_| {
        // What the first stream appended is what each table has: not written again.
        for f in &mut rest {
            if let Some(last) = &f.last {
                f.committed = Some(Token::parse(last.as_str())?);
            }
        }
        Ok(())
    });
    let mut back: Vec<_> = need_at
        .into_iter()
        .zip(need)
        .chain(rest_at.into_iter().zip(rest))
        .collect();
    back.sort_by_key(|(i, _)| *i);
    tables.extend(back.into_iter().map(|(_, f)| f));
    if handed.is_ok() {
        say!("snapshot done: the binlog of every table goes on from the earliest one needs");
    }
    handed
}
