//! A Schema Registry double that answers as the test says, per id and per request: a schema
//! (any text, any type, with references), or a hostile answer — 100 MB, chunked forever, a drip
//! of one byte a second, a redirect, a page that is no registry's answer, a reset. It counts
//! the requests for each id, the bytes it wrote and how long each connection stayed open, and
//! answers 401 without the right credentials (as a real registry does).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::common::registry::CREDENTIALS;

/// One answer of the double.
#[derive(Debug, Clone)]
pub(crate) enum Reply {
    /// HTTP 200 with `{"schema": …, "schemaType": …, "references": …}`.
    Schema {
        kind: &'static str,
        schema: String,
        references: Option<serde_json::Value>,
    },
    /// Whatever status line, content type and body.
    Raw {
        status: &'static str,
        content_type: &'static str,
        body: Vec<u8>,
    },
    /// HTTP 200 claiming `content-length` bytes and writing them (filler) as long as read.
    Huge(u64),
    /// HTTP 200, chunked, chunks forever (as long as read).
    Endless,
    /// HTTP 200 with a body of one byte a second, as long as the connection stays open.
    Drip,
    /// HTTP 302 to this location.
    Redirect(String),
    /// The connection reset (RST) once the request is read.
    Reset,
}

/// What the double answers: given the schema id asked for and how many times it was asked
/// before (0 on the first request).
pub(crate) type Answers = Arc<dyn Fn(u32, usize) -> Reply + Send + Sync>;

/// What the double saw.
#[derive(Debug, Default, Clone)]
pub(crate) struct Seen {
    /// Requests per schema id.
    pub(crate) asked: HashMap<u32, usize>,
    /// Per answered request: the id, the bytes written, how long the connection was open.
    pub(crate) connections: Vec<(u32, u64, Duration)>,
    /// Requests without the credentials (answered 401).
    pub(crate) unauthorized: usize,
}

/// The double: its URL and what it saw.
pub(crate) async fn serve(answers: Answers) -> (String, Arc<Mutex<Seen>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let seen: Arc<Mutex<Seen>> = Arc::default();
    let shared = Arc::clone(&seen);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let (answers, seen) = (Arc::clone(&answers), Arc::clone(&shared));
            tokio::spawn(answer(stream, answers, seen));
        }
    });
    (url, seen)
}

/// Reads one request's head and answers it.
async fn answer(mut stream: TcpStream, answers: Answers, seen: Arc<Mutex<Seen>>) {
    let opened = Instant::now();
    let mut request = Vec::new();
    let mut buf = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") && request.len() < 65_536 {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    let text = String::from_utf8_lossy(&request).to_string();
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(CREDENTIALS)
    );
    let authorized = text.lines().any(|l| {
        l.split_once(':').is_some_and(|(name, value)| {
            name.eq_ignore_ascii_case("authorization") && value.trim() == expected
        })
    });
    let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
    let id = path
        .strip_prefix("/schemas/ids/")
        .and_then(|id| id.parse::<u32>().ok());
    let (reply, id) = match id {
        _ if !authorized => {
            seen.lock().unwrap().unauthorized += 1;
            (
                raw(
                    "401 Unauthorized",
                    r#"{"error_code":401,"message":"Unauthorized"}"#,
                ),
                0,
            )
        }
        None => (
            raw(
                "404 Not Found",
                r#"{"error_code":404,"message":"no such path"}"#,
            ),
            0,
        ),
        Some(id) => {
            let before = {
                let mut s = seen.lock().unwrap();
                let n = s.asked.entry(id).or_default();
                *n += 1;
                *n - 1
            };
            (answers(id, before), id)
        }
    };
    let written = write_reply(&mut stream, reply).await;
    seen.lock()
        .unwrap()
        .connections
        .push((id, written, opened.elapsed()));
}

