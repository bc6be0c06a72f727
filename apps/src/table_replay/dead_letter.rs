//! The dead-letter table: source rows that cannot become destination rows (a value
//! [`schema::to_json`] refuses: an invalid date, invalid UTF-8, invalid JSON) go to
//! `<TABLE>_DLQ` through a second channel, and the replay goes on.
//!
//! Each dead letter carries its source key as its offset token on the dead-letter channel
//! (`table_replay_<table>_dlq`), exactly as good rows do on the table's channel. A page's dead
//! letters are committed before its good rows are appended, so the table channel's committed
//! key never passes a bad row that is not yet in `<TABLE>_DLQ`. After a restart the replay
//! resumes after the table channel's committed key, reads the bad rows after it again, and
//! skips every one at or below the dead-letter channel's committed key: a bad row lands in
//! `<TABLE>_DLQ` **exactly once**, crashes included (appended but not committed before a
//! crash: not there, and read again because the table's token is still below it; committed:
//! skipped). The table channel's token never needs a bad row's key, so no run stops on a bad
//! row. The price is one commit wait per page that has bad rows.
//!
//! Columns: `SOURCE_TABLE`, `SOURCE_KEY`, `SOURCE_KEY_TEXT` (the key as JSON, [`key_text`];
//! added at `follow`'s start to a table an earlier version created), `REASON`,
//! `RAW_VALUES` (a VARIANT object: every source column as read, text that is not UTF-8 as
//! `{"hex": "…"}`), `DEAD_LETTERED_AT`.
//! A value of more than [`RAW_VALUE_MAX`] bytes (or past the row's [`RAW_ROW_MAX`]) is kept as
//! `{"cut": <its first bytes>, "bytes": <its length>, "sha256": "…"}`: whole, a 16 MiB value
//! made the dead letter itself a row the server rejects, and the bad row was lost (found by
//! `hostile_mariadb_rows`). So a dead letter always fits one request, also that of a row too
//! large to send (`row_size.rs`).

use anyhow::{Context, Result};
use mysql_async::Value;
use serde_json::{Map, Value as Json};
use snowpipe_streaming::sql::SqlClient;
use snowpipe_streaming::StreamingIngestClient;

use crate::common::dead_letters::DeadLetterChannel;
use crate::common::say::{say, say_warn};
use crate::table_replay::schema::{self, ident, SourceTable};

/// `<TABLE>_DLQ`.
pub(crate) fn table_name(table: &str) -> String {
    format!("{}_DLQ", schema::snowflake_name(table))
}

/// `<TABLE>_DLQ_PIPE`.
pub(super) fn pipe_name(table: &str) -> String {
    format!("{}_DLQ_PIPE", schema::snowflake_name(table))
}

/// The dead-letter channel: one per source table, beside `table_replay_<table>`.
pub(super) fn channel_name(table: &str) -> String {
    format!("table_replay_{table}_dlq")
}

/// `CREATE TABLE` and `CREATE PIPE` for the dead-letter table.
pub(super) fn ddl(database: &str, schema: &str, table: &str, pipe: &str) -> String {
    let qualified = |n: &str| format!("{}.{}.{}", ident(database), ident(schema), ident(n));
    format!(
        "CREATE TABLE IF NOT EXISTS {t} (\n    SOURCE_TABLE VARCHAR NOT NULL,\n    SOURCE_KEY NUMBER(20,0) NOT NULL,\n    SOURCE_KEY_TEXT VARCHAR,\n    REASON VARCHAR NOT NULL,\n    RAW_VALUES VARIANT,\n    DEAD_LETTERED_AT TIMESTAMP_LTZ(3)\n);\n\
         CREATE PIPE IF NOT EXISTS {p} AS\n    COPY INTO {t} FROM TABLE(DATA_SOURCE(TYPE => 'STREAMING'))\n    MATCH_BY_COLUMN_NAME = CASE_INSENSITIVE;\n",
        t = qualified(table),
        p = qualified(pipe),
    )
}

