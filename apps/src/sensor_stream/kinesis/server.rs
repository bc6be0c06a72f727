//! A private local Kinesis server: `kinesalite` (npm) on a free 127.0.0.1 port, in memory,
//! stopped on drop. It speaks the JSON 1.1 protocol `aws-sdk-kinesis` sends, including
//! resharding; see docs/kinesis.md for why this one and not `kinesis-local`.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The line printed when the server is missing.
pub const INSTALL_HINT: &str = "kinesalite is not installed: npm install -g kinesalite@3.3.3 \
     (or set KINESALITE to its path)";

/// The `kinesalite` executable: `$KINESALITE`, else `kinesalite` on the PATH or in npm's
/// global prefix.
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("KINESALITE") {
        return Some(PathBuf::from(p));
    }
    crate::common::find_executable(&["kinesalite"], &["/usr/local/bin", "/usr/bin"])
}

/// A running kinesalite.
#[derive(Debug)]
pub struct KinesisServer {
    child: Child,
    port: u16,
}

impl KinesisServer {
    /// Starts kinesalite on a free port; streams are created and resharded in 50 ms (AWS
    /// takes seconds; the protocol is the same).
    ///
    /// # Errors
    /// When the executable is missing (the message says how to install it) or the server does
    /// not accept connections within 20 s.
    pub fn start() -> std::io::Result<Self> {
        let bin = binary()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, INSTALL_HINT))?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let child = Command::new(&bin)
            .args(["--port", &port.to_string()])
            .args([
                "--createStreamMs",
                "50",
                "--deleteStreamMs",
                "50",
                "--updateStreamMs",
                "50",
            ])
            .args(["--shardLimit", "1000"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot run {}: {e}", bin.display()))
            })?;
        let mut server = KinesisServer { child, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Ok(server);
            }
            if let Ok(Some(status)) = server.child.try_wait() {
                return Err(std::io::Error::other(format!(
                    "kinesalite exited at start ({status})"
                )));
            }
            if Instant::now() > deadline {
                return Err(std::io::Error::other(
                    "kinesalite did not listen within 20 s",
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

impl Drop for KinesisServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
