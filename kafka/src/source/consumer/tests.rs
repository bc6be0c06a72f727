use super::{lag_of, reset_partition, TopicPartition};

#[test]
fn the_partition_of_an_offset_reset_warning() {
    let line = "[thrd:main]: events.v2 [13]: offset reset (at offset 20 (leader epoch -1), \
                    broker 1) to cached BEGINNING offset offset 2834 (leader epoch -1): fetch \
                    failed due to requested offset not available on the broker: Broker: Offset \
                    out of range";
    assert_eq!(
        reset_partition(line),
        Some(TopicPartition::new("events.v2", 13))
    );
    assert_eq!(
        reset_partition("events [0]: offset reset (at offset 3)"),
        Some(TopicPartition::new("events", 0))
    );
    assert_eq!(
        reset_partition("[thrd:main]: events [x]: offset reset"),
        None
    );
    assert_eq!(reset_partition("something else entirely"), None);
}

#[test]
fn a_lag_unknown_to_librdkafka_is_the_distance_from_the_fetch_position() {
    // Known lags are librdkafka's own.
    assert_eq!(lag_of(7, 3, 10), 7);
    assert_eq!(lag_of(0, -1001, 10), 0);
    // Nothing consumed and nothing committed: the fetch position says how far the end is.
    assert_eq!(lag_of(-1, 10, 10), 0);
    assert_eq!(lag_of(-1, 4, 10), 6);
    // No position or no high watermark yet: still unknown.
    assert_eq!(lag_of(-1, -1001, 10), -1);
    assert_eq!(lag_of(-1, 4, -1), -1);
}
