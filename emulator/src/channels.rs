//! The channel state machine (protocol §8 items 3–7) and the commit pipeline.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use serde_json::{json, Value};

use crate::convert::SqlValue;
use crate::storage::{ChannelRecord, RowCounters};

/// Name of the implicit elastic channel every pipe has.
pub(crate) const ELASTIC: &str = "ELASTIC";
/// Healthy channel status code.
pub(crate) const SUCCESS: &str = "SUCCESS";
/// Status code of an invalidated channel.
pub(crate) const MUST_REOPEN: &str = "ERR_CHANNEL_MUST_BE_REOPENED";
/// The most characters a new channel's name has: Snowflake documents no channel name limit
/// for Snowpipe Streaming, so the emulator takes its identifier limit (255 characters,
/// docs/protocol.md [IDN]); an open of a longer name gets 400 `ERR_CHANNEL_NAME_TOO_LONG`.
pub(crate) const MAX_CHANNEL_NAME_CHARS: usize = 255;

/// Identity of a channel: canonical database, schema and pipe names plus the exact channel name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct ChannelKey {
    pub database: String,
    pub schema: String,
    pub pipe: String,
    pub channel: String,
}

/// Where a pipe's rows go.
#[derive(Debug)]
pub(crate) struct Target {
    pub qualified: String,
    pub insert_sql: String,
    /// The table's `AUTOINCREMENT`/`IDENTITY` columns.
    pub identities: Vec<crate::storage::IdentityColumn>,
}

impl Target {
    /// Where rows converted against `table`'s columns go.
    pub(crate) fn of(table: &crate::catalog::Table) -> Self {
        Self {
            qualified: table.qualified_name(),
            insert_sql: crate::convert::sqlite_insert(table),
            identities: crate::storage::IdentityColumn::of(table),
        }
    }
}

/// An accepted append waiting for its commit.
pub(crate) struct PendingBatch {
    pub ready_at: Instant,
    pub target: Arc<Target>,
    pub rows: Vec<Vec<SqlValue>>,
    pub parsed: u64,
    pub errors: u64,
    /// Rows the pipe's `WHERE` dropped: parsed, not inserted, not errors.
    pub filtered: u64,
    pub last_error: Option<String>,
    pub end_token: Option<String>,
    /// This batch's share of the pending-rows budget, returned when it leaves memory.
    pub _reserved: crate::base::pending_budget::Reservation,
}

/// One channel.
#[derive(Debug)]
pub(crate) struct Channel {
    pub client_seq: u64,
    pub row_seq: u64,
    pub created_on_ms: i64,
    pub committed: Option<String>,
    pub counters: RowCounters,
    pub status: String,
    pub pending: VecDeque<PendingBatchBox>,
    /// The token used by the latest append and the token it answered.
    pub last_append: Option<(String, String)>,
    /// The latest commits, oldest first: `(committed offset token, commit time in µs since the
    /// Unix epoch)`, at most [`RECENT_COMMITS`]. Shown in `GET /` so that benchmarks can measure
    /// how long a client takes to see a commit; not part of the wire protocol.
    pub recent_commits: VecDeque<(String, i64)>,
    /// Appends whose numeric offset tokens could not name their rows (see
    /// [`offset_span_violation`](crate::service::offsets::offset_span_violation)); shown in `GET /`.
    pub offset_span_violations: u64,
    /// Appends that echoed this incarnation's `x-snowflake-session`, sent none, or sent an
    /// older incarnation's; shown in `GET /`.
    pub session_echoes: [u64; 3],
    /// Accepted appends with `retryCount > 0` (possible duplicates); shown in `GET /`.
    pub retried_appends: u64,
    /// Appends refused with `STALE_CONTINUATION_TOKEN_SEQUENCER` because their token predates
    /// the channel's latest open or its recreation: each one is a fenced writer. Cumulative
    /// (a reopen keeps it), in memory only; shown in `GET /` and the browser console.
    pub fenced_appends: u64,
    /// Appends refused with `STALE_CONTINUATION_TOKEN_SEQUENCER` because an earlier append
    /// already used their token (a retry of an applied request, not another writer); shown
    /// in `GET /`.
    pub reused_token_appends: u64,
    /// The append-rate buckets (`--limits snowflake`).
    pub rate: crate::base::limits::ChannelRate,
    /// How long after its due time (accepted + commit delay) the latest committed batch was
    /// taken for writing, in µs: the browser console's commit latency is the delay plus this.
    pub commit_lag_us: Option<i64>,
}

