//! The SQL API's statement results between requests: statements still running (answered
//! HTTP 202, polled on `GET /api/v2/statements/{handle}`) and results cut into partitions
//! (`resultSetMetaData.partitionInfo`; the first partition in the answer, the others on
//! `GET …?partition=N`), as Snowflake's SQL API serves them (docs/protocol-types-and-sql.md "SQL API").
//!
//! Every partition can be fetched again, as often as the client likes, while the result is
//! held (Snowflake lets a client fetch a partition again while the result is retained; a
//! client retries a partition whose answer it lost). The store is bounded instead: a result is
//! dropped after [`RESULT_TTL`], or (oldest first) when more than [`MAX_HANDLES`] statements
//! or more than [`MAX_HELD_BYTES`] of results are held; a fetch after that answers `000709`.
//! One statement's result is at most [`MAX_RESULT_BYTES`] (the statement fails beyond it).
//!
//! The store also bounds how many statements run at once ([`ResultStore::slot`]): a statement
//! holds a slot from submission to its end, one more waits for a slot and is answered 429
//! when none frees up in time. A handle belongs to the credential that made it: another is
//! answered as for an unknown handle.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use serde_json::{json, Value};

use crate::base::api_error::ApiError;

/// The most statements held at once (running or finished); the oldest is dropped first.
pub(crate) const MAX_HANDLES: usize = 256;

/// The largest result one statement may build, in bytes of JSON (about): the readers' limit.
pub(crate) use crate::storage::MAX_RESULT_BYTES;

/// The most result bytes held at once; the oldest other results are dropped beyond it.
pub(crate) const MAX_HELD_BYTES: usize = 256 << 20;

/// How long a result is kept for its partitions to be fetched.
pub(crate) const RESULT_TTL: Duration = Duration::from_secs(10 * 60);

/// What `GET /api/v2/statements/{handle}` answers.
#[derive(Debug)]
pub(crate) enum Fetched {
    /// The statement still runs: HTTP 202 with this `QueryStatus` body.
    Running(Value),
    /// HTTP 200 with this body (the first partition with the metadata, or `{"data": …}`
    /// for a later one).
    Partition(Value),
}

enum State {
    Running,
    Failed(ApiError),
    /// The answer of partition 0 and the rows of the later partitions.
    Done {
        first: Value,
        rest: Vec<Value>,
    },
}

struct Entry {
    state: State,
    created: Instant,
    /// The result's size in bytes of JSON (0 while running or failed).
    bytes: usize,
    /// Who ran the statement (the credential's subject): only they may see or fetch it.
    owner: String,
}

/// Counters shown in the emulator's `GET /` (`sql_api`), so tests can see what was served.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Statements answered HTTP 202 on submission.
    pub async_answers: AtomicU64,
    /// Partition answers (`?partition=N`, N ≥ 1) served.
    pub partitions_served: AtomicU64,
    /// Answers sent gzip-encoded (the client sent `Accept-Encoding: gzip`).
    pub gzip_answers: AtomicU64,
    /// Statements answered 429: no slot to run in freed up within the queue wait.
    pub busy_answers: AtomicU64,
}

/// Running statements and partitioned results, by statement handle.
pub(crate) struct ResultStore {
    /// Rows per result partition (at least 1).
    pub partition_rows: usize,
    /// Answer HTTP 202 when a statement has not finished after this long (`None`: wait).
    pub async_after: Option<Duration>,
    /// How long one statement may run before it is cancelled.
    pub statement_limit: Duration,
    /// What was served.
    pub counters: Counters,
    inner: Mutex<(HashMap<String, Entry>, VecDeque<String>)>,
    /// One permit per statement allowed to run at once.
    slots: Arc<Semaphore>,
    /// The number of permits.
    max_running: usize,
    /// How long a statement waits for a permit.
    queue_wait: Duration,
}

