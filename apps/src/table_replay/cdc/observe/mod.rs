//! What an operator sees of a running `follow`, as of the Kafka sink: progress lines
//! (`--progress-every`), and with `--metrics-addr` the `snowpipe_cdc_*` metrics beside the
//! SDK's on `/metrics`, `/healthz` and `/readyz` (`probes.rs`, served by cli-support's
//! `probe_server`).
//!
//! The binlog loop (`stream.rs`) reports each event it reads (where it ends, its commit
//! timestamp) and ticks [`Observer::tick`] every [`TICK`]; the tick reads each table's
//! channel (changes appended, dead letters, the committed token) and sets the metrics, the
//! stall state and the probes. Nothing here makes a request on the binlog loop's path: the
//! server's binlog end is listed by a task of its own (`binlog_end.rs`).
//!
//! Lags: `read` is now − the commit timestamp of the last binlog event read (0 once the
//! reader is at the server's binlog end); a table's `commit` lag is the larger of that and now
//! − the commit timestamp of its oldest change appended and not yet committed (sampled at the
//! tick), so 0 when everything read is committed and nothing is behind.
//!
//! A table *stalls* as a sink's partition does (`kafka/src/sink/stall/`): its committed token
//! has not moved for `--stall-after` while appended changes wait for their commit; the clock
//! starts when work begins to wait and again at every commit. One warning names it, one line
//! says when it commits again, and `/readyz` answers 503 meanwhile.

mod binlog_end;
pub mod probes;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Map, Value as Json};

use crate::common::say::{say, say_warn};
use crate::table_replay::cdc::Followed;
pub use probes::Health;

/// How often the binlog loop ticks the observer.
pub const TICK: Duration = Duration::from_secs(1);

/// Appends remembered per table for the commit lag; past it the newest entry takes the
/// later token and keeps its (older) timestamp, so the lag is never under-stated.
const MAX_PENDING: usize = 10_000;

/// `--progress-every` and `--stall-after`.
#[derive(Debug, Clone, Copy)]
pub struct ObserveOptions {
    /// How often a progress line may be printed (`None`: never).
    pub progress_every: Option<Duration>,
    /// A table with changes waiting and no commit for this long is stalled.
    pub stall_after: Duration,
}

impl Default for ObserveOptions {
    fn default() -> Self {
        Self {
            progress_every: Some(Duration::from_secs(10)),
            stall_after: Duration::from_secs(300),
        }
    }
}

/// A follow's observer, shared by the binlog loop, the probes and the binlog-end poller.
#[derive(Debug, Default)]
pub struct Observer {
    opts: ObserveOptions,
    /// What `/healthz` and `/readyz` answer from.
    pub health: Arc<Health>,
    files: binlog_end::Files,
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// The end of the last event read.
    read: Option<(String, u64)>,
    /// Its commit timestamp (Unix seconds; 0: none read).
    read_ts: i64,
    tables: Vec<Table>,
    /// When the last progress line was printed, and what it said.
    printed: Option<(Instant, Vec<Shown>)>,
}

/// What a progress line shows of a table (one is printed again only when this changed).
type Shown = (u64, u64, Option<String>);

#[derive(Debug)]
struct Table {
    name: String,
    /// The change channel's last appended token, as last seen.
    last: Option<String>,
    /// Appended tokens not yet committed, each with the read timestamp when it was seen.
    pending: VecDeque<(String, i64)>,
    committed: Option<String>,
    moved_at: Instant,
    waiting_since: Option<Instant>,
    stalled: bool,
    changes: u64,
    dead: u64,
    commit_lag: f64,
}

/// Unix seconds now.
fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Stops the binlog-end poller when dropped.
pub struct Polling(tokio::task::JoinHandle<()>);

impl Drop for Polling {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl Observer {
    /// An observer with `opts`.
    pub fn new(opts: ObserveOptions) -> Self {
        let started = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        metrics::gauge!("snowpipe_cdc_start_time_seconds").set(started);
        Self {
            opts,
            ..Self::default()
        }
    }

