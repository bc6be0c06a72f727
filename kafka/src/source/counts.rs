//! What the source did over a run, for the closing report (`sink::report`): how often the
//! router paused and resumed a partition against the budget, and what librdkafka fetched (its
//! statistics, every second). Fetched against consumed says how much was read twice: a pause
//! bumps the partition's op version in librdkafka (`rd_kafka_toppar_op_pause_resume`), which
//! drops what it had fetched and not yet handed over, and fetches it again on resume.

use std::sync::atomic::{AtomicU64, Ordering};

use rdkafka::statistics::Statistics;
use serde_json::{json, Value};

/// The source's counters; shared by the poll thread, which writes them, and the sink.
#[derive(Debug, Default)]
pub(crate) struct SourceCounts {
    pauses: AtomicU64,
    resumes: AtomicU64,
    /// The latest statistics' sums over every partition: messages and their bytes fetched.
    fetched_messages: AtomicU64,
    fetched_bytes: AtomicU64,
    /// The latest statistics' sum over the brokers: bytes received, all requests.
    broker_rx_bytes: AtomicU64,
}

impl SourceCounts {
    /// A partition was paused.
    pub(crate) fn paused(&self) {
        self.pauses.fetch_add(1, Ordering::Relaxed);
    }

    /// `n` partitions were resumed.
    pub(crate) fn resumed(&self, n: u64) {
        self.resumes.fetch_add(n, Ordering::Relaxed);
    }

    /// librdkafka's statistics: its counters are totals since the client started.
    pub(crate) fn statistics(&self, s: &Statistics) {
        let partitions = || {
            s.topics
                .values()
                .flat_map(|t| t.partitions.iter())
                .filter(|(p, _)| **p >= 0)
                .map(|(_, p)| p)
        };
        let messages = partitions().map(|p| p.rxmsgs).sum();
        let bytes = partitions().map(|p| p.rxbytes).sum();
        let broker: u64 = s.brokers.values().map(|b| b.rxbytes).sum();
        self.fetched_messages.store(messages, Ordering::Relaxed);
        self.fetched_bytes.store(bytes, Ordering::Relaxed);
        self.broker_rx_bytes.store(broker, Ordering::Relaxed);
    }

    /// The counters as the closing report's `source` field.
    pub(crate) fn json(&self) -> Value {
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "pauses": get(&self.pauses),
            "resumes": get(&self.resumes),
            "fetched_messages": get(&self.fetched_messages),
            "fetched_bytes": get(&self.fetched_bytes),
            "broker_rx_bytes": get(&self.broker_rx_bytes),
        })
    }
}

#[cfg(test)]
mod tests {
    use rdkafka::statistics::{Broker, Partition, Topic};

    use super::*;

    /// Pauses and resumes add up; fetched figures are the latest statistics' sums (librdkafka's
    /// are totals already), over partitions but not the internal `-1` one.
    #[test]
    fn counts_sum_the_statistics_and_keep_the_latest() {
        let c = SourceCounts::default();
        c.paused();
        c.paused();
        c.resumed(1);
        let stats = |rx: u64| -> Statistics {
            let mut s = Statistics::default();
            for (name, rxbytes) in [("b1", rx * 3), ("b2", 5)] {
                let b = Broker {
                    rxbytes,
                    ..Broker::default()
                };
                s.brokers.insert(name.to_owned(), b);
            }
            let mut t = Topic::default();
            for (p, msgs, bytes) in [(0, rx, rx * 2), (1, 1, 10), (-1, 1000, 1000)] {
                let part = Partition {
                    partition: p,
                    rxmsgs: msgs,
                    rxbytes: bytes,
                    ..Partition::default()
                };
                t.partitions.insert(p, part);
            }
            s.topics.insert("t".to_owned(), t);
            s
        };
        c.statistics(&stats(7));
        c.statistics(&stats(100));
        assert_eq!(
            c.json(),
            json!({"pauses": 2, "resumes": 1, "fetched_messages": 101,
                   "fetched_bytes": 210, "broker_rx_bytes": 305})
        );
    }
}
