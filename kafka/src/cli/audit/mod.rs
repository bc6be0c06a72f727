//! `snowpipe-kafka audit [the sink's options]`: what landed in each topic's table, partition
//! by partition, against what the brokers hold, and a statement that removes duplicates
//! without losing a row (design and the reasons: `kafka/docs/audit.md`).
//!
//! It reads, without changing anything:
//!
//! * **the plan of a run** ([`check::plan`]): each topic's partitions, log start and end, the
//!   group's committed offset, the table and pipe, and each partition's channel (as the run
//!   names it) with its committed offset token;
//! * **the table** through the SQL API: per `RECORD_METADATA:topic`/`partition` the rows, the
//!   distinct offsets, the first and last, how many rows carry `SnowflakeConnectorPushTime`;
//!   the offsets that landed more than once (the first [`AuditArgs::list`] per partition, and
//!   how many there are); the holes between landed offsets;
//! * **the brokers**, for each hole and for the offsets after the last landed one up to the
//!   channel's committed token: which of those offsets the broker can still deliver
//!   (`audit/broker.rs`). Only those are gaps: an offset below the log start (deleted by
//!   retention), one compaction removed, or a transaction marker is never delivered, so it is
//!   not one.
//!
//! Rows say nothing of the channel that wrote them (neither the connector's `RECORD_METADATA`
//! nor ours records it): a partition shows the channel the configuration names and its
//! token; which writer landed a copy twice shows in its `SnowflakeConnectorPushTime`.
//!
//! The dedup statement ([`dedup_statement`]) keeps, of every (topic, partition, offset), a
//! copy whose push time can be trusted ([`distrust`]) before one whose cannot, then the copy
//! with the earliest push time (then the smallest `RECORD_METADATA` text), and every row
//! without an offset or of another topic. With `--apply` it runs, once the writers are seen
//! stopped (`audit/writers.rs`: the group has no member and no channel's token moves; else
//! refused unless `--force`), then the table is audited again. [`run`] ends with an error naming each problem: a duplicate, a gap, offsets that
//! could not be asked of the broker, a table that cannot be read.

use std::collections::BTreeMap;

use serde::Serialize;
use snowpipe_streaming::sql::SqlClient;

use crate::cli::args::SinkArgs;
use crate::cli::check::{self, Format};
use crate::error::{err, Context, Error, Result};

mod broker;
mod queries;
mod rejected;
mod text;
mod trust;
mod writers;

pub(crate) use trust::{dedup_statement, distrust};

/// `snowpipe-kafka audit`: the sink's options, and what to do.
#[derive(Debug, Clone, clap::Args)]
pub struct AuditArgs {
    /// The configuration whose topics and tables are audited.
    #[command(flatten)]
    pub sink: SinkArgs,
    /// `text`: lines for people; `json`: one JSON document on stdout.
    #[arg(long, value_enum, value_name = "FORMAT", default_value_t = Format::Text)]
    pub format: Format,
    /// The table to audit (`TABLE`, `SCHEMA.TABLE` or `DB.SCHEMA.TABLE`), for every topic;
    /// by default each topic's table is the table of its default pipe.
    #[arg(long, value_name = "TABLE")]
    pub table: Option<String>,
    /// Runs the dedup statement on each table with duplicates, then audits again. Stop the
    /// writers first (kafka/docs/audit.md).
    #[arg(long)]
    pub apply: bool,
    /// How many duplicated offsets and gaps to list per partition (the counts are always
    /// whole).
    #[arg(long, value_name = "N", default_value_t = 20)]
    pub list: usize,
    /// With `--apply`: how long each channel's committed token is watched first; a token
    /// that moves meanwhile means a writer is running, and `--apply` is refused.
    #[arg(long, value_name = "DURATION", default_value = "5s", value_parser = crate::cli::args::parse_duration)]
    pub idle_for: std::time::Duration,
    /// With `--apply`: run the statement even while the group has members or a channel's
    /// token moves (rows a running writer commits meanwhile may be lost).
    #[arg(long, requires = "apply")]
    pub force: bool,
    /// How long each of the audit's SQL statements may run; the audit waits for a result at
    /// most this and as long again (at most 60 s more), whatever the SQL API answers meanwhile.
    #[arg(long, value_name = "DURATION", default_value = "10m", value_parser = crate::cli::args::parse_duration)]
    pub sql_timeout: std::time::Duration,
}

