//! The hostile-input suite (issue 81, item 21) on `snowpipe load`'s bucket inputs: a hostile
//! S3 server ([`server`]) answers the listing or the ranged GETs of one NDJSON object with one
//! misbehaviour, through the real binary under the harness's memory cap. Each case asserts:
//! no crash or hang, peak RSS within the SDK's memory budget + 64 MiB; a slow drip (within the
//! request timeout) loads every row once; any other class ends non-zero naming the object or
//! the URL and what was wrong. Then the server behaves and a rerun loads every row exactly
//! once. `HOSTILE_SEED` / `HOSTILE_CASES`: `hostile/README.md`.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::time::Duration;

use snowpipe_hostile::{check, Case, Input, Limits, Outcome, Suite, MIB};

use crate::common::{ndjson, Lab};

mod server;

use server::{Class, Server};

const BUDGET: u64 = 256 * MIB;
const ROWS: u64 = 300;
const URL: &str = "s3://hostile/p/*.ndjson";

const CLASSES: &[Class] = &[
    Class::EndlessListing,
    Class::EndlessBody,
    Class::ShortBody,
    Class::LengthLie,
    Class::RedirectLoop,
    Class::SlowDrip,
    Class::HugePage,
    Class::TruncatedForever,
    Class::NotXml,
    Class::BadKeys,
];

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    // Retries of a failing GET stop within object_store's 3 minutes; the classes here fail
    // at once or after a few retries: 120 s means a hang.
    l.wall = Duration::from_secs(120);
    l
}

/// What the error of `class` names.
fn names(class: Class) -> &'static [&'static str] {
    match class {
        Class::EndlessListing => &["more than 200000 entries"],
        Class::EndlessBody => &["more than the", "bytes asked for"],
        Class::ShortBody => &["of the", "bytes asked for"],
        Class::LengthLie => &["cannot read bytes", "p/data.ndjson"],
        Class::RedirectLoop => &["redirect"],
        Class::SlowDrip => &[],
        Class::HugePage => &["cannot list s3://hostile/p/*.ndjson", "more than 8 MiB"],
        Class::TruncatedForever => &["past 1000 pages", "narrower prefix"],
        Class::NotXml => &["cannot list", "not an S3 ListBucketResult"],
        Class::BadKeys => &["skipped", "\\u{1b}[31mred.ndjson", "rename"],
    }
}

fn run_load(lab: &Lab) -> Outcome {
    let cmd = lab.command(&[Path::new(URL)], &[]);
    snowpipe_hostile::run(cmd, Input::Null, &limits()).expect("start snowpipe")
}

fn one_case(case: &Case<Class>) {
    let server = Server::start(ndjson(0..ROWS).into_bytes());
    let mut lab = Lab::new();
    lab.env = [
        ("AWS_ACCESS_KEY_ID", "hostile"),
        ("AWS_SECRET_ACCESS_KEY", "hostile"),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ALLOW_HTTP", "true"),
        ("TMPDIR", &lab.dir.path().display().to_string()),
        ("AWS_ENDPOINT_URL", &format!("http://{}", server.addr)),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    server.set(Some(case.class));
    let o = run_load(&lab);
    eprintln!("{:?}: {}", case.class, o.summary());
    check::no_crash(case, &o);
    check::rss_within(case, &o, &limits());
    if case.class == Class::SlowDrip {
        check::exited_ok(case, &o);
    } else {
        check::refused_naming(case, &o, names(case.class));
    }
    if o.stderr_text().contains('\u{1b}') {
        case.fail(format!("a raw ESC on stderr: {}", o.summary()));
    }
    server.set(None);
    let again = run_load(&lab);
    check::exited_ok(case, &again);
    let counts = lab.counts();
    if counts != (ROWS, ROWS) {
        case.fail(format!(
            "after the hostile run ({}) and a good rerun, rows (count, distinct) {counts:?}, \
             want {ROWS} each",
            o.summary()
        ));
    }
}

#[test]
fn hostile_bucket_server() {
    let suite = Suite::from_env("bucket_server", CLASSES.len());
    suite.for_each(CLASSES, |case| one_case(&case));
}
