//! Processes by their id: a signal sent ([`signal`]), whether one lives ([`alive`]), and what
//! one has used so far ([`usage`], [`self_usage`]: CPU time and minor page faults from
//! `/proc/<pid>/stat`); and the kernel's own account of this process, this thread or the
//! children waited for ([`rusage`]).
//!
//! The workspace's one place that calls `libc` unsafely: the binaries stop their children, the
//! labs pause and resume a server, the tests end what they started, and all of them read their
//! own cost here instead of each writing its own `unsafe` block and its own `/proc` parser.
//! Unix only for signals; the `/proc` readers answer an error where there is no `/proc`.

#![allow(
    unsafe_code,
    reason = "kill(2), sysconf(3), getrusage(2) and prctl(2) through libc: the crate's one unsafe \
              module"
)]

use std::io;
use std::time::Duration;

/// A signal [`signal`] sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// `SIGKILL`: ends the process at once; nothing of it runs again.
    Kill,
    /// `SIGSTOP`: pauses the process (a hung server, as its peers see it) until [`Signal::Cont`].
    Stop,
    /// `SIGCONT`: resumes a process paused by [`Signal::Stop`].
    Cont,
    /// `SIGTERM`: asks the process to stop (what `docker stop` and Kubernetes send).
    Term,
    /// `SIGINT`: what Ctrl-C sends.
    Int,
}

impl Signal {
    /// The signal's number (`libc::SIGTERM` for [`Signal::Term`]), as a wait status reports it.
    #[must_use]
    pub fn number(self) -> i32 {
        match self {
            Self::Kill => libc::SIGKILL,
            Self::Stop => libc::SIGSTOP,
            Self::Cont => libc::SIGCONT,
            Self::Term => libc::SIGTERM,
            Self::Int => libc::SIGINT,
        }
    }
}

/// The id as the kernel takes it. An id past `pid_t` names no process, and 0 would name the
/// caller's whole process group (`kill(0, …)`): both refused.
fn pid_t(pid: u32) -> io::Result<libc::pid_t> {
    match libc::pid_t::try_from(pid) {
        Ok(p) if p > 0 => Ok(p),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("process id {pid} names no single process: give a child's id"),
        )),
    }
}

