//! The emulator's shared state and protocol operations, independent of HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::auth::Authenticator;
use crate::catalog::Catalog;
use crate::channels::{
    self, Channel, ChannelKey, PendingBatch, PendingBatchBox, Target, TokenCheck, ELASTIC,
    MUST_REOPEN,
};
use crate::config::{DuplicateAppendPolicy, EmulatorConfig};
use crate::faults::FaultHandle;
use crate::requests::RequestLog;
use crate::storage::{self, Storage, TableInsert};
use crate::EmulatorError;

/// An API error: HTTP status, stable code and message.
#[derive(Debug, Clone)]
pub(crate) struct ApiError {
    pub status: u16,
    pub code: String,
    pub message: String,
    /// The SQLSTATE of a SQL API error (sent as `sqlState`).
    pub sql_state: Option<String>,
}

impl ApiError {
    pub(crate) fn new(status: u16, code: &str, message: impl Into<String>) -> Self {
        Self {
            status,
            code: code.to_string(),
            message: message.into(),
            sql_state: None,
        }
    }

    /// Adds a SQLSTATE (SQL API errors).
    pub(crate) fn with_sql_state(mut self, state: &str) -> Self {
        self.sql_state = Some(state.to_owned());
        self
    }
}

impl From<channels::Reject> for ApiError {
    fn from((status, code, message): channels::Reject) -> Self {
        Self::new(status, code, message)
    }
}

fn no_channel(key: &ChannelKey) -> ApiError {
    ApiError::new(
        404,
        "ERR_CHANNEL_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
        format!(
            "channel {} does not exist on pipe {}.{}.{}; open it first (PUT …/channels/{{channel}})",
            key.channel, key.database, key.schema, key.pipe
        ),
    )
}

fn storage_error(e: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        500,
        "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
        format!("storage error: {e}"),
    )
}

pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Microseconds since the Unix epoch (commit times in `GET /`).
pub(crate) fn now_us() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// A decoded append request.
pub(crate) struct AppendRequest {
    pub continuation_token: Option<String>,
    pub start_offset_token: Option<String>,
    pub end_offset_token: Option<String>,
    pub content_encoding: Option<String>,
    pub body: Bytes,
    /// `x-snowflake-uncompressed-content-length`, else the body's length.
    pub uncompressed_len: usize,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub catalog: Catalog,
    pub targets: HashMap<String, Arc<Target>>,
    pub auth: Authenticator,
    pub faults: FaultHandle,
    pub channels: Mutex<HashMap<ChannelKey, Channel>>,
    pub commit_lock: tokio::sync::Mutex<()>,
    pub commit_notify: Notify,
    pub storage: Option<Storage>,
    pub requests: RequestLog,
    pub table_rows: Mutex<HashMap<String, u64>>,
    pub sink: bool,
    pub commit_delay: Duration,
    pub max_payload_bytes: usize,
    pub max_uncompressed_bytes: usize,
    pub duplicate_append: DuplicateAppendPolicy,
    pub strict_offsets: bool,
    pub role_grants: Vec<(String, String)>,
    pub limits: crate::Limits,
    /// How BINARY columns read JSON strings.
    pub binary_format: crate::convert::BinaryFormat,
    pub ingest_host: Option<String>,
    pub sink_rows: AtomicU64,
    pub sink_bytes: AtomicU64,
    pub started_ms: i64,
    pub last_created_ms: std::sync::atomic::AtomicI64,
    /// The browser console's cached table previews.
    pub console: crate::console::ConsoleCache,
}

