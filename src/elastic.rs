//! [`ElasticChannel`]: Snowflake's elastic channels ("table mode"; docs/protocol-types-and-sql.md
//! "Elastic channels") — at-least-once, unordered appends with no open call and no offset
//! tokens, the recommended starting point when ordering and exactly-once are not needed.
//!
//! ```text
//!  append ──► encode (pipeline/encode) ──► Batcher (pipeline/batch)
//!                    ──full / max_client_lag / flush──► compress (pipeline/compress) ──► POST …/rows
//!                                                      (same requestId on every retry,
//!                                                       retryCount counts)
//! ```
//!
//! A batch whose successful attempt was not the first (`retry_count > 0`) may have been
//! applied more than once: each such batch is reported as an [`ElasticEvent`] and logged.
//!
//! Shared with named channels — through the one client state each channel holds
//! (`client_state::ClientState`) — the client's settings (lag, request size, compression); the
//! data path itself — rows are serialized by the channels' encoder into buffers from the
//! client's pool, cut into requests by the channels' `Batcher`, and compressed by the
//! channels' compression path with the client's compressors (inline when small, on the
//! blocking pool under the client-wide permits when large); its memory budget — buffered rows
//! are charged (at their buffers' capacity) from the append until their request is
//! acknowledged (at the compressed size once the body is built), so `append` waits for
//! room exactly as a named channel's does, and a full budget holds back appends on both — and
//! the metric names (`snowpipe_rows_appended_total`, `snowpipe_requests_total`, …), labelled
//! `kind="elastic"`, `channel="ELASTIC"` and `pipe` (the table's default pipe
//! `<TABLE>-STREAMING` for a table's elastic channel).
//!
//! An elastic channel lives in its client's lifecycle as a named channel does: the client's
//! core holds a [`Registry`] of them, so `client.flush()` and `client.close()` send what each
//! holds; a failed timed flush is kept and returned to the channel's next call; the rows held
//! when the last handle is dropped are sent in the background (bounded), and `client.close()`
//! waits for that send.

use std::collections::VecDeque;
use std::sync::{Arc, Weak};
use std::time::Duration;

use futures_util::future::join_all;
use serde::Serialize;
use tokio::sync::{broadcast, Mutex};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::client_state::ClientState;
use crate::pipeline::batch::{Batcher, Chunk, SealedBatch};
use crate::pipeline::compress;
use crate::pipeline::metrics::DataMetrics;
use crate::pipeline::pool::RowSize;
use crate::rows::Rows;
use crate::transport::{AppendRequest, ElasticTarget, PipePath};
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

/// An elastic channel's metrics: the named channels' data-path metrics (`kind="elastic"`)
/// and the batches acknowledged on a retry.
#[derive(Debug, Clone)]
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

/// How long the rows an elastic channel still held when its last handle was dropped are
/// given to reach the server, in the background (as a named channel's drop).
const DROP_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// The elastic channels of one client (held by the client's core): what `client.flush()`
/// and `client.close()` deliver, and the background sends of dropped ones that
/// `client.close()` waits for.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    live: std::sync::Mutex<Vec<Weak<Inner>>>,
    /// The sends started when a channel's last handle was dropped.
    dropped: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Cancelled by `client.close()`: every channel's timer stops and appends are refused.
    closed: CancellationToken,
}

impl Registry {
    fn register(&self, inner: &Arc<Inner>) {
        let mut live = crate::sync::lock(&self.live);
        live.retain(|w| w.strong_count() > 0);
        live.push(Arc::downgrade(inner));
    }

    fn channels(&self) -> Vec<ElasticChannel> {
        crate::sync::lock(&self.live)
            .iter()
            .filter_map(Weak::upgrade)
            .map(|inner| ElasticChannel { inner })
            .collect()
    }

    /// Flushes every elastic channel of the client (`client.flush()`).
    ///
    /// # Errors
    /// The first channel's error (a send that failed now, or a timed flush that failed
    /// before); the other channels are still flushed.
    pub(crate) async fn flush_all(&self) -> Result<()> {
        let flushes = self
            .channels()
            .into_iter()
            .map(|c| async move { c.flush().await });
        join_all(flushes).await.into_iter().collect()
    }

    /// Stops taking appends, flushes every elastic channel and stops its timer, and waits for
    /// the background sends of dropped ones (`client.close()`).
    ///
    /// # Errors
    /// As [`flush_all`](Self::flush_all).
    pub(crate) async fn close_all(&self) -> Result<()> {
        self.closed.cancel();
        let flushed = self.flush_all().await;
        for c in self.channels() {
            c.inner.stop.cancel();
        }
        let dropped = std::mem::take(&mut *crate::sync::lock(&self.dropped));
        join_all(dropped).await;
        flushed
    }
}

