//! What `GET /` shows: pipes (default pipes once used), channels with their counters, table
//! row counts, sink counters. `GET /` is unauthenticated: its channels come in pages
//! (`?channels_from=N&channels_limit=M`, at most [`STATUS_PAGE_CHANNELS`] channels and
//! [`STATUS_PAGE_BYTES`] of them, strings clipped), so an answer is bounded whatever the
//! channels hold; [`crate::Emulator::status`], in process, has them all.

use std::sync::atomic::Ordering;

use serde_json::{json, Value};

use crate::channels::ChannelKey;

use super::Shared;

/// The most channels one `GET /` shows (`channels_limit`'s default and largest value).
pub(crate) const STATUS_PAGE_CHANNELS: usize = 500;
/// The most bytes of channel entries one `GET /` holds (a page has one channel at least).
pub(crate) const STATUS_PAGE_BYTES: usize = 4 << 20;
/// The most characters `GET /` shows of one string (an offset token may be 1 MiB): longer
/// ones end in `…`.
pub(crate) const STATUS_TEXT_CHARS: usize = 1024;

/// Totals over a set of channels ([`Emulator::channel_totals`](crate::Emulator::channel_totals)).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ChannelTotals {
    /// Channels open or once opened.
    pub channels: usize,
    /// Of those, the channels with a committed offset token.
    pub committed: usize,
    /// Rows committed to their tables (`rows_inserted` in the status).
    pub rows_inserted: u64,
}

/// One channel's entry in the status.
fn channel_json(k: &ChannelKey, c: &crate::channels::Channel) -> Value {
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
}

/// Clips every string in `v` to [`STATUS_TEXT_CHARS`] characters (the last one `…`).
fn clip_strings(v: &mut Value) {
    match v {
        Value::String(s) => {
            // The byte offset of the last character kept whole, when more follow.
            let cut = s
                .char_indices()
                .nth(STATUS_TEXT_CHARS - 1)
                .map(|(at, _)| at);
            if let Some(at) = cut.filter(|&at| s[at..].chars().nth(1).is_some()) {
                s.truncate(at);
                s.push('…');
            }
        }
        Value::Array(a) => a.iter_mut().for_each(clip_strings),
        Value::Object(o) => o.values_mut().for_each(clip_strings),
        _ => {}
    }
}

impl Shared {
    /// Totals over the channels whose name starts with `prefix`, read under the channels'
    /// lock without building [`status`](Self::status)'s document.
    pub(crate) fn channel_totals(&self, prefix: &str) -> ChannelTotals {
        let chans = self.channels();
        let mut totals = ChannelTotals::default();
        for (_, c) in chans.iter().filter(|(k, _)| k.channel.starts_with(prefix)) {
            totals.channels += 1;
            totals.committed += usize::from(c.committed.is_some());
            totals.rows_inserted += c.counters.rows_inserted;
        }
        totals
    }

    /// The in-process status ([`crate::Emulator::status`]): every channel, whole.
    pub(crate) fn status(&self) -> Value {
        let mut chans: Vec<Value> = {
            let chans = self.channels();
            let mut keys: Vec<&ChannelKey> = chans.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| channel_json(k, &chans[k]))
                .collect()
        };
        chans.shrink_to_fit();
        self.status_with(chans)
    }

    /// What `GET /` shows: the status with one page of channels, in name order from the
    /// `from`th, at most `limit` (≤ [`STATUS_PAGE_CHANNELS`]) and as many as fit in
    /// [`STATUS_PAGE_BYTES`] (one at least), each string clipped to [`STATUS_TEXT_CHARS`];
    /// `channel_page` says where the next page starts (`next_from`, null after the last).
    /// Built one channel at a time: the answer, not the channel map, bounds its memory.
    pub(crate) fn status_page(&self, from: usize, limit: usize) -> Value {
        let limit = limit.clamp(1, STATUS_PAGE_CHANNELS);
        let (chans, total, next_from) = {
            let chans = self.channels();
            let mut keys: Vec<&ChannelKey> = chans.keys().collect();
            keys.sort_unstable();
            let total = keys.len();
            let mut page = Vec::new();
            let mut bytes = 0;
            let mut next_from = None;
            for (i, k) in keys.into_iter().enumerate().skip(from) {
                if page.len() == limit {
                    next_from = Some(i);
                    break;
                }
                let mut v = channel_json(k, &chans[k]);
                clip_strings(&mut v);
                let size = serde_json::to_vec(&v).map_or(0, |b| b.len()) + 1;
                if !page.is_empty() && bytes + size > STATUS_PAGE_BYTES {
                    next_from = Some(i);
                    break;
                }
                bytes += size;
                page.push(v);
            }
            (page, total, next_from)
        };
        let mut status = self.status_with(chans);
        status["channel_page"] = json!({
            "from": from, "limit": limit, "total": total, "next_from": next_from,
        });
        status
    }

    /// The status document around `chans`.
    fn status_with(&self, chans: Vec<Value>) -> Value {
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
