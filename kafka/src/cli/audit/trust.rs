//! Which copy of an offset the audit trusts ([`distrust`]), and the statement that keeps one
//! copy of each ([`dedup_statement`]): Snowflake SQL the emulator also runs.

/// `path` (a `RECORD_METADATA` path) as a number, the cast guarded by the value's type, as
/// the trust rule checks it: a JSON integer (or a decimal, which Snowflake casts to a
/// `NUMBER` as surely; SQLite's `REAL`) is cast, anything else read through its text with
/// `TRY_CAST`, which is NULL for a text that is no number. On Snowflake a bare `CAST` of a
/// text such as `"12kkk"` (or of a `DOUBLE` past `NUMBER`'s 38 digits) fails the whole query;
/// guarded, such a row is a copy whose offset is unknown (for `"5"`, an untrusted copy of
/// offset 5), and the audit goes on. The emulator's SQLite casts never fail (it reads
/// `TRY_CAST` as its `CAST`), so there the guard changes no result.
pub(crate) fn number(path: &str) -> String {
    format!(
        "CASE WHEN UPPER(TYPEOF({path})) IN ('INTEGER', 'DECIMAL', 'REAL') THEN \
         CAST({path} AS NUMBER) ELSE TRY_CAST({path}::STRING AS NUMBER) END"
    )
}

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
         {push} > 0 AND {push} >= COALESCE({create}, {append}, 0) THEN 0 ELSE 1 END",
        counted.join(" + "),
        push = number("RECORD_METADATA:SnowflakeConnectorPushTime"),
        create = number("RECORD_METADATA:CreateTime"),
        append = number("RECORD_METADATA:LogAppendTime"),
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
         OR {partition} IS NULL \
         OR {offset} IS NULL \
         OR RECORD_METADATA:topic::STRING NOT IN ({topics}) \
         OR ROW_NUMBER() OVER (PARTITION BY RECORD_METADATA:topic::STRING, \
         {partition}, {offset} \
         ORDER BY {distrust} ASC, \
         {push} ASC NULLS LAST, \
         RECORD_METADATA::STRING ASC) = 1",
        topics = quoted.join(", "),
        distrust = distrust(),
        partition = number("RECORD_METADATA:partition"),
        offset = number("RECORD_METADATA:offset"),
        push = number("RECORD_METADATA:SnowflakeConnectorPushTime"),
    )
}

#[cfg(test)]
pub(super) mod tests {
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
            s.contains("SnowflakeConnectorPushTime::STRING AS NUMBER) END ASC NULLS LAST"),
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

    /// Every cast of a `RECORD_METADATA` value is guarded by its type.
    pub(crate) fn assert_guarded(sql: &str) {
        let tries = sql.matches("TRY_CAST(RECORD_METADATA:").count();
        let casts = sql.matches("CAST(RECORD_METADATA:").count() - tries;
        let guarded = sql.matches("THEN CAST(RECORD_METADATA:").count();
        assert!(casts > 0, "{sql}");
        assert_eq!(casts, guarded, "a cast without its guard: {sql}");
        assert_eq!(guarded, tries, "{sql}");
    }

    #[test]
    fn every_cast_of_the_trust_rule_and_the_statement_is_guarded() {
        assert_guarded(&distrust());
        assert_guarded(&dedup_statement("D.S.T", &["orders".into()]));
    }

    /// On the emulator the guard changes no result: integers, floats, numbers as text, text
    /// that is no number, arrays and absent offsets read as the bare cast reads them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn guarded_casts_read_as_the_bare_casts_on_the_emulator() {
        use snowpipe_kafka_lab::demo::{Lab, DATABASE, SCHEMA};
        let lab = Lab::start(&[], std::time::Duration::ZERO)
            .await
            .expect("lab");
        let sql = snowpipe_streaming::ClientBuilder::new()
            .account("DEMO")
            .user("KAFKA")
            .url(lab.emulator().url())
            .private_key_file(lab.key_path())
            .build_sql()
            .expect("sql client")
            .database(DATABASE)
            .schema(SCHEMA);
        let offsets = [
            "5",
            r#""5""#,
            r#"" 5""#,
            "4.6",
            r#""12kkk""#,
            "[1]",
            "9223372036854775808",
            "-1",
            "null",
        ];
        let rows: Vec<String> = offsets
            .iter()
            .enumerate()
            .map(|(i, o)| format!(r#"SELECT {i} AS ID, '{{"offset":{o}}}' AS RECORD_METADATA"#))
            .chain(std::iter::once(
                "SELECT 99 AS ID, '{}' AS RECORD_METADATA".to_owned(),
            ))
            .collect();
        let guarded = number("RECORD_METADATA:offset");
        let statement = format!(
            "WITH M AS ({}) SELECT ID, CAST(RECORD_METADATA:offset AS NUMBER) AS BARE, \
             {guarded} AS GUARDED FROM M ORDER BY ID",
            rows.join(" UNION ALL ")
        );
        let result = sql.query(&statement).await.expect("the guarded query");
        assert_eq!(result.rows.len(), offsets.len() + 1);
        for row in &result.rows {
            assert_eq!(row[1], row[2], "offset {:?}: {row:?}", row[0]);
        }
        assert_eq!(result.rows[0][2].as_deref(), Some("5"));
        assert_eq!(result.rows[1][2].as_deref(), Some("5"));
    }
}
