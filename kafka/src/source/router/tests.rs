use super::*;
use crate::rows::batch::tests::{push, record, META};
use crate::rows::KafkaOffset;

#[test]
fn a_partitions_next_batch_is_sized_by_its_last_and_rows_are_lent_without_a_copy() {
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut slot = Slot::new(&TopicPartition::new("t", 0), 0, tx);
    assert_eq!(next_batch_bytes(slot.last, 100), MIN_BATCH_BYTES);
    assert_eq!(
        next_batch_bytes(slot.last, 1 << 20),
        1 << 20,
        "a large row fits"
    );
    let budget = Arc::new(Budget::new(64 << 20));
    let pool = Arc::new(Pool::default());
    // Bursts of about 36 KB (1.2 KB rows with their metadata): batches of 64 KB (half
    // again, rounded up to a size).
    let value = format!(r#"{{"pad":"{}"}}"#, "x".repeat(1000));
    for burst in 0..3 {
        let bytes = next_batch_bytes(slot.last, value.len());
        let mut b = Batch::new(bytes, SIDE_BYTES, &pool, &budget, &slot.held);
        for i in 0..30 {
            push(
                &mut b,
                &record(burst * 100 + i, Some(value.as_bytes()), &[]),
            );
        }
        slot.open = Some(b);
        slot.hand_over();
        let b = rx.try_recv().unwrap();
        if burst > 0 {
            assert_eq!(b.rows.capacity(), 64 << 10, "burst {burst}");
        }
        let buffer = b.rows.as_ptr();
        let split = b.split(&part(), &mut KafkaOffset::new(-1), &META);
        assert!(split.dead.is_empty());
        let rows = split.rows;
        if burst > 0 {
            assert_eq!(rows.ndjson.as_ptr(), buffer, "lent as it is, no copy");
        }
        assert_eq!(rows.tokens.len(), 30);
    }
    assert!(slot.last > 30_000 && slot.last < 43_000, "{}", slot.last);
    // A batch less than a quarter full: its rows move to a buffer of their size.
    let mut b = Batch::new(BATCH_BYTES, SIDE_BYTES, &pool, &budget, &slot.held);
    for i in 0..10 {
        push(&mut b, &record(1_000 + i, Some(value.as_bytes()), &[]));
    }
    let split = b.split(&part(), &mut KafkaOffset::new(-1), &META);
    assert!(split.dead.is_empty());
    let rows = split.rows;
    assert!(rows.ndjson.len() > 10_000 && rows.ndjson.len() < 16 << 10);
    let lines: Vec<serde_json::Value> = std::str::from_utf8(&rows.ndjson)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 10);
    assert_eq!(lines[9]["RECORD_METADATA"]["offset"], 1_009);
    drop(rows);
    assert_eq!(budget.used(), 0);
}

fn part() -> TopicPartition {
    TopicPartition::new("t", 0)
}

impl Router {
    fn slot_mut(&mut self, topic: &str, partition: i32) -> &mut Slot {
        let at = self.slots.find(topic, partition).expect("assigned");
        &mut self.slots.all[at]
    }
}

/// Partitions come and go in any order; each is found in its own slot after every change,
/// and a revoked one is not found.
#[test]
fn every_assigned_partition_finds_its_own_slot_whatever_came_and_went() {
    let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true);
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9")
        .set("group.id", "g")
        .create()
        .unwrap();
    let mut assigned: Vec<TopicPartition> = Vec::new();
    let mut inboxes = Vec::new();
    // A fixed sequence of adds and removes over two topics (a small LCG, seeded).
    let mut x: u64 = 0x5eed;
    for _ in 0..400 {
        x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1);
        let topic = if (x >> 63) == 0 { "a" } else { "b" };
        let part = TopicPartition::new(topic, ((x >> 40) % 16) as i32);
        if (x >> 62) & 1 == 0 || assigned.is_empty() {
            inboxes.push(r.add(&part));
            if !assigned.contains(&part) {
                assigned.push(part);
            }
        } else {
            let gone = assigned.swap_remove((x >> 20) as usize % assigned.len());
            r.remove(&consumer, &gone);
            assert_eq!(
                r.slots.find(&gone.topic, gone.partition),
                None,
                "{gone:?} revoked"
            );
        }
        assert_eq!(r.assigned, assigned.len());
        assert_eq!(r.slots.all.len(), assigned.len());
        for part in &assigned {
            let slot = r.slot_mut(&part.topic, part.partition);
            assert_eq!(
                (&*slot.topic, slot.partition),
                (&*part.topic, part.partition)
            );
            let id = slot.id;
            assert!(r.holds(part, id) && !r.holds(part, id + 1_000_000));
        }
    }
}

