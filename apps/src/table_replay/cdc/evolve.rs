//! A followed table whose shape changes mid-stream (`ALTER TABLE … ADD/DROP/MODIFY COLUMN`):
//! the change table evolves.
//!
//! The shape of each rows event is its TABLE_MAP event's: with `binlog_row_metadata=FULL`
//! (MariaDB 10.5+, MySQL 8.0.1+) it names the columns, and `mysql_common` exposes them
//! (`OptionalMetadataField::ColumnName`). When the names differ from the shape `follow` holds,
//! each named column takes its type from the table now (`information_schema`, tried again
//! on a passing error: `transient.rs`), or from the shape held when the table no longer has
//! it (dropped since). Then:
//!
//! * a column new to the change table: `ALTER TABLE <T>_CHANGES ADD COLUMN` through the SQL
//!   API before the first change carrying it (a rerun finds it there). A column is known by
//!   its name: one dropped and added again is the same column of the change table;
//! * a column gone: the change table keeps it (history keeps its values), NULL from then on;
//! * a column whose type changed (`MODIFY`, whatever the order of the `ALTER`s met while
//!   `follow` is behind): the change table's column is widened in place when the new type
//!   is a widening of it, else the table is diverted (`retype.rs`), checked here, at the
//!   `ALTER` and at every start;
//! * the change table would pass `--max-change-columns` columns (a storm of new names):
//!   no column is added and the table is diverted, its reason naming the cap;
//! * a type the mapping has no Snowflake type for, or a dropped column whose binlog type
//!   says too little: the table is diverted, naming the column.
//!
//! A diverted table's changes are dead letters naming why and the fix (a new snapshot of
//! that table); the other tables go on. Without column names in the binlog, a column count
//! that differs stops `follow`, naming the setting that lets it evolve; so does a key column
//! that is gone.

use anyhow::{bail, Context, Result};
use mysql_async::binlog::events::{OptionalMetadataField, TableMapEvent};
use snowpipe_streaming::sql::SqlClient;

