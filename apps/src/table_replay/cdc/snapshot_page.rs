//! One snapshot page's rows written to their lanes (`snapshot_lanes.rs`), then landed: its
//! dead letters first, committed, then the rows, then the held last row.

use anyhow::Result;
use mysql_async::{Conn, Value};
use snowpipe_streaming::OffsetToken;

use crate::table_replay::cdc::changes::Origin;
use crate::table_replay::cdc::dead_letters::DeadChange;
use crate::table_replay::cdc::dead_resume;
use crate::table_replay::cdc::key::TokenKey;
use crate::table_replay::cdc::snapshot_lanes::Lanes;
use crate::table_replay::cdc::token::{BinlogPos, Token};
use crate::table_replay::cdc::Followed;
use crate::table_replay::row_size::ROW_BYTES_GUESS;
use crate::table_replay::row_text::Page;

/// One page's rows, written to their lanes' pages.
pub(super) struct PageWriter<'l> {
    lanes: &'l Lanes,
    resume: &'l BinlogPos,
    pages: Vec<Page>,
    /// Over several lanes, the table's last row: it waits for every lane to commit the rows
    /// before it.
    held: Option<(usize, Page)>,
    dead: Vec<DeadChange>,
}

/// What a page's rows became: each lane's page, the held last row, the dead letters.
pub(super) type Written = (Vec<Page>, Option<(usize, Page)>, Vec<DeadChange>);

impl<'l> PageWriter<'l> {
    /// A page over `lanes` of the snapshot resuming at `resume`, about `share` rows a lane.
    pub(super) fn new(lanes: &'l Lanes, resume: &'l BinlogPos, share: usize) -> Self {
        Self {
            lanes,
            resume,
            pages: (0..lanes.count())
                .map(|_| Page::with_capacity(share, ROW_BYTES_GUESS))
                .collect(),
            held: None,
            dead: Vec::new(),
        }
    }

    /// Writes the row `values`, token key `key`, to lane `lane` as a change at `origin`
    /// (`last`: the snapshot's last row, its token done): left out when that lane committed
    /// it, a dead letter when the type mapping refuses it. Returns 1 unless left out.
    ///
    /// # Errors
    /// A token too long (never for a key that fits one).
    pub(super) fn write(
        &mut self,
        f: &Followed<'_>,
        (lane, key): (usize, &TokenKey),
        values: &[Value],
        (origin, last): (&Origin<'_>, bool),
    ) -> Result<u64> {
        if self.lanes.has(lane, key) {
            return Ok(0);
        }
        let token = Token::Snapshot {
            resume: self.resume.clone(),
            key: key.clone(),
            done: last,
        };
        let target = if last && self.lanes.count() > 1 {
            &mut self.held.insert((lane, Page::default())).1
        } else {
            &mut self.pages[lane]
        };
        let at = OffsetToken::new(token.render())?;
        if let Err(reason) = f.row(target, at, values, origin) {
            self.dead
                .push(DeadChange::new(f, values, origin, token, &reason));
        }
        Ok(1)
    }

    pub(super) fn finish(self) -> Written {
        (self.pages, self.held, self.dead)
    }
}

/// Lands a page reader `reader` read: its dead letters first, committed (those an earlier run
/// committed left out, by the server's order: `dead_resume.rs`), so no lane's token passes
/// one; then each lane's rows; then the held last row, once every lane committed the rest.
///
/// # Errors
/// A dead letter's or a lane's append; a lane that did not commit in time.
pub(super) async fn land(
    conn: &mut Conn,
    f: &mut Followed<'_>,
    lanes: &mut Lanes,
    reader: usize,
    (pages, held, dead): Written,
) -> Result<()> {
    let dead = dead_resume::unsent(conn, (&f.table, f.dead.reader(reader)), dead).await?;
    f.dead.reader(reader).send(dead).await?;
    lanes.append(f, pages).await?;
    if let Some((lane, page)) = held {
        lanes.wait(f).await?;
        lanes.append_to(f, lane, page).await?;
        lanes.wait(f).await?;
    }
    Ok(())
}
