//! What `DROP TABLE`/`DROP PIPE` (and `CREATE OR REPLACE` of an existing object) remove at
//! run time, besides the catalog's entry: a table's stored rows, insert target and row
//! count; the channels of a dropped pipe, and of every pipe loading into a dropped table
//! (its default pipe, which goes with it, and the pipes declared on it, whose rows can no
//! longer land). A removed channel's pending rows go with it, its committed token too: its
//! next append is answered as for a channel that does not exist (or, the pipe gone, a pipe
//! that does not exist), and a channel opened again under its name starts with no token.

use crate::catalog::Catalog;
use crate::sql_api::Removed;

use super::*;

/// The stored objects a statement removes, as the store and the channels name them.
#[derive(Debug, Default)]
pub(super) struct Removal {
    /// `(qualified name, error table name)` of each table whose rows go.
    pub(super) tables: Vec<(String, String)>,
    /// `(database, schema, pipe)` of each pipe whose channels go.
    pub(super) pipes: Vec<(String, String, String)>,
}

impl Removal {
    /// What removing `removed` from `old` takes with it.
    pub(super) fn of(old: &Catalog, removed: &[Removed]) -> Self {
        let mut out = Self::default();
        for r in removed {
            match r {
                Removed::Pipe(d, s, p) => out.pipes.push((d.clone(), s.clone(), p.clone())),
                Removed::Table(d, s, n) => {
                    let Some(table) = old.table_exact(d, s, n) else {
                        continue;
                    };
                    let qualified = table.qualified_name();
                    out.pipes
                        .push((d.clone(), s.clone(), table.default_pipe_name()));
                    for p in old.pipes() {
                        if !p.is_default && p.table_qualified == qualified {
                            out.pipes.push((p.database, p.schema, p.name));
                        }
                    }
                    out.tables.push((qualified, table.error_table_name()));
                }
            }
        }
        out
    }

    /// Whether the table `qualified` is removed (a `CREATE OR REPLACE` makes it again).
    pub(super) fn has_table(&self, qualified: &str) -> bool {
        self.tables.iter().any(|(t, _)| t == qualified)
    }
}

impl Shared {
    /// Forgets the removed channels, default pipes and row counts (the caller holds the
    /// commit lock, so no commit of a removed channel is under way, and has stored the
    /// removal).
    pub(super) fn forget(&self, removal: &Removal) {
        let gone = |d: &str, s: &str, p: &str| {
            removal
                .pipes
                .iter()
                .any(|(rd, rs, rp)| rd == d && rs == s && rp == p)
        };
        self.channels()
            .retain(|k, _| !gone(&k.database, &k.schema, &k.pipe));
        self.state
            .default_pipes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|(d, s, p)| !gone(d, s, p));
        let mut rows = self
            .state
            .table_rows
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        for (table, error_table) in &removal.tables {
            rows.remove(table);
            rows.remove(error_table);
        }
    }
}
