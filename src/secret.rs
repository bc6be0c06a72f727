//! [`Secret`]: a string that never reaches logs, `Debug` output or errors, and is wiped from
//! memory when its last copy is dropped; reading a secret file (within its cap, through
//! `snowpipe_cli_support::bounded_file`) and the check that warns about one other users can read.

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use zeroize::Zeroizing;

use snowpipe_cli_support::bounded_file::read_into;

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

/// The most a secret file may hold: keys, profiles, `connections.toml` files and tokens are
/// kilobytes. A path naming a device, a FIFO or a huge file is refused here, not read whole.
pub(crate) const MAX_SECRET_FILE_BYTES: u64 = 1 << 20;

/// Reads a file that holds a secret (a private key, a profile with one) into memory that is
/// zeroed on drop, at most [`MAX_SECRET_FILE_BYTES`], and warns (once per read, naming the
/// path and the fix) when its permissions let group or other users read it, as `ssh` does
/// for keys.
///
/// Read as `snowpipe_cli_support::bounded_file` reads (a FIFO nobody writes to refused at
/// once, one whose writer is slow refused after `FIFO_WAIT`, a directory refused).
///
/// # Errors
/// Those of `bounded_file::read_into`; `InvalidData` when the text is not UTF-8.
pub(crate) fn read_secret_file(path: &Path, what: &str) -> std::io::Result<Zeroizing<String>> {
    let mut bytes = Zeroizing::new(Vec::new());
    read_into(
        path,
        &format!("{what} file"),
        MAX_SECRET_FILE_BYTES,
        &mut bytes,
    )?;
    let text = std::str::from_utf8(&bytes).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            "stream did not contain valid UTF-8",
        )
    })?;
    let text = Zeroizing::new(text.to_owned());
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

    /// A path naming a huge file, a device or a FIFO is refused past the limit, never read
    /// whole (keys, profiles and tokens are kilobytes).
    #[test]
    fn a_secret_file_is_read_up_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("profile.json");
        let file = std::fs::File::create(&path).unwrap();
        // Sparse: 64 MiB of NULs (valid UTF-8) that take no disk.
        file.set_len(64 << 20).unwrap();
        let e = read_secret_file(&path, "profile").unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
        assert!(
            e.to_string().contains("1 MiB") && e.to_string().contains("profile"),
            "{e}"
        );
        file.set_len(1 << 20).unwrap();
        assert_eq!(read_secret_file(&path, "profile").unwrap().len(), 1 << 20);
        #[cfg(unix)]
        {
            let e = read_secret_file(Path::new("/dev/zero"), "private key").unwrap_err();
            assert!(e.to_string().contains("1 MiB"), "{e}");
        }
    }

    /// A FIFO nobody writes to is refused at once (it blocked the read for ever); one whose
    /// writer writes (as `<(…)` does) is read.
    #[cfg(unix)]
    #[test]
    fn a_fifo_is_read_when_written_and_refused_at_once_when_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("key.p8");
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success());
        let started = std::time::Instant::now();
        let e = read_secret_file(&path, "private key").unwrap_err();
        assert!(
            e.to_string().contains("FIFO") && e.to_string().contains("nothing wrote"),
            "{e}"
        );
        assert!(
            started.elapsed() < snowpipe_cli_support::bounded_file::FIFO_WAIT,
            "{:?}",
            started.elapsed()
        );

        let writer = {
            let path = path.clone();
            std::thread::spawn(move || {
                use std::io::Write as _;
                // Blocks until the reader below has opened the FIFO.
                let mut w = std::fs::OpenOptions::new().write(true).open(path).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(50));
                w.write_all(b"secret text").unwrap();
            })
        };
        let mut text = None;
        for _ in 0..200 {
            match read_secret_file(&path, "private key") {
                Ok(t) if !t.is_empty() => {
                    text = Some(t);
                    break;
                }
                // Opened before the writer: nothing there yet, try again.
                _ => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        writer.join().unwrap();
        assert_eq!(text.as_deref().map(|t| t.as_str()), Some("secret text"));
    }
}
