//! [`ElasticChannel`]: Snowflake's elastic channels ("table mode"; docs/protocol.md
//! "Elastic channels") — at-least-once, unordered appends with no open call and no offset
//! tokens, the recommended starting point when ordering and exactly-once are not needed.
//!
//! ```text
//!  append_rows ──► encode (pipeline/encode) ──► Batcher (pipeline/batch)
//!                    ──full / max_client_lag / flush──► compress (pipeline/compress) ──► POST …/rows
//!                                                      (same requestId on every retry,
//!                                                       retryCount counts)
//! ```
//!
//! A batch whose successful attempt was not the first (`retry_count > 0`) may have been
//! applied more than once: each such batch is reported as an [`ElasticEvent`] and logged.
//!
//! Shared with named channels: the client's settings (lag, request size, compression); the
//! data path itself — rows are serialized by the channels' encoder into buffers from the
//! client's pool, cut into requests by the channels' `Batcher`, and compressed by the
//! channels' compression path with the client's compressors (inline when small, on the
//! blocking pool under the client-wide permits when large); its memory budget — buffered rows
//! are charged (at their buffers' capacity) from the append until their request is
//! acknowledged (at the compressed size once the body is built), so `append_rows` waits for
//! room exactly as a named channel's does, and a full budget holds back appends on both — and
//! the metric names (`snowpipe_rows_appended_total`, `snowpipe_requests_total`, …), labelled
//! `kind="elastic"`, `channel="ELASTIC"` and `pipe` (the table's default pipe
//! `<TABLE>-STREAMING` for a table's elastic channel).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::sync::{broadcast, Mutex};
use tokio_util::sync::CancellationToken;

use crate::pipeline::batch::{Batcher, Chunk, SealedBatch};
use crate::pipeline::budget::Budget;
use crate::pipeline::compress::{self, CompressorPool};
use crate::pipeline::encode;
use crate::pipeline::metrics::DataMetrics;
use crate::pipeline::pipe_params::PipeParams;
use crate::pipeline::pool::{BufferPool, RowSize};
use crate::transport::{AppendRequest, Compression, ElasticTarget, IngestApi, PipePath};
use crate::{Error, Result};

/// A batch that may have landed more than once: its successful request was a retry of an
/// attempt whose outcome is unknown (the official SDK's `retry_count` signal).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ElasticEvent {
    /// Where the rows went (`DB.SCHEMA.TABLE (elastic)` or `DB.SCHEMA.PIPE/ELASTIC`).
    pub target: String,
    /// The `requestId` every attempt of the batch carried.
    pub request_id: String,
    /// The `retryCount` of the attempt that succeeded (at least 1).
    pub retry_count: u32,
    /// Rows in the batch.
    pub rows: usize,
}

/// Settings an elastic channel takes from its client.
#[derive(Debug, Clone)]
pub(crate) struct ElasticSettings {
    pub(crate) max_client_lag: Duration,
    pub(crate) batch_cap: usize,
    /// How large one row may be (a batch, or alone when it compresses into a request).
    pub(crate) row_cap: encode::RowCap,
    pub(crate) compression: Compression,
    /// The client-wide memory budget named channels charge too.
    pub(crate) budget: Budget,
    /// The client's pool of row and body buffers.
    pub(crate) buffers: Arc<BufferPool>,
    /// The client's compressors (contexts and blocking-pool permits).
    pub(crate) compressors: Arc<CompressorPool>,
    /// The client's knowledge of its pipes' parameters (the `BINARY_INPUT_FORMAT`).
    pub(crate) pipe_params: Arc<PipeParams>,
}

/// An elastic channel's metrics: the named channels' data-path metrics (`kind="elastic"`)
/// and the batches acknowledged on a retry.
#[derive(Debug)]
struct Metrics {
    data: DataMetrics,
    possible_duplicates: metrics::Counter,
}

impl Metrics {
    /// Labelled with the pipe the channel writes through (for a table, its default pipe).
    fn new(pipe: &PipePath) -> Self {
        let pipe = &pipe.pipe;
        let labels = DataMetrics::labels("ELASTIC", pipe, "elastic");
        Self {
            data: DataMetrics::new("ELASTIC", pipe, "elastic"),
            possible_duplicates: metrics::counter!(
                "snowpipe_elastic_possible_duplicates_total",
                &labels
            ),
        }
    }
}

