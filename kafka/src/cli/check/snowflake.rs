//! What Snowflake says of each topic ([`topic_plan`]), asked read-only: its pipe chosen as the
//! run chooses it (`--topic2table-map`, `--table-named-pipes`: `desc pipe`), a default pipe's
//! table described with `--create-tables` (`desc table`, never created), and the partitions'
//! channels read with the bulk channel-status call, which opens no channel; and the fixes
//! named when the connection or a pipe is refused.

use std::collections::HashMap;

use snowpipe_streaming::{default_pipe_table, StreamingIngestClient};

use super::brokers::TopicFacts;
use super::plan::{ChannelPlan, State, TopicPlan};
use super::start::start_of;
use crate::sink::settings::Settings;

/// Where the setup page is (quoted in the fixes).
const SETUP_PAGE: &str = "docs/snowflake-setup.md";

/// Why the Snowflake client could not connect, and the fix.
pub(super) fn snowflake_refused(e: &crate::error::Error) -> String {
    match e.snowflake() {
        Some(snowpipe_streaming::Error::Auth { .. }) => format!(
            "Snowflake refused the connection: {e:#}: check the account, the user and that the \
             key's public half is registered on that user (ALTER USER … SET RSA_PUBLIC_KEY, \
             {SETUP_PAGE})"
        ),
        Some(snowpipe_streaming::Error::Transport(_)) => format!(
            "Snowflake cannot be reached: {e:#}: check SNOWFLAKE_ACCOUNT or SNOWFLAKE_URL (or \
             the profile) and the network"
        ),
        _ => format!("the Snowflake connection: {e:#}"),
    }
}

/// The plan of one topic: its pipe chosen as the run chooses it, asked of Snowflake with
/// read-only calls, and its channels' tokens beside the group's offsets. Problems go to
/// `problems`.
pub(super) async fn topic_plan(
    topic: &TopicFacts,
    settings: &Settings,
    client: Option<&StreamingIngestClient>,
    problems: &mut Vec<String>,
) -> TopicPlan {
    let name = &topic.name;
    let mut out = unasked(topic, settings);
    let configured = match settings.routes.pipe_of(name) {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!("topic {name}: no pipe: {e:#}"));
            out.pipe_rule = "none".to_owned();
            return out;
        }
    };
    let table = default_pipe_table(&configured);
    out.table.clone_from(&table);
    out.pipe = Some(configured.clone());
    out.pipe_rule = match &table {
        Some(t) => format!("the default pipe of table {t}"),
        None => "named by the configuration".to_owned(),
    };
    let Some(client) = client else {
        out.table_state = table.as_ref().map(|_| State::Unknown);
        return out;
    };
    let mut choice = Choice {
        topic: name,
        settings,
        pipe: configured.clone(),
        configured,
        table,
        table_state: None,
    };
    choice.table_state = choice.described_table(problems).await;
    match choice.named_pipe().await {
        Ok((pipe, rule)) => {
            if let Some(rule) = rule {
                out.pipe_rule = rule;
            }
            choice.pipe = pipe;
        }
        Err(problem) => {
            problems.push(problem);
            out.table_state = choice.table_state.or(Some(State::Unknown));
            return out;
        }
    }
    out.pipe = Some(choice.pipe.clone());
    choice.read_channels(client, &mut out, problems).await;
    out
}

/// `topic`'s plan before Snowflake is asked: one channel per partition, named as the run
/// names it, nothing known of its token.
fn unasked(topic: &TopicFacts, settings: &Settings) -> TopicPlan {
    let name = &topic.name;
    let partitions = topic.partitions.clone().unwrap_or_default();
    TopicPlan {
        topic: name.clone(),
        matched_by: if topic.listed {
            "--topic"
        } else {
            "--topic-regex"
        },
        partitions: topic.partitions.as_ref().map(Vec::len),
        table: None,
        table_state: None,
        pipe: None,
        pipe_state: State::Unknown,
        pipe_rule: String::new(),
        channels: partitions
            .iter()
            .map(|p| ChannelPlan {
                partition: p.id,
                channel: settings.channels.channel_name(name, p.id),
                exists: None,
                committed_token: None,
                group_offset: p.group_offset,
                log_start: p.log_start,
                log_end: p.log_end,
                start: None,
                start_reason: "not known: Snowflake could not be asked".to_owned(),
            })
            .collect(),
    }
}

/// A topic's pipe as the run chooses it, and what is known of its table.
struct Choice<'a> {
    topic: &'a str,
    settings: &'a Settings,
    /// The pipe the configuration names (`--pipe`, `--topic2table-map`, the default).
    configured: String,
    /// The table of `configured` when it is a default pipe `<TABLE>-STREAMING`.
    table: Option<String>,
    /// What is known of `table`.
    table_state: Option<State>,
    /// The pipe the run writes through (`--table-named-pipes` may choose another).
    pipe: String,
}