/// How many commits per channel `GET /` shows in `recent_commits`.
pub(crate) const RECENT_COMMITS: usize = 256;

/// Boxed so `Channel` stays `Debug` without printing rows.
pub(crate) struct PendingBatchBox(pub PendingBatch);
impl std::fmt::Debug for PendingBatchBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PendingBatch({} rows)", self.0.rows.len())
    }
}

/// Outcome of checking a continuation token.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    /// The current token: apply the append.
    Fresh,
    /// The token of the latest append, retried: answer this token again.
    Duplicate(String),
}

/// A failed check, as `(http status, code, message)`.
pub(crate) type Reject = (u16, &'static str, String);

/// Why a continuation token was refused.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenRefusal {
    /// The token predates the channel's latest open, or the channel was dropped and
    /// recreated since: another writer took the channel and the token's holder is fenced
    /// (`400 STALE_CONTINUATION_TOKEN_SEQUENCER`).
    Fenced(&'static str),
    /// An earlier append already used the token: a retry of an applied request, not another
    /// writer (`400 STALE_CONTINUATION_TOKEN_SEQUENCER`).
    Reused,
    /// Not a token this channel issued, or one ahead of it (`400
    /// ERR_INVALID_CONTINUATION_TOKEN`).
    Invalid(&'static str),
}

const STALE: &str = "STALE_CONTINUATION_TOKEN_SEQUENCER";

impl TokenRefusal {
    /// The wire error code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Fenced(_) | Self::Reused => STALE,
            Self::Invalid(_) => "ERR_INVALID_CONTINUATION_TOKEN",
        }
    }
}

impl From<TokenRefusal> for Reject {
    fn from(r: TokenRefusal) -> Self {
        let stale = |why: &str| {
            format!(
                "Channel sequencer in the continuation token is stale ({why}). Please reopen the channel"
            )
        };
        let message = match &r {
            TokenRefusal::Fenced(why) => stale(why),
            TokenRefusal::Reused => {
                stale("the continuation token was already used by an earlier append")
            }
            TokenRefusal::Invalid(why) => (*why).to_owned(),
        };
        (400, r.code(), message)
    }
}

impl Channel {
    pub(crate) fn new(now_ms: i64) -> Self {
        Self {
            client_seq: 1,
            row_seq: 0,
            created_on_ms: now_ms,
            committed: None,
            counters: RowCounters::default(),
            status: SUCCESS.into(),
            pending: VecDeque::new(),
            last_append: None,
            recent_commits: VecDeque::new(),
            offset_span_violations: 0,
            session_echoes: [0; 3],
            retried_appends: 0,
            fenced_appends: 0,
            reused_token_appends: 0,
            rate: crate::base::limits::ChannelRate::new(Instant::now()),
            commit_lag_us: None,
        }
    }

    /// A channel restored from storage at startup.
    ///
    /// A restart is not another writer, so the client sequencer is kept: bumping it would
    /// answer the holder's next append `STALE_CONTINUATION_TOKEN_SEQUENCER`, which tells a
    /// client that another client took the channel (final for its handle). Instead every
    /// restored named channel is invalidated on the server side (`ERR_CHANNEL_MUST_BE_REOPENED`):
    /// the holder's next append is answered `409` with that code (checked before the token)
    /// and its status polls show it, so the client reopens and replays from the committed
    /// token; any open clears it. Every named channel is marked, not only those with appends
    /// in flight, because the restart cannot tell them apart: the row sequencer and the latest
    /// append are not stored, so no continuation token issued before the restart can be
    /// checked any more, and a `kill -9` loses accepted batches without a trace. An idle
    /// holder pays one reopen. The elastic channel has no open and no tokens and keeps its
    /// stored status.
    pub(crate) fn from_record(r: &ChannelRecord) -> Self {
        let status = if r.channel == ELASTIC {
            r.status_code.clone()
        } else {
            MUST_REOPEN.to_owned()
        };
        Self {
            client_seq: r.client_seq,
            committed: r.committed_offset_token.clone(),
            counters: r.counters.clone(),
            status,
            ..Self::new(r.created_on_ms)
        }
    }

