//! The running emulator: listener (HTTP or HTTPS, TCP_NODELAY), committer task, public handle.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::base::error::EmulatorError;
use crate::base::faults::FaultHandle;
use crate::base::private_fs;
use crate::base::requests::RequestRecord;
use crate::http::{self, DropResponse};
use crate::security::tls;
use crate::service::{ChannelTotals, Shared};
use crate::settings::config::{EmulatorConfig, TlsMode};
use crate::storage;

/// A running emulator. Dropping it stops accepting connections; prefer [`Emulator::shutdown`].
pub struct Emulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    tls: bool,
    ca_pem: Option<String>,
    ca_path: Option<PathBuf>,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for Emulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Emulator")
            .field("url", &self.url())
            .field("ca_path", &self.ca_path)
            .finish_non_exhaustive()
    }
}

/// The error a `lost_ack` fault makes the connection fail with (hyper then closes it unanswered).
#[derive(Debug)]
struct LostAck;
impl std::fmt::Display for LostAck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("response dropped by a lost_ack fault")
    }
}
impl std::error::Error for LostAck {}

/// Serves one connection. `header_timeout` closes a connection whose request headers (or,
/// on an idle keep-alive connection, whose next request) do not arrive in time, so
/// half-open connections are not held forever; body deadlines are `http::read_body`'s.
/// The most bytes one connection's read buffer holds (see `serve_io`).
const MAX_READ_BUFFER: usize = 32 << 10;

async fn serve_io<I>(
    io: I,
    app: Arc<http::App>,
    mut shutdown: watch::Receiver<bool>,
    header_timeout: Duration,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let app = app.clone();
        async move {
            // On its own task: a client that hangs up (the connection dropped) does not
            // cancel a request read whole; the real service may apply it all the same.
            let Some(resp) = http::serve(app, req).await else {
                // Cancelled: the runtime is shutting down.
                return Err(LostAck);
            };
            if resp.extensions().get::<DropResponse>().is_some() {
                Err(LostAck)
            } else {
                Ok(resp)
            }
        }
    });
    let conn = hyper::server::conn::http1::Builder::new()
        .writev(false)
        // A connection's read buffer: a request head (headers) may not pass it, and a body
        // is handed over in pieces of at most this size. 1,024 connections hold at most
        // 32 MiB (hyper's default, ~400 KiB each, let them hold 400 MiB of headers).
        .max_buf_size(MAX_READ_BUFFER)
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(TokioIo::new(io), svc);
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::debug!(error = %e, "connection ended");
            }
        }
        _ = shutdown.changed() => {
            conn.as_mut().graceful_shutdown();
            let _ = tokio::time::timeout(Duration::from_secs(5), conn).await;
        }
    }
}

impl Emulator {
    /// Starts the emulator: opens storage, loads the catalog, binds 127.0.0.1 and serves in
    /// background tasks of the current Tokio runtime.
    ///
    /// # Errors
    /// When the port is taken, the DDL or a public key cannot be read, the data directory
    /// cannot be used, or TLS cannot be set up.
    ///
    /// Cancelling the future before it completes leaves nothing running.
    pub async fn start(config: EmulatorConfig) -> Result<Emulator, EmulatorError> {
        let shared = Arc::new(Shared::build(&config).await?);
        let tls_setup = match &config.tls {
            TlsMode::Off => None,
            TlsMode::Generate => {
                let extra: Vec<String> = config.ingest_host.iter().cloned().collect();
                Some(tls::generate(&extra)?)
            }
            TlsMode::Files { cert, key } => Some(tls::from_files(cert, key)?),
        };
        let listener = TcpListener::bind(("127.0.0.1", config.port))
            .await
            .map_err(|e| {
                EmulatorError::io(format!("cannot listen on 127.0.0.1:{}", config.port))
                    .with_source(e)
            })?;
        let addr = listener
            .local_addr()
            .map_err(|e| EmulatorError::io("").with_source(e))?;
        let ca_pem = tls_setup.as_ref().and_then(|t| t.ca_pem.clone());
        let ca_path = match (&ca_pem, &config.ca_out, &config.data_dir) {
            (Some(_), Some(p), _) => Some(p.clone()),
            (Some(_), None, Some(d)) => Some(d.join("ca.pem")),
            _ => None,
        };
        if let (Some(pem), Some(p)) = (&ca_pem, &ca_path) {
            if let Some(parent) = p
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && !d.exists())
            {
                private_fs::create_private_dir(parent)?;
            }
            private_fs::write_private_file(p, pem.as_bytes())?;
        }
        if config.accept_any_key {
            tracing::warn!(
                "--accept-any-key: every bearer token is accepted; this emulator is INSECURE"
            );
        } else if shared.auth.key_count() == 0 && config.personal_access_tokens.is_empty() {
            tracing::warn!("no public key registered: every key-pair JWT will be refused (use --public-key or --accept-any-key)");
        }

