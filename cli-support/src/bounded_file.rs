//! Reading a file a flag names (a configuration, a password, a credentials file) within a
//! cap: opened without blocking; a regular file longer than the cap refused by its size
//! before a byte is read; anything else (a FIFO, a device, a file that grows while read) read
//! through `take` up to one byte past its limit, never whole. A path naming a device (`/dev/zero`), a FIFO nobody writes to, a sparse file of
//! gigabytes or a directory is refused naming the limit and what to give instead, not read
//! until memory runs out nor waited on without end.
//!
//! The one implementation of the workspace: the binaries read through it, and the SDK (its key,
//! profile, token and CA files, into memory zeroed on drop: [`read_into`]) and the emulator's
//! library (`option_file`) too, depending on this package without its default feature `cli`
//! (so on `libc` alone).

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a file that is not a regular one (a FIFO, `<(…)`) may take to deliver its bytes.
pub const FIFO_WAIT: Duration = Duration::from_secs(10);

/// The bytes of `path`, at most `limit` (`what` names the kind of file in the errors:
/// "password file"). The caller names the path.
///
/// # Errors
/// The I/O error of opening or reading it (a link loop: "too many levels of symbolic links");
/// `InvalidData` for a directory, past `limit` (naming it), or when a file that is not a
/// regular one gave nothing; `TimedOut` when a FIFO's writer is slower than [`FIFO_WAIT`].
pub fn read(path: &Path, what: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    read_into(path, what, limit, &mut bytes)?;
    Ok(bytes)
}

/// [`read`] into `bytes` (the caller's buffer: memory zeroed on drop for a secret), which is
/// left holding what was read when the read is refused.
///
/// # Errors
/// As [`read`].
pub fn read_into(path: &Path, what: &str, limit: u64, bytes: &mut Vec<u8>) -> std::io::Result<()> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(invalid(format!(
            "it is a directory, not a {what}: give the file itself"
        )));
    }
    if meta.is_file() && meta.len() > limit {
        return Err(invalid(format!(
            "it holds {} bytes, more than {}, more than any {what}: check the path (nothing \
             of it was read)",
            meta.len(),
            size(limit)
        )));
    }
    bytes.reserve(usize::try_from(meta.len().min(limit + 1)).unwrap_or(0));
    let before = bytes.len();
    read_waiting(file, bytes, limit)?;
    let read = (bytes.len() - before) as u64;
    if read > limit {
        return Err(invalid(format!(
            "it holds more than {}, more than any {what}: check the path (a device, a FIFO \
             or a sparse file is never read whole)",
            size(limit)
        )));
    }
    if read == 0 && !meta.is_file() {
        return Err(invalid(format!(
            "it is not a regular file (a FIFO, a device) and nothing wrote a {what} to it: give \
             the file itself"
        )));
    }
    Ok(())
}

/// The text of `path` as [`read`] reads it, refused when it is not UTF-8.
///
/// # Errors
/// As [`read`]; `InvalidData` when the bytes are not UTF-8.
pub fn read_text(path: &Path, what: &str, limit: u64) -> std::io::Result<String> {
    String::from_utf8(read(path, what, limit)?)
        .map_err(|_| invalid(format!("it is not UTF-8 text, not a {what}")))
}

/// `limit` for a message: bytes below a KiB, KiB below a MiB, MiB above.
fn size(limit: u64) -> String {
    match limit {
        0..1024 => format!("{limit} bytes"),
        1024..0x10_0000 => format!("{} KiB", limit >> 10),
        _ => format!("{} MiB", limit >> 20),
    }
}

fn open_nonblocking(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    options.open(path)
}

/// Reads `file` to its end or one byte past `limit`; a read that would block (a FIFO whose
/// writer has not written yet) is retried every 10 ms up to [`FIFO_WAIT`].
fn read_waiting(file: std::fs::File, bytes: &mut Vec<u8>, limit: u64) -> std::io::Result<()> {
    let until = Instant::now() + FIFO_WAIT;
    let mut limited = file.take(limit + 1);
    loop {
        match limited.read_to_end(bytes) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && Instant::now() < until => {
                std::thread::sleep(Duration::from_millis(10));
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!(
                        "its writer did not finish within {} s (a FIFO or a pipe): give the \
                         file itself",
                        FIFO_WAIT.as_secs()
                    ),
                ));
            }
            Err(e) => return Err(e),
        }
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each kind of hostile file is refused naming why; a small file is read whole.
    #[test]
    fn hostile_files_are_refused_and_small_ones_read() {
        let dir = std::env::temp_dir().join(format!("bounded-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let small = dir.join("small");
        std::fs::write(&small, "abc").unwrap();
        assert_eq!(read_text(&small, "key", 16).unwrap(), "abc");
        let e = read(Path::new("/dev/zero"), "key", 64 << 10).unwrap_err();
        assert!(
            e.to_string()
                .contains("more than 64 KiB, more than any key"),
            "{e}"
        );
        let sparse = dir.join("sparse");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(2 << 30)
            .unwrap();
        let e = read(&sparse, "key", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("more than 1 MiB"), "{e}");
        let e = read(&dir, "key", 16).unwrap_err();
        assert!(e.to_string().contains("a directory"), "{e}");
        let fifo = dir.join("fifo");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status();
        if made.is_ok_and(|s| s.success()) {
            let e = read(&fifo, "key", 16).unwrap_err();
            assert!(e.to_string().contains("nothing wrote a key"), "{e}");
        }
        let garbage = dir.join("garbage");
        std::fs::write(&garbage, [0xff, 0xfe, 0x80]).unwrap();
        let e = read_text(&garbage, "key", 16).unwrap_err();
        assert!(e.to_string().contains("not UTF-8"), "{e}");
        #[cfg(unix)]
        {
            let link = dir.join("loop");
            std::os::unix::fs::symlink(&link, &link).unwrap();
            assert!(read(&link, "key", 16).is_err());
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
