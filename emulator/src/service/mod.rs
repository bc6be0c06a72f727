//! The emulator's shared state and protocol operations, independent of HTTP.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bytes::Bytes;
use serde_json::{json, Value};
use tokio::sync::Notify;

use crate::auth::Authenticator;
use crate::catalog::Catalog;
use crate::channels::{self, Channel, ChannelKey, Target, ELASTIC};
use crate::config::{DuplicateAppendPolicy, EmulatorConfig};
use crate::faults::FaultHandle;
use crate::requests::RequestLog;
use crate::storage::{self, Storage};
use crate::EmulatorError;

mod append;
mod body;
mod evolve;

use body::{check_row_count, sink_count};
pub(crate) use body::{decompress, lines, Decoded};

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

/// The catalog and each table's insert target: replaced as a whole when a table evolves
/// (`ENABLE_SCHEMA_EVOLUTION`), so a reader always sees a table and its target agree.
pub(crate) struct Model {
    pub catalog: Catalog,
    /// By qualified table name.
    pub targets: HashMap<String, Arc<Target>>,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    model: std::sync::RwLock<Arc<Model>>,
    /// Held while a table evolves: two appends that bring the same new field add it once.
    evolve_lock: tokio::sync::Mutex<()>,
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
    /// Most rows one append may carry (`--max-rows-per-request`).
    pub max_rows_per_request: usize,
    /// Memory held by pending batches (`--max-pending-bytes`).
    pub pending_budget: Arc<crate::pending_budget::PendingBudget>,
    /// Longest time a request body may take to arrive (`--body-timeout`).
    pub body_read_timeout: Duration,
    pub duplicate_append: DuplicateAppendPolicy,
    pub strict_offsets: bool,
    pub role_grants: Vec<(String, String)>,
    pub limits: crate::Limits,
    /// How BINARY columns read JSON strings.
    pub binary_format: crate::convert::BinaryFormat,
    pub ingest_host: Option<String>,
    pub sink_rows: AtomicU64,
    pub sink_bytes: AtomicU64,
    /// Fenced appends of every channel since the start, dropped channels' included (`GET /`).
    pub fenced_appends: AtomicU64,
    pub started_ms: i64,
    pub last_created_ms: std::sync::atomic::AtomicI64,
    /// The browser console's cached table previews.
    pub console: crate::http::ConsoleCache,
    /// SQL API statements running or with partitions to fetch.
    pub sql_results: crate::sql_api::ResultStore,
    /// Default pipes created so far: a table's `<TABLE>-STREAMING` exists from its first
    /// successful pipe-info, open or append (docs/protocol.md "Table features").
    pub default_pipes: Mutex<std::collections::BTreeSet<(String, String, String)>>,
}

