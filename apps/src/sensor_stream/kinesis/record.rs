//! A Kinesis record as both readers see it (GetRecords in `consume`, the Lambda event in
//! `lambda`), and the two rows it can become: a reading, or a dead letter.

use anyhow::{anyhow, Result};
use aws_lambda_events::encodings::SecondTimestamp;
use aws_lambda_events::event::kinesis::KinesisEvent;
use base64::Engine as _;
use serde::de::{Deserializer, Error as _};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use sha2::Digest as _;

use crate::sensor_stream::kinesis::sequence::SequenceNumber;
use crate::sensor_stream::reading::{BadRecord, Measurement, Reading};

/// One record of one shard.
#[derive(Debug, Clone)]
pub struct Record {
    /// The shard (`shardId-000000000003`).
    pub shard_id: String,
    /// Its sequence number: the offset token.
    pub seq: SequenceNumber,
    /// The producer's partition key.
    pub partition_key: String,
    /// The payload, as the producer wrote it.
    pub data: Vec<u8>,
    /// Kinesis' approximate arrival time, ms since the epoch (the event time when the payload
    /// has none, as the NATS path uses the JetStream timestamp).
    pub arrival_ms: i64,
}

/// Where a record came from: the columns both Kinesis tables start with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Origin {
    /// The shard.
    #[serde(rename = "SHARD_ID")]
    pub shard_id: String,
    /// The sequence number (text: 56 digits do not fit `NUMBER(38,0)`).
    #[serde(rename = "SEQUENCE_NUMBER")]
    pub sequence_number: String,
    /// The partition key.
    #[serde(rename = "PARTITION_KEY")]
    pub partition_key: String,
}

/// One `KINESIS_READINGS` row (columns of `sql/setup.sql`; `INGESTED_AT` is the pipe's).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KinesisReading {
    /// What the sensor sent.
    #[serde(flatten)]
    pub measurement: Measurement,
    /// The record it came in.
    #[serde(flatten)]
    pub origin: Origin,
}

/// Most bytes of a dead letter's `PAYLOAD` (as JSON-escaped text) or `PAYLOAD_BASE64`: a
/// payload past it is cut, and the row keeps its length and SHA-256. With the other columns
/// a dead letter row stays far below the 4 MB request cap, however large the record (a stream
/// with large records enabled carries up to 10 MiB).
pub const MAX_DEAD_LETTER_PAYLOAD: usize = 1 << 20;

/// One `KINESIS_DEAD_LETTERS` row: a record that cannot be a reading, its payload held once
/// (as text when it is UTF-8, else in base64) and cut at [`MAX_DEAD_LETTER_PAYLOAD`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterRow {
    /// The record.
    #[serde(flatten)]
    pub origin: Origin,
    /// Why it is not a reading (the same reasons as the NATS path).
    #[serde(rename = "ERROR")]
    pub error: String,
    /// The payload as text when it is UTF-8 (its first [`MAX_DEAD_LETTER_PAYLOAD`] bytes,
    /// escaped, at a character boundary).
    #[serde(rename = "PAYLOAD")]
    pub payload: Option<String>,
    /// The payload in base64 when it is not UTF-8 (of its first bytes, at most
    /// [`MAX_DEAD_LETTER_PAYLOAD`] characters).
    #[serde(rename = "PAYLOAD_BASE64")]
    pub payload_base64: Option<String>,
    /// The whole payload's length in bytes (more than what `PAYLOAD` holds when it was cut).
    #[serde(rename = "PAYLOAD_BYTES")]
    pub payload_bytes: usize,
    /// The whole payload's SHA-256, lowercase hex.
    #[serde(rename = "PAYLOAD_SHA256")]
    pub payload_sha256: String,
    /// Kinesis' arrival time, `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
    #[serde(rename = "ARRIVAL_TIME")]
    pub arrival_time: String,
}

impl Record {
    /// Its shard, sequence number and partition key, as columns.
    fn origin(&self) -> Origin {
        Origin {
            shard_id: self.shard_id.clone(),
            sequence_number: self.seq.to_string(),
            partition_key: self.partition_key.clone(),
        }
    }

