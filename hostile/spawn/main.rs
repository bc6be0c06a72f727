//! The hostile runner's spawn helper (`src/run.rs` starts it; `build.rs` compiles it).
//!
//! Usage: `hostile-spawn PROGRAM [ARG]...`, with fd 3 a pipe to the test process.
//!
//! It starts `PROGRAM` with its own stdio, environment, directory and limits, so the
//! program is forked from this small process and not from the test process: Linux carries a
//! forked copy's resident size into the child's `ru_maxrss` across `exec`, so a child of a
//! test process holding a large input would report that input as its own peak. On fd 3 it
//! writes `pid PID` once the program runs (or `error ERRNO MESSAGE` when it cannot start),
//! then `end STATUS MAXRSS_KB UTIME_S UTIME_US STIME_S STIME_US` when it has ended. Only
//! the standard library: it is compiled by `rustc` alone.

use std::io::Write;
use std::os::fd::FromRawFd;
use std::process::{exit, Command};

extern "C" {
    fn wait4(pid: i32, status: *mut i32, options: i32, rusage: *mut [i64; 18]) -> i32;
    fn close(fd: i32) -> i32;
    fn fcntl(fd: i32, cmd: i32, ...) -> i32;
}

const F_SETFD: i32 = 2;
const FD_CLOEXEC: i32 = 1;
const EINTR: i32 = 4;

fn main() {
    // SAFETY: fd 3 is the report pipe the test process put there; nothing else owns it.
    let mut report = unsafe { std::fs::File::from_raw_fd(3) };
    // SAFETY: plain fcntl on our own fd: the program must not inherit the report pipe.
    if unsafe { fcntl(3, F_SETFD, FD_CLOEXEC) } != 0 {
        exit(70);
    }
    let mut args = std::env::args_os().skip(1);
    let Some(program) = args.next() else {
        let _ = writeln!(report, "error 22 no program to start");
        exit(64);
    };
    let child = match Command::new(&program).args(args).spawn() {
        Ok(child) => child,
        Err(e) => {
            let _ = writeln!(report, "error {} {e}", e.raw_os_error().unwrap_or(0));
            exit(1);
        }
    };
    let pid = child.id() as i32;
    if writeln!(report, "pid {pid}").is_err() {
        exit(1);
    }
    // The program alone holds the pipes from here: their end of file is its own.
    // SAFETY: closing our own stdio; nothing in this process uses it again.
    unsafe {
        close(0);
        close(1);
        close(2);
    }
    let mut status = 0;
    // The 64-bit Linux layout: two timevals, then 14 longs (ru_maxrss first).
    let mut usage = [0i64; 18];
    loop {
        // SAFETY: valid pointers to locals; `pid` is our child, reaped only here.
        let r = unsafe { wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        if std::io::Error::last_os_error().raw_os_error() != Some(EINTR) {
            exit(1);
        }
    }
    let [utime_s, utime_us, stime_s, stime_us, maxrss_kb, ..] = usage;
    let line = format!("end {status} {maxrss_kb} {utime_s} {utime_us} {stime_s} {stime_us}");
    if writeln!(report, "{line}").is_err() {
        exit(1);
    }
}
