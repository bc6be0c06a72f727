//! A private local Kinesis server: `kinesalite` (npm) on a free 127.0.0.1 port, in memory,
//! stopped on drop. It speaks the JSON 1.1 protocol `aws-sdk-kinesis` sends, including
//! resharding; see docs/kinesis.md for why this one and not `kinesis-local`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use snowpipe_cli_support::server_start::{
    self, free_port, log_has, log_tail, wait_ready, Attempt, Readiness,
};

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
    /// Its stdout and stderr (`out.log`): its listening line, its last words.
    _dir: tempfile::TempDir,
}

impl KinesisServer {
    /// Starts kinesalite on a free port; streams are created and resharded in 50 ms (AWS
    /// takes seconds; the protocol is the same). Ready when it says it listens on that port;
    /// a start that loses the port (taken after it was chosen) moves to another, at most
    /// three (`snowpipe_cli_support::server_start`).
    ///
    /// # Errors
    /// When the executable is missing (the message says how to install it), the server does
    /// not listen within 20 s, or it exits on three ports in turn (the message quotes it).
    pub fn start() -> std::io::Result<Self> {
        Self::start_on(&mut free_port)
    }

    /// [`start`](Self::start) on the ports `next_port` picks.
    fn start_on(next_port: &mut dyn FnMut() -> std::io::Result<u16>) -> std::io::Result<Self> {
        let bin = binary()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, INSTALL_HINT))?;
        server_start::start_on("kinesalite", next_port, &mut |port| {
            Self::start_at(&bin, port)
        })
    }

    /// One start on `port`.
    fn start_at(bin: &Path, port: u16) -> std::io::Result<Attempt<Self>> {
        let dir = tempfile::Builder::new().prefix("kinesalite").tempdir()?;
        let log = dir.path().join("out.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(bin)
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
            .stdout(out.try_clone()?)
            .stderr(out)
            .spawn()
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot run {}: {e}", bin.display()))
            })?;
        let mut server = KinesisServer {
            child,
            port,
            _dir: dir,
        };
        // Its own line: `Listening at http://:::PORT` (it binds every address).
        let listening = format!("Listening at http://:::{port}");
        match wait_ready(&mut server.child, Duration::from_secs(20), &mut || {
            log_has(&log, 0, &[&listening])
        }) {
            Readiness::Ready => Ok(Attempt::Ready(server)),
            Readiness::Exited(status) => {
                Ok(Attempt::Lost(format!("{status}: {}", log_tail(&log, 0, 5))))
            }
            Readiness::TimedOut => Err(std::io::Error::other(format!(
                "kinesalite did not listen on port {port} within 20 s: {}",
                log_tail(&log, 0, 5)
            ))),
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

#[cfg(test)]
mod tests {
    use super::*;
    use snowpipe_cli_support::server_start::TakenFirst;

    /// The port chosen was taken before the server bound it (another listener, which accepts
    /// connections): kinesalite starts on another port.
    #[test]
    fn a_port_taken_before_the_server_binds_it_is_replaced() {
        if !server_start::require_or_skip(binary().is_some(), "kinesalite", INSTALL_HINT) {
            return;
        }
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = held.local_addr().expect("addr").port();
        let mut ports = TakenFirst::new(taken);
        let server =
            KinesisServer::start_on(&mut || ports.next_port()).expect("started on another port");
        assert_eq!(
            ports.picked().len(),
            2,
            "one port taken, one used: {:?}",
            ports.picked()
        );
        assert_ne!(server.port, taken);
        assert!(server.url().ends_with(&format!(":{}", server.port)));
    }
}
