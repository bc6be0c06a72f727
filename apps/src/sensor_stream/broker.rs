//! The JetStream side: connecting, attaching to (or creating) the stream, per-shard subjects,
//! the last sequence of each shard, and every sequence a shard holds (for reconciliation).

use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;

/// Subjects are `sensors.<shard>`.
pub const SUBJECT_PREFIX: &str = "sensors";

/// The subject of `shard`.
pub fn subject(shard: u32) -> String {
    format!("{SUBJECT_PREFIX}.{shard}")
}

/// Connects to `url`; the client reconnects by itself after a broker restart.
///
/// # Errors
/// When the broker cannot be reached (the message names the URL).
pub async fn connect(url: &str) -> Result<jetstream::Context> {
    let client = async_nats::ConnectOptions::new()
        .name("sensor_stream")
        .retry_on_initial_connect()
        .connection_timeout(Duration::from_secs(5))
        .connect(url)
        .await
        .with_context(|| format!("cannot connect to the NATS server at {url}"))?;
    // Fail fast when nothing answers (retry_on_initial_connect connects in the background).
    tokio::time::timeout(Duration::from_secs(10), client.flush())
        .await
        .map_err(|_| {
            anyhow::anyhow!(
                "no NATS server answers at {url} within 10 s: start one with `nats-server -js`, or fix --nats"
            )
        })?
        .with_context(|| format!("cannot reach the NATS server at {url}"))?;
    Ok(jetstream::new(client))
}

/// Attaches to the stream `name`, whatever its settings; creates it (file storage, subjects
/// `sensors.*`) only when it does not exist, as streams are usually provisioned elsewhere.
///
/// # Errors
/// When JetStream is not enabled on the server or the stream cannot be read or created.
pub async fn attach_stream(js: &jetstream::Context, name: &str) -> Result<stream::Stream> {
    for attempt in 0..3 {
        match js.get_stream(name).await {
            Ok(s) => return Ok(s),
            Err(e)
                if matches!(e.kind(), jetstream::context::GetStreamErrorKind::JetStream(ref je)
                    if je.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                let created = js
                    .create_stream(stream::Config {
                        name: name.to_string(),
                        subjects: vec![format!("{SUBJECT_PREFIX}.*")],
                        storage: stream::StorageType::File,
                        ..Default::default()
                    })
                    .await;
                match created {
                    Ok(s) => {
                        tracing::info!(stream = name, "created the stream (subjects sensors.*)");
                        return Ok(s);
                    }
                    // Someone else created it meanwhile: attach to theirs.
                    Err(e) if attempt < 2 => tracing::debug!("create stream {name}: {e}"),
                    Err(e) => {
                        return Err(e).with_context(|| format!("cannot create stream {name}"))
                    }
                }
            }
            Err(e) if attempt < 2 => {
                tracing::debug!("get stream {name}: {e}");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                return Err(e).with_context(|| {
                    format!("cannot read stream {name}: is JetStream enabled (nats-server -js)?")
                })
            }
        }
    }
    bail!("cannot attach to stream {name}")
}

/// The last stream sequence stored on `shard`'s subject (0 when it has none).
///
/// # Errors
/// When the broker cannot answer.
pub async fn last_seq(stream: &stream::Stream, shard: u32) -> Result<u64> {
    match stream
        .get_last_raw_message_by_subject(&subject(shard))
        .await
    {
        Ok(m) => Ok(m.sequence),
        Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => Ok(0),
        Err(e) => {
            Err(e).with_context(|| format!("cannot read the last sequence of {}", subject(shard)))
        }
    }
}

/// An ordered (ephemeral, ack-less) consumer of `shard` from stream sequence `from` on.
///
/// # Errors
/// When the consumer cannot be created (e.g. the stream's subjects do not cover `sensors.<shard>`).
pub async fn shard_messages(
    stream: &stream::Stream,
    shard: u32,
    from: u64,
    headers_only: bool,
    max_batch: Option<usize>,
) -> Result<consumer::pull::Ordered> {
    let deliver_policy = if from <= 1 {
        consumer::DeliverPolicy::All
    } else {
        consumer::DeliverPolicy::ByStartSequence {
            start_sequence: from,
        }
    };
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject(shard),
            deliver_policy,
            headers_only,
            // The ordered consumer's pulls ask for at most this many messages.
            max_batch: max_batch.map_or(0, |n| i64::try_from(n).unwrap_or(i64::MAX)),
            ..Default::default()
        })
        .await
        .with_context(|| {
            format!(
                "cannot create a consumer of {} on stream {} (do the stream's subjects cover it?)",
                subject(shard),
                stream.cached_info().config.name
            )
        })?;
    consumer
        .messages()
        .await
        .with_context(|| format!("cannot read {}", subject(shard)))
}

/// Every stream sequence `shard` holds up to `last` (read with a headers-only consumer).
///
/// # Errors
/// When the broker stops answering for 30 s.
pub async fn shard_sequences(stream: &stream::Stream, shard: u32, last: u64) -> Result<Vec<u64>> {
    let mut seqs = Vec::new();
    if last == 0 {
        return Ok(seqs);
    }
    let mut messages = shard_messages(stream, shard, 1, true, None).await?;
    loop {
        let next = tokio::time::timeout(Duration::from_secs(30), messages.next())
            .await
            .with_context(|| format!("reading {}: nothing for 30 s", subject(shard)))?;
        let Some(message) = next else { break };
        let message = message.with_context(|| format!("reading {}", subject(shard)))?;
        let seq = message
            .info()
            .map_err(|e| anyhow::anyhow!("a message of {} has no metadata: {e}", subject(shard)))?
            .stream_sequence;
        if seq > last {
            break;
        }
        seqs.push(seq);
        if seq == last {
            break;
        }
    }
    Ok(seqs)
}
