//! The end of a soak: waiting until every acknowledged message is committed, and the
//! exactly-once check through the SQL API (the same check a user runs against Snowflake).

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use snowpipe_streaming::StreamingIngestClient;

use crate::demo::{DATABASE, SCHEMA, TABLE};
use crate::soak::producer::Produced;
use crate::soak::report::PartitionCheck;
use crate::soak::watch::Watch;

/// Waits until each partition's committed token reaches its highest acknowledged offset, up to
/// `limit`; whether it did.
pub(super) async fn drained(watch: &Watch, produced: &Produced, limit: Duration) -> bool {
    let started = Instant::now();
    loop {
        let highest: Vec<Option<i64>> = produced.lock().partitions.iter().map(|p| p.max).collect();
        let committed = watch.measured().committed.clone();
        let done = highest
            .iter()
            .enumerate()
            .all(|(p, max)| max.is_none() || committed.get(p).copied().flatten() >= *max);
        if done {
            return true;
        }
        if started.elapsed() > limit {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Per partition: rows, distinct offsets, lowest, highest and sum of the offsets in the table,
/// through the SQL API, against what was acknowledged.
///
/// # Errors
/// When the query fails.
pub(super) async fn exactly_once(
    url: &str,
    key: &std::path::Path,
    produced: &Produced,
) -> Result<Vec<PartitionCheck>> {
    let sql = StreamingIngestClient::builder()
        .url(url)
        .account("DEMO")
        .user("KAFKA")
        .private_key_file(key)
        .build_sql()?;
    let o = "CAST(RECORD_METADATA:offset AS NUMBER)";
    let q = format!(
        "SELECT CAST(RECORD_METADATA:partition AS NUMBER) AS P, COUNT(*), COUNT(DISTINCT {o}), \
         MIN({o}), MAX({o}), SUM({o}) FROM {DATABASE}.{SCHEMA}.{TABLE} GROUP BY P ORDER BY P"
    );
    let result = sql.query(&q).await.context("the exactly-once query")?;
    let sent = produced.lock();
    let mut out = Vec::new();
    for (p, part) in sent.partitions.iter().enumerate() {
        let row = result.rows.iter().find(|r| {
            r.first()
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<usize>().ok())
                == Some(p)
        });
        let n = |i: usize| -> Option<i128> { row?.get(i)?.as_deref()?.parse().ok() };
        let (rows, distinct) = (n(1).unwrap_or(0), n(2).unwrap_or(0));
        // Without transactions a partition's offsets are 0, 1, 2, … in the order the broker
        // wrote them: `count` acknowledged messages are offsets 0..count exactly once.
        let count = i128::from(part.count);
        let exact = rows == count
            && distinct == rows
            && (count == 0 || (n(3) == Some(0) && n(4) == Some(count - 1)))
            && n(5).unwrap_or(0) == count * (count - 1) / 2;
        out.push(PartitionCheck {
            partition: p,
            produced: part.count,
            rows: u64::try_from(rows).unwrap_or(0),
            distinct: u64::try_from(distinct).unwrap_or(0),
            exact,
            expected: format!(
                "{} acknowledged ({} without an offset), offsets seen {:?}..={:?}",
                part.count, part.unknown, part.min, part.max
            ),
            sql: row.cloned().unwrap_or_default(),
        });
    }
    // Rows of a partition nothing was acknowledged for are not exactly once either.
    for r in &result.rows {
        let p = r
            .first()
            .cloned()
            .flatten()
            .and_then(|v| v.parse::<usize>().ok());
        if p.is_some_and(|p| p >= sent.partitions.len()) {
            out.push(PartitionCheck {
                partition: p.unwrap_or(0),
                produced: 0,
                rows: r
                    .get(1)
                    .cloned()
                    .flatten()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0),
                distinct: 0,
                exact: false,
                expected: String::new(),
                sql: r.clone(),
            });
        }
    }
    Ok(out)
}

/// Per partition: how many messages the broker holds and the sum of their offsets, read from
/// the start to the high watermark (to tell a message the broker lost from one the sink lost).
///
/// # Errors
/// When the broker cannot be read within 5 minutes.
pub(super) fn broker_holds(
    brokers: &str,
    topic: &str,
    partitions: i32,
) -> Result<Vec<(u64, i128)>> {
    use rdkafka::consumer::{BaseConsumer, Consumer};
    use rdkafka::message::Message;
    use rdkafka::{Offset, TopicPartitionList};
    let consumer: BaseConsumer = rdkafka::config::ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "soak-check")
        .set("enable.auto.commit", "false")
        .set("enable.partition.eof", "false")
        .create()
        .context("cannot create the check's consumer")?;
    let mut highs = Vec::new();
    let mut list = TopicPartitionList::new();
    for p in 0..partitions {
        let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(30))?;
        highs.push(high);
        list.add_partition_offset(topic, p, Offset::Beginning)?;
    }
    consumer.assign(&list)?;
    let mut held = vec![(0u64, 0i128); highs.len()];
    let mut next = vec![0i64; highs.len()];
    let started = Instant::now();
    while next.iter().zip(&highs).any(|(n, h)| n < h) {
        if started.elapsed() > Duration::from_secs(300) {
            anyhow::bail!("the broker's messages were not all read in 5 minutes");
        }
        let Some(m) = consumer.poll(Duration::from_millis(500)) else {
            continue;
        };
        let m = m?;
        let p = usize::try_from(m.partition())?;
        held[p].0 += 1;
        held[p].1 += i128::from(m.offset());
        next[p] = m.offset() + 1;
    }
    Ok(held)
}
