//! The hostile-input suite (issue 81, item 21) on the emulator's unauthenticated surface:
//! `GET /` (the JSON status, or the console page for a browser), `/console/state` and
//! `/console/console.js`, through the real `snowpipe-emulator` binary under an address-space
//! cap, with raw TCP clients (what a browser or a script on the machine can send).
//!
//! Each case asserts: every answer is a 2xx or a 4xx (or, for a head past the server's
//! limit, a closed connection), the caps of `docs/SECURITY.md`'s row hold (a status page at
//! most 500 channels and 4 MiB, strings 1,024 characters; the console 1,000 channels, cells
//! 120 characters), no name is rendered as markup (the HTML page holds no `<script>` from a
//! name; the console's script puts names in the page only as text), and a good append still
//! lands after it. Over the run: no crash, peak RSS within the budget + 64 MiB.
#![cfg(target_os = "linux")]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use serde_json::Value;
use snowpipe_hostile::{Case, Limits, Suite, MIB};

use crate::common::DDL;
use crate::hostile_suite::{append, open, sql, start_with, survived};

/// What a console case sends.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Attack {
    /// Query strings of 1 KiB to 1 MiB on every console path.
    HugeQuery,
    /// 600 channels with 255-character names holding markup.
    ManyLongChannels,
    /// A table, a column and row values holding `<script>`.
    MarkupInNames,
    /// Invalid UTF-8 and percent-escapes of it in the paths and the query.
    InvalidUtf8Path,
    /// 32 clients at once, 10 requests each.
    Concurrent,
}

const ATTACKS: [Attack; 5] = [
    Attack::HugeQuery,
    Attack::ManyLongChannels,
    Attack::MarkupInNames,
    Attack::InvalidUtf8Path,
    Attack::Concurrent,
];

const BUDGET: u64 = 256 * MIB;
const MARKUP: &str = "<script>alert(1)</script>";

fn limits() -> Limits {
    let mut l = Limits::with_budget(BUDGET);
    l.wall = Duration::from_secs(60);
    l
}

/// An answer read by a raw client: its status (`None`: closed without one) and body.
struct Raw {
    status: Option<u16>,
    body: Vec<u8>,
}