/// What the audit found.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Audit {
    /// No duplicate, no gap, every table read.
    pub clean: bool,
    /// Each duplicate, gap or table that could not be read, naming the fix.
    pub problems: Vec<String>,
    /// What the plan of a run warned about or could not ask (not counted as problems).
    pub notes: Vec<String>,
    /// Where each row's channel is recorded (it is not).
    pub channel_of_rows: &'static str,
    /// One entry per table.
    pub tables: Vec<TableAudit>,
    /// What `--apply` ran (`None` without `--apply`).
    pub applied: Option<Vec<Applied>>,
}

/// A statement `--apply` ran.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Applied {
    /// The table.
    pub table: String,
    /// The rows the table holds after it (Snowflake's `number of rows inserted`).
    pub rows_kept: Option<u64>,
}

/// One audited table.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableAudit {
    /// As the statement names it.
    pub table: String,
    /// The topics audited in it.
    pub topics: Vec<String>,
    /// Why it could not be read (`None`: read).
    pub error: Option<String>,
    /// Per (topic, partition).
    pub partitions: Vec<PartitionAudit>,
    /// The statement that keeps one copy of each offset (always printed; it changes nothing
    /// on a clean table).
    pub dedup_statement: String,
}

/// One (topic, partition) of a table.
#[derive(Debug, Clone, Default, Serialize)]
pub(crate) struct PartitionAudit {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// Rows of this partition in the table.
    pub rows: u64,
    /// Distinct offsets among them.
    pub distinct_offsets: u64,
    /// The smallest offset landed.
    pub first_offset: Option<i64>,
    /// The largest offset landed.
    pub last_offset: Option<i64>,
    /// Rows with `SnowflakeConnectorPushTime`.
    pub rows_with_push_time: u64,
    /// Rows whose push time cannot be trusted: 0 or less, or before the row's own record
    /// timestamp ([`distrust`]; rows without one are not counted here).
    pub rows_untrusted: u64,
    /// Offsets landed more than once.
    pub duplicated_offsets: u64,
    /// Rows the dedup statement removes (`rows - distinct_offsets`).
    pub extra_copies: u64,
    /// The first duplicated offsets, with how many copies of each.
    pub duplicates: Vec<Duplicate>,
    /// Offsets the broker still delivers that are not in the table.
    pub missing: u64,
    /// The first of them, as ranges.
    pub gaps: Vec<Gap>,
    /// Offsets absent from the table that the broker does not deliver (retention,
    /// compaction, transaction markers): not gaps.
    pub absent_not_held: u64,
    /// Offsets absent from the table that were not asked of the broker (over the limit, or
    /// the brokers could not be asked).
    pub absent_not_checked: u64,
    /// Offsets absent from the table whose rows the server rejected (in its error table,
    /// `rejected.rs`): not gaps.
    pub rejected: u64,
    /// The first of them.
    pub rejected_offsets: Vec<i64>,
    /// The channel this configuration names for the partition.
    pub channel: Option<String>,
    /// Its committed offset token.
    pub committed_token: Option<String>,
    /// The group's committed offset (the next to read).
    pub group_offset: Option<i64>,
    /// The partition's log start.
    pub log_start: Option<i64>,
    /// The partition's log end.
    pub log_end: Option<i64>,
}

/// An offset landed more than once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Duplicate {
    /// The offset.
    pub offset: i64,
    /// How many rows have it.
    pub copies: u64,
}

/// Offsets `from..=to` the broker delivers and the table does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct Gap {
    /// The first.
    pub from: i64,
    /// The last.
    pub to: i64,
}

impl std::fmt::Display for Gap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.from == self.to {
            write!(f, "{}", self.from)
        } else {
            write!(f, "{}-{}", self.from, self.to)
        }
    }
}

/// Where a row's channel would be recorded.
const CHANNEL_OF_ROWS: &str = "not recorded: RECORD_METADATA (the connector's and this \
     sink's) holds topic, partition, offset and SnowflakeConnectorPushTime but no channel name; \
     each partition shows the channel this configuration names and its committed token";