/// One source row that cannot become a row.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct BadRow {
    pub key: u64,
    pub reason: String,
    /// Every source column as read ([`raw_values`]).
    pub raw: Map<String, Json>,
}

/// One row of `<TABLE>_DLQ`: the source table and key (`SOURCE_KEY`, and as [`key_text`]
/// writes it), why, the raw values, when. The one place its columns are named, for the
/// replay's bad rows and `follow`'s dead changes alike.
pub(super) fn dlq_row(
    table: &str,
    key: impl Into<Json>,
    key_text: Option<String>,
    reason: String,
    raw: Map<String, Json>,
    now: &str,
) -> Map<String, Json> {
    let mut object = Map::new();
    object.insert("SOURCE_TABLE".into(), Json::String(table.to_owned()));
    object.insert("SOURCE_KEY".into(), key.into());
    object.insert(
        "SOURCE_KEY_TEXT".into(),
        key_text.map_or(Json::Null, Json::String),
    );
    object.insert("REASON".into(), Json::String(reason));
    object.insert("RAW_VALUES".into(), Json::Object(raw));
    object.insert("DEAD_LETTERED_AT".into(), Json::String(now.to_owned()));
    object
}

/// The row's values as read, without the type mapping: numbers as numbers, text as text,
/// bytes that are not UTF-8 as `{"hex": "…"}`, dates and times as their fields (even when
/// they are no calendar date).
pub(super) fn raw_values(table: &SourceTable, values: &[Value]) -> Map<String, Json> {
    let mut left = RAW_ROW_MAX;
    table
        .columns
        .iter()
        .zip(values)
        .map(|(c, v)| {
            let json = match v {
                Value::Bytes(b) if b.len() > RAW_VALUE_MAX.min(left) => {
                    cut_value(b, RAW_VALUE_MAX.min(left))
                }
                _ => raw_value(v),
            };
            left = left.saturating_sub(match v {
                Value::Bytes(b) => b.len().min(RAW_VALUE_MAX),
                _ => 0,
            });
            (c.name.clone(), json)
        })
        .collect()
}

/// `SOURCE_KEY_TEXT`: the key columns' values `values` (in the key's order) as a JSON array,
/// compact: an integer as a number, text as a string, a binary column's bytes (or text that
/// is not UTF-8) as `{"hex": "…"}`. At most [`KEY_TEXT_MAX`] bytes of values are kept whole:
/// a value past what is left is `{"cut": …, "bytes": n, "sha256": "…"}` as in `RAW_VALUES`.
pub(crate) fn key_text(table: &SourceTable, values: &[&Value]) -> String {
    let mut left = KEY_TEXT_MAX;
    let parts = table
        .keys
        .iter()
        .zip(values)
        .map(|(&k, v)| {
            let binary = matches!(table.columns[k].kind, schema::Kind::Binary { .. });
            let json = match v {
                Value::Bytes(b) if b.len() > left => cut_value(b, left),
                Value::Bytes(b) if binary => serde_json::json!({ "hex": schema::hex(b) }),
                _ => raw_value(v),
            };
            if let Value::Bytes(b) = v {
                left = left.saturating_sub(b.len());
            }
            json
        })
        .collect();
    Json::Array(parts).to_string()
}

/// Most bytes of key values kept whole in `SOURCE_KEY_TEXT` ([`key_text`]): InnoDB's longest
/// index key is 3,072 bytes, so a primary or unique key always fits; `--key` columns need
/// no index and may be longer.
pub(crate) const KEY_TEXT_MAX: usize = 4 * 1024;

