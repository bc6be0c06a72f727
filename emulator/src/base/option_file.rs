//! Reading a file an option names (`--ddl`, `--public-key`, `--faults`, `--tls-cert`,
//! `--tls-key`) within a cap, as every binary of the workspace reads the files its flags name
//! (`snowpipe_cli_support::bounded_file`, the one implementation: a regular file longer than
//! the cap refused by its size before a byte is read; a device, a FIFO nobody writes to or a
//! huge file refused naming the limit, never read until memory runs out or waited on without
//! end). (The SDK reads its secret and CA files through the same module, `read_into`.)

use std::path::Path;

/// The most a key, certificate or fault plan file may hold: they are kilobytes.
pub const MAX_SMALL_FILE_BYTES: u64 = 1 << 20;

/// The most a `--ddl` script may hold.
pub const MAX_DDL_FILE_BYTES: u64 = 64 << 20;

/// How long a file that is not a regular one (a FIFO, `<(…)`) may take to deliver its bytes.
pub use snowpipe_cli_support::bounded_file::FIFO_WAIT;

/// The bytes of `path`, at most `limit` (`what` names the file in the errors: "public key",
/// read as "public key file").
///
/// # Errors
/// The I/O error of opening or reading it; `InvalidData` for a directory, past `limit` (naming
/// it) or when a FIFO gave nothing; `TimedOut` when a FIFO's writer is slower than
/// [`FIFO_WAIT`].
pub fn read(path: &Path, what: &str, limit: u64) -> std::io::Result<Vec<u8>> {
    snowpipe_cli_support::bounded_file::read(path, &format!("{what} file"), limit)
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