impl ResultStore {
    /// A store cutting results into partitions of `partition_rows` rows, answering 202
    /// past `async_after`.
    pub(crate) fn new(partition_rows: usize, async_after: Option<Duration>) -> Self {
        Self {
            partition_rows: partition_rows.max(1),
            async_after,
            statement_limit: crate::settings::config::DEFAULT_SQL_STATEMENT_TIMEOUT,
            counters: Counters::default(),
            inner: Mutex::new((HashMap::new(), VecDeque::new())),
            slots: Arc::new(Semaphore::new(
                crate::settings::config::DEFAULT_SQL_MAX_RUNNING,
            )),
            max_running: crate::settings::config::DEFAULT_SQL_MAX_RUNNING,
            queue_wait: crate::settings::config::DEFAULT_SQL_QUEUE_WAIT,
        }
    }

    /// At most `running` statements at once (at least 1); one more waits `queue_wait` for a
    /// slot.
    pub(crate) fn with_running_bound(mut self, running: usize, queue_wait: Duration) -> Self {
        self.max_running = running.clamp(1, Semaphore::MAX_PERMITS);
        self.slots = Arc::new(Semaphore::new(self.max_running));
        self.queue_wait = queue_wait;
        self
    }

    /// Statements are cancelled after `limit`.
    pub(crate) fn with_statement_limit(mut self, limit: Duration) -> Self {
        self.statement_limit = limit;
        self
    }

    /// A slot to run one statement in, held until the permit is dropped: at once when fewer
    /// statements run than the bound, else after waiting for one to finish.
    ///
    /// # Errors
    /// 429 when no slot frees up within the queue wait (the client retries later).
    pub(crate) async fn slot(&self) -> Result<OwnedSemaphorePermit, ApiError> {
        let acquire = Arc::clone(&self.slots).acquire_owned();
        match tokio::time::timeout(self.queue_wait, acquire).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => {
                self.counters.busy_answers.fetch_add(1, Ordering::Relaxed);
                Err(ApiError::new(
                    429,
                    "ERR_TOO_MANY_STATEMENTS",
                    format!(
                        "too many SQL API statements run at once: the emulator runs at most {} \
                         (EmulatorConfig::sql_max_running) and this one waited {:?} for one to \
                         finish; retry later",
                        self.max_running, self.queue_wait
                    ),
                ))
            }
        }
    }

    /// Registers a statement `owner` (the credential's subject) starts running, dropping
    /// expired and excess results.
    pub(crate) fn start(&self, handle: &str, owner: &str) {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, order) = &mut *guard;
        let now = Instant::now();
        entries.retain(|_, e| now.duration_since(e.created) < RESULT_TTL);
        order.retain(|h| entries.contains_key(h));
        while entries.len() >= MAX_HANDLES {
            match order.pop_front() {
                Some(oldest) => entries.remove(&oldest),
                None => break,
            };
        }
        entries.insert(
            handle.to_owned(),
            Entry {
                state: State::Running,
                created: now,
                bytes: 0,
                owner: owner.to_owned(),
            },
        );
        order.push_back(handle.to_owned());
    }

    /// Records the outcome of a statement (its answer is cut into partitions), dropping the
    /// oldest other results while more than [`MAX_HELD_BYTES`] are held. A handle dropped
    /// meanwhile (bounded store) is ignored.
    pub(crate) fn finish(&self, handle: &str, outcome: Result<Value, ApiError>) {
        let (state, bytes) = match outcome {
            Ok(answer) => {
                let (first, rest, bytes) = split(answer, self.partition_rows);
                let state = State::Done { first, rest };
                (state, bytes)
            }
            Err(e) => (State::Failed(e), 0),
        };
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, order) = &mut *guard;
        let Some(entry) = entries.get_mut(handle) else {
            return;
        };
        entry.state = state;
        entry.bytes = bytes;
        let mut held: usize = entries.values().map(|e| e.bytes).sum();
        order.retain(|h| entries.contains_key(h));
        let mut i = 0;
        while held > MAX_HELD_BYTES && i < order.len() {
            if order[i] == handle {
                i += 1;
                continue;
            }
            if let Some(old) = order.remove(i).and_then(|h| entries.remove(&h)) {
                held -= old.bytes;
            }
        }
    }

    /// The answer for `partition` of `handle` to `owner`; any partition may be fetched again
    /// while the result is held.
    ///
    /// # Errors
    /// 422 `000709` (SQLSTATE 02000) for an unknown or dropped (expired or evicted) handle,
    /// and for the handle of a statement another credential ran (answered exactly as an
    /// unknown one, so a handle says nothing to anyone but its owner); 422 `000711` for a
    /// partition the result does not have; the statement's own error when it failed.
    pub(crate) fn fetch(
        &self,
        handle: &str,
        owner: &str,
        partition: usize,
    ) -> Result<Fetched, ApiError> {
        let mut guard = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let (entries, _) = &mut *guard;
        let Some(entry) = entries
            .get_mut(handle)
            .filter(|e| e.owner.eq_ignore_ascii_case(owner))
        else {
            return Err(ApiError::new(
                422,
                "000709",
                format!(
                    "statement {handle} not found: unknown, or its result expired (results are \
                     kept {} minutes, at most {MAX_HANDLES} of them) — run the statement again",
                    RESULT_TTL.as_secs() / 60
                ),
            )
            .with_sql_state("02000"));
        };
        let answer = match &mut entry.state {
            State::Running => return Ok(Fetched::Running(running(handle))),
            State::Failed(e) => {
                let e = e.clone();
                entries.remove(handle);
                return Err(e);
            }
            State::Done { first, .. } if partition == 0 => first.clone(),
            State::Done { rest, .. } => {
                let count = rest.len() + 1;
                let data = rest.get(partition - 1).cloned().ok_or_else(|| {
                    ApiError::new(
                        422,
                        "000711",
                        format!(
                            "partition {partition} of statement {handle} does not exist (the \
                             result has {count} partitions, numbered from 0)"
                        ),
                    )
                    .with_sql_state("02000")
                })?;
                self.counters
                    .partitions_served
                    .fetch_add(1, Ordering::Relaxed);
                json!({ "data": data })
            }
        };
        Ok(Fetched::Partition(answer))
    }

    /// The counters as JSON (for `GET /`).
    pub(crate) fn stats(&self) -> Value {
        let held = self.inner.lock().map(|g| g.0.len()).unwrap_or(0);
        let c = &self.counters;
        json!({
            "results_held": held,
            "async_answers": c.async_answers.load(Ordering::Relaxed),
            "partitions_served": c.partitions_served.load(Ordering::Relaxed),
            "gzip_answers": c.gzip_answers.load(Ordering::Relaxed),
            "busy_answers": c.busy_answers.load(Ordering::Relaxed),
            "statement_memory_bounded": crate::sql_sandbox::heap::is_bounded(),
        })
    }
}

