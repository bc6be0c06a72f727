//! An in-memory destination with the server semantics the streamer relies on: appends commit
//! after a delay, and reopening a channel discards what the previous handle had not committed.
//! It can also fence a channel as if another process had opened it (the SDK's `OwnershipLost`).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use async_trait::async_trait;
use bytes::Bytes;

use crate::ski_resort::model::Table;
use crate::ski_resort::streamer::{Destination, DestinationChannel};

#[derive(Debug, Default)]
struct FakeTable {
    generation: u64,
    /// The generation another writer took over, if any.
    fenced: Option<u64>,
    token: Option<u64>,
    /// TXIDs of committed rows, in commit order.
    rows: Vec<String>,
    pending: Vec<(u64, Instant, u64, Vec<String>)>,
}

/// The fake server shared by all handles.
#[derive(Debug, Clone)]
pub(super) struct FakeDestination {
    tables: Arc<Mutex<[FakeTable; 3]>>,
    commit_delay: Duration,
    /// Invalidate the channel on every n-th append (server-side invalidation).
    fail_every: Option<u64>,
    /// Fence the channel of the n-th append: another writer opened it.
    fence_at: Option<u64>,
    appends: Arc<std::sync::atomic::AtomicU64>,
}

impl FakeDestination {
    /// A fake that commits each append `commit_delay` after it arrives.
    pub(super) fn new(commit_delay: Duration) -> Self {
        FakeDestination {
            tables: Arc::default(),
            commit_delay,
            fail_every: None,
            fence_at: None,
            appends: Arc::default(),
        }
    }

    /// Like [`FakeDestination::new`], but every `n`-th append invalidates the channel: it
    /// fails, and what the channel had not committed is discarded.
    pub(super) fn failing_every(commit_delay: Duration, n: u64) -> Self {
        FakeDestination {
            fail_every: Some(n),
            ..Self::new(commit_delay)
        }
    }

    /// Like [`FakeDestination::new`], but the `n`-th append finds its channel opened by another
    /// writer: it and every later append of that handle fail with `OwnershipLost`.
    pub(super) fn fenced_at(commit_delay: Duration, n: u64) -> Self {
        FakeDestination {
            fence_at: Some(n),
            ..Self::new(commit_delay)
        }
    }

    /// TXIDs committed to `table`.
    pub(super) fn committed_txids(&self, table: Table) -> Vec<String> {
        let mut tables = self.tables.lock().unwrap();
        commit_due(&mut tables[table.index()]);
        tables[table.index()].rows.clone()
    }
}

fn commit_due(t: &mut FakeTable) {
    let now = Instant::now();
    let generation = t.generation;
    let (due, rest): (Vec<_>, Vec<_>) = std::mem::take(&mut t.pending)
        .into_iter()
        .partition(|(g, at, _, _)| *g == generation && *at <= now);
    t.pending = rest
        .into_iter()
        .filter(|(g, ..)| *g == generation)
        .collect();
    for (_, _, last, txids) in due {
        t.rows.extend(txids);
        t.token = Some(last);
    }
}

/// A handle from [`FakeDestination::open`].
#[derive(Debug)]
pub(super) struct FakeChannel {
    dest: FakeDestination,
    table: Table,
    generation: u64,
}

#[async_trait]
impl Destination for FakeDestination {
    type Channel = FakeChannel;

    async fn open(&self, table: Table) -> Result<FakeChannel> {
        let mut tables = self.tables.lock().unwrap();
        let t = &mut tables[table.index()];
        t.generation += 1;
        t.pending.clear();
        Ok(FakeChannel {
            dest: self.clone(),
            table,
            generation: t.generation,
        })
    }
}

#[async_trait]
impl DestinationChannel for FakeChannel {
    fn committed(&self) -> Result<Option<u64>> {
        let mut tables = self.dest.tables.lock().unwrap();
        let t = &mut tables[self.table.index()];
        commit_due(t);
        Ok(t.token)
    }

    async fn append(&mut self, ndjson: Bytes, first: u64, last: u64) -> Result<()> {
        let txids = std::str::from_utf8(&ndjson)?
            .lines()
            .map(|l| {
                Ok(serde_json::from_str::<serde_json::Value>(l)?["TXID"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string())
            })
            .collect::<Result<Vec<_>>>()?;
        assert!(first <= last && txids.len() as u64 <= last - first + 1);
        let mut tables = self.dest.tables.lock().unwrap();
        let t = &mut tables[self.table.index()];
        if t.generation != self.generation {
            bail!("channel invalidated by a newer open");
        }
        let n = self
            .dest
            .appends
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        if self.dest.fence_at == Some(n) {
            t.fenced = Some(self.generation);
        }
        if t.fenced == Some(self.generation) {
            commit_due(t);
            return Err(snowpipe_streaming::Error::OwnershipLost {
                channel: format!("{}_CHANNEL", self.table.name()),
                reason: "another client opened the channel".into(),
                last_committed: t.token.map(snowpipe_streaming::OffsetToken::from),
                source: None,
            }
            .into());
        }
        if self.dest.fail_every.is_some_and(|every| n % every == 0) {
            t.generation += 1;
            bail!("channel invalidated by the server (append {n})");
        }
        t.pending.push((
            self.generation,
            Instant::now() + self.dest.commit_delay,
            last,
            txids,
        ));
        Ok(())
    }

    async fn flush(&mut self) -> Result<()> {
        Ok(())
    }

    async fn close(self) -> Result<()> {
        Ok(())
    }
}
