//! The hostile-input suite (issue 81, item 21) on the files a connection is read from:
//! `profile.json`, `connections.toml` and the private key file a profile names, given to
//! `snowpipe load --profile` (the real binary, under an address-space cap).
//!
//! Each case writes one hostile file beside good ones (see `cases.rs`: past 1 MiB, sparse,
//! nested deep, thousands of keys, numbers at the edges, a BOM, invalid UTF-8, a NUL, control
//! characters, DER that claims 2^62 bytes, an encrypted key with a wrong passphrase, a key
//! given twice, a FIFO nobody writes, a directory, a link to itself, `/dev/zero`, mode 0666)
//! and asserts: no crash or hang, peak RSS within the SDK's budget + 64 MiB, a refusal naming
//! the hostile file (or, where the file is acceptable, every good row landed), no raw control
//! character in the output, and never the passphrase nor a piece of the private key in
//! stdout or stderr. A good run after the cases loads every row: nothing a case did stays in
//! the way. `HOSTILE_SEED` / `HOSTILE_CASES` / `HOSTILE_ONLY`: see `hostile/README.md`.

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Outcome, Suite, MIB};

use crate::common::{key_file, ndjson, Lab};

mod cases;
use cases::{Attack, Endpoint, Want, PASSPHRASE};

/// `snowpipe load` runs with the SDK's default memory budget.
const BUDGET: u64 = 256 * MIB;
/// Good rows a run loads when its connection is accepted.
const GOOD: u64 = 20;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // A refusal takes well under a second: 20 s is a hang (a FIFO read without end).
    l.wall = Duration::from_secs(20);
    l
}

fn run_with(lab: &Lab, profile: &Path, data: &Path) -> Outcome {
    let mut cmd = lab.command(&[data], &["--max-client-lag", "20ms"]);
    cmd.arg("--profile").arg(profile);
    snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start snowpipe")
}

/// Pieces of the private key's base64 body (24 characters from every line, at two offsets):
/// none may appear in what the binary prints.
fn key_pieces() -> Vec<String> {
    let mut pieces = vec![PASSPHRASE.to_owned()];
    for text in [
        cases::key_text(),
        std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/test_key_encrypted.p8"),
        )
        .unwrap(),
    ] {
        for line in text.lines().filter(|l| !l.starts_with("-----")) {
            for at in [0, 32] {
                if let Some(p) = line.get(at..at + 24) {
                    pieces.push(p.to_owned());
                }
            }
        }
    }
    pieces
}

/// The output never holds a secret, nor a raw control character (a forged log line).
fn nothing_leaked(case: &Case<Attack>, o: &Outcome, pieces: &[String]) {
    let all = [o.stdout_text(), o.stderr_text()].concat();
    if let Some(p) = pieces.iter().find(|p| all.contains(p.as_str())) {
        case.fail(format!(
            "the output holds a secret's text ({} characters of it): {}",
            p.len(),
            o.summary()
        ));
    }
    if let Some(c) = all
        .chars()
        .find(|c| c.is_control() && *c != '\n' && *c != '\t')
    {
        case.fail(format!(
            "the output holds a raw control character {c:?}: {}",
            o.summary()
        ));
    }
}

