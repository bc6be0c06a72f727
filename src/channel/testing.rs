//! An in-memory fake of the Snowpipe Streaming server behind [`IngestApi`], for actor and
//! timer tests under paused tokio time.
//!
//! It models what recovery depends on: a client sequencer per channel (bumped on every open,
//! so older continuation tokens become stale), uncommitted batches (discarded on reopen),
//! the committed offset token, and a status code. Commits happen when the test calls
//! [`FakeApi::commit`], or on every status poll when `auto_commit` is on (the default).

use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::time::Instant;

use crate::api::{ChannelStatusWire, OpenChannelRequest, OpenChannelResponse};
use crate::error::{ServerError, TransportError, TransportErrorKind};
use crate::transport::{AppendAck, AppendRequest, ChannelPath, ChannelWire, IngestApi, PipePath};
use crate::{Compression, Error, Result};

/// A server error as the REST layer would return it.
pub(crate) fn server_error(status: u16, code: &str, operation: &'static str) -> Error {
    Error::Server(Box::new(ServerError {
        status,
        code: Some(code.to_owned()),
        message: format!("fake {code}"),
        request_id: None,
        operation,
        attempts: 1,
    }))
}

/// A lost response: the request may have been applied.
pub(crate) fn timeout_error() -> Error {
    Error::Transport(Box::new(TransportError {
        kind: TransportErrorKind::Timeout,
        operation: "append rows",
        message: "fake timeout".into(),
        request_id: None,
        attempts: 1,
        source: None,
    }))
}

/// One append the fake received.
#[derive(Debug, Clone)]
pub(crate) struct AppendRecord {
    pub(crate) channel: String,
    pub(crate) rows: Vec<String>,
    pub(crate) start: Option<String>,
    pub(crate) end: Option<String>,
    pub(crate) continuation: String,
    pub(crate) at: Instant,
    pub(crate) wire_len: usize,
    /// A zstd body's stated content size (`None`: not stated, or not zstd).
    pub(crate) stated_size: Option<u64>,
    pub(crate) accepted: bool,
}

#[derive(Debug, Default)]
struct FakeChannel {
    sequencer: u64,
    counter: u64,
    committed: Option<String>,
    pending: Vec<(Vec<String>, Option<String>)>,
    rows: Vec<String>,
    status_code: String,
    rows_inserted: u64,
    rows_error_count: u64,
    last_error_message: Option<String>,
    last_error_offset_upper_bound: Option<String>,
}

impl FakeChannel {
    fn commit(&mut self) {
        for (rows, end) in self.pending.drain(..) {
            self.rows_inserted += rows.len() as u64;
            self.rows.extend(rows);
            if end.is_some() {
                self.committed = end;
            }
        }
    }

    fn wire(&self, name: &str) -> ChannelStatusWire {
        ChannelStatusWire {
            channel_name: Some(name.to_owned()),
            channel_status_code: Some(self.status_code.clone()),
            last_committed_offset_token: self.committed.clone(),
            rows_inserted: Some(self.rows_inserted),
            rows_parsed: Some(self.rows_inserted + self.rows_error_count),
            rows_error_count: Some(self.rows_error_count),
            last_error_message: self.last_error_message.clone(),
            last_error_offset_upper_bound: self.last_error_offset_upper_bound.clone(),
            ..ChannelStatusWire::default()
        }
    }
}

type ErrorFn = Box<dyn FnOnce() -> Error + Send>;

