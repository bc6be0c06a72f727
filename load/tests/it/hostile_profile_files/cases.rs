//! The hostile profile, `connections.toml` and key files: what each class writes, and what
//! the run must do with it.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use snowpipe_hostile::gen;
use snowpipe_hostile::{Rng, MIB};

use crate::common::key_file;

/// The classes of this surface: the harness's seven, and two of files themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Attack {
    /// Past the 1 MiB every secret file may hold (real bytes or a sparse file).
    Size,
    /// JSON or TOML nested far past any parser's stack.
    Depth,
    /// Many keys, sections or PEM lines.
    Count,
    /// Ports and budgets at the numbers' edges.
    Number,
    /// A byte order mark, invalid UTF-8, a NUL, control characters.
    Encoding,
    /// A key whose PEM or DER says something its bytes are not; an encrypted key with a
    /// wrong passphrase.
    Claim,
    /// The same key twice.
    Reserved,
    /// A FIFO without a writer, a directory, a symbolic link loop, `/dev/zero`.
    Kind,
    /// A file others may write.
    Mode,
}

impl Attack {
    pub(super) const ALL: [Attack; 9] = [
        Attack::Size,
        Attack::Depth,
        Attack::Count,
        Attack::Number,
        Attack::Encoding,
        Attack::Claim,
        Attack::Reserved,
        Attack::Kind,
        Attack::Mode,
    ];
}

/// Which file of the connection is the hostile one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Target {
    /// `--profile profile.json`.
    Profile,
    /// `--profile connections.toml`.
    Toml,
    /// The private key file a good profile names.
    Key,
}

/// What the run must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Want {
    /// Exit non-zero, stderr naming the hostile file and each of these.
    Refused(Vec<&'static str>),
    /// Refused as above, or connect and load every good row (a BOM, a duplicate key whose
    /// last value is good, thousands of keys the client ignores).
    RefusedOrLoaded,
    /// Load, and warn naming the file and `chmod`.
    Warned,
}

/// One case's files: the path given as `--profile`, the hostile file (named in the error),
/// and what must happen.
pub(super) struct Files {
    pub profile: PathBuf,
    pub hostile: PathBuf,
    pub want: Want,
    pub what: String,
}

/// The passphrase every case's profile carries: it must never be printed.
pub(super) const PASSPHRASE: &str = "pp-9f3c1e77b2d54a08-secret";

/// The endpoint of the lab (`http://127.0.0.1:PORT`) as a profile's keys and a TOML section's.
pub(super) struct Endpoint {
    pub url: String,
    pub host: String,
    pub port: String,
}

impl Endpoint {
    fn json(&self, key: &Path, extra: &str) -> String {
        format!(
            r#"{{"url":"{}","account":"LAB","user":"LOADER","private_key_file":"{}","private_key_passphrase":"{PASSPHRASE}"{extra}}}"#,
            self.url,
            key.display()
        )
    }

    fn toml(&self, key: &Path, extra: &str) -> String {
        format!(
            "[default]\naccount = \"LAB\"\nuser = \"LOADER\"\nhost = \"{}\"\nport = {}\n\
             protocol = \"http\"\nprivate_key_file = \"{}\"\n{extra}",
            self.host,
            self.port,
            key.display()
        )
    }
}

/// Writes `bytes` at `path`, mode 0600.
fn private(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
}

/// The lab's key's PEM text.
pub(super) fn key_text() -> String {
    std::fs::read_to_string(key_file()).unwrap()
}

/// The files a case of `attack` makes hostile, one run each: every one for the classes whose
/// variants differ most between them (counts, kinds of file), else one at random.
pub(super) fn targets(attack: Attack, rng: &mut Rng) -> Vec<Target> {
    match attack {
        // What a key's bytes claim is the key file's.
        Attack::Claim => vec![Target::Key],
        // Numbers and duplicate keys are settings: a profile's or a TOML section's.
        Attack::Number | Attack::Reserved => vec![*rng.pick(&[Target::Profile, Target::Toml])],
        Attack::Count | Attack::Kind => vec![Target::Profile, Target::Toml, Target::Key],
        _ => vec![*rng.pick(&[Target::Profile, Target::Toml, Target::Key])],
    }
}

