//! `--until-idle`: when the run is done. Idle is: nothing read for the idle time (the clock the
//! workers touch as they consume, restarted by every rebalance), and every held partition read
//! to its end (by librdkafka's latest statistics) and committed. Exit 0 then means the work is
//! done, so a literal topic the broker does not have (a typo) or will not describe, which was
//! never read, turns it into a failure ([`Idle::unread_topics`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rdkafka::ClientConfig;

use crate::error::{err, Error};
use crate::sink::workers::Workers;
use crate::source::consumer::Lags;
use crate::source::properties::Property;

/// The run's consumption clock and lags, and what `--until-idle` checks with them.
pub(super) struct Idle {
    /// `--until-idle` (`None`: run until stopped).
    pub(super) after: Option<Duration>,
    /// The run's start.
    pub(super) epoch: Instant,
    /// When anything was last consumed (ms since `epoch`).
    pub(super) consumed_at: Arc<AtomicU64>,
    /// Each partition's lag and high watermark.
    pub(super) lags: Lags,
    /// The topics listed by name.
    pub(super) listed_topics: Vec<String>,
    /// The consumer's librdkafka properties (to ask the brokers about the topics).
    pub(super) consumer: ClientConfig,
    /// The user's librdkafka properties (to keep their values out of errors).
    pub(super) properties: Vec<Property>,
}

impl Idle {
    /// Starts the idle time again (now counts as consumed).
    pub(super) fn restart(&self) {
        self.consumed_at.store(
            u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
    }

    /// With `--until-idle`: the idle time, once nothing was read for that long and every
    /// partition `workers` hold is read to its end and committed.
    pub(super) fn reached(&self, workers: &Workers) -> Option<Duration> {
        let idle = self.after?;
        let last = Duration::from_millis(self.consumed_at.load(Ordering::Relaxed));
        let quiet_for = self.epoch.elapsed().saturating_sub(last);
        let drained = || workers.drained(&self.lags.lock().map(|l| l.clone()).unwrap_or_default());
        (quiet_for >= idle && drained()).then_some(idle)
    }

    /// Why `--until-idle` must not end with success: the literal topics the broker does not
    /// have or will not describe (`subscription::missing_topics`), or that it could not be
    /// asked.
    pub(super) async fn unread_topics(&self) -> Option<Error> {
        let (topics, properties) = (&self.listed_topics, &self.properties);
        if topics.is_empty() {
            return None;
        }
        let (config, topics) = (self.consumer.clone(), topics.clone());
        let asked = tokio::task::spawn_blocking(move || {
            crate::source::subscription::missing_topics(&config, &topics, Duration::from_secs(10))
        })
        .await;
        match asked {
            Ok(Ok(missing)) if missing.is_empty() => None,
            Ok(Ok(missing)) => Some(err!(
                Kafka,
                "--until-idle: nothing was read from {} ({}): the topic does not exist, or \
                 this consumer's principal may not describe or read it; check the --topic \
                 names (or the connector file's topics) and the principal's ACLs",
                if missing.len() == 1 {
                    "a topic"
                } else {
                    "topics"
                },
                missing.join("; ")
            )),
            Ok(Err(e)) => Some(err!(
                Kafka,
                "--until-idle: could not ask the brokers whether the --topic topics exist ({}); \
                 not claiming the work is done",
                crate::source::properties::scrub(&e.to_string(), properties)
            )),
            Err(e) => Some(err!(Sink, "--until-idle: the topic check failed: {e}")),
        }
    }
}
