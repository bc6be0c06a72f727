//! A hostile S3 server written in the test: path-style ListObjectsV2 and ranged GETs of one
//! NDJSON object under the bucket `hostile`, on a loopback port, answering with one
//! misbehaviour ([`Class`]) while set and like S3 when not. One thread a connection, each
//! answer `Connection: close`; it stops with the test process.

use std::io::{BufRead as _, BufReader, Write as _};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server does wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Class {
    /// Listing pages of 5,000 keys that never end (a new continuation token every page).
    EndlessListing,
    /// A GET's body that never ends, under a Content-Length of 10^12 bytes.
    EndlessBody,
    /// A GET answers fewer bytes than the range asked, with an honest Content-Length.
    ShortBody,
    /// A GET's Content-Length claims the range, the body stops short and the connection closes.
    LengthLie,
    /// Every request is redirected to itself.
    RedirectLoop,
    /// The body trickles: 64 bytes every 20 ms (within the request timeout: it must land).
    SlowDrip,
    /// A listing page of 64 MiB (an honest Content-Length, then spaces and keys).
    HugePage,
    /// Listing pages without a key, each saying there is more, with the same token.
    TruncatedForever,
    /// A listing page that is not XML.
    NotXml,
    /// The object's listing beside keys no path can be (an ESC, a DEL, 2,000 bytes), URL-encoded
    /// as `encoding-type=url` asks: those are skipped and named, the object loads.
    BadKeys,
}

/// The server: its address, the object, and the misbehaviour now.
pub(super) struct Server {
    pub addr: String,
    state: Arc<Mutex<Option<Class>>>,
}

/// The object's ETag and key.
const ETAG: &str = "\"5d41402abc4b2a76b9719d911017c592\"";
pub(super) const KEY: &str = "p/data.ndjson";

impl Server {
    /// Serves `body` as `hostile/p/data.ndjson`.
    pub(super) fn start(body: Vec<u8>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let state = Arc::new(Mutex::new(None));
        let (shared, body) = (Arc::clone(&state), Arc::new(body));
        std::thread::spawn(move || {
            for conn in listener.incoming().flatten() {
                let class = *shared.lock().unwrap();
                let body = Arc::clone(&body);
                std::thread::spawn(move || {
                    let _ = serve(conn, class, &body);
                });
            }
        });
        Self { addr, state }
    }

    /// Misbehave as `class` from now on (`None`: like S3).
    pub(super) fn set(&self, class: Option<Class>) {
        *self.state.lock().unwrap() = class;
    }
}

fn serve(mut conn: TcpStream, class: Option<Class>, body: &[u8]) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut first = String::new();
    reader.read_line(&mut first)?;
    let target = first.split_whitespace().nth(1).unwrap_or("/").to_owned();
    let mut range = None;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(r) = lower.strip_prefix("range: bytes=") {
            let (a, b) = r.trim().split_once('-').unwrap_or(("0", ""));
            let a: usize = a.parse().unwrap_or(0);
            let b: usize = b.parse().map_or(body.len(), |b: usize| b + 1);
            range = Some((a, b.min(body.len())));
        }
    }
    if class == Some(Class::RedirectLoop) {
        let head = format!(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: {target}\r\nContent-Length: 0\r\n\
             Connection: close\r\n\r\n"
        );
        return conn.write_all(head.as_bytes());
    }
    if target.contains("list-type=2") {
        return list(&mut conn, class, &target, body.len());
    }
    let (a, b) = range.unwrap_or((0, body.len()));
    let part = &body[a..b];
    let head = |extra: &str| {
        format!(
            "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes {a}-{}/{}\r\nETag: {ETAG}\r\n\
             Last-Modified: Thu, 01 Jan 2026 00:00:00 GMT\r\n{extra}Connection: close\r\n\r\n",
            b - 1,
            body.len(),
        )
    };
    match class {
        Some(Class::EndlessBody) => {
            // A length no range asked for, and bytes until the client hangs up.
            conn.write_all(head("Content-Length: 1000000000000\r\n").as_bytes())?;
            let chunk = vec![b'x'; 0x10000];
            loop {
                conn.write_all(&chunk)?;
            }
        }
        Some(Class::ShortBody) => {
            let short = &part[..part.len() / 2];
            let h = head(&format!("Content-Length: {}\r\n", short.len()));
            conn.write_all(h.as_bytes())?;
            conn.write_all(short)
        }
        Some(Class::LengthLie) => {
            let h = head(&format!("Content-Length: {}\r\n", part.len()));
            conn.write_all(h.as_bytes())?;
            conn.write_all(&part[..part.len() / 2])
        }
        Some(Class::SlowDrip) => {
            let h = head(&format!("Content-Length: {}\r\n", part.len()));
            conn.write_all(h.as_bytes())?;
            for piece in part.chunks(64) {
                conn.write_all(piece)?;
                std::thread::sleep(Duration::from_millis(20));
            }
            Ok(())
        }
        _ => {
            let h = head(&format!("Content-Length: {}\r\n", part.len()));
            conn.write_all(h.as_bytes())?;
            conn.write_all(part)
        }
    }
}