#[derive(Debug)]
struct Inner {
    api: Arc<dyn IngestApi>,
    target: ElasticTarget,
    /// The pipe the target writes through (a table's default pipe), whose
    /// `BINARY_INPUT_FORMAT` the rows are written in.
    pipe: PipePath,
    settings: ElasticSettings,
    /// The open batch (the channels' batcher; its chunks hold their budget).
    batcher: std::sync::Mutex<Batcher>,
    /// The typical size of this channel's rows, for sizing its row buffers.
    row_size: RowSize,
    /// One batch on the wire at a time per handle (appends wait: the backpressure point).
    sending: Mutex<()>,
    events: broadcast::Sender<ElasticEvent>,
    stop: CancellationToken,
    metrics: Metrics,
}

/// An elastic channel: append rows from any number of tasks; they are batched, compressed
/// and sent at least once, in no particular order. Cheap to clone. Made by
/// [`Pipe::elastic_channel`](crate::Pipe::elastic_channel).
///
/// Rows are sent when a batch is full (one request, at most 4 MB on the wire), after the
/// client's `max_client_lag`, or on [`flush`](Self::flush). Dropping every handle stops the
/// background timer; call [`close`](Self::close) to send what is buffered.
#[derive(Debug, Clone)]
pub struct ElasticChannel {
    inner: Arc<Inner>,
}

