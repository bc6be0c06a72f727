//! The hostile-input suite (issue 81, item 21) on the CA file every binary's HTTP client reads:
//! `SSL_CERT_FILE` (and the SDK's `root_ca_file`, the same reader, `src/http/options.rs`),
//! through the real `snowpipe load` under an address-space cap.
//!
//! Each case points `SSL_CERT_FILE` at a hostile file (endless `/dev/zero`, a FIFO nobody
//! writes, a sparse file of 2 GiB, a directory, megabytes of bytes that are no PEM, invalid
//! UTF-8 and NULs, a bundle of thousands of PEM blocks of garbage) and asserts: no crash or
//! hang, peak RSS within the SDK's budget + 64 MiB, and a refusal naming `SSL_CERT_FILE` and
//! the file. A good run after the cases loads every row; a linear check on bytes that are no
//! PEM at two sizes. `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: `hostile/README.md`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Outcome, Suite, MIB};

use crate::common::{ndjson, Lab};

/// `snowpipe load` runs with the SDK's default memory budget.
const BUDGET: u64 = 256 * MIB;
/// Good rows a run loads.
const GOOD: u64 = 10;

/// The kinds of hostile CA file.
#[derive(Debug, Clone, Copy)]
enum Ca {
    /// `/dev/zero`: bytes without end.
    Endless,
    /// A FIFO no one writes to.
    Fifo,
    /// A sparse file of 2 GiB.
    Huge,
    /// A directory.
    Directory,
    /// Megabytes of random bytes: no PEM, invalid UTF-8, NULs.
    Garbage,
    /// Thousands of `CERTIFICATE` blocks whose base64 is no certificate.
    BadBlocks,
}

impl Ca {
    const ALL: [Ca; 6] = [
        Ca::Endless,
        Ca::Fifo,
        Ca::Huge,
        Ca::Directory,
        Ca::Garbage,
        Ca::BadBlocks,
    ];
}

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second; the FIFO is refused at once (nobody writes).
    l.wall = Duration::from_secs(20);
    l
}

/// Random bytes (the case's PRNG), `len` of them.
fn garbage(case: &mut Case<Ca>, len: usize) -> Vec<u8> {
    (0..len).map(|_| case.rng.next_u64() as u8).collect()
}

/// Writes the case's hostile file and returns its path.
fn write(case: &mut Case<Ca>, dir: &Path) -> PathBuf {
    let path = dir.join(format!("ca{}.pem", case.index));
    let _ = std::fs::remove_file(&path);
    match case.class {
        Ca::Endless => return PathBuf::from("/dev/zero"),
        Ca::Fifo => {
            let made = std::process::Command::new("mkfifo")
                .arg(&path)
                .status()
                .expect("mkfifo");
            assert!(made.success(), "mkfifo");
        }
        Ca::Huge => {
            let f = std::fs::File::create(&path).unwrap();
            f.set_len(2 << 30).unwrap();
        }
        Ca::Directory => std::fs::create_dir_all(&path).unwrap(),
        Ca::Garbage => {
            let len = 1 + (case.rng.next_u64() % 3) as usize;
            std::fs::write(&path, garbage(case, len * MIB as usize)).unwrap();
        }
        Ca::BadBlocks => {
            let block = "-----BEGIN CERTIFICATE-----\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n\
                         -----END CERTIFICATE-----\n";
            let n = 10_000 + (case.rng.next_u64() % 20_000) as usize;
            std::fs::write(&path, block.repeat(n)).unwrap();
        }
    }
    path
}

fn run_with(lab: &Lab, ca: Option<&Path>, data: &Path) -> Outcome {
    let mut cmd = lab.command(&[data], &["--max-client-lag", "20ms"]);
    match ca {
        Some(ca) => cmd.env("SSL_CERT_FILE", ca),
        None => cmd.env_remove("SSL_CERT_FILE"),
    };
    snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start snowpipe")
}

fn landed(lab: &Lab, lo: u64, hi: u64) -> u64 {
    let sql = format!(r#"SELECT COUNT(DISTINCT ID) FROM "D.S.T" WHERE ID BETWEEN {lo} AND {hi}"#);
    let r = lab.emulator.as_ref().unwrap().query(&sql).expect("query");
    r[0][0].as_u64().unwrap()
}

#[test]
fn hostile_ca_files() {
    let lab = Lab::new();
    let suite = Suite::from_env("ca_files", Ca::ALL.len());
    let mut failures = suite.failures(&Ca::ALL, |mut case| {
        let ca = write(&mut case, lab.dir.path());
        let data = lab.path(&format!("case{}.ndjson", case.index));
        std::fs::write(&data, ndjson(1..=GOOD)).unwrap();
        let o = run_with(&lab, Some(&ca), &data);
        eprintln!(
            "hostile ca_files case {} ({:?}): {}",
            case.index,
            case.class,
            o.summary().lines().next().unwrap_or("")
        );
        check::no_crash(&case, &o);
        check::rss_within(&case, &o, &limits());
        check::refused_naming(&case, &o, &["SSL_CERT_FILE", &ca.display().to_string()]);
        if o.stderr.len() > 64 << 10 {
            case.fail(format!(
                "stderr is {} bytes, more than any refusal needs",
                o.stderr.len()
            ));
        }
        if ca.starts_with(lab.dir.path()) {
            let _ = std::fs::remove_dir(&ca).or_else(|_| std::fs::remove_file(&ca));
        }
    });
    // Nothing a case did stays in the way: without the hostile file every row lands.
    let after = snowpipe_hostile::attempt(|| {
        // Runs whatever `HOSTILE_ONLY` ran before it.
        let case = suite.always_case(Ca::Garbage);
        let base = 1_000_000;
        let data = lab.path("after.ndjson");
        std::fs::write(&data, ndjson(base + 1..=base + GOOD)).unwrap();
        let o = run_with(&lab, None, &data);
        check::exited_ok(&case, &o);
        if landed(&lab, base + 1, base + GOOD) != GOOD {
            case.fail(format!("the good run lost rows: {}", o.summary()));
        }
    });
    failures.extend(after.err());
    failures.extend(linear(&lab, &suite).err());
    suite.finish(failures);
}

/// Linear: bytes that are no PEM, 1 and 2 MiB (within the cap, so read and parsed whole).
fn linear(lab: &Lab, suite: &Suite) -> Result<(), String> {
    snowpipe_hostile::attempt(|| {
        // None when `HOSTILE_ONLY` leaves out Garbage: skipped (the harness says so).
        let Some(mut case) = suite.cases(&[Ca::Garbage]).into_iter().next() else {
            return;
        };
        let data = lab.path("linear.ndjson");
        std::fs::write(&data, ndjson(1..=1)).unwrap();
        let mut runs = Vec::new();
        for mib in [1u64, 2] {
            let path = lab.path(&format!("linear{mib}.pem"));
            let text = "x".repeat(63) + "\n";
            std::fs::write(&path, text.repeat((mib * MIB / 64) as usize)).unwrap();
            let o = run_with(lab, Some(&path), &data);
            check::no_crash(&case, &o);
            check::refused_naming(&case, &o, &["SSL_CERT_FILE"]);
            runs.push((mib, o));
        }
        case.index = 0;
        check::assert_linear(
            &case,
            (runs[0].0, &runs[0].1),
            (runs[1].0, &runs[1].1),
            2.5,
            Duration::from_millis(500),
        );
    })
}
