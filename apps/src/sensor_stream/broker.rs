//! The JetStream side: connecting, attaching to (or creating) the stream, per-shard subjects,
//! how many messages one pull may ask for ([`pull_size`]), the last sequence of each shard,
//! and every sequence a shard holds (for reconciliation).
//!
//! A pull's size is bounded by what the server will buffer for one client: `nats-server`
//! closes a connection whose unsent bytes pass its `max_pending` (64 MiB by default, "Slow
//! Consumer Detected: MaxPending … Exceeded" in its log). What it had sent on that connection
//! is lost, and an ack-less ordered consumer whose pull was cut sees no gap until the next
//! message comes: with the whole shard in the cut pull, none comes, and reading stalls for good
//! (120 × 1000 KiB in one pull of 500 delivered 13–18). So one pull asks for at most
//! [`PULL_MAX_BYTES`] at the max payload, whatever `--batch-max-bytes` allows.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use snowpipe_streaming::OffsetToken;

/// The most bytes one pull may ask for: a quarter of `nats-server`'s default `max_pending`
/// (64 MiB), so the pull and a half the ordered consumer may have outstanding stay well under
/// what the server buffers for a client before cutting it as a slow consumer.
pub const PULL_MAX_BYTES: usize = 16 << 20;

/// How many messages one pull asks the broker for: as many as two thirds of `max_bytes` (and
/// at most [`PULL_MAX_BYTES`]) hold at `max_payload` each (the ordered consumer pulls again
/// when half of a pull is read, so it holds at most one and a half pulls), at least one, at
/// most `batch_max`.
pub fn pull_size(batch_max: usize, max_bytes: usize, max_payload: usize) -> usize {
    ((max_bytes / 3 * 2).min(PULL_MAX_BYTES) / max_payload.max(1)).clamp(1, batch_max.max(1))
}

/// The size a pull's messages are planned at (the `max_payload` of [`pull_size`]): the
/// stream's own message limit when it sets one, else four times its average message (at
/// least 4 KiB; an empty stream is planned at 4 KiB), never past the server's `max_payload`.
/// So a stream of small readings is pulled hundreds at a time, not 16 as if each were the max
/// payload. A burst of messages far larger than the stream's average can still make one pull
/// more than the server buffers: the cut pull is found by the stall watchdog (`consume.rs`),
/// read again, and the next pulls halved.
pub fn planned_message_size(limit: i32, messages: u64, bytes: u64, max_payload: usize) -> usize {
    const SMALLEST: usize = 4 << 10;
    let max_payload = max_payload.max(1);
    if let Ok(limit) = usize::try_from(limit) {
        if limit > 0 {
            return limit.min(max_payload);
        }
    }
    let average = bytes.checked_div(messages).unwrap_or(0);
    usize::try_from(average)
        .unwrap_or(usize::MAX)
        .saturating_mul(4)
        .max(SMALLEST)
        .min(max_payload)
}

/// [`planned_message_size`] of `stream` as the broker describes it now (`max_payload` when it
/// cannot say).
pub async fn planned_size_of(stream: &stream::Stream, max_payload: usize) -> usize {
    match stream.get_info().await {
        Ok(info) => planned_message_size(
            info.config.max_message_size,
            info.state.messages,
            info.state.bytes,
            max_payload,
        ),
        Err(e) => {
            tracing::debug!("stream info: {e}; pulls planned at the max payload");
            max_payload
        }
    }
}

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
        .event_callback(|event| async move { log_event(&event) })
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

