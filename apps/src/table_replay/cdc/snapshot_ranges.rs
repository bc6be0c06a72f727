//! A snapshot read by several readers at once (`--snapshot-readers`): past one connection's
//! read, the table is cut into ranges of its first key column, each read by a reader of its
//! own (a connection, each page its own snapshot transaction and position, `snapshot_tx.rs`),
//! and each reader's rows go to lanes of its own (`snapshot_lanes.rs`).
//!
//! **The plan** (`snapshot_plan.rs`): the ranges, recorded before the first row, so a
//! restart reads the same ones.
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
//! reader does with the table's last row (`snapshot_lanes.rs`); the plan is then recorded
//! done too (`snapshot_plan.rs`).

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};
use snowpipe_streaming::LaneStream;
use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::table_replay::cdc::changes::Origin;
use crate::table_replay::cdc::key::{Pager, TokenKey};
use crate::table_replay::cdc::snapshot_lanes::Lanes;
use crate::table_replay::cdc::snapshot_page::{self, PageWriter};
use crate::table_replay::cdc::snapshot_plan::Plan;
use crate::table_replay::cdc::snapshot_tx;
use crate::table_replay::cdc::token::BinlogPos;
use crate::table_replay::cdc::Followed;
use crate::table_replay::source;

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
        let mut taken = snapshot_tx::begin(&mut conn).await?;
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
            taken = snapshot_tx::start(&mut conn).await?;
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
        snapshot_page::land(conn, f, lanes, r, page.finish()).await?;
    }
    while let Some(joined) = tasks.join_next().await {
        joined.context("a snapshot reader stopped")?;
    }
    Ok(n)
}
