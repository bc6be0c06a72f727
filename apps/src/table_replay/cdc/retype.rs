//! A followed table's column whose type changed (`ALTER TABLE … MODIFY COLUMN`), compared
//! with the change table's column as the destination holds it (the SQL API's result types
//! of `SELECT * FROM <T>_CHANGES LIMIT 0`):
//!
//! * the change table's column holds every value of the new type (the same Snowflake type,
//!   or a narrower `VARCHAR`/`BINARY`/`NUMBER` at the same scale): nothing to do;
//! * the new type is a widening of it (a longer `VARCHAR`/`BINARY`, a `NUMBER` of more
//!   digits at the same scale: `DECIMAL(10,2)` → `DECIMAL(14,2)`, `INT` → `BIGINT`,
//!   `VARCHAR(20)` → `VARCHAR(200)`): `ALTER TABLE <T>_CHANGES ALTER COLUMN c SET DATA TYPE
//!   <new>` (Snowflake widens in place), before the first change of the new type;
//! * anything else (another scale, another type): the table is *diverted* (its reason
//!   names the column, both types, where the `MODIFY` was met and the fix, a new snapshot
//!   of that table): from then on every change of that table is a dead letter in
//!   `<TABLE>_DLQ` (`stream.rs`), the other tables go on, and `follow` exits non-zero
//!   naming it. Not a stop: a stop would stop again at every start, and every table with it.
//!
//! Checked at each `ALTER TABLE` of a followed table in the binlog, and at every start (a
//! `MODIFY` made while `follow` was down): the destination's types, not the shape `follow`
//! held, are the ones compared, so both cases end the same.

use anyhow::{Context, Result};
use snowpipe_streaming::sql::{Column, SqlClient};

use crate::common::say::say;
use crate::table_replay::cdc::changes;
use crate::table_replay::schema::{
    ident, snowflake_name, snowflake_type, SourceColumn, SourceTable, BINARY_MAX, VARCHAR_MAX,
};

/// What a change table's column does for the values of a column's new type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Fit {
    /// It holds them as it is.
    Holds,
    /// `SET DATA TYPE` the new type widens it in place.
    Widen,
    /// It cannot take them (another scale, another type).
    Incompatible,
}

/// A Snowflake type's name and its numbers, a `VARCHAR`'s or `BINARY`'s length made
/// explicit (`VARCHAR` is `VARCHAR(16777216)`).
fn parts(ty: &str) -> (String, Vec<u64>) {
    let upper = ty.to_ascii_uppercase();
    let base = upper.split('(').next().unwrap_or("").trim().to_owned();
    let mut args: Vec<u64> = upper
        .split(['(', ')', ','])
        .skip(1)
        .filter_map(|a| a.trim().parse().ok())
        .collect();
    if args.is_empty() {
        match base.as_str() {
            "VARCHAR" => args.push(VARCHAR_MAX),
            "BINARY" => args.push(BINARY_MAX),
            _ => {}
        }
    }
    (base, args)
}

/// Whether the change table's column of type `have` holds values of type `now`, can be
/// widened to it, or neither (both Snowflake types).
pub(super) fn fit(have: &str, now: &str) -> Fit {
    let (hb, ha) = parts(have);
    let (nb, na) = parts(now);
    if hb == nb && ha == na {
        return Fit::Holds;
    }
    let wider = |n: &[u64], h: &[u64]| match (n.first(), h.first()) {
        (Some(n), Some(h)) if n <= h => Fit::Holds,
        (Some(_), Some(_)) => Fit::Widen,
        _ => Fit::Incompatible,
    };
    match (hb.as_str(), nb.as_str()) {
        ("VARCHAR", "VARCHAR") | ("BINARY", "BINARY") => wider(&na, &ha),
        ("NUMBER", "NUMBER") if ha.get(1) == na.get(1) => wider(&na, &ha),
        _ => Fit::Incompatible,
    }
}

/// The Snowflake type of a result column of the SQL API (its rowType entry).
pub(super) fn destination_type(c: &Column) -> String {
    let scaled = |name: &str| format!("{name}({})", c.scale.unwrap_or(9));
    match c.type_name.as_str() {
        "fixed" => format!(
            "NUMBER({},{})",
            c.precision.unwrap_or(38),
            c.scale.unwrap_or(0)
        ),
        "text" => format!("VARCHAR({})", c.length.unwrap_or(VARCHAR_MAX)),
        "binary" => format!("BINARY({})", c.length.unwrap_or(BINARY_MAX)),
        "real" => "FLOAT".into(),
        "timestamp_ntz" => scaled("TIMESTAMP_NTZ"),
        "timestamp_ltz" => scaled("TIMESTAMP_LTZ"),
        "timestamp_tz" => scaled("TIMESTAMP_TZ"),
        "time" => scaled("TIME"),
        other => other.to_ascii_uppercase(),
    }
}

