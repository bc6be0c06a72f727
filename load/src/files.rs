//! Opening what the loader reads and writes: an input must be a regular file (a FIFO, a
//! device or a directory would block the reader or never end, and Ctrl-C could not stop it),
//! and the dead-letter file is never reached through a symbolic link and gets the input's
//! permissions (issue 81).

use std::fs::{File, OpenOptions};
use std::path::Path;

use anyhow::{bail, Context, Result};

use crate::names::shown;

/// Opens `path` for reading when it is a regular file (a symbolic link to one is followed).
/// The open does not block on a FIFO: it is opened non-blocking, checked, then refused.
///
/// # Errors
/// When it cannot be opened, or is not a regular file (saying what it is).
pub(crate) fn open_input(path: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = match options.open(path) {
        Ok(f) => f,
        // A socket cannot be opened at all (ENXIO): say what it is, as for the others.
        Err(e) => match std::fs::metadata(path) {
            Ok(m) if !m.is_file() && !m.is_dir() => return Err(not_a_file(path, m.file_type())),
            _ => return Err(e).with_context(|| format!("cannot open {}", shown(path))),
        },
    };
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        return Err(not_a_file(path, kind));
    }
    #[cfg(unix)]
    blocking(&file)?;
    Ok(file)
}

/// The refusal of an input that is not a regular file.
fn not_a_file(path: &Path, kind: std::fs::FileType) -> anyhow::Error {
    anyhow::anyhow!(
        "{} is {}, not a regular file: snowpipe load reads files (a FIFO or a device would \
         block it); copy the data to a file, or pipe it to `snowpipe load -`",
        shown(path),
        what(kind)
    )
}

/// What a file that is not a regular one is, for the message.
fn what(kind: std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        if kind.is_fifo() {
            return "a FIFO (named pipe)";
        }
        if kind.is_char_device() || kind.is_block_device() {
            return "a device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        return "a directory";
    }
    "not a file"
}

/// Clears `O_NONBLOCK` again (without effect on a regular file's reads, cleared anyway).
#[cfg(unix)]
#[allow(unsafe_code, reason = "fcntl on our own descriptor, through libc")]
fn blocking(file: &File) -> Result<()> {
    use std::os::unix::io::AsRawFd as _;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(std::io::Error::last_os_error()).context("cannot read the input blocking");
    }
    Ok(())
}

/// What `open` with `O_NOFOLLOW` answers for a symbolic link.
#[cfg(unix)]
const LINK: i32 = libc::ELOOP;
#[cfg(not(unix))]
const LINK: i32 = -1;

/// Opens the dead-letter file `path` of `input` to append: never through a symbolic link
/// (`O_NOFOLLOW`: a link planted at its name is refused, not followed), and when created, with
/// the input's permission bits (a 0600 input gets a 0600 dead-letter file; its records are
/// the input's data). An existing regular file is appended to.
///
/// # Errors
/// When it cannot be opened (a link, a directory, no permission), saying how to go on.
pub(crate) fn open_dead_letter(path: &Path, input: &Path) -> Result<File> {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
        let mode = std::fs::metadata(input).map_or(0o600, |m| m.permissions().mode() & 0o666);
        options
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK);
    }
    let file = options.open(path).map_err(|e| {
        // ELOOP under O_NOFOLLOW: a link at that name.
        let why = if e.raw_os_error() == Some(LINK) {
            "it must be a regular file, not a symbolic link: remove the link"
        } else {
            "make its directory writable, or remove what is at that name"
        };
        anyhow::Error::new(e).context(format!(
            "cannot open the dead-letter file {} ({why}), or pass --on-error abort",
            shown(path)
        ))
    })?;
    let kind = file.metadata()?.file_type();
    if !kind.is_file() {
        bail!(
            "the dead-letter file {} is {}, not a regular file: remove it, or pass --on-error \
             abort",
            shown(path),
            what(kind)
        );
    }
    #[cfg(unix)]
    blocking(&file)?;
    Ok(file)
}