    /// Starts listing the server's binlog files on a side connection to `url` (the lag in
    /// bytes), until the returned guard is dropped.
    pub fn poll_binlog_end(&self, url: &str) -> Polling {
        Polling(tokio::spawn(binlog_end::poll(
            url.to_owned(),
            Arc::clone(&self.files),
        )))
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The binlog stream is open (`true`) or was lost (`false`).
    pub fn connected(&self, up: bool) {
        metrics::gauge!("snowpipe_cdc_binlog_connected").set(if up { 1.0 } else { 0.0 });
        self.health.connected(up);
    }

    /// `follow` is stopping.
    pub fn stopping(&self) {
        self.health.stopping();
    }

    /// An event of the binlog was read: it ends at `end` of `file`, committed at `ts` (Unix
    /// seconds; 0 for the server's artificial events, which change nothing).
    pub fn read(&self, file: &str, end: u64, ts: u32) {
        if end == 0 {
            return;
        }
        let mut st = self.state();
        match &mut st.read {
            Some((f, pos)) if f == file => *pos = end,
            read => *read = Some((file.to_owned(), end)),
        }
        if ts > 0 {
            st.read_ts = i64::from(ts);
        }
    }

    /// The bytes from the read position to the server's binlog end, when known.
    fn bytes_behind(&self, read: Option<&(String, u64)>) -> Option<u64> {
        let (file, pos) = read?;
        let files = self.files.lock().unwrap_or_else(|e| e.into_inner());
        binlog_end::behind(files.as_ref()?, file, *pos)
    }

    /// Every [`TICK`] from the binlog loop: the metrics, the stall state, the probes and, when
    /// due, a progress line.
    pub fn tick(&self, tables: &[Followed<'_>]) {
        self.health.tick();
        let (now, wall) = (Instant::now(), unix_now());
        let mut st = self.state();
        let behind = self.bytes_behind(st.read.as_ref());
        let read_lag = match (behind, st.read_ts) {
            (Some(0), _) | (_, 0) => 0.0,
            (_, ts) => (wall - ts).max(0) as f64,
        };
        metrics::gauge!("snowpipe_cdc_read_lag_seconds").set(read_lag);
        if let Some(b) = behind {
            metrics::gauge!("snowpipe_cdc_read_lag_bytes").set(b as f64);
        }
        if st.tables.len() != tables.len() {
            st.tables = tables.iter().map(|f| Table::new(&f.table.name)).collect();
        }
        let read_ts = if st.read_ts > 0 { st.read_ts } else { wall };
        let mut stalled = Vec::new();
        for (f, t) in tables.iter().zip(st.tables.iter_mut()) {
            let committed = f
                .channel()
                .latest_committed_offset_token()
                .map(|t| t.to_string());
            let last = f.last.as_ref().map(|t| t.to_string());
            t.see(last, committed, read_ts);
            t.clock(now, self.opts.stall_after, &mut stalled);
            let label = [("table", t.name.clone())];
            metrics::counter!("snowpipe_cdc_changes_appended_total", &label)
                .increment(f.changes.saturating_sub(t.changes));
            metrics::counter!("snowpipe_cdc_dead_letters_total", &label)
                .increment(f.dead.stored().saturating_sub(t.dead));
            (t.changes, t.dead) = (f.changes, f.dead.stored());
            t.commit_lag = t
                .pending
                .front()
                .map_or(0.0, |(_, ts)| (wall - ts).max(0) as f64)
                .max(read_lag);
            metrics::gauge!("snowpipe_cdc_commit_lag_seconds", &label).set(t.commit_lag);
            metrics::gauge!("snowpipe_cdc_table_stalled", &label).set(if t.stalled {
                1.0
            } else {
                0.0
            });
            metrics::gauge!("snowpipe_cdc_seconds_since_commit", &label)
                .set(now.duration_since(t.moved_at).as_secs_f64());
        }
        self.health.stalled(stalled);
        self.progress(&mut st, now, (read_lag, behind));
    }

    /// A progress line when `--progress-every` has passed since the last and something
    /// changed or is behind.
    fn progress(&self, st: &mut State, now: Instant, (read_lag, behind): (f64, Option<u64>)) {
        let Some(every) = self.opts.progress_every else {
            return;
        };
        let shown: Vec<Shown> = st
            .tables
            .iter()
            .map(|t| (t.changes, t.dead, t.committed.clone()))
            .collect();
        let is_behind =
            behind.is_some_and(|b| b > 0) || st.tables.iter().any(|t| t.last != t.committed);
        match &st.printed {
            Some((at, _)) if now.duration_since(*at) < every => return,
            Some((_, before)) if *before == shown && !is_behind => return,
            None if !is_behind && shown.iter().all(|s| s.0 + s.1 == 0) => return,
            _ => {}
        }
        let mut fields = Map::new();
        let mut per_table = Map::new();
        for t in &st.tables {
            per_table.insert(
                t.name.clone(),
                json!({
                    "changes": t.changes,
                    "dead_letters": t.dead,
                    "committed": t.committed,
                    "commit_lag_seconds": t.commit_lag,
                    "stalled": t.stalled,
                }),
            );
        }
        fields.insert("tables".into(), Json::Object(per_table));
        fields.insert("read_lag_seconds".into(), json!(read_lag));
        fields.insert("read_lag_bytes".into(), json!(behind));
        let text = || {
            let tables: Vec<String> = st
                .tables
                .iter()
                .map(|t| {
                    format!(
                        "{}: {} changes, {} dead letters, committed {}, commit lag {:.0}s{}",
                        t.name,
                        t.changes,
                        t.dead,
                        t.committed.as_deref().unwrap_or("nothing"),
                        t.commit_lag,
                        if t.stalled { " (STALLED)" } else { "" }
                    )
                })
                .collect();
            format!(
                "progress: {}; binlog read lag {read_lag:.0}s, {} behind",
                tables.join("; "),
                behind.map_or("? bytes".to_owned(), |b| format!("{b} bytes"))
            )
        };
        snowpipe_cli_support::log::progress(module_path!(), fields, text);
        st.printed = Some((now, shown));
    }
}

impl Table {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            last: None,
            pending: VecDeque::new(),
            committed: None,
            moved_at: Instant::now(),
            waiting_since: None,
            stalled: false,
            changes: 0,
            dead: 0,
            commit_lag: 0.0,
        }
    }

