//! The soak's producer: `--rate` messages a second round-robin over the partitions, with
//! bursts of five times the rate (10 s every sixth of the run, 5 s in runs under 10 minutes),
//! through the broker's fault proxy (the broker advertises only that address). Each message's
//! send time is kept by its (partition, offset) once the broker acknowledges it, for the
//! latency from produce to commit ([`Produced`]).
//!
//! The values are JSON objects of the soak's table (`ID`, `KIND`, `AMOUNT`, `PAD`), their
//! padding from SplitMix64 of `--seed` and the message's number: the same seed, the same bytes.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use rdkafka::config::ClientConfig;
use rdkafka::message::Message;
use rdkafka::producer::{BaseRecord, DeliveryResult, Producer, ProducerContext, ThreadedProducer};
use rdkafka::ClientContext;

/// What one partition was sent, as the broker acknowledged it.
#[derive(Debug, Default, Clone)]
pub(super) struct PartitionSent {
    /// Offsets acknowledged and not yet seen committed, with their send times.
    pub pending: BTreeMap<i64, Instant>,
    /// Messages acknowledged.
    pub count: u64,
    /// Their lowest and highest offsets and the sum of their offsets.
    pub min: Option<i64>,
    /// See [`min`](Self::min).
    pub max: Option<i64>,
    /// See [`min`](Self::min).
    pub sum: i128,
    /// Messages acknowledged without their offset (counted in `count`, not in the others).
    pub unknown: u64,
}

/// Everything acknowledged so far, by partition, and the bytes and failures.
#[derive(Debug, Default)]
pub(super) struct Sent {
    /// By partition.
    pub partitions: Vec<PartitionSent>,
    /// Bytes of the values acknowledged.
    pub bytes: u64,
    /// Messages the broker never acknowledged (not counted anywhere else).
    pub failed: u64,
    /// The first failure's text.
    pub first_failure: Option<String>,
}

/// Shared between the producer's delivery callback and the soak's watcher.
#[derive(Debug, Clone, Default)]
pub(super) struct Produced(Arc<Mutex<Sent>>);

impl Produced {
    /// A view of the partitions sent so far (the lock: keep it short).
    pub(super) fn lock(&self) -> MutexGuard<'_, Sent> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

struct Context_ {
    produced: Produced,
}

impl ClientContext for Context_ {}

impl ProducerContext for Context_ {
    type DeliveryOpaque = Box<(Instant, usize)>;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: Self::DeliveryOpaque) {
        let (sent, len) = *opaque;
        let mut s = self.produced.lock();
        match result {
            Ok(m) => {
                let (p, o) = (m.partition(), m.offset());
                let Ok(p) = usize::try_from(p) else { return };
                if s.partitions.len() <= p {
                    s.partitions.resize(p + 1, PartitionSent::default());
                }
                s.bytes += len as u64;
                let part = &mut s.partitions[p];
                part.count += 1;
                if o < 0 {
                    // An idempotent producer's retry the broker had already written: acknowledged
                    // without its offset (librdkafka reports -1).
                    part.unknown += 1;
                    return;
                }
                part.pending.insert(o, sent);
                part.min = Some(part.min.map_or(o, |m| m.min(o)));
                part.max = Some(part.max.map_or(o, |m| m.max(o)));
                part.sum += i128::from(o);
            }
            Err((e, _)) => {
                s.failed += 1;
                if s.first_failure.is_none() {
                    s.first_failure = Some(e.to_string());
                }
            }
        }
    }
}

/// How the producer writes.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// Brokers (the proxy).
    pub brokers: String,
    /// The topic.
    pub topic: String,
    /// Its partitions.
    pub partitions: i32,
    /// Messages a second between bursts.
    pub rate: u64,
    /// How long it writes.
    pub run: Duration,
    /// The seed of the padding.
    pub seed: u64,
}

