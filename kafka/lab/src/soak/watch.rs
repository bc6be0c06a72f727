//! What the soak measures while it runs, from outside the sinks:
//!
//! * each partition's committed offset token (the SDK's bulk channel status, straight to the
//!   emulator, not through the proxy), four times a second: a message's latency is from its
//!   send to the first poll whose token covers its offset, and a **stall** is a commit flatline
//!   while the partition has messages past the token, from the later of the last commit and
//!   the oldest such message's send to the commit that ends it (longer than [`STALL_MIN`]);
//! * each process's RSS (`VmRSS`) and CPU (utime + stime, `/proc/PID/stat`) every 5 s, the last
//!   reading of a process kept when it dies;
//! * each instance's `/metrics` every 2 s: the partitions its `snowpipe_kafka_partition_stalled`
//!   gauge shows stalled, as episodes (first and last scrape seen).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use snowpipe_streaming::Pipe;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::bench::measure::proc_stat;
use crate::soak::producer::Produced;

/// A flatline shorter than this is the commit's ordinary cadence (`--max-client-lag`, then the
/// emulator's 1 s commit delay), not a stall.
pub(super) const STALL_MIN: Duration = Duration::from_secs(5);

/// A process the watcher samples; `metrics` for a sink instance.
#[derive(Debug, Clone)]
pub(super) struct Watched {
    /// Its name in the report.
    pub name: String,
    /// Its pid.
    pub pid: u32,
    /// The port of its `/metrics`.
    pub metrics: Option<u16>,
}

/// One process's samples: (seconds since the start, RSS MB, CPU seconds).
pub(super) type Samples = Vec<(f64, f64, f64)>;

/// A stall seen from outside: partition, start and end in seconds since the start.
#[derive(Debug, Clone, Copy, serde::Serialize)]
pub(super) struct Stall {
    /// The partition.
    pub partition: usize,
    /// When the flatline began.
    pub start_s: f64,
    /// When a commit ended it (or the run's end, with `open`).
    pub end_s: f64,
    /// Still flat at the end of the run.
    pub open: bool,
}

/// A stall an instance reported (`snowpipe_kafka_partition_stalled` 1).
#[derive(Debug, Clone, serde::Serialize)]
pub(super) struct Reported {
    /// The instance.
    pub instance: String,
    /// The partition.
    pub partition: String,
    /// First and last scrape that showed it, seconds since the start.
    pub first_s: f64,
    /// See [`first_s`](Self::first_s).
    pub last_s: f64,
}

/// Everything measured.
#[derive(Debug, Default)]
pub(super) struct Measured {
    /// Produce-to-commit latencies: (send time in seconds since the start, milliseconds).
    pub latencies: Vec<(f32, f32)>,
    /// Stalls seen from outside.
    pub stalls: Vec<Stall>,
    /// By process name.
    pub samples: BTreeMap<String, Samples>,
    /// Stalls the instances reported.
    pub reported: Vec<Reported>,
    /// Each partition's last committed token.
    pub committed: Vec<Option<i64>>,
    /// Status polls that failed (the emulator down or unreachable).
    pub failed_polls: u64,
}

/// The watcher's shared state: what it watches and what it measured.
#[derive(Debug, Clone, Default)]
pub(super) struct Watch {
    /// The processes to sample (the soak adds and removes them).
    pub processes: Arc<Mutex<Vec<Watched>>>,
    /// What was measured.
    pub measured: Arc<Mutex<Measured>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

impl Watch {
    /// Starts watching `process`.
    pub(super) fn add(&self, name: &str, pid: u32, metrics: Option<u16>) {
        lock(&self.processes).push(Watched {
            name: name.to_owned(),
            pid,
            metrics,
        });
    }

    /// Stops watching `name` (its samples stay).
    pub(super) fn remove(&self, name: &str) {
        lock(&self.processes).retain(|w| w.name != name);
    }

    /// What was measured (the lock).
    pub(super) fn measured(&self) -> MutexGuard<'_, Measured> {
        lock(&self.measured)
    }
}

/// Per partition: the last token seen and when it last moved.
struct Flat {
    token: Option<i64>,
    moved: Instant,
}

