//! Where a run would start each partition ([`start_of`]: the channel's committed token + 1,
//! else `--start`), and the warning for a group whose offsets are ahead of channels without a
//! token ([`group_ahead`]): Kafka's group offsets never decide where the sink starts.

use super::plan::TopicPlan;
use crate::sink::settings::Start;

/// The warning for a topic whose group has committed offsets where its channels have no
/// committed token: the run reads those partitions from `--start`, not from the group's
/// offsets (a group, channel prefix, connector name or pipe other than the earlier runs'?).
pub(super) fn group_ahead(topic: &TopicPlan) -> Option<String> {
    let ahead: Vec<String> = topic
        .channels
        .iter()
        .filter(|c| c.exists.is_some() && c.committed_token.is_none())
        .filter(|c| c.group_offset.is_some_and(|g| g > c.log_start.unwrap_or(0)))
        .map(|c| c.partition.to_string())
        .collect();
    (!ahead.is_empty()).then(|| {
        format!(
            "topic {}: the group has committed offsets for partition{} {} but {} no committed \
             token: a run starts {} by --start, not at the group's offsets (the sink starts \
             from Snowflake's committed token alone); if earlier runs wrote these partitions, \
             check --group, --channel-prefix, --connector-name and the pipe",
            topic.topic,
            if ahead.len() == 1 { "" } else { "s" },
            ahead.join(", "),
            if ahead.len() == 1 {
                "its channel has"
            } else {
                "their channels have"
            },
            if ahead.len() == 1 { "it" } else { "them" },
        )
    })
}

/// Where the run starts a partition, and why: after the channel's committed `token` (its
/// text, and its value when it is a number), else by `start`; `migrate`: a channel without a
/// token asks v3's classic channel first (`--migrate-v3-offsets`, which check does not run: it
/// writes the token).
pub(super) fn start_of(
    token: Option<(&str, Option<u64>)>,
    start: Start,
    migrate: bool,
    log_start: Option<i64>,
    log_end: Option<i64>,
) -> (Option<i64>, String) {
    let by_start = |why: &str| match start {
        Start::Earliest => (
            log_start,
            format!("the log start ({why}, --start earliest)"),
        ),
        Start::Latest => (log_end, format!("the log end ({why}, --start latest)")),
    };
    match token {
        Some((_, Some(t))) => {
            let next = i64::try_from(t).unwrap_or(i64::MAX - 1).saturating_add(1);
            match log_start {
                Some(low) if low > next => (
                    Some(low),
                    format!(
                        "the log start: the committed token + 1 ({next}) was deleted by \
                         retention before it landed (auto.offset.reset=earliest)"
                    ),
                ),
                _ => (Some(next), "the committed token + 1".to_owned()),
            }
        }
        Some((text, None)) => by_start(&format!(
            "the committed token {text:?} is not a Kafka offset, so it is not a position"
        )),
        None if migrate => (
            None,
            format!(
                "connector v3's offset + 1 when SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET finds its \
                 classic channel (--migrate-v3-offsets; check does not run it: it writes), \
                 else {}",
                by_start("no committed token").1
            ),
        ),
        None => by_start("no committed token"),
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan::{ChannelPlan, State};
    use super::*;

    /// The run starts after the committed token; at the log start when retention deleted
    /// that offset; by `--start` without a token or with one that is no Kafka offset; and a
    /// migration is named, not run.
    #[test]
    fn where_a_partition_starts_follows_the_sink() {
        let (low, high) = (Some(5), Some(40));
        assert_eq!(
            start_of(Some(("9", Some(9))), Start::Earliest, false, low, high),
            (Some(10), "the committed token + 1".to_owned())
        );
        let (at, why) = start_of(Some(("2", Some(2))), Start::Earliest, false, low, high);
        assert_eq!(at, Some(5));
        assert!(why.contains("deleted by retention"), "{why}");
        let (at, why) = start_of(None, Start::Earliest, false, low, high);
        assert_eq!(at, Some(5));
        assert!(why.contains("--start earliest"), "{why}");
        let (at, why) = start_of(None, Start::Latest, false, low, high);
        assert_eq!(at, Some(40));
        assert!(why.contains("--start latest"), "{why}");
        let (at, why) = start_of(Some(("a-7", None)), Start::Latest, false, low, high);
        assert_eq!(at, Some(40));
        assert!(why.contains("not a Kafka offset"), "{why}");
        let (at, why) = start_of(None, Start::Earliest, true, low, high);
        assert_eq!(at, None);
        assert!(
            why.contains("SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET") && why.contains("--start earliest"),
            "{why}"
        );
    }

    /// Group offsets where the channels have no token: a warning naming the partitions.
    #[test]
    fn a_group_ahead_of_channels_without_tokens_is_warned_about() {
        let channel = |partition, token: Option<&str>, group| ChannelPlan {
            partition,
            channel: format!("g_t_{partition}"),
            exists: Some(token.is_some()),
            committed_token: token.map(str::to_owned),
            group_offset: group,
            log_start: Some(0),
            log_end: Some(50),
            start: None,
            start_reason: String::new(),
        };
        let mut topic = TopicPlan {
            topic: "t".into(),
            matched_by: "--topic",
            partitions: Some(3),
            table: None,
            table_state: None,
            pipe: Some("P".into()),
            pipe_state: State::Exists,
            pipe_rule: String::new(),
            channels: vec![
                channel(0, Some("39"), Some(40)),
                channel(1, None, Some(40)),
                channel(2, None, None),
            ],
        };
        let warning = group_ahead(&topic).expect("a warning");
        assert!(
            warning.contains("partition 1 but its channel has no committed token"),
            "{warning}"
        );
        topic.channels.remove(1);
        assert_eq!(group_ahead(&topic), None);
    }
}
