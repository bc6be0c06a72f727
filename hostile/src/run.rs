//! Runs a real binary the way the suite needs: under an address-space cap, with stdin fed from
//! the test, killed after a wall-clock limit, and measured by the kernel (`wait4`'s rusage).
//!
//! The cap (`RLIMIT_AS`) is a safety net so a hostile case cannot take the machine down; the
//! assertion on memory is the measured peak RSS ([`crate::check`]). CPU is user + system
//! time, not wall time: on a busy two-core machine it is the number that stays put.
//!
//! The peak RSS is the child's own. Linux carries a forked copy's resident size into the
//! child's `ru_maxrss` across `exec`, so a binary forked from a test process that holds a large
//! input (or whose other tests do) would report that as its own peak. So the binary is not
//! forked from this process: a small helper (`spawn/main.rs`, built by `build.rs`) is, with
//! the cap set between its `fork` and `exec`; it starts the binary (which inherits the cap,
//! the stdio, the environment and the directory), reports its pid on a pipe, waits for it
//! and reports its wait status and rusage. The binary's `ru_maxrss` then carries at most the
//! helper's own couple of MiB.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use snowpipe_cli_support::process::{self, Signal};

/// What the child may use.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// The memory the surface is configured to use: the RSS assertion allows this + 64 MB.
    pub budget_bytes: u64,
    /// `RLIMIT_AS` for the child (virtual memory: thread stacks and allocator arenas count).
    pub address_space_bytes: u64,
    /// Killed (SIGKILL) after this long.
    pub wall: Duration,
}

impl Limits {
    /// `budget` with the usual safety net: address space budget + 1 GiB, 60 s wall.
    pub fn with_budget(budget_bytes: u64) -> Self {
        Self {
            budget_bytes,
            address_space_bytes: budget_bytes + 1024 * crate::MIB,
            wall: Duration::from_secs(60),
        }
    }
}

/// What to write to the child's stdin.
#[derive(Debug, Clone)]
pub enum Input {
    /// `/dev/null`.
    Null,
    /// These bytes, then end of file.
    Bytes(Vec<u8>),
    /// `chunk` repeated until `total` bytes are written (an endless-looking stream made in
    /// constant memory), then end of file.
    Repeat {
        /// What repeats.
        chunk: Vec<u8>,
        /// How many bytes in all.
        total: u64,
    },
}

/// How a run ended and what it cost.
#[derive(Debug, Clone)]
pub struct Outcome {
    /// The exit code, when it exited.
    pub code: Option<i32>,
    /// The signal that ended it, when one did (SIGABRT: an abort; SIGKILL: our timeout).
    pub signal: Option<i32>,
    /// Whether the wall-clock limit killed it.
    pub timed_out: bool,
    /// Its stdout.
    pub stdout: Vec<u8>,
    /// Its stderr.
    pub stderr: Vec<u8>,
    /// Peak resident set size (`ru_maxrss`: its own, plus at most the spawn helper's couple
    /// of MiB), bytes.
    pub peak_rss_bytes: u64,
    /// User + system CPU time.
    pub cpu: Duration,
}

impl Outcome {
    /// stderr as text (lossy).
    pub fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr).into_owned()
    }

    /// stdout as text (lossy).
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }

    /// A one-line summary for failure messages (the tail of stderr, not all of it).
    pub fn summary(&self) -> String {
        let err = self.stderr_text();
        let tail: String = err
            .chars()
            .rev()
            .take(2000)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!(
            "exit {:?}, signal {:?}, timed out {}, peak RSS {} MiB, CPU {:.2?}\nstderr (tail): {tail}",
            self.code,
            self.signal,
            self.timed_out,
            self.peak_rss_bytes >> 20,
            self.cpu,
        )
    }
}

