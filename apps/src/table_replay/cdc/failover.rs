//! Where the binlog is read from, checked against the server it is read from: at the start
//! and at each reconnect, before the stream opens.
//!
//! A binlog position (`FILE:POS`) means something only on the server that wrote it. Each
//! change token (`token.rs`, `c:`) names the server it was read from (`@@server_uuid`, else
//! `@@server_id`) and its transaction's GTID with its place in that transaction. Then:
//!
//! * every committed token is from this server (or from a release that did not record it):
//!   the binlog resumes at the earliest position, which must still be in `SHOW BINARY LOGS`;
//!   a purged one stops `follow`, naming the file gone, the oldest file the server has, the
//!   tables whose changes since their committed one cannot be read, and the fix
//!   (`--resnapshot-purged`: a new snapshot of those tables alone, into the same change
//!   tables, after a `p` row that drops every earlier row from the current state);
//! * a token is from another server (a failover): the binlog is read by GTID (MariaDB's
//!   `@slave_connect_state`, one GTID domain) from the earliest committed transaction, and
//!   each table skips what it committed by `(sequence, place in the transaction)`. This
//!   server must have applied the committed changes (its `@@gtid_binlog_state` holds their
//!   sequence), else it is not a member of the same replication topology and `follow`
//!   stops, naming both servers. Without GTIDs, a token from another server stops `follow`:
//!   its position is never trusted by file and offset alone.
//!
//! Ordering: change rows carry `_EPOCH`, how many times `follow` moved to another server
//! (written only when above 0, so change tables from before it keep working). The current
//! state orders by `(_EPOCH, _BINLOG_FILE, _BINLOG_POS, _ROW)`: positions compare only within
//! one server, and every change read after a move comes after every change read before it.
//! A counter rather than the GTID: snapshot rows and servers without GTIDs have none, and a
//! GTID orders only within its domain.

use anyhow::{bail, Context, Result};
use mysql_async::prelude::Queryable as _;
use mysql_async::Conn;

use crate::table_replay::cdc::changes;
use crate::table_replay::cdc::token::{BinlogPos, Gtid, Token};
use crate::table_replay::cdc::Followed;

/// The longest server identity a token carries (a UUID is 36 characters).
const IDENTITY_MAX: usize = 64;

/// The server being read: its identity, its binlog files and its GTID state.
#[derive(Debug, Clone)]
pub(super) struct Server {
    /// `@@server_uuid` (MySQL), else `@@server_id`.
    pub id: String,
    /// `SHOW BINARY LOGS`, oldest first; empty when the user may not run it (MariaDB's
    /// `BINLOG MONITOR`): then a purged position is named when the stream refuses it.
    pub files: Vec<String>,
    /// `@@gtid_binlog_state` (MariaDB), parsed.
    pub gtids: Vec<Gtid>,
}

impl Server {
    /// Reads the identity, binlog files and GTID state of the server `conn` is on.
    ///
    /// # Errors
    /// When the server cannot be asked (`SHOW BINARY LOGS` needs the binlog on).
    pub(super) async fn read(conn: &mut Conn) -> Result<Self> {
        let uuid: Option<String> = conn
            .query_first("SELECT @@server_uuid")
            .await
            .ok()
            .flatten();
        let id = match uuid.filter(|u| !u.is_empty()) {
            Some(u) => u,
            None => {
                let id: Option<u64> = conn.query_first("SELECT @@server_id").await?;
                id.context("the server has no server_id")?.to_string()
            }
        };
        // It goes into every token (at most 2,048 bytes): a UUID or a number, capped.
        if id.len() > IDENTITY_MAX || id.contains(':') || id.chars().any(char::is_control) {
            bail!(
                "the server's identity (@@server_uuid or @@server_id) is not a UUID or a number \
                 of at most {IDENTITY_MAX} characters: {:?}",
                id.chars().take(IDENTITY_MAX).collect::<String>()
            );
        }
        let rows: Vec<mysql_async::Row> = conn.query("SHOW BINARY LOGS").await.unwrap_or_default();
        let files = rows.iter().filter_map(|r| r.get::<String, _>(0)).collect();
        let state: Option<String> = conn
            .query_first("SELECT @@gtid_binlog_state")
            .await
            .ok()
            .flatten();
        let gtids = state
            .unwrap_or_default()
            .split(',')
            .filter_map(|g| Gtid::parse(g.trim()))
            .collect();
        Ok(Server { id, files, gtids })
    }

