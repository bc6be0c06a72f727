//! `Shared`: everything the handlers share, grouped by owner. `Settings` is the configuration
//! fixed at start; `ChannelState` (the channels, their commits and the counters around them)
//! belongs to the protocol operations of this module; `ModelCell` (the catalog and insert
//! targets) to schema evolution; the authenticator, fault plan, request log, storage and SQL
//! API results are each their own module's type.

use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use tokio::sync::Notify;

use crate::base::clock::Clock;
use crate::base::error::EmulatorError;
use crate::base::faults::FaultHandle;
use crate::base::limits::Limits;
use crate::base::pending_budget::PendingBudget;
use crate::base::requests::RequestLog;
use crate::catalog::Catalog;
use crate::channels::{Channel, ChannelKey, Target};
use crate::convert::BinaryFormat;
use crate::security::auth::Authenticator;
use crate::settings::config::{DuplicateAppendPolicy, EmulatorConfig};
use crate::sql_api::ResultStore;
use crate::storage::{self, Storage};

/// The catalog and each table's insert target: replaced as a whole when a table evolves
/// (`ENABLE_SCHEMA_EVOLUTION`), so a reader always sees a table and its target agree.
pub(crate) struct Model {
    pub catalog: Catalog,
    /// By qualified table name.
    pub targets: HashMap<String, Arc<Target>>,
}

/// The configuration the handlers read, fixed at start.
pub(crate) struct Settings {
    /// Sink mode: rows are counted and dropped, nothing is stored.
    pub sink: bool,
    pub commit_delay: Duration,
    pub max_payload_bytes: usize,
    pub max_uncompressed_bytes: usize,
    /// Most rows one append may carry (`--max-rows-per-request`).
    pub max_rows_per_request: usize,
    /// Longest time a request body may take to arrive (`--body-timeout`).
    pub body_read_timeout: Duration,
    pub duplicate_append: DuplicateAppendPolicy,
    pub strict_offsets: bool,
    /// `--classic-channel`: classic channels' committed offsets.
    pub classic_channels: Vec<crate::ClassicChannel>,
    pub role_grants: Vec<(String, String)>,
    pub limits: Limits,
    /// How BINARY columns read JSON strings.
    pub binary_format: BinaryFormat,
    /// The session time zone of conversions (`--timezone`).
    pub timezone: chrono_tz::Tz,
    pub ingest_host: Option<String>,
    /// When the emulator started (ms since the Unix epoch, by its clock).
    pub started_ms: i64,
}

/// The catalog and insert targets as one value, replaced whole when a table evolves.
pub(super) struct ModelCell {
    current: RwLock<Arc<Model>>,
    /// Held while a table evolves: two appends that bring the same new field add it once.
    pub(super) evolve_lock: tokio::sync::Mutex<()>,
}

impl ModelCell {
    /// Replaces the model (schema evolution, under `evolve_lock`).
    pub(super) fn replace(&self, model: Arc<Model>) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = model;
    }
}

/// The channels and what goes with committing their rows: owned by the protocol operations
/// (`service`), read elsewhere through `Shared`'s methods.
pub(super) struct ChannelState {
    pub(super) channels: Mutex<HashMap<ChannelKey, Channel>>,
    /// Held while a commit runs, and by opens and drops, which change what it commits.
    pub(super) commit_lock: tokio::sync::Mutex<()>,
    /// Wakes the commit task early (an append that asks for an immediate commit).
    pub(super) commit_notify: Notify,
    /// Rows stored per qualified table name.
    pub(super) table_rows: Mutex<HashMap<String, u64>>,
    /// The latest channel creation time handed out (ms): strictly increasing.
    pub(super) last_created_ms: AtomicI64,
    /// Fenced appends of every channel since the start, dropped channels' included (`GET /`).
    pub(super) fenced_appends: AtomicU64,
    /// Default pipes created so far: a table's `<TABLE>-STREAMING` exists from its first
    /// successful pipe-info, open or append (docs/protocol-types-and-sql.md "Table features").
    pub(super) default_pipes: Mutex<BTreeSet<(String, String, String)>>,
    /// Memory held by appends being decoded and pending batches (`--max-pending-bytes`).
    pub(super) pending_budget: Arc<PendingBudget>,
    /// Turns to decode an append (`--max-concurrent-decodes`).
    pub(super) decode_permits: tokio::sync::Semaphore,
}

/// What sink mode counted and dropped.
#[derive(Default)]
pub(super) struct SinkCounters {
    pub(super) rows: AtomicU64,
    pub(super) bytes: AtomicU64,
}