/// Runs `audit`: prints the report (text, or one JSON document), and with `--apply` runs the
/// dedup statements and audits again.
///
/// # Errors
/// A configuration that does not parse (as a run refuses it); a report with problems (each
/// named; the report is printed first).
pub async fn run(args: AuditArgs) -> Result<()> {
    let mut report = audit(&args).await?;
    let needed = report
        .tables
        .iter()
        .any(|t| t.error.is_none() && t.partitions.iter().any(|p| p.extra_copies > 0));
    if args.apply && needed {
        let busy = writers::running(&args, &report).await?;
        report.notes.extend(busy.notes);
        if !busy.running.is_empty() {
            if !args.force {
                report.problems.extend(busy.running.iter().cloned());
                report.clean = false;
                print_report(&report, args.format)?;
                return Err(err!(
                    Sink,
                    "--apply refused: the writers of the table are not stopped: {}; stop them \
                     and run it again, or give --force (rows they commit meanwhile may be lost)",
                    busy.running.join("; ")
                ));
            }
            report.notes.extend(
                busy.running
                    .iter()
                    .map(|r| format!("--force: applied although {r}")),
            );
        }
    }
    if args.apply {
        let notes = std::mem::take(&mut report.notes);
        let sql = sql_client(&args.sink, args.sql_timeout)?;
        let mut applied = Vec::new();
        for t in report.tables.iter().filter(|t| t.error.is_none()) {
            if t.partitions.iter().all(|p| p.extra_copies == 0) {
                continue;
            }
            let result = sql
                .query(&t.dedup_statement)
                .await
                .with_context(Error::Snowflake, || {
                    format!("--apply: the dedup statement on {}", t.table)
                })?;
            let kept = result
                .rows
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .and_then(|n| n.parse().ok());
            applied.push(Applied {
                table: t.table.clone(),
                rows_kept: kept,
            });
        }
        report = audit(&args).await?;
        report
            .notes
            .extend(notes.into_iter().filter(|n| !n.starts_with("check: ")));
        report.applied = Some(applied);
    }
    print_report(&report, args.format)?;
    if report.clean {
        Ok(())
    } else {
        Err(err!(
            Sink,
            "the audit found problems: {}",
            report.problems.join("; ")
        ))
    }
}

/// Prints `report` as `format` says.
///
/// # Errors
/// A report that cannot be written as JSON.
fn print_report(report: &Audit, format: Format) -> Result<()> {
    match format {
        Format::Text => print!("{}", report.text()),
        Format::Json => println!("{}", serde_json::to_string_pretty(report)?),
    }
    Ok(())
}

/// The most one SQL API answer of the audit may hold (decompressed): its answers are a row
/// per partition, the first `--list` duplicates and at most [`queries::MAX_HOLES`] + 1 holes.
const SQL_ANSWER_BYTES: usize = 16 << 20;

/// The most the rows of one of the audit's queries may hold in memory.
const SQL_ROWS_BYTES: usize = 64 << 20;

/// The SQL API client of `args`' connection, in its database and schema, its statements
/// cancelled after `timeout`, its answers within [`SQL_ANSWER_BYTES`] and [`SQL_ROWS_BYTES`].
fn sql_client(args: &SinkArgs, timeout: std::time::Duration) -> Result<SqlClient> {
    Ok(args
        .client_builder()?
        .build_sql()
        .context(Error::Snowflake, "cannot make the SQL API client")?
        .database(&args.database)
        .schema(&args.schema)
        .timeout(timeout)
        .max_partition_bytes(SQL_ANSWER_BYTES)
        .max_result_bytes(SQL_ROWS_BYTES))
}

