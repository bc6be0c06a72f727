//! Where the server's binlog ends, for the lag in bytes: `SHOW BINARY LOGS` (each file's
//! size) on a side connection, polled every [`POLL_EVERY`] by a task of its own so that a slow
//! answer never holds the binlog loop.
//!
//! The bytes behind a read position are the rest of its file and every later file. The list
//! is capped at [`MAX_FILES`] (a server keeps far fewer; past it the lag is unknown).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::prelude::Queryable as _;

use crate::common::say::say_warn;
use crate::table_replay::source;

/// How often the server's binlog files are listed.
pub(super) const POLL_EVERY: Duration = Duration::from_secs(3);

/// The most binlog files read from `SHOW BINARY LOGS`.
pub(super) const MAX_FILES: usize = 100_000;

/// The server's binlog files and their sizes, as last listed (`None`: not yet, or failed).
pub(super) type Files = Arc<Mutex<Option<Vec<(String, u64)>>>>;

/// Bytes from `(file, pos)` to the end of the server's binlog in `files`; `None` when the file
/// is not listed.
pub(super) fn behind(files: &[(String, u64)], file: &str, pos: u64) -> Option<u64> {
    let i = files.iter().position(|(name, _)| name == file)?;
    let rest: u64 = files[i + 1..].iter().map(|(_, size)| size).sum();
    Some(files[i].1.saturating_sub(pos) + rest)
}

/// Lists the server's binlog files into `files` every [`POLL_EVERY`] until aborted; a failure
/// is one warning (again only once it worked in between) and an unknown lag.
pub(super) async fn poll(url: String, files: Files) {
    let mut conn = None;
    let mut warned = false;
    loop {
        let listed = list(&url, &mut conn).await;
        match listed {
            Ok(list) => {
                warned = false;
                *files.lock().unwrap_or_else(|e| e.into_inner()) = Some(list);
            }
            Err(e) => {
                conn = None;
                *files.lock().unwrap_or_else(|e| e.into_inner()) = None;
                if !warned {
                    say_warn!(
                        "warning: the binlog lag in bytes is unknown: SHOW BINARY LOGS failed \
                         ({e:#}); the source user needs REPLICATION CLIENT (MariaDB: BINLOG \
                         MONITOR)"
                    );
                    warned = true;
                }
            }
        }
        tokio::time::sleep(POLL_EVERY).await;
    }
}

async fn list(
    url: &str,
    conn: &mut Option<mysql_async::Conn>,
) -> anyhow::Result<Vec<(String, u64)>> {
    let c = match conn {
        Some(c) => c,
        None => conn.insert(
            tokio::time::timeout(Duration::from_secs(10), source::connect(url))
                .await
                .map_err(|_| anyhow::anyhow!("connecting took over 10 s"))??,
        ),
    };
    let mut out = Vec::new();
    let mut rows = c.query_iter("SHOW BINARY LOGS").await?;
    let mut too_many = false;
    rows.for_each(|mut row: mysql_async::Row| {
        if out.len() >= MAX_FILES {
            too_many = true;
            return;
        }
        let name: Option<String> = row.take(0);
        let size: Option<u64> = row.take(1);
        if let (Some(name), Some(size)) = (name, size) {
            out.push((name, size));
        }
    })
    .await?;
    anyhow::ensure!(!too_many, "more than {MAX_FILES} binlog files");
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::behind;

    #[test]
    fn the_rest_of_the_file_and_every_later_one() {
        let files = vec![
            ("b.000001".to_owned(), 1000),
            ("b.000002".to_owned(), 500),
            ("b.000003".to_owned(), 300),
        ];
        assert_eq!(behind(&files, "b.000002", 200), Some(300 + 300));
        assert_eq!(behind(&files, "b.000003", 300), Some(0));
        assert_eq!(
            behind(&files, "b.000003", 400),
            Some(0),
            "a list polled before"
        );
        assert_eq!(behind(&files, "b.000009", 4), None);
    }
}