#[derive(Default)]
struct FakeState {
    channels: HashMap<String, FakeChannel>,
    appends: Vec<AppendRecord>,
    opens: Vec<(String, Instant)>,
    status_polls: Vec<(Vec<String>, Instant)>,
    manual_commit: bool,
    commit_on_append: bool,
    lose_acks: usize,
    fail_appends: VecDeque<ErrorFn>,
    fail_opens: VecDeque<ErrorFn>,
    /// Every open of these channels is followed by a competing open (two writers).
    contested: Vec<String>,
    chain_violations: usize,
    /// Every open takes this long and then fails with 503 (an outage the REST layer retries).
    refuse_opens: Option<Duration>,
    /// Every successful open takes this long.
    open_latency: Duration,
    /// The server keeps channel names upper-case (as it does unquoted identifiers): an open
    /// answers the upper-case name, and later calls must use it.
    upper_case_names: bool,
    open_requests: Vec<(String, OpenChannelRequest)>,
    /// Status calls for these pipes fail with 503.
    failing_status_pipes: Vec<String>,
    /// Status calls for these pipes take this long.
    slow_status_pipes: HashMap<String, Duration>,
    /// Status calls naming at least `.0` channels answer `.1` late, with what was true when
    /// they were asked.
    late_large_status: Option<(usize, Duration)>,
    /// Omitted from status answers until their next open (the server lost them).
    hidden: Vec<String>,
}

/// The fake server.
pub(crate) struct FakeApi {
    state: Mutex<FakeState>,
    latency: Mutex<Duration>,
    concurrent: AtomicUsize,
    max_concurrent: AtomicUsize,
}

impl std::fmt::Debug for FakeApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeApi").finish_non_exhaustive()
    }
}

struct ConcurrencyGuard<'a>(&'a AtomicUsize);

impl Drop for ConcurrencyGuard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

#[allow(dead_code)]
impl FakeApi {
    pub(crate) fn new() -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(FakeState::default()),
            latency: Mutex::new(Duration::ZERO),
            concurrent: AtomicUsize::new(0),
            max_concurrent: AtomicUsize::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, FakeState> {
        self.state.lock().unwrap()
    }

    /// Every append takes this long (virtual time).
    pub(crate) fn set_latency(&self, d: Duration) {
        *self.latency.lock().unwrap() = d;
    }

    /// Commit only on [`commit`](Self::commit), not on every status poll.
    pub(crate) fn set_manual_commit(&self, manual: bool) {
        self.lock().manual_commit = manual;
    }

    /// Commit every append as soon as it is applied.
    pub(crate) fn set_commit_on_append(&self, on: bool) {
        self.lock().commit_on_append = on;
    }

    /// Commits everything pending on `channel`.
    pub(crate) fn commit(&self, channel: &str) {
        if let Some(c) = self.lock().channels.get_mut(channel) {
            c.commit();
        }
    }

    /// The next `n` appends are applied but their responses are lost (timeout).
    pub(crate) fn lose_next_acks(&self, n: usize) {
        self.lock().lose_acks = n;
    }

    /// The next append fails with this error (not applied).
    pub(crate) fn fail_next_append(&self, f: impl FnOnce() -> Error + Send + 'static) {
        self.lock().fail_appends.push_back(Box::new(f));
    }

    /// The next open fails with this error.
    pub(crate) fn fail_next_open(&self, f: impl FnOnce() -> Error + Send + 'static) {
        self.lock().fail_opens.push_back(Box::new(f));
    }

    /// While `Some(d)`, every open takes `d` (virtual time, like the REST layer's retries)
    /// and then fails with a retryable 503.
    pub(crate) fn refuse_opens(&self, d: Option<Duration>) {
        self.lock().refuse_opens = d;
    }

    /// Open requests as received (channel, request).
    pub(crate) fn open_requests(&self) -> Vec<(String, OpenChannelRequest)> {
        self.lock().open_requests.clone()
    }

    /// Status calls for `pipe` fail with 503 (`false` restores them).
    pub(crate) fn fail_status_for_pipe(&self, pipe: &str, fail: bool) {
        let mut s = self.lock();
        s.failing_status_pipes.retain(|p| p != pipe);
        if fail {
            s.failing_status_pipes.push(pipe.to_owned());
        }
    }

    /// Status calls naming at least `names` channels answer `d` late, with the state of when
    /// they were asked (a stale answer).
    pub(crate) fn late_answers_to_large_status_calls(&self, names: usize, d: Duration) {
        self.lock().late_large_status = Some((names, d));
    }

    /// Status calls for `pipe` take `d`.
    pub(crate) fn slow_status_for_pipe(&self, pipe: &str, d: Duration) {
        self.lock().slow_status_pipes.insert(pipe.to_owned(), d);
    }

