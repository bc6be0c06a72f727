//! The readings our own `publish` sends: the seed's Kinesis Data Generator template, seeded,
//! plus the publish time (`eventTime`). The consumer does not need that field: see
//! `reading.rs` for what it accepts.
//!
//! ```text
//! {"sensorId": {{random.number(50)}}, "currentTemperature": {{random.number({"min":10,"max":150})}},
//!  "status": "{{random.arrayElement(["OK","FAIL","WARN"])}}"}
//! ```

use chrono::{DateTime, Utc};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

/// The statuses a sensor reports.
pub(super) const STATUSES: [&str; 3] = ["OK", "FAIL", "WARN"];

/// One reading as published to `sensors.<shard>` (JSON, the seed's field names).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct SensorEvent {
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
pub(super) struct Generator {
    rng: ChaCha8Rng,
}

impl Generator {
    /// A generator for `seed`.
    pub(super) fn new(seed: u64) -> Self {
        Generator {
            rng: ChaCha8Rng::seed_from_u64(seed),
        }
    }

    /// The next reading, stamped `now`.
    pub(super) fn next_event(&mut self, now: DateTime<Utc>) -> SensorEvent {
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
pub(super) fn shard_of(sensor_id: u16, shards: u32) -> u32 {
    u32::from(sensor_id) % shards.max(1)
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
    fn shards_partition_by_sensor_id() {
        assert_eq!(shard_of(6, 1), 0);
        assert_eq!(shard_of(6, 4), 2);
        let used: std::collections::HashSet<u32> = (0..=50).map(|s| shard_of(s, 16)).collect();
        assert_eq!(used.len(), 16);
    }
}
