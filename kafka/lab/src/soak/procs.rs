//! The soak's processes: each started with `PR_SET_PDEATHSIG` (killed when the soak dies,
//! even by SIGKILL or a panic) and killed when its [`Proc`] is dropped, so no run leaves one
//! behind; and the commands of the broker, the S3 server, the emulator and a sink instance.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use snowpipe_cli_support::process::{self, Signal};
pub(super) use snowpipe_cli_support::server_start::{free_port, log_len};
use snowpipe_cli_support::server_start::{log_has, log_line, log_tail};

/// A child process of the soak, killed (SIGKILL) and reaped when dropped.
pub(super) struct Proc {
    /// Its name in the report (`sink-2#1`: the second instance's first process).
    pub name: String,
    child: Child,
}

impl Proc {
    /// Spawns `cmd` as `name`, its stdout and stderr appended to `log`.
    ///
    /// # Errors
    /// When the log cannot be opened or the process cannot start.
    pub(super) fn spawn(name: &str, mut cmd: Command, log: &Path) -> Result<Self> {
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot open the log {}", log.display()))?;
        cmd.stdin(Stdio::null())
            .stdout(out.try_clone()?)
            .stderr(out);
        snowpipe_cli_support::process::die_with_parent(&mut cmd);
        let child = cmd
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", cmd.get_program()))?;
        Ok(Self {
            name: name.to_owned(),
            child,
        })
    }

