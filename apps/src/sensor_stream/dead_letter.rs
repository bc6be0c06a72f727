//! Dead letters: a message that cannot become a row goes, unchanged, to the JetStream subject
//! `<stream>.dlq.<shard>` with the reason and its source in headers, and the shard moves on.
//!
//! Where they are stored: in the stream that already captures `<stream>.dlq.<shard>`, if one
//! does (provisioned by an operator), else in `<stream>_DLQ` (subjects `<stream>.dlq.>`, file
//! storage, no limits), which `consume` creates when it is missing. The source stream is never
//! changed: its subjects (`sensors.*` when `consume` created it) need not cover these.
//!
//! Headers of a dead letter (the source message's own headers are kept, except `Nats-*`):
//!
//! | header | value |
//! | --- | --- |
//! | `Snowpipe-Error` | why it is not a row, one line (e.g. `not JSON: expected value at line 1 column 1`) |
//! | `Snowpipe-Source-Stream` | the source stream, e.g. `SENSORS` |
//! | `Snowpipe-Source-Subject` | its subject, e.g. `sensors.1` |
//! | `Snowpipe-Source-Sequence` | its stream sequence |
//! | `Snowpipe-Source-Time` | its JetStream timestamp (RFC 3339, UTC) |
//! | `Nats-Msg-Id` | `<stream>:<sequence>`, for the broker's duplicate window |
//! | `Snowpipe-Source-Headers-Omitted` | only when the source's headers and ours together pass JetStream's 64 KiB of headers: the source's headers' size; they are left out |
//! | `Snowpipe-Payload-Omitted` | only when the payload and the headers pass the server's max payload (1 MiB by default): the payload's size; it is left out |
//!
//! A message at the broker's limits (headers near 64 KiB, a payload near the max payload) is
//! a dead letter all the same: what does not fit beside our headers is left out and named
//! (its size), never a publish the broker refuses, which would stop the shard for good. The
//! message itself stays in the source stream at its sequence (`consume` never changes it).
//!
//! How often a bad record is in the dead-letter stream: **exactly once**.
//!
//! 1. A shard's dead letters are published one at a time in stream order, each acknowledged
//!    before the shard handles its next message (and before any row after it is appended).
//! 2. A bad record is only read again when it is after the channel's committed token (a row's
//!    token also covers the dead letters that follow it in its append). Before publishing, the
//!    consumer reads the last dead letter on the shard's subject: when its
//!    `Snowpipe-Source-Sequence` is at or past the record's, the record is already there (by 1),
//!    and nothing is published. So a restart, or a SIGKILL between the publish and its ack,
//!    adds no second copy, however long the consumer was down.
//! 3. The `Nats-Msg-Id` makes the broker drop a second publish of the same record within the
//!    dead-letter stream's duplicate window (2 minutes by default): the guard for two consumers
//!    of one shard at once, which pass check 2 together.
//!
//! The one way to get a second copy is to defeat 2 and 3 together: delete the shard subject's
//! last dead letter (a purge, a limit on the dead-letter stream) and have the record read again
//! more than the duplicate window after its first copy.

use std::time::Duration;

use anyhow::{Context, Result};
use async_nats::jetstream::{self, context::GetStreamByNameErrorKind, stream};
use async_nats::HeaderMap;
use bytes::Bytes;
use futures_util::StreamExt;

/// Why the message is not a row.
pub(super) const ERROR_HEADER: &str = "Snowpipe-Error";
/// The source stream.
pub(super) const SOURCE_STREAM_HEADER: &str = "Snowpipe-Source-Stream";
/// The source message's subject.
pub(super) const SOURCE_SUBJECT_HEADER: &str = "Snowpipe-Source-Subject";
/// The source message's stream sequence.
pub(super) const SOURCE_SEQUENCE_HEADER: &str = "Snowpipe-Source-Sequence";
/// The source message's JetStream timestamp.
pub(super) const SOURCE_TIME_HEADER: &str = "Snowpipe-Source-Time";
/// The bytes of the source's own headers, when a dead letter leaves them out (see
/// [`MAX_HEADER_BYTES`]).
pub(super) const HEADERS_OMITTED_HEADER: &str = "Snowpipe-Source-Headers-Omitted";
/// The bytes of the payload, when a dead letter leaves it out (see [`DeadLetters::send`]).
pub(super) const PAYLOAD_OMITTED_HEADER: &str = "Snowpipe-Payload-Omitted";
/// JetStream's largest header block: a message whose headers are longer is refused
/// (`header size exceeds maximum allowed of 64k`).
pub(super) const MAX_HEADER_BYTES: usize = 64 * 1024;
/// Longest `Snowpipe-Error` value, in characters.
const MAX_REASON: usize = 512;

