//! Before `--apply` rewrites a table: are its writers stopped? The dedup statement replaces
//! the table's rows with those it keeps; rows a writer commits while it runs may be lost
//! (`kafka/docs/audit.md`). Two signs of a running writer, both asked of what the audit
//! already reads:
//!
//! * the consumer group has members (a sink or connector of this configuration is running):
//!   asked of the group's coordinator (`DescribeGroups`). Brokers that cannot answer (the
//!   librdkafka mock cluster has no `DescribeGroups`) give a note, not a refusal;
//! * a channel's committed offset token moves: each partition's token as the audit read it,
//!   and again after [`AuditArgs::idle_for`](super::AuditArgs::idle_for). This sees any
//!   writer of these channels, in any group, as long as it commits in that time.
//!
//! Either refuses `--apply` unless `--force` (`audit.rs`).

use std::time::Duration;

use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};

use crate::cli::check;
use crate::error::Result;

use super::{Audit, AuditArgs};

/// How long the group's coordinator may take to answer.
const DESCRIBE_TIMEOUT: Duration = Duration::from_secs(10);

/// What was seen of the writers.
#[derive(Debug, Default)]
pub(super) struct Writers {
    /// Each sign of a running writer, naming it.
    pub running: Vec<String>,
    /// What could not be asked.
    pub notes: Vec<String>,
}

/// Looks for running writers of `report`'s partitions (see the module docs).
///
/// # Errors
/// What a run refuses before connecting (the configuration, as [`check::plan`]).
pub(super) async fn running(args: &AuditArgs, report: &Audit) -> Result<Writers> {
    let mut out = Writers::default();
    let mut sink = args.sink.clone();
    sink.load_kafka_config()?;
    sink.load_topic_map()?;
    let settings = sink.settings()?;
    let group = args.sink.group.clone();
    let config = settings.consumer.clone();
    let g = group.clone();
    match tokio::task::spawn_blocking(move || members(&config, &g)).await {
        Ok(Ok(m)) if !m.is_empty() => out.running.push(format!(
            "consumer group {group} has {} member{} ({}): a sink or connector of this group is \
             running",
            m.len(),
            if m.len() == 1 { "" } else { "s" },
            m.join(", ")
        )),
        Ok(Ok(_)) => {}
        Ok(Err(e)) => out.notes.push(format!(
            "the members of consumer group {group} could not be asked ({e}): only the \
             channels' tokens were watched"
        )),
        Err(e) => out.notes.push(format!(
            "the members of consumer group {group} could not be asked ({e})"
        )),
    }
    tokio::time::sleep(args.idle_for).await;
    let plan = check::plan(args.sink.clone()).await?;
    for t in &plan.topics {
        for c in &t.channels {
            let before = report
                .tables
                .iter()
                .flat_map(|t| &t.partitions)
                .find(|p| p.topic == t.topic && p.partition == c.partition)
                .and_then(|p| p.committed_token.clone());
            if before != c.committed_token {
                out.running.push(format!(
                    "channel {} (topic {} partition {}) committed offset token {} then {} \
                     within {:?}: a writer is committing",
                    c.channel,
                    t.topic,
                    c.partition,
                    before.as_deref().unwrap_or("(none)"),
                    c.committed_token.as_deref().unwrap_or("(none)"),
                    args.idle_for
                ));
            }
        }
    }
    Ok(out)
}

/// The members of `group` (client id and host of each), asked of its coordinator with a
/// consumer of `config` that joins nothing.
///
/// # Errors
/// The brokers' refusal or a timeout, as text.
fn members(config: &ClientConfig, group: &str) -> std::result::Result<Vec<String>, String> {
    let consumer: BaseConsumer = config.create().map_err(|e| e.to_string())?;
    let list = consumer
        .fetch_group_list(Some(group), DESCRIBE_TIMEOUT)
        .map_err(|e| e.to_string())?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members())
        .map(|m| format!("{} at {}", m.client_id(), m.client_host()))
        .collect())
}
