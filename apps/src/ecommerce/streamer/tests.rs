//! Unit tests of the streamer: resume points from tokens, the item index, which errors
//! are final, channel names.

use super::*;

#[test]
fn committed_tokens_map_back_to_resume_points() {
    assert_eq!(resume_orders(None, 2, "c").unwrap(), 0);
    let t = OffsetToken::new("order_200000017").unwrap();
    assert_eq!(resume_orders(Some(&t), 2, "c").unwrap(), 17);
    let err = resume_orders(Some(&t), 1, "orders_channel_1").unwrap_err();
    assert!(err.to_string().contains("--channel-suffix"), "{err}");
    for bad in ["item_200000017", "17", "order_0200000017", "order_"] {
        assert!(
            resume_orders(Some(&OffsetToken::new(bad).unwrap()), 2, "c").is_err(),
            "{bad}"
        );
    }
    let t = OffsetToken::new(format!("item_{}", item_id(200_000_017, 3))).unwrap();
    assert_eq!(
        resume_items(Some(&t), 2, "c").unwrap(),
        ItemPos { seq: 17, line: 3 }
    );
    assert!(resume_items(Some(&OffsetToken::new("item_2000000170").unwrap()), 2, "c").is_err());
    assert_eq!(resume_items(None, 0, "c").unwrap(), ItemPos::default());
}

#[test]
fn item_index_counts_committed_items_from_a_position() {
    let plan = Plan {
        seed: 1,
        orders: 40,
        instances: 2,
        customers: 100,
    };
    let index = ItemIndex::new(&plan, 1);
    let counts = plan.item_counts(1);
    assert_eq!(
        index.total(),
        counts.iter().map(|&c| u64::from(c)).sum::<u64>()
    );
    assert_eq!(index.committed(ItemPos::default()), 0);
    assert_eq!(
        index.committed(ItemPos { seq: 3, line: 1 }),
        u64::from(counts[0]) + u64::from(counts[1]) + 1
    );
    let last = plan.orders_of(1);
    assert_eq!(
        index.committed(ItemPos {
            seq: last,
            line: index.count(last).unwrap()
        }),
        index.total()
    );
    assert_eq!(index.count(0), None);
    assert_eq!(index.count(last + 1), None);
}

#[test]
fn ownership_lost_is_permanent_and_invalidation_is_not() {
    use snowpipe_streaming::Error;
    let lost = anyhow::Error::new(Error::OwnershipLost {
        channel: "orders_channel_0".into(),
        reason: "another client opened it".into(),
        last_committed: Some(OffsetToken::new("order_1234").unwrap()),
        source: None,
    })
    .context("append to orders_channel_0 failed");
    assert!(is_permanent(&lost));
    let invalidated = anyhow::Error::new(Error::ChannelInvalidated {
        channel: "orders_channel_0".into(),
        reason: "invalidated by the server".into(),
        last_committed: Some(OffsetToken::new("order_1234").unwrap()),
        source: None,
    })
    .context("append to orders_channel_0 failed");
    assert!(!is_permanent(&invalidated));
}

#[test]
fn channel_names_follow_the_seed() {
    assert_eq!(
        channel_names(3, ""),
        ("orders_channel_3".into(), "order_items_channel_3".into())
    );
    assert_eq!(channel_names(0, "_b").0, "orders_channel_0_b");
}