        let (tx, rx) = watch::channel(false);
        let acceptor = tls_setup.map(|t| tokio_rustls::TlsAcceptor::from(t.config));
        let header_timeout = config.header_read_timeout;
        // `--max-connections`: a connection is accepted only with a slot free; further ones
        // wait in the listen backlog (their requests answered once a slot frees).
        let connection_slots = Arc::new(tokio::sync::Semaphore::new(config.max_connections.max(1)));
        let mut tasks = Vec::new();
        {
            let app = http::App::new(shared.clone());
            let mut rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let slot = tokio::select! {
                        slot = Arc::clone(&connection_slots).acquire_owned() => match slot {
                            Ok(slot) => slot,
                            Err(_) => break,
                        },
                        _ = rx.changed() => break,
                    };
                    tokio::select! {
                        r = listener.accept() => {
                            let (stream, _) = match r {
                                Ok(v) => v,
                                Err(e) => {
                                    tracing::warn!(error = %e, "accept failed");
                                    tokio::time::sleep(Duration::from_millis(10)).await;
                                    continue;
                                }
                            };
                            let _ = stream.set_nodelay(true);
                            let app = app.clone();
                            let rx = rx.clone();
                            let acceptor = acceptor.clone();
                            tokio::spawn(async move {
                                let _slot = slot;
                                match acceptor {
                                    // The handshake gets the header deadline too.
                                    Some(a) => match tokio::time::timeout(header_timeout, a.accept(stream)).await {
                                        Ok(Ok(s)) => serve_io(s, app, rx, header_timeout).await,
                                        Ok(Err(e)) => tracing::debug!(error = %e, "TLS handshake failed"),
                                        Err(_) => tracing::debug!("TLS handshake timed out"),
                                    },
                                    None => serve_io(stream, app, rx, header_timeout).await,
                                }
                            });
                        }
                        _ = rx.changed() => break,
                    }
                }
            }));
        }
        {
            let shared = shared.clone();
            let mut rx = rx.clone();
            tasks.push(tokio::spawn(async move {
                loop {
                    let next = shared.next_due();
                    let wait = async {
                        match next {
                            Some(t) => tokio::time::sleep_until(t.into()).await,
                            None => std::future::pending().await,
                        }
                    };
                    tokio::select! {
                        _ = wait => shared.commit_due().await,
                        _ = shared.commit_wanted() => {}
                        _ = rx.changed() => break,
                    }
                }
            }));
        }
        tracing::info!(url = %format!("{}://{addr}", if acceptor_is_tls(&config.tls) { "https" } else { "http" }), "snowpipe-emulator listening");
        Ok(Emulator {
            shared,
            addr,
            tls: acceptor_is_tls(&config.tls),
            ca_pem,
            ca_path,
            shutdown: tx,
            tasks,
        })
    }

    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!(
            "{}://{}",
            if self.tls { "https" } else { "http" },
            self.addr
        )
    }

    /// The listening address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The generated CA certificate (PEM), when TLS certificates were generated.
    pub fn ca_pem(&self) -> Option<String> {
        self.ca_pem.clone()
    }

    /// Where the CA certificate was written, if anywhere.
    pub fn ca_path(&self) -> Option<PathBuf> {
        self.ca_path.clone()
    }

    /// Registers a public key (PEM) for key-pair JWTs; returns its `SHA256:` fingerprint.
    ///
    /// # Errors
    /// When the PEM is not an RSA public key.
    pub fn register_public_key(&self, pem: &str) -> Result<String, EmulatorError> {
        self.shared
            .auth
            .register(pem)
            .map(|fp| format!("SHA256:{fp}"))
            .map_err(|e| EmulatorError::config("").with_source(e))
    }

    /// Registers a public key (PEM) that may sign key-pair JWTs of `user` only (matched
    /// case-insensitively on the USER of `ACCOUNT.USER`); returns its `SHA256:` fingerprint.
    /// A key registered with [`Emulator::register_public_key`] stays valid for every user.
    ///
    /// # Errors
    /// When the PEM is not an RSA public key.
    pub fn register_user_public_key(&self, user: &str, pem: &str) -> Result<String, EmulatorError> {
        self.shared
            .auth
            .register_for_user(user, pem)
            .map(|fp| format!("SHA256:{fp}"))
            .map_err(|e| EmulatorError::config("").with_source(e))
    }

    /// The fault-injection handle (add or clear rules at runtime).
    pub fn faults(&self) -> FaultHandle {
        self.shared.faults.clone()
    }

    /// Marks a channel `ERR_CHANNEL_MUST_BE_REOPENED`: its appends fail until it is reopened.
    /// Returns whether the channel exists.
    pub fn invalidate_channel(&self, db: &str, schema: &str, pipe: &str, channel: &str) -> bool {
        match self.shared.resolve(db, schema, pipe, channel) {
            Ok((key, _)) => self.shared.invalidate(&key),
            Err(_) => false,
        }
    }

    /// Runs a read-only SQL query against the emulator's SQLite database. In sink mode
    /// (nothing is stored) only a query whose top level is `LIMIT 0` runs, answering the
    /// columns of the catalog's tables (and no rows).
    ///
    /// # Errors
    /// In sink mode a query that would read rows; when the SQL is invalid or not read-only.
    pub fn query(&self, sql: &str) -> Result<Vec<Vec<serde_json::Value>>, EmulatorError> {
        self.query_with_columns(sql).map(|(_, rows)| rows)
    }

    /// Like [`Emulator::query`], also returning the column names.
    ///
    /// # Errors
    /// As [`Emulator::query`].
    pub fn query_with_columns(&self, sql: &str) -> Result<storage::QueryResult, EmulatorError> {
        match self.shared.storage.as_ref() {
            Some(st) => st.read_blocking(|c| storage::query(c, sql))?,
            None => crate::sql_api::sink::query(&self.shared.model().catalog, sql),
        }
    }

    /// The status document `GET /` serves: pipes, channels, committed tokens, row counts.
    pub fn status(&self) -> serde_json::Value {
        self.shared.status()
    }

    /// Totals over the channels whose name starts with `prefix` (`""`: every channel): what a
    /// harness that waits for rows polls, at a cost that does not grow with everything else
    /// [`status`](Self::status) reports.
    pub fn channel_totals(&self, prefix: &str) -> ChannelTotals {
        self.shared.channel_totals(prefix)
    }

    /// One notice per statement of the configured DDL scripts the emulator does not model
    /// and ignored (a view, a grant, a warehouse): `DDL script N: ignored: <statement> (not
    /// modelled by the emulator)`, each also logged as a warning at start.
    pub fn ddl_notes(&self) -> &[String] {
        &self.shared.ddl_notes
    }

    /// The in-memory request log, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.requests.snapshot()
    }

    /// Bytes the in-memory request log holds (bounded by
    /// [`EmulatorConfig::request_log_max_bytes`]).
    pub fn request_log_bytes(&self) -> usize {
        self.shared.requests.bytes()
    }

    /// Commits every batch whose commit delay has passed (useful with a long delay in tests).
    ///
    /// Cancelling the future stops only the wait: a commit that started runs to its end.
    pub async fn commit_now(&self) {
        self.shared.commit_due().await;
    }

    /// Stops accepting connections, finishes in-flight requests (up to 5 s), commits every
    /// accepted batch (an append's 200 means "durably buffered") and stops the background
    /// tasks. (A `kill -9` instead loses the batches not yet committed.)
    ///
    /// Cancelling the future leaves the emulator stopping in the background, possibly without
    /// the final commit.
    pub async fn shutdown(mut self) {
        let _ = self.shutdown.send(true);
        for t in self.tasks.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(5), t).await;
        }
        self.shared.commit_all().await;
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
    }
}

fn acceptor_is_tls(t: &TlsMode) -> bool {
    !matches!(t, TlsMode::Off)
}
