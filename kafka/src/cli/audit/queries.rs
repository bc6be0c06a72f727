//! The audit's questions to the table, through the SQL API: Snowflake SQL that the emulator
//! also runs (paths `RECORD_METADATA:key`, `::STRING`, `CAST(… AS NUMBER)` guarded by the
//! value's `TYPEOF` (`trust::number`), window functions
//! in subqueries).

use snowpipe_streaming::sql::SqlClient;

use crate::error::{err, Context, Error, Result};

use super::trust::number;
use super::{Duplicate, Gap, PartitionAudit};

/// The most holes between landed offsets the audit reads per table (each is then asked of the
/// broker).
pub(super) const MAX_HOLES: usize = 10_000;

/// Runs `statement`, whose answer has `columns` columns.
///
/// # Errors
/// The SQL API's refusal, with `what`; an answer of another number of columns (a server
/// answering something else).
async fn ask(
    sql: &SqlClient,
    statement: &str,
    columns: usize,
    what: &'static str,
) -> Result<snowpipe_streaming::sql::QueryResult> {
    let result = sql.query(statement).await.context(Error::Snowflake, what)?;
    if result.columns.len() != columns {
        return Err(err!(
            Snowflake,
            "{what}: the answer has {} columns where the statement asks for {columns}: the SQL \
             API answered another statement",
            result.columns.len()
        ));
    }
    Ok(result)
}

/// Each row's topic, partition, offset, push time and whether that cannot be trusted
/// ([`super::distrust`]), for `topics` of `table`.
fn rows(table: &str, topics: &[String]) -> String {
    let quoted: Vec<String> = topics
        .iter()
        .map(|t| format!("'{}'", t.replace('\'', "''")))
        .collect();
    format!(
        "SELECT RECORD_METADATA:topic::STRING AS T, {} AS P, {} AS O, {} AS PT, {} AS U FROM \
         {table} WHERE RECORD_METADATA:topic::STRING IN ({})",
        number("RECORD_METADATA:partition"),
        number("RECORD_METADATA:offset"),
        number("RECORD_METADATA:SnowflakeConnectorPushTime"),
        super::distrust(),
        quoted.join(", ")
    )
}

/// The partitions of `topics` that landed rows in `table`: counts, the first `list`
/// duplicated offsets, and the holes between landed offsets (in
/// [`PartitionAudit::gaps`], up to [`MAX_HOLES`]; not yet asked of the broker), and whether
/// there were more holes than that.
///
/// # Errors
/// The SQL API's refusal (no such table, no `RECORD_METADATA`, not authorized).
pub(super) async fn landed(
    sql: &SqlClient,
    table: &str,
    topics: &[String],
    list: usize,
) -> Result<(Vec<PartitionAudit>, bool)> {
    let rows = rows(table, topics);
    let summary = ask(
        sql,
        &format!(
            "SELECT T, P, COUNT(*), COUNT(DISTINCT O), MIN(O), MAX(O), COUNT(PT), \
             SUM(CASE WHEN PT IS NOT NULL AND U = 1 THEN 1 ELSE 0 END) FROM ({rows}) \
             WHERE P IS NOT NULL AND O IS NOT NULL GROUP BY T, P ORDER BY T, P"
        ),
        8,
        "counting the rows per partition",
    )
    .await?;
    let mut out: Vec<PartitionAudit> = Vec::new();
    for r in &summary.rows {
        let n = |i: usize| {
            r.get(i)
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok())
        };
        let (Some(topic), Some(partition)) = (r[0].clone(), n(1)) else {
            continue;
        };
        let rows = n(2).unwrap_or(0).unsigned_abs();
        let distinct = n(3).unwrap_or(0).unsigned_abs();
        out.push(PartitionAudit {
            topic,
            partition: i32::try_from(partition).unwrap_or(-1),
            rows,
            distinct_offsets: distinct,
            first_offset: n(4),
            last_offset: n(5),
            rows_with_push_time: n(6).unwrap_or(0).unsigned_abs(),
            rows_untrusted: n(7).unwrap_or(0).unsigned_abs(),
            // A server's counts may disagree (more distinct offsets than rows).
            extra_copies: rows.saturating_sub(distinct),
            ..PartitionAudit::default()
        });
    }
    let find = |out: &mut Vec<PartitionAudit>, t: &Option<String>, p: Option<i64>| {
        out.iter_mut()
            .position(|a| Some(&a.topic) == t.as_ref() && Some(i64::from(a.partition)) == p)
    };
    let duplicates = ask(
        sql,
        &format!(
            "SELECT T, P, O, C, K FROM (SELECT T, P, O, C, ROW_NUMBER() OVER (PARTITION BY T, P \
             ORDER BY O) AS R, COUNT(*) OVER (PARTITION BY T, P) AS K FROM (SELECT T, P, O, \
             COUNT(*) AS C FROM ({rows}) WHERE P IS NOT NULL AND O IS NOT NULL GROUP BY T, P, O \
             HAVING COUNT(*) > 1)) WHERE R <= {list} ORDER BY T, P, O"
        ),
        5,
        "listing the offsets landed more than once",
    )
    .await?;
    for r in &duplicates.rows {
        let n = |i: usize| {
            r.get(i)
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok())
        };
        if let (Some(i), Some(offset), Some(copies)) = (find(&mut out, &r[0], n(1)), n(2), n(3)) {
            out[i].duplicated_offsets = n(4).unwrap_or(0).unsigned_abs();
            out[i].duplicates.push(Duplicate {
                offset,
                copies: copies.unsigned_abs(),
            });
        }
    }
    let holes = ask(
        sql,
        &format!(
            "SELECT T, P, PREV + 1, O - 1 FROM (SELECT T, P, O, LAG(O) OVER (PARTITION BY T, P \
             ORDER BY O) AS PREV FROM (SELECT DISTINCT T, P, O FROM ({rows}) WHERE P IS NOT \
             NULL AND O IS NOT NULL)) WHERE O - PREV > 1 ORDER BY T, P, O LIMIT {}",
            MAX_HOLES + 1
        ),
        4,
        "finding the offsets missing between landed ones",
    )
    .await?;
    for r in holes.rows.iter().take(MAX_HOLES) {
        let n = |i: usize| {
            r.get(i)
                .cloned()
                .flatten()
                .and_then(|v| v.parse::<i64>().ok())
        };
        if let (Some(i), Some(from), Some(to)) = (find(&mut out, &r[0], n(1)), n(2), n(3)) {
            out[i].gaps.push(Gap { from, to });
        }
    }
    Ok((out, holes.rows.len() > MAX_HOLES))
}

#[cfg(test)]
mod tests {
    /// Each cast of the rows' partition, offset and push time is guarded by its type.
    #[test]
    fn every_cast_of_the_rows_is_guarded() {
        super::super::trust::tests::assert_guarded(&super::rows("D.S.T", &["orders".into()]));
    }
}
