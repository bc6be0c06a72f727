//! [`Secret`]: a string that never reaches logs, `Debug` output or errors, and is wiped from
//! memory when its last copy is dropped; and the check that warns about a secret file other
//! users can read.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use zeroize::Zeroizing;

/// A secret string (private key PEM, passphrase, token). `Debug` and `Display` print `***`;
/// the bytes are zeroed when the last clone is dropped.
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct Secret(Arc<Zeroizing<String>>);

impl Secret {
    pub(crate) fn new(value: impl Into<String>) -> Self {
        Self(Arc::new(Zeroizing::new(value.into())))
    }

    /// The secret value. Never log or format it.
    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Reads a file that holds a secret (a private key, a profile with one) into memory that is
/// zeroed on drop, and warns (once per read, naming the path and the fix) when its
/// permissions let group or other users read it, as `ssh` does for keys.
///
/// # Errors
/// The I/O error of reading the file.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> std::io::Result<Zeroizing<String>> {
    let text = Zeroizing::new(std::fs::read_to_string(path)?);
    if let Some(mode) = readable_by_others(path) {
        tracing::warn!(
            path = %path.display(),
            mode = format_args!("{mode:o}"),
            "the {what} file can be read by other users of this machine: restrict it \
             (chmod 600 {})",
            path.display()
        );
    }
    Ok(text)
}

/// The file's permission bits when group or others may read or write it (Unix); `None`
/// when only its owner can, or elsewhere.
pub(crate) fn readable_by_others(path: &Path) -> Option<u32> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(path).ok()?.permissions().mode() & 0o777;
        (mode & 0o077 != 0).then_some(mode)
    }
    #[cfg(not(unix))]
    {
        let _ = path;
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_value() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "***");
        assert_eq!(s.expose(), "hunter2");
    }

    #[cfg(unix)]
    #[test]
    fn a_file_others_can_read_is_reported_with_its_mode() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rsa_key.p8");
        std::fs::write(&path, "k").unwrap();
        for (mode, reported) in [
            (0o600, None),
            (0o400, None),
            (0o644, Some(0o644)),
            (0o640, Some(0o640)),
            (0o604, Some(0o604)),
            (0o620, Some(0o620)),
        ] {
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
            assert_eq!(readable_by_others(&path), reported, "mode {mode:o}");
        }
        assert_eq!(&*read_secret_file(&path, "private key").unwrap(), "k");
        assert_eq!(readable_by_others(&dir.path().join("missing")), None);
    }
}
