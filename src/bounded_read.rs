//! Reading a file that configuration names (a secret file, a CA bundle) within a cap: opened
//! without blocking; a regular file longer than the cap refused by its size before a byte is
//! read; anything else (a FIFO, a device, a file that grows while read) read through `take`
//! up to one byte past its limit, never whole. A path
//! naming a device (`/dev/zero`), a FIFO nobody writes to, or a huge file is refused naming the
//! limit, not read until memory runs out or waited on without end.

use std::path::Path;

/// How long a file that is not a regular one (a FIFO, `<(…)` process substitution) may take to
/// deliver its bytes: a writer that never finishes is refused after this, not waited for
/// without end.
pub(crate) const FIFO_WAIT: std::time::Duration = std::time::Duration::from_secs(10);

/// Reads `path` into `bytes`, at most `limit` bytes (`what` names the kind of file in the
/// errors: "private key", "CA").
///
/// The file is opened without blocking (`O_NONBLOCK`): a FIFO nobody writes to reads as
/// empty and is refused as such, one whose writer is slower than [`FIFO_WAIT`] is refused
/// then, and `<(…)` (a pipe whose writer is there) is read as it comes.
///
/// # Errors
/// The I/O error of reading the file; `InvalidData` past the limit (naming it and `what`, never
/// the content) or when a FIFO gave nothing; `TimedOut` past [`FIFO_WAIT`].
pub(crate) fn read_bounded(
    path: &Path,
    what: &str,
    limit: u64,
    bytes: &mut Vec<u8>,
) -> std::io::Result<()> {
    let file = open_nonblocking(path)?;
    let fifo = is_fifo(&file);
    let meta = file.metadata()?;
    if meta.is_file() && meta.len() > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it holds {} bytes, more than {} MiB, more than any {what} file: check the \
                 path (nothing of it was read)",
                meta.len(),
                limit >> 20
            ),
        ));
    }
    let hint = meta.len().min(limit + 1);
    bytes.reserve(usize::try_from(hint).unwrap_or(0));
    read_waiting(file, bytes, limit)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "it holds more than {} MiB, more than any {what} file: check the path (a device \
                 or a FIFO is never read whole)",
                limit >> 20
            ),
        ));
    }
    if bytes.is_empty() && fifo {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("it is a FIFO and nothing wrote a {what} to it: give the file itself"),
        ));
    }
    Ok(())
}

/// Opens `path` to read, without blocking on a FIFO that has no writer (Unix).
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

fn is_fifo(file: &std::fs::File) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        file.metadata().is_ok_and(|m| m.file_type().is_fifo())
    }
    #[cfg(not(unix))]
    {
        let _ = file;
        false
    }
}

/// Reads `file` to its end or one byte past `limit`; a read that would block (a FIFO whose
/// writer has not written yet) is retried every 10 ms up to [`FIFO_WAIT`].
fn read_waiting(file: std::fs::File, bytes: &mut Vec<u8>, limit: u64) -> std::io::Result<()> {
    use std::io::Read as _;
    let until = std::time::Instant::now() + FIFO_WAIT;
    let mut limited = file.take(limit + 1);
    loop {
        match limited.read_to_end(bytes) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                if std::time::Instant::now() >= until {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        format!(
                            "its writer did not finish within {} s (a FIFO or a pipe): give \
                             the file itself",
                            FIFO_WAIT.as_secs()
                        ),
                    ));
                }
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            Err(e) => return Err(e),
        }
    }
}
