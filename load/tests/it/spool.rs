//! The spool of bucket objects as another user of the machine would attack it (round six): the
//! loader kept an object's bytes at a predictable name in the shared temporary directory,
//! created through a planted link (overwriting the link's target) and readable by all. Now
//! the default directory is the loader's own (`$TMPDIR/snowpipe-load-<uid>`, 0700), a planted
//! link there or a `--spool-dir` others can write is refused naming the fix, and nothing is
//! written through either; a clean rerun loads every row once and leaves no spool file.
#![cfg(unix)]

use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::Path;

use crate::buckets::lab_with;
use crate::common::moto::Moto;
use crate::common::ndjson;

const URL: &str = "s3://exports/daily.ndjson";

/// The default spool directory of the loader run by `uid` with `TMPDIR=tmp`.
fn default_spool(tmp: &Path, uid: u32) -> std::path::PathBuf {
    tmp.join(format!("snowpipe-load-{uid}"))
}

#[test]
fn a_planted_spool_directory_link_is_refused_and_its_target_untouched() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    moto.put("exports", "daily.ndjson", ndjson(0..200).into_bytes());
    let uid = std::fs::metadata(lab.dir.path()).unwrap().uid();
    // Another user's directory, linked where the loader's own would be.
    let victim = lab.path("victim");
    std::fs::create_dir(&victim).unwrap();
    std::fs::write(victim.join("keep"), b"someone else's").unwrap();
    let spool = default_spool(lab.dir.path(), uid);
    std::os::unix::fs::symlink(&victim, &spool).unwrap();

    let run = lab.load(&[Path::new(URL)], &[]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stderr.contains("is a symbolic link") && run.stderr.contains("--spool-dir"),
        "{}",
        run.stderr
    );
    let inside: Vec<_> = std::fs::read_dir(&victim).unwrap().collect();
    assert_eq!(inside.len(), 1, "nothing written through the link");
    assert_eq!(
        std::fs::read(victim.join("keep")).unwrap(),
        b"someone else's"
    );
    assert_eq!(lab.count(), 0);

    // Without the link: the loader makes its own directory, private, and empties it.
    std::fs::remove_file(&spool).unwrap();
    assert_eq!(lab.load(&[Path::new(URL)], &[]).ok()["rows"], 200);
    assert_eq!(lab.counts(), (200, 200));
    let meta = std::fs::symlink_metadata(&spool).unwrap();
    assert!(meta.is_dir());
    assert_eq!(meta.mode() & 0o777, 0o700);
    let left: Vec<_> = std::fs::read_dir(&spool)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| !n.to_string_lossy().ends_with(".rejected.ndjson"))
        .collect();
    assert!(left.is_empty(), "spool files left: {left:?}");
}

#[test]
fn a_spool_dir_others_can_write_is_refused() {
    let Some(moto) = Moto::start() else { return };
    let lab = lab_with(&moto);
    moto.put("exports", "daily.ndjson", ndjson(0..50).into_bytes());
    let shared = lab.path("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let dir = shared.display().to_string();
    let run = lab.load(&[Path::new(URL)], &["--spool-dir", &dir]);
    assert_ne!(run.code, Some(0), "{run:#?}");
    assert!(
        run.stderr
            .contains("can be written by its group or by others")
            && run.stderr.contains("chmod go-w"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(&shared).unwrap().count(), 0);
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o700)).unwrap();
    assert_eq!(
        lab.load(&[Path::new(URL)], &["--spool-dir", &dir]).ok()["rows"],
        50
    );
}
