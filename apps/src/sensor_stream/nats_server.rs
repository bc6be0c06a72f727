//! A private `nats-server -js` process: the system binary on a free 127.0.0.1 port with its
//! store in a directory of ours, stopped (and reaped) on drop.

use std::io::Read as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

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
    /// When the binary is missing (the message says how to install it) or the server does not
    /// report ready within 20 s (the message quotes its log).
    pub fn start(dir: Option<&Path>) -> std::io::Result<Self> {
        Self::start_with(dir, None)
    }

    /// As [`start`](Self::start), with `conf` (`nats-server` configuration text, e.g.
    /// `max_pending: 2MB`) written to `nats.conf` in the store's directory and passed with `-c`.
    ///
    /// # Errors
    /// As [`start`](Self::start), and when the file cannot be written.
    pub fn start_with(dir: Option<&Path>, conf: Option<&str>) -> std::io::Result<Self> {
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
            port: free_port()?,
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
        server.spawn()?;
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
            #[cfg(unix)]
            #[allow(unsafe_code, reason = "SIGTERM to our child, through libc")]
            // SAFETY: signalling a child we spawned and have not reaped.
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
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

    fn spawn(&mut self) -> std::io::Result<()> {
        let log_start = std::fs::metadata(&self.log).map(|m| m.len()).unwrap_or(0);
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
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let log = read_from(&self.log, log_start);
            if log.contains("Server is ready") {
                return Ok(());
            }
            let exited = self
                .child
                .as_mut()
                .and_then(|c| c.try_wait().ok().flatten());
            if exited.is_some() || Instant::now() > deadline {
                self.stop();
                let tail: String = log.lines().rev().take(5).collect::<Vec<_>>().join(" | ");
                return Err(std::io::Error::other(format!(
                    "nats-server did not start on 127.0.0.1:{} ({}): {tail}",
                    self.port,
                    if exited.is_some() {
                        "it exited"
                    } else {
                        "not ready after 20 s"
                    }
                )));
            }
            std::thread::sleep(Duration::from_millis(20));
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

fn read_from(path: &Path, offset: u64) -> String {
    use std::io::Seek as _;
    let mut s = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        if f.seek(std::io::SeekFrom::Start(offset)).is_ok() {
            let _ = f.read_to_string(&mut s);
        }
    }
    s
}

/// A port on 127.0.0.1 that was free a moment ago.
fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