/// The SQL API's `QueryStatus` of a statement still running (HTTP 202).
pub(crate) fn running(handle: &str) -> Value {
    json!({
        "code": "333334",
        "message": "Asynchronous execution in progress. Use provided query id to perform query monitoring and management.",
        "statementHandle": handle,
        "statementStatusUrl": format!("/api/v2/statements/{handle}"),
    })
}

/// Cuts a complete answer into partitions of `rows` rows: the answer with the first
/// partition's rows and `partitionInfo` describing them all, the later partitions' rows, and
/// the size of all rows in bytes of JSON.
fn split(mut answer: Value, rows: usize) -> (Value, Vec<Value>, usize) {
    let data = match answer.get_mut("data").map(Value::take) {
        Some(Value::Array(data)) => data,
        _ => Vec::new(),
    };
    let mut parts: Vec<Vec<Value>> = data.chunks(rows).map(<[Value]>::to_vec).collect();
    if parts.is_empty() {
        parts.push(Vec::new());
    }
    let mut bytes = 0;
    let info: Vec<Value> = parts
        .iter()
        .map(|p| {
            let size = serde_json::to_vec(p).map_or(0, |b| b.len());
            bytes += size;
            json!({"rowCount": p.len(), "uncompressedSize": size})
        })
        .collect();
    if let Some(meta) = answer.get_mut("resultSetMetaData") {
        meta["partitionInfo"] = Value::Array(info);
    }
    let mut parts = parts.into_iter().map(Value::Array);
    answer["data"] = parts.next().unwrap_or_else(|| json!([]));
    (answer, parts.collect(), bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(n: usize) -> Value {
        json!({
            "statementHandle": "h",
            "resultSetMetaData": {"numRows": n, "format": "jsonv2", "partitionInfo": [], "rowType": []},
            "data": (0..n).map(|i| json!([i.to_string()])).collect::<Vec<_>>(),
        })
    }

    fn data(f: Fetched) -> Value {
        match f {
            Fetched::Partition(v) => v["data"].clone(),
            Fetched::Running(v) => panic!("still running: {v}"),
        }
    }

    #[test]
    fn a_result_is_cut_into_partitions_each_fetchable_again_while_held() {
        let store = ResultStore::new(2, None);
        store.start("h", "u");
        assert!(matches!(store.fetch("h", "u", 0), Ok(Fetched::Running(_))));
        store.finish("h", Ok(answer(5)));
        let Fetched::Partition(first) = store.fetch("h", "u", 0).unwrap() else {
            panic!("running")
        };
        let counts: Vec<u64> = first["resultSetMetaData"]["partitionInfo"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["rowCount"].as_u64().unwrap())
            .collect();
        assert_eq!(counts, [2, 2, 1]);
        assert_eq!(first["data"], json!([["0"], ["1"]]));
        assert_eq!(data(store.fetch("h", "u", 2).unwrap()), json!([["4"]]));
        assert_eq!(
            data(store.fetch("h", "u", 2).unwrap()),
            json!([["4"]]),
            "fetched again"
        );
        let none = store.fetch("h", "u", 9).unwrap_err();
        assert_eq!((none.status, none.code.as_str()), (422, "000711"));
        assert!(none.message.contains("3 partitions"), "{}", none.message);
        assert_eq!(
            data(store.fetch("h", "u", 1).unwrap()),
            json!([["2"], ["3"]])
        );
        assert_eq!(
            data(store.fetch("h", "u", 1).unwrap()),
            json!([["2"], ["3"]])
        );
        assert!(
            store.fetch("h", "u", 0).is_ok(),
            "kept after every partition was fetched"
        );
        // Another credential is answered as for an unknown handle, and consumes nothing.
        for p in [0, 1, 2] {
            let other = store.fetch("h", "someone else", p).unwrap_err();
            assert_eq!((other.status, other.code.as_str()), (422, "000709"));
            assert!(other.message.contains("not found"), "{}", other.message);
        }
        assert_eq!(store.stats()["partitions_served"], json!(4));
        assert_eq!(store.stats()["results_held"], json!(1));
    }

    #[test]
    fn a_failure_is_answered_once_and_the_store_stays_bounded() {
        let store = ResultStore::new(10, None);
        store.start("bad", "u");
        store.finish("bad", Err(ApiError::new(422, "002003", "nope")));
        assert_eq!(store.fetch("bad", "u", 0).unwrap_err().code, "002003");
        assert_eq!(store.fetch("bad", "u", 0).unwrap_err().code, "000709");
        for i in 0..MAX_HANDLES + 10 {
            store.start(&format!("h{i}"), "u");
        }
        assert_eq!(store.stats()["results_held"], json!(MAX_HANDLES));
        assert_eq!(
            store.fetch("h0", "u", 0).unwrap_err().code,
            "000709",
            "oldest dropped"
        );
        assert!(store
            .fetch(&format!("h{}", MAX_HANDLES + 9), "u", 0)
            .is_ok());
    }

    #[test]
    fn results_beyond_the_held_bytes_push_out_the_oldest() {
        let store = ResultStore::new(1000, None);
        // Each result is about a third of the bound.
        let big = |tag: &str| {
            let row = json!([tag.repeat(MAX_HELD_BYTES / 3 / 100)]);
            json!({"resultSetMetaData": {"numRows": 100}, "data": vec![row; 100]})
        };
        for h in ["a", "b", "c", "d"] {
            store.start(h, "u");
            store.finish(h, Ok(big(h)));
        }
        assert_eq!(store.stats()["results_held"], json!(2), "{}", store.stats());
        assert_eq!(store.fetch("a", "u", 0).unwrap_err().code, "000709");
        assert_eq!(store.fetch("b", "u", 0).unwrap_err().code, "000709");
        assert!(
            store.fetch("d", "u", 0).is_ok(),
            "the newest result is kept"
        );
    }
}