impl Choice<'_> {
    /// Whether the run writes through the default pipe of a table.
    fn is_default(&self) -> bool {
        self.table.is_some() && self.pipe == self.configured
    }

    /// `--create-tables`: the run describes the table before it creates it; so does check,
    /// and stops there. A failure goes to `problems` (the state then `Unknown`).
    async fn described_table(&self, problems: &mut Vec<String>) -> Option<State> {
        let (Some(creator), Some(t)) = (&self.settings.tables, &self.table) else {
            return None;
        };
        match creator.table_exists(&self.configured).await {
            Ok(true) => Some(State::Exists),
            Ok(false) => Some(State::ToBeCreated),
            Err(e) => {
                problems.push(format!("topic {}: table {t}: {e:#}", self.topic));
                Some(State::Unknown)
            }
        }
    }

    /// `--table-named-pipes`: a pipe named like the table wins (`desc pipe`). The pipe, and
    /// how it was chosen when that is not the configured pipe.
    ///
    /// # Errors
    /// The problem, when the pipe cannot be asked for.
    async fn named_pipe(&self) -> Result<(String, Option<String>), String> {
        let Some(named) = &self.settings.named_pipes else {
            return Ok((self.configured.clone(), None));
        };
        let configured = &self.configured;
        match named.pipe_for(configured).await {
            Ok(p) => {
                let rule = (p != *configured).then(|| {
                    format!(
                        "named like table {} (--table-named-pipes), not its default pipe \
                         {configured}",
                        self.table.as_deref().unwrap_or_default()
                    )
                });
                Ok((p, rule))
            }
            Err(e) => Err(format!("topic {}: {e:#}", self.topic)),
        }
    }

    /// The channels' statuses, in bulk: read-only. With no partition known, a name never
    /// written still asks whether the pipe exists. What they say goes to `out` (the pipe's
    /// state, the table's, each channel's token and start), what stops a run to `problems`.
    async fn read_channels(
        &mut self,
        client: &StreamingIngestClient,
        out: &mut TopicPlan,
        problems: &mut Vec<String>,
    ) {
        let settings = self.settings;
        let names: Vec<String> = if out.channels.is_empty() {
            vec![settings.channels.channel_name(self.topic, 0)]
        } else {
            out.channels.iter().map(|c| c.channel.clone()).collect()
        };
        let refs: Vec<&str> = names.iter().map(String::as_str).collect();
        let pipe = client.pipe(&settings.database, &settings.schema, &self.pipe);
        let statuses = match pipe.channel_statuses(&refs).await {
            Ok(s) => {
                out.pipe_state = State::Exists;
                if self.is_default() {
                    // A default pipe answers only for a table that exists.
                    self.table_state = Some(State::Exists);
                }
                s
            }
            Err(e) if is_missing(&e) => {
                out.pipe_state = self.missing_pipe(&e, problems);
                HashMap::new()
            }
            Err(e) => {
                problems.push(self.unreadable(e));
                out.table_state = self
                    .table_state
                    .or(self.table.as_ref().map(|_| State::Unknown));
                return;
            }
        };
        out.table_state = self.table_state;
        for c in &mut out.channels {
            let status = statuses.get(&c.channel);
            c.exists = Some(status.is_some());
            let token = status.and_then(|s| s.committed_offset_token.as_ref());
            c.committed_token = token.map(|t| t.as_str().to_owned());
            let (start, reason) = start_of(
                token.map(|t| (t.as_str(), t.as_u64())),
                settings.start,
                settings.migrator.is_some(),
                c.log_start,
                c.log_end,
            );
            c.start = start;
            c.start_reason = reason;
        }
    }

    /// The pipe's state when the status call says it does not exist (or may not be used):
    /// to be created with its table, or missing (a problem naming the fix, unless `desc
    /// table` already failed; a default pipe's table then missing too without
    /// `--create-tables`).
    fn missing_pipe(&mut self, e: &snowpipe_streaming::Error, problems: &mut Vec<String>) -> State {
        if self.table_state == Some(State::ToBeCreated) && self.pipe == self.configured {
            return State::ToBeCreated;
        }
        if self.table_state == Some(State::Unknown) {
            // `desc table` failed: already a problem, and the table's state is not known.
            return State::Missing;
        }
        problems.push(self.missing(e));
        if self.is_default() && self.settings.tables.is_none() {
            self.table_state = Some(State::Missing);
        }
        State::Missing
    }

    /// The problem of a pipe that does not exist, naming the fix.
    fn missing(&self, e: &snowpipe_streaming::Error) -> String {
        let (topic, pipe) = (self.topic, &self.pipe);
        let (db, schema) = (&self.settings.database, &self.settings.schema);
        match self
            .table
            .as_deref()
            .filter(|_| self.pipe == self.configured)
        {
            Some(t) if self.settings.tables.is_none() => format!(
                "topic {topic}: table {db}.{schema}.{t} does not exist (or this role may not use \
                 it) and --create-tables is off: create it ({SETUP_PAGE}) or pass --create-tables \
                 ({e})"
            ),
            Some(t) => format!(
                "topic {topic}: the default pipe {pipe} of table {db}.{schema}.{t}, which exists, \
                 cannot be used: grant this role INSERT on the table ({SETUP_PAGE}) ({e})"
            ),
            None => format!(
                "topic {topic}: pipe {db}.{schema}.{pipe} does not exist (or this role may not use \
                 it): create it (CREATE PIPE … AS COPY INTO … FROM TABLE(DATA_SOURCE(TYPE => \
                 'STREAMING')), {SETUP_PAGE}), grant this role OPERATE and MONITOR on it, or name \
                 another with --pipe ({e})"
            ),
        }
    }

    /// The problem of a status call that failed otherwise.
    fn unreadable(&self, e: snowpipe_streaming::Error) -> String {
        let (db, schema, pipe) = (&self.settings.database, &self.settings.schema, &self.pipe);
        match e {
            snowpipe_streaming::Error::Auth { .. } => format!(
                "Snowflake refused the channel-status call on pipe {db}.{schema}.{pipe}: {e}"
            ),
            e => format!(
                "topic {}: cannot read the channels of pipe {db}.{schema}.{pipe}: {e}",
                self.topic
            ),
        }
    }
}

/// Whether a status call failed because the pipe (or a default pipe's table) does not exist
/// or may not be used.
fn is_missing(e: &snowpipe_streaming::Error) -> bool {
    matches!(e, snowpipe_streaming::Error::Server(s)
        if s.status == 404 || s.code.as_deref().is_some_and(|c| c.contains("DOES_NOT_EXIST")))
}