#[test]
fn a_partitions_share_is_the_budget_over_the_partitions_and_at_least_two_batches() {
    let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true);
    let parts: Vec<TopicPartition> = (0..8).map(|p| TopicPartition::new("t", p)).collect();
    let inboxes: Vec<_> = parts.iter().map(|p| r.add(p)).collect();
    assert_eq!(r.share(), 8 << 20);
    // Not connected: pausing and resuming only change librdkafka's local state.
    let consumer: rdkafka::consumer::BaseConsumer = rdkafka::ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9")
        .set("group.id", "g")
        .create()
        .unwrap();
    r.slot_mut("t", 0).paused = true;
    r.paused = 1;
    for p in &parts[..4] {
        r.remove(&consumer, p);
    }
    assert_eq!((r.assigned, r.share(), r.paused()), (4, 16 << 20, 0));
    let mut small = Router::new(Arc::new(Budget::new(1 << 20)), META, true);
    let _inboxes: Vec<_> = parts.iter().map(|p| small.add(p)).collect();
    assert_eq!(small.share(), 2 * BATCH_BYTES);
    // Whatever its worker does, one partition holds at most five eighths of the budget, and no
    // less than twice its share (with one or two partitions, the budget alone bounds them).
    assert_eq!(r.most(), 40 << 20);
    assert_eq!(small.most(), 4 * BATCH_BYTES);
    let mut two = Router::new(Arc::new(Budget::new(64 << 20)), META, true);
    let _two: Vec<_> = parts[..2].iter().map(|p| two.add(p)).collect();
    assert_eq!(two.most(), 64 << 20);
    drop(inboxes);
}

/// A part-full batch waits out its hold for more messages; an old one, a paused
/// partition's, and any without a hold go at the burst's end.
#[test]
fn a_part_full_batch_waits_its_hold_then_goes() {
    assert_eq!(hold_for(Duration::from_secs(1)), Duration::from_millis(50));
    assert_eq!(
        hold_for(Duration::from_millis(100)),
        Duration::from_millis(5)
    );
    assert_eq!(hold_for(Duration::from_secs(60)), MAX_HOLD);
    let hold = Duration::from_millis(50);
    let part = TopicPartition::new("t", 0);
    for (held, paused, goes) in [
        (Duration::ZERO, false, false),
        (hold, false, true),
        (Duration::ZERO, true, true),
    ] {
        let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true).with_hold(hold);
        let mut inbox = r.add(&part);
        let charged = Arc::clone(&r.slot_mut("t", 0).held);
        let mut b = Batch::new(MIN_BATCH_BYTES, SIDE_BYTES, &r.pool, &r.budget, &charged);
        push(&mut b, &record(7, Some(b"{}"), &[]));
        let Some(opened) = Instant::now().checked_sub(held) else {
            return; // a clock younger than the hold: nothing to learn
        };
        b.opened = opened;
        let slot = r.slot_mut("t", 0);
        slot.open = Some(b);
        slot.paused = paused;
        r.flush();
        assert_eq!(inbox.batches.try_recv().is_ok(), goes, "{held:?} {paused}");
    }
    let mut r = Router::new(Arc::new(Budget::new(64 << 20)), META, true);
    let mut inbox = r.add(&part);
    let charged = Arc::clone(&r.slot_mut("t", 0).held);
    let mut b = Batch::new(MIN_BATCH_BYTES, SIDE_BYTES, &r.pool, &r.budget, &charged);
    push(&mut b, &record(7, Some(b"{}"), &[]));
    r.slot_mut("t", 0).open = Some(b);
    r.flush();
    assert!(
        inbox.batches.try_recv().is_ok(),
        "no hold: at the burst's end"
    );
}

/// A consumer that is not connected: pausing and resuming only change librdkafka's local state.
fn offline_consumer() -> rdkafka::consumer::BaseConsumer {
    rdkafka::ClientConfig::new()
        .set("bootstrap.servers", "127.0.0.1:9")
        .set("group.id", "g")
        .create()
        .unwrap()
}

