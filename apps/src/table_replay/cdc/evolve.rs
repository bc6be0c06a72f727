//! A followed table whose shape changes mid-stream (`ALTER TABLE … ADD/DROP/MODIFY COLUMN`):
//! the change table evolves.
//!
//! The shape of each rows event is its TABLE_MAP event's: with `binlog_row_metadata=FULL`
//! (MariaDB 10.5+, MySQL 8.0.1+) it names the columns, and `mysql_common` exposes them
//! (`OptionalMetadataField::ColumnName`). When the names differ from the shape `follow` holds,
//! each named column takes its type from the table now (`information_schema`), or from the
//! shape held when the table no longer has it (dropped since). Then:
//!
//! * a column new to the shape: `ALTER TABLE <T>_CHANGES ADD COLUMN IF NOT EXISTS` through
//!   the SQL API before the first change carrying it (idempotent: a rerun finds it there);
//! * a column gone: the change table keeps it (history keeps its values), NULL from then on;
//! * a column whose type changed (`MODIFY`): the change table's column is widened in place
//!   when the new type is a widening of it, else the table is diverted (its changes become
//!   dead letters naming the column, both types and the fix, a new snapshot; the other
//!   tables go on): `retype.rs`, checked at the `ALTER` and at every start.
//!
//! Without column names in the binlog, a column count that differs stops `follow`, naming
//! the setting that lets it evolve. The types come from the table when `follow` reads the
//! event: a column modified twice while `follow` lags takes the newer type (and stops when
//! its Snowflake type differs). A column the table no longer has (a run that starts behind a
//! `DROP COLUMN`) takes its kind from its binlog type where that is enough (integers,
//! floats, strings), else `follow` stops, naming it and the fix.

use anyhow::{bail, Context, Result};
use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use snowpipe_streaming::sql::SqlClient;

use crate::common::say::say;
use crate::table_replay::cdc::{binlog_value, changes, retype, Followed};
use crate::table_replay::schema::{
    ident, snowflake_name, snowflake_type, Kind, SourceColumn, SourceTable,
};
use crate::table_replay::source;

/// The column names a TABLE_MAP event carries (`binlog_row_metadata=FULL`), else `None`.
pub(super) fn column_names(tme: &TableMapEvent<'_>) -> Option<Vec<String>> {
    tme.iter_optional_meta().find_map(|field| match field {
        Ok(OptionalMetadataField::ColumnName(names)) => names
            .iter_names()
            .map(|n| n.ok().map(|n| n.name().into_owned()))
            .collect(),
        _ => None,
    })
}

/// Whether the event's shape (`names`, or its column count without them) is not `f`'s.
pub(super) fn differs(f: &Followed<'_>, names: Option<&[String]>, count: usize) -> bool {
    match names {
        Some(names) => {
            names.len() != f.table.columns.len()
                || names
                    .iter()
                    .zip(&f.table.columns)
                    .any(|(n, c)| *n != c.name)
        }
        None => count != f.table.columns.len(),
    }
}

/// Where the change table is and how to reach the source, for an evolution.
pub(super) struct Place<'a> {
    pub source: &'a str,
    pub sql: Option<&'a SqlClient>,
    pub database: &'a str,
    pub schema: &'a str,
}

impl Place<'_> {
    pub(super) fn changes_table(&self, table: &str) -> String {
        format!(
            "{}.{}.{}",
            ident(self.database),
            ident(self.schema),
            ident(&changes::table_name(&snowflake_name(table)))
        )
    }
}

