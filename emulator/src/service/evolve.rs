//! Schema evolution at run time (`ENABLE_SCHEMA_EVOLUTION = TRUE`; docs/protocol-types-and-sql.md "Table
//! features"): a table gains the columns an append's rows need before they are converted.
//!
//! One evolution at a time (`evolve_lock`): each re-checks what the table still lacks, so two
//! appends that bring the same new field add its column once. The SQLite `ALTER TABLE`s and
//! the catalog DDL that replays them at start (`_emulator_ddl`) are written in one
//! transaction on the writer thread, before any row that needs the columns is committed (the
//! rows are converted and queued only after this returns); then the catalog and the table's
//! insert target are replaced together.

use crate::convert::evolution::Evolution;

use super::*;

impl Shared {
    /// Evolves the table `qualified` (`DB.SCHEMA.TABLE`) as `evolution` says, matching names
    /// as the pipe does (`ignore_case`); nothing when another append already did.
    ///
    /// # Errors
    ///
    /// 400 `ERR_SCHEMA_EVOLUTION_FAILED` (not retryable) when the catalog refuses the DDL;
    /// 500 `ERR_GENERAL_EXCEPTION_RETRY_REQUEST` when it cannot be stored.
    pub(super) async fn evolve(
        &self,
        qualified: &str,
        ignore_case: bool,
        evolution: &Evolution,
    ) -> Result<(), ApiError> {
        let _evolving = self.model.evolve_lock.lock().await;
        let model = self.model();
        let Some(table) = model
            .catalog
            .tables()
            .find(|t| t.qualified_name() == qualified)
        else {
            return Ok(());
        };
        let evolution = evolution.still_needed(table, ignore_case);
        if evolution.is_empty() {
            return Ok(());
        }
        let failed = |e: &dyn std::fmt::Display| {
            ApiError::new(
                500,
                "ERR_GENERAL_EXCEPTION_RETRY_REQUEST",
                format!("schema evolution of {qualified}: {e}"),
            )
        };
        let ddl = evolution.ddl(table);
        let mut catalog = model.catalog.clone();
        // The same rows would fail the same way on every retry: not retryable.
        catalog.apply_sql(&ddl).map_err(|e| {
            ApiError::new(
                400,
                "ERR_SCHEMA_EVOLUTION_FAILED",
                format!("schema evolution of {qualified}: {e}; rename or nest the new fields"),
            )
        })?;
        if let Some(st) = &self.storage {
            let statements = evolution.sqlite(table);
            let stored_ddl = ddl.clone();
            st.run(move |c| -> rusqlite::Result<()> {
                let tx = c.transaction()?;
                for statement in &statements {
                    tx.execute_batch(statement)?;
                }
                storage::store_ddl(&tx, &stored_ddl)?;
                tx.commit()
            })
            .await
            .map_err(|e| failed(&e))?
            .map_err(|e| failed(&e))?;
        }
        let evolved = catalog
            .tables()
            .find(|t| t.qualified_name() == qualified)
            .expect("the DDL altered the table, not dropped it");
        let mut targets = model.targets.clone();
        targets.insert(qualified.to_owned(), Arc::new(Target::of(evolved)));
        tracing::info!(table = %qualified, %ddl, "schema evolution");
        self.model.replace(Arc::new(Model { catalog, targets }));
        Ok(())
    }
}
