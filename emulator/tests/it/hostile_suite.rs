//! The hostile-input suite (issue 81, item 21) on the emulator's inputs: append request
//! bodies, SQL API statements (DDL and queries, also in sink mode), and `--ddl` files,
//! through the real `snowpipe-emulator` binary under an address-space cap.
//!
//! A server case asserts: the answer is a 2xx or a 4xx (a permanent error is not a 5xx or a
//! dropped connection), the server still serves a good request right after it (nothing after
//! the bad input lost), and over the run no crash and peak RSS within `--max-pending-bytes`
//! (the emulator's memory budget) + 64 MiB. A `--ddl` case: the emulator starts, or exits
//! non-zero naming the file. `HOSTILE_SEED` / `HOSTILE_CASES`: see `hostile/README.md`.
#![cfg(target_os = "linux")]

use std::time::Duration;

use serde_json::{json, Value};
use snowpipe_hostile::gen::{self, Class};
use snowpipe_hostile::{attempt, check, Case, Limits, Outcome, Rng, Running, Suite, MIB};

use crate::common::{pipe_path, DATA, DDL};

/// The emulator's memory budget in these runs (`--max-pending-bytes`).
const BUDGET: u64 = 256 * MIB;

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    l.wall = Duration::from_secs(30);
    l
}

/// The emulator on 127.0.0.1, any bearer accepted, with `ddl` (written to `dir`), under the
/// limits; its URL once it listens (`None`: it exited first).
fn start(dir: &std::path::Path, ddl: &[u8]) -> (Running, Option<String>) {
    start_with(dir, ddl, &["--accept-any-key"], &limits())
}

/// [`start`] with `extra` arguments (the credentials among them), under `limits`.
pub(crate) fn start_with(
    dir: &std::path::Path,
    ddl: &[u8],
    extra: &[&str],
    limits: &Limits,
) -> (Running, Option<String>) {
    let file = dir.join("ddl.sql");
    std::fs::write(&file, ddl).unwrap();
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe-emulator"));
    cmd.args(["--port", "0", "--commit-delay", "0"])
        .args(["--max-pending-bytes", &BUDGET.to_string(), "--ddl"])
        .arg(&file)
        .args(extra)
        .env_remove("RUST_LOG");
    let mut r = snowpipe_hostile::spawn(cmd, limits).expect("start the emulator");
    let url = r.line_after("listening on ", Duration::from_secs(20));
    (r, url)
}

/// The checks of the emulator's whole run `o` once stopped (SIGTERM), on `case` (the first
/// case: its seed names the run): RSS within `limits`, no crash, no hang.
///
/// # Errors
/// The check that failed, as its message.
pub(crate) fn survived<C: std::fmt::Debug>(
    case: &Case<C>,
    o: &Outcome,
    limits: &Limits,
) -> Result<(), String> {
    attempt(|| {
        check::rss_within(case, o, limits);
        if o.signal.is_some_and(|s| s != libc::SIGTERM) || o.timed_out {
            case.fail(format!("the emulator crashed or hung: {}", o.summary()));
        }
    })
}

pub(crate) fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

/// Opens `channel` on `P`: its continuation token.
pub(crate) fn open(url: &str, channel: &str) -> String {
    let r = http()
        .put(format!("{url}{}/channels/{channel}", pipe_path("P")))
        .bearer_auth("any")
        .json(&json!({}))
        .send()
        .expect("open a channel");
    assert_eq!(r.status(), 200, "open {channel}");
    let v: Value = r.json().unwrap();
    v["next_continuation_token"].as_str().unwrap().to_owned()
}