/// Adds `SOURCE_KEY_TEXT` to the dead-letter table of `table` in `database.schema` when an
/// earlier version created it without (its dead letters hold NULL there); `true` when added.
/// Nothing when the table has it, or does not exist (yet: a table without dead letters needs
/// none).
///
/// # Errors
/// When the table exists but cannot be read or altered.
pub(crate) async fn add_key_text_column(
    sql: &SqlClient,
    (database, schema_name): (&str, &str),
    table: &str,
) -> Result<bool> {
    let dlq = format!(
        "{}.{}.{}",
        ident(database),
        ident(schema_name),
        ident(&table_name(table))
    );
    let have = match sql.query(&format!("SELECT * FROM {dlq} LIMIT 0")).await {
        Ok(r) => r,
        Err(e) if format!("{e:#}").to_lowercase().contains("does not exist") => return Ok(false),
        Err(e) => {
            return Err(e).with_context(|| format!("cannot read the dead-letter table {dlq}"))
        }
    };
    if have.column_index("SOURCE_KEY_TEXT").is_some() {
        return Ok(false);
    }
    sql.query(&format!(
        "ALTER TABLE {dlq} ADD COLUMN SOURCE_KEY_TEXT VARCHAR"
    ))
    .await
    .with_context(|| format!("cannot add column SOURCE_KEY_TEXT to {dlq}"))?;
    Ok(true)
}

/// [`add_key_text_column`] at the start of `replay` and `follow`, saying so when it added the
/// column (the earlier dead letters hold NULL there).
///
/// # Errors
/// As [`add_key_text_column`].
pub(crate) async fn ensure_key_text_column(
    sql: &SqlClient,
    place: (&str, &str),
    table: &str,
) -> Result<()> {
    if add_key_text_column(sql, place, table).await? {
        say!(
            "{table}: added column SOURCE_KEY_TEXT to {} (its earlier dead letters hold NULL \
             there: their key is in REASON and RAW_VALUES)",
            table_name(table)
        );
    }
    Ok(())
}

/// Most bytes of one raw value kept whole in a dead letter.
pub(super) const RAW_VALUE_MAX: usize = 64 * 1024;
/// Most bytes of raw values kept whole in one dead letter (the rest are cut to nothing): at
/// most 6 MiB as JSON (a control byte is `\u0001`), 2 MiB as hex, so a dead letter always
/// goes in one request, alone and compressed at worst (`row_size.rs` sends a row too large
/// for one here).
pub(super) const RAW_ROW_MAX: usize = 1024 * 1024;

/// A value too long for a dead letter: its first `keep` bytes (as text, or hex when they
/// are not UTF-8), its length and its SHA-256.
fn cut_value(b: &[u8], keep: usize) -> Json {
    use sha2::Digest as _;
    let head = &b[..keep.min(b.len())];
    let cut = match std::str::from_utf8(head) {
        Ok(s) => Json::String(s.to_owned()),
        Err(e) => match std::str::from_utf8(&head[..e.valid_up_to()]) {
            Ok(s) if e.error_len().is_none() => Json::String(s.to_owned()),
            _ => serde_json::json!({ "hex": schema::hex(head) }),
        },
    };
    serde_json::json!({
        "cut": cut,
        "bytes": b.len(),
        "sha256": schema::hex(&sha2::Sha256::digest(b)),
    })
}

fn raw_value(v: &Value) -> Json {
    match v {
        Value::NULL => Json::Null,
        Value::Int(i) => Json::from(*i),
        Value::UInt(u) => Json::from(*u),
        Value::Float(f) => Json::from(f64::from(*f)),
        Value::Double(d) => Json::from(*d),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => Json::String(s.to_owned()),
            Err(_) => serde_json::json!({ "hex": schema::hex(b) }),
        },
        Value::Date(y, mo, d, h, mi, s, us) => Json::String(format!(
            "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
        )),
        Value::Time(neg, days, h, m, s, us) => Json::String(format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u64::from(*days) * 24 + u64::from(*h)
        )),
    }
}

/// The dead-letter channel, opened at the first bad row (a table without bad rows needs no
/// dead-letter table), and what it did in this run.
pub(super) struct DeadLetters<'a> {
    client: &'a StreamingIngestClient,
    database: String,
    schema: String,
    pipe: String,
    table: String,
    channel: Option<DeadLetterChannel<u64>>,
    /// Skipped: already in the dead-letter table (committed by an earlier run).
    pub already: u64,
}

