//! Which copy of an offset the audit trusts ([`distrust`]), and the statement that keeps one
//! copy of each ([`dedup_statement`]): Snowflake SQL the emulator also runs.

/// Whether a row's push time can be trusted, as SQL (`0`: it can, `1`: it cannot): present,
/// after the epoch, and not before the row's own record timestamp (`CreateTime` or
/// `LogAppendTime`): a writer converts a record after it exists; and its partition, offset and
/// push time are JSON integers, as every writer writes them (a float or a text `"5"` casts to
/// a number another row holds). A row whose metadata a producer forged (issue 81:
/// `SnowflakeConnectorPushTime` 0, an offset `4.6`) fails it, and the dedup statement never
/// keeps such a copy over one that passes. (`UPPER(TYPEOF(…))`: Snowflake's `TYPEOF` says
/// `INTEGER`, the emulator's SQLite `integer`.) And it has no key that no writer writes
/// ([`WRITERS_KEYS`]): a copy shaped as a writer's but for an extra key (a 1 MiB one) is a
/// forgery, told by `OBJECT_KEYS` (`IS_OBJECT` first: `OBJECT_KEYS` takes only an object).
pub(crate) fn distrust() -> String {
    let counted: Vec<String> = WRITERS_KEYS
        .iter()
        .map(|k| format!("CASE WHEN RECORD_METADATA:{k} IS NULL THEN 0 ELSE 1 END"))
        .collect();
    format!(
        "CASE WHEN IS_OBJECT(RECORD_METADATA) AND ARRAY_SIZE(OBJECT_KEYS(RECORD_METADATA)) = \
         ({}) AND \
         UPPER(TYPEOF(RECORD_METADATA:partition)) = 'INTEGER' AND \
         UPPER(TYPEOF(RECORD_METADATA:offset)) = 'INTEGER' AND \
         UPPER(TYPEOF(RECORD_METADATA:SnowflakeConnectorPushTime)) = 'INTEGER' AND \
         CAST(RECORD_METADATA:SnowflakeConnectorPushTime AS NUMBER) > 0 AND \
         CAST(RECORD_METADATA:SnowflakeConnectorPushTime AS NUMBER) >= \
         COALESCE(CAST(RECORD_METADATA:CreateTime AS NUMBER), \
         CAST(RECORD_METADATA:LogAppendTime AS NUMBER), 0) THEN 0 ELSE 1 END",
        counted.join(" + ")
    )
}

/// The keys writers write in `RECORD_METADATA` (Snowflake's connector,
/// `records/SnowflakeSinkRecord.java`, and this sink, `kafka/src/rows/record.rs`; `key_base64`
/// is this sink's for a key that is not UTF-8), each counted in [`distrust`].
pub(crate) const WRITERS_KEYS: [&str; 9] = [
    "topic",
    "offset",
    "partition",
    "CreateTime",
    "LogAppendTime",
    "SnowflakeConnectorPushTime",
    "key",
    "key_base64",
    "headers",
];

/// The statement that keeps exactly one row of every (topic, partition, offset) of `topics`
/// in `table`: a copy whose push time can be trusted ([`distrust`]) before one whose cannot,
/// then the earliest `SnowflakeConnectorPushTime` (rows without one after those with one),
/// ties broken by the smallest `RECORD_METADATA` text; rows without a topic, partition or
/// offset, and rows of other topics, are all kept. Snowflake SQL: `INSERT OVERWRITE`
/// replaces the table's rows with the query's in one transaction, and is the one statement
/// that can keep one of two identical rows, which no `DELETE` can tell apart.
pub(crate) fn dedup_statement(table: &str, topics: &[String]) -> String {
    let quoted: Vec<String> = topics
        .iter()
        .map(|t| format!("'{}'", t.replace('\'', "''")))
        .collect();
    format!(
        "INSERT OVERWRITE INTO {table} SELECT * FROM {table} QUALIFY \
         RECORD_METADATA:topic::STRING IS NULL \
         OR CAST(RECORD_METADATA:partition AS NUMBER) IS NULL \
         OR CAST(RECORD_METADATA:offset AS NUMBER) IS NULL \
         OR RECORD_METADATA:topic::STRING NOT IN ({}) \
         OR ROW_NUMBER() OVER (PARTITION BY RECORD_METADATA:topic::STRING, \
         CAST(RECORD_METADATA:partition AS NUMBER), CAST(RECORD_METADATA:offset AS NUMBER) \
         ORDER BY {} ASC, \
         CAST(RECORD_METADATA:SnowflakeConnectorPushTime AS NUMBER) ASC NULLS LAST, \
         RECORD_METADATA::STRING ASC) = 1",
        quoted.join(", "),
        distrust()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The statement names the table on both sides, keeps rows without an offset and of
    /// other topics, and orders by push time then the metadata's text.
    #[test]
    fn the_dedup_statement_keeps_one_copy_and_other_rows() {
        let s = dedup_statement("D.S.T", &["orders".into(), "it's".into()]);
        assert!(
            s.starts_with("INSERT OVERWRITE INTO D.S.T SELECT * FROM D.S.T QUALIFY "),
            "{s}"
        );
        assert!(s.contains("NOT IN ('orders', 'it''s')"), "{s}");
        assert!(
            s.contains("SnowflakeConnectorPushTime AS NUMBER) ASC NULLS LAST"),
            "{s}"
        );
        assert!(s.ends_with("RECORD_METADATA::STRING ASC) = 1"), "{s}");
    }

    /// Every key a writer writes is counted, and only those: a copy with another key has
    /// more keys than the count.
    #[test]
    fn the_trust_rule_counts_every_writers_key() {
        let rule = distrust();
        for k in WRITERS_KEYS {
            assert!(
                rule.contains(&format!(
                    "WHEN RECORD_METADATA:{k} IS NULL THEN 0 ELSE 1 END"
                )),
                "{k}"
            );
        }
        assert_eq!(
            rule.matches(" IS NULL THEN 0 ELSE 1 END").count(),
            WRITERS_KEYS.len()
        );
        assert!(rule.contains("ARRAY_SIZE(OBJECT_KEYS(RECORD_METADATA)) = "));
    }
}