    /// The reading this record holds (and its event time in ms), or why it holds none. The
    /// rules are the NATS path's (`reading.rs`); the writer also checks the row's size and that
    /// its values fit the table's columns (`columns.rs`).
    ///
    /// # Errors
    /// A `BadRecord` naming what is wrong.
    pub fn reading(&self) -> Result<(KinesisReading, i64), BadRecord> {
        let (r, event_ms): (Reading, i64) = Reading::decode(&self.data, 0, 0, self.arrival_ms)?;
        Ok((
            KinesisReading {
                measurement: r.measurement,
                origin: self.origin(),
            },
            event_ms,
        ))
    }

    /// The dead letter of this record.
    pub fn dead_letter(&self, bad: &BadRecord) -> DeadLetterRow {
        let text = std::str::from_utf8(&self.data).ok();
        DeadLetterRow {
            origin: self.origin(),
            error: bad.reason().to_owned(),
            payload: text.map(|t| {
                snowpipe_cli_support::text::cut_json_text(t, MAX_DEAD_LETTER_PAYLOAD).to_owned()
            }),
            payload_base64: text.is_none().then(|| {
                let kept = &self.data[..self.data.len().min(MAX_DEAD_LETTER_PAYLOAD / 4 * 3)];
                base64::engine::general_purpose::STANDARD.encode(kept)
            }),
            payload_bytes: self.data.len(),
            payload_sha256: sha2::Sha256::digest(&self.data)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            arrival_time: chrono::DateTime::from_timestamp_millis(self.arrival_ms)
                .unwrap_or_default()
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string(),
        }
    }
}

/// Kinesis' approximate arrival time, a JSON number of seconds since the epoch as the service
/// writes it (`1795685180.61`, `1.79568518061E9`, `1795685180`: trailing zeros dropped, an
/// exponent or none), in whole milliseconds, rounded half up. Read from the decimal text, not
/// through `f64`, so every form of one time gives the same millisecond. A JSON string holding
/// such a number is read too (as `aws_lambda_events` does).
///
/// # Errors
/// When `text` is not a JSON number, is negative, or is past the year 262143.
pub fn arrival_ms_from_seconds(text: &str) -> Result<i64> {
    let shown = || -> String { text.chars().take(40).collect() };
    let bad = |why: &str| anyhow!("approximateArrivalTimestamp {:?} {why}", shown());
    let number = text.trim();
    let number = number
        .strip_prefix('"')
        .and_then(|n| n.strip_suffix('"'))
        .unwrap_or(number);
    if number.starts_with('-') {
        return Err(bad("is before 1970"));
    }
    // JSON's grammar: int [. frac] [e|E [+|-] exp].
    let (mantissa, exponent) = match number.find(['e', 'E']) {
        Some(at) => (&number[..at], Some(&number[at + 1..])),
        None => (number, None),
    };
    let digits_only = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let (int, frac) = match mantissa.split_once('.') {
        Some((int, frac)) if digits_only(frac) => (int, frac),
        Some(_) => return Err(bad("is not a JSON number of seconds")),
        None => (mantissa, ""),
    };
    if !digits_only(int) || (int != "0" && int.starts_with('0')) {
        return Err(bad("is not a JSON number of seconds"));
    }
    // The value is digits × 10^(exponent − frac digits); in ms, × 10^3 more.
    let exponent: i64 = match exponent {
        None => 0,
        Some(e) => {
            let unsigned = e.strip_prefix(['+', '-']).unwrap_or(e);
            if !digits_only(unsigned) {
                return Err(bad("is not a JSON number of seconds"));
            }
            // Past 6 digits only zero (or nothing representable) is left: clamp.
            let significant = unsigned.trim_start_matches('0');
            let magnitude: i64 = if significant.is_empty() {
                0
            } else {
                significant
                    .parse::<i64>()
                    .map_or(1_000_000, |m| m.min(1_000_000))
            };
            if e.starts_with('-') {
                -magnitude
            } else {
                magnitude
            }
        }
    };
    let all = format!("{int}{frac}");
    let digits = all.trim_start_matches('0');
    if digits.is_empty() {
        return Ok(0);
    }
    let scale = exponent - frac.len() as i64 + 3;
    let out_of_range = || bad("is out of range");
    let ms: i64 = if scale >= 0 {
        if digits.len() as i64 + scale > 18 {
            return Err(out_of_range());
        }
        let whole: i64 = digits.parse().map_err(|_| out_of_range())?;
        whole * 10_i64.pow(scale as u32)
    } else {
        let dropped = (-scale) as usize;
        let (kept, first_dropped) = match digits.len().checked_sub(dropped) {
            Some(keep) => (&digits[..keep], digits.as_bytes()[keep]),
            None => ("", b'0'),
        };
        if kept.len() > 18 {
            return Err(out_of_range());
        }
        let whole: i64 = if kept.is_empty() {
            0
        } else {
            kept.parse().map_err(|_| out_of_range())?
        };
        whole + i64::from(first_dropped >= b'5')
    };
    if chrono::DateTime::from_timestamp_millis(ms).is_none() {
        return Err(out_of_range());
    }
    Ok(ms)
}