impl<'a> DeadLetters<'a> {
    pub(super) fn new(
        client: &'a StreamingIngestClient,
        database: &str,
        schema: &str,
        pipe: &str,
        table: &str,
    ) -> Self {
        Self {
            client,
            database: database.to_owned(),
            schema: schema.to_owned(),
            pipe: pipe.to_owned(),
            table: table.to_owned(),
            channel: None,
            already: 0,
        }
    }

    /// The dead-letter pipe, qualified (for messages and the report).
    pub(super) fn place(&self) -> String {
        format!("{}.{}.{}", self.database, self.schema, self.pipe)
    }

    /// Dead-lettered by this run.
    pub(super) fn stored(&self) -> u64 {
        self.channel.as_ref().map_or(0, DeadLetterChannel::stored)
    }

    async fn open(&mut self) -> Result<&mut DeadLetterChannel<u64>> {
        if self.channel.is_none() {
            let pipe = self.client.pipe(&self.database, &self.schema, &self.pipe);
            let channel = DeadLetterChannel::open(&pipe, &channel_name(&self.table))
                .await
                .with_context(|| {
                    format!(
                        "{} has rows that cannot be replayed and the dead-letter pipe {} cannot \
                         be opened: create it with the statements `table_replay ddl` prints, or \
                         name another with --dlq-pipe",
                        self.table,
                        self.place()
                    )
                })?;
            self.channel = Some(channel);
        }
        Ok(self.channel.as_mut().expect("opened above"))
    }

    /// Dead-letters `rows` (in key order) and logs each once, with its reason; rows already
    /// committed by an earlier run are only counted.
    ///
    /// # Errors
    /// When the dead-letter channel cannot be opened or the append fails.
    pub(super) async fn send(&mut self, rows: Vec<BadRow>) -> Result<()> {
        if rows.is_empty() {
            return Ok(());
        }
        let place = self.place();
        let table = self.table.clone();
        let channel = self.open().await?;
        let now = chrono::Utc::now()
            .format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
            .to_string();
        let mut batch = Vec::with_capacity(rows.len());
        let mut already = 0;
        for row in rows {
            if channel.covers(&row.key) {
                already += 1;
                continue;
            }
            say_warn!(
                "{table}: row with key {} cannot be replayed ({}); dead-lettered to {place}",
                row.key,
                row.reason,
            );
            let key_text = Json::Array(vec![row.key.into()]).to_string();
            let object = dlq_row(&table, row.key, Some(key_text), row.reason, row.raw, &now);
            batch.push((object, row.key));
        }
        channel.append(batch).await?;
        self.already += already;
        Ok(())
    }

    /// Waits until every dead letter sent is committed (at once when there is none).
    ///
    /// # Errors
    /// When they are not committed within `timeout`.
    pub(super) async fn wait_committed(&mut self, timeout: std::time::Duration) -> Result<()> {
        match self.channel.as_mut() {
            Some(channel) => channel.settle(timeout).await,
            None => Ok(()),
        }
    }

