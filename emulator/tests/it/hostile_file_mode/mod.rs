//! The hostile-input suite (issue 81, item 21) on the official SDK's file mode: stage uploads
//! (`uploads`) and file registrations (`registrations`), sent by a test-side client (raw
//! HTTP where a header must lie, SigV4-signed as the SDK's S3 client signs where a signature
//! is needed) to the real `snowpipe-emulator` binary under an address-space cap.
//!
//! Every bad request must get a 4xx naming its error (an S3 `<Code>` or the API's `code`;
//! 503 `SlowDown` only where the stage is full, as documented), the server must live, its
//! peak RSS stay within its budget (`--max-pending-bytes` + `--max-stage-bytes`) + 64 MiB,
//! and a good file uploaded and registered after each case must land its rows exactly once
//! (counted through the SQL API). `HOSTILE_SEED` / `HOSTILE_CASES`: see `hostile/README.md`.
#![cfg(target_os = "linux")]

mod registrations;
mod uploads;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use snowpipe_emulator::aws_chunked;
use snowpipe_hostile::{Case, Limits, Running, Suite, MIB};

use crate::common::stage::{file, signed_headers, File, Part, StageInfo};
use crate::common::{pipe_path, DATA, DDL};
use crate::hostile_suite::{http, sql, start_with, survived};

/// `--max-pending-bytes` of these runs.
const PENDING: u64 = 256 * MIB;
/// `--max-stage-bytes`: one caller may hold half.
const STAGE_BYTES: u64 = 32 * MIB;
/// `--max-stage-files`: one caller may hold half.
const STAGE_FILES: usize = 64;

fn limits() -> Limits {
    let mut l = Limits::with_budget(PENDING + STAGE_BYTES);
    // The server serves every case of a run; it is stopped (SIGTERM) at the end.
    l.wall = Duration::from_secs(900);
    l
}

/// The emulator, its URL and the stage its `:pipe-info` names.
struct Server {
    run: Running,
    url: String,
    info: StageInfo,
    _dir: tempfile::TempDir,
}

/// A request's answer: status and body, or why none came.
type Answer = Result<(u16, String), String>;

impl Server {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let (stage_bytes, stage_files) = (STAGE_BYTES.to_string(), STAGE_FILES.to_string());
        let extra = [
            "--accept-any-key",
            "--max-stage-bytes",
            &stage_bytes,
            "--max-stage-files",
            &stage_files,
            "--body-timeout",
            "1s",
        ];
        let (run, url) = start_with(dir.path(), DDL.as_bytes(), &extra, &limits());
        let url = url.expect("the emulator listens");
        let r = http()
            .post(format!("{url}{}:pipe-info", pipe_path("P")))
            .bearer_auth("any")
            .json(&json!({}))
            .send()
            .expect(":pipe-info");
        assert_eq!(r.status(), 200, ":pipe-info");
        let info = StageInfo::from_pipe_info(&r.json().unwrap());
        Server {
            run,
            url,
            info,
            _dir: dir,
        }
    }

    /// The upload URL of `key` (a path under the bucket, e.g. the stage location + a name).
    fn put_url(&self, key: &str) -> String {
        format!("{}/{key}?x-id=PutObject", self.url)
    }

    /// Sends a PUT of `body` with `headers` as they are.
    fn put(&self, url: &str, headers: reqwest::header::HeaderMap, body: Vec<u8>) -> Answer {
        let r = http()
            .put(url)
            .headers(headers)
            .body(body)
            .send()
            .map_err(|e| format!("no answer: {e}"))?;
        let status = r.status().as_u16();
        let etag = r
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.trim_matches('"').to_owned());
        let text = r.text().unwrap_or_default();
        Ok((status, etag.unwrap_or(text)))
    }

    /// Uploads `f` as the SDK does; sets its ETag in its fragments. The answer on refusal.
    fn upload(&self, f: &mut File) -> Answer {
        let url = self.put_url(&f.path);
        let h = signed_headers(&self.info, &url, f.bytes.len());
        let (status, etag) = self.put(&url, h, aws_chunked(&f.bytes, 64 * 1024))?;
        if status == 200 {
            for frag in &mut f.fragments {
                frag["file_etag"] = json!(etag);
            }
        }
        Ok((status, etag))
    }

    /// Posts a registration body on `channel` (continuation token `ct`).
    fn register(&self, channel: &str, ct: &str, body: Vec<u8>) -> Answer {
        let r = http()
            .post(format!(
                "{}{DATA}/channels/{channel}/filebuffer?continuationToken={ct}&requestId=h",
                self.url
            ))
            .bearer_auth("any")
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .map_err(|e| format!("no answer: {e}"))?;
        let status = r.status().as_u16();
        Ok((status, r.text().unwrap_or_default()))
    }

    /// (rows, distinct IDs) of `T` with an ID in `ids`.
    fn landed(&self, ids: std::ops::Range<u32>) -> (u64, u64) {
        let q = format!(
            "SELECT COUNT(*), COUNT(DISTINCT ID) FROM T WHERE ID >= {} AND ID < {}",
            ids.start, ids.end
        );
        let (status, text) = sql(&self.url, q.as_bytes()).expect("the SQL API answers");
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).unwrap();
        let n = |i: usize| {
            let c = &v["data"][0][i];
            c.as_str()
                .and_then(|s| s.parse().ok())
                .or_else(|| c.as_u64())
                .unwrap_or_else(|| panic!("a count in {text}"))
        };
        (n(0), n(1))
    }

    /// Waits (up to 20 s) for `ids` to have landed, then checks each landed exactly once.
    fn lands_once<C: std::fmt::Debug>(
        &self,
        case: &Case<C>,
        what: &str,
        ids: std::ops::Range<u32>,
    ) {
        let want = u64::from(ids.end - ids.start);
        let until = Instant::now() + Duration::from_secs(20);
        let mut got = self.landed(ids.clone());
        while got.0 < want && Instant::now() < until {
            std::thread::sleep(Duration::from_millis(25));
            got = self.landed(ids.clone());
        }
        if got != (want, want) {
            case.fail(format!(
                "{what}: IDs {ids:?} landed as (rows, distinct) {got:?}, not once each"
            ));
        }
    }

    /// A good file of IDs `ids` uploaded as `name`, registered on a fresh `channel`, lands
    /// exactly once: nothing after a bad request is lost.
    fn good_file_lands<C: std::fmt::Debug>(
        &self,
        case: &Case<C>,
        after: &str,
        name: &str,
        ids: std::ops::Range<u32>,
    ) {
        let mut f = file(&self.info, name, &[Part::new(ids.clone(), 7)]);
        match self.upload(&mut f) {
            Ok((200, _)) => {}
            r => case.fail(format!("after {after}, a good upload got {r:?}")),
        }
        let channel = format!("good-{name}").replace('.', "-");
        let ct = crate::hostile_suite::open(&self.url, &channel);
        let body = serde_json::to_vec(&f.fragments).unwrap();
        match self.register(&channel, &ct, body) {
            Ok((200, _)) => {}
            r => case.fail(format!("after {after}, a good registration got {r:?}")),
        }
        self.lands_once(case, &format!("after {after}, the good file"), ids);
    }

    /// Stops the server; adds to `failures` a crash, a hang or RSS past the budget.
    fn stop<C: Copy + std::fmt::Debug>(
        self,
        suite: &Suite,
        classes: &[C],
        failures: &mut Vec<String>,
    ) {
        let o = self
            .run
            .stop(snowpipe_hostile::Signal::Term)
            .expect("stop the emulator");
        eprintln!(
            "hostile {}: the server's run: {}",
            suite.surface(),
            o.summary()
        );
        // The server's run is checked whatever `HOSTILE_ONLY` ran of it.
        let case = suite.always_case(classes[0]);
        failures.extend(
            survived(&case, &o, &limits())
                .err()
                .map(|e| format!("the run of every case (the first case's seed shown): {e}")),
        );
    }
}

