//! Followed tables whose rows a foreign key changes without rows events: refused at start.
//!
//! InnoDB runs a foreign key's `ON DELETE CASCADE|SET NULL|SET DEFAULT` and `ON UPDATE
//! CASCADE|SET NULL|SET DEFAULT` inside the storage engine; MariaDB's ROW binlog carries the
//! parent's rows and not the child's, so a followed child table's change table would keep
//! rows the source no longer has. Read from `information_schema.REFERENTIAL_CONSTRAINTS`
//! (rules) and `KEY_COLUMN_USAGE` (columns).

use anyhow::{bail, Result};
use mysql_async::prelude::Queryable as _;
use mysql_async::Conn;

/// The rules that change a child's rows.
const CASCADING: &str = "('CASCADE', 'SET NULL', 'SET DEFAULT')";

/// Refuses `table` of `database` when it is the child of a cascading foreign key, naming the
/// constraint, its parent and the fix.
///
/// # Errors
/// Such a constraint, or a failed read of `information_schema`.
pub(super) async fn refuse_cascading_child(
    conn: &mut Conn,
    database: &str,
    table: &str,
) -> Result<()> {
    let sql = format!(
        "SELECT rc.CONSTRAINT_NAME, rc.UNIQUE_CONSTRAINT_SCHEMA, rc.REFERENCED_TABLE_NAME, \
         rc.DELETE_RULE, rc.UPDATE_RULE, \
         (SELECT GROUP_CONCAT(k.COLUMN_NAME ORDER BY k.ORDINAL_POSITION SEPARATOR ', ') \
          FROM information_schema.KEY_COLUMN_USAGE k \
          WHERE k.CONSTRAINT_SCHEMA = rc.CONSTRAINT_SCHEMA \
            AND k.CONSTRAINT_NAME = rc.CONSTRAINT_NAME AND k.TABLE_NAME = rc.TABLE_NAME) \
         FROM information_schema.REFERENTIAL_CONSTRAINTS rc \
         WHERE rc.CONSTRAINT_SCHEMA = ? AND rc.TABLE_NAME = ? \
           AND (rc.DELETE_RULE IN {CASCADING} OR rc.UPDATE_RULE IN {CASCADING}) \
         ORDER BY rc.CONSTRAINT_NAME"
    );
    type Fk = (String, String, String, String, String, Option<String>);
    let found: Vec<Fk> = conn.exec(sql, (database, table)).await?;
    let Some((name, parent_db, parent, on_delete, on_update, columns)) = found.into_iter().next()
    else {
        return Ok(());
    };
    let q = |n: &str| format!("`{}`", n.replace('`', "``"));
    let columns = columns.map_or_else(
        || "…".to_owned(),
        |c| c.split(", ").map(q).collect::<Vec<_>>().join(", "),
    );
    bail!(
        "{table} is the child of foreign key {name} ({columns}) → {parent_db}.{parent} with ON DELETE \
         {on_delete} ON UPDATE {on_update}: the server changes {table}'s rows for it without \
         writing them to the binlog, so its change table would keep rows the source no longer \
         has. Nothing was written. To follow {table}, make the key RESTRICT or NO ACTION \
         (ALTER TABLE {} DROP FOREIGN KEY {qn}, ADD CONSTRAINT {qn} FOREIGN KEY ({columns}) \
         REFERENCES {}.{} (…) ON DELETE RESTRICT ON UPDATE RESTRICT) and \
         delete or update the child rows in the same transaction as the parent's; or copy \
         {table} whole with `table_replay replay` instead of following it",
        q(table),
        q(&parent_db),
        q(&parent),
        qn = q(&name),
    );
}
