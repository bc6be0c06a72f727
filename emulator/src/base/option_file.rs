//! Reading a file an option names (`--ddl`, `--public-key`, `--faults`, `--tls-cert`,
//! `--tls-key`) within a cap: opened without blocking; a regular file longer than the cap
//! refused by its size before a byte is read; anything else (a FIFO, a device, a file that
//! grows while read) read through `take` up to one byte past its limit, never whole. A path naming a device (`/dev/zero`), a FIFO nobody writes to
//! or a huge file is refused naming the limit, not read until memory runs out or waited on
//! without end. (The SDK reads its secret and CA files the same way, `src/bounded_read.rs`.)

use std::io::Read as _;
use std::path::Path;
use std::time::{Duration, Instant};

/// The most a key, certificate or fault plan file may hold: they are kilobytes.
pub const MAX_SMALL_FILE_BYTES: u64 = 1 << 20;

/// The most a `--ddl` script may hold.
pub const MAX_DDL_FILE_BYTES: u64 = 64 << 20;

/// How long a file that is not a regular one (a FIFO, `<(…)`) may take to deliver its bytes.
pub const FIFO_WAIT: Duration = Duration::from_secs(10);

/// The bytes of `path`, at most `limit` (`what` names the file in the errors: "public key").
///
/// # Errors
/// The I/O error of opening or reading it; `InvalidData` past `limit` (naming it) or when a
/// FIFO gave nothing; `TimedOut` when a FIFO's writer is slower than [`FIFO_WAIT`].
pub fn read(path: &Path, what: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(invalid(format!("it is a directory, not a {what} file")));
    }
    if meta.is_file() && meta.len() > limit {
        return Err(invalid(format!(
            "it holds {} bytes, more than {}, more than any {what} file: check the path \
             (nothing of it was read)",
            meta.len(),
            size(limit)
        )));
    }
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len().min(limit + 1)).unwrap_or(0));
    let until = Instant::now() + FIFO_WAIT;
    let mut limited = file.take(limit + 1);
    loop {
        match limited.read_to_end(&mut bytes) {
            Ok(_) => break,
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
    if bytes.len() as u64 > limit {
        return Err(invalid(format!(
            "it holds more than {}, more than any {what} file: check the path (a device or \
             a FIFO is never read whole)",
            size(limit)
        )));
    }
    if bytes.is_empty() && !meta.is_file() {
        return Err(invalid(format!(
            "it is not a regular file and nothing wrote a {what} to it: give the file itself"
        )));
    }
    Ok(bytes)
}

/// `limit` for a message: bytes below a KiB, KiB below a MiB, MiB above.
fn size(limit: u64) -> String {
    match limit {
        0..1024 => format!("{limit} bytes"),
        1024..0x10_0000 => format!("{} KiB", limit >> 10),
        _ => format!("{} MiB", limit >> 20),
    }
}

fn invalid(message: String) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file past the limit and a device without end are refused naming the limit; a small
    /// file is read whole.
    #[test]
    fn a_file_is_read_up_to_its_limit() {
        let dir = tempfile::tempdir().unwrap();
        let small = dir.path().join("small");
        std::fs::write(&small, "abc").unwrap();
        assert_eq!(read(&small, "key", 16).unwrap(), b"abc");
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'x'; (2 << 20) + 1]).unwrap();
        let e = read(&big, "key", 2 << 20).unwrap_err().to_string();
        assert!(e.contains("more than 2 MiB, more than any key file"), "{e}");
        let e = read(Path::new("/dev/zero"), "key", 1 << 20).unwrap_err();
        assert!(e.to_string().contains("more than 1 MiB"), "{e}");
        let e = read(dir.path(), "key", 16).unwrap_err().to_string();
        assert!(e.contains("a directory"), "{e}");
    }
}
