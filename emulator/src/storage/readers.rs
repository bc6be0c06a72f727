//! Read-only connections beside the writer: the SQL API, the console and
//! `Emulator::query` read here, so a long query never delays a commit.
//!
//! The database is always a file in WAL mode (an emulator without `--data-dir` keeps it in a
//! private temporary directory, see [`TempDir`]), so a reader sees the last committed
//! transaction while the writer goes on. Idle connections are kept for the next read, up to
//! [`IDLE_READERS`].

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::base::error::{sqlite_cause, EmulatorError};

/// Idle reader connections kept open.
const IDLE_READERS: usize = 4;

/// Opens `file` read-only with `query_only` set (the CLI's reads and every reader
/// connection).
///
/// # Errors
/// When SQLite cannot open the file.
pub(super) fn open_query_only(file: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open_with_flags(
        file,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.pragma_update(None, "query_only", "ON")?;
    Ok(conn)
}

/// The largest result one SQL API statement may build, in bytes of JSON (about); no value a
/// reader builds may be larger either.
pub(crate) const MAX_RESULT_BYTES: usize = 64 << 20;

/// How long a reader waits for a lock (only WAL recovery and checkpoint restarts take one).
const READER_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens a reader of `file`: read-only, `query_only`, with a busy timeout and a bound on the
/// values a statement builds.
///
/// # Errors
/// When SQLite cannot open the file.
fn open(file: &Path) -> rusqlite::Result<Connection> {
    let conn = open_query_only(file)?;
    conn.busy_timeout(READER_BUSY_TIMEOUT)?;
    // No value a read builds may be larger than a whole SQL API result may be
    // (`zeroblob(1e9)`, `printf('%.*c', 1e9, 'x')`); stored values are at most 16 MB.
    let max = i32::try_from(MAX_RESULT_BYTES).unwrap_or(i32::MAX);
    conn.set_limit(rusqlite::limits::Limit::SQLITE_LIMIT_LENGTH, max)?;
    Ok(conn)
}

/// The pool of read-only connections to one database file.
pub(super) struct Readers {
    file: PathBuf,
    idle: Mutex<Vec<Connection>>,
}

impl Readers {
    pub(super) fn new(file: PathBuf) -> Self {
        Self {
            file,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `f` on an idle reader (or a new one) on the calling thread.
    ///
    /// # Errors
    /// When no reader can be opened.
    pub(super) fn with<R>(&self, f: impl FnOnce(&Connection) -> R) -> Result<R, EmulatorError> {
        let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => open(&self.file).map_err(|e| {
                EmulatorError::storage(format!("cannot open a reader of {}", self.file.display()))
                    .with_source(sqlite_cause(&e))
            })?,
        };
        let out = f(&conn);
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        if idle.len() < IDLE_READERS {
            idle.push(conn);
        }
        Ok(out)
    }

    /// Runs `f` on a reader on a blocking thread and awaits it.
    ///
    /// # Errors
    /// When no reader can be opened, or the blocking task panicked.
    ///
    /// # Cancellation
    /// Dropping the future does not stop `f`; it runs to its end (the SQL API's statements
    /// have their own time limit).
    pub(super) async fn run<R: Send + 'static>(
        self: &Arc<Self>,
        f: impl FnOnce(&Connection) -> R + Send + 'static,
    ) -> Result<R, EmulatorError> {
        let me = Arc::clone(self);
        tokio::task::spawn_blocking(move || me.with(f))
            .await
            .map_err(|e| EmulatorError::storage(format!("a reader task failed: {e}")))?
    }
}

/// The private directory that holds the database of an emulator without `--data-dir`
/// (mode 0700, `snowpipe-emulator-<pid>-<random>` under the system's temporary directory),
/// removed when the storage is dropped. A process killed with SIGKILL cannot remove its
/// own; on Linux the next emulator removes those whose process is gone.
pub(super) struct TempDir(PathBuf);

/// The prefix of [`TempDir`] names.
const TEMP_PREFIX: &str = "snowpipe-emulator-";

impl TempDir {
    /// Creates a new directory; it must not exist yet (no directory planted in advance is
    /// used).
    ///
    /// # Errors
    /// When the directory cannot be created.
    pub(super) fn create() -> Result<Self, EmulatorError> {
        let root = std::env::temp_dir();
        remove_orphans(&root);
        let dir = root.join(format!(
            "{TEMP_PREFIX}{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let mut b = std::fs::DirBuilder::new();
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
        // The hint follows the cause: the message holds both, and no source repeats it.
        b.create(&dir).map_err(|e| {
            EmulatorError::io(format!(
                "cannot create the emulator's temporary database directory {}: {e}; set TMPDIR \
                 to a writable directory or use --data-dir",
                dir.display()
            ))
        })?;
        Ok(Self(dir))
    }

    pub(super) fn path(&self) -> &Path {
        &self.0
    }
}

/// Removes the temporary databases in `root` left by emulator processes that no longer run
/// (killed before they could remove them), when this user owns them. Linux only: it asks
/// `/proc` whether a process runs.
fn remove_orphans(root: &Path) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::MetadataExt;
        let Ok(entries) = std::fs::read_dir(root) else {
            return;
        };
        let me = std::fs::metadata("/proc/self").map(|m| m.uid()).ok();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name
                .to_str()
                .and_then(|n| n.strip_prefix(TEMP_PREFIX))
                .and_then(|rest| rest.split_once('-'))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let ours = entry
                .metadata()
                .is_ok_and(|m| m.is_dir() && Some(m.uid()) == me);
            if ours && !Path::new(&format!("/proc/{pid}")).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = root;
}

impl Drop for TempDir {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_dir_all(&self.0) {
            tracing::debug!(error = %e, dir = %self.0.display(), "cannot remove the temporary database");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Storage, DB_FILE};

    /// Without a data directory the database is a file in a private directory, read beside
    /// the writer, and removed with the storage.
    #[tokio::test]
    async fn a_temporary_database_is_private_read_beside_the_writer_and_removed() {
        let storage = Storage::open(None).unwrap();
        assert!(storage.path().is_none(), "not the user's data directory");
        let dir = storage._temp.as_ref().unwrap().path().to_path_buf();
        assert!(dir.join(DB_FILE).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o700);
        }
        storage
            .run(|c| c.execute_batch("CREATE TABLE t (v); INSERT INTO t VALUES (1), (2);"))
            .await
            .unwrap()
            .unwrap();
        let n: i64 = storage
            .read(|c| c.query_row("SELECT COUNT(*) FROM t", [], |r| r.get(0)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(n, 2, "a reader sees the committed rows");
        let write = storage
            .read_blocking(|c| c.execute("INSERT INTO t VALUES (3)", []))
            .unwrap();
        assert!(write.is_err(), "readers cannot write");
        drop(storage);
        assert!(!dir.exists(), "{} removed", dir.display());
    }

    /// A directory left by a killed emulator (its process is gone) is removed by the next one;
    /// one of a running process is not.
    #[cfg(target_os = "linux")]
    #[test]
    fn directories_of_dead_emulators_are_removed() {
        let root = std::env::temp_dir();
        // Beyond the kernel's largest pid (4,194,304): never a running process.
        let dead = root.join(format!(
            "{}4194305-{}",
            super::TEMP_PREFIX,
            std::process::id()
        ));
        let alive = root.join(format!("{}{}-test", super::TEMP_PREFIX, std::process::id()));
        for d in [&dead, &alive] {
            std::fs::create_dir_all(d).unwrap();
            std::fs::write(d.join(DB_FILE), b"").unwrap();
        }
        super::remove_orphans(&root);
        assert!(!dead.exists());
        assert!(alive.exists());
        std::fs::remove_dir_all(&alive).unwrap();
    }
}