use crate::common::say::say;
use crate::table_replay::cdc::{binlog_value, changes, retype, transient, Followed};
use crate::table_replay::schema::{
    self, ident, snowflake_name, snowflake_type, Kind, SourceColumn, SourceTable,
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
    /// The most columns a change table takes (`--max-change-columns`).
    pub max_columns: usize,
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

/// Makes `f` take the event's shape `names` at `at` (see the module docs): the change
/// table gains its new columns and widens its columns, or `f` is diverted.
///
/// # Errors
/// Without column names in the binlog or an SQL API, or with the key column gone; or when
/// the source (past its passing errors) or the SQL API fails.
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
    let (now, mut why) = match shape_now(place.source, &name).await {
        Ok(now) => (now.columns, None),
        Err(e) if schema::is_unmapped(&e) => (Vec::new(), Some(format!("{e:#}"))),
        Err(e) => return Err(e),
    };
    let mut columns = Vec::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        let old = f.table.columns.iter().find(|c| c.name == *n);
        let known = now.iter().find(|c| c.name == *n).or(old).cloned();
        let c = known.or_else(|| from_binlog(tme, i, n)).unwrap_or_else(|| {
            why.get_or_insert_with(|| {
                format!(
                    "column {n} is neither in the table now nor in the shape follow held \
                     (dropped since), and its binlog type is not one follow reads without the \
                     table (integers, floats, decimals, strings, spatial types): its type cannot \
                     be known"
                )
            });
            unknown(n)
        });
        columns.push(c);
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
    let mut table = SourceTable {
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
    // A diverted table's changes are dead letters: its change table stays as it is.
    if f.diverted.is_none() && why.is_none() {
        why = add_missing_columns(sql, place, &table).await?;
    }
    if f.diverted.is_none() && why.is_none() {
        let target = place.changes_table(&name);
        let now = SourceTable {
            columns: now,
            ..table.clone()
        };
        let (shape, diverted) = retype::check((sql, &target), &table, &now, at).await?;
        table = shape;
        if let Some(reason) = diverted {
            f.divert(reason);
        }
    }
    say!(
        "{name}: its shape changed at {at}: now {}",
        names.join(", ")
    );
    set_shape(f, table);
    if let Some(why) = why {
        f.divert(diverted(
            &name,
            &format!("ALTER TABLE on followed table {name} at {at}"),
            &why,
        ));
    }
    Ok(())
}

/// `table`'s shape now, from `information_schema` (tried again on a passing error).
///
/// # Errors
/// When the source fails past its passing errors, or a column has no mapping
/// ([`schema::is_unmapped`]).
async fn shape_now(source_url: &str, table: &str) -> Result<SourceTable> {
    let what = format!("reading the shape of {table} from information_schema");
    transient::retried(&what, || async move {
        let mut conn = source::connect(source_url).await?;
        source::describe(&mut conn, table, None).await
    })
    .await
}

/// Why `name` is diverted: `what` (where), `why`, and what follows.
pub(super) fn diverted(name: &str, what: &str, why: &str) -> String {
    format!(
        "{what}: {why}. Changes before it are in the change table; every change of {name} from \
         there on is a dead letter in {}; to go on, {}",
        crate::table_replay::dead_letter::table_name(name),
        changes::new_snapshot_fix([name])
    )
}

/// A column whose type cannot be known (its table diverted): its values kept as read.
fn unknown(name: &str) -> SourceColumn {
    SourceColumn {
        name: name.to_owned(),
        column_type: "unknown (dropped, its binlog type unread)".to_owned(),
        kind: Kind::Binary { max_bytes: None },
        nullable: true,
        charset: None,
    }
}

/// At an `ALTER TABLE` of `f`'s table (at `at`): a column `f` holds whose type changed (a
/// `MODIFY`; names that stay give no other sign in the binlog) widens the change table's
/// column, or diverts the table when it cannot (`retype.rs`); without an SQL API, diverts
/// it when its Snowflake type changed. A column type with no mapping diverts it too.
///
/// # Errors
/// When the source (past its passing errors) or the change table cannot be read or altered.
pub(super) async fn check_types(f: &mut Followed<'_>, place: &Place<'_>, at: &str) -> Result<()> {
    let now = match shape_now(place.source, &f.table.name).await {
        Ok(now) => now,
        Err(e) if schema::is_unmapped(&e) => {
            let what = format!("ALTER TABLE on followed table {} at {at}", f.table.name);
            f.divert(diverted(&f.table.name, &what, &format!("{e:#}")));
            return Ok(());
        }
        Err(e) => return Err(e),
    };
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
/// floats, decimals of the precision and scale their table map carries, strings and blobs
/// as text, spatial types as their bytes), else `None`.
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
        // Its table-map metadata: precision, then scale.
        T::MYSQL_TYPE_NEWDECIMAL => match tme.get_column_metadata(i)? {
            [precision, scale, ..] => (
                Kind::Decimal {
                    precision: u32::from(*precision),
                    scale: u32::from(*scale),
                },
                "decimal (from the binlog)",
            ),
            _ => return None,
        },
        T::MYSQL_TYPE_GEOMETRY => (
            Kind::Binary { max_bytes: None },
            "geometry (from the binlog)",
        ),
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

/// Adds every column of `table` the change table lacks (`ALTER TABLE … ADD COLUMN`, a column
/// known by its name), and `_EPOCH`: at an evolution, and at the start (a run killed after the
/// `ALTER` left the change table behind the table; a change table from before `_EPOCH`). Adds
/// no source column and returns why the table is to be diverted when the change table would
/// have more than `place.max_columns` columns.
///
/// # Errors
/// When the change table cannot be read or altered.
pub(super) async fn add_missing_columns(
    sql: &SqlClient,
    place: &Place<'_>,
    table: &SourceTable,
) -> Result<Option<String>> {
    let target = place.changes_table(&table.name);
    let have = sql
        .query(&format!("SELECT * FROM {target} LIMIT 0"))
        .await
        .with_context(|| format!("cannot read the change table {target}"))?;
    let missing: Vec<&SourceColumn> = table
        .columns
        .iter()
        .filter(|c| have.column_index(&snowflake_name(&c.name)).is_none())
        .collect();
    // A change table from before `_EPOCH` (`failover.rs`): the view and verify order by it.
    if have.column_index(changes::EPOCH).is_none() {
        let alter = format!(
            "ALTER TABLE {target} ADD COLUMN {} NUMBER(10,0)",
            changes::EPOCH
        );
        sql.query(&alter)
            .await
            .with_context(|| format!("cannot add column {} to {target}", changes::EPOCH))?;
    }
    let total = have.columns.len() + missing.len();
    if !missing.is_empty() && total > place.max_columns {
        return Ok(Some(over_cap(&target, total, place.max_columns, &missing)));
    }
    for c in missing {
        let column = snowflake_name(&c.name);
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
    Ok(None)
}

/// Why a table whose change table would pass the cap is diverted.
fn over_cap(target: &str, total: usize, cap: usize, missing: &[&SourceColumn]) -> String {
    format!(
        "adding column {} to {target} would make it {total} columns, past the cap of \
         --max-change-columns {cap} (new column names, a storm of ADD COLUMN, must not grow the \
         change table without bound; a raised cap takes them at the next start)",
        missing[0].name
    )
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
            max_columns: 10,
        };
        assert_eq!(place.changes_table("orders"), "D.S.ORDERS_CHANGES");
    }

    #[test]
    fn the_cap_is_named_in_the_reason() {
        let c = SourceColumn {
            name: "c7".into(),
            column_type: "int(11)".into(),
            kind: Kind::Int {
                unsigned: false,
                digits: 10,
            },
            nullable: true,
            charset: None,
        };
        let why = over_cap("D.S.T_CHANGES", 11, 10, &[&c]);
        assert!(
            why.contains("--max-change-columns 10") && why.contains("c7"),
            "{why}"
        );
        let why = diverted("t", "ALTER TABLE on followed table t at b.1:4", &why);
        assert!(
            why.contains("T_DLQ") && why.contains("DROP PIPE T_CHANGES_PIPE"),
            "{why}"
        );
    }
}