    pub(crate) fn record(&self, key: &ChannelKey) -> ChannelRecord {
        ChannelRecord {
            database: key.database.clone(),
            schema: key.schema.clone(),
            pipe: key.pipe.clone(),
            channel: key.channel.clone(),
            client_seq: self.client_seq,
            created_on_ms: self.created_on_ms,
            committed_offset_token: self.committed.clone(),
            counters: self.counters.clone(),
            status_code: self.status.clone(),
        }
    }

    /// The continuation token for the current sequencers.
    pub(crate) fn token(&self) -> String {
        format!(
            "{:x}_{}_{}",
            self.created_on_ms, self.client_seq, self.row_seq
        )
    }

    /// Reopen: bump the client sequencer, drop uncommitted batches, clear invalidation.
    pub(crate) fn reopen(&mut self) {
        self.client_seq += 1;
        self.row_seq = 0;
        self.pending.clear();
        self.last_append = None;
        self.status = SUCCESS.into();
    }

    /// Another writer took the channel: bump the sequencer behind the current holder's back.
    pub(crate) fn bump_sequencer(&mut self) {
        self.client_seq += 1;
        self.row_seq = 0;
        self.pending.clear();
        self.last_append = None;
    }

    /// Checks an append's continuation token.
    pub(crate) fn check_token(
        &self,
        token: &str,
        idempotent: bool,
    ) -> Result<TokenCheck, TokenRefusal> {
        const FOREIGN: &str = "the continuation token was not issued by this server; use the token returned by the last open or append";
        let mut parts = token.rsplitn(3, '_');
        let (Some(row), Some(client), Some(epoch)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenRefusal::Invalid(FOREIGN));
        };
        let (Ok(row), Ok(client), Ok(epoch)) = (
            row.parse::<u64>(),
            client.parse::<u64>(),
            i64::from_str_radix(epoch, 16),
        ) else {
            return Err(TokenRefusal::Invalid(FOREIGN));
        };
        if epoch != self.created_on_ms {
            return Err(TokenRefusal::Fenced(
                "the channel was dropped and recreated",
            ));
        }
        if client != self.client_seq {
            return Err(TokenRefusal::Fenced("the channel was reopened"));
        }
        if row == self.row_seq {
            return Ok(TokenCheck::Fresh);
        }
        if let Some((used, answered)) = &self.last_append {
            if used == token {
                if idempotent {
                    return Ok(TokenCheck::Duplicate(answered.clone()));
                }
                return Err(TokenRefusal::Reused);
            }
        }
        if row < self.row_seq {
            return Err(TokenRefusal::Reused);
        }
        Err(TokenRefusal::Invalid(
            "the continuation token is ahead of the channel; use the token returned by the last append",
        ))
    }

    /// [`check_token`](Self::check_token) for an append: a refusal is counted in
    /// `fenced_appends` or `reused_token_appends`.
    pub(crate) fn admit_token(
        &mut self,
        token: &str,
        idempotent: bool,
    ) -> Result<TokenCheck, TokenRefusal> {
        let checked = self.check_token(token, idempotent);
        match &checked {
            Err(TokenRefusal::Fenced(_)) => self.fenced_appends += 1,
            Err(TokenRefusal::Reused) => self.reused_token_appends += 1,
            _ => {}
        }
        checked
    }

    pub(crate) fn pending_rows(&self) -> u64 {
        self.pending.iter().map(|b| b.0.parsed).sum()
    }

    /// The wire `channel_status` object (§4.3).
    pub(crate) fn status_json(&self, key: &ChannelKey) -> Value {
        json!({
            "database_name": key.database,
            "schema_name": key.schema,
            "pipe_name": key.pipe,
            "channel_name": key.channel,
            "channel_status_code": self.status,
            "last_committed_offset_token": self.committed,
            "created_on_ms": self.created_on_ms,
            "rows_inserted": self.counters.rows_inserted,
            "rows_parsed": self.counters.rows_parsed,
            "rows_error_count": self.counters.rows_error_count,
            "last_error_offset_upper_bound": self.counters.last_error_offset_upper_bound,
            "last_error_message": self.counters.last_error_message,
            "last_error_timestamp_ms": self.counters.last_error_timestamp_ms,
            "snowflake_avg_processing_latency_ms": 0,
        })
    }
}

/// The result of applying due batches to a channel (before it is written).
pub(crate) struct CommitPlan {
    pub records: Vec<(ChannelKey, ChannelRecord)>,
    pub inserts: BTreeMap<String, (Arc<Target>, Vec<Vec<SqlValue>>)>,
    pub rows_per_table: HashMap<String, u64>,
}