/// The dead-letter subject of `shard` of stream `source`.
pub(super) fn subject(source: &str, shard: u32) -> String {
    format!("{source}.dlq.{shard}")
}

/// The stream `consume` creates for the dead letters of `source` when none captures them.
pub(super) fn stream_name(source: &str) -> String {
    format!("{source}_DLQ")
}

/// The `Nats-Msg-Id` of the dead letter of stream sequence `seq`.
pub(super) fn message_id(source: &str, seq: u64) -> String {
    format!("{source}:{seq}")
}

/// One message that cannot become a row.
#[derive(Debug)]
pub(super) struct Letter<'a> {
    /// Its shard.
    pub shard: u32,
    /// Its stream sequence.
    pub seq: u64,
    /// Its subject.
    pub subject: &'a str,
    /// Its JetStream timestamp, in milliseconds since the epoch.
    pub published_ms: i64,
    /// Its headers.
    pub headers: Option<&'a HeaderMap>,
    /// Its payload, as it was.
    pub payload: &'a Bytes,
    /// Why it is not a row.
    pub reason: &'a str,
}

/// What [`DeadLetters::send`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Outcome {
    /// Stored now.
    Stored,
    /// Already in the dead-letter stream (read again after a restart); nothing stored.
    AlreadyThere,
}

/// Where each shard's dead letters go.
#[derive(Clone)]
pub(super) struct DeadLetters {
    js: jetstream::Context,
    source: String,
    stores: Vec<stream::Stream>,
}

impl std::fmt::Debug for DeadLetters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeadLetters")
            .field("source", &self.source)
            .field("store", &self.describe())
            .finish_non_exhaustive()
    }
}

impl DeadLetters {
    /// Finds, for every shard, the stream that captures its dead-letter subject, creating
    /// `<source>_DLQ` (subjects `<source>.dlq.>`) when none does.
    ///
    /// # Errors
    /// When JetStream cannot answer, or the dead-letter stream cannot be created (e.g. a stream
    /// named `<source>_DLQ` exists with other subjects: the message says what to change).
    /// The broker's max payload (headers and payload of one message), as the server states it.
    pub(super) fn max_payload(&self) -> usize {
        self.js.client().max_payload()
    }

    pub(super) async fn attach(js: &jetstream::Context, source: &str, shards: u32) -> Result<Self> {
        let mut stores: Vec<stream::Stream> = Vec::with_capacity(shards as usize);
        for shard in 0..shards {
            let subject = subject(source, shard);
            let store = match capturing(js, &subject).await? {
                Some(s) => s,
                None => create(js, source, &subject).await?,
            };
            stores.push(store);
        }
        Ok(DeadLetters {
            js: js.clone(),
            source: source.to_string(),
            stores,
        })
    }

    /// The dead-letter subject of `shard`.
    pub(super) fn subject(&self, shard: u32) -> String {
        subject(&self.source, shard)
    }

    /// `stream SENSORS_DLQ, subjects SENSORS.dlq.<shard>` (the store of shard 0; others are
    /// named when they differ).
    pub(super) fn describe(&self) -> String {
        let mut names: Vec<&str> = self
            .stores
            .iter()
            .map(|s| s.cached_info().config.name.as_str())
            .collect();
        names.dedup();
        format!(
            "stream {}, subjects {}.dlq.<shard>",
            names.join(" / "),
            self.source
        )
    }

    /// The highest source sequence dead-lettered for `shard`: the `Snowpipe-Source-Sequence`
    /// of the last message on its dead-letter subject (0 when there is none).
    ///
    /// # Errors
    /// When the broker cannot answer.
    pub(super) async fn last_sequence(&self, shard: u32) -> Result<u64> {
        let subject = subject(&self.source, shard);
        match self.stores[shard as usize]
            .get_last_raw_message_by_subject(&subject)
            .await
        {
            Ok(m) => Ok(source_sequence(&m.headers).unwrap_or_else(|| {
                tracing::debug!(
                    "the last message on {subject} has no {SOURCE_SEQUENCE_HEADER}: not ours"
                );
                0
            })),
            Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => Ok(0),
            Err(e) => {
                Err(e).with_context(|| format!("cannot read the last dead letter of {subject}"))
            }
        }
    }

