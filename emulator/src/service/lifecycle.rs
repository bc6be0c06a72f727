//! Channel lifecycle and lookups: resolving a pipe and a channel name, roles, default pipes,
//! opening, dropping and the bulk status of channels.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use serde_json::{json, Value};

use crate::base::api_error::ApiError;
use crate::channels::{Channel, ChannelKey, Target, ELASTIC, MAX_CHANNEL_NAME_CHARS, MUST_REOPEN};
use crate::storage;

use super::{no_channel, storage_error, Shared};

impl Shared {
    /// Whether a channel `key` may be created next to `chans` (`--limits snowflake`: at most
    /// [`crate::limits::CHANNELS_PER_PIPE`] named channels per pipe). Every way a channel
    /// comes to be (an open, `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET`) asks here.
    ///
    /// A new channel's name has at most [`MAX_CHANNEL_NAME_CHARS`] characters, whatever the
    /// limits (names are held in memory, stored, and shown by `GET /` and the console).
    ///
    /// # Errors
    /// 400 `ERR_CHANNEL_NAME_TOO_LONG` for a longer name (not echoed: it may be 30 KB);
    /// 400 `ERR_TOO_MANY_CHANNELS` when the pipe has as many as Snowflake allows.
    pub(crate) fn admit_new_channel(
        &self,
        chans: &HashMap<ChannelKey, Channel>,
        key: &ChannelKey,
    ) -> Result<(), ApiError> {
        let chars = key.channel.chars().count();
        if chars > MAX_CHANNEL_NAME_CHARS {
            return Err(ApiError::new(
                400,
                "ERR_CHANNEL_NAME_TOO_LONG",
                format!(
                    "the channel name has {chars} characters; a channel name has at most \
                     {MAX_CHANNEL_NAME_CHARS} (Snowflake's identifier limit): use a shorter name"
                ),
            ));
        }
        if self.settings.limits != crate::base::limits::Limits::Snowflake {
            return Ok(());
        }
        let open = chans
            .keys()
            .filter(|k| {
                k.pipe == key.pipe
                    && k.schema == key.schema
                    && k.database == key.database
                    && k.channel != ELASTIC
            })
            .count();
        if open >= crate::base::limits::CHANNELS_PER_PIPE {
            return Err(ApiError::new(
                400,
                "ERR_TOO_MANY_CHANNELS",
                format!(
                    "pipe {} already has {open} channels, the most Snowflake allows (--limits snowflake); drop unused channels",
                    key.pipe
                ),
            ));
        }
        Ok(())
    }

    /// `principal` with its user's default role (DDL `ALTER USER … SET DEFAULT_ROLE`) when
    /// its token names no role, as Snowflake uses the user's default role for a session that
    /// asks for none (docs/protocol-types-and-sql.md "Table features").
    pub(crate) fn with_default_role(
        &self,
        mut principal: crate::security::auth::Principal,
    ) -> crate::security::auth::Principal {
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
        if crate::security::auth::role_granted(&self.settings.role_grants, role, db) {
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

    /// Whether the call may create the default pipe `key` names (if it is one not created
    /// yet): with `--limits snowflake`, a table whose declared pipes already reach
    /// [`PIPES_PER_TABLE`](crate::limits::PIPES_PER_TABLE) cannot get its default pipe, which
    /// counts against the limit once it exists (docs/protocol.md "Limits"). Called before a
    /// pipe-info, open or append does anything.
    ///
    /// # Errors
    /// 400 `ERR_TOO_MANY_PIPES` naming the table, its pipe count and the fix.
    pub(crate) fn admit_default_pipe(&self, key: &ChannelKey) -> Result<(), ApiError> {
        if self.settings.limits != crate::base::limits::Limits::Snowflake {
            return Ok(());
        }
        let model = self.model();
        let catalog = &model.catalog;
        if catalog
            .pipe_definition(&key.database, &key.schema, &key.pipe)
            .is_some()
            || self
                .state
                .default_pipes
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .contains(&(key.database.clone(), key.schema.clone(), key.pipe.clone()))
        {
            return Ok(());
        }
        let Ok(resolved) = catalog.resolve_pipe(&key.database, &key.schema, &key.pipe) else {
            return Ok(());
        };
        let table = resolved.table.qualified_name();
        let declared = catalog
            .pipes()
            .iter()
            .filter(|p| !p.is_default && p.table_qualified == table)
            .count();
        if declared < crate::base::limits::PIPES_PER_TABLE {
            return Ok(());
        }
        Err(ApiError::new(
            400,
            "ERR_TOO_MANY_PIPES",
            format!(
                "table {table} already has {declared} pipes, the most Snowflake allows \
                 (--limits snowflake), so its default pipe {} cannot be created; stream \
                 through one of its declared pipes or declare fewer",
                key.pipe
            ),
        ))
    }

    /// Creates the default pipe `key` names, if it is one and was not created yet: called after
    /// a successful pipe-info, open or append (docs/protocol-types-and-sql.md "Table features").
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
            .state
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
                .state
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
        // A name no new channel can have is only ever matched exactly (and an open refuses
        // it): no per-channel work for a 30 KB name.
        if chans.contains_key(key) || name.chars().count() > MAX_CHANNEL_NAME_CHARS {
            return name.clone();
        }
        let lower = name.to_lowercase();
        let mut matches = chans.keys().filter(|k| {
            k.pipe == key.pipe
                && k.schema == key.schema
                && k.database == key.database
                && k.channel.to_lowercase() == lower
        });
        match (matches.next(), matches.next()) {
            (Some(only), None) => only.channel.clone(),
            _ => name.clone(),
        }
    }

    pub(super) async fn persist_channel(
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

    /// A new channel's creation time: strictly increasing, so the tokens of a dropped channel
    /// with the same name stay stale after it is recreated.
    pub(super) fn next_created_ms(&self) -> i64 {
        let now = self.clock.now_ms();
        let prev = self.state.last_created_ms.fetch_max(now, Ordering::SeqCst);
        if prev >= now {
            self.state.last_created_ms.fetch_add(1, Ordering::SeqCst) + 1
        } else {
            now
        }
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
        let _commit = self.state.commit_lock.lock().await;
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
                    self.admit_new_channel(&chans, &key)?;
                    // Strictly increasing, so the tokens of a dropped channel with the same
                    // name stay stale after it is recreated.
                    chans.insert(key.clone(), Channel::new(self.next_created_ms()));
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
        let _commit = self.state.commit_lock.lock().await;
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
                    .or_insert_with(|| Channel::new(self.settings.started_ms));
            }
            if let Some(ch) = chans.get(&key) {
                out.insert(name.clone(), ch.status_json(&key));
            }
        }
        Ok(json!({ "channel_statuses": out }))
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
}