    /// Its process id.
    pub(super) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. [`Signal::Stop`]); not reaped yet, so the id is still this
    /// child's. An error (it has ended) is left to the wait that follows.
    pub(super) fn signal(&self, signal: Signal) {
        let _ = process::signal(self.child.id(), signal);
    }

    /// Whether it still runs.
    pub(super) fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// SIGTERM, then waits up to `grace` for it to exit (SIGKILL after); its exit status.
    pub(super) async fn stop(&mut self, grace: Duration) -> Option<std::process::ExitStatus> {
        self.signal(Signal::Cont);
        self.signal(Signal::Term);
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }

    /// SIGKILL, and reaps it.
    pub(super) fn kill(&mut self) {
        self.signal(Signal::Cont);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.signal(Signal::Cont);
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Waits until `proc`'s own log (`log`, from byte `from` on: the log is shared with earlier
/// starts) holds every one of `needles` (its line saying it listens on its port), up to
/// `limit`: `true` then, `false` when it exits first (its port was taken after it was
/// chosen: `server_start::start_on_async` starts it again on another).
///
/// # Errors
/// When it neither does nor exits within `limit` (the error quotes its log's tail).
pub(super) async fn await_log(
    proc: &mut Proc,
    log: &Path,
    from: u64,
    needles: &[&str],
    limit: Duration,
) -> Result<bool> {
    let mut said = || log_has(log, from, needles).then_some(());
    let seen = await_seen(proc, log, from, &needles, limit, &mut said).await?;
    Ok(seen.is_some())
}

/// What a sink says on a line of its own once it serves its metrics, before the address.
const SERVING: &str = "serving /metrics, /healthz and /readyz on http://";

/// The port a sink instance (`proc`, started by [`sink`] on port 0) serves its metrics on,
/// from its whole line saying so in `log` (from byte `from` on), waited for up to `limit`;
/// `None` when it exits first.
///
/// # Errors
/// When it neither says so nor exits within `limit`, or its line names no address.
pub(super) async fn metrics_port(
    proc: &mut Proc,
    log: &Path,
    from: u64,
    limit: Duration,
) -> Result<Option<u16>> {
    let line = await_seen(proc, log, from, &SERVING, limit, &mut || {
        log_line(log, from, SERVING)
    })
    .await?;
    line.map(|line| {
        port_in(&line).with_context(|| format!("{}: no metrics address in {line:?}", proc.name))
    })
    .transpose()
}

/// Polls `seen` until it gives something (`Some` of it), `proc` exits first (`None`), or
/// `limit` passes (an error saying it did not say `what`, quoting its log's tail).
async fn await_seen<T>(
    proc: &mut Proc,
    log: &Path,
    from: u64,
    what: &dyn std::fmt::Debug,
    limit: Duration,
    seen: &mut dyn FnMut() -> Option<T>,
) -> Result<Option<T>> {
    let started = Instant::now();
    loop {
        if let Some(it) = seen() {
            return Ok(Some(it));
        }
        if !proc.running() {
            return Ok(None);
        }
        if started.elapsed() > limit {
            bail!(
                "{} did not say {what:?} within {limit:?}: {}",
                proc.name,
                log_tail(log, from, 5)
            );
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The port of the address after [`SERVING`] in `line`.
fn port_in(line: &str) -> Option<u16> {
    let (_, rest) = line.split_once(SERVING)?;
    let addr = rest.split_whitespace().next()?;
    addr.parse::<std::net::SocketAddr>().ok().map(|a| a.port())
}

/// The broker: tansu on `port`, advertising `advertised` (the fault proxy's port), storing in
/// memory or in the S3 bucket `tansu` at `s3_port`.
pub(super) fn tansu(bin: &Path, port: u16, advertised: u16, s3_port: Option<u16>) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("broker")
        .args(["--listener-url", &format!("tcp://127.0.0.1:{port}")])
        .args([
            "--advertised-listener-url",
            &format!("tcp://127.0.0.1:{advertised}"),
        ]);
    match s3_port {
        Some(s3) => {
            cmd.args(["--storage-engine", "s3://tansu/"])
                .env("AWS_ENDPOINT", format!("http://127.0.0.1:{s3}"))
                .env("AWS_ALLOW_HTTP", "true")
                .env("AWS_ACCESS_KEY_ID", "soak")
                .env("AWS_SECRET_ACCESS_KEY", "soak")
                .env("AWS_DEFAULT_REGION", "us-east-1")
                .env("AWS_REGION", "us-east-1");
        }
        None => {
            cmd.args(["--storage-engine", "memory://tansu/"]);
        }
    }
    cmd
}

/// moto's S3 server on `port`.
pub(super) fn moto(bin: &Path, port: u16) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["-H", "127.0.0.1", "-p", &port.to_string()]);
    cmd
}

/// The emulator's own process: this binary as `soak --emulator-process PORT`.
pub(super) fn emulator(
    bin: &Path,
    port: u16,
    dir: &Path,
    seed: u64,
    token_ttl: Duration,
) -> Command {
    let mut cmd = Command::new(bin);
    cmd.arg("soak")
        .args(["--emulator-process", &port.to_string()])
        .arg("--work-dir")
        .arg(dir)
        .args(["--seed", &seed.to_string()])
        .args(["--token-ttl", &format!("{}s", token_ttl.as_secs())]);
    cmd
}

/// What a sink instance needs to reach the services.
pub(super) struct Connection {
    /// The fault proxy in front of the broker.
    pub brokers: String,
    /// The fault proxy in front of the emulator (`http://127.0.0.1:PORT`).
    pub url: String,
    /// The private key file.
    pub key: PathBuf,
}

/// A sink instance of group `soak` on `topic`, serving metrics on a port it picks (its line
/// names it: [`metrics_port`]; a port chosen here and let go could be taken before it binds).
pub(super) fn sink(bin: &Path, c: &Connection, topic: &str, stall_after: &str) -> Command {
    let mut cmd = Command::new(bin);
    cmd.args(["--brokers", &c.brokers, "--group", "soak", "--topic", topic])
        .args([
            "--database",
            crate::demo::DATABASE,
            "--schema",
            crate::demo::SCHEMA,
        ])
        .args(["--pipe", crate::demo::PIPE, "--metadata"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(["--stall-after", stall_after])
        .args([
            "-X",
            "session.timeout.ms=6000",
            "-X",
            "heartbeat.interval.ms=500",
        ])
        .env("SNOWFLAKE_URL", &c.url)
        .env("SNOWFLAKE_ACCOUNT", "DEMO")
        .env("SNOWFLAKE_USER", "KAFKA")
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", &c.key)
        .env("RUST_LOG", "info")
        .env_remove("SNOWFLAKE_PRIVATE_KEY");
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The sink's own line (as its text log writes it) names the port it bound for `:0`.
    #[test]
    fn the_metrics_port_is_read_from_the_sinks_line() {
        let line = "2026-11-28T08:00:00.000001Z  INFO snowpipe_kafka: serving /metrics, \
                    /healthz and /readyz on http://127.0.0.1:40123";
        assert_eq!(port_in(line), Some(40123));
        assert_eq!(port_in(&format!("{line} ")), Some(40123));
        assert_eq!(
            port_in("serving /metrics, /healthz and /readyz on http://"),
            None
        );
        assert_eq!(port_in("listening on http://127.0.0.1:9"), None);
    }
}