impl Shared {
    /// Builds the shared state: storage, catalog (stored DDL first, then the configured DDL),
    /// SQLite tables and stored channels.
    pub(crate) async fn build(config: &EmulatorConfig) -> Result<Self, EmulatorError> {
        let storage = if config.sink {
            None
        } else {
            // Rows are nobody else's business: a new data directory is 0700, a new database
            // 0600 (SQLite gives its -wal and -shm files the database's mode).
            if let Some(dir) = &config.data_dir {
                crate::private_fs::create_private_dir(dir)?;
                crate::private_fs::precreate_private_file(&dir.join(storage::DB_FILE))?;
            }
            Some(Storage::open(config.data_dir.as_deref())?)
        };
        let mut catalog = Catalog::new();
        let mut stored_channels = Vec::new();
        let mut table_rows = HashMap::new();
        let mut stored_ddl = Vec::new();
        let mut default_pipes = std::collections::BTreeSet::new();
        if let Some(st) = &storage {
            default_pipes.extend(
                st.run(|c| storage::created_default_pipes(c))
                    .await?
                    .map_err(|e| EmulatorError::storage(e.to_string()).with_source(e))?,
            );
            stored_ddl = st.run(|c| storage::stored_ddl(c)).await??;
            for sql in &stored_ddl {
                catalog.apply_sql(sql).map_err(|e| {
                    EmulatorError::catalog(format!("stored DDL: {e}")).with_source(e)
                })?;
            }
        }
        // Scripts already stored were applied above; applying them twice would fail on plain
        // CREATE statements.
        for sql in config.ddl.iter().filter(|s| !stored_ddl.contains(s)) {
            catalog
                .apply_sql(sql)
                .map_err(|e| EmulatorError::catalog(e.to_string()).with_source(e))?;
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
                return Err(EmulatorError::catalog(format!(
                    "table {table} has {n} pipes (its default pipe included); Snowflake allows {} per table (--limits snowflake)",
                    crate::limits::PIPES_PER_TABLE
                )));
            }
        }
        let mut targets = HashMap::new();
        let mut creates = Vec::new();
        let mut columns = Vec::new();
        for t in catalog.tables() {
            targets.insert(t.qualified_name(), Arc::new(Target::of(t)));
            creates.push((t.qualified_name(), crate::convert::sqlite_create_table(t)));
            // Columns DDL added to a table an earlier run stored (`ALTER TABLE … ADD COLUMN`):
            // `CREATE TABLE IF NOT EXISTS` keeps the old table.
            columns.push((
                t.qualified_name(),
                t.columns
                    .iter()
                    .map(|c| (c.name.clone(), c.ty.sql_name()))
                    .collect::<Vec<_>>(),
            ));
            if t.error_logging {
                creates.push((t.error_table_name(), storage::error_table_create(t)));
            }
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
                    for (table, columns) in &columns {
                        storage::add_missing_columns(&tx, table, columns)?;
                    }
                    tx.commit()?;
                    let records = storage::load_channels(c)
                        .map_err(|e| rusqlite::Error::InvalidParameterName(e.to_string()))?;
                    Ok((records, counts))
                })
                .await?
                .map_err(|e| EmulatorError::storage(e.to_string()).with_source(e))?;
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
        .map_err(|e| EmulatorError::config(e.to_string()).with_source(e))?;
        // Keys the DDL registered (`ALTER USER … SET RSA_PUBLIC_KEY`), as Snowflake's own
        // key-pair setup does.
        for k in catalog.user_keys() {
            auth.register_for_user(&k.user, &k.pem).map_err(|e| {
                EmulatorError::catalog(format!(
                    "ALTER USER {} SET RSA_PUBLIC_KEY: {e}; give the base64 body of an RSA \
                     public key (the lines between BEGIN and END PUBLIC KEY)",
                    k.user
                ))
                .with_source(e)
            })?;
        }
        if let (Some(_), Some(dir)) = (&storage, config.data_dir.as_deref()) {
            // Keep the scoped-token secret across restarts, in a 0600 file outside the
            // database the SQL API reads: tokens handed out stay valid.
            auth.set_secret(crate::token_secret::load_or_create(dir)?);
        }
        Ok(Self {
            model: std::sync::RwLock::new(Arc::new(Model { catalog, targets })),
            evolve_lock: tokio::sync::Mutex::new(()),
            auth,
            faults: FaultHandle::new(config.faults.clone(), config.seed),
            channels: Mutex::new(channels),
            commit_lock: tokio::sync::Mutex::new(()),
            commit_notify: Notify::new(),
            storage,
            requests: RequestLog::new(
                config.request_log_capacity,
                config.request_log_max_bytes,
                config.request_log.as_deref(),
            )?,
            table_rows: Mutex::new(table_rows),
            sink: config.sink,
            commit_delay: config.commit_delay,
            max_payload_bytes: config.max_payload_bytes,
            max_uncompressed_bytes: config.max_uncompressed_bytes,
            max_rows_per_request: config.max_rows_per_request,
            pending_budget: crate::pending_budget::PendingBudget::new(config.max_pending_bytes),
            body_read_timeout: config.body_read_timeout,
            duplicate_append: config.duplicate_append,
            strict_offsets: config.strict_offsets,
            role_grants: config.role_grants.clone(),
            limits: config.limits,
            binary_format: config.binary_format,
            ingest_host: config.ingest_host.clone(),
            sink_rows: AtomicU64::new(0),
            sink_bytes: AtomicU64::new(0),
            fenced_appends: AtomicU64::new(0),
            started_ms: now_ms(),
            last_created_ms: std::sync::atomic::AtomicI64::new(0),
            console: Default::default(),
            sql_results: crate::sql_api::ResultStore::new(
                config.sql_partition_rows,
                config.sql_async_after,
            ),
            default_pipes: Mutex::new(default_pipes),
        })
    }

    /// The catalog and the tables' targets as they are now (a table with
    /// `ENABLE_SCHEMA_EVOLUTION` may gain columns later).
    pub(crate) fn model(&self) -> Arc<Model> {
        self.model.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn channels(&self) -> MutexGuard<'_, HashMap<ChannelKey, Channel>> {
        self.channels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `principal` with its user's default role (DDL `ALTER USER … SET DEFAULT_ROLE`) when
    /// its token names no role, as Snowflake uses the user's default role for a session that
    /// asks for none (docs/protocol.md "Table features").
    pub(crate) fn with_default_role(
        &self,
        mut principal: crate::auth::Principal,
    ) -> crate::auth::Principal {
        if principal.role.is_none() {
            // ACCOUNT.USER: the account part never contains a dot.
            let user = principal
                .subject
                .split_once('.')
                .map_or(principal.subject.as_str(), |(_, u)| u);
            principal.role = self.model().catalog.default_role(user).map(str::to_owned);
        }
        principal
    }

    /// Whether `role` (`PUBLIC` when `None`) may use database `db`: always when no grants are
    /// configured; otherwise 404 `ERR_DATABASE_DOES_NOT_EXIST_OR_NOT_AUTHORIZED`, what
    /// Snowflake answers a role without privileges (docs/protocol.md "Authentication and role").
    pub(crate) fn authorize(&self, role: Option<&str>, db: &str) -> Result<(), ApiError> {
        if crate::auth::role_granted(&self.role_grants, role, db) {
            Ok(())
        } else {
            let role = role.unwrap_or("PUBLIC").trim_matches('"');
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
        let model = self.model();
        let r = model
            .catalog
            .resolve_pipe(db, schema, pipe)
            .map_err(|e| ApiError::new(e.http_status(), e.code(), e.to_string()))?;
        let target = model
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

    /// Creates the default pipe `key` names, if it is one and was not created yet: called after
    /// a successful pipe-info, open or append (docs/protocol.md "Table features").
    pub(crate) async fn default_pipe_used(&self, key: &ChannelKey) {
        if self
            .model()
            .catalog
            .pipe_definition(&key.database, &key.schema, &key.pipe)
            .is_some()
        {
            return;
        }
        let entry = (key.database.clone(), key.schema.clone(), key.pipe.clone());
        let new = self
            .default_pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(entry.clone());
        if let (true, Some(st)) = (new, &self.storage) {
            let (db, schema, pipe) = entry;
            let stored = st
                .run(move |c| storage::store_default_pipe(c, &db, &schema, &pipe))
                .await;
            let error = match stored {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(e.to_string()),
                Err(e) => Some(e.to_string()),
            };
            if let Some(error) = error {
                tracing::warn!(%error, "could not record the default pipe's creation");
            }
        }
    }

    /// Whether the pipe `p` is listed: declared pipes always, default pipes once created.
    pub(crate) fn pipe_exists(&self, p: &crate::catalog::PipeInfo) -> bool {
        !p.is_default
            || self
                .default_pipes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&(p.database.clone(), p.schema.clone(), p.name.clone()))
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
}