/// A sink over budget stops reading rather than pausing the partition whose message went
/// over (a pause makes librdkafka drop what it fetched for it and fetch it again), and reads
/// again below three quarters of the budget; a partition holding more than its share whose
/// worker completed no append for the stall is paused all the same (stuck), and counted; one
/// holding as much whose worker appends is not (slow: it drains).
#[test]
fn a_full_sink_stops_reading_and_pauses_only_a_stuck_partition_over_its_share() {
    let budget = Arc::new(Budget::new(64 << 20));
    let counts = Arc::new(SourceCounts::default());
    let mut r = Router::new(Arc::clone(&budget), META, true).with_counts(Arc::clone(&counts));
    r.set_stop_reading(true);
    let parts: Vec<TopicPartition> = (0..8).map(|p| TopicPartition::new("t", p)).collect();
    let _inboxes: Vec<_> = parts.iter().map(|p| r.add(p)).collect();
    assert_eq!(r.share(), 8 << 20);
    let consumer = offline_consumer();
    assert!(!r.reading_stopped(), "empty");
    // Every partition holds under its share; together over the budget.
    for p in 0..8 {
        r.slot_mut("t", p).held.store(7 << 20, Ordering::Relaxed);
    }
    budget.charge(70 << 20);
    let at = r.slots.find("t", 0).unwrap();
    r.written(&consumer, at);
    assert_eq!(r.paused(), 0, "no pause of a partition under its share");
    assert!(r.reading_stopped(), "over the budget: reading stops");
    budget.release(14 << 20);
    assert!(r.reading_stopped(), "56 MiB: still above three quarters");
    budget.release(10 << 20);
    assert!(
        !r.reading_stopped(),
        "46 MiB: below three quarters, reading again"
    );
    // Two partitions hold four times their share; one's worker has just completed an append
    // (its held bytes went down since the poll thread last saw them), the other's has completed
    // none since well before the stall: only the stuck one is paused.
    let long_ago = Instant::now().checked_sub(progress::STALL_FLOOR * 3);
    let Some(long_ago) = long_ago else {
        return; // a clock younger than the stall: nothing more to learn
    };
    for (p, since) in [(1, Instant::now()), (2, long_ago)] {
        let slot = r.slot_mut("t", p);
        slot.progress = Progress::new(since);
        slot.held.store(32 << 20, Ordering::Relaxed);
        let at = r.slots.find("t", p).unwrap();
        r.written(&consumer, at);
    }
    assert!(!r.slot_mut("t", 1).paused, "slow: not paused");
    assert!(r.slot_mut("t", 2).paused, "stuck: paused");
    assert_eq!(r.paused(), 1);
    assert_eq!(counts.json()["pauses"], 1);
    // Under its share, a stuck worker's partition is not paused: it holds little.
    let slot = r.slot_mut("t", 3);
    slot.progress = Progress::new(long_ago);
    let at = r.slots.find("t", 3).unwrap();
    r.written(&consumer, at);
    assert_eq!(r.paused(), 1);
    // A partition holding more than five eighths of the budget is paused, however well its
    // worker does.
    let slot = r.slot_mut("t", 4);
    slot.progress = Progress::new(Instant::now());
    slot.held.store((40 << 20) + 1, Ordering::Relaxed);
    let at = r.slots.find("t", 4).unwrap();
    r.written(&consumer, at);
    assert_eq!(r.paused(), 2);
    budget.release(46 << 20);
}

/// Without a fetch queue the poll thread cannot stop reading (it polls the consumer's own
/// queue for rebalances too): a sink over budget pauses the partition, as before.
#[test]
fn a_full_sink_that_cannot_stop_reading_pauses_the_partition() {
    let budget = Arc::new(Budget::new(64 << 20));
    let mut r = Router::new(Arc::clone(&budget), META, true);
    let _inbox = r.add(&part());
    let consumer = offline_consumer();
    budget.charge(65 << 20);
    let at = r.slots.find("t", 0).unwrap();
    r.written(&consumer, at);
    assert!(!r.reading_stopped());
    assert_eq!(r.paused(), 1);
    budget.release(65 << 20);
}