impl Plan {
    /// The bursts: (start, length) from the start of the run.
    pub(super) fn bursts(&self) -> Vec<(Duration, Duration)> {
        let len = if self.run < Duration::from_secs(600) {
            Duration::from_secs(5)
        } else {
            Duration::from_secs(10)
        };
        (1..6).map(|i| (self.run / 6 * i + len, len)).collect()
    }

    /// Messages due `t` after the start: the rate, and four times it more within bursts.
    fn due(&self, t: Duration) -> u64 {
        let extra: f64 = self
            .bursts()
            .iter()
            .map(|(at, len)| {
                let inside = t.saturating_sub(*at).min(*len);
                inside.as_secs_f64() * 4.0
            })
            .sum();
        (self.rate as f64 * (t.as_secs_f64() + extra)) as u64
    }
}

/// SplitMix64.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Message `n`'s value.
pub(super) fn value(seed: u64, n: u64) -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut state = mix(seed ^ n.wrapping_mul(0x2545_F491_4F6C_DD1D));
    let pad: String = (0..320)
        .map(|_| {
            state = mix(state);
            let i = (state % ALPHABET.len() as u64) as usize;
            char::from(ALPHABET[i])
        })
        .collect();
    format!(
        r#"{{"ID":{n},"KIND":"soak","AMOUNT":{},"PAD":"{pad}"}}"#,
        mix(n) % 10_000
    )
}

/// Writes as `plan` says on a thread of its own until the run ends and every message is
/// acknowledged (or failed); returns how many were sent.
///
/// # Errors
/// When the producer cannot be made.
pub(super) fn start(plan: Plan, produced: Produced) -> Result<std::thread::JoinHandle<u64>> {
    let producer: ThreadedProducer<Context_> = ClientConfig::new()
        .set("bootstrap.servers", &plan.brokers)
        .set("enable.idempotence", "true")
        .set("linger.ms", "20")
        .set("message.timeout.ms", "900000")
        .create_with_context(Context_ { produced })
        .context("cannot create the soak's producer")?;
    Ok(std::thread::spawn(move || {
        let started = Instant::now();
        let mut sent = 0u64;
        let partitions = u64::try_from(plan.partitions.max(1)).unwrap_or(1);
        loop {
            let t = started.elapsed();
            let due = plan.due(t.min(plan.run));
            while sent < due {
                let v = value(plan.seed, sent);
                let p = (sent % partitions) as i32;
                let record = BaseRecord::<(), String, _>::with_opaque_to(
                    &plan.topic,
                    Box::new((Instant::now(), v.len())),
                )
                .partition(p)
                .payload(&v);
                match producer.send(record) {
                    Ok(()) => sent += 1,
                    Err(_) => {
                        // The local queue is full (a black hole holds everything): wait.
                        producer.poll(Duration::from_millis(100));
                        break;
                    }
                }
            }
            if t >= plan.run && sent >= due {
                break;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        let _ = producer.flush(Duration::from_secs(900));
        sent
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The same seed and number give the same bytes; the value is JSON of the table's columns.
    #[test]
    fn values_are_deterministic_json_rows() {
        assert_eq!(value(1, 7), value(1, 7));
        assert_ne!(value(1, 7), value(2, 7));
        let v: serde_json::Value = serde_json::from_str(&value(1, 7)).unwrap();
        assert_eq!(v["ID"], 7);
        assert_eq!(v["PAD"].as_str().unwrap().len(), 320);
    }

    /// Bursts add four times the rate over their length: a 60 s run at 10/s with five bursts
    /// of 5 s sends 600 + 5 × 5 × 40.
    #[test]
    fn bursts_add_four_times_the_rate() {
        let plan = Plan {
            brokers: String::new(),
            topic: String::new(),
            partitions: 1,
            rate: 10,
            run: Duration::from_secs(60),
            seed: 1,
        };
        assert_eq!(plan.due(Duration::from_secs(60)), 600 + 5 * 5 * 40);
        assert_eq!(plan.due(Duration::from_secs(10)), 100);
    }
}