/// Sends `GET {target}` (bytes, as given) to `addr` with `accept`, reads the answer (at most
/// 16 MiB).
fn raw_get(addr: &str, target: &[u8], accept: &str) -> Raw {
    let mut s = TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = b"GET ".to_vec();
    req.extend_from_slice(target);
    req.extend_from_slice(
        format!(" HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: {accept}\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    );
    // The server may answer and close before reading a head past its limit.
    let _ = s.write_all(&req);
    let mut out = Vec::new();
    let _ = s.take(16 * MIB).read_to_end(&mut out);
    let end = out.windows(4).position(|w| w == b"\r\n\r\n");
    let status = std::str::from_utf8(&out[..end.unwrap_or(0)])
        .ok()
        .and_then(|h| h.split_whitespace().nth(1)?.parse().ok());
    Raw {
        status,
        body: end.map_or_else(Vec::new, |e| out[e + 4..].to_vec()),
    }
}

fn answered(case: &Case<Attack>, what: &str, r: &Raw, closed_ok: bool) {
    match r.status {
        Some(s) if (200..300).contains(&s) || (400..500).contains(&s) => {}
        None if closed_ok => {}
        s => case.fail(format!(
            "{what}: status {s:?}: {}",
            String::from_utf8_lossy(&r.body)
                .chars()
                .take(300)
                .collect::<String>()
        )),
    }
}

/// The caps on `GET /` (JSON), `/console/state`, and the page's markup.
fn caps_hold(case: &Case<Attack>, addr: &str) {
    let page = raw_get(addr, b"/", "application/json");
    answered(case, "GET /", &page, false);
    if page.body.len() > 4 << 20 {
        case.fail(format!("GET / is {} bytes, past 4 MiB", page.body.len()));
    }
    let v: Value = serde_json::from_slice(&page.body).unwrap_or(Value::Null);
    let channels = v["channels"].as_array().map_or(0, Vec::len);
    if channels > 500 {
        case.fail(format!("GET / shows {channels} channels, past 500"));
    }
    if let Some(long) = longest_string(&v).filter(|n| *n > 1024) {
        case.fail(format!(
            "GET / holds a string of {long} characters, past 1,024"
        ));
    }
    let state = raw_get(addr, b"/console/state", "application/json");
    answered(case, "GET /console/state", &state, false);
    let v: Value = serde_json::from_slice(&state.body).unwrap_or(Value::Null);
    let shown = v["channels"].as_array().map_or(0, Vec::len);
    if shown > 1_000 {
        case.fail(format!("the console shows {shown} channels, past 1,000"));
    }
    for ch in v["channels"].as_array().into_iter().flatten() {
        if let Some(long) = longest_string(ch).filter(|n| *n > 120) {
            case.fail(format!(
                "a console channel cell of {long} characters, past 120"
            ));
        }
    }
    let html = raw_get(addr, b"/", "text/html");
    answered(case, "GET / (a browser)", &html, false);
    if String::from_utf8_lossy(&html.body).contains(MARKUP) {
        case.fail("the console page holds a name's <script> as markup".to_owned());
    }
}

/// The longest string (characters) anywhere in `v`.
fn longest_string(v: &Value) -> Option<usize> {
    match v {
        Value::String(s) => Some(s.chars().count()),
        Value::Array(a) => a.iter().filter_map(longest_string).max(),
        Value::Object(o) => o.values().filter_map(longest_string).max(),
        _ => None,
    }
}

fn attack(case: &Case<Attack>, url: &str, addr: &str) {
    match case.class {
        Attack::HugeQuery => {
            for n in [1 << 10, 64 << 10, 1 << 20] {
                for path in ["/", "/console", "/console/state", "/console/console.js"] {
                    let target = format!("{path}?channels_from=0&q={}", "a".repeat(n));
                    let r = raw_get(addr, target.as_bytes(), "text/html");
                    answered(case, &format!("GET {path} with a {n}-byte query"), &r, true);
                }
            }
        }
        Attack::ManyLongChannels => {
            for i in 0..600 {
                let name = format!("C{i:04}{}", "%3Cscript%3Ealert(1)%3C%2Fscript%3E".repeat(9));
                let name = format!("{name}{}", "x".repeat(255 - 5 - 9 * MARKUP.len()));
                open(url, &name);
            }
            // The attack reached the console: every channel counted, names with markup shown.
            let state = raw_get(addr, b"/console/state", "application/json");
            let v: Value = serde_json::from_slice(&state.body).unwrap_or(Value::Null);
            if v["channels_total"].as_u64().is_none_or(|n| n < 600) {
                case.fail(format!(
                    "the console counts {} channels",
                    v["channels_total"]
                ));
            }
            if !String::from_utf8_lossy(&state.body).contains(MARKUP) {
                case.fail("no channel name with markup in the console's state".to_owned());
            }
        }
        Attack::MarkupInNames => {
            let ddl = format!(
                "CREATE TABLE \"{MARKUP}\" (\"{MARKUP}\" VARCHAR); \
                 INSERT INTO \"{MARKUP}\" VALUES ('{MARKUP}')"
            );
            for s in ddl.split("; ") {
                let _ = sql(url, s.as_bytes());
            }
            let ct = open(url, "markup");
            let row = format!("{{\"ID\":1,\"NAME\":\"{MARKUP}\"}}\n");
            let r = append(url, "markup", &ct, row.into_bytes(), None);
            if !matches!(r, Ok((200, _))) {
                case.fail(format!("the row holding markup got {r:?}"));
            }
        }
        Attack::InvalidUtf8Path => {
            let targets: [&[u8]; 5] = [
                b"/\xff\xfe",
                b"/console/\xc3\x28state",
                b"/console/state?channels_from=\xff",
                b"/?channels_from=%ff%fe&channels_limit=%c3%28",
                b"/console%2f%ff",
            ];
            for t in targets {
                let r = raw_get(addr, t, "text/html");
                answered(
                    case,
                    &format!("GET {}", String::from_utf8_lossy(t)),
                    &r,
                    true,
                );
            }
        }
        Attack::Concurrent => {
            let workers: Vec<_> = (0..32)
                .map(|i| {
                    let addr = addr.to_owned();
                    std::thread::spawn(move || {
                        let paths: [&[u8]; 3] = [b"/", b"/console/state", b"/console/console.js"];
                        (0..10)
                            .map(|j| raw_get(&addr, paths[(i + j) % 3], "*/*").status)
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            for w in workers {
                let statuses = w.join().expect("a client thread");
                if statuses.iter().any(|s| *s != Some(200)) {
                    case.fail(format!("concurrent console requests got {statuses:?}"));
                }
            }
        }
    }
}

#[test]
fn hostile_console() {
    let dir = tempfile::tempdir().unwrap();
    let (server, url) = start_with(dir.path(), DDL.as_bytes(), &["--accept-any-key"], &limits());
    let url = url.expect("the emulator listens");
    let addr = url.trim_start_matches("http://").to_owned();
    let suite = Suite::from_env("console", ATTACKS.len());
    let mut failures = suite.failures(&ATTACKS, |case| {
        attack(&case, &url, &addr);
        caps_hold(&case, &addr);
        // Appends keep landing.
        let good = format!("good{}", case.index);
        let ct = open(&url, &good);
        let r = append(&url, &good, &ct, b"{\"ID\":7}\n".to_vec(), None);
        if !matches!(r, Ok((200, _))) {
            case.fail(format!("after the attack, a good append got {r:?}"));
        }
    });
    let o = server
        .stop(snowpipe_hostile::Signal::Term)
        .expect("stop the emulator");
    eprintln!("hostile console: the emulator's run: {}", o.summary());
    // The server's run is checked whatever `HOSTILE_ONLY` ran of it.
    let case = suite.always_case(ATTACKS[0]);
    failures.extend(survived(&case, &o, &limits()).err());
    suite.finish(failures);
}

/// The console's script puts names, tokens and cells in the page as text only: every
/// `innerHTML` it sets is a literal of its own.
#[test]
fn hostile_console_script_renders_names_as_text() {
    let script = include_str!("../../src/http/console/console.js");
    for line in script.lines().filter(|l| l.contains("innerHTML")) {
        let rhs = line.split("innerHTML").nth(1).unwrap_or("").trim_start();
        let literal = rhs
            .strip_prefix('=')
            .map(str::trim_start)
            .is_some_and(|r| r.starts_with('"') && r.trim_end().ends_with("\";"));
        assert!(literal, "console.js sets innerHTML from a value: {line}");
    }
    assert!(script.contains("textContent"), "console.js shows text");
}
