//! Appends (checked against the continuation token, decoded and converted, queued per
//! channel), committing due batches, injected invalidations, and the `GET /` status.
//!
//! An append whose token predates the channel's latest open (or its recreation) is refused
//! with `STALE_CONTINUATION_TOKEN_SEQUENCER`: another writer took the channel and fenced this
//! one. Such appends are counted per channel and in total (`fenced_appends` in `GET /`) and
//! logged one line each; appends refused because their token was already used (a retry of an
//! applied request) are counted apart (`reused_token_appends`).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;

use base64::Engine as _;
use bytes::Bytes;
use serde_json::{json, Value};

use crate::channels::{
    self, Channel, ChannelKey, PendingBatch, PendingBatchBox, Target, TokenCheck, TokenRefusal,
    ELASTIC, MUST_REOPEN,
};
use crate::convert::evolution::{Detector, Evolution};
use crate::convert::SqlValue;
use crate::settings::config::DuplicateAppendPolicy;
use crate::storage::{self};

use super::memory::{parsed_estimate, row_bytes, Meter};
use super::*;

impl Shared {
    /// Append rows (§4.4, §4.5). Returns the next continuation token and, when the append's
    /// offset tokens cannot name its rows (and the emulator is not strict), why.
    ///
    /// Its phases: admitted on its channel (status, token, budget, rate), decoded and
    /// converted, its offset span checked, queued on the channel (the token checked again if
    /// another append came in between), then committed or the commit task woken.
    ///
    /// Cancelling the future after the rows were queued leaves them queued (they commit).
    pub(crate) async fn append(
        self: &Arc<Self>,
        key: ChannelKey,
        target: Arc<Target>,
        req: AppendRequest,
    ) -> Result<(String, Option<String>), ApiError> {
        let token = req.continuation_token.filter(|t| !t.is_empty());
        // First check: cheap, before decoding the body.
        let seq = match self.admit_append(&key, token.as_deref(), req.uncompressed_len)? {
            Admit::Go(seq) => seq,
            Admit::Duplicate(next) => return Ok((next, None)),
        };
        let mut decoded = self
            .decode_append(&key, req.content_encoding, req.body, req.body_charge)
            .await?;
        // The target of the columns the rows were converted against (a table may have evolved
        // since the pipe was resolved).
        let target = decoded.target.take().unwrap_or(target);
        let (start, end) = (
            req.start_offset_token.as_deref(),
            req.end_offset_token.as_deref(),
        );
        let rejected = with_offset_bounds(decoded.rejected.take(), start, end);
        let violation = self.offset_violation(&key, start, end, decoded.parsed)?;
        let end_token = req.end_offset_token.filter(|t| !t.is_empty());
        let queued = Queued {
            seq,
            token,
            target,
            decoded,
            end_token,
            violation: violation.is_some(),
        };
        let next = match self.queue_append(&key, queued)? {
            Admit::Go(next) => next,
            Admit::Duplicate(next) => return Ok((next, None)),
        };
        self.record_rejected(rejected).await;
        if self.settings.commit_delay.is_zero() {
            self.commit_due().await;
        } else {
            self.state.commit_notify.notify_one();
        }
        Ok((next, violation))
    }

    /// An append admitted on its channel (an elastic one created on first use): the channel
    /// in good standing, the continuation token current (a named channel's), the pending
    /// budget not full, the rate within `--limits snowflake`. The channel's sequence numbers
    /// it was admitted at, or the answer to a duplicate.
    fn admit_append(
        &self,
        key: &ChannelKey,
        token: Option<&str>,
        uncompressed_len: usize,
    ) -> Result<Admit<(u64, u64)>, ApiError> {
        let elastic = key.channel == ELASTIC;
        let idempotent = self.settings.duplicate_append == DuplicateAppendPolicy::Idempotent;
        let mut chans = self.channels();
        if elastic {
            chans
                .entry(key.clone())
                .or_insert_with(|| Channel::new(self.settings.started_ms));
        }
        let ch = chans.get_mut(key).ok_or_else(|| no_channel(key))?;
        if ch.status != channels::SUCCESS {
            return Err(ApiError::new(
                409,
                MUST_REOPEN,
                format!(
                    "channel {} has status {}; reopen it and replay from its committed offset token",
                    key.channel, ch.status
                ),
            ));
        }
        if !elastic {
            let t = token.ok_or_else(|| {
                ApiError::new(
                    400,
                    "ERR_MISSING_CONTINUATION_TOKEN",
                    "continuationToken query parameter is required on a named channel",
                )
            })?;
            if let TokenCheck::Duplicate(next) = self.admit_token(ch, key, t, idempotent)? {
                return Ok(Admit::Duplicate(next));
            }
        }
        if self.state.pending_budget.is_full() {
            return Err(super::memory::full(&self.state.pending_budget));
        }
        if !elastic && self.settings.limits == crate::base::limits::Limits::Snowflake {
            ch.rate
                .admit(Instant::now(), uncompressed_len)
                .map_err(|why| {
                    ApiError::new(
                        429,
                        "ERR_TOO_MANY_REQUESTS",
                        format!(
                            "channel {}: {why} (--limits snowflake); slow down and retry",
                            key.channel
                        ),
                    )
                })?;
        }
        Ok(Admit::Go((ch.client_seq, ch.row_seq)))
    }