    /// The highest sequence this server's binlog holds in `domain`.
    fn seq_in(&self, domain: u32) -> Option<u64> {
        self.gtids
            .iter()
            .filter(|g| g.domain == domain)
            .map(|g| g.seq)
            .max()
    }
}

/// Where the stream opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Start {
    /// At a position of this server's binlog.
    At(BinlogPos),
    /// By GTID: MariaDB's `@slave_connect_state` (the transaction before the earliest one a
    /// table still needs, whose changes up to its committed one are skipped by GTID).
    Gtid(String),
}

impl std::fmt::Display for Start {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Start::At(p) => write!(f, "{p}"),
            Start::Gtid(g) => write!(f, "GTID {g} (after a move to another server)"),
        }
    }
}

/// Whether a committed token was read from another server than `server`.
fn foreign(t: &Token, server: &Server) -> bool {
    t.reader().is_some_and(|r| r.server != server.id)
}

/// The epoch this run writes: the highest committed one, plus one when a table's committed
/// change was read from another server.
pub(super) fn epoch(tables: &[Followed<'_>], server: &Server) -> u32 {
    let committed = tables.iter().filter_map(|f| f.committed.as_ref());
    let moved = committed.clone().any(|t| foreign(t, server));
    let top = committed
        .filter_map(|t| t.reader().map(|r| r.epoch))
        .max()
        .unwrap_or(0);
    top + u32::from(moved)
}

/// Where the binlog opens for `tables` on `server`; marks each table that skips by GTID.
///
/// # Errors
/// A purged position (the file gone, the oldest kept, the tables and the fix), a token from
/// another server that cannot be resumed by GTID, or a server that has not applied the
/// committed changes.
pub(super) fn plan(tables: &mut [Followed<'_>], server: &Server) -> Result<Start> {
    let moved = tables
        .iter()
        .any(|f| f.committed.as_ref().is_some_and(|t| foreign(t, server)));
    for f in tables.iter_mut() {
        f.by_gtid = moved;
    }
    if !moved {
        check_same_history(tables, server)?;
        let start = tables
            .iter()
            .filter_map(|f| f.committed.as_ref().map(|t| t.resume_at().clone()))
            .min()
            .context("no table to follow")?;
        check_not_purged(tables, server, &start)?;
        return Ok(Start::At(start));
    }
    let mut earliest: Option<Gtid> = None;
    for f in tables.iter() {
        let committed = f.committed.as_ref();
        let gtid = committed.and_then(|t| t.reader()).and_then(|r| r.gtid);
        let Some(gtid) = gtid else {
            bail!(another_server(f, committed, server));
        };
        if earliest.is_some_and(|e| e.domain != gtid.domain) {
            bail!(
                "after a move to another server, {}'s committed change is in GTID domain {} and \
                 another table's in {}: follow resumes by GTID in one domain only. To go on, {}",
                f.table.name,
                gtid.domain,
                earliest.map_or(0, |e| e.domain),
                changes::new_snapshot_fix([f.table.name.as_str()])
            );
        }
        match server.seq_in(gtid.domain) {
            Some(seq) if seq >= gtid.seq => {}
            have => bail!(
                "{}'s committed change is in transaction {gtid}, read from server {}; this \
                 server ({}) has {}: it is not a replica of that server that has caught up, so \
                 its binlog cannot resume after that change. Point follow at a server that has \
                 applied {gtid} (or wait for this one to catch up)",
                f.table.name,
                reader_id(committed),
                server.id,
                have.map_or_else(
                    || format!("no GTID in domain {}", gtid.domain),
                    |s| format!("domain {} only up to sequence {s}", gtid.domain)
                )
            ),
        }
        if earliest.is_none_or(|e| gtid.seq < e.seq) {
            earliest = Some(gtid);
        }
    }
    let e = earliest.context("no table to follow")?;
    let domains: std::collections::BTreeSet<u32> = server.gtids.iter().map(|g| g.domain).collect();
    if domains.len() > 1 {
        bail!(
            "after a move to another server, follow resumes by GTID in one domain only; this \
             server's binlog has GTID domains {domains:?}. To go on, {}",
            changes::new_snapshot_fix(tables.iter().map(|f| f.table.name.as_str()))
        );
    }
    Ok(Start::Gtid(format!(
        "{}-{}-{}",
        e.domain,
        e.server,
        e.seq.saturating_sub(1)
    )))
}

fn reader_id(t: Option<&Token>) -> String {
    t.and_then(|t| t.reader())
        .map_or_else(|| "unknown".to_owned(), |r| r.server.clone())
}

/// A table whose committed token cannot be resumed on another server.
fn another_server(f: &Followed<'_>, t: Option<&Token>, server: &Server) -> String {
    let what = match t {
        None => "no committed change".to_owned(),
        Some(t) => format!("its committed token {} has no GTID", t.render()),
    };
    format!(
        "this is a different server ({}) than the one follow read before; {}: {what}, so \
         where it stands in this server's binlog cannot be told (a binlog position means \
         something only on the server that wrote it). With MariaDB GTIDs a failover resumes \
         by GTID; here, {}",
        server.id,
        f.table.name,
        changes::new_snapshot_fix([f.table.name.as_str()])
    )
}

/// A committed GTID this server (by its identity the one `follow` read) has not written:
/// another server with the same `server_id`, or one whose binlog was reset.
fn check_same_history(tables: &[Followed<'_>], server: &Server) -> Result<()> {
    for f in tables {
        let Some(g) = f.committed.as_ref().and_then(|t| t.reader()?.gtid) else {
            continue;
        };
        if let Some(seq) = server.seq_in(g.domain).filter(|&s| s < g.seq) {
            bail!(
                "{}'s committed change is in transaction {g}, but this server ({}) has written \
                 GTID domain {} only up to sequence {seq}: it is not the server follow read \
                 (the same server_id on another server, or its binlog was reset), so its binlog \
                 positions cannot be trusted. Point follow at the server it read, or {}",
                f.table.name,
                server.id,
                g.domain,
                changes::new_snapshot_fix([f.table.name.as_str()])
            );
        }
    }
    Ok(())
}

/// Whether `f` resumes, on this same server, in a binlog file it no longer has (older than
/// its newest: purged).
pub(super) fn purged(f: &Followed<'_>, server: &Server) -> bool {
    f.committed.as_ref().is_some_and(|t| {
        let file = &t.resume_at().file;
        !foreign(t, server)
            && !server.files.contains(file)
            && server.files.last().is_some_and(|newest| file < newest)
    })
}

/// A resume position in a file the server no longer has: the error naming it.
fn check_not_purged(tables: &[Followed<'_>], server: &Server, start: &BinlogPos) -> Result<()> {
    if server.files.is_empty() || server.files.contains(&start.file) {
        return Ok(());
    }
    let oldest = server.files.first().map_or("none", String::as_str);
    let newest = server.files.last().map_or("", String::as_str);
    if start.file.as_str() > newest {
        bail!(
            "the binlog at {start} is not on this server (its newest file is {newest}): is \
             this the server follow read before? A binlog position means something only on \
             the server that wrote it. Point follow at that server; after a failover without \
             GTIDs, {}",
            changes::new_snapshot_fix(tables.iter().map(|f| f.table.name.as_str()))
        );
    }
    let gone = |f: &&Followed<'_>| {
        f.committed
            .as_ref()
            .is_some_and(|t| !server.files.contains(&t.resume_at().file))
    };
    let lost: Vec<String> = tables
        .iter()
        .filter(gone)
        .map(|f| {
            let t = f.committed.as_ref().map(Token::render).unwrap_or_default();
            format!("{} (committed {t})", f.table.name)
        })
        .collect();
    let names: Vec<&str> = tables
        .iter()
        .filter(gone)
        .map(|f| f.table.name.as_str())
        .collect();
    bail!(
        "the binlog at {start} is no longer on the server: {} was purged (expire_logs_days / \
         binlog_expire_logs_seconds, or PURGE BINARY LOGS); the oldest file the server has is \
         {oldest}. The changes committed so far stay in the change tables; the changes since \
         cannot be read for {}. To go on, run follow again with --resnapshot-purged (a new \
         snapshot of {} alone into the same change tables, their history kept), or {}",
        start.file,
        lost.join(", "),
        names.join(", "),
        changes::new_snapshot_fix(names.iter().copied())
    )
}
