//! A hostile HTTP server in front of a real one, written in the test: a plain-HTTP proxy on
//! loopback that forwards every request upstream unless a hook answers it itself, and the
//! pieces a hook writes its answers with (a framed answer, endless and 2^62-byte bodies, a gzip
//! bomb, a drip, a TCP reset, invalid UTF-8 in an answer).
//!
//! One request per connection: the request forwarded upstream carries `Connection: close`,
//! and the proxy closes the client's connection after the answer, so every request is seen.

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::Duration;

/// A request as read from the client: its head (request line and headers) and body.
#[derive(Debug, Clone)]
pub struct Request {
    /// `GET`, `POST`, ….
    pub method: String,
    /// The request target, query included.
    pub path: String,
    /// The request line and headers as sent.
    pub head: Vec<u8>,
    /// The body (`Content-Length` framing only).
    pub body: Vec<u8>,
}

/// Answers a request itself (returning `true`), or leaves it to be forwarded (`false`). It
/// gets the client's connection and the upstream address (to ask it, see [`forward`]).
pub type Hook = Arc<dyn Fn(&Request, &mut TcpStream, SocketAddr) -> bool + Send + Sync>;

/// The proxy: its address, and the hook its connections read.
pub struct Proxy {
    addr: SocketAddr,
    hook: Arc<Mutex<Option<Hook>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    /// Listens on 127.0.0.1 (any port) in front of `upstream`, with no hook (a good server).
    ///
    /// # Panics
    /// When no loopback port can be bound.
    pub fn start(upstream: SocketAddr) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().expect("the proxy's address");
        let hook: Arc<Mutex<Option<Hook>>> = Arc::new(Mutex::new(None));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hook.clone(), stop.clone());
        thread::spawn(move || {
            for conn in listener.incoming() {
                if s.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let hook = h.lock().map(|g| g.clone()).unwrap_or(None);
                thread::spawn(move || serve(conn, upstream, hook.as_ref()));
            }
        });
        Proxy { addr, hook, stop }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sets (or, with `None`, clears: a good server from now on) the hook.
    pub fn set(&self, hook: Option<Hook>) {
        if let Ok(mut g) = self.hook.lock() {
            *g = hook;
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees `stop`.
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut conn: TcpStream, upstream: SocketAddr, hook: Option<&Hook>) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let Some(req) = read_request(&mut conn) else {
        return;
    };
    let answered = hook.is_some_and(|h| h(&req, &mut conn, upstream));
    if !answered {
        let _ = forward(&req, upstream)
            .and_then(|(head, body)| conn.write_all(&respond(&head, &body, &[])));
    }
    let _ = conn.flush();
    let _ = conn.shutdown(Shutdown::Both);
}

