//! The hostile names and the kinds of input that are not regular files, as the suite writes
//! them on disk.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt as _;
use std::path::{Path, PathBuf};

use snowpipe_hostile::Rng;

/// The classes: what is hostile about a name. Each case also makes one input of a hostile
/// kind ([`Kind`]), named with the case's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Name {
    /// A line break and a forged log line after it.
    Newline,
    /// ANSI escapes (erase the line, colours), a carriage return, a bell, DEL.
    Ansi,
    /// Other C0 and C1 control characters, a NUL excepted (no file name holds one).
    Control,
    /// Bytes that are not UTF-8.
    InvalidUtf8,
    /// A name of 240 to 255 bytes (NAME_MAX): its dead-letter file's name is longer.
    Long,
    /// A path of about 4,000 bytes (PATH_MAX is 4,096), through nested directories.
    DeepPath,
    /// A name starting with `-` (given after `--`, relative).
    Dash,
    /// Unicode's right-to-left override and zero-width characters (not control characters,
    /// but they reorder what a terminal shows).
    Bidi,
}

impl Name {
    pub(super) const ALL: [Name; 8] = [
        Name::Newline,
        Name::Ansi,
        Name::Control,
        Name::InvalidUtf8,
        Name::Long,
        Name::DeepPath,
        Name::Dash,
        Name::Bidi,
    ];
}

/// An input that is not a regular file (or whose dead-letter name is planted).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Fifo,
    Directory,
    LinkLoop,
    Device,
    Socket,
    Unreadable,
    /// A regular file with a bad record whose `<input>.rejected.ndjson` is a link to a victim.
    PlantedDeadLetter,
}

impl Kind {
    pub(super) const ALL: [Kind; 7] = [
        Kind::Fifo,
        Kind::Directory,
        Kind::LinkLoop,
        Kind::Device,
        Kind::Socket,
        Kind::Unreadable,
        Kind::PlantedDeadLetter,
    ];

    /// Whether the input is refused before the run starts (exit 2, nothing loaded): a path
    /// that cannot be resolved is a command line error, as a missing file is.
    pub(super) fn before_start(self) -> bool {
        self == Kind::LinkLoop
    }

    /// The words the input's error must hold.
    pub(super) fn named_by(self) -> &'static str {
        match self {
            Kind::Fifo => "a FIFO",
            Kind::Directory => "a directory",
            Kind::LinkLoop => "symbolic links",
            Kind::Device => "a device",
            Kind::Socket => "a socket",
            Kind::Unreadable => "ermission denied",
            Kind::PlantedDeadLetter => "symbolic link",
        }
    }
}

/// The file name (last component) of `name`, ending `.ndjson`, unique by `tag`.
pub(super) fn file_name(name: Name, rng: &mut Rng, tag: &str) -> OsString {
    let mut b: Vec<u8> = Vec::new();
    match name {
        Name::Newline => {
            b.extend_from_slice(format!("{tag}\nERROR forged log line for {tag}").as_bytes());
        }
        Name::Ansi => {
            b.extend_from_slice(format!("{tag}\r\x1b[2K\x1b[31mINFO all good\x07\x7f").as_bytes());
        }
        Name::Control => {
            b.extend_from_slice(tag.as_bytes());
            for _ in 0..8 {
                let c = rng.range(1, 0x20) as u8;
                if c != b'/' {
                    b.push(c);
                }
            }
            // C1 controls, as UTF-8.
            b.extend_from_slice("\u{85}\u{9b}31m".as_bytes());
        }
        Name::InvalidUtf8 => {
            b.extend_from_slice(tag.as_bytes());
            b.extend_from_slice(&[0xff, 0xfe, b'-', 0xc3, 0x28, 0xed, 0xa0, 0x80]);
        }
        Name::Long => {
            let len = rng.range(240, 256) as usize - ".ndjson".len();
            b.extend_from_slice(tag.as_bytes());
            b.resize(len, b'n');
        }
        Name::DeepPath | Name::Dash => {
            if name == Name::Dash {
                b.push(b'-');
            }
            b.extend_from_slice(tag.as_bytes());
        }
        Name::Bidi => {
            b.extend_from_slice(format!("{tag}\u{202e}nosj\u{200b}\u{2066}x\u{feff}").as_bytes());
        }
    }
    b.extend_from_slice(b".ndjson");
    OsString::from_vec(b)
}

/// The directory a case's files go in: `dir` itself, or (`DeepPath`) nested directories of
/// 200 bytes each so that the files' paths are about 4,000 bytes long.
pub(super) fn home(name: Name, dir: &Path, tag: &str) -> PathBuf {
    if name != Name::DeepPath {
        return dir.to_owned();
    }
    let mut p = dir.join(tag);
    let level = "d".repeat(200);
    while p.as_os_str().len() < 3_800 {
        p.push(&level);
    }
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// Makes `path` an input of `kind`; what must stay alive meanwhile (a socket's listener) and
/// the victim a planted link points at, if any.
pub(super) fn make(kind: Kind, path: &Path, bad_file: &[u8]) -> (Keep, Option<PathBuf>) {
    let mut keep = Keep(None);
    let mut victim = None;
    match kind {
        Kind::Fifo => {
            let made = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .expect("mkfifo");
            assert!(made.success(), "mkfifo");
        }
        Kind::Directory => std::fs::create_dir(path).unwrap(),
        Kind::LinkLoop => std::os::unix::fs::symlink(path, path).unwrap(),
        Kind::Device => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        Kind::Socket => {
            // Bound at a short name (a socket's path is at most 108 bytes), then renamed.
            let short = std::env::temp_dir().join(format!("hostile-{}.sock", std::process::id()));
            let _ = std::fs::remove_file(&short);
            keep.0 = Some(std::os::unix::net::UnixListener::bind(&short).unwrap());
            std::fs::rename(&short, path).unwrap();
        }
        Kind::Unreadable => {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::write(path, bad_file).unwrap();
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o000)).unwrap();
        }
        Kind::PlantedDeadLetter => {
            std::fs::write(path, bad_file).unwrap();
            let mut dead = path.as_os_str().to_owned();
            dead.push(".rejected.ndjson");
            let v = path.with_file_name("victim.txt");
            std::fs::write(&v, "precious\n").unwrap();
            std::os::unix::fs::symlink(&v, PathBuf::from(dead)).unwrap();
            victim = Some(v);
        }
    }
    (keep, victim)
}

/// What an input of a kind needs kept open while the binary runs.
pub(super) struct Keep(#[allow(dead_code)] Option<std::os::unix::net::UnixListener>);

/// Whether this process may read a file whatever its mode (root): then an unreadable file
/// cannot be made.
pub(super) fn reads_anything() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    #[allow(unsafe_code, reason = "geteuid through libc")]
    let uid = unsafe { libc::geteuid() };
    uid == 0
}