/// Polls until `stop` is set; see the module docs.
pub(super) async fn run(
    watch: Watch,
    pipe: Pipe,
    channels: Vec<String>,
    produced: Produced,
    t0: Instant,
    stop: Arc<std::sync::atomic::AtomicBool>,
) {
    let names: Vec<&str> = channels.iter().map(String::as_str).collect();
    let mut flats: Vec<Flat> = channels
        .iter()
        .map(|_| Flat {
            token: None,
            moved: t0,
        })
        .collect();
    let mut open: BTreeMap<(String, String), Reported> = BTreeMap::new();
    let mut tick = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        match pipe.latest_committed_offset_tokens(&names).await {
            Ok(tokens) => {
                let now = Instant::now();
                let tokens: Vec<Option<i64>> = channels
                    .iter()
                    .map(|c| {
                        tokens
                            .get(c)
                            .cloned()
                            .flatten()
                            .and_then(|t| t.as_u64())
                            .and_then(|t| i64::try_from(t).ok())
                    })
                    .collect();
                commits(&watch, &produced, &mut flats, &tokens, now, t0);
            }
            Err(_) => watch.measured().failed_polls += 1,
        }
        if tick % 8 == 0 {
            scrape(&watch, &mut open, t0).await;
        }
        if tick % 20 == 0 {
            sample(&watch, t0);
        }
        tick += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let mut m = watch.measured();
    m.reported.extend(open.into_values());
    let end = t0.elapsed().as_secs_f64();
    let sent = produced.lock();
    for (p, flat) in flats.iter().enumerate() {
        if let Some(oldest) = sent
            .partitions
            .get(p)
            .and_then(|s| s.pending.values().next())
        {
            let start = flat.moved.max(*oldest).duration_since(t0).as_secs_f64();
            m.stalls.push(Stall {
                partition: p,
                start_s: start,
                end_s: end,
                open: true,
            });
        }
    }
}

/// Takes the polled `tokens`: the latencies of the offsets they cover, and a stall for each
/// partition whose commit moved after a flatline with messages waiting.
fn commits(
    watch: &Watch,
    produced: &Produced,
    flats: &mut [Flat],
    tokens: &[Option<i64>],
    now: Instant,
    t0: Instant,
) {
    let mut sent = produced.lock();
    let mut m = watch.measured();
    m.committed = tokens.to_vec();
    for (p, (flat, token)) in flats.iter_mut().zip(tokens).enumerate() {
        if *token <= flat.token {
            continue;
        }
        let Some(part) = sent.partitions.get_mut(p) else {
            flat.token = *token;
            flat.moved = now;
            continue;
        };
        if let Some(oldest) = part.pending.values().next() {
            let start = flat.moved.max(*oldest);
            if now.duration_since(start) > STALL_MIN {
                m.stalls.push(Stall {
                    partition: p,
                    start_s: start.duration_since(t0).as_secs_f64(),
                    end_s: now.duration_since(t0).as_secs_f64(),
                    open: false,
                });
            }
        }
        let covered = token.map_or(0, |t| t + 1);
        let rest = part.pending.split_off(&covered);
        for sent_at in std::mem::replace(&mut part.pending, rest).into_values() {
            m.latencies.push((
                sent_at.saturating_duration_since(t0).as_secs_f32(),
                (now.duration_since(sent_at).as_secs_f64() * 1e3) as f32,
            ));
        }
        flat.token = *token;
        flat.moved = now;
    }
}

/// One RSS and CPU sample of every watched process.
fn sample(watch: &Watch, t0: Instant) {
    let procs = lock(&watch.processes).clone();
    let t = t0.elapsed().as_secs_f64();
    let mut m = watch.measured();
    for w in procs {
        let Some(rss) = rss_mb(w.pid) else { continue };
        let Ok(stat) = proc_stat(w.pid) else { continue };
        m.samples
            .entry(w.name.clone())
            .or_default()
            .push((t, rss, stat.cpu_s));
    }
}

/// `VmRSS` of `pid` in MB.
pub(super) fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 1024.0)
}

/// Scrapes each instance's `/metrics` for stalled partitions; an episode closes when a scrape
/// no longer shows it.
async fn scrape(watch: &Watch, open: &mut BTreeMap<(String, String), Reported>, t0: Instant) {
    let procs = lock(&watch.processes).clone();
    let t = t0.elapsed().as_secs_f64();
    for w in procs {
        let Some(port) = w.metrics else { continue };
        let Some(body) = get_metrics(port).await else {
            continue;
        };
        let stalled: Vec<String> = body
            .lines()
            .filter(|l| l.starts_with("snowpipe_kafka_partition_stalled{") && l.ends_with(" 1"))
            .filter_map(|l| {
                let p = l.split("partition=\"").nth(1)?;
                Some(p.split('"').next()?.to_owned())
            })
            .collect();
        let mine: Vec<(String, String)> = open
            .keys()
            .filter(|(i, p)| *i == w.name && !stalled.contains(p))
            .cloned()
            .collect();
        for key in mine {
            if let Some(r) = open.remove(&key) {
                watch.measured().reported.push(r);
            }
        }
        for p in stalled {
            open.entry((w.name.clone(), p.clone()))
                .or_insert_with(|| Reported {
                    instance: w.name.clone(),
                    partition: p,
                    first_s: t,
                    last_s: t,
                })
                .last_s = t;
        }
    }
}

/// `GET /metrics` of the instance on `port`, within a second (a stopped process answers
/// nothing).
async fn get_metrics(port: u16) -> Option<String> {
    let fetch = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .ok()?;
        let mut text = String::new();
        s.read_to_string(&mut text).await.ok()?;
        Some(text)
    };
    tokio::time::timeout(Duration::from_secs(1), fetch)
        .await
        .ok()
        .flatten()
}
