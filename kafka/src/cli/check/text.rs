//! The plan as lines for people ([`Plan::text`]).

use std::fmt::Write as _;

use super::plan::{Plan, State, TopicPlan};

impl Plan {
    /// The plan as lines for people.
    pub(crate) fn text(&self) -> String {
        let mut s = String::new();
        self.write_sides(&mut s);
        for t in &self.topics {
            t.write_text(&mut s);
        }
        self.write_verdict(&mut s);
        s
    }

    /// The header and the three sides: the brokers, the registry, Snowflake.
    fn write_sides(&self, s: &mut String) {
        let _ = writeln!(
            s,
            "snowpipe-kafka check (read-only: no channel opened, no table created, no offset \
             committed)\n"
        );
        let k = &self.kafka;
        let _ = writeln!(
            s,
            "kafka      {} (group {}): {}",
            k.brokers,
            k.group,
            if k.reachable {
                "reachable"
            } else {
                "NOT REACHABLE"
            }
        );
        match &self.registry {
            None => {
                let _ = writeln!(s, "registry   not used (no registry --value-format)");
            }
            Some(r) => {
                let _ = writeln!(
                    s,
                    "registry   {}: {}",
                    r.urls.join(","),
                    if r.answers {
                        "answers"
                    } else {
                        "DOES NOT ANSWER"
                    }
                );
            }
        }
        let sf = &self.snowflake;
        let _ = writeln!(
            s,
            "snowflake  {}.{}: {}",
            sf.database,
            sf.schema,
            if sf.connected {
                "connected"
            } else {
                "NOT CONNECTED"
            }
        );
    }

    /// The warnings, the problems, and whether a run would start.
    fn write_verdict(&self, s: &mut String) {
        let topics = self.topics.len();
        let partitions: usize = self.topics.iter().map(|t| t.channels.len()).sum();
        for (title, lines) in [("warnings", &self.warnings), ("problems", &self.problems)] {
            if !lines.is_empty() {
                let _ = writeln!(s, "\n{title}:");
                for l in lines {
                    let _ = writeln!(s, "  - {l}");
                }
            }
        }
        let counted = format!(
            "{topics} topic{}, {partitions} partition{} (one channel each)",
            if topics == 1 { "" } else { "s" },
            if partitions == 1 { "" } else { "s" }
        );
        let _ = if self.would_start {
            writeln!(s, "\na run would start: {counted}")
        } else {
            writeln!(
                s,
                "\na run would NOT start: {} problem{}",
                self.problems.len(),
                if self.problems.len() == 1 { "" } else { "s" }
            )
        };
    }
}

impl TopicPlan {
    /// The topic's lines: its table and pipe, and a row per channel.
    fn write_text(&self, s: &mut String) {
        let t = self;
        let _ = writeln!(
            s,
            "\ntopic {} ({}): {}",
            t.topic,
            t.matched_by,
            match t.partitions {
                Some(1) => "1 partition".to_owned(),
                Some(n) => format!("{n} partitions"),
                None => "partitions not known".to_owned(),
            }
        );
        if let (Some(table), Some(state)) = (&t.table, t.table_state) {
            let _ = writeln!(s, "  table  {table}: {}", state_words(state, true));
        }
        match &t.pipe {
            Some(p) => {
                let _ = writeln!(
                    s,
                    "  pipe   {p} ({}): {}",
                    t.pipe_rule,
                    state_words(t.pipe_state, false)
                );
            }
            None => {
                let _ = writeln!(s, "  pipe   none");
            }
        }
        if t.channels.is_empty() {
            return;
        }
        let mut rows = vec![[
            "partition",
            "channel",
            "committed token",
            "group offset",
            "log start..end",
            "run starts at",
        ]
        .map(str::to_owned)
        .to_vec()];
        let dash = |v: Option<i64>| v.map_or_else(|| "-".to_owned(), |v| v.to_string());
        for c in &t.channels {
            rows.push(vec![
                c.partition.to_string(),
                c.channel.clone(),
                match (c.exists, &c.committed_token) {
                    (_, Some(token)) => token.clone(),
                    (Some(true), None) => "none".to_owned(),
                    (Some(false), None) => "none (new channel)".to_owned(),
                    (None, None) => "?".to_owned(),
                },
                dash(c.group_offset),
                format!("{}..{}", dash(c.log_start), dash(c.log_end)),
                match c.start {
                    Some(o) => format!("{o}: {}", c.start_reason),
                    None => c.start_reason.clone(),
                },
            ]);
        }
        s.push_str(&aligned(&rows, "  "));
    }
}

/// A table or pipe's state in words.
fn state_words(state: State, table: bool) -> &'static str {
    match (state, table) {
        (State::Exists, _) => "exists",
        (State::ToBeCreated, true) => "MISSING: the run creates it (--create-tables)",
        (State::ToBeCreated, false) => "comes with the table the run creates",
        (State::Missing, true) => "MISSING (see the problems)",
        (State::Missing, false) => "MISSING or not authorized (see the problems)",
        (State::Unknown, _) => "not known (Snowflake could not be asked)",
    }
}

/// `rows` as columns, each as wide as its widest cell, every line starting with `indent`.
fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(|c| c.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_owned();
        for (i, cell) in row.iter().enumerate() {
            if i + 1 == row.len() {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<w$}  ", w = widths[i]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cli::check::plan::ChannelPlan;
    use crate::cli::check::{KafkaSide, SnowflakeSide, TopicPlan};

    #[test]
    fn columns_are_as_wide_as_their_widest_cell() {
        let rows = vec![
            vec!["a".to_owned(), "bb".to_owned(), "c".to_owned()],
            vec!["aaa".to_owned(), "b".to_owned(), "last cell".to_owned()],
        ];
        assert_eq!(aligned(&rows, "  "), "  a    bb  c\n  aaa  b   last cell\n");
    }

    /// A plan with a problem says so last, and lists the problem; its JSON has every field.
    #[test]
    fn the_text_ends_with_the_verdict() {
        let plan = Plan {
            would_start: false,
            problems: vec!["topic t: table D.S.T does not exist".to_owned()],
            warnings: Vec::new(),
            kafka: KafkaSide {
                brokers: "b:9092".into(),
                group: "g".into(),
                reachable: true,
                topic_regex: None,
                dead_letter_topic: None,
            },
            registry: None,
            snowflake: SnowflakeSide {
                database: "D".into(),
                schema: "S".into(),
                connected: true,
            },
            topics: vec![TopicPlan {
                topic: "t".into(),
                matched_by: "--topic",
                partitions: Some(1),
                table: Some("T".into()),
                table_state: Some(State::Missing),
                pipe: Some("T-STREAMING".into()),
                pipe_state: State::Missing,
                pipe_rule: "the default pipe of table T".into(),
                channels: vec![ChannelPlan {
                    partition: 0,
                    channel: "g_t_0".into(),
                    exists: Some(false),
                    committed_token: None,
                    group_offset: None,
                    log_start: Some(0),
                    log_end: Some(3),
                    start: Some(0),
                    start_reason: "the log start".into(),
                }],
            }],
        };
        let text = plan.text();
        assert!(
            text.contains("table  T: MISSING") && text.contains("g_t_0"),
            "{text}"
        );
        assert!(
            text.trim_end()
                .ends_with("a run would NOT start: 1 problem"),
            "{text}"
        );
        let json = serde_json::to_value(&plan).unwrap();
        assert_eq!(json["topics"][0]["table_state"], "missing");
        assert_eq!(json["topics"][0]["channels"][0]["log_end"], 3);
        assert_eq!(json["would_start"], false);
    }
}
