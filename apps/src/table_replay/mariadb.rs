//! A private MariaDB server for the default run and the tests: `mariadb-install-db` on a
//! temporary data directory, `mariadbd` on a free 127.0.0.1 port with its own socket, killed
//! when dropped. Never the system service.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use snowpipe_cli_support::server_start;

/// How to get the server on Debian/Ubuntu (printed when it is missing).
pub const INSTALL_HINT: &str = "apt-get install mariadb-server";

/// A running private server. Dropping it kills the server and removes its data directory.
pub struct MariaDb {
    child: Child,
    port: u16,
    /// The server binary and its arguments, to start it again ([`MariaDb::restart`]).
    command: (PathBuf, Vec<String>),
    log: PathBuf,
    dir: tempfile::TempDir,
}

/// Finds `mariadbd` (or `mysqld`) on PATH or in /usr/sbin.
pub fn server_binary() -> Option<PathBuf> {
    crate::common::find_executable(&["mariadbd", "mysqld"], &["/usr/sbin", "/usr/local/sbin"])
}

fn install_db_binary(server: &Path) -> Option<PathBuf> {
    let beside = server.parent().map(|d| d.join("mariadb-install-db"));
    beside
        .into_iter()
        .chain(
            [
                "/usr/bin/mariadb-install-db",
                "/usr/local/bin/mariadb-install-db",
            ]
            .map(PathBuf::from),
        )
        .find(|p| p.is_file())
}

fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// For tests: a server, or `None` after printing how to install it — except under `CI=true`,
/// where a missing server is a failure.
///
/// # Panics
/// When the server is missing under `CI=true`, or installed but fails to start.
pub fn start_or_skip() -> Option<MariaDb> {
    let found = server_binary().is_some();
    if !server_start::require_or_skip(found, "mariadbd", INSTALL_HINT) {
        return None;
    }
    Some(MariaDb::start().expect("start a private MariaDB server"))
}

impl MariaDb {
    /// Installs a data directory and starts the server; returns once it accepts connections
    /// as `root` (no password) on 127.0.0.1.
    ///
    /// # Errors
    /// When the binaries are missing ([`INSTALL_HINT`]), or the server does not start within
    /// 60 s (its error log is included).
    pub fn start() -> Result<Self> {
        Self::start_with(&[])
    }

    /// As [`MariaDb::start`], with the binary log on in ROW format (full row images and metadata, server
    /// id 1, the files as `<dir>/binlog.NNNNNN`), as `table_replay follow` needs.
    ///
    /// # Errors
    /// As [`MariaDb::start`].
    pub fn start_with_binlog() -> Result<Self> {
        Self::start_with(&[
            "--log-bin=binlog",
            "--binlog-format=ROW",
            "--binlog-row-image=FULL",
            "--binlog-row-metadata=FULL",
            "--server-id=1",
        ])
    }

    /// Stops the server (SIGKILL: as a crash) and starts it again on the same data directory
    /// and port; returns once it accepts connections.
    ///
    /// # Errors
    /// When it does not start again within 60 s.
    pub fn restart(&mut self) -> Result<()> {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
        self.child = Command::new(&self.command.0)
            .args(&self.command.1)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("cannot start mariadbd again")?;
        self.wait_ready()
    }

    /// The server's directory (its data directory is `data/` in it).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// As [`MariaDb::start`], with `extra` server arguments.
    ///
    /// # Errors
    /// As [`MariaDb::start`].
    pub fn start_with(extra: &[&str]) -> Result<Self> {
        Self::start_on(extra, &mut free_port)
    }