/// Audits every table of `args`' topics (see the module docs).
///
/// # Errors
/// What a run refuses before connecting ([`check::plan`]).
pub(crate) async fn audit(args: &AuditArgs) -> Result<Audit> {
    let mut sink = args.sink.clone();
    sink.load_kafka_config()?;
    sink.load_topic_map()?;
    let settings = sink.settings()?;
    let plan = check::plan(args.sink.clone()).await?;
    let mut report = Audit {
        clean: true,
        problems: Vec::new(),
        notes: plan
            .problems
            .iter()
            .chain(&plan.warnings)
            .map(|p| format!("check: {p}"))
            .collect(),
        channel_of_rows: CHANNEL_OF_ROWS,
        tables: Vec::new(),
        applied: None,
    };
    // Topics by table.
    let mut tables: BTreeMap<String, Vec<&check::TopicPlan>> = BTreeMap::new();
    for t in &plan.topics {
        match args.table.as_ref().or(t.table.as_ref()) {
            Some(table) => tables.entry(table.clone()).or_default().push(t),
            None => report.problems.push(format!(
                "topic {}: its pipe {} is not a table's default pipe, so its table is not \
                 known: give --table",
                t.topic,
                t.pipe.as_deref().unwrap_or("(none)")
            )),
        }
    }
    if plan.topics.is_empty() {
        report
            .problems
            .push("no topic to audit: give --topic (or --topic-regex matching topics)".into());
    }
    let sql = match sql_client(&sink, args.sql_timeout) {
        Ok(s) => Some(s),
        Err(e) => {
            report.problems.push(format!("{e:#}"));
            None
        }
    };
    // Without brokers every hole would wait out its reads: none is asked, each is counted
    // as not checked (a problem).
    let consumer = plan
        .kafka
        .reachable
        .then(|| broker::Reader::new(&settings.consumer));
    for (table, topics) in tables {
        let qualified = qualify(&table, &settings.database, &settings.schema);
        let names: Vec<String> = topics.iter().map(|t| t.topic.clone()).collect();
        let mut out = TableAudit {
            dedup_statement: dedup_statement(&qualified, &names),
            table: qualified.clone(),
            topics: names.clone(),
            error: None,
            partitions: Vec::new(),
        };
        let landed = match &sql {
            Some(sql) => queries::landed(sql, &qualified, &names, args.list).await,
            None => Err(err!(Snowflake, "no SQL API client")),
        };
        match landed {
            Ok((parts, more)) => {
                out.partitions = parts;
                if more {
                    report.problems.push(format!(
                        "table {qualified}: more than {} holes between landed offsets: only the \
                         first {0} (by topic, partition, offset) were asked of the broker; \
                         replay or remove what is reported and audit again",
                        queries::MAX_HOLES
                    ));
                }
                let refused = match &sql {
                    Some(sql) => rejected::offsets(sql, &qualified, &names, &mut report).await,
                    None => BTreeMap::new(),
                };
                complete(
                    &mut out.partitions,
                    &topics,
                    consumer.as_ref(),
                    args.list,
                    &refused,
                )
                .await;
            }
            Err(e) => {
                out.error = Some(format!("{e:#}"));
                report.problems.push(format!(
                    "table {qualified}: cannot be read: {e:#}: check the name (--table), that \
                     this role may SELECT from it, and that it has RECORD_METADATA"
                ));
            }
        }
        report.tables.push(out);
    }
    for t in &report.tables {
        for p in &t.partitions {
            report.problems.extend(problems_of(&t.table, p));
        }
    }
    report.clean = report.problems.is_empty();
    Ok(report)
}

/// `table` qualified with the configuration's database and schema where it names none.
fn qualify(table: &str, database: &str, schema: &str) -> String {
    match table.matches('.').count() {
        0 => format!("{database}.{schema}.{table}"),
        1 => format!("{database}.{table}"),
        _ => table.to_owned(),
    }
}

/// Adds each topic's partitions that landed nothing, the channels' tokens and the group's
/// offsets from the plan; takes the rows the server rejected (`refused`) out of the offsets
/// the table lacks, and asks the broker about the rest.
async fn complete(
    parts: &mut Vec<PartitionAudit>,
    topics: &[&check::TopicPlan],
    reader: Option<&broker::Reader>,
    list: usize,
    refused: &BTreeMap<(String, i32), std::collections::BTreeSet<i64>>,
) {
    for t in topics {
        for c in &t.channels {
            let at = parts
                .iter()
                .position(|p| p.topic == t.topic && p.partition == c.partition);
            let p = match at {
                Some(i) => &mut parts[i],
                None => {
                    parts.push(PartitionAudit {
                        topic: t.topic.clone(),
                        partition: c.partition,
                        ..PartitionAudit::default()
                    });
                    parts.last_mut().expect("pushed")
                }
            };
            p.channel = Some(c.channel.clone());
            p.committed_token.clone_from(&c.committed_token);
            p.group_offset = c.group_offset;
            p.log_start = c.log_start;
            p.log_end = c.log_end;
        }
    }
    parts.sort_by(|a, b| (&a.topic, a.partition).cmp(&(&b.topic, b.partition)));
    for p in parts.iter_mut() {
        let mut absent = std::mem::take(&mut p.gaps);
        // After the last landed offset, up to the channel's committed token: the token says
        // these landed.
        let token = p
            .committed_token
            .as_deref()
            .and_then(|t| t.parse::<i64>().ok());
        if let Some(token) = token {
            let after = p.last_offset.map_or(p.log_start.unwrap_or(0), |l| l + 1);
            if token >= after {
                absent.push(Gap {
                    from: after,
                    to: token,
                });
            }
        }
        if let Some(set) = refused.get(&(p.topic.clone(), p.partition)) {
            let (left, taken) = rejected::split(absent, set);
            absent = left;
            p.rejected = taken.len() as u64;
            p.rejected_offsets = taken.into_iter().take(list).collect();
        }
        let held = match reader {
            Some(r) => {
                let log = (p.log_start, p.log_end);
                r.held(&p.topic, p.partition, &absent, log).await
            }
            None => broker::Held {
                found: Vec::new(),
                not_checked: absent.iter().map(|g| span(*g)).sum(),
            },
        };
        p.missing = held.found.iter().map(|g| span(*g)).sum();
        p.absent_not_checked = held.not_checked;
        p.absent_not_held =
            absent.iter().map(|g| span(*g)).sum::<u64>() - p.missing - p.absent_not_checked;
        p.gaps = held.found.into_iter().take(list).collect();
    }
}

