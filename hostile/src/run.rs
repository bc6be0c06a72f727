//! Runs a real binary the way the suite needs: under an address-space cap, with stdin fed from
//! the test, killed after a wall-clock limit, and measured by the kernel (`wait4`'s rusage).
//!
//! The cap (`RLIMIT_AS`, set in the child between `fork` and `exec`) is a safety net so a
//! hostile case cannot take the machine down; the assertion on memory is the measured peak
//! RSS ([`crate::check`]). CPU is user + system time, not wall time: on a busy two-core
//! machine it is the number that stays put.
//!
//! The peak RSS is the child's own. `ru_maxrss` alone is not: Linux carries the forked copy
//! of this (test) process's resident size into the child across `exec`, so a child of a test
//! process that holds a large input reports at least that. `reap` samples the child's
//! `VmHWM` (its own address space's high-water mark, from `exec` on) every 10 ms until it
//! exits, and `peak_rss` takes `ru_maxrss` only when it is above anything this process
//! ever held (then it is the child's own), else the sampled mark. A child that exits before
//! the first sample (a few milliseconds on a busy machine) has no sampled mark; it gets
//! `ru_maxrss`, an upper bound on its own peak.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
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
    /// Peak resident set size (`ru_maxrss`), bytes.
    pub peak_rss_bytes: u64,
    /// What `peak_rss_bytes` may hold of this (test) process rather than the child's own:
    /// this process's `VmHWM` when the peak is `ru_maxrss` (a child that exited before the
    /// first sample), 0 when it is the child's own sampled mark. A bound on the child's own
    /// peak below this cannot be checked from here.
    pub rss_floor_bytes: u64,
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
    capped(&mut cmd, limits);
    no_error_backtraces(&mut cmd);
    cmd.stdin(match input {
        Input::Null => Stdio::null(),
        _ => Stdio::piped(),
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let writer = child
        .stdin
        .take()
        .map(|stdin| thread::spawn(move || feed(stdin, input)));
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let rx = reaper(pid);
    let (waited, timed_out) = match rx.recv_timeout(limits.wall) {
        Ok(w) => (w, false),
        Err(_) => {
            // `pid` is our own child and not yet reaped (the reaper has not returned).
            kill(pid, Signal::Kill);
            (rx.recv().map_err(std::io::Error::other)?, true)
        }
    };
    let (status, usage, sampled) = waited?;
    if let Some(w) = writer {
        let _ = w.join();
    }
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok(outcome(status, &usage, sampled, timed_out, stdout, stderr))
}

/// What `reap` returns: the wait status, the rusage and the sampled `VmHWM` (bytes).
type Reaped = std::io::Result<(i32, libc::rusage, u64)>;

/// Reaps `pid` on a thread of its own (`reap`); its result comes on the channel.
fn reaper(pid: libc::pid_t) -> mpsc::Receiver<Reaped> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(reap(pid));
    });
    rx
}

/// Waits for `pid` to exit, sampling its `VmHWM` every 10 ms meanwhile (only before it is
/// reaped, so never another process's that took its pid), and reaps it.
fn reap(pid: libc::pid_t) -> Reaped {
    let mut sampled = 0;
    loop {
        sampled = sampled.max(vm_hwm(&format!("/proc/{pid}/status")).unwrap_or(0));
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value; wait4 fills it.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: valid pointers to our locals; `pid` is our child.
        let r = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if r == pid {
            return Ok((status, usage, sampled));
        }
        if r < 0 {
            let e = std::io::Error::last_os_error();
            if e.kind() != std::io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
        thread::sleep(Duration::from_millis(10));
    }
}

/// The `VmHWM` line of a `/proc/…/status` file, bytes (`None` once the process has exited).
fn vm_hwm(status: &str) -> Option<u64> {
    let text = std::fs::read_to_string(status).ok()?;
    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The child's own peak RSS: `ru_maxrss` when it is above this process's own high-water mark
/// (what the child could have inherited at `fork`), else the sampled `VmHWM`; `ru_maxrss`
/// (an upper bound) when the child exited before it could be sampled.
fn peak_rss(usage: &libc::rusage, sampled: u64) -> u64 {
    // Linux reports kilobytes.
    let reported = usage.ru_maxrss as u64 * 1024;
    let ours = vm_hwm("/proc/self/status").unwrap_or(u64::MAX);
    if reported > ours || sampled == 0 {
        reported
    } else {
        sampled
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

/// Sets the child's limits between `fork` and `exec`: `RLIMIT_AS`, and no core file.
fn capped(cmd: &mut Command, limits: &Limits) {
    let cap = limits.address_space_bytes;
    // SAFETY: `setrlimit` is async-signal-safe; the closure touches nothing else.
    unsafe {
        cmd.pre_exec(move || {
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
pub fn spawn(mut cmd: Command, limits: &Limits) -> std::io::Result<Running> {
    capped(&mut cmd, limits);
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pid = child.id() as libc::pid_t;
    let out = child.stdout.take();
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
    let err = drain(child.stderr.take());
    Ok(Running {
        pid,
        reaped: reaper(pid),
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
        let (status, usage, sampled) = waited?;
        self.seen.extend(self.lines.try_iter());
        let mut stdout = self.seen.join("\n").into_bytes();
        stdout.push(b'\n');
        Ok(outcome(
            status,
            &usage,
            sampled,
            timed_out,
            stdout,
            self.err.join().unwrap_or_default(),
        ))
    }
}

fn outcome(
    status: i32,
    usage: &libc::rusage,
    sampled: u64,
    timed_out: bool,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
) -> Outcome {
    Outcome {
        code: libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status)),
        signal: libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status)),
        timed_out,
        stdout,
        stderr,
        peak_rss_bytes: peak_rss(usage, sampled),
        rss_floor_bytes: if sampled == 0 {
            vm_hwm("/proc/self/status").unwrap_or(0)
        } else {
            0
        },
        cpu: tv(usage.ru_utime) + tv(usage.ru_stime),
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

fn tv(t: libc::timeval) -> Duration {
    Duration::from_secs(t.tv_sec as u64) + Duration::from_micros(t.tv_usec as u64)
}

/// Sends `sig` to our child `pid`; an error (it has ended) is left to the wait that follows.
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
        // This process holds 256 MiB; a forked child carries that into its ru_maxrss.
        let held = vec![1u8; 256 * crate::MIB as usize];
        std::hint::black_box(&held);
        let limits = Limits::with_budget(64 * crate::MIB);
        let o = run(sh("sleep 0.1; exit 0"), Input::Null, &limits).unwrap();
        assert!(
            o.peak_rss_bytes < 64 * crate::MIB,
            "a shell measured at {} MiB",
            o.peak_rss_bytes >> 20
        );
        drop(held);
    }

    #[test]
    fn a_child_gone_before_its_first_sample_reports_the_kernels_upper_bound() {
        // SAFETY: an all-zero rusage is a valid value.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        usage.ru_maxrss = 3000;
        assert_eq!(peak_rss(&usage, 0), 3000 * 1024);
        // Sampled, and below what this process holds: the sample is the child's own.
        assert_eq!(peak_rss(&usage, 1024), 1024);
    }
}