/// Posts an append of `body` (with `encoding` when given): status and answer.
pub(crate) fn append(
    url: &str,
    channel: &str,
    ct: &str,
    body: Vec<u8>,
    encoding: Option<&str>,
) -> Result<(u16, String), String> {
    let mut rb = http()
        .post(format!(
            "{url}{DATA}/channels/{channel}/rows?continuationToken={ct}&offsetToken=1&requestId=h"
        ))
        .bearer_auth("any")
        .header("Content-Type", "application/x-ndjson")
        .body(body);
    if let Some(e) = encoding {
        rb = rb.header("Content-Encoding", e);
    }
    let r = rb.send().map_err(|e| format!("no answer: {e}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().unwrap_or_default()))
}

/// The answer must be 2xx or 4xx.
fn answered<C: std::fmt::Debug>(case: &Case<C>, what: &str, r: Result<(u16, String), String>) {
    match r {
        Ok((s, _)) if (200..300).contains(&s) || (400..500).contains(&s) => {}
        Ok((s, body)) => case.fail(format!(
            "{what}: status {s}: {}",
            body.chars().take(500).collect::<String>()
        )),
        Err(e) => case.fail(format!("{what}: {e}")),
    }
}

/// One hostile append body of `class`: (body, Content-Encoding).
fn body(class: Class, rng: &mut Rng) -> (Vec<u8>, Option<&'static str>) {
    let mut b = Vec::new();
    match class {
        Class::Size => match rng.below(2) {
            // Past the 4 MB wire limit.
            0 => {
                b.extend_from_slice(b"{\"ID\":1,\"NAME\":");
                gen::long_json_string(&mut b, rng.range(4_000_001, 6_000_000) as usize, rng);
                b.extend_from_slice(b"}\n");
            }
            // A zstd bomb: a few KB that claim hundreds of MB.
            _ => {
                let plain = vec![b' '; rng.range(100, 300) as usize * MIB as usize];
                return (zstd::encode_all(plain.as_slice(), 3).unwrap(), Some("zstd"));
            }
        },
        Class::Depth => {
            b.extend_from_slice(b"{\"ID\":1,\"DOC\":");
            gen::nested_json(&mut b, rng.range(1_000, 200_000) as usize, rng);
            b.extend_from_slice(b"}\n");
        }
        Class::Count => {
            if rng.one_in(2) {
                gen::many_keys_object(&mut b, rng.range(10_000, 200_000) as usize);
                b.push(b'\n');
            } else {
                for _ in 0..rng.range(500_001, 600_000) {
                    b.extend_from_slice(b"{}\n");
                }
            }
        }
        Class::Number => {
            for n in gen::EDGE_NUMBERS {
                b.extend_from_slice(format!("{{\"ID\":{n},\"PRICE\":{n}}}\n").as_bytes());
            }
            let n = gen::edge_number(rng);
            b.extend_from_slice(format!("{{\"ID\":{n},\"PRICE\":{n}}}\n").as_bytes());
        }
        Class::Encoding => {
            b.extend_from_slice(gen::BOM);
            b.extend_from_slice(b"{\"ID\":1,\"NAME\":\"a");
            b.extend_from_slice(gen::invalid_utf8(rng));
            b.extend_from_slice(gen::control_chars(rng));
            b.extend_from_slice(b"\"}\n{\"ID\":2,\"NAME\":\"");
            b.extend_from_slice(gen::bad_json_escape(rng).as_bytes());
            b.extend_from_slice(b"\"}\n");
        }
        Class::Claim => {
            // Claims to be zstd (or gzip) and is not, or is cut short.
            let real = zstd::encode_all(&b"{\"ID\":1}\n".repeat(1000)[..], 3).unwrap();
            let enc = if rng.one_in(2) { "gzip" } else { "zstd" };
            let mut cut = real.clone();
            gen::corrupt_tail(&mut cut, rng);
            return (
                if rng.one_in(2) {
                    cut
                } else {
                    b"not compressed".to_vec()
                },
                Some(enc),
            );
        }
        Class::Reserved => {
            b.extend_from_slice(
                b"{\"ID\":1,\"ID\":2,\"id\":3,\"\\\"ID\\\"\":4,\"NAME\":\"dup\"}\n",
            );
        }
    }
    (b, None)
}

#[test]
fn hostile_request_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start(dir.path(), DDL.as_bytes());
    let url = url.expect("the emulator listens");
    let suite = Suite::from_env("request_bodies", Class::ALL.len());
    let mut failures = suite.failures(&Class::ALL, |mut case| {
        let channel = format!("hostile{}", case.index);
        let ct = open(&url, &channel);
        let (b, enc) = body(case.class, &mut case.rng);
        let what = format!("{:?} body of {} bytes ({enc:?})", case.class, b.len());
        // A body past the wire limit is refused from its stated length, before it is read:
        // the emulator answers 413 and closes, and a client still sending may see only the
        // close (a reset while writing). Either is a refusal; the good append below shows
        // the server took no harm.
        let refused_unread = case.class == Class::Size && enc.is_none();
        match append(&url, &channel, &ct, b, enc) {
            Err(e) if refused_unread && e.contains("error sending request") => {}
            r => answered(&case, &what, r),
        }
        // Nothing after it lost: the server takes a good append on a fresh channel.
        let good = format!("good{}", case.index);
        let ct = open(&url, &good);
        let r = append(&url, &good, &ct, b"{\"ID\":7}\n".to_vec(), None);
        if !matches!(r, Ok((200, _))) {
            case.fail(format!("after the {what}, a good append got {r:?}"));
        }
    });
    let o = server
        .stop(snowpipe_hostile::Signal::Term)
        .expect("stop the emulator");
    // The server's run is checked whatever `HOSTILE_ONLY` ran of it.
    let case = suite.always_case(Class::ALL[0]);
    failures.extend(
        survived(&case, &o, &limits())
            .err()
            .map(|e| format!("the run of every case (the first case's seed shown): {e}")),
    );
    suite.finish(failures);
}

/// One hostile SQL statement of `class` (DDL and queries through the SQL API); each case
/// also sends its class's `DROP` ([`drop_statement`]).
fn statement(class: Class, rng: &mut Rng) -> Vec<u8> {
    let s = match class {
        Class::Size => format!(
            "CREATE TABLE T{} (\"{}\" NUMBER)",
            rng.below(1000),
            "x".repeat(rng.range(256, 1_000_000) as usize)
        ),
        Class::Depth => {
            let d = rng.range(1_000, 100_000) as usize;
            format!("SELECT {}1{}", "(".repeat(d), ")".repeat(d))
        }
        Class::Count => {
            let cols: Vec<String> = (0..rng.range(2_000, 20_000))
                .map(|i| format!("C{i} NUMBER"))
                .collect();
            format!("CREATE TABLE WIDE{} ({})", rng.below(1000), cols.join(", "))
        }
        Class::Number => format!(
            "SELECT {} + 1, CAST(1 AS NUMBER(99999, 0))",
            gen::edge_number(rng)
        ),
        Class::Encoding => {
            let mut b = b"CREATE TABLE \"A".to_vec();
            b.extend_from_slice(if rng.one_in(2) {
                b"\x00"
            } else {
                gen::control_chars(rng)
            });
            b.extend_from_slice(b"\" (ID NUMBER)");
            return b;
        }
        Class::Claim => "SELECT 'never closed /* and a comment".to_owned(),
        Class::Reserved => "CREATE TABLE DUP (A NUMBER, \"a\" NUMBER, \"A\" VARCHAR)".to_owned(),
    };
    s.into_bytes()
}

/// A hostile `DROP TABLE|PIPE` of `class`: a name past every length, a name of 10^4 to
/// 10^5 parts, a NUL or control character in a quoted name, a quote never closed, and the
/// reserved default pipe `T-STREAMING` (no pipe of the catalog's: refused, `T` kept).
/// `None` for a class with no `DROP` of its own.
fn drop_statement(class: Class, rng: &mut Rng) -> Option<Vec<u8>> {
    let what = if rng.one_in(2) { "TABLE" } else { "PIPE" };
    let s = match class {
        Class::Size => format!(
            "DROP {what} IF EXISTS \"{}\"",
            "x".repeat(rng.range(256, 1_000_000) as usize)
        ),
        Class::Count => {
            let parts = vec!["P"; rng.range(10_000, 100_000) as usize];
            format!("DROP {what} IF EXISTS {}", parts.join("."))
        }
        Class::Encoding => {
            let mut b = format!("DROP {what} \"A").into_bytes();
            b.extend_from_slice(if rng.one_in(2) {
                b"\x00"
            } else {
                gen::control_chars(rng)
            });
            b.extend_from_slice(b"\"");
            return Some(b);
        }
        Class::Claim => format!("DROP {what} IF EXISTS \"never closed"),
        Class::Reserved => "DROP PIPE \"T-STREAMING\"".to_owned(),
        Class::Depth | Class::Number => return None,
    };
    Some(s.into_bytes())
}

pub(crate) fn sql(url: &str, text: &[u8]) -> Result<(u16, String), String> {
    let mut body = br#"{"database":"DB","schema":"SCH","statement":"#.to_vec();
    body.extend_from_slice(&serde_json::to_vec(&String::from_utf8_lossy(text)).unwrap());
    body.push(b'}');
    let r = http()
        .post(format!("{url}/api/v2/statements"))
        .bearer_auth("any")
        .header("X-Snowflake-Authorization-Token-Type", "KEYPAIR_JWT")
        .header("Content-Type", "application/json")
        .body(body)
        .send()
        .map_err(|e| format!("no answer: {e}"))?;
    let status = r.status().as_u16();
    Ok((status, r.text().unwrap_or_default()))
}

#[test]
fn hostile_sql() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start(dir.path(), DDL.as_bytes());
    let url = url.expect("the emulator listens");
    let suite = Suite::from_env("sql", Class::ALL.len());
    let mut failures = suite.failures(&Class::ALL, |mut case| {
        let s = statement(case.class, &mut case.rng);
        let dropped = drop_statement(case.class, &mut case.rng);
        for (kind, s) in [("statement", Some(s)), ("DROP", dropped)] {
            let Some(s) = s else { continue };
            let what = format!("{:?} {kind} of {} bytes", case.class, s.len());
            answered(&case, &what, sql(&url, &s));
            let r = sql(&url, b"SELECT COUNT(*) FROM T");
            if !matches!(r, Ok((200, _))) {
                case.fail(format!("after the {what}, a good statement got {r:?}"));
            }
        }
    });
    let o = server
        .stop(snowpipe_hostile::Signal::Term)
        .expect("stop the emulator");
    // The server's run is checked whatever `HOSTILE_ONLY` ran of it.
    let case = suite.always_case(Class::ALL[0]);
    failures.extend(survived(&case, &o, &limits()).err());
    suite.finish(failures);
}