/// Everything the handlers share.
pub(crate) struct Shared {
    pub settings: Settings,
    /// The emulator's wall clock (tests advance it).
    pub clock: Clock,
    pub auth: Authenticator,
    pub faults: FaultHandle,
    pub requests: RequestLog,
    /// SQLite; `None` in sink mode.
    pub storage: Option<Storage>,
    /// SQL API statements running or with partitions to fetch.
    pub sql_results: ResultStore,
    pub(super) model: ModelCell,
    pub(super) state: ChannelState,
    pub(super) sink_counts: SinkCounters,
    /// The stage of the official SDK's file mode.
    pub stage: crate::stage::Stage,
    /// One notice per statement of the configured DDL scripts the emulator does not model
    /// and ignored (`DDL script 2: ignored: CREATE OR REPLACE VIEW …`), each logged at start.
    pub ddl_notes: Vec<String>,
}

impl Shared {
    /// The memory budget of pending rows and request bodies (`--max-pending-bytes`).
    pub(crate) fn pending_budget(
        &self,
    ) -> &std::sync::Arc<crate::base::pending_budget::PendingBudget> {
        &self.state.pending_budget
    }

    /// Builds the shared state: storage, catalog (stored DDL first, then the configured DDL),
    /// SQLite tables and stored channels.
    pub(crate) async fn build(config: &EmulatorConfig) -> Result<Self, EmulatorError> {
        let storage = open_storage(config)?;
        let (catalog, default_pipes, ddl_notes) = load_catalog(config, storage.as_ref()).await?;
        if config.limits == Limits::Snowflake {
            check_pipes_per_table(&catalog, &default_pipes)?;
        }
        let (targets, channels, table_rows) =
            prepare_tables(config, &catalog, storage.as_ref()).await?;
        let auth = authenticator(config, &catalog, storage.is_some())?;
        let stage = crate::stage::Stage::new(
            crate::stage::StageSecrets::derive(auth.secret()),
            config.max_stage_bytes,
            config.max_stage_files,
        );
        Ok(Self {
            settings: Settings::of(config),
            clock: config.clock.clone(),
            auth,
            faults: FaultHandle::new(config.faults.clone(), config.seed),
            requests: RequestLog::new(
                config.request_log_capacity,
                config.request_log_max_bytes,
                config.request_log.as_deref(),
            )?,
            storage,
            sql_results: ResultStore::new(config.sql_partition_rows, config.sql_async_after)
                .with_running_bound(config.sql_max_running, config.sql_queue_wait)
                .with_statement_limit(config.sql_statement_timeout),
            model: ModelCell {
                current: RwLock::new(Arc::new(Model { catalog, targets })),
                evolve_lock: tokio::sync::Mutex::new(()),
            },
            state: ChannelState {
                channels: Mutex::new(channels),
                commit_lock: tokio::sync::Mutex::new(()),
                commit_notify: Notify::new(),
                table_rows: Mutex::new(table_rows),
                last_created_ms: AtomicI64::new(0),
                fenced_appends: AtomicU64::new(0),
                default_pipes: Mutex::new(default_pipes),
                pending_budget: PendingBudget::new(config.max_pending_bytes),
                decode_permits: tokio::sync::Semaphore::new(config.max_concurrent_decodes.max(1)),
            },
            sink_counts: SinkCounters::default(),
            stage,
            ddl_notes,
        })
    }

