//! `verify --changes` for a table whose key is not one integer column (`cdc/key.rs`: a
//! composite, text or binary key, or `--key` columns).
//!
//! The source is read by its key in the server's order (text in its collation), which the
//! destination cannot reproduce, so the two are not merged by order: the destination's
//! current state is read once and held by canonical key, each source row takes its
//! destination row out by key, and what is left over is extra. Memory: the current state
//! of that one table. The key range rows are not compared (there is no numeric range). The
//! dead letters' `SOURCE_KEY` holds integer keys only, so a dead letter's key is read from its
//! `SOURCE_KEY_TEXT` (`verify_dead.rs`): such a key is left out on both sides and counted, as
//! `verify.rs` does by `SOURCE_KEY`.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use mysql_async::Conn;
use sha2::{Digest, Sha256};
use snowpipe_streaming::sql::SqlClient;

use crate::table_replay::cdc::key::{readable, Pager};
use crate::table_replay::schema::{self, Kind, SourceTable};
use crate::table_replay::verify_dead;
use crate::table_replay::verify_report::{
    classes_and_names, from_dest, from_source, hash_value, quoted, Difference, Verification,
};

/// A row's values in canonical form.
type Canon = Vec<Option<String>>;

/// Whether `table`'s key is one integer column: the merge by key order (`verify.rs`).
pub(super) fn single_integer(table: &SourceTable) -> bool {
    matches!(table.keys.as_slice(), [k] if matches!(table.columns[*k].kind, Kind::Int { .. }))
}

/// Compares `table` of the source on `conn` with the current state `state` (a subquery of
/// the change table) through `sql`, the source in pages of `page` rows.
///
/// # Errors
/// When either side cannot be read, or a source value the mapping refuses.
pub(super) async fn verify(
    conn: &mut Conn,
    (table, sql): (&SourceTable, &SqlClient),
    state: &str,
    page: usize,
    dlq: Option<&str>,
) -> Result<Verification> {
    let (classes, names) = classes_and_names(table);
    let select = names
        .iter()
        .map(|n| quoted(n))
        .collect::<Vec<_>>()
        .join(", ");
    let result = sql
        .query(&format!("SELECT {select} FROM {state}"))
        .await
        .context("cannot read the destination's current state")?;
    let mut v = Verification {
        dest_rows: result.rows.len() as u64,
        ..Verification::default()
    };
    let key_of = |row: &Canon| -> Canon { table.keys.iter().map(|&k| row[k].clone()).collect() };
    let mut dest: BTreeMap<Canon, Vec<Canon>> = BTreeMap::new();
    for r in &result.rows {
        let row: Canon = classes
            .iter()
            .zip(r)
            .map(|(c, s)| from_dest(*c, s.as_deref()))
            .collect();
        dest.entry(key_of(&row)).or_default().push(row);
    }
    v.dest_distinct = dest.len() as u64;
    let dead = match dlq {
        Some(dlq) => verify_dead::keyed(sql, dlq, table, &classes).await?,
        None => BTreeSet::new(),
    };
    let mut dead_seen = 0u64;
    let mut hashes = Hashes::new(names.len());
    let pager = Pager::new(table);
    let mut after = Vec::new();
    loop {
        let rows = pager.page(conn, &after, page).await?;
        let full = rows.len() == page;
        for row in rows {
            let values = row.unwrap();
            after = table.keys.iter().map(|&k| values[k].clone()).collect();
            let shown = readable(&after.iter().collect::<Vec<_>>());
            let key = table
                .keys
                .iter()
                .map(|&k| {
                    let c = &table.columns[k];
                    Ok(from_source(
                        classes[k],
                        &schema::to_json(&c.kind, &values[k])?,
                    ))
                })
                .collect::<Result<Canon>>()?;
            // A dead-lettered key: not compared (its value may be one the mapping refuses).
            if dead.contains(&key) {
                dead_seen += 1;
                if let Some(rows) = dest.remove(&key) {
                    v.dest_rows -= rows.len() as u64;
                    v.dest_distinct -= 1;
                }
                continue;
            }
            let canon = table
                .columns
                .iter()
                .zip(&classes)
                .zip(&values)
                .map(|((c, class), value)| {
                    Ok(from_source(*class, &schema::to_json(&c.kind, value)?))
                })
                .collect::<Result<Canon>>()?;
            v.source_rows += 1;
            hashes.feed(true, &key, &canon);
            let Some(found) = dest.remove(&key) else {
                v.missing += 1;
                note(&mut v, &shown, "(row)", Some("present"), None);
                continue;
            };
            for (n, d) in found.iter().enumerate() {
                hashes.feed(false, &key, d);
                if n > 0 {
                    v.extra += 1;
                    note(
                        &mut v,
                        &shown,
                        "(duplicate row)",
                        None,
                        Some("present twice"),
                    );
                    continue;
                }
                for (c, (a, b)) in canon.iter().zip(d).enumerate() {
                    if a != b {
                        hashes.differ[c] += 1;
                        note(&mut v, &shown, &names[c], a.as_deref(), b.as_deref());
                    }
                }
            }
        }
        if !full {
            break;
        }
    }
    for (key, rows) in dest {
        let shown = format!("{key:?}");
        for d in rows {
            hashes.feed(false, &key, &d);
            v.extra += 1;
            note(&mut v, &shown, "(row)", None, Some("present"));
        }
    }
    v.columns = hashes.finish(&names);
    if let Some(dlq) = dlq {
        v.dead_lettered = Some((dead_seen, dlq.to_owned()));
    }
    Ok(v)
}

/// Keeps the first 20 differences.
fn note(v: &mut Verification, key: &str, column: &str, source: Option<&str>, dest: Option<&str>) {
    if v.differences.len() < 20 {
        v.differences.push(Difference {
            key: key.to_owned(),
            column: column.to_owned(),
            source: source.map(str::to_owned),
            dest: dest.map(str::to_owned),
        });
    }
}

/// The per-column checksums of both sides (rows fed in the source's key order) and the
/// rows whose column differs.
struct Hashes {
    source: Vec<Sha256>,
    dest: Vec<Sha256>,
    differ: Vec<u64>,
}

impl Hashes {
    fn new(n: usize) -> Self {
        Self {
            source: (0..n).map(|_| Sha256::new()).collect(),
            dest: (0..n).map(|_| Sha256::new()).collect(),
            differ: vec![0; n],
        }
    }

    fn feed(&mut self, source: bool, key: &Canon, row: &Canon) {
        let hashes = if source {
            &mut self.source
        } else {
            &mut self.dest
        };
        for (h, value) in hashes.iter_mut().zip(row) {
            for part in key.iter().chain(std::iter::once(value)) {
                hash_value(h, part.as_deref());
            }
        }
    }

    fn finish(self, names: &[String]) -> Vec<(String, String, String, u64)> {
        names
            .iter()
            .zip(self.source)
            .zip(self.dest)
            .zip(self.differ)
            .map(|(((n, s), d), k)| {
                (
                    n.clone(),
                    schema::hex(&s.finalize()),
                    schema::hex(&d.finalize()),
                    k,
                )
            })
            .collect()
    }
}