    /// The channel's last appended and committed tokens now; `ts`: the read timestamp a newly
    /// appended token is remembered with.
    fn see(&mut self, last: Option<String>, committed: Option<String>, ts: i64) {
        if last != self.last {
            if let Some(l) = &last {
                if self.pending.len() < MAX_PENDING {
                    self.pending.push_back((l.clone(), ts));
                } else if let Some(newest) = self.pending.back_mut() {
                    newest.0.clone_from(l);
                }
            }
            self.last = last;
        }
        if committed.is_some() && committed == self.last {
            self.pending.clear();
        } else if let Some(c) = &committed {
            if let Some(i) = self.pending.iter().position(|(t, _)| t == c) {
                self.pending.drain(..=i);
            }
        }
        if committed != self.committed {
            self.committed = committed;
            self.moved_at = Instant::now();
            self.waiting_since = None;
        }
    }

    /// The stall clock: `stalled` gets this table when it is stalled now.
    fn clock(&mut self, now: Instant, stall_after: Duration, stalled: &mut Vec<String>) {
        let waits = self.last.is_some() && self.last != self.committed;
        if !waits {
            self.waiting_since = None;
        }
        let waited = if waits {
            now.duration_since(*self.waiting_since.get_or_insert(now))
        } else {
            Duration::ZERO
        };
        let is = waits && waited >= stall_after;
        if is && !self.stalled {
            say_warn!(
                "warning: {} stalled: nothing committed for {}s while appended changes wait \
                 (committed {}, last appended {}); the destination is not committing: check \
                 its status and the SDK's snowpipe_commit_latency_seconds",
                self.name,
                waited.as_secs(),
                self.committed.as_deref().unwrap_or("nothing"),
                self.last.as_deref().unwrap_or("nothing"),
            );
        } else if !is && self.stalled {
            say!(
                "{}: committing again (committed {})",
                self.name,
                self.committed.as_deref().unwrap_or("nothing")
            );
        }
        self.stalled = is;
        if is {
            stalled.push(format!(
                "{} (nothing committed for {}s)",
                self.name,
                waited.as_secs()
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Table;
    use std::time::{Duration, Instant};

    fn s(t: &str) -> Option<String> {
        Some(t.to_owned())
    }

    #[test]
    fn a_table_stalls_only_while_changes_wait_and_its_clock_restarts_at_each_commit() {
        let mut t = Table::new("orders");
        let after = Duration::from_secs(5);
        let t0 = Instant::now();
        let mut out = Vec::new();
        // Nothing appended: never stalled, however long.
        t.see(None, None, 100);
        t.clock(t0 + Duration::from_secs(60), after, &mut out);
        assert!(!t.stalled && out.is_empty());
        // Appended, not committed: the clock starts now.
        t.see(s("a"), None, 100);
        t.clock(t0, after, &mut out);
        t.clock(t0 + Duration::from_secs(4), after, &mut out);
        assert!(!t.stalled);
        t.clock(t0 + Duration::from_secs(5), after, &mut out);
        assert!(t.stalled);
        assert_eq!(out, ["orders (nothing committed for 5s)"]);
        // A commit of part of it restarts the clock.
        t.see(s("b"), s("a"), 101);
        assert_eq!(t.pending.len(), 1);
        out.clear();
        let t1 = Instant::now();
        t.clock(t1, after, &mut out);
        assert!(!t.stalled && out.is_empty());
        // Everything committed: nothing waits.
        t.see(s("b"), s("b"), 101);
        assert!(t.pending.is_empty());
        t.clock(t1 + Duration::from_secs(600), after, &mut out);
        assert!(!t.stalled);
    }
}