/// [`hostile_sql`] against the emulator in sink mode (`--sink`), each statement also with
/// `LIMIT 0` appended (what sink mode answers from the catalog's tables made empty): each is
/// answered 2xx or 4xx, then a good `LIMIT 0` still gets its columns and a row query is still
/// refused naming sink mode.
#[test]
fn hostile_sql_sink() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start_with(
        dir.path(),
        DDL.as_bytes(),
        &["--accept-any-key", "--sink"],
        &limits(),
    );
    let url = url.expect("the emulator listens");
    let suite = Suite::from_env("sql_sink", Class::ALL.len());
    let mut failures = suite.failures(&Class::ALL, |mut case| {
        let s = statement(case.class, &mut case.rng);
        let mut limited = s.clone();
        limited.extend_from_slice(b" LIMIT 0");
        let dropped = drop_statement(case.class, &mut case.rng);
        for (kind, s) in [
            ("statement", Some(s)),
            ("LIMIT 0", Some(limited)),
            ("DROP", dropped),
        ] {
            let Some(s) = s else { continue };
            let what = format!("{:?} {kind} of {} bytes", case.class, s.len());
            answered(&case, &what, sql(&url, &s));
            let r = sql(&url, b"SELECT * FROM T LIMIT 0");
            if !matches!(r, Ok((200, _))) {
                case.fail(format!("after the {what}, a good LIMIT 0 got {r:?}"));
            }
            let r = sql(&url, b"SELECT COUNT(*) FROM T");
            if !matches!(&r, Ok((422, body)) if body.contains("sink mode")) {
                case.fail(format!("after the {what}, a row query got {r:?}"));
            }
        }
    });
    let o = server
        .stop(snowpipe_hostile::Signal::Term)
        .expect("stop the emulator");
    let case = suite.always_case(Class::ALL[0]);
    failures.extend(survived(&case, &o, &limits()).err());
    suite.finish(failures);
}

#[test]
fn hostile_ddl() {
    let suite = Suite::from_env("ddl", Class::ALL.len());
    suite.for_each(&Class::ALL, |mut case| {
        let dir = tempfile::tempdir().unwrap();
        let mut ddl = DDL.as_bytes().to_vec();
        ddl.extend_from_slice(&statement(case.class, &mut case.rng));
        ddl.extend_from_slice(b";\n");
        if let Some(dropped) = drop_statement(case.class, &mut case.rng) {
            ddl.extend_from_slice(&dropped);
            ddl.extend_from_slice(b";\n");
        }
        let (server, url) = start(dir.path(), &ddl);
        let o = server
            .stop(snowpipe_hostile::Signal::Term)
            .expect("stop the emulator");
        check::rss_within(&case, &o, &limits());
        if url.is_some() {
            if o.signal.is_some_and(|s| s != libc::SIGTERM) || o.timed_out {
                case.fail(format!("the emulator crashed or hung: {}", o.summary()));
            }
        } else {
            let file = dir.path().join("ddl.sql");
            check::refused_naming(&case, &o, &[file.to_str().unwrap()]);
        }
    });
}