/// How many offsets `g` spans.
fn span(g: Gap) -> u64 {
    u64::try_from(g.to - g.from + 1).unwrap_or(0)
}

/// The problems of one partition, each naming what to do.
fn problems_of(table: &str, p: &PartitionAudit) -> Vec<String> {
    let mut out = Vec::new();
    let at = format!("table {table}, topic {} partition {}", p.topic, p.partition);
    if p.duplicated_offsets > 0 {
        let listed: Vec<String> = p
            .duplicates
            .iter()
            .map(|d| format!("{} ({}×)", d.offset, d.copies))
            .collect();
        let more = p
            .duplicated_offsets
            .saturating_sub(p.duplicates.len() as u64);
        out.push(format!(
            "{at}: {} offset{} landed more than once ({} extra row{}): {}{}; run the printed \
             dedup statement (or --apply)",
            p.duplicated_offsets,
            if p.duplicated_offsets == 1 { "" } else { "s" },
            p.extra_copies,
            if p.extra_copies == 1 { "" } else { "s" },
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        ));
    }
    if p.absent_not_checked > 0 {
        out.push(format!(
            "{at}: {} offset{} absent from the table could not be asked of the broker (the \
             brokers cannot be reached, a read timed out, or over {} reads): check the brokers \
             and audit again",
            p.absent_not_checked,
            if p.absent_not_checked == 1 { "" } else { "s" },
            broker::MAX_READ
        ));
    }
    if p.rejected > 0 {
        let listed: Vec<String> = p.rejected_offsets.iter().map(ToString::to_string).collect();
        out.push(format!(
            "{at}: {} offset{} rejected by Snowflake (in the table's error table, not gaps): \
             {}{}; fix the rows or the table's columns and replay them, or accept the loss",
            p.rejected,
            if p.rejected == 1 { " was" } else { "s were" },
            listed.join(", "),
            if p.rejected > p.rejected_offsets.len() as u64 {
                " …"
            } else {
                ""
            }
        ));
    }
    if p.missing > 0 {
        let listed: Vec<String> = p.gaps.iter().map(ToString::to_string).collect();
        out.push(format!(
            "{at}: {} offset{} the broker still holds {} not in the table: {}; replay them \
             before retention deletes them (kafka/docs/audit.md, \"Gaps\")",
            p.missing,
            if p.missing == 1 { "" } else { "s" },
            if p.missing == 1 { "is" } else { "are" },
            listed.join(", ")
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A table is qualified with the configuration's database and schema where it names none.
    #[test]
    fn a_table_is_qualified_where_it_names_no_database_or_schema() {
        assert_eq!(qualify("T", "D", "S"), "D.S.T");
        assert_eq!(qualify("X.T", "D", "S"), "D.X.T");
        assert_eq!(qualify("A.B.T", "D", "S"), "A.B.T");
    }

    /// Duplicates and gaps are named with their counts and the first few listed.
    #[test]
    fn problems_name_the_offsets_and_the_counts() {
        let p = PartitionAudit {
            topic: "t".into(),
            partition: 2,
            duplicated_offsets: 3,
            extra_copies: 4,
            duplicates: vec![
                Duplicate {
                    offset: 5,
                    copies: 3,
                },
                Duplicate {
                    offset: 9,
                    copies: 2,
                },
            ],
            missing: 4,
            gaps: vec![Gap { from: 7, to: 9 }, Gap { from: 12, to: 12 }],
            ..PartitionAudit::default()
        };
        let problems = problems_of("D.S.T", &p);
        assert_eq!(problems.len(), 2);
        assert!(
            problems[0].contains(
                "3 offsets landed more than once (4 extra rows): 5 (3×), 9 (2×) and 1 more"
            ),
            "{}",
            problems[0]
        );
        assert!(
            problems[1].contains("4 offsets the broker still holds are not in the table: 7-9, 12"),
            "{}",
            problems[1]
        );
        assert!(problems_of("D.S.T", &PartitionAudit::default()).is_empty());
    }
}