    /// `channel` is omitted from status answers until it is opened again.
    pub(crate) fn hide_from_status(&self, channel: &str) {
        self.lock().hidden.push(channel.to_owned());
    }

    /// Every successful open takes `d` (virtual time).
    /// See [`FakeState::upper_case_names`].
    pub(crate) fn set_upper_case_names(&self, on: bool) {
        self.lock().upper_case_names = on;
    }

    pub(crate) fn set_open_latency(&self, d: Duration) {
        self.lock().open_latency = d;
    }

    /// Another client opens the channel (bumping the sequencer, discarding uncommitted rows),
    /// optionally resetting the committed token.
    pub(crate) fn reopen_elsewhere(&self, channel: &str, offset_token: Option<&str>) {
        let mut s = self.lock();
        let c = s.channels.get_mut(channel).expect("channel exists");
        c.sequencer += 1;
        c.counter = 0;
        c.pending.clear();
        if let Some(t) = offset_token {
            c.committed = Some(t.to_owned());
        }
    }

    /// Every open of `channel` by the SDK is immediately followed by another writer's open.
    pub(crate) fn contest(&self, channel: &str) {
        self.lock().contested.push(channel.to_owned());
    }

    /// Server-side invalidation (`SYSTEM$STREAMING_CHANNEL_INVALIDATE`).
    pub(crate) fn invalidate(&self, channel: &str) {
        let mut s = self.lock();
        s.channels
            .get_mut(channel)
            .expect("channel exists")
            .status_code = "ERR_CHANNEL_MUST_BE_REOPENED".into();
    }

    /// The server rejects `n` rows.
    pub(crate) fn add_row_errors(&self, channel: &str, n: u64, message: &str, bound: &str) {
        let mut s = self.lock();
        let c = s.channels.get_mut(channel).expect("channel exists");
        c.rows_error_count += n;
        c.last_error_message = Some(message.to_owned());
        c.last_error_offset_upper_bound = Some(bound.to_owned());
    }

    pub(crate) fn appends(&self) -> Vec<AppendRecord> {
        self.lock().appends.clone()
    }

    pub(crate) fn appends_to(&self, channel: &str) -> Vec<AppendRecord> {
        self.lock()
            .appends
            .iter()
            .filter(|a| a.channel == channel)
            .cloned()
            .collect()
    }

    pub(crate) fn committed_rows(&self, channel: &str) -> Vec<String> {
        self.lock()
            .channels
            .get(channel)
            .map(|c| c.rows.clone())
            .unwrap_or_default()
    }

    pub(crate) fn committed_token(&self, channel: &str) -> Option<String> {
        self.lock()
            .channels
            .get(channel)
            .and_then(|c| c.committed.clone())
    }

    pub(crate) fn opens(&self, channel: &str) -> usize {
        self.lock()
            .opens
            .iter()
            .filter(|(c, _)| c == channel)
            .count()
    }

    pub(crate) fn status_polls(&self) -> Vec<(Vec<String>, Instant)> {
        self.lock().status_polls.clone()
    }

    pub(crate) fn max_concurrent(&self) -> usize {
        self.max_concurrent.load(Ordering::SeqCst)
    }

    pub(crate) fn chain_violations(&self) -> usize {
        self.lock().chain_violations
    }

    fn decode(req: &AppendRequest) -> Vec<String> {
        let mut text = String::new();
        match req.compression {
            Compression::Zstd => {
                // One frame, nothing after it: what the official SDK sends (docs/protocol.md).
                assert_eq!(
                    zstd::zstd_safe::find_frame_compressed_size(&req.body[..]),
                    Ok(req.body.len()),
                    "a zstd body is one frame"
                );
                text = String::from_utf8(zstd::decode_all(&req.body[..]).unwrap()).unwrap();
            }
            Compression::Gzip => {
                flate2::read::GzDecoder::new(&req.body[..])
                    .read_to_string(&mut text)
                    .unwrap();
            }
            Compression::None => text = String::from_utf8(req.body.to_vec()).unwrap(),
        }
        assert_eq!(text.len(), req.uncompressed_len, "uncompressed length");
        let rows: Vec<String> = text.lines().map(str::to_owned).collect();
        assert_eq!(rows.len(), req.row_count, "row count");
        rows
    }
}