    /// Decodes and converts an append's body outside the channel lock (on a blocking thread
    /// for big bodies), at most `--max-concurrent-decodes` at a time (the others wait for a
    /// turn); a table that must evolve first evolves, then the rows are converted against it.
    async fn decode_append(
        self: &Arc<Self>,
        key: &ChannelKey,
        content_encoding: Option<String>,
        body: Bytes,
        body_charge: Option<crate::base::pending_budget::Reservation>,
    ) -> Result<Decoded, ApiError> {
        let permit = self.decode_permit().await?;
        let shared = self.clone();
        let work_key = key.clone();
        let work = move || {
            shared.decode_and_convert(&work_key, content_encoding.as_deref(), body, body_charge)
        };
        let decoded = if self.settings.sink {
            work()?
        } else {
            tokio::task::spawn_blocking(work).await.map_err(|e| {
                ApiError::new(500, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST", e.to_string())
            })??
        };
        drop(permit);
        match decoded {
            Converted::Done(decoded) => Ok(decoded),
            Converted::Evolve {
                raw,
                mut meter,
                table,
                ignore_case,
                evolution,
            } => {
                self.evolve(&table, ignore_case, &evolution).await?;
                let _permit = self.decode_permit().await?;
                let shared = self.clone();
                let work_key = key.clone();
                tokio::task::spawn_blocking(move || {
                    let d = shared.convert(&work_key, &raw, &mut meter);
                    drop(raw);
                    d.map(|d| d.settled(meter))
                })
                .await
                .map_err(|e| {
                    ApiError::new(500, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST", e.to_string())
                })?
            }
        }
    }

    /// Why the append's offset tokens cannot name its `parsed` rows, if they cannot: refused
    /// with `--strict-offsets`, else logged and returned.
    fn offset_violation(
        &self,
        key: &ChannelKey,
        start: Option<&str>,
        end: Option<&str>,
        parsed: u64,
    ) -> Result<Option<String>, ApiError> {
        let violation = crate::service::offsets::offset_span_violation(start, end, parsed);
        if let Some(v) = &violation {
            if self.settings.strict_offsets {
                return Err(ApiError::new(
                    400,
                    "ERR_OFFSET_TOKEN_SPAN",
                    format!("{v} (the emulator runs with --strict-offsets)"),
                ));
            }
            tracing::warn!(channel = %key.channel, "{v}");
        }
        Ok(violation)
    }

    /// Queues the converted rows on the channel as a pending batch, the token checked again
    /// when another append came in since this one was admitted: the next continuation token,
    /// or the answer to a duplicate.
    fn queue_append(&self, key: &ChannelKey, q: Queued) -> Result<Admit<String>, ApiError> {
        let idempotent = self.settings.duplicate_append == DuplicateAppendPolicy::Idempotent;
        let mut decoded = q.decoded;
        // The sink mode keeps no rows: its batches reserve nothing.
        let reserved = decoded
            .reserved
            .take()
            .unwrap_or_else(|| self.state.pending_budget.reservation());
        let mut chans = self.channels();
        let ch = chans.get_mut(key).ok_or_else(|| no_channel(key))?;
        if q.violation {
            ch.offset_span_violations += 1;
        }
        if key.channel != ELASTIC && (ch.client_seq, ch.row_seq) != q.seq {
            let t = q.token.as_deref().unwrap_or_default();
            if let TokenCheck::Duplicate(next) = self.admit_token(ch, key, t, idempotent)? {
                return Ok(Admit::Duplicate(next));
            }
        }
        ch.row_seq += 1;
        let next = ch.token();
        if let Some(t) = q.token {
            ch.last_append = Some((t, next.clone()));
        }
        ch.pending.push_back(PendingBatchBox(PendingBatch {
            ready_at: Instant::now() + self.settings.commit_delay,
            target: q.target,
            rows: decoded.rows,
            parsed: decoded.parsed,
            errors: decoded.errors,
            filtered: decoded.filtered,
            last_error: decoded.last_error,
            end_token: q.end_token,
            _reserved: reserved,
        }));
        Ok(Admit::Go(next))
    }

    /// A turn to decode an append (`--max-concurrent-decodes`), waiting for one.
    pub(super) async fn decode_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, ApiError> {
        self.state.decode_permits.acquire().await.map_err(|_| {
            ApiError::new(
                503,
                "ERR_SERVICE_UNAVAILABLE",
                "the emulator is shutting down",
            )
        })
    }

    /// Checks an append's continuation token on `ch` (counting refusals per channel); a fenced
    /// append is also counted in the total and logged.
    fn admit_token(
        &self,
        ch: &mut Channel,
        key: &ChannelKey,
        token: &str,
        idempotent: bool,
    ) -> Result<TokenCheck, ApiError> {
        ch.admit_token(token, idempotent).map_err(|refusal| {
            if let TokenRefusal::Fenced(why) = &refusal {
                self.state.fenced_appends.fetch_add(1, Ordering::Relaxed);
                tracing::info!(
                    channel = %key.channel,
                    pipe = %format!("{}.{}.{}", key.database, key.schema, key.pipe),
                    fenced_appends = ch.fenced_appends,
                    "append fenced: {why}; its writer no longer owns the channel"
                );
            }
            channels::Reject::from(refusal).into()
        })
    }

    /// Counts an accepted append whose `retryCount` was above 0 (an elastic channel applies it
    /// again: the server dedupes nothing).
    pub(crate) fn count_retried(&self, key: &ChannelKey) {
        if let Some(ch) = self.channels().get_mut(key) {
            ch.retried_appends += 1;
        }
    }

    /// The sticky session of the channel's current incarnation (a reopen starts a new one;
    /// docs/protocol.md "Sticky sessions") and whether `sent` echoed it: `echoed`,
    /// `missing` or `stale`. Counted per channel.
    pub(crate) fn sticky_session(
        &self,
        key: &ChannelKey,
        sent: Option<&str>,
    ) -> Option<(String, &'static str)> {
        let mut chans = self.channels();
        let ch = chans.get_mut(key)?;
        let current = format!("{:x}.{}", ch.created_on_ms, ch.client_seq);
        let (slot, echo) = match sent {
            Some(s) if s == current => (0, "echoed"),
            None => (1, "missing"),
            Some(_) => (2, "stale"),
        };
        ch.session_echoes[slot] += 1;
        Some((current, echo))
    }

    /// Decompresses and converts an append's rows; [`Converted::Evolve`] when the rows need
    /// their table to evolve first (`ENABLE_SCHEMA_EVOLUTION`). The memory this takes is
    /// charged to the pending budget as it materializes (`memory`).
    pub(super) fn decode_and_convert(
        &self,
        key: &ChannelKey,
        encoding: Option<&str>,
        body: Bytes,
        body_charge: Option<crate::base::pending_budget::Reservation>,
    ) -> Result<Converted, ApiError> {
        if self.settings.sink {
            let (d, len) = sink_count(encoding, body, self.settings.max_uncompressed_bytes)?;
            check_row_count(d.parsed, self.settings.max_rows_per_request)?;
            self.sink_counts.rows.fetch_add(d.parsed, Ordering::Relaxed);
            self.sink_counts
                .bytes
                .fetch_add(len as u64, Ordering::Relaxed);
            return Ok(Converted::Done(d));
        }
        // The body's charge goes on into decoding: `decompress` charges the body and its
        // output together, and the charge is lowered to what the rows hold once they are
        // converted (`settled`), not before (the output may hold more than its length).
        let mut meter = match body_charge {
            Some(charge) => Meter::holding(charge),
            None => Meter::new(&self.state.pending_budget),
        };
        let raw = decompress(
            encoding,
            body,
            self.settings.max_uncompressed_bytes,
            &mut |n| meter.charge(n),
        )?;
        // Counted before any row is parsed: parsed rows take ~200 bytes each in memory.
        let cap = self.settings.max_rows_per_request;
        check_row_count(lines(&raw).take(cap.saturating_add(1)).count() as u64, cap)?;
        let model = self.model();
        let (table, definition) = pipe_of(&model.catalog, key)?;
        if let Some(mut detector) = Detector::new(table, definition) {
            let held = meter.bytes();
            for line in lines(&raw) {
                meter.charge(held.saturating_add(parsed_estimate(line)))?;
                if let Ok(Value::Object(row)) = serde_json::from_slice::<Value>(line) {
                    detector.row(&row).map_err(|limit| {
                        ApiError::new(
                            400,
                            "ERR_SCHEMA_EVOLUTION_LIMIT",
                            format!("schema evolution of {}: {limit}", table.qualified_name()),
                        )
                    })?;
                }
            }
            let ignore_case = detector.ignore_case();
            let evolution = detector.finish();
            if !evolution.is_empty() {
                return Ok(Converted::Evolve {
                    raw,
                    meter,
                    table: table.qualified_name(),
                    ignore_case,
                    evolution,
                });
            }
        }
        let d = self.convert(key, &raw, &mut meter)?;
        drop(raw);
        Ok(Converted::Done(d.settled(meter)))
    }

    /// Converts an append's decompressed rows against the table as it is now, charging
    /// `meter` (which holds `raw` already) for each row before it is parsed and as it is
    /// held.
    pub(super) fn convert(
        &self,
        key: &ChannelKey,
        raw: &[u8],
        meter: &mut Meter,
    ) -> Result<Decoded, ApiError> {
        let model = self.model();
        let (table, definition) = pipe_of(&model.catalog, key)?;
        let options = crate::convert::ConvertOptions {
            binary_format: self.settings.binary_format,
            timezone: self.settings.timezone,
            // METADATA$START_SCAN_TIME of a transform: the append's arrival, by the emulator's
            // clock (docs/protocol-types-and-sql.md "Pipe transforms (emulator)").
            scan_time: chrono::DateTime::from_timestamp_micros(self.clock.now_us()),
            // A transform's rows share one deadline (docs/SECURITY.md "A pipe's per-row
            // cost").
            deadline: Some(std::time::Instant::now() + crate::convert::pipe_work::APPEND_TIME),
        };
        let mut d = Decoded {
            target: model.targets.get(&table.qualified_name()).cloned(),
            ..Decoded::default()
        };
        let base = meter.bytes();
        // Bytes the converted and rejected rows hold (their vector's spare room apart).
        let mut held = 0usize;
        for (i, line) in lines(raw).enumerate() {
            let rows =
                d.rows.capacity().max(d.rows.len() + 1) * std::mem::size_of::<Vec<SqlValue>>();
            meter.charge(base + held + rows + parsed_estimate(line))?;
            d.parsed += 1;
            match crate::convert::convert_line_for(table, definition, line, &options) {
                Ok(Some(values)) => {
                    held += row_bytes(&values);
                    d.rows.push(values);
                }
                // Dropped by the pipe's WHERE: parsed, neither inserted nor an error.
                Ok(None) => d.filtered += 1,
                Err(e) => {
                    d.errors += 1;
                    d.last_error = Some(format!("row {} of the request: {e}", i + 1));
                    if table.error_logging {
                        let (_, rejected) = d
                            .rejected
                            .get_or_insert_with(|| (table.error_table_name(), Vec::new()));
                        let row = rejected_row(key, line, &e);
                        // The payload (base64 at worst), the metadata and the message.
                        held += line.len() * 2 + e.message.len() * 2 + 1024;
                        rejected.push(row);
                    }
                }
            }
        }
        Ok(d)
    }

    /// Records the rows an append rejected in their table's error table (when the append is
    /// accepted, not with its commit).
    pub(super) async fn record_rejected(
        &self,
        rejected: Option<(String, Vec<storage::RejectedRow>)>,
    ) {
        let (Some((error_table, rows)), Some(st)) = (rejected, &self.storage) else {
            return;
        };
        let written = st
            .run(move |c| storage::write_rejected(c, &error_table, &rows))
            .await;
        let error = match written {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(e) => Some(e.to_string()),
        };
        if let Some(error) = error {
            tracing::warn!(%error, "could not write rejected rows to the error table");
        }
    }
}

/// What an append's check on its channel found: go on with the value, or answer the
/// duplicate of an applied append with the token it was given.
enum Admit<T> {
    Go(T),
    Duplicate(String),
}

/// An append's converted rows on their way into the channel's queue.
struct Queued {
    /// The channel's `(client_seq, row_seq)` when the append was admitted.
    seq: (u64, u64),
    token: Option<String>,
    target: Arc<Target>,
    decoded: Decoded,
    /// The batch's end offset token (none when empty).
    end_token: Option<String>,
    /// Whether its offset tokens cannot name its rows.
    violation: bool,
}

/// An append's rows, converted, or the evolution their table needs first.
pub(super) enum Converted {
    /// Converted against the table's current columns.
    Done(Decoded),
    /// The table (qualified name) must evolve before the rows (decompressed, charged to
    /// `meter`) are converted.
    Evolve {
        raw: Bytes,
        meter: Meter,
        table: String,
        ignore_case: bool,
        evolution: Evolution,
    },
}

/// A rejected row for the error table, in the shape Snowflake documents for Snowpipe
/// Streaming (docs/protocol-types-and-sql.md "Table features"): `ERROR_METADATA` holds the error (its code,
/// message, column as `error_source`, SQLSTATE), `service` and the `details` (pipe, channel,
/// whether the payload was truncated, its content type); `ERROR_DATA:"$1"` holds the line as
/// sent, as text (base64 when it is not UTF-8). The offset-token bounds are added by
/// `with_offset_bounds` once the append's tokens are known.
fn rejected_row(
    key: &ChannelKey,
    line: &[u8],
    error: &crate::convert::RowError,
) -> storage::RejectedRow {
    let (payload, content_type) = match std::str::from_utf8(line) {
        Err(_) => (
            base64::engine::general_purpose::STANDARD.encode(line),
            "binary-base64",
        ),
        Ok(text) => match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(_)) => (text.to_owned(), "json"),
            _ => (text.to_owned(), "json-invalid"),
        },
    };
    storage::RejectedRow {
        code: error.code(),
        metadata: json!({
            "error_code": error.code(),
            "error_message": error.message,
            "error_source": error.column,
            "sql_state": error.kind.sql_state(),
            "service": "snowpipe_streaming",
            "details": {
                "pipe_name": key.pipe,
                "channel_name": key.channel,
                "error_data_truncated": false,
                "error_data_content_type": content_type,
            },
        }),
        data: json!({ "$1": payload }),
    }
}

