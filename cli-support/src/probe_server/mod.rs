//! A small HTTP/1 server of a process's probes and metrics (`--metrics-addr`): `GET` of a path
//! answered by a function of the path alone (`/metrics`, `/healthz`, `/readyz`), shared by the
//! Kafka sink and `table_replay follow`.
//!
//! Every client is hostile until capped: at most [`MAX_CONNECTIONS`] connections at once
//! ([`BACKLOG`] more queued by the kernel), a
//! request head within [`HEAD_TIMEOUT`] and [`MAX_HEAD_BYTES`], one request per connection (no
//! keep-alive) and a connection closed after [`CONNECTION_TIMEOUT`] whatever it does; a body is
//! never read. With every slot taken, a new connection evicts the oldest one still without its
//! request head and takes its slot at once (`admission.rs`), so slow or half-open clients
//! holding every slot never delay a probe past a second.

mod admission;
mod liveness;

pub use liveness::{LoopClock, Stalled};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::body::Bytes;
use hyper::{Request, Response, StatusCode};
use tokio::net::{TcpListener, TcpSocket};

/// Connections served at once (a scraper and a probe or two need few).
pub const MAX_CONNECTIONS: usize = 64;

/// Connections the kernel queues before they are accepted (the system's `somaxconn` may
/// lower it).
pub const BACKLOG: u32 = 1024;

/// How long a client may take to send a request's head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(5);

/// The most bytes of a request's head (hyper's read buffer; a longer head is refused).
pub const MAX_HEAD_BYTES: usize = 16 << 10;

/// How long one connection may last (one request: keep-alive is off).
pub const CONNECTION_TIMEOUT: Duration = Duration::from_secs(30);

/// What a path is answered with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status (200, 503, 404).
    pub status: u16,
    /// The `Content-Type`.
    pub content_type: &'static str,
    /// The body.
    pub body: String,
}

impl Answer {
    /// A probe's answer: 200 with `Ok`'s text, 503 with `Err`'s, each as one line.
    pub fn probe(result: Result<&str, String>) -> Self {
        let (status, why) = match result {
            Ok(why) => (200, why.to_owned()),
            Err(why) => (503, why),
        };
        Self {
            status,
            content_type: "text/plain",
            body: format!("{why}\n"),
        }
    }

    /// Prometheus' text exposition format, 200.
    pub fn metrics(text: String) -> Self {
        Self {
            status: 200,
            content_type: "text/plain; version=0.0.4",
            body: text,
        }
    }

    /// 404 naming the paths served.
    pub fn not_found() -> Self {
        Self {
            status: 404,
            content_type: "text/plain",
            body: "not found: /metrics, /healthz or /readyz\n".to_owned(),
        }
    }
}

/// `--metrics-addr`: a port (served on 127.0.0.1) or `HOST:PORT`.
///
/// # Errors
/// Anything else, naming both forms.
pub fn parse_addr(s: &str) -> Result<SocketAddr, String> {
    if let Ok(port) = s.trim().parse::<u16>() {
        return Ok(SocketAddr::from(([127, 0, 0, 1], port)));
    }
    s.trim().parse().map_err(|_| {
        format!("{s:?} is not a port (served on 127.0.0.1) or HOST:PORT (e.g. 127.0.0.1:9102)")
    })
}

/// Binds `addr` and answers every request with `answer(path)` until the returned task is
/// aborted. Returns the bound address (port 0 picks a free one).
///
/// # Errors
/// When `addr` cannot be bound.
pub async fn serve<F>(
    addr: SocketAddr,
    answer: F,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)>
where
    F: Fn(&str) -> Answer + Send + Sync + 'static,
{
    let listener = listen(addr)?;
    let bound = listener.local_addr()?;
    let answer = Arc::new(answer);
    let admission = admission::Admission::new();
    let task = tokio::spawn(async move {
        loop {
            let stream = match listener.accept().await {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors, most likely: not a busy loop.
                    tracing::debug!(error = %e, "metrics endpoint: accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            // Every slot taken: the oldest connection still without its head makes room.
            let Some(ticket) = admission.admit().await else {
                return;
            };
            let answer = Arc::clone(&answer);
            let admission = Arc::clone(&admission);
            tokio::spawn(async move {
                let admission::Ticket {
                    id,
                    _slot,
                    _socket,
                    evicted,
                } = ticket;
                let on_head = Arc::clone(&admission);
                let service = hyper::service::service_fn(move |req: Request<_>| {
                    on_head.served(id);
                    let response = respond(answer(req.uri().path()));
                    async move { Ok::<_, std::convert::Infallible>(response) }
                });
                let io = hyper_util::rt::TokioIo::new(stream);
                let conn = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .header_read_timeout(HEAD_TIMEOUT)
                    .max_buf_size(MAX_HEAD_BYTES)
                    .keep_alive(false)
                    .serve_connection(io, service);
                tokio::select! {
                    _ = tokio::time::timeout(CONNECTION_TIMEOUT, conn) => {}
                    // Evicted for a newer connection while still without its head.
                    Ok(()) = evicted => {}
                }
                admission.served(id);
            });
        }
    });
    Ok((bound, task))
}

/// A listener on `addr` whose accept queue holds [`BACKLOG`] connections (tokio's `bind`
/// asks for 128: 200 reconnecting slow clients overflowed it, and a probe's SYN was dropped
/// and retried a second or more later).
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()?
    } else {
        TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

fn respond(a: Answer) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from(a.body)));
    *r.status_mut() = StatusCode::from_u16(a.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = hyper::header::HeaderValue::from_str(a.content_type) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, v);
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    async fn get(addr: SocketAddr, path: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .await
            .unwrap();
        let mut out = String::new();
        s.read_to_string(&mut out).await.unwrap();
        out
    }

    #[tokio::test]
    async fn paths_are_answered_and_a_silent_client_does_not_delay_a_probe() {
        let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), |path: &str| match path {
            "/healthz" => Answer::probe(Ok("ok")),
            "/readyz" => Answer::probe(Err("stalled: t".into())),
            _ => Answer::not_found(),
        })
        .await
        .unwrap();
        // A client that connects and says nothing holds one slot, not the server.
        let _silent = tokio::net::TcpStream::connect(addr).await.unwrap();
        let started = std::time::Instant::now();
        let ok = get(addr, "/healthz").await;
        assert!(
            ok.starts_with("HTTP/1.1 200") && ok.ends_with("ok\n"),
            "{ok}"
        );
        assert!(started.elapsed() < Duration::from_secs(2));
        let no = get(addr, "/readyz").await;
        assert!(
            no.starts_with("HTTP/1.1 503") && no.ends_with("stalled: t\n"),
            "{no}"
        );
        assert!(get(addr, "/x").await.starts_with("HTTP/1.1 404"));
        task.abort();
    }

    #[test]
    fn an_address_is_a_port_on_loopback_or_host_and_port() {
        assert_eq!(parse_addr("9102").unwrap().to_string(), "127.0.0.1:9102");
        assert_eq!(parse_addr("0.0.0.0:9").unwrap().to_string(), "0.0.0.0:9");
        assert!(parse_addr("everywhere").unwrap_err().contains("HOST:PORT"));
    }
}