/// How many variants a run of `attack` goes through on each target (one each, but every kind
/// of file for [`Attack::Kind`]).
pub(super) fn variants(attack: Attack) -> u64 {
    if attack == Attack::Kind {
        KINDS
    } else {
        1
    }
}

/// Writes the hostile file of `attack` at `target` under `dir` (`n`: a name unique to the
/// run; `variant`: which kind of file, for [`Attack::Kind`]).
pub(super) fn write(
    (attack, target, variant): (Attack, Target, u64),
    rng: &mut Rng,
    dir: &Path,
    n: &str,
    at: &Endpoint,
) -> Files {
    let name = match target {
        Target::Profile => format!("case{n}.profile.json"),
        Target::Toml => format!("case{n}.connections.toml"),
        Target::Key => format!("case{n}.key.p8"),
    };
    let hostile = dir.join(name);
    let (bytes, want, what) = if attack == Attack::Kind {
        kind(variant, &hostile)
    } else {
        content(attack, target, rng, at, &hostile)
    };
    if let Some(bytes) = bytes {
        private(&hostile, &bytes);
    }
    if attack == Attack::Mode {
        std::fs::set_permissions(&hostile, std::fs::Permissions::from_mode(0o666)).unwrap();
    }
    let profile = match target {
        Target::Key => {
            let p = dir.join(format!("case{n}.profile.json"));
            private(&p, at.json(&hostile, "").as_bytes());
            p
        }
        _ => hostile.clone(),
    };
    Files {
        profile,
        hostile,
        want,
        what: format!("{attack:?} {target:?}: {what}"),
    }
}

/// A good file of `target` with `extra` inside (JSON: `,"k":v` members; TOML: lines).
fn good(target: Target, at: &Endpoint, extra: &str) -> Vec<u8> {
    match target {
        Target::Profile => at.json(key_file(), extra).into_bytes(),
        Target::Toml => at.toml(key_file(), extra).into_bytes(),
        Target::Key => key_text().into_bytes(),
    }
}

type Content = (Option<Vec<u8>>, Want, String);

fn content(attack: Attack, target: Target, rng: &mut Rng, at: &Endpoint, path: &Path) -> Content {
    match attack {
        Attack::Size => size(rng, path),
        Attack::Depth => depth(target, rng, at),
        Attack::Count => count(target, rng, at),
        Attack::Number => number(target, rng, at),
        Attack::Encoding => encoding(target, rng, at),
        Attack::Claim => claim(rng),
        Attack::Reserved => reserved(target, rng, at),
        Attack::Kind => kind(0, path),
        Attack::Mode => (
            Some(good(target, at, "")),
            match target {
                // Snowflake's connector refuses a connections.toml others may write.
                Target::Toml => Want::Refused(vec!["others"]),
                _ => Want::Warned,
            },
            "mode 0666".into(),
        ),
    }
}

fn size(rng: &mut Rng, path: &Path) -> Content {
    if rng.one_in(2) {
        let n = rng.range(MIB + 1, 4 * MIB) as usize;
        let mut b = b"{\"account\":\"".to_vec();
        gen::long_run(&mut b, n, b'a');
        (Some(b), Want::Refused(vec!["1 MiB"]), format!("{n} bytes"))
    } else {
        // Sparse: 512 MiB the file system never stores.
        private(path, b"{");
        let f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
        f.set_len(512 * MIB).unwrap();
        (None, Want::Refused(vec!["1 MiB"]), "512 MiB, sparse".into())
    }
}

fn depth(target: Target, rng: &mut Rng, at: &Endpoint) -> Content {
    let deep = rng.range(10_000, 200_000) as usize;
    let bytes = match target {
        Target::Profile => {
            let mut v = Vec::new();
            gen::nested_json(&mut v, deep, rng);
            let extra = format!(",\"deep\":{}", String::from_utf8(v).unwrap());
            good(target, at, &extra)
        }
        Target::Toml => {
            // Arrays, or inline tables, nested `deep`.
            let (open, close) = if rng.one_in(2) {
                ("[", "]")
            } else {
                ("{a=", "}")
            };
            let extra = format!("deep = {}1{}\n", open.repeat(deep), close.repeat(deep));
            good(target, at, &extra)
        }
        Target::Key => {
            // A DER SEQUENCE nested `deep` inside a PEM (each level: 0x30, a long-form length).
            let mut der = Vec::new();
            for i in 0..deep.min(20_000) {
                let left = (deep.min(20_000) - i) * 6;
                der.push(0x30);
                der.push(0x84);
                der.extend_from_slice(&(left as u32).to_be_bytes());
            }
            pem("PRIVATE KEY", &der)
        }
    };
    (
        Some(bytes),
        Want::Refused(vec![]),
        format!("nested {deep} deep"),
    )
}