/// Pops every due batch of every channel and computes the channels' new state.
pub(crate) fn take_due(
    channels: &mut HashMap<ChannelKey, Channel>,
    now: Instant,
    now_ms: i64,
) -> Option<CommitPlan> {
    let mut plan = CommitPlan {
        records: Vec::new(),
        inserts: BTreeMap::new(),
        rows_per_table: HashMap::new(),
    };
    for (key, ch) in channels.iter_mut() {
        if ch.pending.front().is_none_or(|b| b.0.ready_at > now) {
            continue;
        }
        let mut rec = ch.record(key);
        while ch.pending.front().is_some_and(|b| b.0.ready_at <= now) {
            let Some(PendingBatchBox(b)) = ch.pending.pop_front() else {
                break;
            };
            ch.commit_lag_us = Some(now.saturating_duration_since(b.ready_at).as_micros() as i64);
            rec.counters.rows_parsed += b.parsed;
            rec.counters.rows_inserted += b.parsed.saturating_sub(b.errors + b.filtered);
            rec.counters.rows_error_count += b.errors;
            if b.end_token.is_some() {
                rec.committed_offset_token = b.end_token.clone();
            }
            if let Some(msg) = b.last_error {
                rec.counters.last_error_message = Some(msg);
                rec.counters.last_error_timestamp_ms = Some(now_ms);
                // docs/protocol-semantics.md §6.2: the failing row is at or before this token. Only the
                // batch's own end token says that; without one the bound is unknown (the
                // previous committed token would point before the bad row).
                rec.counters.last_error_offset_upper_bound = b.end_token.clone();
            }
            *plan
                .rows_per_table
                .entry(b.target.qualified.clone())
                .or_default() += b.rows.len() as u64;
            if !b.rows.is_empty() {
                // Keyed by the insert, not the table: batches converted before and after a
                // schema evolution fill different columns.
                let entry = plan
                    .inserts
                    .entry(b.target.insert_sql.clone())
                    .or_insert_with(|| (b.target.clone(), Vec::new()));
                entry.1.extend(b.rows);
            }
        }
        plan.records.push((key.clone(), rec));
    }
    if plan.records.is_empty() {
        None
    } else {
        Some(plan)
    }
}

