//! The SIGKILL loops of the crash tests (`crash.rs`, `ranges.rs`, `buckets.rs`), in one place:
//! a run killed once it committed a given number of rows, or at seeded instants after its
//! start, then a last run to the end. CI runs fixed seeds; `LOAD_CRASH_SEED=N` tries other
//! instants, `LOAD_KILLS=N` kills more often (`LOAD_CRASH_KILLS` is the older name).
#![cfg(unix)]

use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use super::Lab;

/// A number from the environment.
pub(crate) fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

/// SIGKILLs `child` unless it already ended, and reaps it: whether it was killed.
fn kill(child: &mut Child) -> bool {
    let running = child.try_wait().unwrap().is_none();
    if running {
        // `Child::kill` is SIGKILL on Unix: the process gets no chance to clean up.
        child.kill().unwrap();
    }
    child.wait().unwrap();
    running
}

/// Runs `snowpipe load FILES ARGS` once per kill point, killing it once that run has
/// committed `point` rows (or after 20 s), then lets a last run finish. Returns the row
/// counts at the kills.
pub(crate) fn at_counts(lab: &Lab, files: &[&Path], args: &[&str], points: &[u64]) -> Vec<u64> {
    let mut killed_at = Vec::new();
    for &point in points {
        let base = lab.count();
        let mut child = lab.spawn(files, args);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            if lab.count() >= base + point {
                break;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        if kill(&mut child) {
            killed_at.push(lab.count());
        }
    }
    lab.load(files, args).ok();
    eprintln!("killed with {killed_at:?} rows committed");
    killed_at
}

/// Seeded instants: `kills` delays below `within`, from `LOAD_CRASH_SEED` (else `seed`) and
/// `LOAD_KILLS` (else `LOAD_CRASH_KILLS`, else `kills`).
pub(crate) struct Instants {
    /// The seed used (for the failure message).
    pub seed: u64,
    state: u64,
    left: u64,
    within: Duration,
}

impl Instants {
    pub(crate) fn new(seed: u64, kills: u64, within: Duration) -> Self {
        let seed = env_u64("LOAD_CRASH_SEED").unwrap_or(seed);
        let kills = env_u64("LOAD_KILLS")
            .or_else(|| env_u64("LOAD_CRASH_KILLS"))
            .unwrap_or(kills);
        Self {
            seed,
            state: seed.max(1),
            left: kills,
            within,
        }
    }
}

impl Instants {
    /// The kills still to come.
    pub(crate) fn kills(&self) -> u64 {
        self.left
    }
}

impl Iterator for Instants {
    type Item = Duration;

    /// The next of a xorshift64* sequence: the delays need no more than reproducible numbers.
    fn next(&mut self) -> Option<Duration> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let s = &mut self.state;
        *s ^= *s >> 12;
        *s ^= *s << 25;
        *s ^= *s >> 27;
        let n = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let ms = u64::try_from(self.within.as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        Some(Duration::from_millis(n % ms))
    }
}

/// Starts `files` with `args` once per instant, SIGKILLing each run that long after its start
/// (unless it ended). Returns `(ms, rows committed)` at each kill.
pub(crate) fn at_instants(
    lab: &Lab,
    files: &[&Path],
    args: &[&str],
    instants: &mut Instants,
) -> Vec<(u128, u64)> {
    let mut killed_at = Vec::new();
    for delay in instants {
        let mut child = lab.spawn(files, args);
        let deadline = Instant::now() + delay;
        while Instant::now() < deadline && child.try_wait().unwrap().is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        if kill(&mut child) {
            killed_at.push((delay.as_millis(), lab.count()));
        }
    }
    killed_at
}
