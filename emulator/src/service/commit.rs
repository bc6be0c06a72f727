//! Commits: due batches written with their channels' new committed tokens in one SQLite
//! transaction, each on its own task so a client hanging up cannot leave stored rows with an
//! unpublished token.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channels;
use crate::storage::{self, TableInsert};

use super::Shared;

impl Shared {
    /// Commits every due batch: rows and channel state in one SQLite transaction.
    pub(crate) async fn commit_due(self: &Arc<Self>) {
        self.commit_until(Instant::now()).await;
    }

    /// Commits every pending batch, due or not (graceful shutdown: a 200 meant "durably
    /// buffered").
    pub(crate) async fn commit_all(self: &Arc<Self>) {
        self.commit_until(Instant::now() + Duration::from_secs(365 * 24 * 3600))
            .await;
    }

    /// Commits the batches due by `until`.
    ///
    /// A commit, once started, runs to its end on its own task: a caller cancelled midway (an
    /// append whose client hung up while its batch was being committed) must not leave the
    /// rows stored but the channel's committed token unpublished — the next open would then
    /// report an older token and the client's replay would store those rows twice.
    pub(super) async fn commit_until(self: &Arc<Self>, until: Instant) {
        let me = Arc::clone(self);
        let task = tokio::spawn(async move { me.commit_until_now(until).await });
        if let Err(e) = task.await {
            tracing::error!(error = %e, "commit task failed");
        }
    }

    async fn commit_until_now(&self, until: Instant) {
        let _commit = self.state.commit_lock.lock().await;
        let plan = {
            let mut chans = self.channels();
            channels::take_due(&mut chans, until, self.clock.now_ms())
        };
        let Some(plan) = plan else { return };
        if let Some(st) = &self.storage {
            let inserts: Vec<TableInsert> = plan
                .inserts
                .into_values()
                .map(|(t, rows)| TableInsert {
                    insert_sql: t.insert_sql.clone(),
                    table: t.qualified.clone(),
                    identities: t.identities.clone(),
                    rows,
                })
                .collect();
            let records: Vec<_> = plan.records.iter().map(|(_, r)| r.clone()).collect();
            match st
                .run(move |c| storage::write_commit(c, &inserts, &records))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "commit failed; the batch is lost");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "commit failed; the batch is lost");
                    return;
                }
            }
        }
        {
            let mut rows = self
                .state
                .table_rows
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            for (t, n) in &plan.rows_per_table {
                *rows.entry(t.clone()).or_default() += n;
            }
        }
        let mut chans = self.channels();
        channels::apply_records(&mut chans, &plan.records, self.clock.now_us());
    }

    /// The earliest time a pending batch becomes due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.channels()
            .values()
            .filter_map(|c| c.pending.front().map(|b| b.0.ready_at))
            .min()
    }
}
