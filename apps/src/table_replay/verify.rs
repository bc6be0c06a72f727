//! The seed's step 8: check with SQL that every source row arrived, exactly.
//!
//! Row count, distinct keys and key range on both sides, then a merge of both tables in key
//! order (keyset pages on each side, so memory stays bounded) comparing every value in a
//! canonical form, with a per-column checksum. The destination is read through Snowflake's SQL
//! API (`snowpipe_streaming::sql`), which the emulator answers too: one code path.

use anyhow::{Context, Result};
use sha2::{Digest, Sha256};
use snowpipe_streaming::sql::SqlClient;

use crate::table_replay::cdc;
use crate::table_replay::schema::{self, SourceTable};
use crate::table_replay::source::{self, KeysetReader};
use crate::table_replay::{verify_dead, verify_keyed};

pub(super) use crate::table_replay::verify_report::{
    classes_and_names, decimal, from_dest, from_source, hash_value, quoted, Class, Dest,
    Difference, Verification,
};

/// The current state a change table implies, as a subquery both Snowflake and the emulator
/// (SQLite) run: the latest change per key, deletes removed, and every row before the
/// table's latest truncate removed.
/// `epoch`: the change table has `_EPOCH` (`cdc/failover.rs`).
pub(super) fn current_state(changes: &str, key_cols: &[String], epoch: bool) -> String {
    let key_cols = key_cols
        .iter()
        .map(|k| format!("c.{k}"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "(SELECT * FROM (SELECT c.*, ROW_NUMBER() OVER (PARTITION BY {key_cols} ORDER BY \
         {}) AS _RN FROM {changes} c) s \
         WHERE s._RN = 1 AND s._OP IN ('r', 'c', 'u') AND {})",
        crate::table_replay::cdc::changes::latest_first("c", epoch),
        crate::table_replay::cdc::changes::after_last_truncate(changes, "s", epoch)
    )
}

fn cell_u64(v: &Option<String>) -> Option<u64> {
    v.as_deref().and_then(|s| decimal(s).parse().ok())
}

/// Verifies `table` of `source_url` against `dest` through `sql`, in pages of `page` rows.
///
/// # Errors
/// When either side cannot be read (a missing destination table is an error, not a
/// difference).
pub(super) async fn verify(
    source_url: &str,
    table_name: &str,
    key: Option<&str>,
    sql: &SqlClient,
    dest: &Dest,
    page: usize,
) -> Result<Verification> {
    let mut conn = source::connect(source_url).await?;
    let table = describe(&mut conn, table_name, key, dest.changes).await?;
    let (classes, names) = classes_and_names(&table);
    let key_col = quoted(&names[table.key]);
    let key_cols = table
        .keys
        .iter()
        .map(|&k| quoted(&names[k]))
        .collect::<Vec<_>>();
    let target = format!(
        "{}.{}.{}",
        schema::ident(&dest.database),
        schema::ident(&dest.schema),
        schema::ident(&dest.table)
    );
    let dead = if dest.changes {
        let place = (
            dest.database.as_str(),
            dest.schema.as_str(),
            dest.table.as_str(),
        );
        verify_dead::load(sql, place, table_name).await?
    } else {
        None
    };
    if dest.changes {
        if let Some(column) = cdc::diverted_column(sql, &target, &table).await? {
            return Ok(diverted(table_name, &column, &dest.table));
        }
    }
    let epoch = dest.changes
        && sql
            .query(&format!("SELECT * FROM {target} LIMIT 0"))
            .await
            .with_context(|| format!("cannot read the change table {target}"))?
            .column_index(cdc::changes::EPOCH)
            .is_some();
    if !verify_keyed::single_integer(&table) {
        // The dead letters' SOURCE_KEY holds integer keys only: their keys from RAW_VALUES.
        let state = current_state(&target, &key_cols, epoch);
        let dlq = dead.as_ref().map(|d| d.table.as_str());
        return verify_keyed::verify(&mut conn, (&table, sql), &state, page, dlq).await;
    }
    let target = match (&dead, dest.changes) {
        (Some(d), true) => format!(
            "(SELECT * FROM {} d WHERE {})",
            current_state(&target, &key_cols, epoch),
            d.not_in(&key_col)
        ),
        (None, true) => current_state(&target, &key_cols, epoch),
        (_, false) => target,
    };
    let mut v = Verification::default();
    let (rows, min, max) = source::key_range(&mut conn, &table).await?;
    v.source_rows = rows;
    v.source_range = (min, max);
    // Without dead letters the source's range is its own; with them, the kept keys'.
    let mut kept: (Option<u64>, Option<u64>) = (None, None);
    let mut dead_seen = 0u64;
    let counts = sql
        .query(&format!("SELECT COUNT(*), COUNT(DISTINCT {key_col}), MIN({key_col}), MAX({key_col}) FROM {target}"))
        .await
        .with_context(|| format!("cannot read the destination table {target}"))?;
    let c = counts.rows.first().context("COUNT(*) returned no row")?;
    v.dest_rows = cell_u64(&c[0]).unwrap_or(0);
    v.dest_distinct = cell_u64(&c[1]).unwrap_or(0);
    v.dest_range = (cell_u64(&c[2]), cell_u64(&c[3]));

    let select = names
        .iter()
        .map(|n| quoted(n))
        .collect::<Vec<_>>()
        .join(", ");
    let reader = KeysetReader::new(&table);
    let mut src_hash: Vec<Sha256> = names.iter().map(|_| Sha256::new()).collect();
    let mut dst_hash: Vec<Sha256> = names.iter().map(|_| Sha256::new()).collect();
    let mut diff_rows = vec![0u64; names.len()];
    let mut after: Option<u64> = None;
    loop {
        let src_page = reader.page(&mut conn, after, page).await?;
        let full = src_page.len() == page;
        let (src, last_key) =
            canonical_page(src_page, &table, &classes, dead.as_ref(), &mut dead_seen)?;
        let upper = if full { last_key } else { None };
        if let (Some(first), Some(last)) = (src.first(), src.last()) {
            kept = (kept.0.or(Some(first.0)), Some(last.0));
        }
        let lower = after.map_or(String::new(), |a| format!("{key_col} > {a}"));
        let cond = match (lower.is_empty(), upper) {
            (true, None) => String::new(),
            (true, Some(u)) => format!(" WHERE {key_col} <= {u}"),
            (false, None) => format!(" WHERE {lower}"),
            (false, Some(u)) => format!(" WHERE {lower} AND {key_col} <= {u}"),
        };
        let dst_result = sql
            .query(&format!(
                "SELECT {select} FROM {target}{cond} ORDER BY {key_col}"
            ))
            .await
            .with_context(|| format!("cannot read the destination table {target}"))?;
        let dst: Vec<(u64, Vec<Option<String>>)> = dst_result
            .rows
            .iter()
            .filter_map(|r| {
                let key = cell_u64(&r[table.key])?;
                Some((
                    key,
                    classes
                        .iter()
                        .zip(r)
                        .map(|(c, s)| from_dest(*c, s.as_deref()))
                        .collect(),
                ))
            })
            .collect();
        merge(
            &src,
            &dst,
            &names,
            &mut v,
            &mut diff_rows,
            &mut src_hash,
            &mut dst_hash,
        );
        match upper {
            Some(u) => after = Some(u),
            None => break,
        }
    }
    if let Some(d) = dead {
        v.source_rows -= dead_seen;
        v.source_range = kept;
        v.dead_lettered = Some((dead_seen, d.table));
    }
    v.columns = names
        .iter()
        .zip(src_hash)
        .zip(dst_hash)
        .zip(diff_rows)
        .map(|(((n, s), d), k)| (n.clone(), hex(&s.finalize()), hex(&d.finalize()), k))
        .collect();
    Ok(v)
}

/// Describes the source table: with `changes`, by any key `follow` takes (`cdc/key.rs`;
/// `key` as `COL[,COL…]`), else by the replay's single integer key.
async fn describe(
    conn: &mut mysql_async::Conn,
    table: &str,
    key: Option<&str>,
    changes: bool,
) -> Result<SourceTable> {
    if !changes {
        return source::describe(conn, table, key).await;
    }
    let cols = key.map(|k| {
        k.split(',')
            .map(|c| c.trim().to_owned())
            .collect::<Vec<_>>()
    });
    Ok(cdc::key::describe(conn, table, cols.as_deref()).await?.0)
}

/// The outcome for a change table its source table's `MODIFY` diverted (`follow`'s
/// `cdc/retype.rs`): named, with why and the fix, not compared.
fn diverted(table: &str, column: &str, changes: &str) -> Verification {
    Verification {
        diverted: Some(format!(
            "{table} is diverted: {column}, so follow writes its changes since that MODIFY as \
             dead letters in {} instead of to {changes}; to follow it again, {}",
            crate::table_replay::dead_letter::table_name(table),
            cdc::changes::new_snapshot_fix([table])
        )),
        ..Verification::default()
    }
}

/// A row's key and its values in canonical form.
type CanonRow = (u64, Vec<Option<String>>);

/// A page of source rows in canonical form, without the dead-lettered keys (counted in
/// `dead_seen`: not compared, their value may be one the mapping refuses); with the page's
/// last key, dead or not.
///
/// # Errors
/// For a key that is no key, or a value the mapping refuses.
fn canonical_page(
    rows: Vec<mysql_async::Row>,
    table: &SourceTable,
    classes: &[Class],
    dead: Option<&verify_dead::DeadKeys>,
    dead_seen: &mut u64,
) -> Result<(Vec<CanonRow>, Option<u64>)> {
    let mut src = Vec::with_capacity(rows.len());
    let mut last_key = None;
    for row in rows {
        let values = row.unwrap();
        let key = schema::key_value(&values[table.key])?;
        last_key = Some(key);
        if dead.is_some_and(|d| d.keys.contains(&key)) {
            *dead_seen += 1;
            continue;
        }
        let canon = table
            .columns
            .iter()
            .zip(classes)
            .zip(&values)
            .map(|((c, class), value)| Ok(from_source(*class, &schema::to_json(&c.kind, value)?)))
            .collect::<Result<Vec<_>>>()?;
        src.push((key, canon));
    }
    Ok((src, last_key))
}

fn hex(b: &[u8]) -> String {
    schema::hex(b)
}

/// Compares two key-ordered slices of canonical rows.
fn merge(
    src: &[(u64, Vec<Option<String>>)],
    dst: &[(u64, Vec<Option<String>>)],
    names: &[String],
    v: &mut Verification,
    diff_rows: &mut [u64],
    src_hash: &mut [Sha256],
    dst_hash: &mut [Sha256],
) {
    let feed = |h: &mut [Sha256], key: u64, row: &[Option<String>]| {
        for (h, value) in h.iter_mut().zip(row) {
            h.update(key.to_be_bytes());
            hash_value(h, value.as_deref());
        }
    };
    let (mut i, mut j) = (0, 0);
    // Keeps the first 20 differences: (key, column, source value, destination value).
    let note =
        |v: &mut Verification, key, column: &str, source: Option<&str>, dest: Option<&str>| {
            if v.differences.len() < 20 {
                v.differences.push(Difference {
                    key: u64::to_string(&key),
                    column: column.to_owned(),
                    source: source.map(str::to_owned),
                    dest: dest.map(str::to_owned),
                });
            }
        };
    while i < src.len() || j < dst.len() {
        match (src.get(i), dst.get(j)) {
            (Some(s), Some(d)) if s.0 == d.0 => {
                feed(src_hash, s.0, &s.1);
                feed(dst_hash, d.0, &d.1);
                for (c, (a, b)) in s.1.iter().zip(&d.1).enumerate() {
                    if a != b {
                        diff_rows[c] += 1;
                        note(v, s.0, &names[c], a.as_deref(), b.as_deref());
                    }
                }
                i += 1;
                j += 1;
                // A duplicate in the destination: the same key again.
                while dst.get(j).is_some_and(|d2| d2.0 == s.0) {
                    feed(dst_hash, s.0, &dst[j].1);
                    v.extra += 1;
                    note(v, s.0, "(duplicate row)", None, Some("present twice"));
                    j += 1;
                }
            }
            (Some(s), d) if d.is_none_or(|d| s.0 < d.0) => {
                feed(src_hash, s.0, &s.1);
                v.missing += 1;
                note(v, s.0, "(row)", Some("present"), None);
                i += 1;
            }
            (_, Some(d)) => {
                feed(dst_hash, d.0, &d.1);
                v.extra += 1;
                note(v, d.0, "(row)", None, Some("present"));
                j += 1;
            }
            (Some(_), None) | (None, None) => unreachable!("handled above"),
        }
    }
}

#[cfg(test)]
#[path = "verify_tests.rs"]
mod tests;