fn landed(lab: &Lab, lo: u64, hi: u64) -> u64 {
    let sql = format!(r#"SELECT COUNT(DISTINCT ID) FROM "D.S.T" WHERE ID BETWEEN {lo} AND {hi}"#);
    let r = lab.emulator.as_ref().unwrap().query(&sql).expect("query");
    r[0][0].as_u64().unwrap()
}

fn check_case(lab: &Lab, case: &Case<Attack>, f: &cases::Files, base: u64, o: &Outcome) {
    let what = &f.what;
    check::no_crash(case, o);
    check::rss_within(case, o, &limits());
    nothing_leaked(case, o, &key_pieces());
    let named = f.hostile.display().to_string();
    let loaded = || {
        let n = landed(lab, base + 1, base + GOOD);
        if n != GOOD {
            case.fail(format!(
                "{what}: {n} of {GOOD} good rows landed: {}",
                o.summary()
            ));
        }
    };
    match &f.want {
        Want::Refused(needles) => {
            let mut all = vec![named.as_str()];
            all.extend(needles.iter().copied());
            check::refused_naming(case, o, &all);
        }
        Want::RefusedOrLoaded if o.code == Some(0) => loaded(),
        Want::RefusedOrLoaded => check::refused_naming(case, o, &[&named]),
        Want::Warned => {
            check::exited_ok(case, o);
            loaded();
            check::names(case, "stderr", &o.stderr_text(), &named);
            check::names(case, "stderr", &o.stderr_text(), "chmod");
        }
    }
    // A refusal or a warning is a line or a few, not the file echoed back.
    if o.stderr.len() > 64 << 10 {
        case.fail(format!(
            "{what}: stderr is {} bytes, more than any refusal needs",
            o.stderr.len()
        ));
    }
}

#[test]
fn hostile_profile_files() {
    let lab = Lab::new();
    let url = lab.url().to_owned();
    let (host, port) = url
        .trim_start_matches("http://")
        .split_once(':')
        .expect("host:port");
    let at = Endpoint {
        url: url.clone(),
        host: host.to_owned(),
        port: port.to_owned(),
    };
    let suite = Suite::from_env("profile_files", Attack::ALL.len() + 3);
    let mut failures = suite.failures(&Attack::ALL, |mut case| {
        let mut run = 0;
        for target in cases::targets(case.class, &mut case.rng) {
            for variant in 0..cases::variants(case.class) {
                let base = 1_000_000 * (100 * case.index as u64 + run + 1);
                let n = format!("{}_{run}", case.index);
                run += 1;
                let data = lab.path(&format!("case{n}.ndjson"));
                std::fs::write(&data, ndjson(base + 1..=base + GOOD)).unwrap();
                let how = (case.class, target, variant);
                let f = cases::write(how, &mut case.rng, lab.dir.path(), &n, &at);
                let o = run_with(&lab, &f.profile, &data);
                eprintln!(
                    "hostile profile_files case {} ({}): {}",
                    case.index,
                    f.what,
                    o.summary().lines().next().unwrap_or("")
                );
                check_case(&lab, &case, &f, base, &o);
            }
        }
    });
    // Nothing a case did stays in the way: a good profile loads every row.
    let after = snowpipe_hostile::attempt(|| {
        // Runs whatever `HOSTILE_ONLY` ran before it.
        let case = suite.always_case(Attack::Kind);
        let data = lab.path("after.ndjson");
        std::fs::write(&data, ndjson(1..=GOOD)).unwrap();
        let good = lab.path("after.profile.json");
        std::fs::write(
            &good,
            format!(
                r#"{{"url":"{url}","account":"LAB","user":"LOADER","private_key_file":"{}"}}"#,
                key_file().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&good, std::fs::Permissions::from_mode(0o600)).unwrap();
        let o = run_with(&lab, &good, &data);
        check::exited_ok(&case, &o);
        if landed(&lab, 1, GOOD) != GOOD {
            case.fail(format!(
                "the good run after the cases lost rows: {}",
                o.summary()
            ));
        }
    });
    failures.extend(after.err());
    failures.extend(linear(&lab, &suite, &at).err());
    suite.finish(failures);
}

/// Linear: a `connections.toml` of n and 2n sections (the most costly count under the 1 MiB
/// cap: 30,000 sections took 0.65 s of CPU and 92 MiB in a debug build).
fn linear(lab: &Lab, suite: &Suite, at: &Endpoint) -> Result<(), String> {
    snowpipe_hostile::attempt(|| {
        // None when `HOSTILE_ONLY` leaves out Count: skipped (the harness says so).
        let Some(case) = suite.cases(&[Attack::Count]).into_iter().next() else {
            return;
        };
        let data = lab.path("linear.ndjson");
        std::fs::write(&data, ndjson(1..=1)).unwrap();
        let mut runs = Vec::new();
        for n in [12_000u64, 24_000] {
            let path = lab.path(&format!("linear{n}.connections.toml"));
            std::fs::write(&path, cases::sections(at, n as usize)).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
            let o = run_with(lab, &path, &data);
            check::no_crash(&case, &o);
            check::rss_within(&case, &o, &limits());
            runs.push((n, o));
        }
        check::assert_linear(
            &case,
            (runs[0].0, &runs[0].1),
            (runs[1].0, &runs[1].1),
            2.6,
            Duration::from_millis(400),
        );
    })
}
