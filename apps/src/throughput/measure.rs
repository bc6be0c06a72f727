//! What the harness measures besides time: process CPU and resident memory (from `/proc` and
//! `getrusage`), per-thread CPU, percentiles, and commit-detection latency.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// User + system CPU seconds of this process.
pub(crate) fn process_cpu_s() -> f64 {
    // SAFETY: getrusage only writes the struct we pass.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(ru.ru_utime) + tv(ru.ru_stime)
}

/// Peak resident set of this process, in MB (ru_maxrss is in KiB on Linux).
pub(crate) fn peak_rss_mb() -> f64 {
    // SAFETY: as above.
    let ru = unsafe {
        let mut ru: libc::rusage = std::mem::zeroed();
        libc::getrusage(libc::RUSAGE_SELF, &mut ru);
        ru
    };
    ru.ru_maxrss as f64 * 1024.0 / 1e6
}

/// Current resident set of this process, in MB (Linux `/proc/self/statm`; 0 elsewhere).
pub(crate) fn current_rss_mb() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as f64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * page / 1e6)
}

/// CPU seconds of this process's live threads named `name` (Linux `/proc`; 0 elsewhere).
pub(crate) fn threads_cpu_s(name: &str) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let mut total = 0.0;
    for task in dir.flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() != name {
            continue;
        }
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some(after) = stat.rsplit_once(')').map(|(_, a)| a) else {
            continue;
        };
        let f: Vec<&str> = after.split_whitespace().collect();
        // Fields after "(comm)": state is field 3, utime 14, stime 15.
        let num = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        total += (num(11) + num(12)) / ticks;
    }
    total
}

pub(crate) fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    Some(sorted[i])
}

/// Commits the emulator reports, per channel: end offset token → commit time (µs).
pub(crate) type Commits = Arc<Mutex<HashMap<String, BTreeMap<u64, i64>>>>;

/// Reads the emulator's `GET /` and records the recent commits of `names`.
pub(crate) async fn sample_commits(
    http: &reqwest::Client,
    url: &str,
    names: &[String],
    into: &Commits,
) -> anyhow::Result<()> {
    let status: serde_json::Value = http.get(url).send().await?.json().await?;
    let mut map = into.lock().unwrap_or_else(|e| e.into_inner());
    for ch in status["channels"].as_array().into_iter().flatten() {
        let Some(name) = ch["channel_name"].as_str() else {
            continue;
        };
        if !names.iter().any(|n| n == name) {
            continue;
        }
        let entry = map.entry(name.to_owned()).or_default();
        for c in ch["recent_commits"].as_array().into_iter().flatten() {
            if let (Some(tok), Some(us)) = (
                c["token"].as_str().and_then(|t| t.parse::<u64>().ok()),
                c["committed_at_us"].as_i64(),
            ) {
                entry.insert(tok, us);
            }
        }
    }
    Ok(())
}