/// What sending a batch needs: kept apart from the handle's state so the rows still held
/// when the last handle is dropped can be sent after it.
#[derive(Debug)]
struct Sender {
    /// The client's state: the REST layer, the settings (lag, request size, compression) and
    /// the data path's shared pieces (budget, buffers, compressors, pipe parameters).
    client: Arc<ClientState>,
    target: ElasticTarget,
    /// One batch on the wire at a time per channel (appends wait: the backpressure point).
    sending: Mutex<()>,
    events: broadcast::Sender<ElasticEvent>,
    metrics: Metrics,
}

#[derive(Debug)]
struct Inner {
    sender: Arc<Sender>,
    /// The pipe the target writes through (a table's default pipe), whose
    /// `BINARY_INPUT_FORMAT` the rows are written in.
    pipe: PipePath,
    /// The open batch (the channels' batcher; its chunks hold their budget).
    batcher: std::sync::Mutex<Batcher>,
    /// The typical size of this channel's rows, for sizing its row buffers.
    row_size: RowSize,
    /// The error of a timed (background) flush, returned to the next `append`, `flush`
    /// or `close` of any handle.
    failed: std::sync::Mutex<Option<Error>>,
    /// The client's elastic channels (this one is registered there).
    registry: Arc<Registry>,
    /// Stops the timer (`close`, `client.close()`, the last handle dropped).
    stop: CancellationToken,
}