/// Sends `sig` to process `pid` (`kill(2)`). Signalling a child that has ended but is not
/// yet waited for is harmless; signalling one already waited for may reach a process that
/// reused its id, so send before `wait`, as `std::process::Child::kill` does.
///
/// # Errors
/// `pid` is 0 or past `pid_t`, or the kernel refused: no such process (`ESRCH`), not ours (`EPERM`).
pub fn signal(pid: u32, sig: Signal) -> io::Result<()> {
    let pid = pid_t(pid)?;
    // SAFETY: kill(2) takes two integers and touches no memory of ours.
    if unsafe { libc::kill(pid, sig.number()) } == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Whether process `pid` exists (`kill(pid, 0)`: nothing is sent), ours or another user's.
#[must_use]
pub fn alive(pid: u32) -> bool {
    let Ok(pid) = pid_t(pid) else {
        return false;
    };
    // SAFETY: kill(2) with signal 0 sends nothing and touches no memory of ours.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// Makes the process `cmd` starts die by `SIGKILL` when the thread that starts it ends
/// (`PR_SET_PDEATHSIG`, set between fork and exec): a lab's servers and instances end with the
/// lab even when it is killed. Linux only; elsewhere nothing is set.
pub fn die_with_parent(cmd: &mut std::process::Command) {
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::process::CommandExt as _;
        // SAFETY: prctl(2) is async-signal-safe, and nothing else runs between fork and exec.
        unsafe {
            cmd.pre_exec(|| {
                if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = cmd;
}

/// What a process has used so far, from `/proc/<pid>/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// CPU time, user and system, of all its threads (in clock ticks, 10 ms on Linux).
    pub cpu: Duration,
    /// Page faults served without I/O: nearly all a page touched for the first time.
    pub minor_faults: u64,
}

/// What this process has used so far ([`usage`] of its own id).
///
/// # Errors
/// As [`usage`].
pub fn self_usage() -> io::Result<Usage> {
    usage(std::process::id())
}

/// What process `pid` has used so far (`/proc/<pid>/stat`).
///
/// # Errors
/// No `/proc` (not Linux), no such process, or a line that is not `stat`'s format.
pub fn usage(pid: u32) -> io::Result<Usage> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    parse_stat(&stat, clock_ticks_per_second())
}

/// Whose use [`rusage`] reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// This process, all its threads (`RUSAGE_SELF`).
    Process,
    /// The calling thread alone (`RUSAGE_THREAD`): a stage measured on the thread that runs it.
    Thread,
    /// The children this process has waited for, and theirs (`RUSAGE_CHILDREN`).
    Children,
}

/// What [`rusage`] reads: `getrusage(2)`'s counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Rusage {
    /// CPU time, user and system.
    pub cpu: Duration,
    /// Page faults served without I/O.
    pub minor_faults: u64,
    /// Context switches: voluntary (a wait) and involuntary (preempted).
    pub switches: (u64, u64),
    /// The peak resident set, in bytes (`ru_maxrss`, the largest child's for
    /// [`Who::Children`]).
    pub max_rss_bytes: u64,
}

impl Rusage {
    /// [`Rusage::cpu`] in seconds.
    #[must_use]
    pub fn cpu_s(&self) -> f64 {
        self.cpu.as_secs_f64()
    }
}

/// `getrusage(2)` for `who`: CPU time, faults, switches and peak memory. Where the kernel
/// refuses (it does not for these three), every counter reads 0.
#[must_use]
pub fn rusage(who: Who) -> Rusage {
    let who = match who {
        Who::Process => libc::RUSAGE_SELF,
        #[cfg(target_os = "linux")]
        Who::Thread => libc::RUSAGE_THREAD,
        #[cfg(not(target_os = "linux"))]
        Who::Thread => libc::RUSAGE_SELF,
        Who::Children => libc::RUSAGE_CHILDREN,
    };
    // SAFETY: an all-zero `rusage` is plain integers, a valid value; getrusage(2) writes only
    // the struct it is given.
    let u = unsafe {
        let mut u: libc::rusage = std::mem::zeroed();
        if libc::getrusage(who, &mut u) != 0 {
            return Rusage::default();
        }
        u
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    let count = |n: libc::c_long| u64::try_from(n).unwrap_or(0);
    Rusage {
        cpu: tv(u.ru_utime) + tv(u.ru_stime),
        minor_faults: count(u.ru_minflt),
        switches: (count(u.ru_nvcsw), count(u.ru_nivcsw)),
        // KiB on Linux.
        max_rss_bytes: count(u.ru_maxrss).saturating_mul(1024),
    }
}

/// The size of a memory page in bytes (`sysconf(_SC_PAGESIZE)`), 4,096 where it does not say:
/// `/proc/<pid>/statm` counts pages.
#[must_use]
pub fn page_size() -> u64 {
    // SAFETY: sysconf(3) reads a constant and touches no memory of ours.
    let size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(size).ok().filter(|&s| s > 0).unwrap_or(4096)
}

/// The kernel's clock tick (`sysconf(_SC_CLK_TCK)`), 100 where it does not say: `/proc`'s
/// CPU times count ticks.
#[must_use]
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf(3) reads a constant and touches no memory of ours.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(hz).ok().filter(|&h| h > 0).unwrap_or(100)
}

/// One `stat` line: fields after the command name (in parentheses, which may hold spaces and
/// parentheses, so the last `)` ends it); minflt, utime and stime are fields 10, 14 and 15 of
/// the whole line.
fn parse_stat(stat: &str, hz: u64) -> io::Result<Usage> {
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "not a /proc/<pid>/stat line: {:?}",
                crate::text::cut_json_text(stat, 120)
            ),
        )
    };
    let (_, rest) = stat.rsplit_once(')').ok_or_else(bad)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> io::Result<u64> {
        fields.get(i).and_then(|f| f.parse().ok()).ok_or_else(bad)
    };
    // Counted from the state (field 3) at 0.
    let (minor_faults, utime, stime) = (field(7)?, field(11)?, field(12)?);
    let ticks = utime.saturating_add(stime);
    let hz = hz.max(1);
    let cpu =
        Duration::from_secs(ticks / hz) + Duration::from_nanos((ticks % hz) * 1_000_000_000 / hz);
    Ok(Usage { cpu, minor_faults })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stat_line_gives_cpu_and_faults_even_with_a_parenthesis_in_the_name() {
        let line = "4242 (a) b (c) S 1 4242 4242 0 -1 4194560 1234 0 0 0 250 75 0 0 20 0 3 0";
        let u = parse_stat(line, 100).unwrap();
        assert_eq!(u.minor_faults, 1234);
        assert_eq!(u.cpu, Duration::from_millis(3250));
        let e = parse_stat("4242 (short) S 1", 100).unwrap_err();
        assert!(e.to_string().contains("not a /proc/<pid>/stat line"), "{e}");
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_process_reads_its_own_cpu_growing() {
        let before = self_usage().unwrap();
        let start = std::time::Instant::now();
        let mut x = 0_u64;
        while start.elapsed() < Duration::from_millis(300) {
            x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
        }
        let after = self_usage().unwrap();
        assert!(after.cpu > before.cpu, "{before:?} then {after:?}");
    }

    /// The thread's CPU grows by what it spins; another thread's spin is in the process's, not
    /// in this thread's.
    #[cfg(target_os = "linux")]
    #[test]
    fn rusage_reads_the_thread_apart_from_the_process() {
        let spin = |d: Duration| {
            let start = std::time::Instant::now();
            let mut x = 0_u64;
            while start.elapsed() < d {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(7));
            }
        };
        let (thread, process) = (rusage(Who::Thread), rusage(Who::Process));
        std::thread::spawn(move || spin(Duration::from_millis(300)))
            .join()
            .unwrap();
        let (thread_after, process_after) = (rusage(Who::Thread), rusage(Who::Process));
        let other = process_after.cpu.saturating_sub(process.cpu);
        let own = thread_after.cpu.saturating_sub(thread.cpu);
        assert!(other >= Duration::from_millis(200), "{other:?}");
        assert!(own < Duration::from_millis(100), "{own:?}");
        assert!(process_after.max_rss_bytes > 0);
    }

    #[cfg(unix)]
    #[test]
    fn a_child_is_paused_resumed_and_ended_by_its_signals() {
        use std::os::unix::process::ExitStatusExt as _;
        let mut child = std::process::Command::new("sleep")
            .arg("60")
            .spawn()
            .unwrap();
        let pid = child.id();
        assert!(alive(pid));
        signal(pid, Signal::Stop).unwrap();
        signal(pid, Signal::Cont).unwrap();
        signal(pid, Signal::Term).unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(Signal::Term.number()));
        let e = signal(u32::MAX, Signal::Kill).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
        assert!(!alive(u32::MAX));
        let e = signal(0, Signal::Kill).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput, "{e}");
    }
}