fn count(target: Target, rng: &mut Rng, at: &Endpoint) -> Content {
    let n = rng.range(5_000, 60_000) as usize;
    let bytes = match target {
        Target::Profile => {
            let extra: String = (0..n).map(|i| format!(",\"unknown_{i}\":{i}")).collect();
            good(target, at, &extra)
        }
        Target::Toml => sections(at, n),
        Target::Key => {
            // The real key's body in lines of one character each.
            let text = key_text();
            let mut out = String::from("-----BEGIN PRIVATE KEY-----\n");
            for line in text.lines().filter(|l| !l.starts_with("-----")) {
                for c in line.chars() {
                    out.push(c);
                    out.push('\n');
                }
            }
            out.push_str("-----END PRIVATE KEY-----\n");
            out.into_bytes()
        }
    };
    // Unknown keys and other sections are skipped, one character a line is still PEM to a
    // lenient reader: either answer is fine, within memory and time.
    (
        Some(bytes),
        Want::RefusedOrLoaded,
        format!("{n} keys, sections or lines"),
    )
}

/// A good `connections.toml` and `n` other sections after it.
pub(super) fn sections(at: &Endpoint, n: usize) -> Vec<u8> {
    let mut t = String::from_utf8(good(Target::Toml, at, "")).unwrap();
    for i in 0..n {
        t.push_str(&format!("\n[other_{i}]\naccount = \"A{i}\"\n"));
    }
    t.into_bytes()
}

fn number(target: Target, rng: &mut Rng, at: &Endpoint) -> Content {
    let edge = gen::edge_number(rng);
    let bytes = match target {
        Target::Profile | Target::Key => {
            let key = *rng.pick(&["memory_budget_bytes", "max_client_lag"]);
            good(Target::Profile, at, &format!(",\"{key}\":{edge}"))
        }
        Target::Toml => {
            let t = String::from_utf8(good(target, at, "")).unwrap();
            t.replace(&format!("port = {}", at.port), &format!("port = {edge}"))
                .into_bytes()
        }
    };
    (
        Some(bytes),
        Want::RefusedOrLoaded,
        format!("the number {edge}"),
    )
}

fn encoding(target: Target, rng: &mut Rng, at: &Endpoint) -> Content {
    let mut bytes = good(target, at, "");
    let (want, what) = match rng.below(4) {
        0 => {
            let mut b = gen::BOM.to_vec();
            b.append(&mut bytes);
            bytes = b;
            (Want::RefusedOrLoaded, "a byte order mark")
        }
        1 => {
            let at = bytes.len() / 2;
            let bad = gen::invalid_utf8(rng);
            bytes.splice(at..at, bad.iter().copied());
            (Want::Refused(vec!["UTF-8"]), "invalid UTF-8")
        }
        2 => {
            let at = bytes.len() / 2;
            bytes.insert(at, 0);
            (Want::Refused(vec![]), "a NUL")
        }
        _ => {
            // Control characters (an ANSI escape, a carriage return) inside a value.
            let s = String::from_utf8(bytes).unwrap();
            let c = String::from_utf8(gen::control_chars(rng).to_vec()).unwrap();
            let forged = format!("LAB\r\u{1b}[2K{}", c.replace('\0', ""));
            let escaped: String = forged
                .chars()
                .map(|ch| {
                    if target == Target::Profile && ch.is_control() {
                        format!("\\u{:04x}", ch as u32)
                    } else if ch.is_control() {
                        format!("\\u{:04X}", ch as u32)
                    } else {
                        ch.to_string()
                    }
                })
                .collect();
            bytes = match target {
                Target::Key => {
                    let mut k = s.into_bytes();
                    k.splice(40..40, forged.bytes());
                    k
                }
                _ => s
                    .replacen("\"LAB\"", &format!("\"{escaped}\""), 1)
                    .into_bytes(),
            };
            (Want::Refused(vec![]), "control characters")
        }
    };
    (Some(bytes), want, what.into())
}

