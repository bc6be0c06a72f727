//! Subscription errors librdkafka reports while the sink runs, and which of them stop it.
//!
//! librdkafka checks the subscribed topics on every metadata refresh
//! (`topic.metadata.refresh.interval.ms`) and hands a problem to the application as a consumer
//! error from `poll`. Most are passing (a leader moving, a topic not created yet: logged, and
//! the sink goes on). An authorization error is not: the broker refuses this consumer a topic
//! it subscribed to (a listed topic, or one `--topic-regex` matched) or its group, so the
//! topic would silently stop landing. Such an error stops the sink: the consumer leaves the
//! group (handing its partitions over) and the sink exits non-zero, naming the refused topics
//! and the broker's error, and the fix (an ACL, or the subscription).

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::time::Duration;

/// Whether `error` (from the consumer's `poll`) stops the sink.
pub(crate) fn is_fatal(error: &KafkaError) -> bool {
    match error {
        KafkaError::MessageConsumptionFatal(_) => true,
        KafkaError::MessageConsumption(code) => matches!(
            code,
            RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
        ),
        _ => false,
    }
}

/// The topics whose metadata `consumer`'s broker answers with an error (`topic: error`), for
/// the stop's reason (empty when the broker cannot be asked).
pub(crate) fn refused_topics<C: ConsumerContext>(consumer: &BaseConsumer<C>) -> Vec<String> {
    let Ok(metadata) = consumer.fetch_metadata(None, Duration::from_secs(5)) else {
        return Vec::new();
    };
    metadata
        .topics()
        .iter()
        .filter_map(|t| {
            t.error()
                .map(|e| format!("{}: {}", t.name(), RDKafkaErrorCode::from(e)))
        })
        .collect()
}

/// Of the literal `topics` (`--topic`), those the broker says it does not have or will not
/// describe to this principal, each with the broker's error (`topic: error`). Asked with a
/// short-lived client of `config` that joins no group. `--until-idle` calls it before it
/// stops: a topic that is not there was never read, so "done" would be a lie.
///
/// # Errors
/// When the broker cannot be asked (no answer within `timeout`).
pub(crate) fn missing_topics(
    config: &rdkafka::ClientConfig,
    topics: &[String],
    timeout: Duration,
) -> Result<Vec<String>, KafkaError> {
    let mut config = config.clone();
    config.set("allow.auto.create.topics", "false");
    let client: BaseConsumer = config.create()?;
    let mut missing = Vec::new();
    for topic in topics {
        let metadata = client.fetch_metadata(Some(topic), timeout)?;
        let error = metadata.topics().iter().find(|t| t.name() == topic).map_or(
            Some(RDKafkaErrorCode::UnknownTopicOrPartition),
            |t| {
                t.error().map(RDKafkaErrorCode::from).or_else(|| {
                    t.partitions()
                        .is_empty()
                        .then_some(RDKafkaErrorCode::UnknownTopicOrPartition)
                })
            },
        );
        if let Some(e) = error {
            missing.push(format!("{topic}: {e}"));
        }
    }
    Ok(missing)
}

/// The reason the sink stops for `error`, with the topics the broker refuses.
pub(crate) fn reason(error: &KafkaError, refused: &[String]) -> String {
    let topics = if refused.is_empty() {
        String::new()
    } else {
        format!(" (refused: {})", refused.join("; "))
    };
    format!(
        "Kafka refused the subscription: {error}{topics}: grant this consumer's principal Read on \
         the topics and the group (Kafka ACLs), or stop subscribing to them (--topic / \
         --topic-regex); the sink stops rather than leave a topic silently unread"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_errors_stop_the_sink_and_passing_ones_do_not() {
        let cases = [
            (
                KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed),
                true,
            ),
            (
                KafkaError::MessageConsumption(RDKafkaErrorCode::GroupAuthorizationFailed),
                true,
            ),
            (
                KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::Fatal),
                true,
            ),
            (
                KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition),
                false,
            ),
            (
                KafkaError::MessageConsumption(RDKafkaErrorCode::PartitionEOF),
                false,
            ),
            (
                KafkaError::MessageConsumption(RDKafkaErrorCode::NotLeaderForPartition),
                false,
            ),
        ];
        for (error, fatal) in cases {
            assert_eq!(is_fatal(&error), fatal, "{error}");
        }
        let why = reason(
            &KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed),
            &["orders: Broker: Topic authorization failed".into()],
        );
        assert!(
            why.contains("refused: orders: Broker: Topic authorization failed")
                && why.contains("ACLs"),
            "{why}"
        );
    }
}