/// A plain JSON answer.
pub(crate) fn raw(status: &'static str, body: &str) -> Reply {
    Reply::Raw {
        status,
        content_type: "application/vnd.schemaregistry.v1+json",
        body: body.as_bytes().to_vec(),
    }
}

/// Writes `reply`; the bytes written (until the peer went away, for the endless ones).
async fn write_reply(stream: &mut TcpStream, reply: Reply) -> u64 {
    let head = |status: &str, ct: &str, framing: String| {
        format!("HTTP/1.1 {status}\r\ncontent-type: {ct}\r\n{framing}connection: close\r\n\r\n")
    };
    let (head_text, body): (String, Vec<u8>) = match reply {
        Reply::Schema {
            kind,
            schema,
            references,
        } => {
            let mut v = serde_json::json!({"schema": schema, "schemaType": kind});
            if let Some(r) = references {
                v["references"] = r;
            }
            let body = v.to_string().into_bytes();
            let h = head(
                "200 OK",
                "application/vnd.schemaregistry.v1+json",
                format!("content-length: {}\r\n", body.len()),
            );
            (h, body)
        }
        Reply::Raw {
            status,
            content_type,
            body,
        } => (
            head(
                status,
                content_type,
                format!("content-length: {}\r\n", body.len()),
            ),
            body,
        ),
        Reply::Redirect(to) => (
            format!(
                "HTTP/1.1 302 Found\r\nlocation: {to}\r\ncontent-length: 0\r\nconnection: \
                 close\r\n\r\n"
            ),
            Vec::new(),
        ),
        Reply::Reset => {
            // A zero linger: the drop sends RST at once (it is a non-zero one that blocks).
            #[allow(deprecated)]
            let _ = stream.set_linger(Some(Duration::ZERO));
            return 0;
        }
        Reply::Huge(n) => {
            let h = head(
                "200 OK",
                "application/json",
                format!("content-length: {n}\r\n"),
            );
            return stream_body(stream, h, Some(n), false).await;
        }
        Reply::Endless => {
            let h = head(
                "200 OK",
                "application/json",
                "transfer-encoding: chunked\r\n".into(),
            );
            return stream_body(stream, h, None, true).await;
        }
        Reply::Drip => {
            let h = head(
                "200 OK",
                "application/json",
                "content-length: 1000\r\n".into(),
            );
            let mut written = 0;
            if stream.write_all(h.as_bytes()).await.is_err() {
                return 0;
            }
            for _ in 0..120 {
                if stream.write_all(b" ").await.is_err() || stream.flush().await.is_err() {
                    break;
                }
                written += 1;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            return written;
        }
    };
    let mut all = head_text.into_bytes();
    all.extend_from_slice(&body);
    let _ = stream.write_all(&all).await;
    let _ = stream.shutdown().await;
    all.len() as u64
}

/// Writes a head then filler (`{"schema":"xxxx…`) up to `total` bytes, or forever, chunked or
/// not, until the peer goes away (at most 1 GiB, in case it never does); the bytes written.
async fn stream_body(
    stream: &mut TcpStream,
    head: String,
    total: Option<u64>,
    chunked: bool,
) -> u64 {
    if stream.write_all(head.as_bytes()).await.is_err() {
        return 0;
    }
    let block = vec![b'x'; 64 << 10];
    let mut written = 0u64;
    let mut first = br#"{"schema":""#.to_vec();
    while written < total.unwrap_or(1 << 30) {
        let n = total.map_or(block.len() as u64, |t| {
            (t - written).min(block.len() as u64)
        });
        let mut piece = std::mem::take(&mut first);
        piece.extend_from_slice(&block[..n as usize - piece.len().min(n as usize)]);
        let framed = if chunked {
            let mut f = format!("{:x}\r\n", piece.len()).into_bytes();
            f.extend_from_slice(&piece);
            f.extend_from_slice(b"\r\n");
            f
        } else {
            piece
        };
        if stream.write_all(&framed).await.is_err() {
            break;
        }
        written += n;
    }
    written
}