    /// The catalog and the tables' targets as they are now (a table with
    /// `ENABLE_SCHEMA_EVOLUTION` may gain columns later).
    pub(crate) fn model(&self) -> Arc<Model> {
        self.model
            .current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The channels, locked.
    pub(crate) fn channels(&self) -> MutexGuard<'_, HashMap<ChannelKey, Channel>> {
        self.state
            .channels
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Fenced appends since the start, dropped channels' included.
    pub(crate) fn fenced_appends(&self) -> u64 {
        self.state.fenced_appends.load(Ordering::Relaxed)
    }

    /// Rows stored so far, by qualified table name.
    pub(crate) fn table_rows(&self) -> HashMap<String, u64> {
        self.state
            .table_rows
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Rows sink mode counted and dropped.
    pub(crate) fn sink_rows(&self) -> u64 {
        self.sink_counts.rows.load(Ordering::Relaxed)
    }

    /// Resolves when an append asks the commit task to commit now.
    pub(crate) fn commit_wanted(&self) -> tokio::sync::futures::Notified<'_> {
        self.state.commit_notify.notified()
    }
}

impl Settings {
    /// The settings of `config`, the start time read from its clock now.
    fn of(config: &EmulatorConfig) -> Self {
        Settings {
            sink: config.sink,
            commit_delay: config.commit_delay,
            max_payload_bytes: config.max_payload_bytes,
            max_uncompressed_bytes: config.max_uncompressed_bytes,
            max_rows_per_request: config.max_rows_per_request,
            body_read_timeout: config.body_read_timeout,
            duplicate_append: config.duplicate_append,
            strict_offsets: config.strict_offsets,
            classic_channels: config.classic_channels.clone(),
            role_grants: config.role_grants.clone(),
            limits: config.limits,
            binary_format: config.binary_format,
            timezone: config.timezone,
            ingest_host: config.ingest_host.clone(),
            started_ms: config.clock.now_ms(),
        }
    }
}

/// Each table's insert target, by qualified name.
type Targets = HashMap<String, Arc<Target>>;

/// Opens SQLite (none in sink mode), making the data directory private first.
fn open_storage(config: &EmulatorConfig) -> Result<Option<Storage>, EmulatorError> {
    if config.sink {
        return Ok(None);
    }
    // Rows are nobody else's business: the data directory is 0700 (an existing one is
    // tightened), a new database 0600 (SQLite gives its -wal and -shm files the database's
    // mode).
    if let Some(dir) = &config.data_dir {
        crate::base::private_fs::make_private_data_dir(dir)?;
        crate::base::private_fs::precreate_private_file(&dir.join(storage::DB_FILE))?;
    }
    Ok(Some(Storage::open(config.data_dir.as_deref())?))
}

/// The catalog (the stored DDL, then the configured scripts not stored yet), the default
/// pipes an earlier run created, and a notice per configured statement the emulator ignored
/// (each logged as a warning: a pasted script whose view or grant did nothing says so).
async fn load_catalog(
    config: &EmulatorConfig,
    storage: Option<&Storage>,
) -> Result<(Catalog, BTreeSet<(String, String, String)>, Vec<String>), EmulatorError> {
    let mut catalog = Catalog::new();
    let mut stored_ddl = Vec::new();
    let mut default_pipes = BTreeSet::new();
    if let Some(st) = storage {
        default_pipes.extend(
            st.run(|c| storage::created_default_pipes(c))
                .await?
                .map_err(|e| {
                    EmulatorError::storage("").with_source(crate::base::error::sqlite_cause(&e))
                })?,
        );
        stored_ddl = st.run(|c| storage::stored_ddl(c)).await??;
        for sql in &stored_ddl {
            // The message holds the whole cause: a source as well would print it twice.
            catalog
                .apply_sql(sql)
                .map_err(|e| EmulatorError::catalog(format!("stored DDL: {e}")))?;
        }
    }
    // Scripts already stored were applied above; applying them twice would fail on plain
    // CREATE statements.
    let mut notes = Vec::new();
    for (i, sql) in config.ddl.iter().enumerate() {
        if stored_ddl.contains(sql) {
            continue;
        }
        for note in catalog
            .apply_sql(sql)
            .map_err(|e| EmulatorError::catalog(format!("{}: {e}", config.ddl_source(i))))?
        {
            let note = format!(
                "{}: {note} (not modelled by the emulator)",
                config.ddl_source(i)
            );
            tracing::warn!("{note}");
            notes.push(note);
        }
    }
    Ok((catalog, default_pipes, notes))
}

/// `--limits snowflake`: no table with more than [`crate::limits::PIPES_PER_TABLE`] pipes.
fn check_pipes_per_table(
    catalog: &Catalog,
    default_pipes: &BTreeSet<(String, String, String)>,
) -> Result<(), EmulatorError> {
    // A default pipe counts once it exists: from its first use (docs/protocol-types-and-sql.md "Table
    // features"), which an earlier run recorded.
    let mut per_table: HashMap<String, (usize, bool)> = HashMap::new();
    for p in catalog.pipes() {
        let created =
            default_pipes.contains(&(p.database.clone(), p.schema.clone(), p.name.clone()));
        if !p.is_default || created {
            let entry = per_table.entry(p.table_qualified.clone()).or_default();
            entry.0 += 1;
            entry.1 |= p.is_default;
        }
    }
    if let Some((table, (n, with_default))) = per_table
        .into_iter()
        .find(|(_, (n, _))| *n > crate::base::limits::PIPES_PER_TABLE)
    {
        let default = if with_default {
            ", its default pipe included (created by an earlier run's first use)"
        } else {
            ""
        };
        return Err(EmulatorError::catalog(format!(
            "table {table} has {n} pipes{default}; Snowflake allows {} per table \
             (--limits snowflake): drop pipes from the DDL",
            crate::base::limits::PIPES_PER_TABLE
        )));
    }
    Ok(())
}

/// Each table's insert target; with storage, the configured DDL stored, the SQLite tables
/// created or given their new columns, their row counts and the stored channels read.
async fn prepare_tables(
    config: &EmulatorConfig,
    catalog: &Catalog,
    storage: Option<&Storage>,
) -> Result<(Targets, HashMap<ChannelKey, Channel>, HashMap<String, u64>), EmulatorError> {
    let mut targets = HashMap::new();
    let mut creates = Vec::new();
    let mut columns = Vec::new();
    for t in catalog.tables() {
        targets.insert(t.qualified_name(), Arc::new(Target::of(t)));
        creates.push((t.qualified_name(), crate::convert::sqlite_create_table(t)));
        // Columns DDL added to a table an earlier run stored (`ALTER TABLE … ADD COLUMN`):
        // `CREATE TABLE IF NOT EXISTS` keeps the old table.
        columns.push(storage::declared_columns(t));
        if t.error_logging {
            creates.push((t.error_table_name(), storage::error_table_create(t)));
        }
    }
    let Some(st) = storage else {
        return Ok((targets, HashMap::new(), HashMap::new()));
    };
    let ddl = config.ddl.clone();
    let (records, table_rows) = st
        .run(move |c| -> Result<_, rusqlite::Error> {
            let tx = c.transaction()?;
            for sql in &ddl {
                storage::store_ddl(&tx, sql)?;
            }
            let mut counts = HashMap::new();
            for (name, create) in &creates {
                tx.execute_batch(create)?;
                if name.starts_with("ERROR_TABLE(") {
                    storage::upgrade_error_table(&tx, name)?;
                }
                let n: i64 = tx.query_row(
                    &format!("SELECT COUNT(*) FROM \"{}\"", name.replace('"', "\"\"")),
                    [],
                    |r| r.get(0),
                )?;
                counts.insert(name.clone(), n as u64);
            }
            for (table, columns) in &columns {
                storage::add_missing_columns(&tx, table, columns)?;
                storage::retype_columns(&tx, table, columns)?;
            }
            tx.commit()?;
            let records = storage::load_channels(c).map_err(|e| {
                rusqlite::Error::InvalidParameterName(crate::base::error::chain(&e))
            })?;
            Ok((records, counts))
        })
        .await?
        .map_err(|e| {
            EmulatorError::storage("").with_source(crate::base::error::sqlite_cause(&e))
        })?;
    let mut channels = HashMap::new();
    for r in &records {
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
    Ok((targets, channels, table_rows))
}

/// The authenticator: the configured keys and tokens, the keys the DDL registered, and (with a
/// stored data directory) the scoped-token secret kept across restarts.
fn authenticator(
    config: &EmulatorConfig,
    catalog: &Catalog,
    stored: bool,
) -> Result<Authenticator, EmulatorError> {
    let mut auth = Authenticator::new(
        &config.public_keys,
        &config.user_public_keys,
        config.accept_any_key,
        config.personal_access_tokens.clone(),
        config.scoped_token_ttl,
    )
    .map_err(|e| EmulatorError::config("").with_source(e))?;
    // Keys the DDL registered (`ALTER USER … SET RSA_PUBLIC_KEY`), as Snowflake's own key-pair
    // setup does.
    for k in catalog.user_keys() {
        // The hint follows the cause: the message holds both, and no source repeats it.
        auth.register_for_user(&k.user, &k.pem).map_err(|e| {
            EmulatorError::catalog(format!(
                "ALTER USER {} SET RSA_PUBLIC_KEY: {e}; give the base64 body of an RSA public \
                 key (the lines between BEGIN and END PUBLIC KEY)",
                k.user
            ))
        })?;
    }
    if let (true, Some(dir)) = (stored, config.data_dir.as_deref()) {
        // Keep the scoped-token secret across restarts, in a 0600 file outside the database
        // the SQL API reads: tokens handed out stay valid.
        auth.set_secret(crate::security::token_secret::load_or_create(dir)?);
    }
    auth.set_clock(config.clock.clone());
    Ok(auth)
}