/// Applies written records back to the in-memory channels; `now_us` (µs since the Unix epoch)
/// is noted as the commit time of every channel whose committed offset token moved.
pub(crate) fn apply_records(
    channels: &mut HashMap<ChannelKey, Channel>,
    records: &[(ChannelKey, ChannelRecord)],
    now_us: i64,
) {
    for (key, r) in records {
        if let Some(ch) = channels.get_mut(key) {
            if let Some(token) = &r.committed_offset_token {
                if ch.committed.as_ref() != Some(token) {
                    if ch.recent_commits.len() >= RECENT_COMMITS {
                        ch.recent_commits.pop_front();
                    }
                    ch.recent_commits.push_back((token.clone(), now_us));
                }
            }
            ch.committed = r.committed_offset_token.clone();
            ch.counters = r.counters.clone();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recent_commits_note_each_new_token_and_stay_bounded() {
        let key = ChannelKey {
            database: "D".into(),
            schema: "S".into(),
            pipe: "P".into(),
            channel: "C".into(),
        };
        let mut chans = HashMap::new();
        chans.insert(key.clone(), Channel::new(1_700_000_000_000));
        for i in 0..(RECENT_COMMITS as i64 + 10) {
            let mut rec = chans[&key].record(&key);
            rec.committed_offset_token = Some(i.to_string());
            apply_records(&mut chans, &[(key.clone(), rec.clone())], 1_000 + i);
            // The same token again (a commit that moved no token) is not a new commit.
            apply_records(&mut chans, &[(key.clone(), rec)], 5_000_000 + i);
        }
        let recent = &chans[&key].recent_commits;
        assert_eq!(recent.len(), RECENT_COMMITS);
        assert_eq!(recent.front(), Some(&("10".to_string(), 1_010)));
        let last = RECENT_COMMITS as i64 + 9;
        assert_eq!(recent.back(), Some(&(last.to_string(), 1_000 + last)));
    }

    /// A new channel after one applied append: the channel, the token that append used and
    /// the token it handed out.
    fn after_one_append() -> (Channel, String, String) {
        let mut ch = Channel::new(1_700_000_000_000);
        let t0 = ch.token();
        assert_eq!(ch.check_token(&t0, false), Ok(TokenCheck::Fresh));
        ch.row_seq += 1;
        let t1 = ch.token();
        ch.last_append = Some((t0.clone(), t1.clone()));
        (ch, t0, t1)
    }

    #[test]
    fn token_transitions() {
        let (mut ch, t0, t1) = after_one_append();
        assert_eq!(ch.check_token(&t1, false), Ok(TokenCheck::Fresh));
        // Retried append with the used token.
        assert_eq!(
            ch.check_token(&t0, false).unwrap_err().code(),
            "STALE_CONTINUATION_TOKEN_SEQUENCER"
        );
        assert_eq!(
            ch.check_token(&t0, true),
            Ok(TokenCheck::Duplicate(t1.clone()))
        );
        assert_eq!(ch.check_token(&t0, false), Err(TokenRefusal::Reused));
        // Reopen makes everything stale.
        ch.reopen();
        assert_eq!(
            ch.check_token(&t1, true).unwrap_err().code(),
            "STALE_CONTINUATION_TOKEN_SEQUENCER"
        );
        assert!(matches!(
            ch.check_token(&t1, true),
            Err(TokenRefusal::Fenced(_))
        ));
        assert_eq!(ch.check_token(&ch.token(), false), Ok(TokenCheck::Fresh));
        // Garbage and forged tokens.
        assert_eq!(
            ch.check_token("nope", false).unwrap_err().code(),
            "ERR_INVALID_CONTINUATION_TOKEN"
        );
        let ahead = format!("{:x}_{}_{}", ch.created_on_ms, ch.client_seq, 9);
        assert_eq!(
            ch.check_token(&ahead, false).unwrap_err().code(),
            "ERR_INVALID_CONTINUATION_TOKEN"
        );
        // A recreated channel (new epoch) rejects the old channel's tokens.
        let other = Channel::new(1_700_000_000_001);
        assert_eq!(
            other.check_token(&t0, false).unwrap_err().code(),
            "STALE_CONTINUATION_TOKEN_SEQUENCER"
        );
        assert!(matches!(
            other.check_token(&t0, false),
            Err(TokenRefusal::Fenced(_))
        ));
    }

    #[test]
    fn admitting_tokens_counts_fenced_and_reused_appends_apart() {
        let (mut ch, t0, t1) = after_one_append();
        // A retry of the applied append: reused, not fenced.
        assert_eq!(ch.admit_token(&t0, false), Err(TokenRefusal::Reused));
        // Idempotent retries are answered, not counted.
        assert_eq!(
            ch.admit_token(&t0, true),
            Ok(TokenCheck::Duplicate(t1.clone()))
        );
        // Another open fences the holder of t1; the counter survives later reopens.
        ch.reopen();
        assert!(matches!(
            ch.admit_token(&t1, false),
            Err(TokenRefusal::Fenced(_))
        ));
        ch.reopen();
        assert!(ch.admit_token("garbage", false).is_err());
        assert_eq!((ch.fenced_appends, ch.reused_token_appends), (1, 1));
        let reject: Reject = TokenRefusal::Fenced("the channel was reopened").into();
        assert_eq!(reject.0, 400);
        assert!(
            reject.2.contains("the channel was reopened"),
            "{}",
            reject.2
        );
    }

    #[test]
    fn a_restored_channel_keeps_its_sequencer_and_must_be_reopened() {
        let key = |channel: &str| ChannelKey {
            database: "D".into(),
            schema: "S".into(),
            pipe: "P".into(),
            channel: channel.into(),
        };
        let mut before = Channel::new(1_700_000_000_000);
        before.reopen();
        before.committed = Some("7".into());
        let token = before.token();
        let mut restored = Channel::from_record(&before.record(&key("C")));
        assert_eq!(restored.client_seq, before.client_seq);
        assert_eq!(restored.status, MUST_REOPEN);
        // Not stale: the sequencer was kept. The append path answers 409 for the status
        // before it looks at the token.
        assert_eq!(restored.check_token(&token, false), Ok(TokenCheck::Fresh));
        restored.reopen();
        assert_eq!(restored.status, SUCCESS);
        assert_eq!(restored.committed.as_deref(), Some("7"));
        // The elastic channel cannot be reopened: it keeps its status.
        let elastic = Channel::from_record(&Channel::new(1).record(&key(ELASTIC)));
        assert_eq!(elastic.status, SUCCESS);
    }
}
