//! Files only the emulator's user may read: the data directory (0700), its database (0600)
//! and written certificates (0600, never through a symlink).
//!
//! On other platforms than Unix the modes are not set; the other guarantees hold.

use std::io::Write;
use std::path::Path;

use crate::base::error::EmulatorError;

/// `what` failed; the cause is the source, printed after it.
fn io_err(what: String, e: std::io::Error) -> EmulatorError {
    EmulatorError::io(what).with_source(e)
}

/// Creates `dir` and its missing parents with mode 0700. An existing directory is left as
/// it is (it may be shared on purpose, such as `.`); see [`make_private_data_dir`] for the
/// data directory.
///
/// # Errors
/// When a directory cannot be created.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), EmulatorError> {
    let mut b = std::fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
    b.create(dir).map_err(|e| {
        io_err(
            format!(
                "cannot create the data directory {}; choose a writable --data-dir",
                dir.display()
            ),
            e,
        )
    })
}

/// Creates the data directory `dir` with mode 0700, or tightens an existing one to 0700
/// (logging the mode it had): the rows, tokens and keys in it are nobody else's business.
///
/// # Errors
/// When the directory cannot be created, or its mode cannot be changed (it is not the
/// emulator user's own).
pub(crate) fn make_private_data_dir(dir: &Path) -> Result<(), EmulatorError> {
    create_private_dir(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir)
            .map_err(|e| io_err(format!("cannot read {}", dir.display()), e))?
            .permissions()
            .mode()
            & 0o777;
        if mode != 0o700 {
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)).map_err(|e| {
                io_err(
                    format!(
                        "cannot make the data directory {} private (mode 0700, now {mode:o}); \
                         use a directory the emulator's user owns",
                        dir.display()
                    ),
                    e,
                )
            })?;
            tracing::warn!(
                dir = %dir.display(),
                "the data directory had mode {mode:o}: tightened to 0700"
            );
        }
    }
    Ok(())
}

/// Opens `path` for appending, created with mode 0600, and tightens an existing regular file
/// to 0600 (the request log: it records paths, queries and request ids).
///
/// # Errors
/// When the file cannot be opened or its mode cannot be changed.
pub(crate) fn open_private_append(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    let file = o.open(path)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = file.metadata()?;
        // Only a regular file: `/dev/stderr` or a FIFO is left as it is.
        if meta.is_file() && meta.permissions().mode() & 0o777 != 0o600 {
            file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(file)
}

fn new_private_file(path: &Path) -> std::io::Result<std::fs::File> {
    let mut o = std::fs::OpenOptions::new();
    o.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
    o.open(path)
}

/// Creates `path` empty with mode 0600 when it does not exist yet (SQLite then keeps that
/// mode for the database and gives it to its `-wal` and `-shm` files).
///
/// # Errors
/// When the file cannot be created.
pub(crate) fn precreate_private_file(path: &Path) -> Result<(), EmulatorError> {
    match new_private_file(path) {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io_err(format!("cannot create {}", path.display()), e)),
    }
}

/// Writes `contents` to `path` with mode 0600: into a new file next to it (created with
/// `O_EXCL`, so never through a symlink planted there) that is then renamed over `path`
/// (replacing a symlink at `path` instead of following it).
///
/// # Errors
/// When the directory is missing or not writable.
pub(crate) fn write_private_file(path: &Path, contents: &[u8]) -> Result<(), EmulatorError> {
    let what = || format!("cannot write {}; choose a writable path", path.display());
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".into());
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    let written = new_private_file(&tmp).and_then(|mut f| {
        f.write_all(contents)?;
        f.sync_all()
    });
    let renamed = written.and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = renamed {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err(what(), e));
    }
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(p: &Path) -> u32 {
        std::fs::symlink_metadata(p).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn private_dir_and_files_and_no_symlink_following() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("a/b");
        create_private_dir(&dir).unwrap();
        assert_eq!(mode(&dir), 0o700);
        let db = dir.join("db");
        precreate_private_file(&db).unwrap();
        precreate_private_file(&db).unwrap();
        assert_eq!(mode(&db), 0o600);

        let victim = root.path().join("victim");
        std::fs::write(&victim, "keep").unwrap();
        let link = dir.join("ca.pem");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        write_private_file(&link, b"PEM").unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep");
        assert_eq!(std::fs::read_to_string(&link).unwrap(), "PEM");
        assert_eq!(mode(&link), 0o600, "a regular file replaced the symlink");
    }

    /// An existing data directory or request log, whatever its mode, is made private.
    #[test]
    fn existing_data_dirs_and_logs_are_tightened() {
        let root = tempfile::tempdir().unwrap();
        for start in [0o755, 0o777, 0o700, 0o750] {
            let dir = root.path().join(format!("d{start:o}"));
            std::fs::create_dir(&dir).unwrap();
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(start)).unwrap();
            make_private_data_dir(&dir).unwrap();
            assert_eq!(mode(&dir), 0o700, "from {start:o}");
            let log = dir.join("requests.jsonl");
            std::fs::write(&log, "old\n").unwrap();
            std::fs::set_permissions(&log, std::fs::Permissions::from_mode(start & 0o666)).unwrap();
            drop(open_private_append(&log).unwrap());
            assert_eq!(mode(&log), 0o600, "from {:o}", start & 0o666);
            assert_eq!(
                std::fs::read_to_string(&log).unwrap(),
                "old\n",
                "appended to"
            );
        }
        let fresh = root.path().join("new.jsonl");
        drop(open_private_append(&fresh).unwrap());
        assert_eq!(mode(&fresh), 0o600);
    }
}
