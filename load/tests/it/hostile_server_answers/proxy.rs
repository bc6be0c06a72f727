//! A hostile server written in the test: a plain-HTTP proxy on loopback in front of the lab's
//! emulator that forwards every request, except that the answers of one chosen step (hostname,
//! token, pipe info or open channel, append, status) are replaced or corrupted by a chosen
//! [`Answer`], a given number of times. With no plan it is a good server (the emulator's
//! answers unchanged).
//!
//! One request per connection: the request forwarded upstream carries `Connection: close`,
//! and the proxy closes the client's connection after the answer, so every request is seen.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use super::answers::{self, Answer};

/// The step of the SDK's protocol a request belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Step {
    /// `GET /v2/streaming/hostname`.
    Hostname,
    /// `POST /oauth/token`.
    Token,
    /// `POST …:pipe-info` and `PUT …/channels/{c}` (open).
    Open,
    /// `POST …/channels/{c}/rows`.
    Append,
    /// `POST …:bulk-channel-status`.
    Status,
}

impl Step {
    fn of(method: &str, path: &str) -> Option<Step> {
        let path = path.split('?').next().unwrap_or(path);
        Some(if path.ends_with("/v2/streaming/hostname") {
            Step::Hostname
        } else if path.ends_with("/oauth/token") {
            Step::Token
        } else if path.ends_with(":bulk-channel-status") {
            Step::Status
        } else if path.ends_with("/rows") {
            Step::Append
        } else if path.ends_with(":pipe-info") || (method == "PUT" && path.contains("/channels/")) {
            Step::Open
        } else {
            return None;
        })
    }
}

/// What the hostile server does: `answer` at `step`, `times` times (then it forwards).
#[derive(Debug, Clone, Copy)]
pub(super) struct Plan {
    pub step: Step,
    pub answer: Answer,
    pub times: u32,
}

/// The proxy: its address, and the plan its connections read.
pub(super) struct Proxy {
    addr: SocketAddr,
    plan: Arc<Mutex<Option<Plan>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (any port) in front of `upstream`, with no plan (a good server).
    pub(super) fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let plan = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (plan.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let p = p.clone();
                thread::spawn(move || serve(conn, upstream, &p));
            }
        });
        Proxy { addr, plan, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub(super) fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets (or, with `None`, clears: a good server from now on) the plan.
    pub(super) fn set(&self, plan: Option<Plan>) {
        *self.plan.lock().unwrap() = plan;
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

/// Takes one use of the plan for `step`, if it applies.
fn take(plan: &Mutex<Option<Plan>>, step: Option<Step>) -> Option<Answer> {
    let mut g = plan.lock().unwrap();
    let p = g.as_mut()?;
    if Some(p.step) != step || p.times == 0 {
        return None;
    }
    p.times = p.times.saturating_sub(1);
    Some(p.answer)
}

/// A request as read from the client: its head (request line and headers) and body.
pub(super) struct Request {
    pub method: String,
    pub path: String,
    head: Vec<u8>,
    body: Vec<u8>,
}

fn serve(mut conn: TcpStream, upstream: SocketAddr, plan: &Mutex<Option<Plan>>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let step = Step::of(&req.method, &req.path);
    let _ = match take(plan, step) {
        None => forward(&req, upstream)
            .and_then(|(head, body)| conn.write_all(&answers::respond(&head, &body, &[]))),
        Some(a) => answers::hostile(a, &mut conn, || forward(&req, upstream)),
    };
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

/// The position just after the first `\r\n\r\n` in `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn read_request(conn: &mut TcpStream) -> Option<Request> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    let end = loop {
        if let Some(e) = head_end(&buf) {
            break e;
        }
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        buf.extend_from_slice(&chunk[..n]);
        if buf.len() > 1 << 20 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&buf[..end]).into_owned();
    let len: usize = header(&head, "content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[end..].to_vec();
    while body.len() < len {
        let n = conn.read(&mut chunk).ok().filter(|n| *n > 0)?;
        body.extend_from_slice(&chunk[..n]);
    }
    let mut words = head.split_whitespace();
    let method = words.next()?.to_owned();
    let path = words.next()?.to_owned();
    Some(Request {
        method,
        path,
        head: buf[..end].to_vec(),
        body,
    })
}

/// Sends `req` to the emulator (`Connection: close`, no compression asked for) and returns its
/// answer: the head (status line and headers, framing headers dropped) and the whole body.
pub(super) fn forward(req: &Request, upstream: SocketAddr) -> std::io::Result<(String, Vec<u8>)> {
    let head = String::from_utf8_lossy(&req.head);
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let name = line
            .split(':')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        if line.is_empty() || (i > 0 && matches!(name.as_str(), "connection" | "accept-encoding")) {
            continue;
        }
        out.push_str(line);
        out.push_str("\r\n");
    }
    out.push_str("Connection: close\r\n\r\n");
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(30)))?;
    up.write_all(out.as_bytes())?;
    up.write_all(&req.body)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    let end = head_end(&raw).ok_or_else(|| std::io::Error::other("no head upstream"))?;
    let head = String::from_utf8_lossy(&raw[..end]).into_owned();
    let body = if header(&head, "transfer-encoding").is_some_and(|t| t.contains("chunked")) {
        dechunk(&raw[end..])
    } else {
        raw[end..].to_vec()
    };
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|l| {
            let n = l
                .split(':')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            !l.is_empty()
                && !matches!(
                    n.as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                )
        })
        .collect();
    Ok((kept.join("\r\n"), body))
}

fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(p) = raw.windows(2).position(|w| w == b"\r\n") {
        let size = String::from_utf8_lossy(&raw[..p]);
        let size = size.split(';').next().unwrap_or("").trim();
        let Ok(n) = usize::from_str_radix(size, 16) else {
            break;
        };
        if n == 0 || raw.len() < p + 2 + n {
            break;
        }
        out.extend_from_slice(&raw[p + 2..p + 2 + n]);
        raw = &raw[(p + 4 + n).min(raw.len())..];
    }
    out
}
