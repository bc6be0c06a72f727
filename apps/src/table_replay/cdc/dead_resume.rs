//! A snapshot taken again after a restart: which of a page's dead letters an earlier run's
//! dead-letter channel already committed, decided by the server.
//!
//! The dead-letter channel's committed token names the last snapshot dead letter committed
//! (`token.rs` `s:FILE:POS:KEY`): every dead letter at or before that key in the snapshot's
//! order is in `<TABLE>_DLQ`. The snapshot's order is the server's (`key.rs`: text in its
//! column's collation, `utf8mb4_unicode_ci` puts `'a-9'` before `'A-10'` and `'á-11'`, bytes
//! would not), so the comparison is the server's too: one query per page that has dead
//! letters asks, in the snapshot transaction, which of them are at or before the committed
//! key, with the same condition the snapshot pages and resumes by (`key.rs` `after`). Only
//! while the committed key is an earlier run's: once this run commits a dead letter, or the
//! server says a page's dead letter is after it, every later page is after it too (the
//! snapshot reads forward), and nothing more is asked.
//!
//! A dead letter equal to the committed key (in the collation) is that row when its token
//! names the same key (a unique key); rows of `--key` columns that repeat a key, or a key too
//! long for a token (`key.rs` `TOKEN_KEY_MAX`) past the committed one, cannot be told apart
//! and are written again (never lost).

use anyhow::{Context, Result};
use mysql_async::prelude::*;
use mysql_async::{Conn, Row, Value};

use crate::common::say::say;
use crate::table_replay::cdc::dead_letters::{DeadChange, DeadLetters};
use crate::table_replay::cdc::key::{self, TokenKey};
use crate::table_replay::cdc::token::Token;
use crate::table_replay::schema::SourceTable;
use crate::table_replay::source::quote;

/// Dead letters asked about in one query (two parameters per key column each).
const ASK_AT_ONCE: usize = 500;

/// Where a dead letter's key is, next to the committed key, in the server's order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    Before,
    Equal,
    After,
}

/// `dead` (one snapshot page's, in its order) without those the dead-letter channel
/// committed in an earlier run (see the module docs).
///
/// # Errors
/// When the dead-letter channel cannot be opened or the server cannot be asked.
pub(super) async fn unsent(
    conn: &mut Conn,
    (table, letters): (&SourceTable, &mut DeadLetters<'_>),
    dead: Vec<DeadChange>,
) -> Result<Vec<DeadChange>> {
    if dead.is_empty() {
        return Ok(dead);
    }
    let Some((resume, at)) = letters.earlier_snapshot_key().await? else {
        return Ok(dead);
    };
    // Another snapshot's key (the change table and its pipe dropped and made again for a new
    // snapshot, `changes::new_snapshot_fix`): nothing of this one is written yet.
    if dead
        .iter()
        .all(|d| !matches!(&d.token, Token::Snapshot { resume: r, .. } if *r == resume))
    {
        letters.passed_earlier();
        return Ok(dead);
    }
    let mut places = Vec::with_capacity(dead.len());
    for chunk in dead.chunks(ASK_AT_ONCE) {
        places.extend(ask(conn, table, &at, chunk).await?);
    }
    let mut kept = Vec::with_capacity(dead.len());
    for (d, place) in dead.into_iter().zip(places.iter().copied()) {
        let committed = match place {
            Place::Before => true,
            Place::Equal => match &d.token {
                Token::Snapshot { key, .. } => key.key == at.key && key.after <= at.after,
                Token::Binlog { .. } => false,
            },
            Place::After => false,
        };
        if !committed {
            kept.push(d);
        }
    }
    let skipped = places.len() - kept.len();
    if skipped > 0 {
        say!(
            "{}: {skipped} snapshot dead letters are in {} already (committed by an earlier \
             run): not written again",
            table.name,
            crate::table_replay::dead_letter::table_name(&table.name)
        );
    }
    if !kept.is_empty() {
        // Past the committed key: the pages after this one are too.
        letters.passed_earlier();
    }
    Ok(kept)
}

/// Asks the server where each of `dead`'s keys is next to `at` (a row missing from the
/// snapshot: `After`, so it is written).
async fn ask(
    conn: &mut Conn,
    table: &SourceTable,
    at: &TokenKey,
    dead: &[DeadChange],
) -> Result<Vec<Place>> {
    let keys: Vec<String> = table
        .keys
        .iter()
        .map(|&i| quote(&table.columns[i].name))
        .collect();
    let at_values = at.values()?;
    // A dead letter without a value per key column (none in a snapshot) is not asked about.
    let asked: Vec<&DeadChange> = dead
        .iter()
        .filter(|d| d.key_values.len() == keys.len())
        .collect();
    if asked.is_empty() {
        return Ok(vec![Place::After; dead.len()]);
    }
    let equal = keys
        .iter()
        .map(|k| format!("{k} = ?"))
        .collect::<Vec<_>>()
        .join(" AND ");
    let any = vec![format!("({equal})"); asked.len()].join(" OR ");
    let sql = format!(
        "SELECT {}, NOT ({}), {equal} FROM {} WHERE {any}",
        keys.join(", "),
        key::after(&keys),
        quote(&table.name)
    );
    let mut params = key::after_params(&at_values);
    params.extend(at_values.iter().cloned());
    for d in &asked {
        params.extend(d.key_values.iter().cloned());
    }
    let rows: Vec<Row> = conn.exec(sql.as_str(), params).await.with_context(|| {
        format!(
            "cannot compare {}'s dead letters with the dead-letter channel's committed key",
            table.name
        )
    })?;
    let n = keys.len();
    let answers: Vec<(Vec<Canon>, Place)> = rows
        .into_iter()
        .map(|row| {
            let values = row.unwrap();
            let flag = |v: &Value| {
                matches!(v, Value::Int(1) | Value::UInt(1))
                    || matches!(v, Value::Bytes(b) if b.as_slice() == b"1")
            };
            let place = match (flag(&values[n]), flag(&values[n + 1])) {
                (_, true) => Place::Equal,
                (true, false) => Place::Before,
                (false, false) => Place::After,
            };
            (values[..n].iter().map(canon).collect(), place)
        })
        .collect();
    Ok(dead
        .iter()
        .map(|d| {
            let mine: Vec<Canon> = d.key_values.iter().map(canon).collect();
            answers
                .iter()
                .find(|(k, _)| *k == mine)
                .map_or(Place::After, |(_, p)| *p)
        })
        .collect())
}

/// A key value as the server gives it, integers by value whatever their protocol type.
#[derive(Debug, PartialEq, Eq)]
enum Canon {
    Int(i128),
    Bytes(Vec<u8>),
    Other(String),
}

fn canon(v: &Value) -> Canon {
    match v {
        Value::Int(i) => Canon::Int(i128::from(*i)),
        Value::UInt(u) => Canon::Int(i128::from(*u)),
        Value::Bytes(b) => Canon::Bytes(b.clone()),
        other => Canon::Other(format!("{other:?}")),
    }
}
