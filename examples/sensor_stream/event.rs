//! The sensor readings: the seed's Kinesis Data Generator template, seeded, plus the publish
//! time; and the `SENSOR_READINGS` row they become.
//!
//! ```text
//! {"sensorId": {{random.number(50)}}, "currentTemperature": {{random.number({"min":10,"max":150})}},
//!  "status": "{{random.arrayElement(["OK","FAIL","WARN"])}}"}
//! ```

use anyhow::{Context, Result};
use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The statuses a sensor reports.
pub const STATUSES: [&str; 3] = ["OK", "FAIL", "WARN"];

/// One reading as published to `sensors.<shard>` (JSON, the seed's field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SensorEvent {
    /// 0..=50 (`random.number(50)` is inclusive).
    pub sensor_id: u16,
    /// 10..=150.
    pub current_temperature: u16,
    /// `OK`, `FAIL` or `WARN`.
    pub status: String,
    /// When the publisher published it (RFC 3339, milliseconds, UTC): the event time, and the
    /// start of the publish → committed latency.
    pub event_time: DateTime<Utc>,
}

/// A seeded generator: the same seed gives the same readings (the event times differ).
#[derive(Debug)]
pub struct Generator {
    rng: ChaCha8Rng,
}

impl Generator {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next reading, stamped `now`.
    pub fn next_event(&mut self, now: DateTime<Utc>) -> SensorEvent {
        SensorEvent {
            sensor_id: self.rng.gen_range(0..=50),
            current_temperature: self.rng.gen_range(10..=150),
            status: STATUSES[self.rng.gen_range(0..STATUSES.len())].to_string(),
            event_time: now,
        }
    }
}

/// The shard of a sensor: its partition key (the sensor id) modulo the shard count, as Kinesis
/// maps partition keys to shards.
pub fn shard_of(sensor_id: u16, shards: u32) -> u32 {
    u32::from(sensor_id) % shards.max(1)
}

/// One `SENSOR_READINGS` row (column names as in `sql/setup.sql`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    /// The sensor.
    #[serde(rename = "SENSOR_ID")]
    pub sensor_id: u16,
    /// The temperature it read.
    #[serde(rename = "CURRENT_TEMPERATURE")]
    pub current_temperature: u16,
    /// Its status.
    #[serde(rename = "STATUS")]
    pub status: String,
    /// The event time, `YYYY-MM-DD HH:MM:SS.mmm` (UTC).
    #[serde(rename = "EVENT_TIME")]
    pub event_time: String,
    /// The shard (subject `sensors.<shard>`).
    #[serde(rename = "SHARD")]
    pub shard: u32,
    /// The JetStream stream sequence: the offset token.
    #[serde(rename = "STREAM_SEQ")]
    pub stream_seq: u64,
}

impl Reading {
    /// Decodes a message's payload into the row for `shard` at `stream_seq`; also returns the
    /// event time in milliseconds since the epoch.
    ///
    /// # Errors
    /// When the payload is not a sensor reading (the message says which sequence).
    pub fn decode(payload: &[u8], shard: u32, stream_seq: u64) -> Result<(Self, i64)> {
        let event: SensorEvent = serde_json::from_slice(payload).with_context(|| {
            format!(
                "stream sequence {stream_seq} on shard {shard} is not a sensor reading \
                 ({{\"sensorId\", \"currentTemperature\", \"status\", \"eventTime\"}}): {}",
                String::from_utf8_lossy(&payload[..payload.len().min(200)])
            )
        })?;
        let ms = event.event_time.timestamp_millis();
        Ok((
            Reading {
                sensor_id: event.sensor_id,
                current_temperature: event.current_temperature,
                status: event.status,
                event_time: event.event_time.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                shard,
                stream_seq,
            },
            ms,
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_the_seed_template_and_the_seed() {
        let now = Utc::now();
        let mut a = Generator::new(7);
        let mut b = Generator::new(7);
        let mut statuses = std::collections::HashSet::new();
        for _ in 0..2_000 {
            let e = a.next_event(now);
            assert_eq!(e, b.next_event(now));
            assert!(e.sensor_id <= 50);
            assert!((10..=150).contains(&e.current_temperature));
            statuses.insert(e.status);
        }
        assert_eq!(statuses.len(), 3);
        assert_ne!(
            Generator::new(8).next_event(now),
            Generator::new(7).next_event(now)
        );
    }

    #[test]
    fn a_published_event_decodes_into_its_row() {
        let at = DateTime::parse_from_rfc3339("2026-11-22T09:16:02.123Z")
            .unwrap()
            .with_timezone(&Utc);
        let event = SensorEvent {
            sensor_id: 6,
            current_temperature: 64,
            status: "OK".into(),
            event_time: at,
        };
        let json = serde_json::to_vec(&event).unwrap();
        assert!(String::from_utf8_lossy(&json)
            .starts_with(r#"{"sensorId":6,"currentTemperature":64,"status":"OK","eventTime":"#));
        let (row, ms) = Reading::decode(&json, 2, 41).unwrap();
        assert_eq!(ms, at.timestamp_millis());
        assert_eq!(row.event_time, "2026-11-22 09:16:02.123");
        assert_eq!((row.shard, row.stream_seq, row.sensor_id), (2, 41, 6));
        let err = Reading::decode(b"{\"x\":1}", 1, 9).unwrap_err();
        assert!(format!("{err:#}").contains("stream sequence 9 on shard 1"));
    }

    #[test]
    fn shards_partition_by_sensor_id() {
        assert_eq!(shard_of(6, 1), 0);
        assert_eq!(shard_of(6, 4), 2);
        let used: std::collections::HashSet<u32> = (0..=50).map(|s| shard_of(s, 16)).collect();
        assert_eq!(used.len(), 16);
    }
}