/// Adds the append's offset tokens to its rejected rows' `details`
/// (`offset_token_lower_bound`: the `startOffsetToken`; `offset_token_upper_bound`: the
/// `offsetToken`), each only when the append sent it.
pub(super) fn with_offset_bounds(
    rejected: Option<(String, Vec<storage::RejectedRow>)>,
    start: Option<&str>,
    end: Option<&str>,
) -> Option<(String, Vec<storage::RejectedRow>)> {
    let (table, mut rows) = rejected?;
    for row in &mut rows {
        let details = &mut row.metadata["details"];
        for (key, token) in [
            ("offset_token_lower_bound", start),
            ("offset_token_upper_bound", end),
        ] {
            if let Some(t) = token.filter(|t| !t.is_empty()) {
                details[key] = json!(t);
            }
        }
    }
    Some((table, rows))
}

/// The table channel `key`'s pipe writes to, and the pipe's definition (`None`: a default
/// pipe).
///
/// # Errors
/// The catalog's answer for an unknown or unauthorised pipe.
fn pipe_of<'c>(
    catalog: &'c crate::catalog::Catalog,
    key: &ChannelKey,
) -> Result<
    (
        &'c crate::catalog::Table,
        Option<&'c crate::catalog::PipeDefinition>,
    ),
    ApiError,
> {
    let resolved = catalog
        .resolve_pipe(&key.database, &key.schema, &key.pipe)
        .map_err(|e| ApiError::new(e.http_status(), e.code(), e.to_string()))?;
    let definition = catalog.pipe_definition(&key.database, &key.schema, &key.pipe);
    Ok((resolved.table, definition))
}

#[cfg(test)]
mod tests;
