//! The durable local queue: one SQLite file (WAL) shared by the generator and the streamer.
//!
//! ```text
//!  generator ──INSERT (one tx per batch)──► q_<table>(id AUTOINCREMENT, txid, json)
//!                                    └────► ledger(generated, digest)   same transaction
//!  streamer  ──SELECT id > sent──► append(rows, offset tokens first..=last id)
//!            ◄── committed token ── channel
//!            ──DELETE id <= committed──► q_<table>;  ledger.committed += deleted (same tx)
//!            ──bad record id k──► dead_letters(tbl, id, txid, json, reason, at)
//!                                 DELETE id = k;  ledger.dead_lettered += 1   (same tx)
//! ```
//!
//! The id is the offset token. AUTOINCREMENT ids are never reused, SQLite has a single writer,
//! so a reader never sees id `n + 1` before id `n`: "everything after the committed token" is
//! always exactly the rows that still have to be sent. The ledger keeps memory and file size
//! flat: per table a generated count, an order-independent digest of the TXIDs (wrapping sum of
//! a 64-bit hash) and the number of rows deleted because they were committed.
//!
//! **Bad records.** A record that cannot become a row (see `validate.rs`: its
//! `json` is not text, empty, not JSON, not an object, or a value its column's type refuses)
//! ends a read batch: [`Queue::read_after`] returns the good rows before it, and then the
//! record alone as [`Next::Bad`]. [`Queue::dead_letter`] copies it unchanged (the raw `json`
//! value, whatever its SQLite type) into the `dead_letters` table of this same file, deletes it
//! from `q_<table>` and counts it in the ledger (`dead_lettered`, and the TXID column's hash
//! in `dead_digest`), all in one transaction. So a bad record is in `dead_letters`
//! **exactly once** whatever the crash: before the commit it is still queued and found again
//! by the next run; after it, it is no longer queued. The next read continues after it; the
//! channel's offset tokens simply skip its id.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::types::ValueRef;
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::ski_resort::model::{Row, Table};

/// Per-table totals kept in the queue file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct LedgerEntry {
    /// Rows ever enqueued.
    pub generated: u64,
    /// Wrapping sum of [`txid_hash`] over every enqueued TXID.
    pub digest: u64,
    /// Rows deleted from the queue because the channel committed them.
    pub committed: u64,
    /// Records moved to `dead_letters` because they could not become rows.
    pub dead_lettered: u64,
    /// Wrapping sum of [`txid_hash`] over the dead-lettered records' `txid` column.
    pub dead_digest: u64,
}

/// A queued record that cannot become a row, with the reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BadRecord {
    /// Its id (offset).
    pub id: u64,
    /// Why it cannot become a row (never quotes its values).
    pub reason: String,
}

/// What [`Queue::read_after`] found after the given id.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Next {
    /// Good rows, in order, up to (not including) the next bad record.
    Rows(Batch),
    /// The next record cannot become a row: dead-letter it before reading on.
    Bad(BadRecord),
}

/// A batch read from the queue, ready to append.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Batch {
    /// Id (offset) of the first row.
    pub first: u64,
    /// Id (offset) of the last row.
    pub last: u64,
    /// Number of rows.
    pub rows: u64,
    /// The rows as newline-delimited JSON.
    pub ndjson: Vec<u8>,
}

/// A connection to the queue file. Each task opens its own; SQLite serialises the writers.
#[derive(Debug)]
pub(super) struct Queue {
    conn: Connection,
    path: PathBuf,
}

/// The 64-bit hash of a TXID used in the ledger digest: the first 8 bytes of its SHA-256.
pub(super) fn txid_hash(txid: &str) -> u64 {
    let d = Sha256::digest(txid.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("sha256 has 32 bytes"))
}