/// Logs what the client reports of its connection: a disconnect is a warning, as it may be
/// the server cutting a slow consumer (what it had sent is then lost and read again).
fn log_event(event: &async_nats::Event) {
    match event {
        async_nats::Event::Connected | async_nats::Event::Closed => tracing::info!("NATS: {event}"),
        async_nats::Event::Disconnected => tracing::warn!(
            "NATS: disconnected; reconnecting (a server that cut this client as a slow consumer \
             logs \"Slow Consumer Detected\": lower --batch-max-bytes or raise the server's \
             max_pending)"
        ),
        async_nats::Event::SlowConsumer(sid) => tracing::warn!(
            "NATS: subscription {sid} dropped messages (the client's buffer is full); they are \
             read again"
        ),
        other => tracing::warn!("NATS: {other}"),
    }
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

/// The committed token of `channel` as a stream sequence (0 when it has none).
///
/// # Errors
/// When the token is not a number: another program fed the channel.
pub fn committed_seq(token: Option<OffsetToken>, channel: &str) -> Result<u64> {
    match token {
        None => Ok(0),
        Some(t) => t.as_u64().with_context(|| {
            format!(
                "channel {channel}'s committed offset token {t:?} is not a stream sequence: it was \
                 fed by another program; use another --stream name or another pipe"
            )
        }),
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn committed_tokens_must_be_stream_sequences() {
        assert_eq!(committed_seq(None, "S_0").unwrap(), 0);
        assert_eq!(
            committed_seq(Some(OffsetToken::from(42u64)), "S_0").unwrap(),
            42
        );
        let err = committed_seq(Some(OffsetToken::new("abc").unwrap()), "S_0").unwrap_err();
        assert!(err.to_string().contains("not a stream sequence"));
    }

    #[test]
    fn a_pull_holds_at_most_the_byte_cap_at_the_max_payload() {
        let mib = 1 << 20;
        // 2/3 of 24 MiB at 1 MiB a message: 16; never more than --batch-max, never none.
        assert_eq!(pull_size(500, 24 * mib, mib), 16);
        assert_eq!(pull_size(10, 24 * mib, mib), 10);
        assert_eq!(pull_size(500, mib, 8 * mib), 1);
        assert_eq!(pull_size(500, 12 * mib, mib), 8);
        // A small max payload: the count cap holds.
        assert_eq!(pull_size(500, 256 * mib, 16 * 1024), 500);
    }

    #[test]
    fn a_pull_stays_under_what_the_server_buffers_for_a_client() {
        let mib = 1 << 20;
        // The default 256 MiB and 1 GiB budgets both ask for 16 MiB at 1 MiB a message, not
        // 170 or 500 (a 500 MiB pull was cut by the server's 64 MiB max_pending).
        assert_eq!(pull_size(500, 256 * mib, mib), 16);
        assert_eq!(pull_size(500, 1 << 30, mib), 16);
        assert_eq!(pull_size(500, usize::MAX, 0), 500);
        assert_eq!(pull_size(500, usize::MAX, 64 * 1024), 256);
        for payload in [1, 1024, mib, 8 * mib] {
            let pull = pull_size(usize::MAX, usize::MAX, payload);
            assert!(
                pull == 1 || pull * payload <= PULL_MAX_BYTES,
                "{payload}: {pull}"
            );
        }
    }

    #[test]
    fn small_readings_are_pulled_by_the_hundred_and_large_ones_at_their_size() {
        let mib = 1 << 20;
        // A stream of 200-byte readings: planned at 4 KiB, so 500 a pull, not 16.
        let small = planned_message_size(-1, 10_000, 2_000_000, mib);
        assert_eq!(small, 4096);
        assert_eq!(pull_size(500, 256 * mib, small), 500);
        // An empty stream (the consumer started first) is planned as small readings.
        assert_eq!(planned_message_size(-1, 0, 0, mib), 4096);
        // 1000 KiB messages: four times the average passes the max payload, which bounds it.
        assert_eq!(planned_message_size(-1, 120, 120 * 1_024_000, mib), mib);
        // The stream's own limit wins, but never past the max payload.
        assert_eq!(planned_message_size(65_536, 10, 100, mib), 65_536);
        assert_eq!(planned_message_size(8 * mib as i32, 10, 100, mib), mib);
        assert_eq!(planned_message_size(-1, 1, u64::MAX, 0), 1);
    }
}
