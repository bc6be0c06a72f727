//! Hooks for the benches in `benches/` (feature `bench-internals`): the channel's CPU pipeline
//! (serialize, buffer into request-sized batches, compress) without I/O, and a client on a
//! transport that does nothing. Hidden from the docs and not a stable API.
//!
//! A harness over the crate, like the tests: a room of its own at the top, which no other
//! room uses.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;

use crate::api::{ChannelStatusWire, OpenChannelRequest, OpenChannelResponse};
use crate::pipeline::batch::{Batcher, Chunk, SealedBatch};
use crate::pipeline::budget::BudgetBytes;
use crate::pipeline::compress::codec::Codec;
use crate::pipeline::encode;
use crate::pipeline::pool::{BufferPool, RowSize};
use crate::settings::ChannelSettings;
use crate::transport::{AppendAck, AppendRequest, ChannelPath, ChannelWire, IngestApi, PipePath};
use crate::{Compression, Result, StreamingIngestClient};

/// What a channel does to appended rows before the HTTP request, run synchronously: the same
/// functions the caller's task and the channel actor run.
#[derive(Debug)]
pub struct Pipeline {
    cap: usize,
    batcher: Batcher,
    codec: Codec,
    sealed: VecDeque<SealedBatch>,
    buffers: BufferPool,
    row_size: RowSize,
}

/// A record batch as [`Channel::append_record_batch`](crate::Channel::append_record_batch)
/// writes it (NDJSON, BINARY columns in hex), for the benches.
///
/// # Errors
/// As [`Channel::append_record_batch`](crate::Channel::append_record_batch)'s checks.
#[cfg(feature = "arrow")]
pub fn encode_record_batch(batch: &arrow_array::RecordBatch) -> Result<Vec<u8>> {
    crate::arrow::encode(batch, Ok(crate::binary::BinaryFormat::Hex))
}

/// Totals produced by a [`Pipeline`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Output {
    /// Request bodies produced.
    pub requests: usize,
    /// Uncompressed NDJSON bytes in them.
    pub ndjson_bytes: usize,
    /// Bytes on the wire (after compression).
    pub body_bytes: usize,
}

impl Pipeline {
    /// A pipeline with the default request size (4 MB) and the given compression.
    ///
    /// # Errors
    /// When the compressor cannot be created.
    pub fn new(compression: Compression) -> Result<Self> {
        let settings = ChannelSettings {
            compression,
            ..ChannelSettings::default()
        };
        let cap = settings.batch_cap();
        Ok(Self {
            cap,
            batcher: Batcher::new(cap),
            codec: settings.codec(),
            sealed: VecDeque::new(),
            buffers: BufferPool::new(2 * settings.max_request_bytes),
            row_size: RowSize::default(),
        })
    }

    /// Serializes `rows` as `append_rows` does, buffers them, and compresses every batch that
    /// became full.
    ///
    /// # Errors
    /// As [`Channel::append_rows`](crate::Channel::append_rows) for serialization; a
    /// compression failure as [`Error::Serialization`](crate::Error::Serialization).
    pub fn append<I>(&mut self, rows: I, out: &mut Output) -> Result<()>
    where
        I: IntoIterator,
        I::Item: Serialize,
    {
        let encoded = encode::encode_rows(
            rows,
            &encode::RowCap::uncompressed(self.cap),
            &self.buffers,
            &self.row_size,
        )?;
        let now = tokio::time::Instant::now();
        let n = encoded.pieces.len();
        for (i, piece) in encoded.pieces.into_iter().enumerate() {
            let len = piece.data.len();
            self.batcher.push(
                Chunk {
                    data: piece.data,
                    rows: piece.rows,
                    start: None,
                    end: None,
                    budget: BudgetBytes::detached(len),
                    continues: i + 1 < n,
                },
                now,
                0,
                &mut self.sealed,
            );
        }
        self.compress_sealed(out)
    }