/// How long a queue call waits for another process's lock before it fails.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Runs `f` again while SQLite answers "database is locked" at once, for up to
/// [`BUSY_TIMEOUT`]. SQLite waits out a lock with the busy timeout, except where waiting could
/// deadlock: two connections that both read a fresh file and then want to write it (the switch
/// to WAL, the first tables) would each wait for the other, so one is refused at once. The
/// generator and the streamer open the same queue, often at the same moment.
fn retry_busy<T>(mut f: impl FnMut() -> rusqlite::Result<T>) -> rusqlite::Result<T> {
    let until = std::time::Instant::now() + BUSY_TIMEOUT;
    let mut pause = Duration::from_millis(1);
    loop {
        match f() {
            Err(rusqlite::Error::SqliteFailure(e, _))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < until =>
            {
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

fn queue_table(table: Table) -> &'static str {
    match table {
        Table::ResortTicket => "q_resort_ticket",
        Table::SeasonPass => "q_season_pass",
        Table::LiftRide => "q_lift_ride",
    }
}

impl Queue {
    /// Opens (creating if needed) the queue at `path`. Other processes may open it at the same
    /// moment (the generator and the streamer do).
    ///
    /// # Errors
    /// If the file cannot be created or opened, is not a queue database, or another process
    /// holds it locked for longer than the busy timeout (30 s).
    pub(super) fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open queue {}", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        // auto_vacuum must be set before the first table exists; it is a no-op afterwards.
        retry_busy(|| {
            conn.execute_batch(
                "PRAGMA auto_vacuum = INCREMENTAL;
                 PRAGMA journal_mode = WAL;
                 PRAGMA synchronous = NORMAL;",
            )
        })
        .with_context(|| format!("cannot set up queue {}", path.display()))?;
        let mut ddl = String::from(
            "CREATE TABLE IF NOT EXISTS ledger (
                 tbl TEXT PRIMARY KEY, generated INTEGER NOT NULL DEFAULT 0,
                 digest INTEGER NOT NULL DEFAULT 0, committed INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
             CREATE TABLE IF NOT EXISTS dead_letters (
                 tbl TEXT NOT NULL, id INTEGER NOT NULL, txid, json, reason TEXT NOT NULL,
                 dead_lettered_at TEXT NOT NULL, PRIMARY KEY (tbl, id));",
        );
        for t in Table::ALL {
            ddl.push_str(&format!(
                "CREATE TABLE IF NOT EXISTS {q} (
                     id INTEGER PRIMARY KEY AUTOINCREMENT, txid TEXT NOT NULL, json TEXT NOT NULL);
                 INSERT OR IGNORE INTO ledger (tbl) VALUES ('{name}');",
                q = queue_table(t),
                name = t.name()
            ));
        }
        retry_busy(|| {
            conn.execute_batch(&format!("BEGIN IMMEDIATE; {ddl}"))
                .and_then(|()| add_dead_letter_columns(&conn))
                .and_then(|()| conn.execute_batch("COMMIT;"))
                .inspect_err(|_| {
                    // Nothing half-done stays open for the next try (or for the caller).
                    let _ = conn.execute_batch("ROLLBACK;");
                })
        })
        .with_context(|| format!("{} is not a ski_resort queue", path.display()))?;
        Ok(Queue {
            conn,
            path: path.to_owned(),
        })
    }

    /// Opens the queue read-only (for reports); fails if it does not exist.
    ///
    /// # Errors
    /// If the file does not exist or is not a queue database.
    pub(super) fn open_read_only(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open queue {} (does it exist?)", path.display()))?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        Ok(Queue {
            conn,
            path: path.to_owned(),
        })
    }

    /// Appends rows (any tables) and updates the ledger, in one transaction.
    ///
    /// # Errors
    /// On SQLite errors (disk full, locked for longer than the busy timeout).
    pub(super) fn enqueue(&mut self, rows: &[Row]) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut count = [0u64; 3];
        let mut sums = [0u64; 3];
        {
            let mut stmts = Table::ALL.map(|t| {
                format!(
                    "INSERT INTO {} (txid, json) VALUES (?1, ?2)",
                    queue_table(t)
                )
            });
            let mut prepared = Vec::with_capacity(3);
            for sql in &mut stmts {
                prepared.push(tx.prepare_cached(sql)?);
            }
            for row in rows {
                let i = row.table().index();
                prepared[i].execute(params![row.txid(), row.to_json()])?;
                count[i] += 1;
                sums[i] = sums[i].wrapping_add(txid_hash(row.txid()));
            }
        }
        for t in Table::ALL {
            let i = t.index();
            if count[i] > 0 {
                // SQLite turns an overflowing integer sum into a REAL, so wrap in Rust.
                let old: i64 = tx.query_row(
                    "SELECT digest FROM ledger WHERE tbl = ?1",
                    params![t.name()],
                    |r| r.get(0),
                )?;
                tx.execute(
                    "UPDATE ledger SET generated = generated + ?1, digest = ?2 WHERE tbl = ?3",
                    params![
                        count[i] as i64,
                        (old as u64).wrapping_add(sums[i]) as i64,
                        t.name()
                    ],
                )?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Reads up to `max_rows` rows (and about `max_bytes`) with id greater than `after`,
    /// stopping before the first record that cannot become a row; when that record comes
    /// first, returns it alone as [`Next::Bad`].
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn read_after(
        &self,
        table: Table,
        after: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Option<Next>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, json FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
            queue_table(table)
        ))?;
        let mut rows = stmt.query(params![after as i64, max_rows as i64])?;
        let mut batch: Option<Batch> = None;
        while let Some(r) = rows.next()? {
            let id = r.get::<_, i64>(0)? as u64;
            let checked = match r.get_ref(1)? {
                ValueRef::Text(t) => match std::str::from_utf8(t) {
                    Ok(json) => crate::ski_resort::validate::check(table, json),
                    Err(_) => Err("json is not valid UTF-8 text".to_string()),
                },
                other => Err(format!(
                    "json is {}, not text",
                    match other.data_type() {
                        rusqlite::types::Type::Null => "NULL",
                        rusqlite::types::Type::Integer => "an INTEGER",
                        rusqlite::types::Type::Real => "a REAL",
                        rusqlite::types::Type::Blob => "a BLOB",
                        rusqlite::types::Type::Text => "TEXT",
                    }
                )),
            };
            let line = match checked {
                Ok(line) => line,
                Err(reason) if batch.is_none() => {
                    return Ok(Some(Next::Bad(BadRecord { id, reason })))
                }
                Err(_) => break,
            };
            let b = batch.get_or_insert_with(|| Batch {
                first: id,
                last: id,
                rows: 0,
                ndjson: Vec::new(),
            });
            b.last = id;
            b.rows += 1;
            b.ndjson.extend_from_slice(line.as_bytes());
            b.ndjson.push(b'\n');
            if b.ndjson.len() >= max_bytes {
                break;
            }
        }
        Ok(batch.map(Next::Rows))
    }

    /// Moves record `bad` of `table` to `dead_letters` (unchanged, with the reason and the
    /// time), deletes it from the queue and counts it in the ledger, in one transaction.
    /// Returns false when the record is no longer queued (nothing is written then), so a
    /// record is dead-lettered at most once, and — as it stays queued until this commits —
    /// at least once.
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn dead_letter(&mut self, table: Table, bad: &BadRecord) -> Result<bool> {
        let q = queue_table(table);
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let txid: Option<String> = tx
            .query_row(
                &format!("SELECT CAST(txid AS TEXT) FROM {q} WHERE id = ?1"),
                params![bad.id as i64],
                |r| r.get(0),
            )
            .optional()?
            .flatten();
        let copied = tx.execute(
            &format!(
                "INSERT INTO dead_letters (tbl, id, txid, json, reason, dead_lettered_at)
                 SELECT ?1, id, txid, json, ?2, ?3 FROM {q} WHERE id = ?4"
            ),
            params![
                table.name(),
                bad.reason,
                chrono::Utc::now()
                    .format("%Y-%m-%d %H:%M:%S%.3f")
                    .to_string(),
                bad.id as i64
            ],
        )?;
        if copied == 0 {
            return Ok(false);
        }
        tx.execute(
            &format!("DELETE FROM {q} WHERE id = ?1"),
            params![bad.id as i64],
        )?;
        let old: i64 = tx.query_row(
            "SELECT dead_digest FROM ledger WHERE tbl = ?1",
            params![table.name()],
            |r| r.get(0),
        )?;
        let digest = (old as u64).wrapping_add(txid.as_deref().map_or(0, txid_hash));
        tx.execute(
            "UPDATE ledger SET dead_lettered = dead_lettered + 1, dead_digest = ?1 WHERE tbl = ?2",
            params![digest as i64, table.name()],
        )?;
        tx.commit()?;
        Ok(true)
    }

    /// The first dead letter of each table (by id), as `(id, reason)`, indexed by
    /// [`Table::index`].
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn first_dead_letters(&self) -> Result<[Option<(u64, String)>; 3]> {
        let mut out: [Option<(u64, String)>; 3] = Default::default();
        for t in Table::ALL {
            out[t.index()] = self
                .conn
                .query_row(
                    "SELECT id, reason FROM dead_letters WHERE tbl = ?1 ORDER BY id LIMIT 1",
                    params![t.name()],
                    |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, String>(1)?)),
                )
                .optional()
                // A queue written by an earlier version has no dead_letters table.
                .unwrap_or(None);
        }
        Ok(out)
    }

    /// Deletes the rows with id `<= through` and counts them as committed, in one transaction.
    /// Returns how many rows were deleted (0 when called again with the same id).
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn delete_through(&mut self, table: Table, through: u64) -> Result<u64> {
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let deleted = tx.execute(
            &format!("DELETE FROM {} WHERE id <= ?1", queue_table(table)),
            params![through as i64],
        )? as u64;
        if deleted > 0 {
            tx.execute(
                "UPDATE ledger SET committed = committed + ?1 WHERE tbl = ?2",
                params![deleted as i64, table.name()],
            )?;
        }
        tx.commit()?;
        if deleted > 0 {
            // Give freed pages back a few at a time so the file shrinks after a backlog.
            self.conn.execute_batch("PRAGMA incremental_vacuum(64);")?;
        }
        Ok(deleted)
    }

    /// The ledger of every table, indexed by [`Table::index`].
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn ledger(&self) -> Result<[LedgerEntry; 3]> {
        let mut out = [LedgerEntry::default(); 3];
        // A queue written by an earlier version (opened read-only, so not upgraded) lacks the
        // dead-letter columns: read them as 0.
        let upgraded = self
            .conn
            .prepare_cached("SELECT dead_lettered FROM ledger LIMIT 0")
            .is_ok();
        let mut stmt = self.conn.prepare_cached(if upgraded {
            "SELECT tbl, generated, digest, committed, dead_lettered, dead_digest FROM ledger"
        } else {
            "SELECT tbl, generated, digest, committed, 0, 0 FROM ledger"
        })?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let table: Table = r.get::<_, String>(0)?.parse()?;
            out[table.index()] = LedgerEntry {
                generated: r.get::<_, i64>(1)? as u64,
                digest: r.get::<_, i64>(2)? as u64,
                committed: r.get::<_, i64>(3)? as u64,
                dead_lettered: r.get::<_, i64>(4)? as u64,
                dead_digest: r.get::<_, i64>(5)? as u64,
            };
        }
        Ok(out)
    }

    /// Rows waiting in the queue (sent or not), per table.
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn depth(&self) -> Result<[u64; 3]> {
        let mut out = [0; 3];
        for t in Table::ALL {
            out[t.index()] = self.conn.query_row(
                &format!("SELECT COUNT(*) FROM {}", queue_table(t)),
                [],
                |r| r.get::<_, i64>(0),
            )? as u64;
        }
        Ok(out)
    }

    /// Binds this queue to a channel whose committed offset token is `committed`.
    ///
    /// The first time a queue meets a channel that already has history (its committed token
    /// is from an earlier queue), every id in this queue is shifted past that token, in one
    /// transaction, so no row of this queue is mistaken for one the channel already committed.
    /// Later calls only check consistency. Returns the shift applied (0 normally).
    ///
    /// # Errors
    /// On SQLite errors, or if the channel's token is ahead of everything this bound queue
    /// ever produced (the channel was fed by something else since).
    pub(super) fn bind_channel(&mut self, table: Table, committed: Option<u64>) -> Result<u64> {
        let key = format!("bound.{}", table.name());
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let bound: Option<String> = tx
            .query_row("SELECT value FROM meta WHERE key = ?1", params![key], |r| {
                r.get(0)
            })
            .optional()?;
        let q = queue_table(table);
        let seq: i64 = tx
            .query_row(
                "SELECT seq FROM sqlite_sequence WHERE name = ?1",
                params![q],
                |r| r.get(0),
            )
            .optional()?
            .unwrap_or(0);
        let committed = committed.unwrap_or(0);
        let mut shift = 0u64;
        if bound.is_none() {
            if committed > 0 {
                shift = committed;
                // Two steps through negative ids, so no shifted id collides with an unshifted one.
                tx.execute(
                    &format!("UPDATE {q} SET id = -(id + ?1)"),
                    params![shift as i64],
                )?;
                tx.execute(&format!("UPDATE {q} SET id = -id"), [])?;
                let rows = tx.execute(
                    "UPDATE sqlite_sequence SET seq = seq + ?1 WHERE name = ?2",
                    params![shift as i64, q],
                )?;
                if rows == 0 {
                    tx.execute(
                        "INSERT INTO sqlite_sequence (name, seq) VALUES (?1, ?2)",
                        params![q, shift as i64],
                    )?;
                }
            }
            tx.execute(
                "INSERT INTO meta (key, value) VALUES (?1, ?2)",
                params![key, shift.to_string()],
            )?;
        } else if committed > seq as u64 {
            anyhow::bail!(
                "channel for {table} has committed offset {committed}, beyond the last id {seq} of queue {}: \
                 the channel was fed from another queue since; stream this queue with a fresh channel \
                 (--channel-suffix) or start a new queue",
                self.path.display()
            );
        }
        tx.commit()?;
        Ok(shift)
    }

    /// Records that a generator (this process) is writing to the queue, or has finished.
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn set_generator_active(&mut self, active: bool) -> Result<()> {
        let value = if active {
            std::process::id().to_string()
        } else {
            String::new()
        };
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('generator_pid', ?1)
             ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            params![value],
        )?;
        Ok(())
    }

    /// Whether a generator is still writing: one registered and its process is alive.
    ///
    /// # Errors
    /// On SQLite errors.
    pub(super) fn generator_active(&self) -> Result<bool> {
        let pid: Option<String> = self
            .conn
            .query_row(
                "SELECT value FROM meta WHERE key = 'generator_pid'",
                [],
                |r| r.get(0),
            )
            .optional()?;
        Ok(match pid.as_deref().map(str::parse::<i32>) {
            Some(Ok(pid)) => process_alive(pid),
            _ => false,
        })
    }
}

/// Adds the ledger's dead-letter columns to a queue created by an earlier version.
fn add_dead_letter_columns(conn: &Connection) -> rusqlite::Result<()> {
    let has = conn
        .prepare("SELECT dead_lettered FROM ledger LIMIT 0")
        .is_ok();
    if !has {
        conn.execute_batch(
            "ALTER TABLE ledger ADD COLUMN dead_lettered INTEGER NOT NULL DEFAULT 0;
             ALTER TABLE ledger ADD COLUMN dead_digest INTEGER NOT NULL DEFAULT 0;",
        )?;
    }
    Ok(())
}

#[cfg(unix)]
fn process_alive(pid: i32) -> bool {
    u32::try_from(pid).is_ok_and(snowpipe_cli_support::process::alive)
}

#[cfg(not(unix))]
fn process_alive(_pid: i32) -> bool {
    true
}

#[cfg(test)]
mod tests;
