//! A partition's identity: its topic and its number. The sink keys its maps by it (workers,
//! stats, lags, commits), and the poll thread and the sink pass it in their messages; it prints
//! as `topic/partition`, as the logs and the report always have, and debug-prints as the
//! `(topic, partition)` tuple it replaced (logs that print a list of partitions keep their text).

use std::fmt;
use std::sync::Arc;

/// A topic and one of its partitions. Ordered by topic, then partition.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    /// The topic (shared: cloning a key does not copy the name).
    pub topic: Arc<str>,
    /// The partition number.
    pub partition: i32,
}

impl TopicPartition {
    /// `topic`'s partition `partition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        Self {
            topic: topic.into(),
            partition,
        }
    }
}

impl fmt::Debug for TopicPartition {
    /// `("topic", partition)`, as the tuple printed.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("")
            .field(&self.topic)
            .field(&self.partition)
            .finish()
    }
}

impl fmt::Display for TopicPartition {
    /// `topic/partition`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.topic, self.partition)
    }
}

#[cfg(test)]
mod tests {
    use super::TopicPartition;

    #[test]
    fn prints_and_orders_as_the_tuple_did() {
        let a = TopicPartition::new("orders", 10);
        assert_eq!(a.to_string(), "orders/10");
        assert_eq!(format!("{a:?}"), format!("{:?}", ("orders".to_owned(), 10)));
        assert_eq!(
            format!("{a:#?}"),
            format!("{:#?}", ("orders".to_owned(), 10))
        );
        let mut parts = [
            a.clone(),
            TopicPartition::new("orders", 2),
            TopicPartition::new("b", 9),
        ];
        parts.sort();
        let order: Vec<_> = parts.iter().map(ToString::to_string).collect();
        assert_eq!(order, ["b/9", "orders/2", "orders/10"]);
    }
}
