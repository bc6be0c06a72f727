//! What the harness measures besides time: process CPU and resident memory (from `/proc` and
//! `getrusage`), per-thread CPU, percentiles, and commit-detection latency.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use snowpipe_cli_support::process::{rusage, Who};
use snowpipe_streaming::{Channel, OffsetToken};

pub(crate) fn now_us() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
}

/// User + system CPU seconds of this process.
pub(crate) fn process_cpu_s() -> f64 {
    rusage(Who::Process).cpu_s()
}

/// Peak resident set of this process, in MB.
pub(crate) fn peak_rss_mb() -> f64 {
    rusage(Who::Process).max_rss_bytes as f64 / 1e6
}

/// Current resident set of this process, in MB (Linux `/proc/self/statm`; 0 elsewhere).
pub(crate) fn current_rss_mb() -> f64 {
    let page = snowpipe_cli_support::process::page_size() as f64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<f64>().ok())
        .map_or(0.0, |pages| pages * page / 1e6)
}

/// CPU seconds of this process's live threads named `name` (Linux `/proc`; 0 elsewhere).
pub(crate) fn threads_cpu_s(name: &str) -> f64 {
    let ticks = snowpipe_cli_support::process::clock_ticks_per_second() as f64;
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

/// Commit-detection latency: median and 99th percentile (ms) over `commits` commits; `None`
/// when the server does not list commit times.
pub(crate) struct Latency {
    pub p50: Option<f64>,
    pub p99: Option<f64>,
    pub commits: usize,
}

/// Offset tokens a channel's `watch_committed()` showed, with when (µs).
type Seen = Arc<Mutex<Vec<(u64, i64)>>>;

/// Commit-detection bookkeeping: what the client saw (a watcher per channel), and when the
/// server committed (a sampler of its `GET /`, when it has one).
pub(crate) struct CommitWatch {
    status_url: Option<String>,
    names: Vec<String>,
    watchers: Vec<tokio::task::JoinHandle<()>>,
    seen_by_channel: Vec<(String, Seen)>,
    commits: Commits,
    sampler: Option<tokio::task::JoinHandle<()>>,
}

impl CommitWatch {
    /// Starts watching `channels` (named `names`) and, with a `status_url`, sampling it.
    pub(crate) fn start(
        status_url: Option<String>,
        http: &reqwest::Client,
        names: &[String],
        channels: &[Arc<Channel>],
    ) -> Self {
        let mut watchers = Vec::new();
        let mut seen_by_channel: Vec<(String, Seen)> = Vec::new();
        for (name, ch) in names.iter().zip(channels) {
            let seen: Seen = Arc::default();
            let mut rx = ch.watch_committed();
            let s = Arc::clone(&seen);
            watchers.push(tokio::spawn(async move {
                while rx.changed().await.is_ok() {
                    let tok = rx
                        .borrow_and_update()
                        .as_ref()
                        .and_then(OffsetToken::as_u64);
                    if let Some(tok) = tok {
                        s.lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push((tok, now_us()));
                    }
                }
            }));
            seen_by_channel.push((name.clone(), seen));
        }
        let commits: Commits = Arc::default();
        let sampler = status_url.clone().map(|url| {
            let http = http.clone();
            let names = names.to_vec();
            let commits = Arc::clone(&commits);
            tokio::spawn(async move {
                loop {
                    let _ = sample_commits(&http, &url, &names, &commits).await;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            })
        });
        CommitWatch {
            status_url,
            names: names.to_vec(),
            watchers,
            seen_by_channel,
            commits,
            sampler,
        }
    }

    /// Samples the server once more, then matches each server commit with the first token at
    /// or past it that the client saw.
    pub(crate) async fn latency(&self, http: &reqwest::Client) -> Latency {
        let Some(url) = &self.status_url else {
            return Latency {
                p50: None,
                p99: None,
                commits: 0,
            };
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        let _ = sample_commits(http, url, &self.names, &self.commits).await;
        let commits = self
            .commits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut lat = Vec::new();
        for (name, seen) in &self.seen_by_channel {
            let seen = seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
            for (&tok, &at) in commits.get(name).into_iter().flatten() {
                if let Some(&(_, seen_at)) = seen.iter().find(|(t, _)| *t >= tok) {
                    lat.push((seen_at - at) as f64 / 1000.0);
                }
            }
        }
        lat.sort_by(f64::total_cmp);
        Latency {
            p50: percentile(&lat, 0.5),
            p99: percentile(&lat, 0.99),
            commits: lat.len(),
        }
    }

    /// Stops the sampler and the watchers.
    pub(crate) fn stop(self) {
        if let Some(s) = self.sampler {
            s.abort();
        }
        for w in self.watchers {
            w.abort();
        }
    }
}
