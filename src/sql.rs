//! A small client for Snowflake's **SQL API** (`POST /api/v2/statements`), with the same
//! account settings and credentials as the streaming client (feature `sql`).
//!
//! It submits a statement, polls while Snowflake runs it (HTTP 202), and fetches every result
//! partition. Values come back as Snowflake's SQL API sends them: strings (or NULL), with the
//! column types in [`Column`]. Use it to check what a pipeline landed:
//!
//! ```no_run
//! # async fn run() -> snowpipe_streaming::Result<()> {
//! use snowpipe_streaming::StreamingIngestClient;
//!
//! let sql = StreamingIngestClient::builder()
//!     .account("MYORG-MYACCOUNT")
//!     .user("INGEST_USER")
//!     .private_key_file("rsa_key.p8")
//!     .build_sql()?
//!     .warehouse("COMPUTE_WH")
//!     .database("DB")
//!     .schema("PUBLIC");
//! let result = sql.query("SELECT COUNT(*), MAX(ID) FROM ORDERS").await?;
//! let count: u64 = result.rows[0][0].as_deref().unwrap_or("0").parse().unwrap_or(0);
//! # let _ = count;
//! # Ok(()) }
//! ```
//!
//! The local emulator answers the same endpoint for read-only `SELECT`s over its tables, so
//! one verification code path serves both.
//!
//! Value encoding (Snowflake's, for `format = jsonv2`): `fixed` (NUMBER) as decimal text,
//! `real` (FLOAT) as text, `boolean` as `true`/`false`, `date` as days since 1970-01-01,
//! `time` as seconds since midnight with a fraction, `timestamp_ntz`/`_ltz` as seconds since
//! the epoch with a fraction, `timestamp_tz` as that plus a space and the offset in minutes
//! plus 1440, `binary` as hex, `variant`/`object`/`array` as JSON text.

use std::time::Duration;

use bytes::Bytes;
use http::{HeaderValue, Method};
use serde::Deserialize;
use serde_json::json;
use serde_json::value::RawValue;

use crate::auth::ControlAuth;
use crate::config::ClientBuilder;
use crate::error::Error;
pub use crate::error::{SqlError, SqlErrorKind};
use crate::http::{decode_error, encode, Call, HttpClient, Response};
use crate::Result;

/// The default most one SQL API answer (a result partition) may hold once decompressed
/// ([`SqlClient::max_partition_bytes`]): Snowflake cuts results into partitions far smaller; a
/// larger answer fails the query instead of growing memory without bound.
pub(crate) const SQL_MAX_RESPONSE_BYTES: usize = 256 << 20;

/// The default most bytes one query's answers may hold together, decompressed
/// ([`SqlClient::max_result_bytes`]): without it, `max_partitions` × `max_partition_bytes`
/// (1,000 × 256 MiB) would be the only bound.
pub(crate) const SQL_MAX_RESULT_BYTES: usize = 1 << 30;

/// Runs SQL statements through the SQL API. Cheap to clone.
#[derive(Debug, Clone)]
pub struct SqlClient {
    http: HttpClient,
    account_url: String,
    auth: ControlAuth,
    role: Option<String>,
    database: Option<String>,
    schema: Option<String>,
    warehouse: Option<String>,
    timeout: Duration,
    max_partitions: usize,
    max_partition_bytes: usize,
    max_result_bytes: usize,
}

/// How long past the statement timeout the client keeps polling a statement that Snowflake
/// still reports running (HTTP 202) before it gives up: this, or the timeout if shorter.
const POLL_GRACE: Duration = Duration::from_secs(60);

/// One result column.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[non_exhaustive]
pub struct Column {
    /// The column name (as Snowflake spells it, e.g. `COUNT(*)`).
    pub name: String,
    /// The SQL API type: `fixed`, `real`, `text`, `boolean`, `date`, `time`,
    /// `timestamp_ntz`, `timestamp_ltz`, `timestamp_tz`, `binary`, `variant`, `object`,
    /// `array`.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Digits after the point (`fixed`, times and timestamps).
    #[serde(default)]
    pub scale: Option<u32>,
    /// Total digits (`fixed`).
    #[serde(default)]
    pub precision: Option<u32>,
    /// The declared length (`text`: characters, `binary`: bytes).
    #[serde(default)]
    pub length: Option<u64>,
    /// Whether the column may be NULL.
    #[serde(default)]
    pub nullable: bool,
}

