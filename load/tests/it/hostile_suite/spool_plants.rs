//! The spool as another user of the machine prepares it (issue 95, items 1 and 8): before a
//! bucket load, something is planted where the loader keeps an object's bytes: its default
//! directory `$TMPDIR/snowpipe-load-<uid>` or a `--spool-dir`. Each case runs the real binary
//! and asserts: nothing outside the spool is written (the planted link's target keeps its bytes
//! and gains no file), the run either loads every row once or stops non-zero naming the spool
//! directory with no raw control byte; and once the plant is removed, a rerun loads every row,
//! exactly once across both runs, and leaves no spool file.
#![cfg(unix)]

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

use snowpipe_hostile::{Case, Suite};

use super::{limits, summary};
use crate::buckets::lab_with;
use crate::common::moto::Moto;
use crate::common::{ndjson, Lab};

/// What is planted.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Plant {
    /// The default directory is a link to another user's directory.
    DirLink,
    /// The default directory is a link to nothing (its target made when the loader writes).
    DanglingLink,
    /// The directory exists, writable by its group.
    GroupWritable,
    /// The directory exists, writable by all (`1777`, as `/tmp`).
    WorldWritable,
    /// The directory belongs to another user (needs root to plant; skipped otherwise).
    ForeignOwner,
    /// A regular file where the directory would be.
    FileInPlace,
    /// A named pipe where the directory would be.
    FifoInPlace,
    /// The user's own private directory, holding other files: they stay as they are.
    StrangersFiles,
}

impl Plant {
    const ALL: [Plant; 8] = [
        Plant::DirLink,
        Plant::DanglingLink,
        Plant::GroupWritable,
        Plant::WorldWritable,
        Plant::ForeignOwner,
        Plant::FileInPlace,
        Plant::FifoInPlace,
        Plant::StrangersFiles,
    ];
}

/// The victim's file's bytes: what a planted link's target holds before and after.
const VICTIM_BYTES: &[u8] = b"another user's data\n";

/// Plants `plant` at `spool`; returns the victim directory (a link's target, or the stranger's
/// files' directory) to check after.
fn plant(lab: &Lab, case: &Case<Plant>, spool: &Path) -> Option<PathBuf> {
    let victim = lab.path(&format!("victim-{}", case.index));
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("file"), VICTIM_BYTES).unwrap();
    match case.class {
        Plant::DirLink => std::os::unix::fs::symlink(&victim, spool).unwrap(),
        Plant::DanglingLink => {
            std::os::unix::fs::symlink(victim.join("not-yet"), spool).unwrap();
        }
        Plant::GroupWritable | Plant::WorldWritable | Plant::ForeignOwner => {
            std::fs::create_dir(spool).unwrap();
            let mode = match case.class {
                Plant::GroupWritable => 0o770,
                Plant::WorldWritable => 0o1777,
                _ => 0o700,
            };
            std::fs::set_permissions(spool, std::fs::Permissions::from_mode(mode)).unwrap();
            if case.class == Plant::ForeignOwner {
                std::os::unix::fs::chown(spool, Some(65534), Some(65534)).ok()?;
            }
        }
        Plant::FileInPlace => std::fs::write(spool, VICTIM_BYTES).unwrap(),
        Plant::FifoInPlace => {
            let made = std::process::Command::new("mkfifo").arg(spool).status();
            assert!(made.is_ok_and(|s| s.success()), "mkfifo");
        }
        Plant::StrangersFiles => {
            std::fs::create_dir(spool).unwrap();
            std::fs::set_permissions(spool, std::fs::Permissions::from_mode(0o700)).unwrap();
            std::fs::write(spool.join("file"), VICTIM_BYTES).unwrap();
            return Some(spool.to_owned());
        }
    }
    Some(victim)
}

/// Removes what was planted at `spool` (a link, a file, a pipe or a directory).
fn unplant(spool: &Path) {
    match std::fs::symlink_metadata(spool) {
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(spool).unwrap(),
        Ok(_) => std::fs::remove_file(spool).unwrap(),
        Err(_) => {}
    }
}

/// `(COUNT(*), COUNT(DISTINCT ID))` of the rows with `lo <= ID < hi`.
fn landed(lab: &Lab, lo: u64, hi: u64) -> (u64, u64) {
    super::landed(lab, lo, hi - 1)
}

