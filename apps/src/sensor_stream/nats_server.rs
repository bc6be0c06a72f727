//! A private `nats-server -js` process: the system binary on a free 127.0.0.1 port with its
//! store in a directory of ours, stopped (and reaped) on drop. Ready when its own log says it
//! listens on that port; a start that loses the port (another process took it after it was
//! chosen) moves to another, at most three (`snowpipe_cli_support::server_start`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use snowpipe_cli_support::server_start::{
    self, free_port, log_has, log_len, log_tail, wait_ready, Attempt, Readiness,
};

/// The line printed when `nats-server` is missing.
pub const INSTALL_HINT: &str =
    "nats-server is not installed: apt-get install nats-server (Debian/Ubuntu), or see https://docs.nats.io";

/// The `nats-server` binary: `$NATS_SERVER` when set, else `nats-server` on the PATH (or the
/// Debian package's `/usr/sbin/nats-server`, which is not on every user's PATH).
pub fn binary() -> Option<PathBuf> {
    if let Some(p) = std::env::var_os("NATS_SERVER") {
        return Some(PathBuf::from(p));
    }
    crate::common::find_executable(&["nats-server"], &["/usr/sbin", "/usr/local/sbin"])
}

/// A running `nats-server` with JetStream.
#[derive(Debug)]
pub struct NatsServer {
    bin: PathBuf,
    child: Option<Child>,
    port: u16,
    store: PathBuf,
    log: PathBuf,
    /// A configuration file passed with `-c` (its settings under the flags'), if any.
    conf: Option<PathBuf>,
    _temp: Option<tempfile::TempDir>,
}

impl NatsServer {
    /// Starts `nats-server -js` on a free port, storing streams under `dir` (a new temporary
    /// directory when `None`, removed on drop).
    ///
    /// # Errors
    /// When the binary is missing (the message says how to install it), the server does not
    /// report ready within 20 s, or it exits on three ports in turn (the message quotes its
    /// log).
    pub fn start(dir: Option<&Path>) -> std::io::Result<Self> {
        Self::start_with(dir, None)
    }

    /// As [`start`](Self::start), with `conf` (`nats-server` configuration text, e.g.
    /// `max_pending: 2MB`) written to `nats.conf` in the store's directory and passed with `-c`.
    ///
    /// # Errors
    /// As [`start`](Self::start), and when the file cannot be written.
    pub fn start_with(dir: Option<&Path>, conf: Option<&str>) -> std::io::Result<Self> {
        Self::start_on(dir, conf, &mut free_port)
    }

    /// [`start_with`](Self::start_with) on the ports `next_port` picks.
    fn start_on(
        dir: Option<&Path>,
        conf: Option<&str>,
        next_port: &mut dyn FnMut() -> std::io::Result<u16>,
    ) -> std::io::Result<Self> {
        let bin = binary()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, INSTALL_HINT))?;
        let (temp, dir) = match dir {
            Some(d) => (None, d.to_path_buf()),
            None => {
                let t = tempfile::Builder::new()
                    .prefix("sensor_stream-nats")
                    .tempdir()?;
                let p = t.path().to_path_buf();
                (Some(t), p)
            }
        };
        std::fs::create_dir_all(&dir)?;
        let mut server = NatsServer {
            bin,
            child: None,
            port: 0,
            store: dir.join("jetstream"),
            log: dir.join("nats-server.log"),
            conf: None,
            _temp: temp,
        };
        if let Some(text) = conf {
            let path = dir.join("nats.conf");
            std::fs::write(&path, text)?;
            server.conf = Some(path);
        }
        server_start::start_on("nats-server", next_port, &mut |port| {
            server.port = port;
            server.spawn_once()
        })?;
        Ok(server)
    }

    /// `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("nats://127.0.0.1:{}", self.port)
    }

    /// Stops the server gracefully (SIGTERM: JetStream flushes its store), waiting up to 10 s
    /// before killing it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            // Not reaped yet: the id is still this child's. An error means it has ended.
            #[cfg(unix)]
            let _ = snowpipe_cli_support::process::signal(
                child.id(),
                snowpipe_cli_support::process::Signal::Term,
            );
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if matches!(child.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops the server and starts it again on the same port and store: a broker restart.
    ///
    /// # Errors
    /// As [`start`](Self::start).
    pub fn restart(&mut self) -> std::io::Result<()> {
        self.stop();
        self.spawn()
    }

    /// Starts it again on its port (a restart: clients hold the URL); a start that loses the
    /// port is an error here.
    fn spawn(&mut self) -> std::io::Result<()> {
        match self.spawn_once()? {
            Attempt::Ready(()) => Ok(()),
            Attempt::Lost(tail) => Err(std::io::Error::other(format!(
                "nats-server did not start on 127.0.0.1:{} (it exited): {tail}",
                self.port
            ))),
        }
    }

    /// One start on `self.port`: ready when its own log says it listens on that port and is
    /// ready; [`Attempt::Lost`] (its log's tail) when it exits first (the port was taken).
    fn spawn_once(&mut self) -> std::io::Result<Attempt<()>> {
        let log_start = log_len(&self.log);
        let mut cmd = Command::new(&self.bin);
        if let Some(conf) = &self.conf {
            cmd.arg("-c").arg(conf);
        }
        let child = cmd
            .args([
                "-js",
                "-a",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-sd",
            ])
            .arg(&self.store)
            .arg("-l")
            .arg(&self.log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                std::io::Error::new(e.kind(), format!("cannot run {}: {e}", self.bin.display()))
            })?;
        let child = self.child.insert(child);
        let listening = format!(
            "Listening for client connections on 127.0.0.1:{}",
            self.port
        );
        let log = self.log.clone();
        let ready = wait_ready(child, Duration::from_secs(20), &mut || {
            log_has(&log, log_start, &[&listening, "Server is ready"])
        });
        let tail = || log_tail(&self.log, log_start, 5);
        match ready {
            Readiness::Ready => Ok(Attempt::Ready(())),
            Readiness::Exited(_) => {
                self.child = None;
                Ok(Attempt::Lost(tail()))
            }
            Readiness::TimedOut => {
                let tail = tail();
                self.stop();
                Err(std::io::Error::other(format!(
                    "nats-server did not start on 127.0.0.1:{} (not ready after 20 s): {tail}",
                    self.port
                )))
            }
        }
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use snowpipe_cli_support::server_start::TakenFirst;

    /// The port chosen was taken before the server bound it (another listener, which accepts
    /// connections): the server starts on another port, and answers there as NATS does.
    #[test]
    fn a_port_taken_before_the_server_binds_it_is_replaced() {
        if !server_start::require_or_skip(binary().is_some(), "nats-server", INSTALL_HINT) {
            return;
        }
        let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = held.local_addr().expect("addr").port();
        let mut ports = TakenFirst::new(taken);
        let server = NatsServer::start_on(None, None, &mut || ports.next_port())
            .expect("started on another port");
        assert_eq!(
            ports.picked().len(),
            2,
            "one port taken, one used: {:?}",
            ports.picked()
        );
        assert_ne!(server.port, taken);
        let conn = std::net::TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        conn.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let mut info = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(conn), &mut info).expect("read");
        assert!(info.starts_with("INFO {"), "not NATS: {info}");
    }
}
