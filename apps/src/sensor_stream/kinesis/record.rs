//! A Kinesis record as both readers see it (GetRecords in `consume`, the Lambda event in
//! `lambda`), and the two rows it can become: a reading, or a dead letter.

use base64::Engine as _;
use serde::Serialize;

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

/// One `KINESIS_DEAD_LETTERS` row: a record that cannot be a reading, kept whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadLetterRow {
    /// The record.
    #[serde(flatten)]
    pub origin: Origin,
    /// Why it is not a reading (the same reasons as the NATS path).
    #[serde(rename = "ERROR")]
    pub error: String,
    /// The payload as text when it is UTF-8.
    #[serde(rename = "PAYLOAD")]
    pub payload: Option<String>,
    /// The payload, always, in base64 (bytes that are not UTF-8 survive).
    #[serde(rename = "PAYLOAD_BASE64")]
    pub payload_base64: String,
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
    /// rules are the NATS path's (`reading.rs`).
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
        DeadLetterRow {
            origin: self.origin(),
            error: bad.reason().to_owned(),
            payload: std::str::from_utf8(&self.data).ok().map(str::to_owned),
            payload_base64: base64::engine::general_purpose::STANDARD.encode(&self.data),
            arrival_time: chrono::DateTime::from_timestamp_millis(self.arrival_ms)
                .unwrap_or_default()
                .format("%Y-%m-%d %H:%M:%S%.3f")
                .to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn garbage_keeps_its_bytes_in_the_dead_letter() {
        let r = record(&[0xff, 0xfe, b'{']);
        let bad = r.reading().unwrap_err();
        assert!(bad.reason().starts_with("not JSON"), "{bad}");
        let dl = r.dead_letter(&bad);
        assert_eq!(dl.payload, None);
        assert_eq!(dl.payload_base64, "//57");
        assert_eq!(dl.arrival_time, "2026-11-22 09:16:02.456");
        let r = record(br#"{"currentTemperature": 3}"#);
        let dl = r.dead_letter(&r.reading().unwrap_err());
        assert_eq!(dl.error, "no sensorId");
        assert_eq!(dl.payload.as_deref(), Some(r#"{"currentTemperature": 3}"#));
    }
}