/// A PEM block of `label` around `der`.
fn pem(label: &str, der: &[u8]) -> Vec<u8> {
    let body = base64(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in body.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out.into_bytes()
}

fn claim(rng: &mut Rng) -> Content {
    let (bytes, want, what): (Vec<u8>, Want, &str) = match rng.below(4) {
        0 => {
            // A DER length of 2^62 at the top.
            let mut der = vec![0x30, 0x88];
            der.extend_from_slice(&(1u64 << 62).to_be_bytes());
            der.extend(rng.bytes(64));
            (
                pem("PRIVATE KEY", &der),
                Want::Refused(vec![]),
                "DER claiming 2^62 bytes",
            )
        }
        1 => {
            // The encrypted fixture with a wrong passphrase (the profile's).
            let enc = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../tests/fixtures/test_key_encrypted.p8");
            (
                std::fs::read(enc).unwrap(),
                Want::Refused(vec!["passphrase"]),
                "an encrypted key, wrong passphrase",
            )
        }
        2 => {
            // The real body under labels that disagree with it and each other.
            let text = key_text()
                .replacen("BEGIN PRIVATE KEY", "BEGIN RSA PRIVATE KEY", 1)
                .replacen("END PRIVATE KEY", "END CERTIFICATE", 1);
            (
                text.into_bytes(),
                Want::Refused(vec![]),
                "labels that disagree",
            )
        }
        _ => {
            // The real key cut in half.
            let text = key_text();
            let cut = text.len() / 2;
            let mut b = text.as_bytes()[..cut].to_vec();
            b.extend_from_slice(b"\n-----END PRIVATE KEY-----\n");
            (b, Want::Refused(vec![]), "a key cut in half")
        }
    };
    (Some(bytes), want, what.into())
}

fn reserved(target: Target, rng: &mut Rng, at: &Endpoint) -> Content {
    let missing = "/nonexistent/hostile-key.p8";
    let (bytes, want) = match target {
        Target::Profile | Target::Key => {
            // `private_key_file` twice: a good one, then (or first) one that is not there.
            let bad_last = rng.one_in(2);
            let dup = format!(",\"private_key_file\":\"{missing}\"");
            let mut t = String::from_utf8(good(Target::Profile, at, "")).unwrap();
            if bad_last {
                t.insert_str(t.len() - 1, &dup);
            } else {
                t.insert_str(1, &format!("{},", &dup[1..]));
            }
            (t.into_bytes(), Want::RefusedOrLoaded)
        }
        Target::Toml => {
            let extra = format!("private_key_file = \"{missing}\"\n");
            (good(target, at, &extra), Want::Refused(vec![]))
        }
    };
    (Some(bytes), want, "a key given twice".into())
}

/// The kinds of file [`kind`] makes.
const KINDS: u64 = 4;

fn kind(variant: u64, path: &Path) -> Content {
    let what = match variant % KINDS {
        0 => {
            let made = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .expect("mkfifo");
            assert!(made.success(), "mkfifo");
            "a FIFO nobody writes"
        }
        1 => {
            std::fs::create_dir(path).unwrap();
            "a directory"
        }
        2 => {
            std::os::unix::fs::symlink(path, path).unwrap();
            "a symbolic link to itself"
        }
        _ => {
            std::os::unix::fs::symlink("/dev/zero", path).unwrap();
            "/dev/zero"
        }
    };
    (None, Want::Refused(vec![]), what.into())
}

/// Standard base64 with padding (a key's PEM body).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for c in bytes.chunks(3) {
        let n = (u32::from(c[0]) << 16)
            | (u32::from(*c.get(1).unwrap_or(&0)) << 8)
            | u32::from(*c.get(2).unwrap_or(&0));
        for (i, shift) in [18, 12, 6, 0].into_iter().enumerate() {
            out.push(if i <= c.len() {
                ABC[(n >> shift) as usize & 63] as char
            } else {
                '='
            });
        }
    }
    out
}