    /// [`MariaDb::start_with`] on the ports `next_port` picks.
    fn start_on(extra: &[&str], next_port: &mut dyn FnMut() -> Result<u16>) -> Result<Self> {
        let server = server_binary()
            .with_context(|| format!("mariadbd not found: install it with `{INSTALL_HINT}`"))?;
        let install = install_db_binary(&server).with_context(|| {
            format!("mariadb-install-db not found: install it with `{INSTALL_HINT}`")
        })?;
        let dir = tempfile::Builder::new()
            .prefix("table-replay-mariadb")
            .tempdir()?;
        let data = dir.path().join("data");
        let socket = dir.path().join("mysqld.sock");
        let log = dir.path().join("error.log");
        // Its own temporary directory: concurrent servers sharing /tmp collide on file names.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir_all(&tmp)?;
        let root = is_root();
        let mut install_cmd = Command::new(&install);
        install_cmd
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .arg("--auth-root-authentication-method=normal")
            .arg("--skip-test-db")
            .arg(format!("--tmpdir={}", tmp.display()))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if root {
            install_cmd.arg("--user=root");
        }
        let out = install_cmd
            .output()
            .context("cannot run mariadb-install-db")?;
        if !out.status.success() {
            bail!(
                "mariadb-install-db failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        // The port is free when chosen and taken only when the server binds it: another
        // process may take it in between (a busy machine saw one start in five fail so). A
        // start that fails on the port is tried again on another, at most three times.
        let mut attempt = 0;
        loop {
            attempt += 1;
            let port = next_port()?;
            let args = Args {
                data: &data,
                socket: &socket,
                log: &log,
                tmp: &tmp,
                pid: &dir.path().join("mysqld.pid"),
                port,
                root,
            };
            let mut cmd = server_command(&server, &args, extra);
            let command = (
                server.clone(),
                cmd.get_args()
                    .map(|a| a.to_string_lossy().into_owned())
                    .collect(),
            );
            let mut child = cmd.spawn().context("cannot start mariadbd")?;
            match wait_ready(&mut child, &log, port) {
                Ok(()) => {
                    return Ok(Self {
                        child,
                        port,
                        command,
                        log,
                        dir,
                    })
                }
                Err(_) if attempt < 3 && port_taken(&log) => {
                    eprintln!(
                        "mariadbd could not bind port {port} (taken meanwhile): another port"
                    );
                    let _ = child.kill();
                    let _ = child.wait();
                    let _ = std::fs::remove_file(&log);
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            }
        }
    }

    /// Waits (60 s) until the server accepts connections.
    fn wait_ready(&mut self) -> Result<()> {
        wait_ready(&mut self.child, &self.log, self.port)
    }

    /// `mysql://root@127.0.0.1:PORT/DB`.
    pub fn url(&self, database: &str) -> String {
        format!("mysql://root@127.0.0.1:{}/{database}", self.port)
    }

    /// The server's TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `mysql://root@127.0.0.1:PORT` (no database selected).
    pub fn server_url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}", self.port)
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits (60 s) until the server `child`, logging to `log`, accepts connections on `port`.
fn wait_ready(child: &mut Child, log: &Path, port: u16) -> Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        // The port opens a moment before the server takes connections (a busy machine saw
        // the first handshake fail): wait for both, the log line says the latter.
        let ready = std::fs::read_to_string(log).is_ok_and(|l| l.contains("ready for connections"));
        if ready && std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        if let Ok(Some(status)) = child.try_wait() {
            bail!(
                "mariadbd exited ({status}): {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        if Instant::now() > deadline {
            bail!(
                "mariadbd did not listen within 60 s: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the server's log says it could not bind its port (another process took it).
fn port_taken(log: &Path) -> bool {
    std::fs::read_to_string(log).is_ok_and(|l| {
        l.contains("Address already in use") || l.contains("Do you already have another")
    })
}

/// What [`server_command`] starts the server with.
struct Args<'a> {
    data: &'a Path,
    socket: &'a Path,
    log: &'a Path,
    tmp: &'a Path,
    pid: &'a Path,
    port: u16,
    root: bool,
}

/// The `mariadbd` command line of a private server.
fn server_command(server: &Path, a: &Args<'_>, extra: &[&str]) -> Command {
    let mut cmd = Command::new(server);
    cmd.current_dir(a.data);
    cmd.arg("--no-defaults")
        .arg(format!("--datadir={}", a.data.display()))
        .arg(format!("--socket={}", a.socket.display()))
        .arg(format!("--pid-file={}", a.pid.display()))
        .arg(format!("--log-error={}", a.log.display()))
        .arg(format!("--tmpdir={}", a.tmp.display()))
        .arg("--bind-address=127.0.0.1")
        .arg(format!("--port={}", a.port))
        .arg("--skip-name-resolve")
        .arg("--innodb-buffer-pool-size=64M")
        .arg("--innodb-log-file-size=64M")
        .arg("--innodb-flush-log-at-trx-commit=2")
        .arg("--character-set-server=utf8mb4")
        .arg("--collation-server=utf8mb4_bin")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if a.root {
        cmd.arg("--user=root");
    }
    cmd.args(extra);
    cmd
}

fn is_root() -> bool {
    // The effective uid from /proc (Linux), else the USER variable.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or_else(|| std::env::var("USER").is_ok_and(|u| u == "root"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use snowpipe_cli_support::server_start::TakenFirst;

    /// The port chosen was taken before the server bound it (another process on a busy
    /// machine): the server starts on another port and takes connections there.
    #[test]
    fn a_port_taken_before_the_server_binds_it_is_replaced() {
        if server_binary().is_none() {
            eprintln!("skipped: mariadbd not found; install it with `{INSTALL_HINT}`");
            return;
        }
        let held = TcpListener::bind("127.0.0.1:0").expect("bind");
        let taken = held.local_addr().expect("addr").port();
        let mut ports = TakenFirst::new(taken);
        let db = MariaDb::start_on(&[], &mut || Ok(ports.next_port()?))
            .expect("started on another port");
        assert_eq!(
            ports.picked().len(),
            2,
            "one port taken, one used: {:?}",
            ports.picked()
        );
        assert_ne!(db.port, taken);
        assert!(std::net::TcpStream::connect(("127.0.0.1", db.port)).is_ok());
    }
}