impl Shared {
    /// Builds the shared state: storage, catalog (stored DDL first, then the configured DDL),
    /// SQLite tables and stored channels.
    pub(crate) async fn build(config: &EmulatorConfig) -> Result<Self, EmulatorError> {
        let storage = if config.sink {
            None
        } else {
            Some(Storage::open(config.data_dir.as_deref())?)
        };
        let mut catalog = Catalog::new();
        let mut stored_channels = Vec::new();
        let mut table_rows = HashMap::new();
        let mut stored_ddl = Vec::new();
        if let Some(st) = &storage {
            stored_ddl = st.run(|c| storage::stored_ddl(c)).await??;
            for sql in &stored_ddl {
                catalog
                    .apply_sql(sql)
                    .map_err(|e| EmulatorError::Catalog(format!("stored DDL: {e}")))?;
            }
        }
        // Scripts already stored were applied above; applying them twice would fail on plain
        // CREATE statements.
        for sql in config.ddl.iter().filter(|s| !stored_ddl.contains(s)) {
            catalog
                .apply_sql(sql)
                .map_err(|e| EmulatorError::Catalog(e.to_string()))?;
        }
        if config.limits == crate::Limits::Snowflake {
            let mut per_table: HashMap<String, usize> = HashMap::new();
            for p in catalog.pipes() {
                *per_table.entry(p.table_qualified.clone()).or_default() += 1;
            }
            if let Some((table, n)) = per_table
                .into_iter()
                .find(|(_, n)| *n > crate::limits::PIPES_PER_TABLE)
            {
                return Err(EmulatorError::Catalog(format!(
                    "table {table} has {n} pipes (its default pipe included); Snowflake allows {} per table (--limits snowflake)",
                    crate::limits::PIPES_PER_TABLE
                )));
            }
        }
        let mut targets = HashMap::new();
        let mut creates = Vec::new();
        for t in catalog.tables() {
            targets.insert(
                t.qualified_name(),
                Arc::new(Target {
                    qualified: t.qualified_name(),
                    insert_sql: crate::convert::sqlite_insert(t),
                }),
            );
            creates.push((t.qualified_name(), crate::convert::sqlite_create_table(t)));
        }
        if let Some(st) = &storage {
            let ddl = config.ddl.clone();
            let (records, counts) = st
                .run(move |c| -> Result<_, rusqlite::Error> {
                    let tx = c.transaction()?;
                    for sql in &ddl {
                        storage::store_ddl(&tx, sql)?;
                    }
                    let mut counts = HashMap::new();
                    for (name, create) in &creates {
                        tx.execute_batch(create)?;
                        let n: i64 = tx.query_row(
                            &format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\"")),
                            [],
                            |r| r.get(0),
                        )?;
                        counts.insert(name.clone(), n as u64);
                    }
                    tx.commit()?;
                    let records = storage::load_channels(c)
                        .map_err(|e| rusqlite::Error::InvalidParameterName(e.to_string()))?;
                    Ok((records, counts))
                })
                .await?
                .map_err(|e| EmulatorError::Storage(e.to_string()))?;
            stored_channels = records;
            table_rows = counts;
        }
        let mut channels = HashMap::new();
        for r in &stored_channels {
            channels.insert(
                ChannelKey {
                    database: r.database.clone(),
                    schema: r.schema.clone(),
                    pipe: r.pipe.clone(),
                    channel: r.channel.clone(),
                },
                Channel::from_record(r),
            );
        }
        let mut auth = Authenticator::new(
            &config.public_keys,
            &config.user_public_keys,
            config.accept_any_key,
            config.personal_access_tokens.clone(),
            config.scoped_token_ttl,
        )
        .map_err(|e| EmulatorError::Config(e.to_string()))?;
        if let Some(st) = &storage {
            // Keep the scoped-token secret across restarts: tokens handed out stay valid.
            let fresh = auth.secret();
            let secret = st
                .run(move |c| storage::meta_get_or_insert(c, "scoped_token_secret", &fresh))
                .await?
                .map_err(|e| EmulatorError::Storage(e.to_string()))?;
            auth.set_secret(secret);
        }
        Ok(Self {
            catalog,
            targets,
            auth,
            faults: FaultHandle::new(config.faults.clone(), config.seed),
            channels: Mutex::new(channels),
            commit_lock: tokio::sync::Mutex::new(()),
            commit_notify: Notify::new(),
            storage,
            requests: RequestLog::new(config.request_log_capacity, config.request_log.as_deref())?,
            table_rows: Mutex::new(table_rows),
            sink: config.sink,
            commit_delay: config.commit_delay,
            max_payload_bytes: config.max_payload_bytes,
            max_uncompressed_bytes: config.max_uncompressed_bytes,
            duplicate_append: config.duplicate_append,
            strict_offsets: config.strict_offsets,
            role_grants: config.role_grants.clone(),
            limits: config.limits,
            binary_format: config.binary_format,
            ingest_host: config.ingest_host.clone(),
            sink_rows: AtomicU64::new(0),
            sink_bytes: AtomicU64::new(0),
            started_ms: now_ms(),
            last_created_ms: std::sync::atomic::AtomicI64::new(0),
            console: Default::default(),
        })
    }

    pub(crate) fn channels(&self) -> MutexGuard<'_, HashMap<ChannelKey, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether `role` (`PUBLIC` when `None`) may use database `db`: always when no grants are
    /// configured; otherwise 404 `ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`, what
    /// Snowflake answers a role without privileges (docs/protocol.md "Authentication and role").
    pub(crate) fn authorize(&self, role: Option<&str>, db: &str) -> Result<(), ApiError> {
        if self.role_grants.is_empty() {
            return Ok(());
        }
        let role = role.unwrap_or("PUBLIC").trim_matches('"');
        let db_canonical = db.trim_matches('"');
        let granted = self.role_grants.iter().any(|(r, d)| {
            r.eq_ignore_ascii_case(role) && (d == "*" || d.eq_ignore_ascii_case(db_canonical))
        });
        if granted {
            Ok(())
        } else {
            Err(ApiError::new(
                404,
                "ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED",
                format!(
                    "database {db} does not exist or role {role} is not authorized to use it; \
                     grant it (--grant {role}={db}) or set the client's role"
                ),
            ))
        }
    }

    /// Resolves a pipe to its canonical channel key and target table.
    pub(crate) fn resolve(
        &self,
        db: &str,
        schema: &str,
        pipe: &str,
        channel: &str,
    ) -> Result<(ChannelKey, Arc<Target>), ApiError> {
        let r = self
            .catalog
            .resolve_pipe(db, schema, pipe)
            .map_err(|e| ApiError::new(e.http_status(), e.code(), e.to_string()))?;
        let target = self
            .targets
            .get(&r.table.qualified_name())
            .cloned()
            .ok_or_else(|| {
                ApiError::new(
                    404,
                    "ERR_TABLE_DOES_NOT_EXIST_NOT_AUTHORIZED",
                    format!(
                        "table {} of pipe {pipe} is unknown",
                        r.table.qualified_name()
                    ),
                )
            })?;
        let mut key = ChannelKey {
            database: r.database.to_string(),
            schema: r.schema.to_string(),
            pipe: r.pipe.clone(),
            channel: channel.to_string(),
        };
        key.channel = self.channel_in_uri(&key);
        Ok((key, target))
    }

    /// A channel name from a request URI, which Snowflake treats case-insensitively
    /// (docs/protocol.md "Names"): `elastic` is `ELASTIC`; another name is the channel's name
    /// as created when exactly one channel of the pipe matches it ignoring case (an exact
    /// match wins), else the name as given.
    fn channel_in_uri(&self, key: &ChannelKey) -> String {
        let name = &key.channel;
        if name.is_empty() {
            return String::new();
        }
        if name.eq_ignore_ascii_case(ELASTIC) {
            return ELASTIC.to_owned();
        }
        let chans = self.channels();
        if chans.contains_key(key) {
            return name.clone();
        }
        let mut matches = chans.keys().filter(|k| {
            k.pipe == key.pipe
                && k.schema == key.schema
                && k.database == key.database
                && k.channel.to_lowercase() == name.to_lowercase()
        });
        match (matches.next(), matches.next()) {
            (Some(only), None) => only.channel.clone(),
            _ => name.clone(),
        }
    }

    async fn persist_channel(
        &self,
        key: &ChannelKey,
        ch_rec: Option<storage::ChannelRecord>,
    ) -> Result<(), ApiError> {
        let Some(st) = &self.storage else {
            return Ok(());
        };
        let key = key.clone();
        st.run(move |c| match ch_rec {
            Some(r) => storage::upsert_channel(c, &r),
            None => storage::delete_channel(c, &key.database, &key.schema, &key.pipe, &key.channel),
        })
        .await
        .map_err(storage_error)?
        .map_err(storage_error)
    }

    /// Open or reopen a channel (§4.3).
    pub(crate) async fn open_channel(
        &self,
        key: ChannelKey,
        offset_token: Option<String>,
        fail_on_uncommitted_rows: bool,
    ) -> Result<Value, ApiError> {
        if key.channel == ELASTIC {
            return Err(ApiError::new(
                400,
                "ERR_ELASTIC_CHANNEL_RESERVED_NAME",
                "ELASTIC is the implicit elastic channel of every pipe; it cannot be opened",
            ));
        }
        let _commit = self.commit_lock.lock().await;
        let (record, response) = {
            let mut chans = self.channels();
            match chans.get_mut(&key) {
                Some(ch) => {
                    if fail_on_uncommitted_rows && !ch.pending.is_empty() {
                        return Err(ApiError::new(
                            409,
                            "ERR_CHANNEL_HAS_UNCOMMITTED_DATA",
                            format!(
                                "channel {} has {} uncommitted rows; retry later or reopen with fail_on_uncommitted_rows=false to discard them",
                                key.channel,
                                ch.pending_rows()
                            ),
                        ));
                    }
                    ch.reopen();
                }
                None => {
                    if self.limits == crate::Limits::Snowflake {
                        let open = chans
                            .keys()
                            .filter(|k| {
                                k.pipe == key.pipe
                                    && k.schema == key.schema
                                    && k.database == key.database
                                    && k.channel != ELASTIC
                            })
                            .count();
                        if open >= crate::limits::CHANNELS_PER_PIPE {
                            return Err(ApiError::new(
                                400,
                                "ERR_TOO_MANY_CHANNELS",
                                format!(
                                    "pipe {} already has {open} channels, the most Snowflake allows (--limits snowflake); drop unused channels",
                                    key.pipe
                                ),
                            ));
                        }
                    }
                    // Strictly increasing, so the tokens of a dropped channel with the same
                    // name stay stale after it is recreated.
                    let now = now_ms();
                    let prev = self.last_created_ms.fetch_max(now, Ordering::SeqCst);
                    let created = if prev >= now {
                        self.last_created_ms.fetch_add(1, Ordering::SeqCst) + 1
                    } else {
                        now
                    };
                    chans.insert(key.clone(), Channel::new(created));
                }
            }
            let Some(ch) = chans.get_mut(&key) else {
                return Err(no_channel(&key));
            };
            if let Some(t) = offset_token {
                ch.committed = if t.is_empty() { None } else { Some(t) };
            }
            let response = json!({
                "next_continuation_token": ch.token(),
                "channel_status": ch.status_json(&key),
            });
            (ch.record(&key), response)
        };
        self.persist_channel(&key, Some(record)).await?;
        Ok(response)
    }

    /// Drop a channel (§4.8).
    pub(crate) async fn drop_channel(
        &self,
        key: ChannelKey,
        fail_on_uncommitted_rows: bool,
    ) -> Result<Value, ApiError> {
        if key.channel == ELASTIC {
            return Err(ApiError::new(
                400,
                "ERR_CANNOT_DROP_ELASTIC_CHANNEL",
                "the elastic channel cannot be dropped",
            ));
        }
        let _commit = self.commit_lock.lock().await;
        let committed = {
            let mut chans = self.channels();
            let Some(ch) = chans.get(&key) else {
                return Err(no_channel(&key));
            };
            if fail_on_uncommitted_rows && !ch.pending.is_empty() {
                return Err(ApiError::new(
                    409,
                    "ERR_CHANNEL_HAS_UNCOMMITTED_DATA",
                    format!("channel {} has uncommitted rows", key.channel),
                ));
            }
            let committed = ch.committed.clone();
            chans.remove(&key);
            committed
        };
        self.persist_channel(&key, None).await?;
        Ok(json!({ "last_committed_offset_token": committed }))
    }

    /// Bulk channel status (§4.7).
    pub(crate) fn bulk_status(
        &self,
        db: &str,
        schema: &str,
        pipe: &str,
        names: &[String],
    ) -> Result<Value, ApiError> {
        if names.len() > 100 {
            return Err(ApiError::new(
                400,
                "ERR_GET_CHANNEL_STATUS_TOO_MANY_CHANNELS",
                format!(
                    "{} channel names given; at most 100 per request",
                    names.len()
                ),
            ));
        }
        let (base, _) = self.resolve(db, schema, pipe, "")?;
        let mut out = serde_json::Map::new();
        let mut chans = self.channels();
        for name in names {
            let key = ChannelKey {
                channel: name.clone(),
                ..base.clone()
            };
            if name == ELASTIC {
                chans
                    .entry(key.clone())
                    .or_insert_with(|| Channel::new(self.started_ms));
            }
            if let Some(ch) = chans.get(&key) {
                out.insert(name.clone(), ch.status_json(&key));
            }
        }
        Ok(json!({ "channel_statuses": out }))
    }

    /// Append rows (§4.4, §4.5). Returns the next continuation token and, when the append's
    /// offset tokens cannot name its rows (and the emulator is not strict), why.
    ///
    /// Cancelling the future after the rows were queued leaves them queued (they commit).
    pub(crate) async fn append(
        self: &Arc<Self>,
        key: ChannelKey,
        target: Arc<Target>,
        req: AppendRequest,
    ) -> Result<(String, Option<String>), ApiError> {
        let elastic = key.channel == ELASTIC;
        let idempotent = self.duplicate_append == DuplicateAppendPolicy::Idempotent;
        let token = req.continuation_token.filter(|t| !t.is_empty());
        // First check: cheap, before decoding the body.
        let seq = {
            let mut chans = self.channels();
            if elastic {
                chans
                    .entry(key.clone())
                    .or_insert_with(|| Channel::new(self.started_ms));
            }
            let ch = chans.get_mut(&key).ok_or_else(|| no_channel(&key))?;
            if ch.status != channels::SUCCESS {
                return Err(ApiError::new(
                    409,
                    MUST_REOPEN,
                    format!(
                        "channel {} has status {}; reopen it and replay from its committed offset token",
                        key.channel, ch.status
                    ),
                ));
            }
            if !elastic {
                let t = token.as_deref().ok_or_else(|| {
                    ApiError::new(
                        400,
                        "ERR_MISSING_CONTINUATION_TOKEN",
                        "continuationToken query parameter is required on a named channel",
                    )
                })?;
                if let TokenCheck::Duplicate(next) = ch.check_token(t, idempotent)? {
                    return Ok((next, None));
                }
            }
            if !elastic && self.limits == crate::Limits::Snowflake {
                ch.rate
                    .admit(Instant::now(), req.uncompressed_len)
                    .map_err(|why| {
                        ApiError::new(
                            429,
                            "ERR_TOO_MANY_REQUESTS",
                            format!(
                                "channel {}: {why} (--limits snowflake); slow down and retry",
                                key.channel
                            ),
                        )
                    })?;
            }
            (ch.client_seq, ch.row_seq)
        };

        // Decode and convert outside the lock (on a blocking thread for big bodies).
        let shared = self.clone();
        let work_key = key.clone();
        let work =
            move || shared.decode_and_convert(&work_key, req.content_encoding.as_deref(), req.body);
        let decoded = if self.sink {
            work()?
        } else {
            tokio::task::spawn_blocking(work).await.map_err(|e| {
                ApiError::new(500, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST", e.to_string())
            })??
        };

        let violation = crate::offset_span_violation(
            req.start_offset_token.as_deref(),
            req.end_offset_token.as_deref(),
            decoded.parsed,
        );
        if let Some(v) = &violation {
            if self.strict_offsets {
                return Err(ApiError::new(
                    400,
                    "ERR_OFFSET_TOKEN_SPAN",
                    format!("{v} (the emulator runs with --strict-offsets)"),
                ));
            }
            tracing::warn!(channel = %key.channel, "{v}");
        }
        let next = {
            let mut chans = self.channels();
            let ch = chans.get_mut(&key).ok_or_else(|| no_channel(&key))?;
            if violation.is_some() {
                ch.offset_span_violations += 1;
            }
            if !elastic && (ch.client_seq, ch.row_seq) != seq {
                let t = token.as_deref().unwrap_or_default();
                if let TokenCheck::Duplicate(next) = ch.check_token(t, idempotent)? {
                    return Ok((next, None));
                }
            }
            ch.row_seq += 1;
            let next = ch.token();
            if let Some(t) = token {
                ch.last_append = Some((t, next.clone()));
            }
            ch.pending.push_back(PendingBatchBox(PendingBatch {
                ready_at: Instant::now() + self.commit_delay,
                target,
                rows: decoded.rows,
                parsed: decoded.parsed,
                errors: decoded.errors,
                last_error: decoded.last_error,
                end_token: req.end_offset_token.filter(|t| !t.is_empty()),
            }));
            next
        };
        if self.commit_delay.is_zero() {
            self.commit_due().await;
        } else {
            self.commit_notify.notify_one();
        }
        Ok((next, violation))
    }

    /// Counts an accepted append whose `retryCount` was above 0 (an elastic channel applies it
    /// again: the server dedupes nothing).
    pub(crate) fn count_retried(&self, key: &ChannelKey) {
        if let Some(ch) = self.channels().get_mut(key) {
            ch.retried_appends += 1;
        }
    }

    /// The sticky session of the channel's current incarnation (a reopen starts a new one;
    /// docs/protocol.md "Sticky sessions") and whether `sent` echoed it: `echoed`,
    /// `missing` or `stale`. Counted per channel.
    pub(crate) fn sticky_session(
        &self,
        key: &ChannelKey,
        sent: Option<&str>,
    ) -> Option<(String, &'static str)> {
        let mut chans = self.channels();
        let ch = chans.get_mut(key)?;
        let current = format!("{:x}.{}", ch.created_on_ms, ch.client_seq);
        let (slot, echo) = match sent {
            Some(s) if s == current => (0, "echoed"),
            None => (1, "missing"),
            Some(_) => (2, "stale"),
        };
        ch.session_echoes[slot] += 1;
        Some((current, echo))
    }

    fn decode_and_convert(
        &self,
        key: &ChannelKey,
        encoding: Option<&str>,
        body: Bytes,
    ) -> Result<Decoded, ApiError> {
        if self.sink {
            let (d, len) = sink_count(encoding, body, self.max_uncompressed_bytes)?;
            self.sink_rows.fetch_add(d.parsed, Ordering::Relaxed);
            self.sink_bytes.fetch_add(len as u64, Ordering::Relaxed);
            return Ok(d);
        }
        let raw = decompress(encoding, body, self.max_uncompressed_bytes)?;
        let resolved = self
            .catalog
            .resolve_pipe(&key.database, &key.schema, &key.pipe)
            .map_err(|e| ApiError::new(e.http_status(), e.code(), e.to_string()))?;
        let table = resolved.table;
        let definition = self
            .catalog
            .pipe_definition(&key.database, &key.schema, &key.pipe);
        let options = crate::convert::ConvertOptions {
            binary_format: self.binary_format,
        };
        let mut d = Decoded::default();
        for (i, line) in lines(&raw).enumerate() {
            d.parsed += 1;
            let converted = match definition {
                None => crate::convert::convert_line_with(table, line, &options),
                Some(def) => match serde_json::from_slice::<Value>(line) {
                    Ok(Value::Object(row)) => {
                        crate::convert::convert_row_for_pipe(table, def, &row, &options)
                    }
                    Ok(_) => Err(crate::convert::RowError {
                        column: None,
                        message: "Row is not a JSON object".into(),
                    }),
                    Err(e) => Err(crate::convert::RowError {
                        column: None,
                        message: format!("Error parsing JSON: {e}"),
                    }),
                },
            };
            match converted {
                Ok(values) => d.rows.push(values),
                Err(e) => {
                    d.errors += 1;
                    d.last_error = Some(format!("row {} of the request: {e}", i + 1));
                }
            }
        }
        Ok(d)
    }

    /// Commits every due batch: rows and channel state in one SQLite transaction.
    pub(crate) async fn commit_due(&self) {
        self.commit_until(Instant::now()).await;
    }

    /// Commits every pending batch, due or not (graceful shutdown: a 200 meant "durably
    /// buffered").
    pub(crate) async fn commit_all(&self) {
        self.commit_until(Instant::now() + Duration::from_secs(365 * 24 * 3600))
            .await;
    }

    async fn commit_until(&self, until: Instant) {
        let _commit = self.commit_lock.lock().await;
        let plan = {
            let mut chans = self.channels();
            channels::take_due(&mut chans, until, now_ms())
        };
        let Some(plan) = plan else { return };
        if let Some(st) = &self.storage {
            let inserts: Vec<TableInsert> = plan
                .inserts
                .into_values()
                .map(|(t, rows)| TableInsert {
                    insert_sql: t.insert_sql.clone(),
                    rows,
                })
                .collect();
            let records: Vec<_> = plan.records.iter().map(|(_, r)| r.clone()).collect();
            match st
                .run(move |c| storage::write_commit(c, &inserts, &records))
                .await
            {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "commit failed; the batch is lost");
                    return;
                }
                Err(e) => {
                    tracing::error!(error = %e, "commit failed; the batch is lost");
                    return;
                }
            }
        }
        {
            let mut rows = self.table_rows.lock().unwrap_or_else(|e| e.into_inner());
            for (t, n) in &plan.rows_per_table {
                *rows.entry(t.clone()).or_default() += n;
            }
        }
        let mut chans = self.channels();
        channels::apply_records(&mut chans, &plan.records, now_us());
    }

    /// The earliest time a pending batch becomes due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.channels()
            .values()
            .filter_map(|c| c.pending.front().map(|b| b.0.ready_at))
            .min()
    }

    /// Fault side effects on the addressed channel.
    pub(crate) fn invalidate(&self, key: &ChannelKey) -> bool {
        match self.channels().get_mut(key) {
            Some(ch) => {
                ch.status = MUST_REOPEN.into();
                true
            }
            None => false,
        }
    }

    pub(crate) fn bump_sequencer(&self, key: &ChannelKey) -> bool {
        match self.channels().get_mut(key) {
            Some(ch) => {
                ch.bump_sequencer();
                true
            }
            None => false,
        }
    }

    /// What `GET /` shows.
    pub(crate) fn status(&self) -> Value {
        let pipes: Vec<Value> = self
            .catalog
            .pipes()
            .into_iter()
            .map(|p| {
                json!({"database": p.database, "schema": p.schema, "name": p.name,
                       "table": p.table, "is_default": p.is_default})
            })
            .collect();
        let mut chans: Vec<Value> = {
            let chans = self.channels();
            let mut keys: Vec<&ChannelKey> = chans.keys().collect();
            keys.sort();
            keys.into_iter()
                .map(|k| {
                    let c = &chans[k];
                    let mut v = c.status_json(k);
                    v["pending_batches"] = c.pending.len().into();
                    v["pending_rows"] = c.pending_rows().into();
                    v["client_sequencer"] = c.client_seq.into();
                    v["offset_span_violations"] = c.offset_span_violations.into();
                    v["retried_appends"] = c.retried_appends.into();
                    let [echoed, missing, stale] = c.session_echoes;
                    v["sessions"] = json!({"echoed": echoed, "missing": missing, "stale": stale});
                    v["recent_commits"] = c
                        .recent_commits
                        .iter()
                        .map(|(token, us)| json!({"token": token, "committed_at_us": us}))
                        .collect();
                    v
                })
                .collect()
        };
        chans.shrink_to_fit();
        let tables: Vec<Value> = {
            let rows = self.table_rows.lock().unwrap_or_else(|e| e.into_inner());
            let mut v: Vec<Value> = self
                .catalog
                .tables()
                .map(|t| {
                    let q = t.qualified_name();
                    json!({"name": q, "rows": rows.get(&q).copied().unwrap_or(0)})
                })
                .collect();
            v.sort_by(|a, b| a["name"].as_str().cmp(&b["name"].as_str()));
            v
        };
        json!({
            "emulator": "snowpipe-emulator",
            "version": env!("CARGO_PKG_VERSION"),
            "mode": if self.sink { "sink" } else { "store" },
            "database_file": self.storage.as_ref().and_then(|s| s.path()).map(|p| p.display().to_string()),
            "pipes": pipes,
            "channels": chans,
            "tables": tables,
            "sink": {"rows": self.sink_rows.load(Ordering::Relaxed), "bytes": self.sink_bytes.load(Ordering::Relaxed)},
            "requests": self.requests.total(),
            "faults_fired": self.faults.fired(),
        })
    }
}