    /// Publishes `letter` to its shard's dead-letter subject and waits for the broker's ack,
    /// unless it is already there (see the module docs).
    ///
    /// # Errors
    /// When the broker does not store it (no stream captures the subject any more, broker
    /// down); the caller must not move past the message then.
    pub(super) async fn send(&self, letter: &Letter<'_>) -> Result<Outcome> {
        if self.last_sequence(letter.shard).await? >= letter.seq {
            return Ok(Outcome::AlreadyThere);
        }
        let subject = subject(&self.source, letter.shard);
        let mut headers = self.headers(letter);
        let mut payload = letter.payload.clone();
        let max = self.js.client().max_payload();
        if wire_len(&headers) + payload.len() + OMITTED_LINE > max {
            headers.insert(
                PAYLOAD_OMITTED_HEADER,
                format!(
                    "{} bytes: past the server's max payload of {max} with these headers; the \
                     message is sequence {} of stream {}",
                    payload.len(),
                    letter.seq,
                    self.source
                ),
            );
            payload = Bytes::new();
        }
        let ack = self
            .js
            .publish_with_headers(subject.clone(), headers, payload)
            .await
            .with_context(|| format!("cannot publish to {subject}"))?
            .await
            .with_context(|| format!("{subject}: no ack from the broker"))?;
        Ok(if ack.duplicate {
            Outcome::AlreadyThere
        } else {
            Outcome::Stored
        })
    }

    /// Ours, and the source's own (except `Nats-*` and `Snowpipe-*`) when both fit within
    /// [`MAX_HEADER_BYTES`]; else their size in `Snowpipe-Source-Headers-Omitted`.
    fn headers(&self, letter: &Letter<'_>) -> HeaderMap {
        let mut headers = self.own_headers(letter);
        let mut kept = HeaderMap::new();
        if let Some(original) = letter.headers {
            for (name, values) in original.iter() {
                let n = name.to_string();
                if n.starts_with("Nats-") || n.starts_with("Snowpipe-") {
                    continue;
                }
                for v in values {
                    kept.append(name.clone(), v.clone());
                }
            }
        }
        let kept_len = wire_len(&kept) - EMPTY_HEADERS;
        if wire_len(&headers) + kept_len + OMITTED_LINE * 2 > MAX_HEADER_BYTES {
            headers.insert(
                HEADERS_OMITTED_HEADER,
                format!(
                    "{kept_len} bytes: past JetStream's {MAX_HEADER_BYTES} with these headers; \
                     the message keeps them"
                ),
            );
        } else {
            for (name, values) in kept.iter() {
                for v in values {
                    headers.append(name.clone(), v.clone());
                }
            }
        }
        headers
    }

    /// The headers every dead letter has (see the module docs).
    fn own_headers(&self, letter: &Letter<'_>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            async_nats::header::NATS_MESSAGE_ID,
            message_id(&self.source, letter.seq),
        );
        headers.insert(ERROR_HEADER, header_value(letter.reason));
        headers.insert(SOURCE_STREAM_HEADER, self.source.as_str());
        headers.insert(SOURCE_SUBJECT_HEADER, header_value(letter.subject));
        headers.insert(SOURCE_SEQUENCE_HEADER, letter.seq.to_string());
        if let Some(t) = chrono::DateTime::from_timestamp_millis(letter.published_ms) {
            headers.insert(
                SOURCE_TIME_HEADER,
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            );
        }
        headers
    }

    /// Every source sequence dead-lettered for `shard`, in the order stored (a sequence twice
    /// if it was stored twice).
    ///
    /// # Errors
    /// When the broker stops answering for 30 s.
    pub(super) async fn sequences(&self, shard: u32) -> Result<Vec<u64>> {
        let subject = subject(&self.source, shard);
        let store = &self.stores[shard as usize];
        let last = match store.get_last_raw_message_by_subject(&subject).await {
            Ok(m) => m.sequence,
            Err(e) if matches!(e.kind(), stream::LastRawMessageErrorKind::NoMessageFound) => {
                return Ok(Vec::new())
            }
            Err(e) => return Err(e).with_context(|| format!("cannot read {subject}")),
        };
        let mut messages = store
            .create_consumer(jetstream::consumer::pull::OrderedConfig {
                filter_subject: subject.clone(),
                headers_only: true,
                ..Default::default()
            })
            .await
            .with_context(|| format!("cannot create a consumer of {subject}"))?
            .messages()
            .await
            .with_context(|| format!("cannot read {subject}"))?;
        let mut seqs = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(30), messages.next())
                .await
                .with_context(|| format!("reading {subject}: nothing for 30 s"))?;
            let Some(message) = next else { break };
            let message = message.with_context(|| format!("reading {subject}"))?;
            if let Some(seq) = message.headers.as_ref().and_then(source_sequence) {
                seqs.push(seq);
            }
            let at = message
                .info()
                .map_err(|e| anyhow::anyhow!("a message of {subject} has no metadata: {e}"))?
                .stream_sequence;
            if at >= last {
                break;
            }
        }
        Ok(seqs)
    }
}

