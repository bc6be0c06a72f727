//! `SYSTEM$MIGRATE_SSV1_CHANNEL_OFFSET` (`sql_api/migrate.rs`): copies a seeded classic
//! channel's committed offset (`crate::classic`) into a high-performance channel that has
//! none, creating the channel record as if opened and committed (docs/protocol-types-and-sql.md "Classic
//! channel offset migration").

use serde_json::{json, Value};

use crate::channels::Channel;
use crate::sql_api::{identifier, Migrate};

use super::*;

impl Shared {
    /// Runs the call and returns the function's JSON: `{"ssv1_channel_found": false,
    /// "migrated_offset": null}` for an unknown classic channel, else `true` and its offset
    /// (`null` when it committed nothing), now the channel's committed offset token.
    ///
    /// # Errors
    /// 422 `002003` for an unknown table or pipe, or a pipe that loads another table; 422
    /// `002003` when the channel already has a committed offset token (the function only
    /// fills a channel without one); 500 when the channel cannot be stored.
    pub(crate) async fn migrate_classic(&self, m: &Migrate) -> Result<Value, ApiError> {
        let unknown = |what: &str, name: &str| {
            ApiError::new(
                422,
                "002003",
                format!(
                    "SQL compilation error:\n{what} '{}.{}.{name}' does not exist or not \
                     authorized.",
                    m.database, m.schema
                ),
            )
            .with_sql_state("02000")
        };
        let (table, qualified) = {
            let model = self.model();
            let t = model
                .catalog
                .table_exact(&m.database, &m.schema, &m.table)
                .ok_or_else(|| unknown("Table", &m.table))?;
            (t.name.clone(), t.qualified_name())
        };
        let pipe = identifier(&m.pipe);
        let (key, target) = self
            .resolve(&m.database, &m.schema, &pipe, &m.channel)
            .map_err(|_| unknown("Pipe", &pipe))?;
        if target.qualified != qualified {
            return Err(ApiError::new(
                422,
                "002003",
                format!(
                    "pipe {} loads {}, not table {qualified}; name the pipe of the table",
                    key.pipe, target.qualified
                ),
            )
            .with_sql_state("02000"));
        }
        let found = self
            .settings
            .classic_channels
            .iter()
            .find(|c| c.matches(&m.database, &m.schema, &table, &m.classic));
        let Some(classic) = found else {
            return Ok(json!({"ssv1_channel_found": false, "migrated_offset": null}));
        };
        let Some(offset) = classic.offset else {
            return Ok(json!({"ssv1_channel_found": true, "migrated_offset": null}));
        };
        self.admit_default_pipe(&key)?;
        let commit = self.state.commit_lock.lock().await;
        let record = {
            let mut chans = self.channels();
            let created = if chans.contains_key(&key) {
                None
            } else {
                self.admit_new_channel(&chans, &key)?;
                Some(self.next_created_ms())
            };
            let ch = chans
                .entry(key.clone())
                .or_insert_with(|| Channel::new(created.unwrap_or_default()));
            if let Some(t) = &ch.committed {
                return Err(ApiError::new(
                    422,
                    "002003",
                    format!(
                        "channel {} already has committed offset token {t}; the migration only \
                         fills a channel with none (drop the channel to migrate again)",
                        key.channel
                    ),
                ));
            }
            ch.committed = Some(offset.to_string());
            ch.record(&key)
        };
        self.persist_channel(&key, Some(record)).await?;
        drop(commit);
        self.default_pipe_used(&key).await;
        tracing::info!(channel = %key.channel, classic = %classic.channel, offset, "migrated classic channel offset");
        Ok(json!({"ssv1_channel_found": true, "migrated_offset": offset}))
    }
}