/// A linear check's measure: only the server's CPU time `cpu` spent on it, for
/// `assert_linear`.
fn cpu_only(cpu: Duration) -> snowpipe_hostile::Outcome {
    snowpipe_hostile::Outcome {
        code: None,
        signal: None,
        timed_out: false,
        stdout: Vec::new(),
        stderr: Vec::new(),
        peak_rss_bytes: 0,
        cpu,
    }
}

/// The answer must be a 4xx (or, with `busy`, a 503 `SlowDown`) naming one of `codes`.
fn refused<C: std::fmt::Debug>(case: &Case<C>, what: &str, r: &Answer, codes: &[&str], busy: bool) {
    let (status, body) = match r {
        Ok(a) => a,
        Err(e) => case.fail(format!("{what}: {e}")),
    };
    let shown = || body.chars().take(600).collect::<String>();
    let status_ok = (400..500).contains(status) || (busy && *status == 503);
    if !status_ok {
        case.fail(format!("{what}: status {status}, not a 4xx: {}", shown()));
    }
    if !codes.iter().any(|c| body.contains(c)) {
        case.fail(format!(
            "{what}: status {status} names none of {codes:?}: {}",
            shown()
        ));
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body` over a raw
/// connection, as a client whose Content-Length need not match its bytes; the status line's
/// code and the answer, or why none came.
fn raw_http(url: &str, head: &str, body: &[u8]) -> Answer {
    use std::io::{Read as _, Write as _};
    let addr = url.trim_start_matches("http://");
    let mut s = std::net::TcpStream::connect(addr).map_err(|e| e.to_string())?;
    s.set_read_timeout(Some(Duration::from_secs(20))).ok();
    s.set_write_timeout(Some(Duration::from_secs(20))).ok();
    let mut req = format!("{head}\r\nHost: {addr}\r\nConnection: close\r\n\r\n").into_bytes();
    req.extend_from_slice(body);
    // The server may answer and close before it read all: a refusal, read below. The
    // write side stays open (a client that half-closes is taken as gone, as by S3).
    let _ = s.write_all(&req);
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .strip_prefix("HTTP/1.1 ")
        .and_then(|t| t.get(..3))
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| {
            format!(
                "no status line: {:?}",
                text.chars().take(200).collect::<String>()
            )
        })?;
    Ok((status, text))
}
