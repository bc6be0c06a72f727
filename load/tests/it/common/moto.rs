//! A real S3 API server for the bucket tests: `moto_server` (PyPI `moto[server]`, pinned in
//! `.ci/moto.txt`; `.ci/run` installs it) on a free loopback port, killed on drop. Without it
//! the tests are skipped, except under `CI=true`, where they fail.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use snowpipe_cli_support::server_start::{self, log_tail, wait_ready, Attempt, Readiness};

use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as StorePath;
use object_store::{ObjectStore as _, PutPayload};

/// A running `moto_server`.
pub(crate) struct Moto {
    child: Child,
    endpoint: String,
    runtime: tokio::runtime::Runtime,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The keys the tests sign with (moto takes any).
const KEY: (&str, &str) = ("testing", "testing");

impl Moto {
    /// Starts a server, or `None` (skipped) when `moto_server` is not installed outside CI.
    pub(crate) fn start() -> Option<Self> {
        let found = server_start::on_path("moto_server");
        let hint = ".ci/run installs it from .ci/moto.txt";
        if !server_start::require_or_skip(found, "moto_server", hint) {
            return None;
        }
        // The port is free when chosen but may be taken before moto binds it (another test's
        // listener): a moto that exits is started again on another port, at most three
        // times; a listener that is not moto never answers the listing (the shared rule,
        // `snowpipe_cli_support::server_start`).
        let logs = tempfile::tempdir().expect("a directory for moto's log");
        let moto =
            server_start::start_on("moto_server", &mut server_start::free_port, &mut |port| {
                Self::start_at(logs.path(), port)
            })
            .unwrap_or_else(|e| panic!("{e}"));
        Some(moto)
    }

    /// One start on `port`, its stderr in `dir`: ready when this server answers a bucket
    /// listing as moto does; lost when it exits first (its port was taken).
    fn start_at(dir: &Path, port: u16) -> std::io::Result<Attempt<Self>> {
        let log = dir.join(format!("moto-{port}.log"));
        let child = Command::new("moto_server")
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()?;
        let addr = format!("127.0.0.1:{port}");
        let mut moto = Self {
            child,
            endpoint: format!("http://{addr}"),
            runtime: tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?,
        };
        let mut lists = || {
            http(&addr, "GET", "/").is_ok_and(|answer| {
                answer.starts_with("HTTP/1.1 200") && answer.contains("ListAllMyBucketsResult")
            })
        };
        match wait_ready(&mut moto.child, Duration::from_secs(60), &mut lists) {
            Readiness::Ready => Ok(Attempt::Ready(moto)),
            Readiness::Exited(_) => Ok(Attempt::Lost(log_tail(&log, 0, 5))),
            Readiness::TimedOut => Err(std::io::Error::other(format!(
                "moto_server did not answer a listing on port {port} within 60 s: {}",
                log_tail(&log, 0, 5)
            ))),
        }
    }

    /// The environment that points `snowpipe load` (object_store's S3 chain) at this server.
    pub(crate) fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", KEY.0),
            ("AWS_SECRET_ACCESS_KEY", KEY.1),
            ("AWS_REGION", "us-east-1"),
            ("AWS_ENDPOINT_URL", &self.endpoint),
            ("AWS_ALLOW_HTTP", "true"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    /// Creates `bucket` (a plain PUT: moto does not check signatures).
    pub(crate) fn bucket(&self, bucket: &str) {
        let addr = self.endpoint.trim_start_matches("http://");
        let answer = http(addr, "PUT", &format!("/{bucket}")).expect("create bucket");
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "create {bucket}: {answer}"
        );
    }

    /// Writes (or overwrites) `key` in `bucket`.
    pub(crate) fn put(&self, bucket: &str, key: &str, body: Vec<u8>) {
        let store = self.store(bucket);
        self.runtime
            .block_on(store.put(&StorePath::from(key), PutPayload::from(body)))
            .unwrap();
    }

    /// Writes `body` under the key `encoded` names once percent-decoded (a plain PUT: moto
    /// does not check signatures), so a test can make keys `object_store` cannot (`..`, ESC).
    pub(crate) fn put_raw(&self, bucket: &str, encoded: &str, body: &[u8]) {
        let addr = self.endpoint.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).expect("connect to moto");
        s.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        write!(
            s,
            "PUT /{bucket}/{encoded} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n",
            body.len()
        )
        .unwrap();
        s.write_all(body).unwrap();
        let mut answer = String::new();
        s.read_to_string(&mut answer).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 200"),
            "put {encoded}: {answer}"
        );
    }

    fn store(&self, bucket: &str) -> Arc<AmazonS3> {
        Arc::new(
            AmazonS3Builder::new()
                .with_bucket_name(bucket)
                .with_endpoint(&self.endpoint)
                .with_allow_http(true)
                .with_region("us-east-1")
                .with_access_key_id(KEY.0)
                .with_secret_access_key(KEY.1)
                .build()
                .unwrap(),
        )
    }
}

/// One plain HTTP/1.1 request with an empty body; the whole answer as text.
fn http(addr: &str, method: &str, path: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer)
}