#[async_trait]
impl IngestApi for FakeApi {
    async fn open_channel(
        &self,
        channel: &ChannelPath,
        request: &OpenChannelRequest,
    ) -> Result<OpenChannelResponse> {
        let (refuse, latency) = {
            let s = self.lock();
            (s.refuse_opens, s.open_latency)
        };
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        if let Some(d) = refuse {
            self.lock()
                .opens
                .push((channel.channel.clone(), Instant::now()));
            tokio::time::sleep(d).await;
            return Err(server_error(503, "ERR_SERVICE_UNAVAILABLE", "open channel"));
        }
        let mut s = self.lock();
        s.opens.push((channel.channel.clone(), Instant::now()));
        s.open_requests
            .push((channel.channel.clone(), request.clone()));
        s.hidden.retain(|c| *c != channel.channel);
        if let Some(f) = s.fail_opens.pop_front() {
            return Err(f());
        }
        let contested = s.contested.contains(&channel.channel);
        let name = if s.upper_case_names {
            channel.channel.to_uppercase()
        } else {
            channel.channel.clone()
        };
        let c = s.channels.entry(name.clone()).or_default();
        c.sequencer += 1;
        c.counter = 0;
        c.pending.clear();
        c.status_code = "SUCCESS".into();
        if let Some(t) = &request.offset_token {
            c.committed = Some(t.clone());
        }
        let resp = OpenChannelResponse {
            next_continuation_token: format!("{}:0", c.sequencer),
            channel_status: c.wire(&name),
        };
        if contested {
            c.sequencer += 1;
        }
        Ok(resp)
    }

    async fn append_rows(
        &self,
        channel: &ChannelPath,
        request: &AppendRequest,
        _session: Option<&http::HeaderValue>,
        _wire: &ChannelWire,
    ) -> Result<AppendAck> {
        let now = self.concurrent.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_concurrent.fetch_max(now, Ordering::SeqCst);
        let _guard = ConcurrencyGuard(&self.concurrent);
        let latency = *self.latency.lock().unwrap();
        if !latency.is_zero() {
            tokio::time::sleep(latency).await;
        }
        let rows = Self::decode(request);
        let mut s = self.lock();
        let mut record = AppendRecord {
            channel: channel.channel.clone(),
            rows: rows.clone(),
            start: request.start_offset_token.as_ref().map(ToString::to_string),
            end: request.end_offset_token.as_ref().map(ToString::to_string),
            continuation: request.continuation_token.clone(),
            at: Instant::now(),
            wire_len: request.body.len(),
            stated_size: match request.compression {
                Compression::Zstd => zstd::zstd_safe::get_frame_content_size(&request.body[..])
                    .ok()
                    .flatten(),
                _ => None,
            },
            accepted: false,
        };
        if let Some(f) = s.fail_appends.pop_front() {
            s.appends.push(record);
            return Err(f());
        }
        let commit_now = s.commit_on_append;
        let Some(c) = s.channels.get_mut(&channel.channel) else {
            s.appends.push(record);
            return Err(server_error(
                404,
                "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                "append rows",
            ));
        };
        let (seq, counter) = request
            .continuation_token
            .split_once(':')
            .map(|(a, b)| (a.parse::<u64>().unwrap(), b.parse::<u64>().unwrap()))
            .expect("continuation token format");
        if seq != c.sequencer {
            s.appends.push(record);
            return Err(server_error(
                400,
                "STALE_CONTINUATION_TOKEN_SEQUENCER",
                "append rows",
            ));
        }
        if c.status_code != "SUCCESS" {
            let code = c.status_code.clone();
            s.appends.push(record);
            return Err(server_error(400, &code, "append rows"));
        }
        let violation = counter != c.counter;
        c.counter += 1;
        c.pending.push((rows, record.end.clone()));
        if commit_now {
            c.commit();
        }
        let next = format!("{}:{}", c.sequencer, c.counter);
        record.accepted = true;
        s.appends.push(record);
        if violation {
            s.chain_violations += 1;
        }
        if s.lose_acks > 0 {
            s.lose_acks -= 1;
            return Err(timeout_error());
        }
        Ok(AppendAck {
            next_continuation_token: next,
            session: None,
        })
    }