/// An elastic channel: append rows from any number of tasks; they are batched, compressed
/// and sent at least once, in no particular order. Cheap to clone. Made by
/// [`Pipe::elastic_channel`](crate::Pipe::elastic_channel).
///
/// Rows are sent when a batch is full (one request, at most 4 MB on the wire), after the
/// client's `max_client_lag` (a timed flush, in the background), or on
/// [`flush`](Self::flush). The channel belongs to its client's lifecycle:
/// [`StreamingIngestClient::flush`](crate::StreamingIngestClient::flush) and
/// [`StreamingIngestClient::close`](crate::StreamingIngestClient::close) send what it holds
/// (and after `close` it takes no more rows).
///
/// A timed flush that fails is not only logged: its error is returned by the next
/// [`append`](Self::append), [`flush`](Self::flush) or [`close`](Self::close) of
/// any handle of the channel (the failed batch's rows were not acknowledged: append them
/// again).
///
/// # Dropping without `close()`
///
/// As for a named channel: when the last handle is dropped, the rows it still buffers are
/// sent in the background for at most 5 seconds (nothing blocks the dropping thread; a tokio
/// runtime must still be running), and `client.close()` waits for that send. Rows not sent by
/// then are dropped, and an error is only logged. Use [`close`](Self::close) for a
/// guaranteed flush.
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
        client: Arc<ClientState>,
        target: ElasticTarget,
        registry: Arc<Registry>,
    ) -> Self {
        let (events, _) = broadcast::channel(256);
        let pipe = target.pipe_path();
        let metrics = Metrics::new(&pipe);
        let stop = registry.closed.child_token();
        let inner = Arc::new(Inner {
            pipe,
            batcher: std::sync::Mutex::new(Batcher::new(client.settings.batch_cap())),
            row_size: RowSize::default(),
            sender: Arc::new(Sender {
                client,
                target,
                sending: Mutex::new(()),
                events,
                metrics,
            }),
            failed: std::sync::Mutex::new(None),
            registry,
            stop,
        });
        inner.registry.register(&inner);
        let weak = Arc::downgrade(&inner);
        let stop = inner.stop.clone();
        let lag = inner.sender.client.settings.max_client_lag;
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
                    if let Err(e) = handle.send_sealed().await {
                        tracing::warn!(
                            error = %e,
                            "elastic channel: a timed flush failed; the next append, flush or \
                             close returns the error"
                        );
                        crate::sync::lock(&handle.inner.failed).get_or_insert(e);
                    }
                }
            }
        });
        Self { inner }
    }

    /// Subscribes to [`ElasticEvent`]s (batches that may have landed twice).
    pub fn events(&self) -> broadcast::Receiver<ElasticEvent> {
        self.inner.sender.events.subscribe()
    }

    /// The error of a timed flush not yet returned to a caller.
    fn take_failure(&self) -> Result<()> {
        crate::sync::lock(&self.inner.failed)
            .take()
            .map_or(Ok(()), Err)
    }

    /// Appends rows (serde values, NDJSON or a record batch: [`Rows`]; no positions, an
    /// elastic channel has no offset tokens). Resolves when they are buffered, or — when the
    /// buffer fills — once the full batch was sent.
    ///
    /// ```no_run
    /// # async fn f(elastic: snowpipe_streaming::ElasticChannel) -> Result<(), snowpipe_streaming::Error> {
    /// use snowpipe_streaming::Rows;
    /// elastic.append(Rows::serde([serde_json::json!({ "id": 1 })])).await?;
    /// elastic.append(Rows::ndjson("{\"id\":2}\n")).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// The serialized rows are charged to the client's memory budget, shared with named
    /// channels: when it is full this waits for room (as a named channel's `append`
    /// does), until acknowledged requests — elastic or named commits — free some. An append
    /// larger than the whole budget takes the whole budget.
    ///
    /// # Errors
    /// [`Error::Serialization`] for a row that is not a JSON object or cannot be serialized (an
    /// empty NDJSON line, a record batch value Snowflake cannot store),
    /// [`Error::InvalidArgument`] for a record batch column of a type that is not written,
    /// [`Error::RowTooLarge`] for a row larger than one request; errors of a batch sent on
    /// the way, or of an earlier timed flush ([`Error::Server`], [`Error::Transport`],
    /// [`Error::Auth`]): that batch's rows were not acknowledged and are dropped — append
    /// them again (at-least-once); when the error is a timed flush's, the rows of this call
    /// were not taken either. [`Error::Shutdown`] after the client was closed.
    ///
    /// # Cancellation
    /// Dropping the future after the rows were buffered leaves them buffered.
    pub async fn append<I>(&self, rows: Rows<I>) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        self.take_failure()?;
        if self.inner.registry.closed.is_cancelled() {
            return Err(Error::shutdown("client (elastic channel)"));
        }
        let s = &*self.inner.sender.client;
        let binary = s.pipe_params.binary(s.api.as_ref(), &self.inner.pipe).await;
        let row_cap = s.settings.row_cap();
        let encoded = rows.encode(&binary, &row_cap, &s.buffers, &self.inner.row_size)?;
        if encoded.rows == 0 {
            return Ok(());
        }
        let (mut charged, waited) = s.budget.acquire(encoded.held).await?;
        let m = &self.inner.sender.metrics;
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
            m.data.buffer_bytes.set(batcher.len() as f64);
        }
        for batch in full {
            self.inner.sender.send(batch).await?;
        }
        Ok(())
    }

    /// Appends serde rows.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    ///
    /// # Cancellation
    /// As [`append`](Self::append).
    #[deprecated(
        since = "0.1.0",
        note = "use ElasticChannel::append(Rows::serde(rows))"
    )]
    pub async fn append_rows<I>(&self, rows: I) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        self.append(Rows::serde(rows)).await
    }

    /// Sends everything buffered and resolves when the server acknowledged it (durably
    /// buffered, not yet queryable).
    ///
    /// # Errors
    /// As [`append`](Self::append): the error of this send, else of an earlier
    /// timed flush not yet returned.
    ///
    /// # Cancellation
    /// Dropping the future may leave the batch sent or not (at-least-once: append again).
    pub async fn flush(&self) -> Result<()> {
        let sent = self.send_sealed().await;
        let earlier = self.take_failure();
        sent.and(earlier)
    }

    /// Seals the open batch and sends it.
    async fn send_sealed(&self) -> Result<()> {
        let batch = self.inner.lock().seal();
        self.inner.sender.metrics.data.buffer_bytes.set(0.0);
        match batch {
            Some(batch) => self.inner.sender.send(batch).await,
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
}

impl Sender {
    async fn send(&self, mut batch: SealedBatch) -> Result<()> {
        let s = &*self.client;
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
        let m = &self.metrics;
        let wire = body.len() as u64;
        let request = AppendRequest {
            body,
            compression: s.settings.compression,
            uncompressed_len: batch.len,
            row_count: batch.rows,
            start_offset_token: None,
            end_offset_token: None,
            continuation_token: String::new(),
            min_append_timestamp_ms: batch.min_ts_ms,
        };
        let _one_at_a_time = self.sending.lock().await;
        let ack = match s.api.append_elastic(&self.target, &request).await {
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
                target_table = %self.target,
                request_id = %ack.request_id,
                retry_count = ack.retry_count,
                rows = batch.rows,
                "elastic batch acknowledged on a retry: its rows may have landed twice"
            );
            let _ = self.events.send(ElasticEvent {
                target: self.target.to_string(),
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
        let batch = crate::sync::lock(&self.batcher).seal();
        let Some(batch) = batch else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            tracing::warn!(
                rows = batch.rows,
                "elastic channel dropped outside a tokio runtime: its buffered rows are dropped"
            );
            return;
        };
        let sender = Arc::clone(&self.sender);
        let rows = batch.rows;
        let task = runtime.spawn(async move {
            match tokio::time::timeout(DROP_FLUSH_TIMEOUT, sender.send(batch)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(
                    error = %e,
                    rows,
                    "elastic channel dropped: sending its buffered rows failed; they are dropped"
                ),
                Err(_) => tracing::warn!(
                    rows,
                    "elastic channel dropped: its buffered rows were not sent within 5 s; they \
                     are dropped"
                ),
            }
        });
        let mut dropped = crate::sync::lock(&self.registry.dropped);
        dropped.retain(|t| !t.is_finished());
        dropped.push(task);
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
