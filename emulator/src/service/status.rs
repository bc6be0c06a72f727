//! What `GET /` shows: pipes (default pipes once used), channels with their counters, table
//! row counts, sink counters.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::channels::ChannelKey;

use super::Shared;

impl Shared {
    /// Totals over the channels whose name starts with `prefix`, read under the channels'
    /// lock without building [`status`](Self::status)'s document.
    pub(crate) fn channel_totals(&self, prefix: &str) -> crate::ChannelTotals {
        let chans = self.channels();
        let mut totals = crate::ChannelTotals::default();
        for (_, c) in chans.iter().filter(|(k, _)| k.channel.starts_with(prefix)) {
            totals.channels += 1;
            totals.committed += usize::from(c.committed.is_some());
            totals.rows_inserted += c.counters.rows_inserted;
        }
        totals
    }

    /// What `GET /` shows.
    pub(crate) fn status(&self) -> Value {
        let model = self.model();
        let pipes: Vec<Value> = model
            .catalog
            .pipes()
            .into_iter()
            .filter(|p| self.pipe_exists(p))
            .map(|p| {
                json!({"database": p.database, "schema": p.schema, "name": p.name,
                       "table": p.table, "is_default": p.is_default})
            })
            .collect();
        let mut chans: Vec<Value> = {
            let chans = self.channels();
            let mut keys: Vec<&ChannelKey> = chans.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| {
                    let c = &chans[k];
                    let mut v = c.status_json(k);
                    v["pending_batches"] = c.pending.len().into();
                    v["pending_rows"] = c.pending_rows().into();
                    v["client_sequencer"] = c.client_seq.into();
                    v["fenced_appends"] = c.fenced_appends.into();
                    v["reused_token_appends"] = c.reused_token_appends.into();
                    v["offset_span_violations"] = c.offset_span_violations.into();
                    v["retried_appends"] = c.retried_appends.into();
                    let [echoed, missing, stale] = c.session_echoes;
                    v["sessions"] = json!({"echoed": echoed, "missing": missing, "stale": stale});
                    v["recent_commits"] = c
                        .recent_commits
                        .iter()
                        .map(|(token, us)| json!({"token": token, "committed_at_us": us}))
                        .collect();
                    v
                })
                .collect()
        };
        chans.shrink_to_fit();
        let tables: Vec<Value> = {
            let rows = self
                .state
                .table_rows
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<Value> = model
                .catalog
                .tables()
                .map(|t| {
                    let q = t.qualified_name();
                    json!({"name": q, "rows": rows.get(&q).copied().unwrap_or(0)})
                })
                .collect();
            v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            v
        };
        json!({
            "emulator": "snowpipe-emulator",
            "version": env!("CARGO_PKG_VERSION"),
            "mode": if self.settings.sink { "sink" } else { "store" },
            "database_file": self.storage.as_ref().and_then(|s| s.path()).map(|p| p.display().to_string()),
            "pipes": pipes,
            "channels": chans,
            "tables": tables,
            "sink": {"rows": self.sink_counts.rows.load(Ordering::Relaxed), "bytes": self.sink_counts.bytes.load(Ordering::Relaxed)},
            "requests": self.requests.total(),
            "pending_bytes": self.state.pending_budget.used(),
            "stage": self.stage.stats(),
            "faults_fired": self.faults.fired(),
            "fenced_appends": self.state.fenced_appends.load(Ordering::Relaxed),
        })
    }
}