/// The stream capturing `subject`, if any.
async fn capturing(js: &jetstream::Context, subject: &str) -> Result<Option<stream::Stream>> {
    match js.stream_by_subject(subject).await {
        Ok(name) => js
            .get_stream(&name)
            .await
            .map(Some)
            .with_context(|| format!("cannot read stream {name} (it captures {subject})")),
        Err(e) if matches!(e.kind(), GetStreamByNameErrorKind::NotFound) => Ok(None),
        Err(e) => Err(e).with_context(|| format!("cannot look up the stream capturing {subject}")),
    }
}

/// Creates `<source>_DLQ` for `subject` (and every other shard's).
async fn create(js: &jetstream::Context, source: &str, subject: &str) -> Result<stream::Stream> {
    let name = stream_name(source);
    let subjects = format!("{source}.dlq.>");
    let created = js
        .create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![subjects.clone()],
            storage: stream::StorageType::File,
            description: Some(format!(
                "dead letters of stream {source}: messages sensor_stream could not turn into rows"
            )),
            ..Default::default()
        })
        .await;
    match created {
        Ok(s) => {
            tracing::info!(stream = %name, "created the dead-letter stream (subjects {subjects})");
            Ok(s)
        }
        // Another consumer created it meanwhile, or a stream of that name has other subjects.
        Err(e) => match capturing(js, subject).await? {
            Some(s) => Ok(s),
            None => Err(e).with_context(|| {
                format!(
                    "cannot create the dead-letter stream {name} (subjects {subjects}): if a stream \
                     {name} exists, add {subjects} to its subjects, or provision any stream that \
                     captures {subjects}"
                )
            }),
        },
    }
}

/// The bytes of a header block with no header: `NATS/1.0\r\n\r\n`.
const EMPTY_HEADERS: usize = 12;
/// Room for one `Snowpipe-*-Omitted` line.
const OMITTED_LINE: usize = 256;

/// The bytes `headers` take on the wire (`NATS/1.0\r\n`, `<name>: <value>\r\n` each, `\r\n`),
/// as the broker counts them against its limits.
fn wire_len(headers: &HeaderMap) -> usize {
    let lines: usize = headers
        .iter()
        .map(|(name, values)| {
            let name: &str = name.as_ref();
            values
                .iter()
                .map(|v| name.len() + 4 + v.as_str().len())
                .sum::<usize>()
        })
        .sum();
    EMPTY_HEADERS + lines
}

/// The `Snowpipe-Source-Sequence` of a dead letter.
fn source_sequence(headers: &HeaderMap) -> Option<u64> {
    headers.get(SOURCE_SEQUENCE_HEADER)?.as_str().parse().ok()
}

/// One header line: control characters (a newline would end the header) become spaces, and
/// the value is cut at [`MAX_REASON`] characters.
fn header_value(s: &str) -> String {
    let mut out: String = s
        .chars()
        .take(MAX_REASON)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if s.chars().count() > MAX_REASON {
        out.push('…');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_source_stream() {
        assert_eq!(subject("SENSORS", 3), "SENSORS.dlq.3");
        assert_eq!(stream_name("SENSORS"), "SENSORS_DLQ");
        assert_eq!(message_id("SENSORS", 42), "SENSORS:42");
    }

    #[test]
    fn wire_len_counts_as_the_broker_does() {
        let mut h = HeaderMap::new();
        assert_eq!(wire_len(&h), "NATS/1.0\r\n\r\n".len());
        h.insert("A", "bc");
        h.append("A", "d");
        assert_eq!(wire_len(&h), "NATS/1.0\r\nA: bc\r\nA: d\r\n\r\n".len());
    }

    #[test]
    fn header_values_stay_on_one_line_and_bounded() {
        assert_eq!(header_value("a\r\nb\tc"), "a  b c");
        let long = header_value(&"é".repeat(2 * MAX_REASON));
        assert_eq!(long.chars().count(), MAX_REASON + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn the_source_sequence_is_read_from_its_header() {
        let mut h = HeaderMap::new();
        assert_eq!(source_sequence(&h), None);
        h.insert(SOURCE_SEQUENCE_HEADER, "17");
        assert_eq!(source_sequence(&h), Some(17));
        h.insert(SOURCE_SEQUENCE_HEADER, "x");
        assert_eq!(source_sequence(&h), None);
    }
}