/// Starts `cmd` under `limits`, feeds it `input`, and waits for it (or kills it at the wall
/// limit). `cmd`'s stdin, stdout and stderr are replaced.
///
/// # Errors
/// When the binary cannot be started or waited for.
pub fn run(mut cmd: Command, input: Input, limits: &Limits) -> std::io::Result<Outcome> {
    no_error_backtraces(&mut cmd);
    let stdin = match input {
        Input::Null => Stdio::null(),
        _ => Stdio::piped(),
    };
    let mut started = start(&cmd, limits, stdin)?;
    let pid = started.pid;
    let writer = started
        .helper
        .stdin
        .take()
        .map(|stdin| thread::spawn(move || feed(stdin, input)));
    let out = drain(started.helper.stdout.take());
    let err = drain(started.helper.stderr.take());
    let rx = reaper(started);
    let (waited, timed_out) = match rx.recv_timeout(limits.wall) {
        Ok(w) => (w, false),
        Err(_) => {
            // `pid` is not reaped yet: the helper reaps it and then reports, and it has not.
            kill(pid, Signal::Kill);
            (rx.recv().map_err(std::io::Error::other)?, true)
        }
    };
    let ended = waited?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(outcome(ended, timed_out, stdout, stderr))
}

/// The spawn helper `build.rs` compiled (`spawn/main.rs`).
const HELPER: &str = env!("SNOWPIPE_HOSTILE_SPAWN");

/// How the binary ended: its wait status, peak RSS (bytes) and CPU, from the helper.
struct Ended {
    status: i32,
    peak_rss_bytes: u64,
    cpu: Duration,
}

/// What `reap` returns.
type Reaped = std::io::Result<Ended>;

/// A binary started through the helper.
struct Started {
    /// The helper: its stdio pipes are the binary's.
    helper: Child,
    /// The binary's pid (the helper's child).
    pid: libc::pid_t,
    /// The helper's reports, after the `pid` line.
    report: BufReader<File>,
}

/// Starts `cmd` (its program, arguments, environment and directory) through the helper under
/// `limits`, with `stdin` and piped stdout and stderr, and returns once it runs.
fn start(cmd: &Command, limits: &Limits, stdin: Stdio) -> std::io::Result<Started> {
    let mut helper = Command::new(HELPER);
    helper.arg(cmd.get_program()).args(cmd.get_args());
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => helper.env(key, value),
            None => helper.env_remove(key),
        };
    }
    if let Some(dir) = cmd.get_current_dir() {
        helper.current_dir(dir);
    }
    let (read, write) = report_pipe()?;
    capped(&mut helper, limits, write.as_raw_fd());
    helper
        .stdin(stdin)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let spawned = helper.spawn();
    drop(write);
    let mut helper = spawned?;
    let mut report = BufReader::new(read);
    let mut line = String::new();
    report.read_line(&mut line)?;
    let words: Vec<&str> = line.split_whitespace().collect();
    match words.as_slice() {
        ["pid", pid] => Ok(Started {
            helper,
            pid: pid.parse().map_err(std::io::Error::other)?,
            report,
        }),
        ["error", errno, ..] => {
            let _ = helper.wait();
            Err(match errno.parse() {
                Ok(errno) if errno != 0 => std::io::Error::from_raw_os_error(errno),
                _ => std::io::Error::other(line.trim().to_owned()),
            })
        }
        _ => {
            let status = helper.wait()?;
            Err(std::io::Error::other(format!(
                "the spawn helper {HELPER} ended ({status}) without starting {:?}",
                cmd.get_program()
            )))
        }
    }
}