fn epoch_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl ElasticChannel {
    pub(crate) fn new(
        api: Arc<dyn IngestApi>,
        target: ElasticTarget,
        settings: ElasticSettings,
    ) -> Self {
        let (events, _) = broadcast::channel(256);
        let pipe = target.pipe_path();
        let metrics = Metrics::new(&pipe);
        let inner = Arc::new(Inner {
            api,
            metrics,
            target,
            pipe,
            batcher: std::sync::Mutex::new(Batcher::new(settings.batch_cap)),
            row_size: RowSize::default(),
            settings,
            sending: Mutex::new(()),
            events,
            stop: CancellationToken::new(),
        });
        let weak = Arc::downgrade(&inner);
        let stop = inner.stop.clone();
        let lag = inner.settings.max_client_lag;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    () = tokio::time::sleep(lag) => {}
                }
                let Some(inner) = weak.upgrade() else { return };
                let due = inner.lock().first_at().is_some_and(|t| t.elapsed() >= lag);
                if due {
                    let handle = Self { inner };
                    if let Err(e) = handle.flush().await {
                        tracing::warn!(error = %e, "elastic channel: a timed flush failed");
                    }
                }
            }
        });
        Self { inner }
    }

    /// Subscribes to [`ElasticEvent`]s (batches that may have landed twice).
    pub fn events(&self) -> broadcast::Receiver<ElasticEvent> {
        self.inner.events.subscribe()
    }

    /// Appends rows (each serialized as one JSON object). Resolves when they are buffered,
    /// or — when the buffer fills — once the full batch was sent.
    ///
    /// The serialized rows are charged to the client's memory budget, shared with named
    /// channels: when it is full this waits for room (as a named channel's `append_rows`
    /// does), until acknowledged requests — elastic or named commits — free some. An append
    /// larger than the whole budget takes the whole budget.
    ///
    /// # Errors
    /// [`Error::Serialization`] for a row that is not a JSON object or cannot be serialized,
    /// [`Error::RowTooLarge`] for a row larger than one request; errors of a batch sent on
    /// the way ([`Error::Server`], [`Error::Transport`], [`Error::Auth`]): that batch's rows
    /// were not acknowledged and are dropped — append them again (at-least-once).
    ///
    /// # Cancellation
    /// Dropping the future after the rows were buffered leaves them buffered.
    pub async fn append_rows<I>(&self, rows: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let s = &self.inner.settings;
        let binary = s
            .pipe_params
            .binary(self.inner.api.as_ref(), &self.inner.pipe)
            .await;
        let encoded = crate::binary::with_pipe_format(&binary, || {
            encode::encode_rows(rows, &s.row_cap, &s.buffers, &self.inner.row_size)
        })?;
        if encoded.rows == 0 {
            return Ok(());
        }
        let (mut charged, waited) = s.budget.acquire(encoded.held).await?;
        let m = &self.inner.metrics;
        if !waited.is_zero() {
            m.data.backpressure_wait.record(waited.as_secs_f64());
        }
        m.data.rows_appended.increment(encoded.rows as u64);
        m.data.bytes_appended.increment(encoded.bytes as u64);
        let mut full = VecDeque::new();
        {
            let mut batcher = self.inner.lock();
            let (now, now_ms) = (tokio::time::Instant::now(), epoch_ms());
            for piece in encoded.pieces {
                let chunk = Chunk {
                    budget: charged.split(piece.held),
                    rows: piece.rows,
                    data: piece.data,
                    start: None,
                    end: None,
                    continues: false,
                };
                batcher.push(chunk, now, now_ms, &mut full);
            }
            #[allow(clippy::cast_precision_loss)]
            m.data.buffer_bytes.set(batcher.len() as f64);
        }
        for batch in full {
            self.send(batch).await?;
        }
        Ok(())
    }

    /// Sends everything buffered and resolves when the server acknowledged it (durably
    /// buffered, not yet queryable).
    ///
    /// # Errors
    /// As [`append_rows`](Self::append_rows).
    ///
    /// # Cancellation
    /// Dropping the future may leave the batch sent or not (at-least-once: append again).
    pub async fn flush(&self) -> Result<()> {
        let batch = self.inner.lock().seal();
        self.inner.metrics.data.buffer_bytes.set(0.0);
        match batch {
            Some(batch) => self.send(batch).await,
            None => Ok(()),
        }
    }

    /// Flushes and stops the background timer.
    ///
    /// # Errors
    /// As [`flush`](Self::flush).
    ///
    /// # Cancellation
    /// As [`flush`](Self::flush).
    pub async fn close(self) -> Result<()> {
        let r = self.flush().await;
        self.inner.stop.cancel();
        r
    }

    async fn send(&self, mut batch: SealedBatch) -> Result<()> {
        let s = &self.inner.settings;
        let segments = std::mem::take(&mut batch.segments);
        let body = compress::compress(&s.compressors, segments.clone(), batch.len, &s.buffers)
            .await
            .map_err(|e| compression_error(&e))?;
        // The rows' buffers go back to the client's pool; until the acknowledgement the
        // budget holds the body, as for a named channel's batch once compressed.
        for segment in segments {
            s.buffers.give(segment);
        }
        batch.budget.shrink_to(body.len());
        let m = &self.inner.metrics;
        let wire = body.len() as u64;
        let request = AppendRequest {
            body,
            compression: s.compression,
            uncompressed_len: batch.len,
            row_count: batch.rows,
            start_offset_token: None,
            end_offset_token: None,
            continuation_token: String::new(),
            min_append_timestamp_ms: batch.min_ts_ms,
        };
        let _one_at_a_time = self.inner.sending.lock().await;
        let ack = match self
            .inner
            .api
            .append_elastic(&self.inner.target, &request)
            .await
        {
            Ok(ack) => ack,
            Err(e) => {
                m.data.request_errors.increment(1);
                return Err(e);
            }
        };
        drop(batch.budget);
        s.buffers.give(request.body);
        m.data.requests.increment(1);
        m.data.wire_bytes.increment(wire);
        if ack.retry_count > 0 {
            m.data.retries.increment(u64::from(ack.retry_count));
            m.possible_duplicates.increment(1);
            tracing::warn!(
                target_table = %self.inner.target,
                request_id = %ack.request_id,
                retry_count = ack.retry_count,
                rows = batch.rows,
                "elastic batch acknowledged on a retry: its rows may have landed twice"
            );
            let _ = self.inner.events.send(ElasticEvent {
                target: self.inner.target.to_string(),
                request_id: ack.request_id,
                retry_count: ack.retry_count,
                rows: batch.rows,
            });
        }
        Ok(())
    }
}

impl Inner {
    fn lock(&self) -> std::sync::MutexGuard<'_, Batcher> {
        crate::sync::lock(&self.batcher)
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

fn compression_error(e: &std::io::Error) -> Error {
    Error::Serialization {
        row_index: 0,
        message: format!("compression failed: {e}"),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transport::PipePath;

    fn table(name: &str) -> ElasticTarget {
        ElasticTarget::Table {
            database: "DB".into(),
            schema: "S".into(),
            table: name.into(),
        }
    }

    /// A table's elastic metrics carry its default pipe as named channels and the open path
    /// name it: a quoted table keeps the suffix inside the quotes.
    #[test]
    fn the_pipe_label_follows_the_default_pipe_rule() {
        assert_eq!(table("T").pipe_path().pipe, "T-STREAMING");
        assert_eq!(
            table("\"My Table\"").pipe_path().pipe,
            "\"My Table-STREAMING\""
        );
        let pipe = ElasticTarget::Pipe(PipePath {
            database: "DB".into(),
            schema: "S".into(),
            pipe: "P".into(),
        });
        assert_eq!(pipe.pipe_path().pipe, "P");
    }
}