    /// Waits until every dead letter sent is committed, and closes the channel.
    ///
    /// # Errors
    /// When they are not committed within `timeout`, or the close fails.
    pub(super) async fn finish(self, timeout: std::time::Duration) -> Result<()> {
        match self.channel {
            Some(channel) => channel.close(timeout).await.map(drop),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table_replay::schema::{Kind, SourceColumn};

    #[test]
    fn raw_values_keep_what_the_mapping_refuses() {
        let col = |name: &str, kind: Kind| SourceColumn {
            name: name.into(),
            column_type: String::new(),
            kind,
            nullable: true,
            charset: None,
        };
        let table = SourceTable {
            name: "t".into(),
            columns: vec![
                col(
                    "id",
                    Kind::Int {
                        unsigned: true,
                        digits: 20,
                    },
                ),
                col("d", Kind::Date),
                col("s", Kind::Text { max_chars: None }),
                col("n", Kind::Json),
            ],
            key: 0,
            keys: vec![0],
        };
        let raw = raw_values(
            &table,
            &[
                Value::UInt(7),
                Value::Date(2024, 2, 30, 0, 0, 0, 0),
                Value::Bytes(vec![0x61, 0xff]),
                Value::NULL,
            ],
        );
        assert_eq!(
            Json::Object(raw),
            serde_json::json!({
                "id": 7,
                "d": "2024-02-30 00:00:00.000000",
                "s": {"hex": "61ff"},
                "n": null,
            })
        );
        // A value past RAW_VALUE_MAX is cut, with its length and hash.
        let long = raw_values(
            &table,
            &[
                Value::UInt(8),
                Value::NULL,
                Value::Bytes(vec![b'x'; RAW_VALUE_MAX + 1]),
                Value::NULL,
            ],
        );
        let s = &long["s"];
        assert_eq!(s["bytes"], RAW_VALUE_MAX + 1);
        assert_eq!(s["cut"].as_str().unwrap().len(), RAW_VALUE_MAX);
        assert_eq!(s["sha256"].as_str().unwrap().len(), 64);
        assert_eq!(table_name("orders"), "ORDERS_DLQ");
        assert_eq!(pipe_name("orders"), "ORDERS_DLQ_PIPE");
        let ddl = ddl("DB", "PUBLIC", "ORDERS_DLQ", "ORDERS_DLQ_PIPE");
        assert!(ddl.contains("CREATE TABLE IF NOT EXISTS DB.PUBLIC.ORDERS_DLQ (\n    SOURCE_TABLE VARCHAR NOT NULL,\n    SOURCE_KEY NUMBER(20,0) NOT NULL,\n    SOURCE_KEY_TEXT VARCHAR,\n    REASON"), "{ddl}");
        assert!(ddl.contains("CREATE PIPE IF NOT EXISTS DB.PUBLIC.ORDERS_DLQ_PIPE AS"));
    }

    #[test]
    fn key_text_is_json_by_kind_and_capped() {
        let col = |name: &str, kind: Kind| SourceColumn {
            name: name.into(),
            column_type: String::new(),
            kind,
            nullable: false,
            charset: None,
        };
        let table = SourceTable {
            name: "t".into(),
            columns: vec![
                col(
                    "g",
                    Kind::Int {
                        unsigned: false,
                        digits: 10,
                    },
                ),
                col("name", Kind::Text { max_chars: None }),
                col(
                    "id",
                    Kind::Binary {
                        max_bytes: Some(16),
                    },
                ),
            ],
            key: 0,
            keys: vec![0, 1, 2],
        };
        let text = key_text(
            &table,
            &[
                &Value::Int(-3),
                &Value::Bytes("Ärger \"x\", '漢'".as_bytes().to_vec()),
                // Binary that happens to be UTF-8 is still hex: the column says bytes.
                &Value::Bytes(b"ab".to_vec()),
            ],
        );
        assert_eq!(text, r#"[-3,"Ärger \"x\", '漢'",{"hex":"6162"}]"#);
        // Text that is not UTF-8 is hex too.
        let bad = key_text(
            &table,
            &[
                &Value::Int(1),
                &Value::Bytes(vec![0xff]),
                &Value::Bytes(vec![]),
            ],
        );
        assert_eq!(bad, r#"[1,{"hex":"ff"},{"hex":""}]"#);
        // Past KEY_TEXT_MAX bytes of values: cut, with the length and hash.
        let long = Value::Bytes(vec![b'k'; KEY_TEXT_MAX + 10]);
        let cut: Json = serde_json::from_str(&key_text(
            &table,
            &[&Value::Int(1), &long, &Value::Bytes(vec![1])],
        ))
        .unwrap();
        assert_eq!(cut[1]["bytes"], KEY_TEXT_MAX + 10);
        assert_eq!(cut[1]["cut"].as_str().unwrap().len(), KEY_TEXT_MAX);
        assert_eq!(cut[2]["bytes"], 1, "nothing left: {cut}");
    }
}
