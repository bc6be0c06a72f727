//! The hostile-input suite (issue 81, item 21) on `snowpipe load`'s file names and file kinds,
//! through the real binary under an address-space cap.
//!
//! Each case gives `snowpipe load` four inputs: a good file, a regular file with a hostile name
//! (a line break and a forged log line, ANSI escapes, control characters, bytes that are not
//! UTF-8, 240–255 bytes, a path of ~4,000 bytes, a leading `-`, a right-to-left override)
//! holding good rows and one bad record, an input of a hostile kind with the same kind of name
//! (a FIFO nobody writes, a directory, a link to itself, a link to `/dev/zero`, a socket, an
//! unreadable file, or a file whose dead-letter name is a planted link), and a good file.
//! Asserted: no crash or hang, peak RSS within the budget + 64 MiB; the good files and the
//! hostile-named file land every good row exactly once; the bad record is a dead letter beside
//! the hostile-named file; the hostile kind is refused in its `per_file` entry naming its kind;
//! stderr names each refused input with its control characters escaped and holds none raw (no
//! forged line), and a planted link's target is untouched. `HOSTILE_SEED` / `HOSTILE_CASES` /
//! `HOSTILE_ONLY`: see `hostile/README.md`.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::Value;
use snowpipe_hostile::{check, Case, Input, Limits, Outcome, Suite, MIB};

use crate::common::{ndjson, Lab};

mod kinds;
use kinds::{Kind, Name};

/// `snowpipe load` runs with the SDK's default memory budget.
const BUDGET: u64 = 256 * MIB;
/// Good rows in each file.
const GOOD: u64 = 20;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    l.wall = Duration::from_secs(30);
    l
}

/// A file of `GOOD` rows from `base + 1`, a bad record after the first half.
fn with_bad_record(base: u64) -> Vec<u8> {
    let mut b = ndjson(base + 1..=base + GOOD / 2).into_bytes();
    b.extend_from_slice(b"{\"id\": not json\n");
    b.extend_from_slice(ndjson(base + GOOD / 2 + 1..=base + GOOD).as_bytes());
    b
}

/// The line of [`with_bad_record`]'s bad record.
const BAD_LINE: u64 = GOOD / 2 + 1;

fn landed(lab: &Lab, lo: u64, hi: u64) -> (u64, u64) {
    let sql = format!(
        r#"SELECT COUNT(*), COUNT(DISTINCT ID) FROM "D.S.T" WHERE ID BETWEEN {lo} AND {hi}"#
    );
    let r = lab.emulator.as_ref().unwrap().query(&sql).expect("query");
    (r[0][0].as_u64().unwrap(), r[0][1].as_u64().unwrap())
}