/// The whole result of a statement: its columns and every row of every partition.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct QueryResult {
    /// Snowflake's handle of the statement.
    pub statement_handle: String,
    /// The columns, in order.
    pub columns: Vec<Column>,
    /// The rows: one string (or NULL) per column, encoded as described in the
    /// [module docs](self).
    pub rows: Vec<Vec<Option<String>>>,
}

impl QueryResult {
    /// The index of the column named `name` (case-insensitive).
    pub fn column_index(&self, name: &str) -> Option<usize> {
        self.columns
            .iter()
            .position(|c| c.name.eq_ignore_ascii_case(name))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answer {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    sql_state: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    statement_handle: Option<String>,
    #[serde(default)]
    result_set_meta_data: Option<Meta>,
    /// The rows, decoded against the columns and the memory cap ([`decode::rows`]).
    #[serde(default)]
    data: Option<Box<RawValue>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Meta {
    /// How `data` is encoded; Snowflake documents `jsonv2` only (absent: that).
    #[serde(default)]
    format: Option<String>,
    #[serde(default)]
    row_type: Vec<Column>,
    /// Decoded up to `max_partitions` entries ([`decode::partitions`]).
    #[serde(default)]
    partition_info: Option<Box<RawValue>>,
}

impl ClientBuilder {
    /// Builds a [`SqlClient`] from the same settings as the streaming client (account, URL,
    /// user, key, role, TLS, proxy, retries). No network call is made here.
    ///
    /// # Errors
    /// [`Error::Config`] for an invalid or missing setting, as
    /// [`build`](ClientBuilder::build).
    pub fn build_sql(self) -> Result<SqlClient> {
        let resolved = self.resolve()?;
        let connect = resolved.connect;
        Ok(SqlClient {
            http: connect.http,
            account_url: connect
                .account_url
                .as_str()
                .trim_end_matches('/')
                .to_owned(),
            auth: connect.control,
            role: connect.role,
            database: None,
            schema: None,
            warehouse: None,
            timeout: Duration::from_secs(600),
            max_partitions: 1_000,
            max_partition_bytes: SQL_MAX_RESPONSE_BYTES,
            max_result_bytes: SQL_MAX_RESULT_BYTES,
        })
    }
}

impl SqlClient {
    /// The default database of every statement.
    pub fn database(mut self, database: impl Into<String>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The default schema of every statement.
    pub fn schema(mut self, schema: impl Into<String>) -> Self {
        self.schema = Some(schema.into());
        self
    }

    /// The warehouse that runs the statements (else the user's default warehouse).
    pub fn warehouse(mut self, warehouse: impl Into<String>) -> Self {
        self.warehouse = Some(warehouse.into());
        self
    }

    /// How long Snowflake may run one statement before cancelling it (default 10 min). The
    /// client waits for the first result at most this and as long again (at most 60 s more):
    /// past it the query fails, whatever the server answers meanwhile (HTTP 202 still
    /// running, retries, a `Retry-After`).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The most result partitions one query fetches (default 1,000); a result with more fails
    /// with [`Error::Sql`] before any is fetched, instead of growing memory without bound.
    pub fn max_partitions(mut self, max: usize) -> Self {
        self.max_partitions = max.max(1);
        self
    }

    /// The most bytes one answer (a result partition, decompressed) may hold (default 256 MiB).
    pub fn max_partition_bytes(mut self, max: usize) -> Self {
        self.max_partition_bytes = max;
        self
    }

    /// The most bytes the rows of one query (every result partition) may hold in memory
    /// together (default 1 GiB): each row is charged as it is decoded, its values' text and
    /// what a row and a value cost besides (so a partition of many small rows, which takes
    /// several times its text in memory, is charged that). A result declaring more
    /// (`partitionInfo`'s `uncompressedSize`) fails before any partition is fetched;
    /// otherwise the query fails with [`Error::Sql`] naming this limit as soon as the rows
    /// decoded, or a partition's body, pass it. What a query holds at most is this plus one
    /// partition's body ([`max_partition_bytes`](Self::max_partition_bytes)).
    pub fn max_result_bytes(mut self, max: usize) -> Self {
        self.max_result_bytes = max;
        self
    }

    /// Runs one statement and returns all its rows (every partition).
    ///
    /// # Errors
    /// [`Error::Sql`] when Snowflake rejects or fails the statement (with its code and
    /// SQLSTATE) or it times out; [`Error::Auth`], [`Error::Server`] and
    /// [`Error::Transport`] as for the streaming client.
    ///
    /// # Cancellation
    /// Dropping the future stops waiting; the statement may still run in Snowflake.
    pub async fn query(&self, statement: &str) -> Result<QueryResult> {
        let mut body = json!({
            "statement": statement,
            "timeout": self.timeout.as_secs().max(1),
            "parameters": {"TIMEZONE": "UTC"},
        });
        for (key, value) in [
            ("database", &self.database),
            ("schema", &self.schema),
            ("warehouse", &self.warehouse),
            ("role", &self.role),
        ] {
            if let Some(v) = value {
                body[key] = json!(v);
            }
        }
        let patience = self.timeout + self.timeout.min(POLL_GRACE);
        let answer =
            match tokio::time::timeout(patience, self.submit(statement, body, patience)).await {
                Ok(answer) => answer?,
                Err(_) => {
                    return Err(protocol(
                        format!(
                        "no result {patience:?} after the statement was sent (its timeout {:?} \
                         and as long again, at most {POLL_GRACE:?}): the SQL API kept the client \
                         waiting (retries, Retry-After, HTTP 202 still running)",
                        self.timeout
                    ),
                        None,
                    ))
                }
            };
        let (_, answer, first_bytes) = answer;
        let handle = answer.statement_handle.clone().unwrap_or_default();
        let meta = answer
            .result_set_meta_data
            .ok_or_else(|| protocol("no resultSetMetaData".to_owned(), Some(handle.clone())))?;
        check_format(meta.format.as_deref(), &handle)?;
        let partitions = decode::partitions(meta.partition_info.as_deref(), self.max_partitions)
            .map_err(|m| protocol(m, Some(handle.clone())))?;
        let declared: u64 = partitions
            .iter()
            .filter_map(|p| {
                p.get("uncompressedSize")
                    .and_then(serde_json::Value::as_u64)
            })
            .fold(0, u64::saturating_add);
        if declared > self.max_result_bytes as u64 {
            return Err(over_result_cap(declared, self.max_result_bytes, &handle));
        }
        let columns = meta.row_type.len();
        // What the rows hold in memory (each answer's body is dropped once decoded).
        let mut used = 0;
        if first_bytes > self.max_result_bytes {
            return Err(over_result_cap(
                first_bytes as u64,
                self.max_result_bytes,
                &handle,
            ));
        }
        let mut rows = Vec::new();
        self.take_rows(
            answer.data.as_deref(),
            columns,
            &mut used,
            &mut rows,
            &handle,
        )?;
        for partition in 1..partitions.len() {
            let (_, more, bytes) = self
                .send(&self.status_call(&handle, Some(partition)))
                .await?;
            if used.saturating_add(bytes) > self.max_result_bytes {
                return Err(over_result_cap(
                    used.saturating_add(bytes) as u64,
                    self.max_result_bytes,
                    &handle,
                ));
            }
            self.take_rows(more.data.as_deref(), columns, &mut used, &mut rows, &handle)?;
        }
        Ok(QueryResult {
            statement_handle: handle,
            columns: meta.row_type,
            rows,
        })
    }

    /// Sends `statement` (`body`) and polls while the SQL API answers HTTP 202, for at most
    /// `patience`: the first answer that is not 202, its status and body size.
    ///
    /// # Errors
    /// As [`query`](Self::query).
    async fn submit(
        &self,
        statement: &str,
        body: serde_json::Value,
        patience: Duration,
    ) -> Result<(u16, Answer, usize)> {
        let mut call = Call::new(
            "submit SQL statement",
            Method::POST,
            format!("{}/api/v2/statements", self.account_url),
        )
        .body(Bytes::from(body.to_string()), "application/json")
        .returning(&[408, 422])
        .max_response_bytes(self.max_partition_bytes)
        .mark_retries();
        if !is_read_only(statement) {
            call = call.not_idempotent();
        }
        let mut answer = self.send(&call).await?;
        let mut delay = Duration::from_millis(50);
        let give_up = tokio::time::Instant::now() + patience;
        while answer.0 == 202 {
            let handle =
                answer.1.statement_handle.clone().ok_or_else(|| {
                    protocol("HTTP 202 without a statementHandle".to_owned(), None)
                })?;
            if tokio::time::Instant::now() + delay >= give_up {
                return Err(protocol(
                    format!(
                        "the statement was still running {patience:?} after it was sent (its \
                         timeout {:?} and as long again, at most {POLL_GRACE:?}): the server \
                         keeps answering HTTP 202",
                        self.timeout
                    ),
                    Some(handle),
                ));
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(1));
            answer = self.send(&self.status_call(&handle, None)).await?;
        }
        Ok(answer)
    }

    /// Decodes the rows of one answer (`data`) onto `rows`, charging what they hold in memory
    /// to `used`.
    ///
    /// # Errors
    /// [`Error::Sql`] ([`SqlErrorKind::Protocol`]): a row whose values are not as many as the
    /// columns, rows past [`max_result_bytes`](Self::max_result_bytes), or `data` that is not
    /// an array of arrays of strings and nulls.
    fn take_rows(
        &self,
        data: Option<&RawValue>,
        columns: usize,
        used: &mut usize,
        rows: &mut Vec<Vec<Option<String>>>,
        handle: &str,
    ) -> Result<()> {
        let Some(data) = data else { return Ok(()) };
        let room = self.max_result_bytes.saturating_sub(*used);
        let (more, held) = decode::rows(data.get(), columns, room).map_err(|e| match e {
            decode::Refused::Memory(held) => over_result_cap(
                held.saturating_add(*used) as u64,
                self.max_result_bytes,
                handle,
            ),
            decode::Refused::Shape(m) => protocol(m, Some(handle.to_owned())),
        })?;
        *used += held;
        rows.extend(more);
        Ok(())
    }

    fn status_call(&self, handle: &str, partition: Option<usize>) -> Call {
        let mut url = format!("{}/api/v2/statements/{}", self.account_url, encode(handle));
        if let Some(p) = partition {
            url.push_str(&format!("?partition={p}"));
        }
        Call::new("fetch SQL result", Method::GET, url)
            .returning(&[408, 422])
            .max_response_bytes(self.max_partition_bytes)
    }

    /// Sends one call with the control-plane credential; 408/422 become [`Error::Sql`].
    /// Returns the status, the decoded answer and its body's size (decompressed).
    async fn send(&self, call: &Call) -> Result<(u16, Answer, usize)> {
        let call = call
            .clone()
            .header("Accept", HeaderValue::from_static("application/json"));
        let resp: Response = self.http.execute(&call, &self.auth).await?;
        let status = resp.status.as_u16();
        let answer: Answer = if resp.body.is_empty() {
            Answer::default()
        } else {
            resp.json(call.operation)?
        };
        if status == 422 || status == 408 {
            return Err(Error::Sql(Box::new(SqlError {
                kind: if status == 408 {
                    SqlErrorKind::Timeout
                } else {
                    SqlErrorKind::Failed
                },
                code: answer.code,
                sql_state: answer.sql_state,
                message: answer.message.unwrap_or_else(|| format!("HTTP {status}")),
                statement_handle: answer.statement_handle,
            })));
        }
        if status != 200 && status != 202 {
            return Err(decode_error(
                call.operation,
                format!("unexpected HTTP {status} from the SQL API"),
                Some(&resp.request_id),
                None,
            ));
        }
        Ok((status, answer, resp.body.len()))
    }
}

/// The one result format this client decodes: Snowflake's SQL API documents
/// `resultSetMetaData.format` as `jsonv2` (values as JSON strings, see the module docs).
const RESULT_FORMAT: &str = "jsonv2";

/// Refuses a result whose `resultSetMetaData.format` is not [`RESULT_FORMAT`] (absent is
/// taken as it, the documented default).
///
/// # Errors
/// [`Error::Sql`] ([`SqlErrorKind::Protocol`]) naming the format.
fn check_format(format: Option<&str>, handle: &str) -> Result<()> {
    match format {
        None => Ok(()),
        Some(f) if f.eq_ignore_ascii_case(RESULT_FORMAT) => Ok(()),
        Some(f) => Err(protocol(
            format!(
                "the result is in format {:?}; this client decodes only the SQL API's \
                 documented {RESULT_FORMAT:?} (resultSetMetaData.format)",
                f.chars().take(40).collect::<String>()
            ),
            Some(handle.to_owned()),
        )),
    }
}

/// The query's answers would pass [`SqlClient::max_result_bytes`].
fn over_result_cap(bytes: u64, cap: usize, handle: &str) -> Error {
    protocol(
        format!(
            "the result holds {bytes} bytes or more (decompressed), more than max_result_bytes \
             ({cap}): narrow the query (a LIMIT, fewer columns) or raise \
             SqlClient::max_result_bytes"
        ),
        Some(handle.to_owned()),
    )
}

fn protocol(message: String, statement_handle: Option<String>) -> Error {
    Error::Sql(Box::new(SqlError {
        kind: SqlErrorKind::Protocol,
        code: None,
        sql_state: None,
        message,
        statement_handle,
    }))
}

/// Whether a statement only reads (so resending it after a timeout is harmless).
fn is_read_only(statement: &str) -> bool {
    let first = statement
        .trim_start()
        .split(|c: char| c.is_whitespace() || c == '(')
        .next()
        .unwrap_or("")
        .to_ascii_uppercase();
    matches!(
        first.as_str(),
        "SELECT" | "WITH" | "SHOW" | "DESC" | "DESCRIBE"
    )
}

mod decode {
    //! The parts of an answer whose size is the server's word: `partitionInfo` read up to its
    //! cap, `data` decoded row by row, each row checked against the columns and charged (what
    //! it holds in memory, not its text) before the next is read.

    use std::fmt;

    use serde::de::{DeserializeSeed, Error as _, SeqAccess, Visitor};
    use serde::Deserializer;

    /// What one row costs held, besides its values.
    const ROW_BYTES: usize = std::mem::size_of::<Row>();
    /// What one value costs held, besides its text.
    const VALUE_BYTES: usize = std::mem::size_of::<Option<String>>();

    /// One row: a value (or NULL) per column.
    type Row = Vec<Option<String>>;

    /// Why rows were refused.
    pub(super) enum Refused {
        /// They would hold more than the room left (the bytes held when it was passed).
        Memory(usize),
        /// Not rows of this result (the reason).
        Shape(String),
    }

    /// The `partitionInfo` entries, refused past `max` before more are read.
    ///
    /// # Errors
    /// The reason: more than `max` entries, or not an array.
    pub(super) fn partitions(
        raw: Option<&serde_json::value::RawValue>,
        max: usize,
    ) -> Result<Vec<serde_json::Value>, String> {
        let Some(raw) = raw else {
            return Ok(Vec::new());
        };
        let mut de = serde_json::Deserializer::from_str(raw.get());
        de.deserialize_seq(Capped { max }).map_err(|e| {
            let m = e.to_string();
            if m.starts_with(OVER) {
                format!(
                    "the result has more than {max} partitions (max_partitions): narrow the \
                     query (a LIMIT, fewer columns) or raise SqlClient::max_partitions"
                )
            } else {
                format!("resultSetMetaData.partitionInfo is not an array of objects: {m}")
            }
        })
    }

    const OVER: &str = "over the cap";

    struct Capped {
        max: usize,
    }

    impl<'de> Visitor<'de> for Capped {
        type Value = Vec<serde_json::Value>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(v) = seq.next_element()? {
                if out.len() == self.max {
                    return Err(A::Error::custom(OVER));
                }
                out.push(v);
            }
            Ok(out)
        }
    }

    /// The rows of `data` (an array of arrays of strings or nulls), each of `columns` values,
    /// and the bytes they hold; refused once they would hold more than `room`.
    ///
    /// # Errors
    /// [`Refused`].
    pub(super) fn rows(
        data: &str,
        columns: usize,
        room: usize,
    ) -> Result<(Vec<Row>, usize), Refused> {
        let mut held = 0usize;
        let mut refused = None;
        let mut de = serde_json::Deserializer::from_str(data);
        let seed = Rows {
            columns,
            room,
            held: &mut held,
            refused: &mut refused,
        };
        match seed.deserialize(&mut de) {
            Ok(rows) => Ok((rows, held)),
            Err(e) => Err(refused.unwrap_or_else(|| {
                Refused::Shape(format!("data is not rows of strings and nulls: {e}"))
            })),
        }
    }

    struct Rows<'a> {
        columns: usize,
        room: usize,
        held: &'a mut usize,
        refused: &'a mut Option<Refused>,
    }

    impl<'de> DeserializeSeed<'de> for Rows<'_> {
        type Value = Vec<Row>;
        fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_seq(self)
        }
    }

    impl<'de> Visitor<'de> for Rows<'_> {
        type Value = Vec<Row>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an array of rows")
        }
        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some(row) = seq.next_element::<Row>()? {
                let cost = ROW_BYTES
                    + row
                        .iter()
                        .map(|v| VALUE_BYTES + v.as_ref().map_or(0, String::len))
                        .sum::<usize>();
                *self.held += cost;
                if *self.held > self.room {
                    *self.refused = Some(Refused::Memory(*self.held));
                    return Err(A::Error::custom("over the memory cap"));
                }
                if row.len() != self.columns {
                    *self.refused = Some(Refused::Shape(format!(
                        "row {} has {} values where the result has {} columns \
                         (resultSetMetaData.rowType): the answer does not match its own columns",
                        out.len(),
                        row.len(),
                        self.columns
                    )));
                    return Err(A::Error::custom("a row of another width"));
                }
                out.push(row);
            }
            Ok(out)
        }
    }
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