/// One ListObjectsV2 page: the object, or (endless) 5,000 other keys and a next token.
fn list(
    conn: &mut TcpStream,
    class: Option<Class>,
    target: &str,
    size: usize,
) -> std::io::Result<()> {
    let xml = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><ListBucketResult \
         xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>hostile</Name>",
    );
    let entry = |key: &str, size: usize| {
        format!(
            "<Contents><Key>{key}</Key><LastModified>2026-01-01T00:00:00.000Z</LastModified>\
             <ETag>{}</ETag><Size>{size}</Size><StorageClass>STANDARD</StorageClass></Contents>",
            ETAG.replace('"', "&quot;")
        )
    };
    let mut xml = match class {
        Some(Class::NotXml) => "{\"not\": \"a listing\"}".to_owned(),
        Some(Class::HugePage) => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
                 Connection: close\r\n\r\n",
                64 << 20
            );
            conn.write_all(head.as_bytes())?;
            conn.write_all(xml.as_bytes())?;
            let spaces = vec![b' '; 1 << 16];
            for _ in 0..(64 << 20) / spaces.len() {
                conn.write_all(&spaces)?;
            }
            return Ok(());
        }
        _ => xml,
    };
    if class == Some(Class::TruncatedForever) {
        xml.push_str(
            "<IsTruncated>true</IsTruncated><NextContinuationToken>again</NextContinuationToken>",
        );
    } else if class == Some(Class::BadKeys) {
        xml.push_str("<IsTruncated>false</IsTruncated>");
        xml.push_str(&entry("p%2F%1B%5B31mred.ndjson", 10));
        xml.push_str(&entry(KEY, size));
        xml.push_str(&entry("p%2Fdel%7F.ndjson", 10));
        xml.push_str(&entry(&format!("p%2F{}.ndjson", "k".repeat(2_000)), 10));
    } else if class == Some(Class::NotXml) {
    } else if class == Some(Class::EndlessListing) {
        let page: u64 = target
            .split("continuation-token=")
            .nth(1)
            .and_then(|t| t.split('&').next())
            .and_then(|t| t.trim_start_matches('t').parse().ok())
            .unwrap_or(0);
        xml.push_str("<IsTruncated>true</IsTruncated>");
        xml.push_str(&format!(
            "<NextContinuationToken>t{}</NextContinuationToken>",
            page + 1
        ));
        for i in 0..5_000 {
            xml.push_str(&entry(&format!("p/{page}-{i}.other"), 1));
        }
    } else {
        xml.push_str("<IsTruncated>false</IsTruncated>");
        xml.push_str(&entry(KEY, size));
    }
    if class != Some(Class::NotXml) {
        xml.push_str("</ListBucketResult>");
    }
    let head = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: application/xml\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        xml.len()
    );
    conn.write_all(head.as_bytes())?;
    conn.write_all(xml.as_bytes())
}