/// The arrival time the AWS SDK read from GetRecords, in whole milliseconds, rounded half up.
///
/// The SDK reads the number through `f64` and truncates to nanoseconds
/// (`DateTime::from_secs_f64`), so `1795685180.61` arrives as `…180.609999895`: its own
/// `to_millis` truncates that to `.609`. An `f64` of a time before 2038 is within 0.12 µs of the
/// text, so rounding to the nearest millisecond gives back exactly the millisecond Kinesis wrote
/// (it writes whole milliseconds): the same as [`arrival_ms_from_seconds`] on the Lambda path.
pub fn arrival_ms_of(t: &aws_sdk_kinesis::primitives::DateTime) -> Option<i64> {
    let millis = (i64::from(t.subsec_nanos()) + 500_000) / 1_000_000;
    t.secs().checked_mul(1_000)?.checked_add(millis)
}

/// The Lambda Kinesis event with every record's `approximateArrivalTimestamp` read exactly
/// ([`arrival_ms_from_seconds`]): what `sensor_stream lambda` takes from the runtime.
///
/// `aws_lambda_events` reads the fraction's digits as whole milliseconds (`1795685180.61` and
/// `1.79568518061E9` become `.061`, `1795685180.5` becomes `.005`), so the body is read twice:
/// once as [`KinesisEvent`], once for the arrival times' text, which replaces its times. Both
/// reads see the same `Records` array, in the same order.
#[derive(Debug, Clone)]
pub struct LambdaKinesisEvent(pub KinesisEvent);

