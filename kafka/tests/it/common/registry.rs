//! A Schema Registry for the tests, and values as a registry's producer writes them (the
//! Confluent wire format; Protobuf messages from `.proto` text).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use prost_reflect::DescriptorPool;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The basic-auth credentials the registry accepts (`USER:PASSWORD`).
pub(crate) const CREDENTIALS: &str = "sr-user:sr-s3cret";

/// A registry's schemas: id → (`schemaType`, schema text).
pub(crate) type Schemas = HashMap<u32, (&'static str, String)>;

/// How many times the registry was asked for each path.
pub(crate) type Asked = Arc<Mutex<HashMap<String, usize>>>;

/// A Schema Registry answering `GET /schemas/ids/{id}` from `schemas` as the real REST API
/// does, for [`CREDENTIALS`] only: its URL, and what it was asked.
pub(crate) async fn registry(schemas: Schemas) -> (String, Asked) {
    registry_failing(schemas, Arc::default()).await
}

/// [`registry`], answering its next `failures` requests (counted down, whatever they ask) with
/// HTTP 503, as a registry does in a rolling restart.
pub(crate) async fn registry_failing(
    schemas: Schemas,
    failures: Arc<AtomicUsize>,
) -> (String, Asked) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let asked: Asked = Arc::default();
    let counts = Arc::clone(&asked);
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(CREDENTIALS)
    );
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let text = String::from_utf8_lossy(&request).to_string();
            let path = text.split_whitespace().nth(1).unwrap_or("").to_owned();
            *counts.lock().unwrap().entry(path.clone()).or_default() += 1;
            let authorized = text.lines().any(|l| {
                l.split_once(':').is_some_and(|(name, value)| {
                    name.eq_ignore_ascii_case("authorization") && value.trim() == expected
                })
            });
            let schema = path
                .strip_prefix("/schemas/ids/")
                .and_then(|id| id.parse::<u32>().ok())
                .and_then(|id| schemas.get(&id));
            let unavailable = failures
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
            let (status, body) = match (authorized, schema) {
                _ if unavailable => (
                    "503 Service Unavailable",
                    r#"{"error_code":50302,"message":"Service Unavailable"}"#.to_owned(),
                ),
                (false, _) => (
                    "401 Unauthorized",
                    r#"{"error_code":401,"message":"Unauthorized"}"#.to_owned(),
                ),
                (true, Some((kind, s))) => (
                    "200 OK",
                    serde_json::json!({"schema": s, "schemaType": kind}).to_string(),
                ),
                (true, None) => (
                    "404 Not Found",
                    r#"{"error_code":40403,"message":"Schema 99 not found"}"#.to_owned(),
                ),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/vnd.schemaregistry.v1+json\r\n\
                 content-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(response.as_bytes()).await;
            let _ = stream.shutdown().await;
        }
    });
    (url, asked)
}

/// The wire format: magic byte 0, the schema id (big-endian), the body.
pub(crate) fn wire(id: u32, body: &[u8]) -> Vec<u8> {
    let mut v = vec![0];
    v.extend_from_slice(&id.to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// `.proto` text compiled, with its `google/protobuf/*` imports.
pub(crate) fn compile_proto(text: &str) -> DescriptorPool {
    const NAME: &str = "test.proto";
    struct One(protox::file::File);
    impl protox::file::FileResolver for One {
        fn open_file(&self, name: &str) -> Result<protox::file::File, protox::Error> {
            if name == NAME {
                Ok(self.0.clone())
            } else {
                Err(protox::Error::file_not_found(name))
            }
        }
    }
    let file = protox::file::File::from_source(NAME, text).expect("the .proto parses");
    let mut resolver = protox::file::ChainFileResolver::new();
    resolver.add(One(file));
    resolver.add(protox::file::GoogleFileResolver::new());
    let mut compiler = protox::Compiler::with_file_resolver(resolver);
    compiler.include_imports(true);
    compiler.open_file(NAME).expect("the .proto compiles");
    compiler.descriptor_pool()
}
