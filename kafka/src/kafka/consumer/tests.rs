use super::{reset_partition, TopicPartition};

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
