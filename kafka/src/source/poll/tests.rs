/// Kafka offsets are committed at most once a second, and only for partitions held here.
#[test]
fn kafka_commits_are_gathered_and_skip_partitions_handed_over() {
    use super::{KafkaCommits, COMMIT_EVERY};
    use crate::rows::{KafkaOffset, TopicPartition};
    use std::time::Instant;
    let o = KafkaOffset::new;
    let t0 = Instant::now();
    let (a, b) = (TopicPartition::new("t", 0), TopicPartition::new("t", 1));
    let held = |p: &TopicPartition| p.partition == 0;
    let mut c = KafkaCommits::default();
    assert_eq!(c.due(t0, held), None, "nothing wanted");
    c.want(a.clone(), o(5));
    c.want(a.clone(), o(9));
    c.want(b.clone(), o(3));
    assert_eq!(
        c.due(t0, held),
        Some(vec![(a.clone(), o(9))]),
        "the latest; not b's"
    );
    c.done.insert(a.clone(), o(9));
    c.want(a.clone(), o(12));
    assert_eq!(c.due(t0 + COMMIT_EVERY / 2, held), None, "once a second");
    assert_eq!(c.due(t0 + COMMIT_EVERY, held), Some(vec![(a, o(12))]));
}

/// A channel lost soon after a rejoin is not forgotten: its rejoin waits out the interval,
/// then happens; a request of a worker whose assignment is over causes none.
#[test]
fn a_rejoin_asked_for_too_soon_waits_and_a_stale_one_is_dropped() {
    use super::{Rejoins, REJOIN_EVERY};
    use crate::rows::TopicPartition;
    use std::time::{Duration, Instant};
    let t0 = Instant::now();
    let part = TopicPartition::new("t", 3);
    let current = |p: &TopicPartition, id: u64| p.partition == 3 && id == 2;
    let mut r = Rejoins::default();
    assert!(!r.due(t0, current), "nothing asked");
    r.want(part.clone(), 2);
    assert!(r.due(t0, current));
    r.done(t0);
    // The new assignment's worker loses its channel a second later.
    r.want(part.clone(), 2);
    let soon = t0 + Duration::from_secs(1);
    assert!(!r.due(soon, current), "waits for the interval");
    assert!(!r.due(soon + Duration::from_secs(1), current));
    assert!(r.due(t0 + REJOIN_EVERY, current), "then rejoins");
    r.done(t0 + REJOIN_EVERY);
    // A worker of an earlier assignment (id 1) asks late: no rejoin, and it is dropped.
    r.want(part, 1);
    let later = t0 + 3 * REJOIN_EVERY;
    assert!(!r.due(later, current));
    assert!(!r.due(later, |_, _| true), "dropped, not kept");
}