    async fn bulk_channel_status(
        &self,
        pipe: &PipePath,
        channel_names: &[String],
    ) -> Result<HashMap<String, ChannelStatusWire>> {
        let slow = self.lock().slow_status_pipes.get(&pipe.pipe).copied();
        if let Some(d) = slow {
            tokio::time::sleep(d).await;
        }
        let (out, late) = {
            let mut s = self.lock();
            if s.failing_status_pipes.contains(&pipe.pipe) {
                return Err(server_error(
                    503,
                    "ERR_SERVICE_UNAVAILABLE",
                    "bulk channel status",
                ));
            }
            s.status_polls
                .push((channel_names.to_vec(), Instant::now()));
            let manual = s.manual_commit;
            let mut out = HashMap::new();
            for name in channel_names {
                if s.hidden.contains(name) {
                    continue;
                }
                if let Some(c) = s.channels.get_mut(name) {
                    if !manual {
                        c.commit();
                    }
                    out.insert(name.clone(), c.wire(name));
                }
            }
            let late = s
                .late_large_status
                .filter(|(n, _)| channel_names.len() >= *n)
                .map(|(_, d)| d);
            (out, late)
        };
        if let Some(d) = late {
            tokio::time::sleep(d).await;
        }
        Ok(out)
    }

    async fn drop_channel(&self, channel: &ChannelPath) -> Result<Option<String>> {
        let mut s = self.lock();
        Ok(s.channels
            .remove(&channel.channel)
            .and_then(|c| c.committed))
    }
}

/// The user's side of the exactly-once rule, for one request: does it carry exactly the rows
/// its tokens name? Rows are JSON objects that say which token covers them: `tok` (a string,
/// absent for untokened rows; else `id` as a string stands for it), and `head` / `tail`
/// (default `true`) whether the row is the first / last row its token covers. A request with
/// an end token must end on the last row of that token, one with a start token begin on the
/// first row of that token, and a request without an end token hold no tokened rows. Returns
/// what is wrong, or `None`.
pub(crate) fn token_violation(a: &AppendRecord) -> Option<String> {
    let rows: Vec<serde_json::Value> = a
        .rows
        .iter()
        .map(|r| serde_json::from_str(r).unwrap_or_default())
        .collect();
    let tok = |r: &serde_json::Value| -> Option<String> {
        match (&r["tok"], &r["id"]) {
            (serde_json::Value::String(s), _) => Some(s.clone()),
            (serde_json::Value::Null, serde_json::Value::Number(n)) if r.get("tok").is_none() => {
                Some(n.to_string())
            }
            _ => None,
        }
    };
    let flag = |r: &serde_json::Value, k: &str| r[k].as_bool().unwrap_or(true);
    let (first, last) = (rows.first()?, rows.last()?);
    let what = |why: &str| {
        Some(format!(
            "request {:?}..{:?} with {} rows (first covered by {:?}, last by {:?}): {why}",
            a.start,
            a.end,
            rows.len(),
            tok(first),
            tok(last)
        ))
    };
    match &a.end {
        Some(e) if tok(last).as_ref() != Some(e) || !flag(last, "tail") => {
            return what("its end token is not the token of its last row, or rows of that token follow in a later request")
        }
        None if rows.iter().any(|r| tok(r).is_some()) => {
            return what("no end token, but it carries rows that have one")
        }
        _ => {}
    }
    match &a.start {
        Some(s) if tok(first).as_ref() != Some(s) || !flag(first, "head") => {
            what("its start token is not the token of its first row, or rows of that token came in an earlier request")
        }
        _ => None,
    }
}