impl<'de> Deserialize<'de> for LambdaKinesisEvent {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        struct Times<'a> {
            #[serde(rename = "Records", borrow)]
            records: Vec<TimeRecord<'a>>,
        }
        #[derive(Deserialize)]
        struct TimeRecord<'a> {
            #[serde(borrow)]
            kinesis: TimeOf<'a>,
        }
        #[derive(Deserialize)]
        struct TimeOf<'a> {
            #[serde(rename = "approximateArrivalTimestamp", borrow)]
            arrival: &'a RawValue,
        }
        let raw = <Box<RawValue>>::deserialize(deserializer)?;
        let mut event: KinesisEvent = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        let times: Times<'_> = serde_json::from_str(raw.get()).map_err(D::Error::custom)?;
        if times.records.len() != event.records.len() {
            return Err(D::Error::custom(
                "the event's Records were read twice differently",
            ));
        }
        for (record, time) in event.records.iter_mut().zip(times.records) {
            let ms = arrival_ms_from_seconds(time.kinesis.arrival.get())
                .map_err(|e| D::Error::custom(format!("{e:#}")))?;
            let at = chrono::DateTime::from_timestamp_millis(ms)
                .ok_or_else(|| D::Error::custom("approximateArrivalTimestamp out of range"))?;
            record.kinesis.approximate_arrival_timestamp = SecondTimestamp(at);
        }
        Ok(LambdaKinesisEvent(event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The arrival time in the forms Kinesis writes (trailing zeros dropped, exponents), each
    /// with the whole milliseconds it names.
    const ARRIVAL_FORMS: [(&str, i64); 7] = [
        ("1795685180.61", 1_795_685_180_610),
        ("1.79568518061E9", 1_795_685_180_610),
        ("1795685180", 1_795_685_180_000),
        ("1.795685180867E9", 1_795_685_180_867),
        ("1795685180.5", 1_795_685_180_500),
        ("1.441215410867E9", 1_441_215_410_867),
        ("1.7956851805E9", 1_795_685_180_500),
    ];

    /// A Lambda Kinesis event of one record per form, as the event source mapping writes it.
    fn lambda_event_json() -> String {
        let records: Vec<String> = ARRIVAL_FORMS
            .iter()
            .enumerate()
            .map(|(i, (t, _))| {
                format!(
                    r#"{{"kinesis": {{"kinesisSchemaVersion": "1.0", "partitionKey": "8",
                    "sequenceNumber": "4968055465617273933921597115502424844845559658050695987{i}",
                    "data": "eyJzZW5zb3JJZCI6IDgsICJjdXJyZW50VGVtcGVyYXR1cmUiOiA1OSwgInN0YXR1cyI6ICJXQVJOIn0=", "approximateArrivalTimestamp": {t}}},
                    "eventSource": "aws:kinesis", "eventVersion": "1.0",
                    "eventID": "shardId-000000000000:4968055465617273933921597115502424844845559658050695987{i}",
                    "eventName": "aws:kinesis:record", "awsRegion": "us-east-1",
                    "eventSourceARN": "arn:aws:kinesis:us-east-1:123456789012:stream/S"}}"#
                )
            })
            .collect();
        format!(r#"{{"Records": [{}]}}"#, records.join(","))
    }

    /// Answers every request on `listener` with `body` (a Kinesis JSON 1.1 answer).
    async fn serve_json(listener: tokio::net::TcpListener, body: String) {
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        loop {
            let Ok((mut conn, _)) = listener.accept().await else {
                return;
            };
            let body = body.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                // The head, then as many body bytes as it states.
                loop {
                    let Ok(n) = conn.read(&mut buf).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    request.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&request).to_ascii_lowercase();
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length: usize = text[..end]
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse().ok())
                            .unwrap_or(0);
                        if request.len() >= end + 4 + length {
                            break;
                        }
                    }
                }
                let answer = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/x-amz-json-1.1\r\n\
                     Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = conn.write_all(answer.as_bytes()).await;
            });
        }
    }

    #[tokio::test]
    async fn the_consumer_reads_every_arrival_form_to_the_millisecond() {
        // GetRecords answered on loopback with the forms as Kinesis writes them, read through
        // the AWS SDK as `consume` reads them.
        let records: Vec<String> = ARRIVAL_FORMS
            .iter()
            .enumerate()
            .map(|(i, (t, _))| {
                format!(
                    r#"{{"SequenceNumber": "4968055465617273933921597115502424844845559658050695987{i}",
                    "ApproximateArrivalTimestamp": {t}, "PartitionKey": "8",
                    "Data": "eyJzZW5zb3JJZCI6IDgsICJjdXJyZW50VGVtcGVyYXR1cmUiOiA1OSwgInN0YXR1cyI6ICJXQVJOIn0="}}"#
                )
            })
            .collect();
        let body = format!(
            r#"{{"Records": [{}], "NextShardIterator": "next", "MillisBehindLatest": 0}}"#,
            records.join(",")
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(serve_json(listener, body));
        let kinesis = crate::sensor_stream::kinesis::aws::local_client(&url);
        let page = kinesis
            .get_records()
            .shard_iterator("it")
            .send()
            .await
            .unwrap();
        server.abort();
        assert_eq!(page.records().len(), ARRIVAL_FORMS.len());
        for (r, (form, ms)) in page.records().iter().zip(ARRIVAL_FORMS) {
            let record =
                crate::sensor_stream::kinesis::consume::to_record("shardId-000000000000", r)
                    .unwrap();
            assert_eq!(record.arrival_ms, ms, "{form}");
            let (_, event_ms) = record.reading().unwrap();
            assert_eq!(event_ms, ms, "{form}: EVENT_TIME");
        }
    }

    #[test]
    fn arrival_times_are_read_exactly_from_their_text() {
        for (form, ms) in ARRIVAL_FORMS {
            assert_eq!(arrival_ms_from_seconds(form).unwrap(), ms, "{form}");
        }
        for (form, ms) in [
            ("0", 0),
            ("0.0004", 0),
            ("0.0005", 1),
            ("1795685180.6104999", 1_795_685_180_610),
            ("1795685180.6105", 1_795_685_180_611),
            ("1.7956851806105e9", 1_795_685_180_611),
            ("17956851806105E-4", 1_795_685_180_611),
            ("1.79568518061e+9", 1_795_685_180_610),
            ("179568518061000000e-8", 1_795_685_180_610),
            ("\"1795685180.61\"", 1_795_685_180_610),
            ("1e-999999999999999999999", 0),
            ("0e999999999999999999999", 0),
            ("1795685180e0", 1_795_685_180_000),
            ("1795685180.61E-00", 1_795_685_180_610),
        ] {
            assert_eq!(arrival_ms_from_seconds(form).unwrap(), ms, "{form}");
        }
        for bad in [
            "",
            "-1",
            "1.",
            ".5",
            "01",
            "1e",
            "1e+",
            "abc",
            "1.2.3",
            "1e400",
            "1e999999999999",
            "9223372036854775807",
            "null",
            "true",
        ] {
            let err = arrival_ms_from_seconds(bad).unwrap_err().to_string();
            assert!(err.contains("approximateArrivalTimestamp"), "{bad}: {err}");
        }
        // Where f64 is off: the AWS SDK's own truncation gives .609 for .61.
        let sdk = aws_sdk_kinesis::primitives::DateTime::from_secs_f64(1_795_685_180.61);
        assert_eq!(sdk.to_millis().unwrap(), 1_795_685_180_609);
        assert_eq!(arrival_ms_of(&sdk), Some(1_795_685_180_610));
    }

    /// `KINESIS_MEASURE=1`: what reading the event twice and checking every sequence number
    /// cost on a 10,000-record event of 1 KB payloads (the mapping's largest batch).
    #[test]
    fn measure_the_exact_event_read_and_the_position_check() {
        if std::env::var_os("KINESIS_MEASURE").is_none() {
            return;
        }
        let data = base64::engine::general_purpose::STANDARD.encode([b'x'; 1024]);
        let records: Vec<String> = (0..10_000)
            .map(|i| {
                format!(
                    r#"{{"kinesis": {{"partitionKey": "8", "sequenceNumber": "4968055465617273933921597115502424844845559658050695{i:04}",
                    "data": "{data}", "approximateArrivalTimestamp": 1.79568518061E9}},
                    "eventID": "shardId-000000000000:1", "eventSourceARN": "arn:aws:kinesis:us-east-1:1:stream/S"}}"#
                )
            })
            .collect();
        let body = format!(r#"{{"Records": [{}]}}"#, records.join(","));
        let t = std::time::Instant::now();
        let plain: KinesisEvent = serde_json::from_slice(body.as_bytes()).unwrap();
        let once = t.elapsed();
        let t = std::time::Instant::now();
        let exact: LambdaKinesisEvent = serde_json::from_slice(body.as_bytes()).unwrap();
        let twice = t.elapsed();
        assert_eq!(plain.records.len(), exact.0.records.len());
        let seqs: Vec<SequenceNumber> = (0..10_000u32)
            .map(|i| {
                SequenceNumber::parse(&format!(
                    "4968055465617273933921597115502424844845559658050695{:04}",
                    i
                ))
                .unwrap()
            })
            .collect();
        let t = std::time::Instant::now();
        for s in &seqs {
            s.check_after(
                "shardId-000000000000",
                Some(&seqs[0]),
                1_795_685_180,
                crate::sensor_stream::kinesis::sequence::Rules::Layout,
            )
            .ok();
        }
        let checks = t.elapsed();
        eprintln!(
            "{} MB event: aws_lambda_events {once:?}, exact (read twice) {twice:?}; \
             10,000 position checks {checks:?}",
            body.len() / 1_000_000
        );
    }

    #[test]
    fn the_handler_reads_every_arrival_form_to_the_millisecond() {
        // Read as `sensor_stream lambda` reads the invocation's body.
        let event = lambda_event_json();
        let event: LambdaKinesisEvent = serde_path_to_error::deserialize(
            &mut serde_json::Deserializer::from_slice(event.as_bytes()),
        )
        .unwrap();
        assert_eq!(event.0.records.len(), ARRIVAL_FORMS.len());
        for (r, (form, ms)) in event.0.records.iter().zip(ARRIVAL_FORMS) {
            let record = crate::sensor_stream::kinesis::lambda::to_record(r).unwrap();
            assert_eq!(record.arrival_ms, ms, "{form}");
            let (_, event_ms) = record.reading().unwrap();
            assert_eq!(event_ms, ms, "{form}: EVENT_TIME");
            let garbage = Record {
                data: b"not json".to_vec(),
                ..record.clone()
            };
            let letter = garbage.dead_letter(&garbage.reading().unwrap_err());
            assert_eq!(
                letter.arrival_time,
                chrono::DateTime::from_timestamp_millis(ms)
                    .unwrap()
                    .format("%Y-%m-%d %H:%M:%S%.3f")
                    .to_string(),
                "{form}: ARRIVAL_TIME"
            );
        }
    }

    fn record(data: &[u8]) -> Record {
        Record {
            shard_id: "shardId-000000000001".into(),
            seq: SequenceNumber::parse("49680554656172739339215971155024248448455596580506959874")
                .unwrap(),
            partition_key: "8".into(),
            data: data.to_vec(),
            arrival_ms: 1_795_338_962_456,
        }
    }

    #[test]
    fn a_seed_reading_becomes_a_row_with_its_shard_and_sequence_number() {
        let (row, ms) = record(br#"{"sensorId": 8, "currentTemperature": 59, "status": "WARN"}"#)
            .reading()
            .unwrap();
        assert_eq!(ms, 1_795_338_962_456);
        assert_eq!(row.measurement.event_time, "2026-11-22 09:16:02.456");
        assert_eq!(
            (row.measurement.sensor_id, row.measurement.status.as_deref()),
            (8, Some("WARN"))
        );
        assert_eq!(row.origin.shard_id, "shardId-000000000001");
        assert_eq!(
            row.origin.sequence_number,
            "49680554656172739339215971155024248448455596580506959874"
        );
        let json = serde_json::to_value(&row).unwrap();
        assert_eq!(json["SEQUENCE_NUMBER"], row.origin.sequence_number.as_str());
    }

    #[test]
    fn a_large_payload_is_cut_once_with_its_length_and_hash() {
        // How the text is cut (escapes counted): `snowpipe_cli_support::text`'s tests.
        let text = record(&vec![b'x'; MAX_DEAD_LETTER_PAYLOAD + 10]);
        let dl = text.dead_letter(&text.reading().unwrap_err());
        assert_eq!(
            dl.payload.as_ref().map(String::len),
            Some(MAX_DEAD_LETTER_PAYLOAD)
        );
        assert_eq!(dl.payload_base64, None);
        assert_eq!(dl.payload_bytes, MAX_DEAD_LETTER_PAYLOAD + 10);
        assert_eq!(dl.payload_sha256.len(), 64);
        let bytes = record(&vec![0xff; 3 * MAX_DEAD_LETTER_PAYLOAD]);
        let dl = bytes.dead_letter(&bytes.reading().unwrap_err());
        assert_eq!(dl.payload, None);
        assert!(dl.payload_base64.as_ref().unwrap().len() <= MAX_DEAD_LETTER_PAYLOAD);
        assert_eq!(dl.payload_bytes, 3 * MAX_DEAD_LETTER_PAYLOAD);
        assert!(serde_json::to_vec(&dl).unwrap().len() < MAX_DEAD_LETTER_PAYLOAD + 1_000);
    }

    #[test]
    fn garbage_keeps_its_bytes_in_the_dead_letter() {
        let r = record(&[0xff, 0xfe, b'{']);
        let bad = r.reading().unwrap_err();
        assert!(bad.reason().starts_with("not JSON"), "{bad}");
        let dl = r.dead_letter(&bad);
        assert_eq!(dl.payload, None);
        assert_eq!(dl.payload_base64.as_deref(), Some("//57"));
        assert_eq!(dl.payload_bytes, 3);
        assert_eq!(dl.arrival_time, "2026-11-22 09:16:02.456");
        let r = record(br#"{"currentTemperature": 3}"#);
        let dl = r.dead_letter(&r.reading().unwrap_err());
        assert_eq!(dl.error, "no sensorId");
        assert_eq!(dl.payload.as_deref(), Some(r#"{"currentTemperature": 3}"#));
        assert_eq!(dl.payload_base64, None, "the payload is held once");
    }
}
