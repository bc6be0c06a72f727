//! The scoped-token signing secret: 32 random bytes, kept outside the database (which the
//! SQL API reads), in memory and, with a data directory, in `<data-dir>/scoped-token.key`
//! (mode 0600) so that scoped tokens stay valid across a restart.
//!
//! Earlier emulators kept the secret in the database's `_emulator_meta` table, where
//! the SQL API could read it; `Storage::open` drops that table, and the secret starts afresh
//! (clients holding an old scoped token get 401 and exchange their JWT again).

use std::path::Path;

use rand::RngCore;

use crate::base::error::EmulatorError;

/// Name of the secret's file inside the data directory.
pub(crate) const SECRET_FILE: &str = "scoped-token.key";

/// Length of the secret in bytes (an HMAC-SHA256 key).
const LEN: usize = 32;

/// A new random secret from the operating system's generator.
pub(crate) fn random() -> Vec<u8> {
    let mut secret = vec![0u8; LEN];
    rand::rngs::OsRng.fill_bytes(&mut secret);
    secret
}

/// The secret stored in `data_dir`, or a new one stored there first (mode 0600).
///
/// # Errors
/// When the file cannot be read or written, or does not hold a secret; the message names
/// the file, never its contents.
pub(crate) fn load_or_create(data_dir: &Path) -> Result<Vec<u8>, EmulatorError> {
    let path = data_dir.join(SECRET_FILE);
    // Read within a cap, opened without blocking: a link to `/dev/zero`, a FIFO nobody writes
    // or a sparse file of gigabytes put there is refused naming the file, not read whole.
    match crate::base::option_file::read(&path, "scoped-token secret", LEN as u64) {
        Ok(secret) if secret.len() == LEN => {
            restrict(&path);
            Ok(secret)
        }
        Ok(other) => Err(EmulatorError::config(format!(
            "{} holds {} bytes, not a {LEN}-byte scoped-token secret; delete it and start \
             again (clients then exchange their JWT for a new scoped token)",
            path.display(),
            other.len()
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let secret = random();
            crate::base::private_fs::write_private_file(&path, &secret)?;
            Ok(secret)
        }
        // The hint follows the cause: the message holds both, and no source repeats it.
        Err(e) => Err(EmulatorError::io(format!(
            "cannot read the scoped-token secret {}: {e}; make it readable by the emulator's \
             user or delete it",
            path.display()
        ))),
    }
}

/// Tightens an existing secret file that others may read to 0600.
fn restrict(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if let Ok(meta) = std::fs::metadata(path) {
            if meta.permissions().mode() & 0o077 != 0 {
                let tightened =
                    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600));
                if let Err(e) = tightened {
                    tracing::warn!(path = %path.display(), error = %e,
                        "the scoped-token secret is readable by other users and cannot be restricted to 0600");
                }
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_secret_is_random_kept_in_a_private_file_and_checked() {
        assert_ne!(random(), random());
        let dir = tempfile::tempdir().unwrap();
        let first = load_or_create(dir.path()).unwrap();
        assert_eq!(first.len(), LEN);
        assert_eq!(
            load_or_create(dir.path()).unwrap(),
            first,
            "kept across a restart"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let path = dir.path().join(SECRET_FILE);
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            load_or_create(dir.path()).unwrap();
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "tightened");
        }
        std::fs::write(dir.path().join(SECRET_FILE), b"short").unwrap();
        let err = load_or_create(dir.path()).unwrap_err().to_string();
        assert!(err.contains("not a 32-byte scoped-token secret"), "{err}");
        assert!(err.contains("delete it"), "{err}");
    }
}
