use std::sync::atomic::Ordering;

use super::*;

const AFTER: Duration = Duration::from_secs(60);

fn lags(part: &TopicPartition, lag: i64) -> HashMap<TopicPartition, PartitionLag> {
    HashMap::from([(part.clone(), PartitionLag { lag, high: 100 })])
}

fn check(
    stalls: &mut Stalls,
    at: Instant,
    part: &TopicPartition,
    stats: &PartitionStats,
    lag: i64,
) -> Vec<Stalled> {
    let held = Held {
        part,
        channel: "ch",
        stats,
    };
    stalls.check(
        at,
        std::iter::once(held),
        &lags(part, lag),
        Pressure::default(),
    )
}

#[test]
fn an_idle_partition_never_stalls_and_the_clock_starts_when_work_waits() {
    let part = TopicPartition::new("orders", 0);
    let stats = PartitionStats::default();
    stats.committed.store(9, Ordering::Relaxed);
    stats.appended.store(9, Ordering::Relaxed);
    let t0 = Instant::now();
    let mut stalls = Stalls::new(AFTER);
    // An hour with nothing to do: no stall.
    for minute in 0..60 {
        let at = t0 + Duration::from_secs(60 * minute);
        assert!(check(&mut stalls, at, &part, &stats, 0).is_empty());
    }
    // Messages arrive an hour after the last commit: the clock starts now, not an hour ago.
    let arrived = t0 + Duration::from_secs(3600);
    assert!(check(&mut stalls, arrived, &part, &stats, 5).is_empty());
    let almost = arrived + AFTER - Duration::from_secs(1);
    assert!(check(&mut stalls, almost, &part, &stats, 5).is_empty());
    let stalled = check(&mut stalls, arrived + AFTER, &part, &stats, 5);
    assert_eq!(
        stalled,
        vec![Stalled {
            part: part.clone(),
            waited: AFTER,
            lag: 5
        }]
    );
    assert_eq!(
        stalled[0].to_string(),
        "orders/0 (nothing committed for 60s, lag 5)"
    );
}

#[test]
fn a_commit_ends_a_stall_and_starts_the_clock_again() {
    let part = TopicPartition::new("orders", 3);
    let stats = PartitionStats::default();
    let t0 = Instant::now();
    let mut stalls = Stalls::new(AFTER);
    // Rows appended, nothing committed: waiting even with no lag known.
    stats.appended.store(4, Ordering::Relaxed);
    assert!(check(&mut stalls, t0, &part, &stats, -1).is_empty());
    assert_eq!(check(&mut stalls, t0 + AFTER, &part, &stats, -1).len(), 1);
    // A commit moves: no longer stalled, and more waiting work starts a new clock.
    stats.committed.store(2, Ordering::Relaxed);
    let moved = t0 + AFTER + Duration::from_secs(1);
    assert!(check(&mut stalls, moved, &part, &stats, -1).is_empty());
    assert!(check(&mut stalls, moved + AFTER / 2, &part, &stats, -1).is_empty());
    assert_eq!(
        check(&mut stalls, moved + AFTER, &part, &stats, -1).len(),
        1
    );
    // Everything committed and nothing waits: not stalled however long it has been.
    stats.committed.store(4, Ordering::Relaxed);
    assert!(check(&mut stalls, moved + AFTER * 10, &part, &stats, 0).is_empty());
}

#[test]
fn a_partition_no_longer_held_is_forgotten() {
    let part = TopicPartition::new("orders", 1);
    let stats = PartitionStats::default();
    let t0 = Instant::now();
    let mut stalls = Stalls::new(AFTER);
    assert!(check(&mut stalls, t0, &part, &stats, 7).is_empty());
    // Revoked for a while, then held again: its clock starts anew.
    assert!(stalls
        .check(
            t0 + AFTER,
            std::iter::empty(),
            &HashMap::new(),
            Pressure::default()
        )
        .is_empty());
    let back = t0 + AFTER * 2;
    assert!(check(&mut stalls, back, &part, &stats, 7).is_empty());
    assert_eq!(check(&mut stalls, back + AFTER, &part, &stats, 7).len(), 1);
}

#[test]
fn the_cause_names_what_the_sink_can_see() {
    let stats = PartitionStats::default();
    stats.appended.store(5, Ordering::Relaxed);
    stats.committed.store(3, Ordering::Relaxed);
    assert!(cause(&stats, 0, Pressure::default()).contains("has not committed"));
    stats.committed.store(5, Ordering::Relaxed);
    let full = Pressure { budget_full: true };
    assert!(cause(&stats, 10, full).contains("memory budget is full"));
    assert!(cause(&stats, 10, Pressure::default()).contains("paused"));
}