/// Rows decoded from one append body.
#[derive(Debug, Default)]
pub(crate) struct Decoded {
    pub rows: Vec<Vec<crate::convert::SqlValue>>,
    pub parsed: u64,
    pub errors: u64,
    pub last_error: Option<String>,
}

/// Decompresses an append body according to its `Content-Encoding`.
pub(crate) fn decompress(
    encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<Bytes, ApiError> {
    use std::io::Read;
    let too_big = || {
        ApiError::new(
            413,
            "ERR_PAYLOAD_TOO_LARGE",
            format!("the decompressed body is larger than {limit} bytes"),
        )
    };
    let bad = |e: std::io::Error, what: &str| {
        ApiError::new(
            400,
            "ERR_INVALID_CONTENT_ENCODING",
            format!("cannot decode the {what} body: {e}"),
        )
    };
    let enc = encoding.map(|e| e.trim().to_ascii_lowercase());
    let mut out = Vec::new();
    match enc.as_deref() {
        None | Some("") | Some("identity") | Some("none") => return Ok(body),
        Some("zstd") => {
            if let Ok(Some(n)) = zstd::zstd_safe::get_frame_content_size(&body) {
                if n as usize > limit {
                    return Err(too_big());
                }
                out.reserve(n as usize);
            }
            zstd::stream::read::Decoder::new(&body[..])
                .map_err(|e| bad(e, "zstd"))?
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(e, "zstd"))?;
        }
        Some("gzip") | Some("x-gzip") => {
            flate2::read::MultiGzDecoder::new(&body[..])
                .take(limit as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| bad(e, "gzip"))?;
        }
        Some(other) => {
            return Err(ApiError::new(
                400,
                "ERR_UNSUPPORTED_CONTENT_ENCODING",
                format!("Content-Encoding {other} is not supported; use zstd, gzip or none"),
            ))
        }
    }
    if out.len() > limit {
        return Err(too_big());
    }
    Ok(Bytes::from(out))
}