/// Makes the change table `target` (`DB.SCHEMA.<T>_CHANGES`) take each column of `now`
/// (the source table's shape now) it holds with another type: widened in place where it can be (see the module docs).
/// Returns the table's shape with the columns it checked taken from `now` (their values
/// fit the change table now, but for a column it cannot take), and, for a column the change
/// table cannot take, why the table is diverted (`at` says where: the binlog position of
/// the `ALTER`, or the start).
///
/// # Errors
/// When the change table cannot be read or altered.
pub(super) async fn check(
    (sql, target): (&SqlClient, &str),
    held: &SourceTable,
    now: &SourceTable,
    at: &str,
) -> Result<(SourceTable, Option<String>)> {
    let have = sql
        .query(&format!("SELECT * FROM {target} LIMIT 0"))
        .await
        .with_context(|| format!("cannot read the change table {target}"))?;
    let mut shape = held.clone();
    let mut diverted = None;
    for c in &mut shape.columns {
        let Some(new) = now.columns.iter().find(|n| n.name == c.name) else {
            continue;
        };
        let column = snowflake_name(&new.name);
        let Some(dest) = have.columns.iter().find(|d| d.name == column) else {
            continue;
        };
        let (have_type, now_type) = (destination_type(dest), snowflake_type(&new.kind));
        match fit(&have_type, &now_type) {
            Fit::Holds => {}
            Fit::Widen => {
                let alter = format!(
                    "ALTER TABLE {target} ALTER COLUMN {} SET DATA TYPE {now_type}",
                    ident(&column)
                );
                sql.query(&alter).await.with_context(|| {
                    format!("cannot widen column {column} of {target} to {now_type}")
                })?;
                say!(
                    "{}: column {} is {} now: {target}.{column} widened from {have_type} to {now_type}",
                    held.name,
                    new.name,
                    new.column_type
                );
            }
            Fit::Incompatible => {
                diverted.get_or_insert_with(|| {
                    incompatible(&held.name, c, new, (&have_type, &now_type), at)
                });
            }
        }
        *c = new.clone();
    }
    Ok((shape, diverted))
}

/// The first column of `now` (the source table's shape now) the change table `target`
/// cannot take, as `column c is <type> (<Snowflake type>) in the source and <type> in the
/// change table`: the table is diverted (`verify --changes` says so instead of comparing).
///
/// # Errors
/// When the change table cannot be read.
pub(crate) async fn diverted_column(
    sql: &SqlClient,
    target: &str,
    now: &SourceTable,
) -> Result<Option<String>> {
    let have = sql
        .query(&format!("SELECT * FROM {target} LIMIT 0"))
        .await
        .with_context(|| format!("cannot read the change table {target}"))?;
    Ok(now.columns.iter().find_map(|c| {
        let column = snowflake_name(&c.name);
        let dest = have.columns.iter().find(|d| d.name == column)?;
        let (have_type, now_type) = (destination_type(dest), snowflake_type(&c.kind));
        (fit(&have_type, &now_type) == Fit::Incompatible).then(|| {
            format!(
                "column {} is {} ({now_type}) in the source and {have_type} in the change table",
                c.name, c.column_type
            )
        })
    }))
}

/// Why a table is diverted by a `MODIFY` the change table cannot take.
pub(super) fn incompatible(
    name: &str,
    old: &SourceColumn,
    now: &SourceColumn,
    (have, want): (&str, &str),
    at: &str,
) -> String {
    // A restart holds the new type already: the change table's type is the old one.
    let was = if old.column_type == now.column_type {
        String::new()
    } else {
        format!("was {}, ", old.column_type)
    };
    format!(
        "MODIFY COLUMN on followed table {name} at {at}: column {} {was}is {} ({want}) now and \
         {have} in the change table; the change table's column cannot take it (Snowflake \
         changes a column's type in place only to widen it: a longer VARCHAR or BINARY, more \
         digits at the same scale). Changes before it are in the change table; every change of \
         {name} from there on is a dead letter in {}; to go on, {}",
        old.name,
        now.column_type,
        crate::table_replay::dead_letter::table_name(name),
        changes::new_snapshot_fix([name])
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn widenings_are_told_from_what_holds_and_what_cannot_be_taken() {
        for (have, now, want) in [
            ("NUMBER(10,2)", "NUMBER(14,2)", Fit::Widen),
            ("NUMBER(10,0)", "NUMBER(19,0)", Fit::Widen),
            ("NUMBER(14,2)", "NUMBER(10,2)", Fit::Holds),
            ("NUMBER(10,2)", "NUMBER(12,4)", Fit::Incompatible),
            ("VARCHAR(20)", "VARCHAR(200)", Fit::Widen),
            ("VARCHAR(20)", "VARCHAR", Fit::Widen),
            ("VARCHAR(16777216)", "VARCHAR", Fit::Holds),
            ("VARCHAR(200)", "VARCHAR(20)", Fit::Holds),
            ("BINARY(4)", "BINARY(16)", Fit::Widen),
            ("NUMBER(10,0)", "VARCHAR(20)", Fit::Incompatible),
            ("VARCHAR(20)", "VARIANT", Fit::Incompatible),
            ("TIMESTAMP_NTZ(6)", "TIMESTAMP_NTZ(6)", Fit::Holds),
            ("TIMESTAMP_NTZ(0)", "TIMESTAMP_NTZ(6)", Fit::Incompatible),
            ("FLOAT", "FLOAT", Fit::Holds),
        ] {
            assert_eq!(fit(have, now), want, "{have} → {now}");
        }
    }
}
