//! The durable local queue: one SQLite file (WAL) shared by the generator and the streamer.
//!
//! ```text
//!  generator ──INSERT (one tx per batch)──► q_<table>(id AUTOINCREMENT, txid, json)
//!                                    └────► ledger(generated, digest)   same transaction
//!  streamer  ──SELECT id > sent──► append(rows, offset tokens first..=last id)
//!            ◄── committed token ── channel
//!            ──DELETE id <= committed──► q_<table>;  ledger.committed += deleted (same tx)
//! ```
//!
//! The id is the offset token. AUTOINCREMENT ids are never reused, SQLite has a single writer,
//! so a reader never sees id `n + 1` before id `n`: "everything after the committed token" is
//! always exactly the rows that still have to be sent. The ledger keeps memory and file size
//! flat: per table a generated count, an order-independent digest of the TXIDs (wrapping sum of
//! a 64-bit hash) and the number of rows deleted because they were committed.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use sha2::{Digest, Sha256};

use crate::model::{Row, Table};

/// Per-table totals kept in the queue file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LedgerEntry {
    /// Rows ever enqueued.
    pub generated: u64,
    /// Wrapping sum of [`txid_hash`] over every enqueued TXID.
    pub digest: u64,
    /// Rows deleted from the queue because the channel committed them.
    pub committed: u64,
}

/// A batch read from the queue, ready to append.
#[derive(Debug, Clone, PartialEq)]
pub struct Batch {
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
pub struct Queue {
    conn: Connection,
    path: PathBuf,
}

/// The 64-bit hash of a TXID used in the ledger digest: the first 8 bytes of its SHA-256.
pub fn txid_hash(txid: &str) -> u64 {
    let d = Sha256::digest(txid.as_bytes());
    u64::from_le_bytes(d[..8].try_into().expect("sha256 has 32 bytes"))
}

fn queue_table(table: Table) -> &'static str {
    match table {
        Table::ResortTicket => "q_resort_ticket",
        Table::SeasonPass => "q_season_pass",
        Table::LiftRide => "q_lift_ride",
    }
}

