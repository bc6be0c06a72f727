//! Hostile files for a flag that names one (a configuration, a password, a credentials or
//! secret file): the kinds that keep finding readers that read whole or open blocking, and
//! [`write()`], which makes one. A surface's test names the file in the flag and checks the
//! binary refuses it naming the file, within the budget, without hanging.

use std::path::{Path, PathBuf};

use crate::{check, Case, Limits, Outcome, Rng, MIB};

/// A kind of hostile file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `/dev/zero`: NUL bytes without end (valid UTF-8, no line break).
    Endless,
    /// A FIFO no one writes to.
    Fifo,
    /// A sparse file of 2 GiB.
    Huge,
    /// A directory.
    Directory,
    /// 1–3 MiB of random bytes.
    Garbage,
    /// A symbolic link to itself.
    LinkLoop,
}

impl FileKind {
    /// Every kind, in the order a default run sweeps them.
    pub const ALL: [FileKind; 6] = [
        FileKind::Endless,
        FileKind::Fifo,
        FileKind::Huge,
        FileKind::Directory,
        FileKind::Garbage,
        FileKind::LinkLoop,
    ];

    /// Whether a reader must refuse it for its size (the error names the limit).
    pub fn is_oversized(self) -> bool {
        matches!(self, FileKind::Endless | FileKind::Huge)
    }
}

/// Makes a file of `kind` at `path` (`/dev/zero` itself for [`FileKind::Endless`]) and returns
/// the path to name.
///
/// # Panics
/// When the file cannot be made (`mkfifo` missing, the directory not writable): the test's
/// set-up, not the binary under test.
pub fn write(kind: FileKind, rng: &mut Rng, path: &Path) -> PathBuf {
    match kind {
        FileKind::Endless => return PathBuf::from("/dev/zero"),
        FileKind::Fifo => {
            let made = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .expect("mkfifo");
            assert!(made.success(), "mkfifo {}", path.display());
        }
        FileKind::Huge => std::fs::File::create(path)
            .and_then(|f| f.set_len(2 << 30))
            .expect("a sparse file"),
        FileKind::Directory => std::fs::create_dir(path).expect("a directory"),
        FileKind::Garbage => {
            let len = (1 + rng.next_u64() % 3) * MIB;
            let bytes: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
            std::fs::write(path, bytes).expect("random bytes");
        }
        FileKind::LinkLoop => {
            #[cfg(unix)]
            std::os::unix::fs::symlink(path, path).expect("a link loop");
        }
    }
    path.to_owned()
}

/// The most a binary may hold at its peak (RSS) while it refuses a [`FileKind::Huge`] file:
/// a regular file is refused by its size (`metadata().len()`) before a byte of it is read, so
/// the binary's own start is all it costs (reading up to a 256 MiB cap first cost 268–281 MiB).
pub const HUGE_REFUSAL_RSS_BYTES: u64 = 64 * MIB;

/// What a binary named a hostile file of `case.class` must do: finish without a crash or a
/// hang, within `limits`' memory, refusing it with an error that names `file`, and, for a kind
/// refused for its size ([`FileKind::is_oversized`]), names `limit` too (`None`: the error
/// need not name one). A [`FileKind::Huge`] one is refused unread: peak RSS under
/// [`HUGE_REFUSAL_RSS_BYTES`], whatever the budget.
///
/// # Panics
/// When `file` is not UTF-8 (the test's own path).
pub fn check_refused(
    case: &Case<FileKind>,
    o: &Outcome,
    limits: &Limits,
    file: &Path,
    limit: Option<&str>,
) {
    check::no_crash(case, o);
    check::rss_within(case, o, limits);
    check::refused_naming(case, o, &[file.to_str().expect("a UTF-8 path")]);
    if let Some(limit) = limit.filter(|_| case.class.is_oversized()) {
        check::refused_naming(case, o, &[limit]);
    }
    let allowed = HUGE_REFUSAL_RSS_BYTES;
    if case.class == FileKind::Huge && o.peak_rss_bytes > allowed {
        case.fail(format!(
            "peak RSS {} MiB refusing a sparse 2 GiB file, over {} MiB: a regular file over \
             the cap is refused by its size, unread: {}",
            o.peak_rss_bytes >> 20,
            allowed >> 20,
            o.summary()
        ));
    }
}
