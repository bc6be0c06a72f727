//! Which of `RECORD_METADATA`'s fields are written: the Kafka connector's per-field
//! `snowflake.metadata.*` flags as `--no-metadata-…` options.
//!
//! The connector (`records/SnowflakeMetadataConfig.java`, `records/SnowflakeSinkRecord.java`
//! `buildMetadataBase` in `snowflakedb/snowflake-kafka-connector`) gates three parts of the
//! metadata, each on by default: `snowflake.metadata.topic` the `topic` key,
//! `snowflake.metadata.offset.and.partition` the `offset` and `partition` keys, and
//! `snowflake.metadata.createtime` the timestamp key (`CreateTime` or `LogAppendTime`, named
//! after the timestamp's type). `SnowflakeConnectorPushTime` has its own flag (`--no-push-time`);
//! `key` and `headers` have none: they are written whenever the message has them.
//! `snowflake.metadata.all=false` drops the whole column (no `--metadata`).

/// The `RECORD_METADATA` fields left out (all written by default, as by the connector): the
/// command line's `--no-metadata-topic`, `--no-metadata-offset-and-partition` and
/// `--no-metadata-createtime`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MetadataFields {
    /// No `topic`.
    pub no_metadata_topic: bool,
    /// No `offset` and `partition`.
    pub no_metadata_offset_and_partition: bool,
    /// No `CreateTime` / `LogAppendTime`.
    pub no_metadata_createtime: bool,
}

impl MetadataFields {
    /// Every field written (the connector's defaults).
    pub const ALL: MetadataFields = MetadataFields {
        no_metadata_topic: false,
        no_metadata_offset_and_partition: false,
        no_metadata_createtime: false,
    };

    /// `topic` is written.
    pub fn topic(self) -> bool {
        !self.no_metadata_topic
    }

    /// `offset` and `partition` are written.
    pub fn offset_and_partition(self) -> bool {
        !self.no_metadata_offset_and_partition
    }

    /// The timestamp (`CreateTime` / `LogAppendTime`) is written.
    pub fn createtime(self) -> bool {
        !self.no_metadata_createtime
    }

    /// The connector's key for each flag and the option it becomes.
    pub const CONNECTOR_KEYS: [(&'static str, &'static str); 3] = [
        ("snowflake.metadata.topic", "--no-metadata-topic"),
        (
            "snowflake.metadata.offset.and.partition",
            "--no-metadata-offset-and-partition",
        ),
        ("snowflake.metadata.createtime", "--no-metadata-createtime"),
    ];
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rows::record::{write_metadata, MetaOptions, Record, TimestampKind};

    /// Each flag drops exactly its keys, alone or together; key and headers stay.
    #[test]
    fn each_flag_drops_its_connector_keys() {
        let headers: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"v"))];
        let record = Record {
            topic: "t",
            partition: 2,
            offset: crate::rows::KafkaOffset::new(9),
            key: Some(b"k"),
            value: Some(b"{}"),
            timestamp: Some((TimestampKind::LogAppendTime, 5)),
            headers,
        };
        let f = |topic: bool, offset: bool, time: bool| MetadataFields {
            no_metadata_topic: !topic,
            no_metadata_offset_and_partition: !offset,
            no_metadata_createtime: !time,
        };
        let tail = r#""key":"k","headers":{"h":"v"}}"#;
        let cases = [
            (
                f(true, true, true),
                r#"{"topic":"t","offset":9,"partition":2,"LogAppendTime":5,"#,
            ),
            (
                f(false, true, true),
                r#"{"offset":9,"partition":2,"LogAppendTime":5,"#,
            ),
            (f(true, false, true), r#"{"topic":"t","LogAppendTime":5,"#),
            (
                f(true, true, false),
                r#"{"topic":"t","offset":9,"partition":2,"#,
            ),
            (f(false, false, false), "{"),
        ];
        for (fields, head) in cases {
            let mut out = Vec::new();
            let options = MetaOptions {
                push_time: None,
                structured_headers: false,
                fields,
                ..MetaOptions::default()
            };
            write_metadata(&record, options, &mut out).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), format!("{head}{tail}"));
        }
        let bare = Record {
            key: None,
            headers: &[],
            ..record
        };
        let mut out = b"before".to_vec();
        let options = MetaOptions {
            push_time: Some(7),
            structured_headers: false,
            fields: f(false, false, false),
            ..MetaOptions::default()
        };
        write_metadata(&bare, options, &mut out).unwrap();
        assert_eq!(out, br#"before{"SnowflakeConnectorPushTime":7}"#);
        let options = MetaOptions {
            push_time: None,
            ..options
        };
        out.clear();
        write_metadata(&bare, options, &mut out).unwrap();
        assert_eq!(out, b"{}");
    }

    /// The flags need `--metadata` (without it there is no `RECORD_METADATA` to trim).
    #[test]
    fn the_flags_are_options_that_need_metadata() {
        let parse = |extra: &str| {
            crate::cli::args::args_with(extra)
                .map(|sink| sink.row_layout().unwrap().fields)
                .map_err(|e| e.to_string())
        };
        assert_eq!(parse("--metadata"), Ok(MetadataFields::ALL));
        assert_eq!(
            parse("--metadata --no-metadata-topic --no-metadata-createtime"),
            Ok(MetadataFields {
                no_metadata_topic: true,
                no_metadata_createtime: true,
                ..MetadataFields::ALL
            })
        );
        let err = parse("--no-metadata-offset-and-partition").unwrap_err();
        assert!(err.contains("--metadata"), "{err}");
    }
}
