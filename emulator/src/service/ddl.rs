//! Catalog DDL at run time, from the SQL API (`sql_api/ddl.rs`): the statement is applied to
//! a copy of the catalog, then the SQLite tables it creates or widens and the script that
//! replays it at start (`_emulator_ddl`) are written in one transaction on the writer
//! thread, then the catalog and the changed tables' insert targets are replaced together, as
//! schema evolution does (`evolve.rs`). One change of the model at a time (`evolve_lock`).
//! A `DROP` (or `CREATE OR REPLACE` of an existing object) also removes the stored rows and
//! channels that go with its object (`dropped.rs`), under the commit lock, in the same
//! transaction.

use crate::sql_api::{Applied, Ddl};

use super::*;

impl Shared {
    /// Runs `ddl` and returns the status to answer (`Table T successfully created.`).
    ///
    /// # Errors
    /// The statement's refusal (422, Snowflake's codes; see [`Ddl::apply`]); 500 when the
    /// tables or the script cannot be stored (nothing changed then).
    pub(crate) async fn run_ddl(&self, ddl: &Ddl) -> Result<String, ApiError> {
        let _changing = self.model.evolve_lock.lock().await;
        let model = self.model();
        let removal = dropped::Removal::of(&model.catalog, &ddl.removes(&model.catalog));
        let (catalog, status) = match ddl.apply(&model.catalog)? {
            Applied::Unchanged(status) => return Ok(status),
            Applied::Changed(catalog, status) => (catalog, status),
        };
        let changed: Vec<&crate::catalog::Table> = catalog
            .tables()
            .filter(|t| {
                removal.has_table(&t.qualified_name())
                    || model
                        .catalog
                        .table_exact(&t.database, &t.schema, &t.name)
                        .is_none_or(|old| old != *t)
            })
            .collect();
        // No commit of a channel the statement removes runs while it is removed.
        let _commit = self.state.commit_lock.lock().await;
        if let Some(st) = &self.storage {
            let (tables, pipes) = (removal.tables.clone(), removal.pipes.clone());
            let mut creates = Vec::new();
            let mut columns = Vec::new();
            for t in &changed {
                creates.push(crate::convert::sqlite_create_table(t));
                if t.error_logging {
                    creates.push(storage::error_table_create(t));
                }
                columns.push(storage::declared_columns(t));
            }
            // `_emulator_ddl` keeps one copy of a text: a statement sent again later (`SET NOT
            // NULL` after a `DROP NOT NULL` after a `SET NOT NULL`) must replay in its turn too.
            let script = format!(
                "-- SQL API statement {}\n{}",
                uuid::Uuid::new_v4(),
                ddl.script
            );
            st.run(move |c| -> rusqlite::Result<()> {
                let tx = c.transaction()?;
                storage::dropped::remove(&tx, &tables, &pipes)?;
                for create in &creates {
                    tx.execute_batch(create)?;
                }
                for (table, columns) in &columns {
                    storage::add_missing_columns(&tx, table, columns)?;
                    // A column widened (`ALTER COLUMN … SET DATA TYPE`) is declared again.
                    storage::retype_columns(&tx, table, columns)?;
                }
                storage::store_ddl(&tx, &script)?;
                tx.commit()
            })
            .await
            .map_err(super::storage_error)?
            .map_err(super::storage_error)?;
        }
        let mut targets = model.targets.clone();
        for (table, _) in &removal.tables {
            targets.remove(table);
        }
        self.forget(&removal);
        for t in &changed {
            targets.insert(t.qualified_name(), Arc::new(Target::of(t)));
        }
        // The statement's start and its length: the log is not a second copy of the store.
        let head: String = ddl.script.chars().take(200).collect();
        tracing::info!(object = %ddl.qualified(), script = %head.escape_debug(),
                       bytes = ddl.script.len(), "SQL API DDL");
        self.model.replace(Arc::new(Model { catalog, targets }));
        Ok(status)
    }
}