/// The position just after the first `\r\n\r\n` in `buf`.
fn head_end(buf: &[u8]) -> Option<usize> {
    buf.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// The value of header `name` in `head` (a status or request line, then headers).
pub fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// Reads one request (a head of at most 1 MiB, a `Content-Length` body).
pub fn read_request(conn: &mut TcpStream) -> Option<Request> {
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

/// Sends `req` upstream (`Connection: close`, no compression asked for) and returns its
/// answer: the head (status line and headers, framing headers dropped) and the whole body.
///
/// # Errors
/// When upstream cannot be reached or answers no head.
pub fn forward(req: &Request, upstream: SocketAddr) -> std::io::Result<(String, Vec<u8>)> {
    let head = String::from_utf8_lossy(&req.head);
    let mut out = String::new();
    for (i, line) in head.split("\r\n").enumerate() {
        let name = header_name(line);
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
            !l.is_empty()
                && !matches!(
                    header_name(l).as_str(),
                    "content-length" | "transfer-encoding" | "connection"
                )
        })
        .collect();
    Ok((kept.join("\r\n"), body))
}

fn header_name(line: &str) -> String {
    line.split(':')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
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

/// `head` (a status line and headers, no framing) with `extra` headers and `body`, framed by
/// `Content-Length`, the connection closed after it.
pub fn respond(head: &str, body: &[u8], extra: &[&str]) -> Vec<u8> {
    let mut out = head.trim_end().to_owned();
    for h in extra {
        out.push_str("\r\n");
        out.push_str(h);
    }
    out.push_str(&format!(
        "\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Writes `chunk` again and again until 2 GiB or the client stops reading.
///
/// # Errors
/// When the client is gone (expected: it stops reading what is past its caps).
pub fn stream(conn: &mut TcpStream, chunk: &[u8]) -> std::io::Result<()> {
    conn.set_write_timeout(Some(Duration::from_secs(30)))?;
    let mut sent = 0u64;
    while sent < 2 << 30 {
        conn.write_all(chunk)?;
        sent += chunk.len() as u64;
    }
    Ok(())
}

/// Writes `head` (a status line and headers, no framing) as a `Transfer-Encoding: chunked`
/// answer whose chunks (64 KiB of spaces each) never end: until 2 GiB or the client stops
/// reading.
///
/// # Errors
/// When the client is gone (expected: it stops reading what is past its caps).
pub fn endless_chunked(conn: &mut TcpStream, head: &str) -> std::io::Result<()> {
    conn.write_all(
        format!("{}\r\nTransfer-Encoding: chunked\r\n\r\n", head.trim_end()).as_bytes(),
    )?;
    let chunk = [
        format!("{:x}\r\n", 1 << 16).into_bytes(),
        vec![b' '; 1 << 16],
        b"\r\n".to_vec(),
    ]
    .concat();
    stream(conn, &chunk)
}

/// Writes `head` with `Content-Length: 2^62`, then spaces until 2 GiB or the client stops
/// reading.
///
/// # Errors
/// When the client is gone (expected: it stops reading what is past its caps).
pub fn huge_length(conn: &mut TcpStream, head: &str) -> std::io::Result<()> {
    let head = format!(
        "{}\r\nContent-Length: {}\r\n\r\n",
        head.trim_end(),
        1u64 << 62
    );
    conn.write_all(head.as_bytes())?;
    stream(conn, &[b' '; 1 << 16])
}

/// Writes `bytes` one at a time, `gap` apart (a server that drips its answer).
///
/// # Errors
/// When the client is gone.
pub fn drip(conn: &mut TcpStream, bytes: &[u8], gap: Duration) -> std::io::Result<()> {
    for b in bytes {
        conn.write_all(&[*b])?;
        thread::sleep(gap);
    }
    Ok(())
}

/// Closes `conn` with a TCP reset (`SO_LINGER` 0) instead of an orderly close: what a client
/// reads after what was written is a connection reset, not an end of stream.
pub fn reset(conn: &TcpStream) {
    let linger = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a pointer to a local of the size given.
    #[allow(unsafe_code, reason = "SO_LINGER through libc (std has no setter)")]
    unsafe {
        libc::setsockopt(
            conn.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&linger as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        );
    }
}

/// `body` (an answer) with invalid UTF-8 (`C3 28 FF FE`) inside its first string: just after
/// its first `"`, or at its start when it has none.
pub fn invalid_utf8_in_first_string(body: &[u8]) -> Vec<u8> {
    let at = body.iter().position(|b| *b == b'"').map_or(0, |p| p + 1);
    [&body[..at], b"\xC3\x28\xFF\xFE", &body[at..]].concat()
}

/// A gzip member whose deflate stream (one fixed-Huffman block: a space, then matches of 258
/// at distance 1) inflates to 256 MiB of spaces (1.7 MB on the wire); no valid trailer (no
/// client gets that far).
pub fn gzip_bomb() -> &'static [u8] {
    static BOMB: OnceLock<Vec<u8>> = OnceLock::new();
    BOMB.get_or_init(|| {
        let mut w = Bits::default();
        w.lsb(1, 1); // BFINAL
        w.lsb(1, 2); // BTYPE 01: fixed Huffman
        w.code(0x30 + u32::from(b' '), 8); // the literal ' '
        for _ in 0..(256u64 << 20) / 258 {
            w.code(0b1100_0101, 8); // length code 285: 258
            w.code(0, 5); // distance code 0: 1
        }
        w.code(0, 7); // end of block
        let mut out = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 0xff];
        out.extend_from_slice(&w.done());
        out.extend_from_slice(&[0; 8]);
        out
    })
}

/// A deflate bit writer: fields least significant bit first, Huffman codes most first.
#[derive(Default)]
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn lsb(&mut self, v: u32, bits: u32) {
        self.acc |= u64::from(v) << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }

    fn code(&mut self, code: u32, bits: u32) {
        let rev = code.reverse_bits() >> (32 - bits);
        self.lsb(rev, bits);
    }

    fn done(mut self) -> Vec<u8> {
        if self.n > 0 {
            self.out.push(self.acc as u8);
        }
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connected pair on loopback: (the server's end, the client's end).
    fn pair() -> (TcpStream, TcpStream) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (server, _) = listener.accept().unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        (server, client)
    }

    #[test]
    fn a_reset_after_a_partial_answer_reads_as_a_connection_reset() {
        let (mut server, mut client) = pair();
        server.write_all(b"HTTP/1.1 200 OK\r\nContent-Le").unwrap();
        // Let the bytes arrive before the reset, as a client that reads them meets it.
        let mut got = [0u8; 27];
        client.read_exact(&mut got).unwrap();
        reset(&server);
        drop(server);
        let mut rest = Vec::new();
        let err = client.read_to_end(&mut rest).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    }

    #[test]
    fn a_drip_writes_every_byte_in_order() {
        let (mut server, mut client) = pair();
        drip(&mut server, b"{\"a\":1}", Duration::ZERO).unwrap();
        drop(server);
        let mut got = Vec::new();
        client.read_to_end(&mut got).unwrap();
        assert_eq!(got, b"{\"a\":1}");
    }

    #[test]
    fn invalid_utf8_goes_inside_the_first_string() {
        let broken = invalid_utf8_in_first_string(br#"{"token":"abc"}"#);
        assert_eq!(broken, b"{\"\xC3\x28\xFF\xFEtoken\":\"abc\"}");
        assert!(std::str::from_utf8(&broken).is_err());
        assert_eq!(
            invalid_utf8_in_first_string(b"host"),
            b"\xC3\x28\xFF\xFEhost"
        );
    }

    #[test]
    fn a_huge_length_answer_claims_2_pow_62_bytes() {
        let (mut server, client) = pair();
        let reader = thread::spawn(move || {
            let (mut client, mut buf, mut chunk) = (client, Vec::new(), [0u8; 4096]);
            while head_end(&buf).is_none() {
                let n = client.read(&mut chunk).unwrap();
                assert!(n > 0, "the answer ended before its head");
                buf.extend_from_slice(&chunk[..n]);
            }
            buf.truncate(head_end(&buf).unwrap_or(0));
            buf
        });
        // The reader drops its end after the head: the stream then fails, as a client's cap.
        let sent = huge_length(&mut server, "HTTP/1.1 200 OK");
        let head = String::from_utf8(reader.join().unwrap()).unwrap();
        assert_eq!(header(&head, "content-length"), Some("4611686018427387904"));
        assert!(
            sent.is_err(),
            "the stream ends only when the client is gone"
        );
    }
}