/// When the directory's entries last changed: a file created and removed in it moves it, so a
/// spool file that came and went through a link is seen.
fn entries_changed(dir: &Path) -> (i64, i64) {
    let m = std::fs::metadata(dir).unwrap();
    (m.mtime(), m.mtime_nsec())
}

/// The victim directory holds its one file with its bytes (the strangers' directory may hold
/// no spool file either once the run ended).
fn victim_untouched(case: &Case<Plant>, victim: &Path) {
    let names: Vec<String> = std::fs::read_dir(victim)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    if names != ["file"] {
        case.fail(format!("{} now holds {names:?}", victim.display()));
    }
    if std::fs::read(victim.join("file")).unwrap() != VICTIM_BYTES {
        case.fail("the victim's file was overwritten");
    }
}

fn check(moto: &Moto, lab: &Lab, case: &Case<Plant>) {
    const ROWS: u64 = 120;
    let (lo, hi) = (
        10_000 * (case.index as u64 + 1),
        10_000 * (case.index as u64 + 1) + ROWS,
    );
    let key = format!("spool-{}.ndjson", case.index);
    moto.put("exports", &key, ndjson(lo..hi).into_bytes());
    let url = format!("s3://exports/{key}");
    let tmp = lab.path(&format!("tmp-{}", case.index));
    std::fs::create_dir(&tmp).unwrap();
    let uid = std::fs::metadata(&tmp).unwrap().uid();
    // The default directory, or one the user names (as often as the case's PRNG says).
    let mut rng = case.rng.clone();
    let chosen = rng.one_in(3);
    let spool = if chosen {
        tmp.join("chosen")
    } else {
        tmp.join(format!("snowpipe-load-{uid}"))
    };
    let Some(victim) = plant(lab, case, &spool) else {
        eprintln!("{}: skipped (chown needs root)", case.context());
        return;
    };
    let run = |extra: &[&str]| {
        let mut cmd = lab.command(&[Path::new(&url)], extra);
        cmd.env("TMPDIR", &tmp).args(["--max-client-lag", "20ms"]);
        snowpipe_hostile::run(cmd, snowpipe_hostile::Input::Null, &limits())
            .expect("start snowpipe")
    };
    let dir = spool.display().to_string();
    let extra: Vec<&str> = if chosen {
        vec!["--spool-dir", &dir]
    } else {
        vec![]
    };
    let before = entries_changed(&victim);
    let first = run(&extra);
    if victim != spool && entries_changed(&victim) != before {
        case.fail(format!(
            "{} had a file created or removed in it (through the plant)",
            victim.display()
        ));
    }
    let stderr = first.stderr_text();
    if stderr
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        case.fail(format!("a raw control character on stderr: {stderr:?}"));
    }
    let (count, distinct) = landed(lab, lo, hi);
    match first.code {
        Some(0) if (count, distinct) == (ROWS, ROWS) => {}
        Some(0) => case.fail(format!("exit 0 with {count} rows ({distinct} distinct)")),
        Some(_) if stderr.contains("spool") && stderr.contains(&dir) => {}
        _ => case.fail(format!(
            "{}: stopped without naming the spool directory",
            first.summary()
        )),
    }
    victim_untouched(case, &victim);
    if victim != spool {
        unplant(&spool);
    }
    let second = run(&extra);
    if second.code != Some(0) {
        case.fail(format!(
            "the rerun after the plant's removal: {}",
            second.summary()
        ));
    }
    if landed(lab, lo, hi) != (ROWS, ROWS) {
        case.fail(format!(
            "after the rerun {:?} rows of {ROWS} (summary {})",
            landed(lab, lo, hi),
            summary(&second)
        ));
    }
    let left: Vec<String> = std::fs::read_dir(&spool)
        .map(|d| {
            d.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .filter(|n| n != "file")
                .collect()
        })
        .unwrap_or_default();
    if !left.is_empty() {
        case.fail(format!("spool files left: {left:?}"));
    }
    if victim == spool {
        victim_untouched(case, &victim);
    }
}

/// Every plant once, then two at random (`HOSTILE_SEED`, `HOSTILE_CASES`).
#[test]
fn hostile_spool() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    let suite = Suite::from_env("spool", Plant::ALL.len() + 2);
    suite.for_each(&Plant::ALL, |case| check(&moto, &lab, &case));
}