impl Queue {
    /// Opens (creating if needed) the queue at `path`.
    ///
    /// # Errors
    /// If the file cannot be created or opened, or is not a queue database.
    pub fn open(path: &Path) -> Result<Self> {
        let conn = Connection::open(path)
            .with_context(|| format!("cannot open queue {}", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        // auto_vacuum must be set before the first table exists; it is a no-op afterwards.
        conn.execute_batch(
            "PRAGMA auto_vacuum = INCREMENTAL;
             PRAGMA journal_mode = WAL;
             PRAGMA synchronous = NORMAL;",
        )?;
        let mut ddl = String::from(
            "CREATE TABLE IF NOT EXISTS ledger (
                 tbl TEXT PRIMARY KEY, generated INTEGER NOT NULL DEFAULT 0,
                 digest INTEGER NOT NULL DEFAULT 0, committed INTEGER NOT NULL DEFAULT 0);
             CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
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
        conn.execute_batch(&format!("BEGIN IMMEDIATE; {ddl} COMMIT;"))
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
    pub fn open_read_only(path: &Path) -> Result<Self> {
        let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .with_context(|| format!("cannot open queue {} (does it exist?)", path.display()))?;
        conn.busy_timeout(Duration::from_secs(30))?;
        Ok(Queue {
            conn,
            path: path.to_owned(),
        })
    }

    /// Appends rows (any tables) and updates the ledger, in one transaction.
    ///
    /// # Errors
    /// On SQLite errors (disk full, locked for longer than the busy timeout).
    pub fn enqueue(&mut self, rows: &[Row]) -> Result<()> {
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

    /// Reads up to `max_rows` rows (and about `max_bytes`) with id greater than `after`.
    ///
    /// # Errors
    /// On SQLite errors.
    pub fn read_after(
        &self,
        table: Table,
        after: u64,
        max_rows: usize,
        max_bytes: usize,
    ) -> Result<Option<Batch>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT id, json FROM {} WHERE id > ?1 ORDER BY id LIMIT ?2",
            queue_table(table)
        ))?;
        let mut rows = stmt.query(params![after as i64, max_rows as i64])?;
        let mut batch: Option<Batch> = None;
        while let Some(r) = rows.next()? {
            let id = r.get::<_, i64>(0)? as u64;
            let json = r.get_ref(1)?.as_str()?;
            let b = batch.get_or_insert_with(|| Batch {
                first: id,
                last: id,
                rows: 0,
                ndjson: Vec::new(),
            });
            b.last = id;
            b.rows += 1;
            b.ndjson.extend_from_slice(json.as_bytes());
            b.ndjson.push(b'\n');
            if b.ndjson.len() >= max_bytes {
                break;
            }
        }
        Ok(batch)
    }

    /// Deletes the rows with id `<= through` and counts them as committed, in one transaction.
    /// Returns how many rows were deleted (0 when called again with the same id).
    ///
    /// # Errors
    /// On SQLite errors.
    pub fn delete_through(&mut self, table: Table, through: u64) -> Result<u64> {
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
    pub fn ledger(&self) -> Result<[LedgerEntry; 3]> {
        let mut out = [LedgerEntry::default(); 3];
        let mut stmt = self
            .conn
            .prepare_cached("SELECT tbl, generated, digest, committed FROM ledger")?;
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let table: Table = r.get::<_, String>(0)?.parse()?;
            out[table.index()] = LedgerEntry {
                generated: r.get::<_, i64>(1)? as u64,
                digest: r.get::<_, i64>(2)? as u64,
                committed: r.get::<_, i64>(3)? as u64,
            };
        }
        Ok(out)
    }

    /// Rows waiting in the queue (sent or not), per table.
    ///
    /// # Errors
    /// On SQLite errors.
    pub fn depth(&self) -> Result<[u64; 3]> {
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
    pub fn bind_channel(&mut self, table: Table, committed: Option<u64>) -> Result<u64> {
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
    pub fn set_generator_active(&mut self, active: bool) -> Result<()> {
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
    pub fn generator_active(&self) -> Result<bool> {
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

#[cfg(unix)]
fn process_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(not(unix))]
fn process_alive(_pid: i32) -> bool {
    true
}

#[cfg(test)]
mod tests {
    use chrono::NaiveDate;

    use super::*;
    use crate::generator::{Generator, GeneratorConfig};

    fn rows(n: usize) -> Vec<Row> {
        let mut g = Generator::new(&GeneratorConfig {
            seed: 9,
            start: NaiveDate::from_ymd_opt(2025, 12, 20).unwrap(),
            events_per_day: 1500,
        });
        (0..n).map(|_| g.next_row()).collect()
    }

    #[test]
    fn enqueue_read_delete_and_ledger() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
        let rows = rows(500);
        q.enqueue(&rows[..200]).unwrap();
        q.enqueue(&rows[200..]).unwrap();
        let rides: Vec<&Row> = rows
            .iter()
            .filter(|r| r.table() == Table::LiftRide)
            .collect();
        let ledger = q.ledger().unwrap();
        let l = ledger[Table::LiftRide.index()];
        assert_eq!(l.generated, rides.len() as u64);
        assert_eq!(
            l.digest,
            rides
                .iter()
                .fold(0u64, |a, r| a.wrapping_add(txid_hash(r.txid())))
        );
        assert_eq!(q.depth().unwrap().iter().sum::<u64>(), 500);

        // Ids are 1..=n per table, in order; batches respect the row and byte limits.
        let b = q
            .read_after(Table::LiftRide, 0, 10, usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!((b.first, b.last, b.rows), (1, 10, 10));
        let lines: Vec<&str> = std::str::from_utf8(&b.ndjson).unwrap().lines().collect();
        assert_eq!(lines[0], rides[0].to_json());
        let small = q.read_after(Table::LiftRide, 10, 1000, 1).unwrap().unwrap();
        assert_eq!((small.first, small.last), (11, 11));

        assert_eq!(q.delete_through(Table::LiftRide, 10).unwrap(), 10);
        assert_eq!(
            q.delete_through(Table::LiftRide, 10).unwrap(),
            0,
            "idempotent"
        );
        assert_eq!(q.ledger().unwrap()[Table::LiftRide.index()].committed, 10);
        let all = q
            .read_after(Table::LiftRide, 0, 100_000, usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!((all.first, all.rows), (11, rides.len() as u64 - 10));
        assert!(q
            .read_after(Table::LiftRide, all.last, 10, usize::MAX)
            .unwrap()
            .is_none());
    }

    #[test]
    fn bind_shifts_a_fresh_queue_past_the_channel_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
        let rows = rows(300);
        q.enqueue(&rows).unwrap();
        let n = q.ledger().unwrap()[Table::LiftRide.index()].generated;
        // A channel that already committed offset 100 from an older queue.
        assert_eq!(q.bind_channel(Table::LiftRide, Some(100)).unwrap(), 100);
        let all = q
            .read_after(Table::LiftRide, 100, 100_000, usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!((all.first, all.last), (101, 100 + n));
        // New rows continue after the shifted ids.
        q.enqueue(&rows[..50]).unwrap();
        let more = q
            .read_after(Table::LiftRide, 100 + n, 100_000, usize::MAX)
            .unwrap()
            .unwrap();
        assert_eq!(more.first, 101 + n);
        // Binding again is a no-op; a token beyond anything this queue produced is an error.
        assert_eq!(q.bind_channel(Table::LiftRide, Some(120)).unwrap(), 0);
        let err = q
            .bind_channel(Table::LiftRide, Some(1_000_000))
            .unwrap_err();
        assert!(err.to_string().contains("another queue"), "{err}");
        // No history: no shift.
        assert_eq!(q.bind_channel(Table::SeasonPass, None).unwrap(), 0);
    }

    #[test]
    fn generator_flag_tracks_this_process() {
        let dir = tempfile::tempdir().unwrap();
        let mut q = Queue::open(&dir.path().join("q.sqlite")).unwrap();
        assert!(!q.generator_active().unwrap());
        q.set_generator_active(true).unwrap();
        assert!(q.generator_active().unwrap());
        q.set_generator_active(false).unwrap();
        assert!(!q.generator_active().unwrap());
    }
}