    /// Seals and compresses the open batch.
    ///
    /// # Errors
    /// As [`append`](Self::append).
    pub fn finish(&mut self, out: &mut Output) -> Result<()> {
        self.sealed.extend(self.batcher.seal());
        self.compress_sealed(out)
    }

    fn compress_sealed(&mut self, out: &mut Output) -> Result<()> {
        while let Some(b) = self.sealed.pop_front() {
            let body = self
                .codec
                .encode(&b.segments, b.len, &self.buffers)
                .map_err(|e| crate::Error::Serialization {
                    row_index: 0,
                    message: format!("compression failed: {e}"),
                    source: Some(Box::new(e)),
                })?;
            out.requests += 1;
            out.ndjson_bytes += b.len;
            out.body_bytes += body.len();
            for s in b.segments {
                self.buffers.give(s);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pipeline_cuts_request_sized_compressed_bodies() {
        let mut p = Pipeline::new(Compression::Zstd).unwrap();
        let mut out = Output::default();
        let rows: Vec<_> = (0..30_000)
            .map(|i| serde_json::json!({"ID": i, "NAME": "x".repeat(200)}))
            .collect();
        for chunk in rows.chunks(1000) {
            p.append(chunk, &mut out).unwrap();
        }
        p.finish(&mut out).unwrap();
        assert!(out.requests >= 2, "{out:?}");
        assert!(out.ndjson_bytes > 6_000_000, "{out:?}");
        assert!(out.body_bytes < out.ndjson_bytes / 10, "{out:?}");
    }
}

/// A transport that accepts every request and commits every token at once: what is left is
/// the client's own work (`benches/null_transport.rs`).
#[derive(Debug, Default)]
pub struct NullApi {
    last_end: Mutex<Option<String>>,
    wire_bytes: AtomicUsize,
}

impl NullApi {
    /// Request body bytes received so far (after compression).
    pub fn wire_bytes(&self) -> usize {
        self.wire_bytes.load(Ordering::Relaxed)
    }
}

#[async_trait::async_trait]
impl IngestApi for NullApi {
    async fn open_channel(
        &self,
        _: &ChannelPath,
        _: &OpenChannelRequest,
    ) -> Result<OpenChannelResponse> {
        Ok(OpenChannelResponse {
            next_continuation_token: "c".into(),
            channel_status: ChannelStatusWire {
                channel_status_code: Some("SUCCESS".into()),
                ..Default::default()
            },
        })
    }
    async fn append_rows(
        &self,
        _: &ChannelPath,
        r: &AppendRequest,
        _: Option<&http::HeaderValue>,
        _: &ChannelWire,
    ) -> Result<AppendAck> {
        self.wire_bytes.fetch_add(r.body.len(), Ordering::Relaxed);
        *self.last_end.lock().unwrap() = r.end_offset_token.as_ref().map(ToString::to_string);
        Ok(AppendAck {
            next_continuation_token: "c".into(),
            session: None,
        })
    }
    async fn bulk_channel_status(
        &self,
        _: &PipePath,
        names: &[String],
    ) -> Result<HashMap<String, ChannelStatusWire>> {
        let committed = self.last_end.lock().unwrap().clone();
        Ok(names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    ChannelStatusWire {
                        channel_status_code: Some("SUCCESS".into()),
                        last_committed_offset_token: committed.clone(),
                        ..Default::default()
                    },
                )
            })
            .collect())
    }
    async fn drop_channel(&self, _: &ChannelPath) -> Result<Option<String>> {
        Ok(None)
    }
}

/// A client on a [`NullApi`], with the default settings but `max_client_lag` and
/// `commit_poll_interval`.
pub fn null_client(
    max_client_lag: Duration,
    commit_poll_interval: Duration,
) -> (StreamingIngestClient, Arc<NullApi>) {
    let api = Arc::new(NullApi::default());
    let client = StreamingIngestClient::from_parts(
        Arc::clone(&api) as _,
        ChannelSettings {
            max_client_lag,
            commit_poll_interval,
            ..ChannelSettings::default()
        },
    );
    (client, api)
}