/// Makes `f` take the event's shape `names` at `at` (see the module docs).
///
/// # Errors
/// Without column names in the binlog or an SQL API; for a type change the change table
/// cannot take, a column whose type cannot be known, the key column gone; or when the
/// source or the SQL API fails.
pub(super) async fn evolve(
    f: &mut Followed<'_>,
    place: &Place<'_>,
    (tme, names): (&TableMapEvent<'_>, Option<Vec<String>>),
    count: usize,
    at: &str,
) -> Result<()> {
    let name = f.table.name.clone();
    let fix = changes::new_snapshot_fix([name.as_str()]);
    let Some(names) = names else {
        bail!(
            "table {name} has {count} columns in the binlog at {at} but {} when follow started: \
             its shape changed (ALTER TABLE) and the binlog does not name its columns. Set \
             binlog_row_metadata=FULL on the server so that follow evolves the change table; \
             the changes before it are committed; to go on from here, {fix}",
            f.table.columns.len()
        );
    };
    let sql = place.sql.with_context(|| {
        format!("table {name} changed its shape at {at} and follow has no SQL API to evolve its change table; {fix}")
    })?;
    let mut conn = source::connect(place.source).await?;
    let now = source::describe(&mut conn, &name, None).await?;
    let mut columns = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let old = f.table.columns.iter().find(|c| c.name == *n);
        let guessed = from_binlog(tme, i, n);
        let c = now
            .columns
            .iter()
            .find(|c| c.name == *n)
            .or(old)
            .or(guessed.as_ref())
            .with_context(|| {
                format!(
                    "column {n} of {name} in the binlog at {at} is neither in the table now nor \
                     in the shape follow held (dropped since), and its binlog type is not one \
                     follow reads without the table (integers, floats, strings): its type cannot \
                     be known; {fix}"
                )
            })?;
        if let Some(old) = old {
            same_type(&name, old, c, at, &fix)?;
        }
        columns.push(c.clone());
    }
    let keys = f
        .table
        .keys
        .iter()
        .map(|&k| {
            let key_name = &f.table.columns[k].name;
            names.iter().position(|n| n == key_name).with_context(|| {
                format!("the key column {key_name} of {name} is gone at {at}; {fix}")
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let table = SourceTable {
        name: name.clone(),
        columns,
        key: keys[0],
        keys,
    };
    // A column added under a name the change table already has, or in a set follow cannot
    // decode: nothing of it is written.
    super::names::check(&table)
        .and_then(|()| super::charset::check(&table))
        .with_context(|| format!("ALTER TABLE of followed table {name} at {at}; {fix}"))?;
    add_missing_columns(sql, place, &table).await?;
    say!(
        "{name}: its shape changed at {at}: now {}",
        names.join(", ")
    );
    set_shape(f, table);
    Ok(())
}

/// Stops when `now`, the column `old` after a `MODIFY`, maps to another Snowflake type.
fn same_type(
    name: &str,
    old: &SourceColumn,
    now: &SourceColumn,
    at: &str,
    fix: &str,
) -> Result<()> {
    if snowflake_type(&old.kind) == snowflake_type(&now.kind) {
        return Ok(());
    }
    bail!(
        "MODIFY COLUMN on followed table {name} at {at}: column {} was {} ({}) and is {} ({}) \
         now; the change table's column cannot change its type (ADD and DROP COLUMN evolve it, \
         a MODIFY only when the Snowflake type stays). Changes before it are committed; to go \
         on, {fix}",
        old.name,
        old.column_type,
        snowflake_type(&old.kind),
        now.column_type,
        snowflake_type(&now.kind)
    )
}

/// At an `ALTER TABLE` of `f`'s table (at `at`): a column `f` holds whose type changed (a
/// `MODIFY`; names that stay give no other sign in the binlog) widens the change table's
/// column, or diverts the table when it cannot (`retype.rs`); without an SQL API, diverts
/// it when its Snowflake type changed.
///
/// # Errors
/// When the source or the change table cannot be read or altered.
pub(super) async fn check_types(f: &mut Followed<'_>, place: &Place<'_>, at: &str) -> Result<()> {
    let mut conn = source::connect(place.source).await?;
    let now = source::describe(&mut conn, &f.table.name, None).await?;
    if let Some(sql) = place.sql {
        let target = place.changes_table(&f.table.name);
        let (shape, diverted) = retype::check((sql, &target), &f.table, &now, at).await?;
        set_shape(f, shape);
        if let Some(reason) = diverted {
            f.divert(reason);
        }
        return Ok(());
    }
    let changed = f.table.columns.iter().find_map(|old| {
        let c = now.columns.iter().find(|c| c.name == old.name)?;
        let (was, is) = (snowflake_type(&old.kind), snowflake_type(&c.kind));
        (was != is).then(|| retype::incompatible(&f.table.name, old, c, (&was, &is), at))
    });
    if let Some(reason) = changed {
        set_shape(f, now);
        f.divert(reason);
    }
    Ok(())
}

/// A column the table no longer has (a restart reading changes from before its `DROP
/// COLUMN`): its kind from its binlog type where that is enough (integers as signed 64-bit,
/// floats, strings and blobs as text), else `None`.
fn from_binlog(tme: &TableMapEvent<'_>, i: usize, name: &str) -> Option<SourceColumn> {
    use mysql_async::consts::ColumnType as T;
    let (kind, column_type) = match tme.get_column_type(i).ok().flatten()? {
        T::MYSQL_TYPE_TINY
        | T::MYSQL_TYPE_SHORT
        | T::MYSQL_TYPE_INT24
        | T::MYSQL_TYPE_LONG
        | T::MYSQL_TYPE_LONGLONG => (
            Kind::Int {
                unsigned: false,
                digits: 20,
            },
            "an integer (from the binlog)",
        ),
        T::MYSQL_TYPE_FLOAT => (Kind::Float, "float (from the binlog)"),
        T::MYSQL_TYPE_DOUBLE => (Kind::Double, "double (from the binlog)"),
        T::MYSQL_TYPE_VARCHAR
        | T::MYSQL_TYPE_VAR_STRING
        | T::MYSQL_TYPE_STRING
        | T::MYSQL_TYPE_BLOB => (Kind::Text { max_chars: None }, "text (from the binlog)"),
        _ => return None,
    };
    Some(SourceColumn {
        name: name.to_owned(),
        column_type: column_type.to_owned(),
        kind,
        nullable: true,
        charset: None,
    })
}

/// `f` takes `table`'s shape: its columns, names and labels.
pub(super) fn set_shape(f: &mut Followed<'_>, table: SourceTable) {
    f.names = table
        .columns
        .iter()
        .map(|c| snowflake_name(&c.name))
        .collect();
    f.labels = table
        .columns
        .iter()
        .map(|c| binlog_value::labels(&c.column_type))
        .collect();
    f.charsets = super::charset::of_table(&table);
    f.table = table;
}

/// Adds every column of `table` the change table lacks (`ADD COLUMN IF NOT EXISTS`): at an
/// evolution, and at the start (a run killed after the `ALTER` left the change table behind
/// the table).
///
/// # Errors
/// When the change table cannot be read or altered.
pub(super) async fn add_missing_columns(
    sql: &SqlClient,
    place: &Place<'_>,
    table: &SourceTable,
) -> Result<()> {
    let target = place.changes_table(&table.name);
    let have = sql
        .query(&format!("SELECT * FROM {target} LIMIT 0"))
        .await
        .with_context(|| format!("cannot read the change table {target}"))?;
    for c in &table.columns {
        let column = snowflake_name(&c.name);
        if have.column_index(&column).is_some() {
            continue;
        }
        let alter = format!(
            "ALTER TABLE {target} ADD COLUMN {} {}",
            ident(&column),
            snowflake_type(&c.kind)
        );
        sql.query(&alter)
            .await
            .with_context(|| format!("cannot add column {column} to {target}"))?;
        say!("{}: added column {column} to {target}", table.name);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_names_the_change_table() {
        let place = Place {
            source: "mysql://x",
            sql: None,
            database: "D",
            schema: "S",
        };
        assert_eq!(place.changes_table("orders"), "D.S.ORDERS_CHANGES");
    }
}