/// Sink mode: counts the rows of an append body (see [`count_lines`]) and returns them with
/// the uncompressed length. A zstd body whose frame states its size is decompressed into a
/// buffer and context kept per thread, so a busy sink neither allocates nor faults in fresh
/// memory per request; anything else goes through [`decompress`].
fn sink_count(
    encoding: Option<&str>,
    body: Bytes,
    limit: usize,
) -> Result<(Decoded, usize), ApiError> {
    thread_local! {
        static ZSTD: std::cell::RefCell<Option<(zstd::bulk::Decompressor<'static>, Vec<u8>)>> =
            const { std::cell::RefCell::new(None) };
    }
    let is_zstd = encoding.is_some_and(|e| e.trim().eq_ignore_ascii_case("zstd"));
    let size = if is_zstd {
        zstd::zstd_safe::get_frame_content_size(&body)
            .ok()
            .flatten()
    } else {
        None
    };
    if let Some(n) = size
        .and_then(|n| usize::try_from(n).ok())
        .filter(|&n| n <= limit)
    {
        let counted = ZSTD.with(|cell| {
            let mut cell = cell.borrow_mut();
            if cell.is_none() {
                *cell = Some((zstd::bulk::Decompressor::new().ok()?, Vec::new()));
            }
            let (dctx, buf) = cell.as_mut()?;
            buf.clear();
            buf.reserve(n);
            let len = dctx.decompress_to_buffer(&body[..], buf).ok()?;
            Some((count_lines(&buf[..len]), len))
        });
        if let Some(c) = counted {
            return Ok(c);
        }
        // Corrupt or a size mismatch: the general path reports it properly.
    }
    let raw = decompress(encoding, body, limit)?;
    Ok((count_lines(&raw), raw.len()))
}

/// The non-blank lines of an NDJSON body (a `\r` before `\n` is dropped).
pub(crate) fn lines(body: &[u8]) -> impl Iterator<Item = &[u8]> {
    body.split(|b| *b == b'\n').filter_map(|l| {
        let l = l.strip_suffix(b"\r").unwrap_or(l);
        if l.iter().all(|b| b.is_ascii_whitespace()) {
            None
        } else {
            Some(l)
        }
    })
}

/// Sink mode: count rows without parsing JSON; a line that does not look like an object is an
/// error row.
pub(crate) fn count_lines(body: &[u8]) -> Decoded {
    let mut d = Decoded::default();
    let mut start = 0;
    let check = |line: &[u8], d: &mut Decoded| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            return;
        }
        d.parsed += 1;
        if line[0] != b'{' || line[line.len() - 1] != b'}' {
            if line.iter().all(|b| b.is_ascii_whitespace()) {
                d.parsed -= 1;
                return;
            }
            d.errors += 1;
            d.last_error = Some("row is not a JSON object".into());
        }
    };
    for nl in memchr::memchr_iter(b'\n', body) {
        check(&body[start..nl], &mut d);
        start = nl + 1;
    }
    if start < body.len() {
        check(&body[start..], &mut d);
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_counts_rows_of_every_encoding_and_refuses_bad_bodies() {
        let text = b"{\"a\":1}\n{\"a\":2}\nnope\n".repeat(1000);
        let z = Bytes::from(zstd::bulk::compress(&text, 1).unwrap());
        for _ in 0..2 {
            // Twice: the second call reuses the thread's buffer and context.
            let (d, len) = sink_count(Some("zstd"), z.clone(), 1 << 20).unwrap();
            assert_eq!((d.parsed, d.errors, len), (3000, 1000, text.len()));
        }
        // A frame without its size (streamed) takes the general path.
        let streamed = zstd::stream::encode_all(&text[..], 1).unwrap();
        let (d, _) = sink_count(Some("ZSTD"), Bytes::from(streamed), 1 << 20).unwrap();
        assert_eq!(d.parsed, 3000);
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let (d, _) = sink_count(Some("gzip"), Bytes::from(gz.finish().unwrap()), 1 << 20).unwrap();
        assert_eq!(d.parsed, 3000);
        let (d, _) = sink_count(None, Bytes::from(text.clone()), 1 << 20).unwrap();
        assert_eq!(d.parsed, 3000);
        let err = sink_count(Some("zstd"), z.clone(), 1000).unwrap_err();
        assert_eq!(err.status, 413);
        let mut bad = z.to_vec();
        let n = bad.len();
        bad.truncate(n / 2);
        let err = sink_count(Some("zstd"), Bytes::from(bad), 1 << 20).unwrap_err();
        assert_eq!(err.status, 400);
    }

    #[test]
    fn blank_lines_and_crlf() {
        let body = b"{\"a\":1}\n\n{\"a\":2}\r\n{\"a\":3}\n\n  \n{\"a\":4}";
        assert_eq!(lines(body).count(), 4);
        let d = count_lines(body);
        assert_eq!((d.parsed, d.errors), (4, 0));
        let d = count_lines(b"{}\nnot json\n");
        assert_eq!((d.parsed, d.errors), (2, 1));
    }

    #[test]
    fn decompression() {
        let text = b"{\"a\":1}\n".repeat(1000);
        let z = zstd::encode_all(&text[..], 3).unwrap();
        assert_eq!(
            &decompress(Some("zstd"), Bytes::from(z.clone()), 1 << 20).unwrap()[..],
            &text[..]
        );
        assert_eq!(
            decompress(Some("zstd"), Bytes::from(z), 100)
                .unwrap_err()
                .status,
            413
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &text).unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            &decompress(Some("gzip"), Bytes::from(gz), 1 << 20).unwrap()[..],
            &text[..]
        );
        assert_eq!(
            decompress(Some("br"), Bytes::new(), 10).unwrap_err().status,
            400
        );
        assert_eq!(
            decompress(Some("zstd"), Bytes::from_static(b"nope"), 10)
                .unwrap_err()
                .status,
            400
        );
    }
}
