//! Where spool files live, and how they are made, so that no one else on the machine can
//! redirect, read or replace them.
//!
//! The default directory is `$TMPDIR/snowpipe-load-<uid>` (the loader's own, not the shared
//! temporary directory): created `0700` when missing; when present it must be a directory, not
//! a link, owned by this user and writable by no one else, else the load stops naming the
//! problem and the fix. A `--spool-dir` must be owned by this user and writable by no one else
//! too (it may be a link to such a directory: the user chose it). In it, a file is created with
//! `O_CREAT | O_EXCL | O_NOFOLLOW` and mode `0600`; a file left by a killed run under the same
//! name is unlinked first (unlinking a link removes the link, never its target). Each file is
//! removed when its load ends (`spool::Spooled`), on errors and cancellation too.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// The default spool directory: the loader's own under the system's temporary directory.
pub(crate) fn default_dir() -> PathBuf {
    std::env::temp_dir().join(format!("snowpipe-load-{}", uid()))
}

#[cfg(unix)]
#[allow(unsafe_code, reason = "geteuid through libc")]
fn uid() -> u32 {
    // SAFETY: geteuid takes nothing, touches no memory and cannot fail.
    unsafe { libc::geteuid() }
}

#[cfg(not(unix))]
fn uid() -> u32 {
    0
}

/// Makes sure `dir` is a directory only this user can write into, creating it (`0700`) when
/// missing. `chosen`: the user named it (`--spool-dir`), so a link to such a directory is
/// taken; the default must not be a link.
///
/// # Errors
/// When it cannot be created, or is a link (the default), not a directory, owned by another
/// user, or writable by its group or others: each names the directory and the fix.
pub(crate) fn ensure(dir: &Path, chosen: bool) -> Result<()> {
    let fix = "pass --spool-dir DIR with a directory of your own that no one else can write";
    match std::fs::symlink_metadata(dir) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).with_context(|| {
                format!("cannot create the spool directory {}: {fix}", dir.display())
            })?;
        }
        Err(e) => {
            return Err(e).with_context(|| {
                format!(
                    "cannot look at the spool directory {}: {fix}",
                    dir.display()
                )
            })
        }
        Ok(meta) if meta.file_type().is_symlink() && !chosen => bail!(
            "the spool directory {} is a symbolic link, which someone else may have planted \
             there: remove it (the loader creates its own directory), or {fix}",
            dir.display()
        ),
        Ok(_) => {}
    }
    let meta = std::fs::metadata(dir)
        .with_context(|| format!("cannot look at the spool directory {}", dir.display()))?;
    if !meta.is_dir() {
        bail!(
            "the spool directory {} is not a directory: {fix}",
            dir.display()
        );
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        if meta.uid() != uid() {
            bail!(
                "the spool directory {} belongs to user {}, not to this user ({}): another \
                 user could replace the object's bytes there; {fix}",
                dir.display(),
                meta.uid(),
                uid()
            );
        }
        if meta.mode() & 0o022 != 0 {
            bail!(
                "the spool directory {} can be written by its group or by others (mode {:o}): \
                 they could plant links where the loader writes; `chmod go-w` it, or {fix}",
                dir.display(),
                meta.mode() & 0o7777
            );
        }
    }
    Ok(())
}

/// Creates the spool file `path` (in a directory [`ensure`] accepted) as this user's alone:
/// `0600`, never through a link, never an existing file (one a killed run left is unlinked
/// first).
///
/// # Errors
/// When it cannot be created (a full disk, a planted name that is a directory): naming it.
pub(crate) fn create_file(path: &Path) -> Result<std::fs::File> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(e).with_context(|| {
                format!(
                    "cannot remove {}, which an earlier run left in the spool directory",
                    path.display()
                )
            })
        }
        _ => {}
    }
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600).custom_flags(libc::O_NOFOLLOW);
    }
    options
        .open(path)
        .with_context(|| format!("cannot create the spool file {}", path.display()))
}

#[cfg(all(test, unix))]
mod tests {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};

    use super::*;

    #[test]
    fn a_missing_directory_is_made_private_and_its_files_are_0600() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/spool");
        ensure(&dir, false).unwrap();
        assert_eq!(std::fs::metadata(&dir).unwrap().mode() & 0o777, 0o700);
        let file = dir.join("x");
        drop(create_file(&file).unwrap());
        assert_eq!(std::fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
        // A file left by a killed run is replaced, not appended to.
        std::fs::write(&file, b"old").unwrap();
        drop(create_file(&file).unwrap());
        assert_eq!(std::fs::metadata(&file).unwrap().len(), 0);
    }

    #[test]
    fn a_planted_link_is_never_followed() {
        let tmp = tempfile::tempdir().unwrap();
        let victim = tmp.path().join("victim");
        std::fs::write(&victim, b"someone else's").unwrap();
        let dir = tmp.path().join("spool");
        ensure(&dir, false).unwrap();
        let planted = dir.join("object");
        std::os::unix::fs::symlink(&victim, &planted).unwrap();
        drop(create_file(&planted).unwrap());
        assert_eq!(std::fs::read(&victim).unwrap(), b"someone else's");
        assert!(!std::fs::symlink_metadata(&planted)
            .unwrap()
            .file_type()
            .is_symlink());
        // The default directory itself planted as a link is refused.
        let elsewhere = tmp.path().join("elsewhere");
        std::fs::create_dir(&elsewhere).unwrap();
        std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o700)).unwrap();
        let link = tmp.path().join("snowpipe-load-0");
        std::os::unix::fs::symlink(&elsewhere, &link).unwrap();
        let e = format!("{:#}", ensure(&link, false).unwrap_err());
        assert!(
            e.contains("symbolic link") && e.contains("--spool-dir"),
            "{e}"
        );
        // Chosen by the user, a link to a private directory is taken.
        ensure(&link, true).unwrap();
    }

    #[test]
    fn a_directory_others_can_write_or_own_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("shared");
        std::fs::create_dir(&dir).unwrap();
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o1777)).unwrap();
        let e = format!("{:#}", ensure(&dir, true).unwrap_err());
        assert!(
            e.contains("written by its group or by others") && e.contains("1777"),
            "{e}"
        );
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700)).unwrap();
        ensure(&dir, true).unwrap();
        if uid() == 0 {
            // As root (CI), a directory of another user's.
            std::os::unix::fs::chown(&dir, Some(65534), Some(65534)).unwrap();
            let e = format!("{:#}", ensure(&dir, true).unwrap_err());
            assert!(e.contains("belongs to user 65534"), "{e}");
        }
    }
}