/// A pipe for the helper's reports: both ends close-on-exec (the helper gets the write end
/// as fd 3, `capped`).
fn report_pipe() -> std::io::Result<(File, OwnedFd)> {
    let mut fds = [0; 2];
    // SAFETY: `fds` is a valid two-int array.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both fds were just opened by `pipe2` and are owned by nothing else.
    Ok(unsafe { (File::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// Reaps the binary on a thread of its own (`reap`); its result comes on the channel.
fn reaper(started: Started) -> mpsc::Receiver<Reaped> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(reap(started));
    });
    rx
}

/// Waits for the helper's `end` report, and for the helper.
fn reap(mut started: Started) -> Reaped {
    let mut line = String::new();
    let read = started.report.read_line(&mut line);
    let helper = started.helper.wait();
    read?;
    let numbers: Result<Vec<i64>, _> = line
        .strip_prefix("end ")
        .unwrap_or("")
        .split_whitespace()
        .map(str::parse)
        .collect();
    match numbers.as_deref() {
        Ok(&[status, maxrss_kb, utime_s, utime_us, stime_s, stime_us]) => {
            let micros = |s: i64, us: i64| {
                Duration::from_secs(s.max(0) as u64) + Duration::from_micros(us.max(0) as u64)
            };
            Ok(Ended {
                status: status as i32,
                // Linux reports kilobytes.
                peak_rss_bytes: maxrss_kb.max(0) as u64 * 1024,
                cpu: micros(utime_s, utime_us) + micros(stime_s, stime_us),
            })
        }
        _ => Err(std::io::Error::other(format!(
            "the spawn helper ended ({:?}) without reporting how pid {} ended (it said {line:?})",
            helper, started.pid
        ))),
    }
}

/// `RUST_LIB_BACKTRACE=0` unless the caller set it: under `RUST_BACKTRACE=1` an error's
/// captured backtrace (anyhow's) costs a debug build some 70 MiB to symbolicate when printed,
/// which is not what a case measures. A panic's backtrace (`RUST_BACKTRACE`) is kept.
fn no_error_backtraces(cmd: &mut Command) {
    if !cmd.get_envs().any(|(k, _)| k == "RUST_LIB_BACKTRACE") {
        cmd.env("RUST_LIB_BACKTRACE", "0");
    }
}

/// Sets the helper's limits (which the binary inherits) between `fork` and `exec`:
/// `RLIMIT_AS`, and no core file; and puts the report pipe's write end `report` at fd 3.
fn capped(cmd: &mut Command, limits: &Limits, report: RawFd) {
    let cap = limits.address_space_bytes;
    // SAFETY: `setrlimit`, `dup2` and `fcntl` are async-signal-safe; the closure touches
    // nothing else.
    unsafe {
        cmd.pre_exec(move || {
            // `dup2` onto itself would keep close-on-exec: clear it instead.
            let placed = if report == 3 {
                libc::fcntl(3, libc::F_SETFD, 0)
            } else {
                libc::dup2(report, 3)
            };
            if placed < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let lim = libc::rlimit {
                rlim_cur: cap as libc::rlim_t,
                rlim_max: cap as libc::rlim_t,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // An aborting case must not spend a minute writing a core file of its heap.
            let none = libc::rlimit {
                rlim_cur: 0,
                rlim_max: 0,
            };
            if libc::setrlimit(libc::RLIMIT_CORE, &none) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

/// A long-running binary (a server) started under the limits: read its stdout lines while it
/// runs, then [`stop`](Running::stop) it for its [`Outcome`].
pub struct Running {
    pid: libc::pid_t,
    reaped: mpsc::Receiver<Reaped>,
    /// Its end, once [`Running::has_exited`] saw it (the pid is then reaped: never signal it).
    ended: Option<Reaped>,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
    err: thread::JoinHandle<Vec<u8>>,
    wall: Duration,
}

/// Starts `cmd` under `limits` (stdin `/dev/null`), its stdout read line by line.
///
/// # Errors
/// When the binary cannot be started.
pub fn spawn(cmd: Command, limits: &Limits) -> std::io::Result<Running> {
    let mut started = start(&cmd, limits, Stdio::null())?;
    let pid = started.pid;
    let out = started.helper.stdout.take();
    let (tx, lines) = mpsc::channel();
    thread::spawn(move || {
        use std::io::BufRead as _;
        if let Some(out) = out {
            for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        }
    });
    let err = drain(started.helper.stderr.take());
    Ok(Running {
        pid,
        reaped: reaper(started),
        ended: None,
        lines,
        seen: Vec::new(),
        err,
        wall: limits.wall,
    })
}

impl Running {
    /// Whether the process has ended by itself (a crash, an exit), without waiting.
    pub fn has_exited(&mut self) -> bool {
        if self.ended.is_none() {
            self.ended = self.reaped.try_recv().ok();
        }
        self.ended.is_some()
    }

    /// Waits for the reaper up to the wall limit, then SIGKILLs and waits.
    fn wait_or_kill(&mut self) -> std::io::Result<(Reaped, bool)> {
        Ok(match self.reaped.recv_timeout(self.wall) {
            Ok(w) => (w, false),
            Err(_) => {
                // `pid` is our child and not reaped: the reaper has not answered.
                kill(self.pid, Signal::Kill);
                (self.reaped.recv().map_err(std::io::Error::other)?, true)
            }
        })
    }

    /// The first stdout line starting with `prefix`, without it, within `wait`.
    pub fn line_after(&mut self, prefix: &str, wait: Duration) -> Option<String> {
        let until = std::time::Instant::now() + wait;
        loop {
            let left = until.checked_duration_since(std::time::Instant::now())?;
            let line = self.lines.recv_timeout(left).ok()?;
            self.seen.push(line.clone());
            if let Some(rest) = line.strip_prefix(prefix) {
                return Some(rest.to_owned());
            }
        }
    }

    /// The CPU (user + system) the running process has used so far, from
    /// `/proc/<pid>/stat` (`None` where there is none): the cost of what a server did between
    /// two readings, for a linear check within one run.
    pub fn cpu_so_far(&self) -> Option<Duration> {
        let pid = u32::try_from(self.pid).ok()?;
        process::usage(pid).ok().map(|u| u.cpu)
    }

    /// Sends `signal` (SIGTERM: a graceful stop), waits up to the wall limit (then SIGKILL),
    /// and returns how it ended and what it cost over its whole life. A process that died
    /// before (a crash) reports its own end.
    ///
    /// # Errors
    /// When it cannot be waited for.
    pub fn stop(mut self, signal: Signal) -> std::io::Result<Outcome> {
        let (waited, timed_out) = if let Some(ended) = self.ended.take() {
            (ended, false)
        } else {
            // `pid` is our child, not reaped yet (only this method and `has_exited` wait for
            // it, and `ended` is empty).
            kill(self.pid, signal);
            self.wait_or_kill()?
        };
        let ended = waited?;
        self.seen.extend(self.lines.try_iter());
        let mut stdout = self.seen.join("\n").into_bytes();
        stdout.push(b'\n');
        Ok(outcome(
            ended,
            timed_out,
            stdout,
            self.err.join().unwrap_or_default(),
        ))
    }
}

fn outcome(ended: Ended, timed_out: bool, stdout: Vec<u8>, stderr: Vec<u8>) -> Outcome {
    let status = ended.status;
    Outcome {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        timed_out,
        stdout,
        stderr,
        peak_rss_bytes: ended.peak_rss_bytes,
        cpu: ended.cpu,
    }
}

fn feed(mut stdin: std::process::ChildStdin, input: Input) {
    // A child that stops reading (it refused the input) breaks the pipe: that is fine.
    match input {
        Input::Null => {}
        Input::Bytes(b) => {
            let _ = stdin.write_all(&b);
        }
        Input::Repeat { chunk, total } => {
            let mut left = total;
            while left > 0 && !chunk.is_empty() {
                let n = (chunk.len() as u64).min(left) as usize;
                if stdin.write_all(&chunk[..n]).is_err() {
                    break;
                }
                left -= n as u64;
            }
        }
    }
}

fn drain<R: Read + Send + 'static>(r: Option<R>) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        if let Some(mut r) = r {
            let _ = r.read_to_end(&mut buf);
        }
        buf
    })
}

/// Sends `sig` to the binary `pid`; an error (it has ended) is left to the wait that follows.
fn kill(pid: libc::pid_t, sig: Signal) {
    if let Ok(pid) = u32::try_from(pid) {
        let _ = process::signal(pid, sig);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut c = Command::new("/bin/sh");
        c.args(["-c", script]);
        c
    }

    #[test]
    fn exit_codes_stdin_and_stderr_come_back() {
        let limits = Limits::with_budget(64 * crate::MIB);
        let o = run(
            sh("wc -c; echo oops >&2; exit 3"),
            Input::Bytes(b"hello".to_vec()),
            &limits,
        )
        .unwrap();
        assert_eq!((o.code, o.signal, o.timed_out), (Some(3), None, false));
        assert_eq!(o.stdout_text().trim(), "5");
        assert_eq!(o.stderr_text().trim(), "oops");
        assert!(o.peak_rss_bytes > 0);
        let o = run(
            sh("wc -c"),
            Input::Repeat {
                chunk: b"abc".to_vec(),
                total: 10,
            },
            &limits,
        )
        .unwrap();
        assert_eq!(o.stdout_text().trim(), "10");
    }

    #[test]
    fn a_server_is_read_while_it_runs_and_measured_when_stopped() {
        let limits = Limits::with_budget(64 * crate::MIB);
        let mut r = spawn(
            sh("echo starting; echo 'listening on here'; exec sleep 30"),
            &limits,
        )
        .unwrap();
        assert_eq!(
            r.line_after("listening on ", Duration::from_secs(10))
                .as_deref(),
            Some("here")
        );
        let o = r.stop(Signal::Term).unwrap();
        assert_eq!((o.signal, o.timed_out), (Some(libc::SIGTERM), false));
        assert!(o.stdout_text().contains("starting"));
    }

    #[test]
    fn the_wall_limit_kills_and_says_so() {
        let mut limits = Limits::with_budget(64 * crate::MIB);
        limits.wall = Duration::from_millis(300);
        let o = run(sh("exec sleep 30"), Input::Null, &limits).unwrap();
        assert!(o.timed_out);
        assert_eq!(o.signal, Some(libc::SIGKILL));
    }

    #[test]
    fn the_address_space_cap_applies_to_the_child() {
        // A 256 MiB cap on the shell: `ulimit -v` reads it back in KiB.
        let limits = Limits {
            budget_bytes: 0,
            address_space_bytes: 256 * crate::MIB,
            wall: Duration::from_secs(10),
        };
        let o = run(sh("ulimit -v"), Input::Null, &limits).unwrap();
        assert_eq!(o.stdout_text().trim(), "262144");
    }

    #[test]
    fn a_small_child_of_a_large_test_process_measures_small() {
        // This process holds 256 MiB; a child forked from it would carry that into its
        // ru_maxrss. One that lives a while, and ones gone at once (before anything could
        // sample them): the kernel's figure must be their own.
        let held = vec![1u8; 256 * crate::MIB as usize];
        std::hint::black_box(&held);
        let limits = Limits::with_budget(64 * crate::MIB);
        for script in ["sleep 0.1; exit 0", "exit 0", "exit 0", "exit 0", "exit 0"] {
            let o = run(sh(script), Input::Null, &limits).unwrap();
            assert_eq!(o.code, Some(0));
            assert!(
                o.peak_rss_bytes < 64 * crate::MIB,
                "a shell ({script}) measured at {} MiB",
                o.peak_rss_bytes >> 20
            );
        }
        drop(held);
    }

    #[test]
    fn a_missing_binary_is_an_error_naming_it_and_the_environment_passes() {
        let limits = Limits::with_budget(64 * crate::MIB);
        let e = run(
            Command::new("/nonexistent/hostile-binary"),
            Input::Null,
            &limits,
        )
        .unwrap_err();
        assert_eq!(e.kind(), std::io::ErrorKind::NotFound, "{e}");
        let mut cmd = sh("echo \"$HOSTILE_PROBE\"; pwd");
        cmd.env("HOSTILE_PROBE", "seen").current_dir("/tmp");
        let o = run(cmd, Input::Null, &limits).unwrap();
        assert_eq!(o.stdout_text(), "seen\n/tmp\n");
    }
}