/// How a name must appear in logs and errors: lossy UTF-8, control characters escaped.
fn shown(path: &Path) -> String {
    path.to_string_lossy()
        .chars()
        .map(|c| {
            if c.is_control() {
                c.escape_debug().to_string()
            } else if reorders(c) {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// The bidirectional and invisible characters a name must not show raw.
fn reorders(c: char) -> bool {
    matches!(c, '\u{61c}' | '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
}

/// `<input>.rejected.ndjson`, or where that name is longer than NAME_MAX (255 bytes), the one
/// file beside it whose name starts as the input's and ends so.
fn dead_letter_of(path: &Path) -> PathBuf {
    let name = path.file_name().unwrap().as_encoded_bytes();
    if name.len() + ".rejected.ndjson".len() <= 255 {
        let mut d = path.as_os_str().to_owned();
        d.push(".rejected.ndjson");
        return PathBuf::from(d);
    }
    let found: Vec<PathBuf> = std::fs::read_dir(path.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let n = p.file_name().unwrap().as_encoded_bytes();
            n.starts_with(&name[..40]) && n.ends_with(b".rejected.ndjson")
        })
        .collect();
    found.into_iter().next().unwrap_or_default()
}

/// The per-file entries of the summary, in the inputs' order.
fn per_file<C: std::fmt::Debug>(case: &Case<C>, o: &Outcome) -> Vec<Value> {
    let last = o.stdout_text().lines().last().unwrap_or("null").to_owned();
    let s: Value = serde_json::from_str(&last).unwrap_or(Value::Null);
    match s["per_file"].as_array() {
        Some(a) => a.clone(),
        None => case.fail(format!("no summary with per_file: {}", o.summary())),
    }
}

/// stderr holds no raw control character but line breaks, and no line starts with what a
/// name tried to forge.
fn no_forged_line(case: &Case<Name>, o: &Outcome) {
    let err = o.stderr_text();
    if let Some(c) = err
        .chars()
        .find(|c| (c.is_control() && *c != '\n') || reorders(*c))
    {
        case.fail(format!("stderr holds a raw {c:?}: {}", o.summary()));
    }
    if let Some(l) = err
        .lines()
        .find(|l| l.starts_with("ERROR forged") || l.starts_with("INFO all good"))
    {
        case.fail(format!("a forged log line: {l:?}"));
    }
}

struct Inputs {
    good_a: PathBuf,
    named: PathBuf,
    odd: PathBuf,
    good_b: PathBuf,
}

fn inputs(
    lab: &Lab,
    case: &mut Case<Name>,
    kind: Kind,
    base: u64,
) -> (Inputs, kinds::Keep, Option<PathBuf>) {
    let tag = format!("c{}", case.index);
    let dir = lab.path(&format!("names{}", case.index));
    std::fs::create_dir_all(&dir).unwrap();
    let home = kinds::home(case.class, &dir, &tag);
    let named = home.join(kinds::file_name(
        case.class,
        &mut case.rng,
        &format!("{tag}n"),
    ));
    std::fs::write(&named, with_bad_record(base + 100)).unwrap();
    let odd = home.join(kinds::file_name(
        case.class,
        &mut case.rng,
        &format!("{tag}k"),
    ));
    let (keep, victim) = kinds::make(kind, &odd, &with_bad_record(base + 200));
    let good_a = dir.join("good_a.ndjson");
    std::fs::write(&good_a, ndjson(base + 1..=base + GOOD)).unwrap();
    let good_b = dir.join("good_b.ndjson");
    std::fs::write(&good_b, ndjson(base + 301..=base + 300 + GOOD)).unwrap();
    let i = Inputs {
        good_a,
        named,
        odd,
        good_b,
    };
    (i, keep, victim)
}

/// The arguments naming the inputs: absolute, but a leading `-` reaches the binary as it is
/// (relative, after `--`).
fn args(case: &Case<Name>, i: &Inputs, with_odd: bool) -> Vec<OsString> {
    let dir = i.good_a.parent().unwrap();
    [&i.good_a, &i.named, &i.odd, &i.good_b]
        .into_iter()
        .filter(|p| with_odd || **p != i.odd)
        .map(|p| match (case.class, p.strip_prefix(dir)) {
            (Name::Dash, Ok(r)) => r.as_os_str().to_owned(),
            _ => p.as_os_str().to_owned(),
        })
        .collect()
}

fn run(lab: &Lab, case: &Case<Name>, i: &Inputs, with_odd: bool) -> Outcome {
    let mut cmd = lab.command(&[], &["--format", "ndjson", "--max-client-lag", "20ms"]);
    cmd.current_dir(i.good_a.parent().unwrap())
        .arg("--")
        .args(args(case, i, with_odd));
    snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start snowpipe")
}

/// An input refused before the run starts: exit 2 naming it (escaped), nothing loaded.
fn refused_before_start(lab: &Lab, case: &Case<Name>, i: &Inputs, base: u64, o: &Outcome) {
    check::no_crash(case, o);
    no_forged_line(case, o);
    let odd = args(case, i, true).swap_remove(2);
    check::refused_naming(case, o, &[&shown(Path::new(&odd))]);
    if o.code != Some(2) || landed(lab, base + 1, base + 400) != (0, 0) {
        case.fail(format!(
            "not refused before the run started: {}",
            o.summary()
        ));
    }
}

fn check_case(
    lab: &Lab,
    case: &Case<Name>,
    kind: Option<Kind>,
    i: &Inputs,
    base: u64,
    o: &Outcome,
) {
    check::no_crash(case, o);
    check::rss_within(case, o, &limits());
    no_forged_line(case, o);
    for (what, lo) in [("the first good file", 1), ("the last good file", 301)] {
        let got = landed(lab, base + lo, base + lo + GOOD - 1);
        if got != (GOOD, GOOD) {
            case.fail(format!(
                "{what}: landed {got:?}, want {GOOD}: {}",
                o.summary()
            ));
        }
    }
    let got = landed(lab, base + 101, base + 100 + GOOD);
    if got != (GOOD, GOOD) {
        case.fail(format!(
            "the file named {:?}: landed {got:?}, want {GOOD}: {}",
            i.named,
            o.summary()
        ));
    }
    let dead_path = dead_letter_of(&i.named);
    let mut usual = i.named.as_os_str().to_owned();
    usual.push(".rejected.ndjson");
    if dead_path != usual {
        // Not where the README says: the run says where.
        check::names(case, "stderr", &o.stderr_text(), &shown(&dead_path));
    }
    let dead = std::fs::read_to_string(&dead_path).unwrap_or_default();
    let line: Option<Value> = dead
        .lines()
        .next()
        .and_then(|l| serde_json::from_str(l).ok());
    if line.as_ref().and_then(|d| d["line"].as_u64()) != Some(BAD_LINE) {
        case.fail(format!(
            "no dead letter at line {BAD_LINE} beside {:?}: {dead:?}; {}",
            i.named,
            o.summary()
        ));
    }
    let files = per_file(case, o);
    let Some(kind) = kind else {
        return;
    };
    let entry = files.get(2).cloned().unwrap_or(Value::Null);
    let error = entry["error"].as_str().unwrap_or_default();
    if entry["ok"] == true || !error.contains(kind.named_by()) {
        case.fail(format!(
            "the {kind:?} input is not refused naming {:?}: {entry}",
            kind.named_by()
        ));
    }
    let odd = args(case, i, true).swap_remove(2);
    check::names(case, "stderr", &o.stderr_text(), &shown(Path::new(&odd)));
    if o.code == Some(0) {
        case.fail(format!("exit 0 with a refused input: {}", o.summary()));
    }
}

#[test]
fn hostile_file_names() {
    let lab = Lab::new();
    let suite = Suite::from_env("file_names", Name::ALL.len());
    let root = kinds::reads_anything();
    let failures = suite.failures(&Name::ALL, |mut case| {
        let base = 1_000_000 * (case.index as u64 + 1);
        let mut kind = Kind::ALL[case.index % Kind::ALL.len()];
        if case.index >= Name::ALL.len() {
            kind = *case.rng.pick(&Kind::ALL);
        }
        let (i, keep, victim) = inputs(&lab, &mut case, kind, base);
        // Root reads a file whatever its mode: no unreadable file to give.
        let kind = if kind == Kind::Unreadable && root {
            eprintln!(
                "hostile file_names case {}: running as root, no unreadable file",
                case.index
            );
            std::fs::set_permissions(&i.odd, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .ok();
            None
        } else {
            Some(kind)
        };
        let o = match kind {
            Some(k) if k.before_start() => {
                refused_before_start(&lab, &case, &i, base, &run(&lab, &case, &i, true));
                // Nothing lost: the run without it loads the rest.
                run(&lab, &case, &i, false)
            }
            _ => run(&lab, &case, &i, true),
        };
        drop(keep);
        eprintln!(
            "hostile file_names case {} ({:?}, {kind:?}): {}",
            case.index,
            case.class,
            o.summary().lines().next().unwrap_or("")
        );
        let refused = kind.filter(|k| !k.before_start());
        check_case(&lab, &case, refused, &i, base, &o);
        if let Some(v) = victim {
            if std::fs::read_to_string(&v).unwrap_or_default() != "precious\n" {
                case.fail("a planted dead-letter link was followed: its target changed");
            }
        }
    });
    suite.finish(failures);
}
