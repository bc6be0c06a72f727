//! Starting a local server (a tool's or a test's: `nats-server`, kinesalite, moto, Prometheus,
//! tansu) on a loopback port chosen free.
//!
//! A port chosen free (bound and let go, [`free_port`]) may be taken by another process
//! before the server binds it. A readiness check that only connects then reaches that other
//! listener, and the next request fails (CI saw it). So: ready means the server itself
//! answered — its own "listening" line naming the port in its log ([`log_has`]), or a
//! request only that server answers so — checked by [`wait_ready`]; a server that exits
//! before it is ready (its port was taken) is started again on another port by [`start_on`]
//! (or [`start_on_async`]), at most [`TRIES`] times, the last exit's log tail ([`log_tail`])
//! in the error. A test that needs such a tool skips without it, except under `CI=true`
//! ([`require_or_skip`]).

use std::future::Future as _;
use std::io::{Read as _, Seek as _};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::time::{Duration, Instant};

mod require;
pub use require::{on_path, require_or_skip};

/// How many ports a start tries before it gives up.
pub const TRIES: usize = 3;

/// A port on 127.0.0.1 that was free a moment ago (bound and let go: another process may
/// take it before the server binds it, which [`start_on`] survives).
///
/// # Errors
/// When no port can be bound.
pub fn free_port() -> std::io::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// For tests of a start that loses its port: offers `taken` (a port the test holds with a
/// listener of its own) first, then ports chosen free; [`picked`](Self::picked) says which.
#[derive(Debug)]
pub struct TakenFirst {
    taken: u16,
    picked: Vec<u16>,
}

impl TakenFirst {
    /// Ports beginning with `taken`.
    pub fn new(taken: u16) -> Self {
        Self {
            taken,
            picked: Vec::new(),
        }
    }

    /// The next port: `taken` the first time, then [`free_port`]'s.
    ///
    /// # Errors
    /// [`free_port`]'s.
    pub fn next_port(&mut self) -> std::io::Result<u16> {
        let port = if self.picked.is_empty() {
            self.taken
        } else {
            free_port()?
        };
        self.picked.push(port);
        Ok(port)
    }

    /// The ports offered so far, in order.
    pub fn picked(&self) -> &[u16] {
        &self.picked
    }
}

/// How one start on one port ended.
#[derive(Debug)]
pub enum Attempt<T> {
    /// The server answered on its port.
    Ready(T),
    /// It exited before it answered (its port was taken): what it said last (its log tail).
    Lost(String),
}

impl<T> Attempt<T> {
    /// The ready server passed through `f` (a lost start stays lost, with its log tail).
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Attempt<U> {
        match self {
            Self::Ready(server) => Attempt::Ready(f(server)),
            Self::Lost(tail) => Attempt::Lost(tail),
        }
    }
}

/// Starts a server with `start` on the ports `next_port` picks (normally [`free_port`]),
/// moving on to another port while a start is [`Attempt::Lost`], at most [`TRIES`] ports.
///
/// # Errors
/// `start`'s or `next_port`'s error at once; `AddrInUse` after [`TRIES`] lost starts, naming
/// `what`, the ports and the last one's log tail.
pub fn start_on<T>(
    what: &str,
    next_port: &mut dyn FnMut() -> std::io::Result<u16>,
    start: &mut dyn FnMut(u16) -> std::io::Result<Attempt<T>>,
) -> std::io::Result<T> {
    // One loop for both: every start here is ready at once, so one poll ends the search.
    let search = start_on_async(what, next_port, |port| std::future::ready(start(port)));
    let mut search = std::pin::pin!(search);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match search.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(result) => result,
        std::task::Poll::Pending => unreachable!("a start that is ready at once never waits"),
    }
}

/// [`start_on`] for a start that awaits (an async server's, or one polled on a runtime):
/// the same ports, tries and error, `start`'s own error type (one an `io::Error` converts
/// into, such as `anyhow::Error`).
///
/// # Errors
/// As [`start_on`]'s.
///
/// # Cancellation
/// Dropping the future drops the start in flight (and whatever it owns, such as its child).
pub async fn start_on_async<T, E, F, Fut>(
    what: &str,
    next_port: &mut dyn FnMut() -> std::io::Result<u16>,
    mut start: F,
) -> Result<T, E>
where
    E: From<std::io::Error>,
    F: FnMut(u16) -> Fut,
    Fut: std::future::Future<Output = Result<Attempt<T>, E>>,
{
    let mut tried = Vec::with_capacity(TRIES);
    let mut last = String::new();
    for _ in 0..TRIES {
        let port = next_port()?;
        tried.push(port);
        match start(port).await? {
            Attempt::Ready(server) => return Ok(server),
            Attempt::Lost(tail) => last = tail,
        }
    }
    Err(all_lost(what, &tried, &last).into())
}

/// The error after [`TRIES`] lost starts of `what` on the ports `tried`, `last` the last
/// one's log tail.
fn all_lost(what: &str, tried: &[u16], last: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::AddrInUse,
        format!(
            "{what} exited before it answered on each of the ports {tried:?} of 127.0.0.1 \
             (taken by another process?); its last words: {last}"
        ),
    )
}

/// What [`wait_ready`] saw.
#[derive(Debug)]
pub enum Readiness {
    /// `ready` said so.
    Ready,
    /// The process exited first.
    Exited(ExitStatus),
    /// Neither within the limit.
    TimedOut,
}

/// Polls `ready` every 20 ms until it is true, `child` exits, or `limit` passes.
pub fn wait_ready(
    child: &mut Child,
    limit: Duration,
    ready: &mut dyn FnMut() -> bool,
) -> Readiness {
    let deadline = Instant::now() + limit;
    loop {
        if ready() {
            return Readiness::Ready;
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Readiness::Exited(status);
        }
        if Instant::now() > deadline {
            return Readiness::TimedOut;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The text of `log` from byte `from` on (empty when it cannot be read; lossy UTF-8).
fn log_from(log: &Path, from: u64) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut f) = std::fs::File::open(log) {
        if f.seek(std::io::SeekFrom::Start(from)).is_ok() {
            let _ = f.read_to_end(&mut bytes);
        }
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Whether `log`, from byte `from` on (a log shared with earlier starts), holds every one
/// of `needles` (the server's own "listening on 127.0.0.1:PORT" line, its "ready" line).
pub fn log_has(log: &Path, from: u64, needles: &[&str]) -> bool {
    let text = log_from(log, from);
    needles.iter().all(|n| text.contains(n))
}

/// The first whole line (ended by its line break: one being written is not yet whole) of `log`
/// from byte `from` on that holds `needle`, without its line break.
pub fn log_line(log: &Path, from: u64, needle: &str) -> Option<String> {
    let text = log_from(log, from);
    let whole = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
    whole
        .lines()
        .find(|l| l.contains(needle))
        .map(str::to_owned)
}

/// The last `lines` lines of `log` from byte `from` on, joined with ` | ` (for an error).
pub fn log_tail(log: &Path, from: u64, lines: usize) -> String {
    let text = log_from(log, from);
    let mut last: Vec<&str> = text.lines().rev().take(lines).collect();
    last.reverse();
    last.join(" | ")
}

/// The length of `log` now (0 when missing): where a new start's lines begin.
pub fn log_len(log: &Path) -> u64 {
    std::fs::metadata(log).map_or(0, |m| m.len())
}

#[cfg(test)]
mod tests;
