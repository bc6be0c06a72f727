//! The chaos harness: the ski-resort pipeline's processes (`generate`, `stream
//! --until-drained`, `report`) against an in-process emulator whose fault plan is seeded, with
//! the streamer killed by SIGKILL and restarted, its peak RSS sampled from `/proc`.
//!
//! Used by `tests/it/chaos.rs`.

use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use snowpipe_emulator::{Emulator, EmulatorConfig, Endpoint, FaultAction, FaultPlan, FaultRule};

use super::TEST_PUBLIC_KEY;

/// The ski-resort tables, as named in the emulator and the queue.
pub const TABLES: [&str; 3] = ["RESORT_TICKET", "SEASON_PASS", "LIFT_RIDE"];
/// Database and schema of the pipeline's `setup.sql`.
pub const DB_SCHEMA: &str = "STREAMING_INGEST.STREAMING_INGEST";

pub use super::bin::ski_resort_bin;

/// The pipeline's DDL (`ski_resort/sql/setup.sql`).
pub fn setup_sql() -> String {
    snowpipe_apps::ski_resort::embedded::SETUP_SQL.to_string()
}

/// The seed: `CHAOS_SEED` when set, else random. Printed so a failure can be reproduced.
pub fn seed() -> u64 {
    // A fixed seed unless asked otherwise: `cargo test` must pass every time, so CI replays
    // the same schedule; `CHAOS_SEED=random` explores.
    let seed = match std::env::var("CHAOS_SEED").ok().as_deref().map(str::trim) {
        Some("random") => rand::random(),
        Some(s) => s.parse().expect("CHAOS_SEED is a number or `random`"),
        None => 20_261_122,
    };
    eprintln!("chaos: seed {seed} (reproduce with CHAOS_SEED={seed})");
    seed
}

/// The fault plan: every fault the reliability suite promises to survive. Frequent faults are
/// drawn per request from the emulator's generator seeded with the run's seed; rare ones fire
/// on every Nth matching request so that even a short run sees each of them. Bursts of
/// consecutive failures are added at run time by [`FaultBursts`].
///
/// `intensity` scales probabilities up and periods down (1.0 for CI).
pub fn fault_plan(intensity: f64) -> FaultPlan {
    let p = |x: f64| (x * intensity).min(1.0);
    let every = |n: u64| ((n as f64 / intensity).round() as u64).max(2);
    // A rule drawn with probability `x` (scaled), and one firing on every `n`th (scaled) request.
    let sometimes = |at: Endpoint, action, x| FaultRule::new(at, action).probability(p(x));
    let periodic = |at: Endpoint, action, n| FaultRule::new(at, action).every_nth(every(n));
    let retry = |code| FaultAction::bare_string(code, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST");
    let expired = || FaultAction::status(401, "ERR_SCOPED_TOKEN_EXPIRED");
    let (append, status) = (Endpoint::AppendRows, Endpoint::BulkStatus);
    let rules = vec![
        // Throttling and transient server errors on appends (retried inside the client).
        sometimes(
            append,
            FaultAction::status(429, "ERR_TOO_MANY_REQUESTS"),
            0.03,
        ),
        periodic(append, retry(500), 29),
        periodic(append, retry(503), 31),
        // Scoped token rejected as expired (the client refreshes it once and retries).
        periodic(append, expired(), 37),
        sometimes(status, expired(), 0.01),
        // The poller's status calls fail now and then.
        sometimes(status, retry(503), 0.03),
        // Lost acknowledgements: the rows are applied, the response never arrives.
        periodic(append, FaultAction::LostAck, 23),
        // Latency spikes anywhere.
        periodic(Endpoint::Any, FaultAction::Latency { ms: 700 }, 97),
        // 409 on open: another open in progress (retried by the client).
        sometimes(
            Endpoint::OpenChannel,
            FaultAction::status(409, "ERR_OPEN_CHANNEL_IN_PROGRESS"),
            0.3,
        ),
        // Channels invalidated behind the client's back (server-side invalidation). A channel
        // opened by another writer is not a fault to survive but an end for this writer
        // (`Error::OwnershipLost`): tests/it/ownership.rs covers it.
        periodic(append, FaultAction::InvalidateChannel, 41),
    ];
    // Faults drawn by probability may not come up in a short run: each also fires once on a
    // fixed request of its endpoint, so every kind of fault fires in every run.
    let sure: Vec<FaultRule> = rules
        .iter()
        .filter(|r| r.probability.is_some())
        .enumerate()
        .map(|(i, r)| {
            let mut once = FaultRule::new(r.endpoint, r.action.clone())
                .after(2 + i as u64)
                .times(1);
            once.channel.clone_from(&r.channel);
            once
        })
        .collect();
    let mut rules = rules;
    rules.extend(sure);
    FaultPlan { rules }
}

/// Adds bursts of consecutive 429/500/503 answers at seeded moments, until stopped.
pub struct FaultBursts {
    stop: Arc<AtomicBool>,
    task: Option<std::thread::JoinHandle<u64>>,
}

impl FaultBursts {
    /// Starts adding a burst every 1–4 s (seeded).
    pub fn start(emu: &Emulator, seed: u64) -> Self {
        let faults = emu.faults();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let task = std::thread::spawn(move || {
            let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0xB0B5);
            let mut bursts = 0;
            while !flag.load(Ordering::Relaxed) {
                let pause = Duration::from_millis(rng.gen_range(1000..4000));
                let until = Instant::now() + pause;
                while Instant::now() < until && !flag.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(20));
                }
                if flag.load(Ordering::Relaxed) {
                    break;
                }
                let status = [429u16, 500, 503][rng.gen_range(0..3)];
                let len = rng.gen_range(3..8);
                let endpoint = if rng.gen_bool(0.8) {
                    Endpoint::AppendRows
                } else {
                    Endpoint::Any
                };
                faults.add(
                    FaultRule::new(
                        endpoint,
                        FaultAction::bare_string(status, "ERR_GENERAL_EXCEPTION_RETRY_REQUEST"),
                    )
                    .times(len),
                );
                bursts += 1;
            }
            bursts
        });
        Self {
            stop,
            task: Some(task),
        }
    }

    /// Stops adding bursts; returns how many were added.
    pub fn stop(mut self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.task.take().map_or(0, |t| t.join().unwrap_or(0))
    }
}

/// The emulator for a chaos run: the pipeline's catalog, the test key, a short scoped-token
/// lifetime (real expiry and refresh), durable storage in `data_dir`.
pub fn emulator_config(data_dir: &Path, seed: u64, intensity: f64) -> EmulatorConfig {
    let mut cfg = EmulatorConfig::default()
        .with_ddl(setup_sql())
        .with_public_key(TEST_PUBLIC_KEY)
        .with_data_dir(data_dir)
        .with_commit_delay(Duration::from_millis(200))
        .with_faults(fault_plan(intensity));
    cfg.seed = seed;
    cfg.strict_offsets = true;
    cfg.scoped_token_ttl = Duration::from_secs(20);
    cfg
}

/// Environment of the pipeline's processes: the emulator's URL and the test key.
pub fn ski_env(cmd: &mut Command, emu_url: &str) {
    cmd.env("SNOWFLAKE_ACCOUNT", "MYORG-MYACCT")
        .env("SNOWFLAKE_USER", "STREAMING_INGEST")
        .env("SNOWFLAKE_URL", emu_url)
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", super::test_key_file())
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .env_remove("SNOWFLAKE_PRIVATE_KEY_PASSPHRASE")
        .env(
            "RUST_LOG",
            std::env::var("CHAOS_LOG").unwrap_or_else(|_| "error".into()),
        );
}

/// A running `ski_resort` process whose peak RSS is sampled from `/proc/<pid>/status`.
pub struct Sampled {
    pub child: Child,
    peak_kb: Arc<AtomicU64>,
    rss_kb: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    sampler: Option<std::thread::JoinHandle<()>>,
}

/// A `/proc/<pid>/status` field in kB.
pub fn proc_status_kb(pid: u32, field: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

impl Sampled {
    /// Spawns `cmd` and samples its VmHWM and VmRSS every 50 ms.
    pub fn spawn(mut cmd: Command) -> Self {
        let child = cmd.spawn().expect("spawn ski_resort");
        let pid = child.id();
        let peak_kb = Arc::new(AtomicU64::new(0));
        let rss_kb = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let (p, r, d) = (Arc::clone(&peak_kb), Arc::clone(&rss_kb), Arc::clone(&done));
        let sampler = std::thread::spawn(move || {
            while !d.load(Ordering::Relaxed) {
                if let Some(kb) = proc_status_kb(pid, "VmHWM:") {
                    p.fetch_max(kb, Ordering::Relaxed);
                }
                if let Some(kb) = proc_status_kb(pid, "VmRSS:") {
                    r.store(kb, Ordering::Relaxed);
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        Self {
            child,
            peak_kb,
            rss_kb,
            done,
            sampler: Some(sampler),
        }
    }

    /// Peak RSS seen so far, in MiB.
    pub fn peak_mib(&self) -> f64 {
        self.peak_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// Current RSS, in MiB.
    pub fn rss_mib(&self) -> f64 {
        self.rss_kb.load(Ordering::Relaxed) as f64 / 1024.0
    }

    /// SIGKILLs the process and reaps it.
    pub fn kill(mut self) -> f64 {
        let _ = self.child.kill(); // SIGKILL on Unix
        let _ = self.child.wait();
        self.finish()
    }

    /// Waits up to `deadline` for the process to exit; `None` (and a SIGKILL) on timeout.
    pub fn wait_timeout(&mut self, deadline: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + deadline;
        loop {
            if let Some(st) = self.child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() >= until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops sampling; returns the peak RSS in MiB.
    pub fn finish(mut self) -> f64 {
        self.done.store(true, Ordering::Relaxed);
        if let Some(s) = self.sampler.take() {
            let _ = s.join();
        }
        self.peak_mib()
    }
}

impl Drop for Sampled {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// `ski_resort generate` into `queue`, in the background.
pub fn spawn_generate(queue: &Path, events: u64, rate: f64, seed: u64) -> Child {
    spawn_generate_until(queue, ["--events", &events.to_string()], rate, seed)
}

/// `ski_resort generate --duration`, in the background.
pub fn spawn_generate_for(queue: &Path, duration: Duration, rate: f64, seed: u64) -> Child {
    let duration = format!("{}s", duration.as_secs());
    spawn_generate_until(queue, ["--duration", &duration], rate, seed)
}

/// `ski_resort generate` into `queue` with the `limit` flag (`--events` or `--duration`), in
/// the background.
fn spawn_generate_until(queue: &Path, limit: [&str; 2], rate: f64, seed: u64) -> Child {
    Command::new(ski_resort_bin())
        .args(["generate", "--quiet", "--queue"])
        .arg(queue)
        .args(limit)
        .args(["--rate", &rate.to_string()])
        .args(["--seed", &seed.to_string()])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn ski_resort generate")
}

/// Which streamer process the chaos suite kills and restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Streamer {
    /// `ski_resort stream --until-drained`.
    SkiResort,
    /// This test binary re-executed as [`super::sdk_streamer`] (the test named
    /// `chaos::chaos_child_streamer`).
    Sdk,
}

/// The streamer command for `queue`.
pub fn stream_command(streamer: Streamer, queue: &Path, emu_url: &str) -> Command {
    let mut cmd = match streamer {
        Streamer::SkiResort => {
            let mut cmd = Command::new(ski_resort_bin());
            cmd.args(["stream", "--until-drained", "--queue"])
                .arg(queue);
            cmd
        }
        Streamer::Sdk => {
            let mut cmd = Command::new(std::env::current_exe().unwrap());
            cmd.args([
                "--ignored",
                "--exact",
                "chaos::chaos_child_streamer",
                "--nocapture",
                "--test-threads=1",
                "--quiet",
            ])
            .env("CHAOS_CHILD_QUEUE", queue);
            cmd
        }
    };
    cmd.stdout(Stdio::null()).stderr(Stdio::inherit());
    ski_env(&mut cmd, emu_url);
    cmd
}

/// Per-table counts from the generator's last stdout line.
pub fn generated_counts(out: &str) -> [u64; 3] {
    let line = out
        .lines()
        .rev()
        .find(|l| l.contains("\"generated\""))
        .unwrap_or_else(|| panic!("no generated line in {out:?}"));
    let v: serde_json::Value = serde_json::from_str(line).expect("generated JSON");
    TABLES.map(|t| v["generated"][t].as_u64().unwrap_or(0))
}

/// The last id of each queue table (`sqlite_sequence`), i.e. the offset token of the last row
/// ever enqueued for it.
pub fn last_queue_ids(queue: &Path) -> [Option<u64>; 3] {
    let conn =
        rusqlite::Connection::open_with_flags(queue, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open queue");
    TABLES.map(|t| {
        conn.query_row(
            "SELECT seq FROM sqlite_sequence WHERE name = ?1",
            [format!("q_{}", t.to_lowercase())],
            |r| r.get::<_, i64>(0),
        )
        .ok()
        .map(|v| v as u64)
    })
}

/// Landed rows of `table`: (total rows, distinct TXIDs).
pub fn landed(emu: &Emulator, table: &str) -> (u64, u64) {
    let rows = emu
        .query(&format!(
            r#"SELECT COUNT(*), COUNT(DISTINCT TXID) FROM "{DB_SCHEMA}.{table}""#
        ))
        .expect("query landed rows");
    let n = |i: usize| rows[0][i].as_u64().unwrap_or(0);
    (n(0), n(1))
}

/// Committed offset token per channel: (pipe, channel, token).
pub fn committed_tokens(emu: &Emulator) -> Vec<(String, String, Option<String>)> {
    emu.query("SELECT pipe, channel, committed_offset_token FROM _emulator_channels")
        .expect("query channels")
        .into_iter()
        .map(|r| {
            (
                r[0].as_str().unwrap_or_default().to_owned(),
                r[1].as_str().unwrap_or_default().to_owned(),
                r[2].as_str().map(str::to_owned),
            )
        })
        .collect()
}

/// The rows waiting in a ski-resort queue (all three tables), not yet streamed and deleted.
pub fn queue_waiting(conn: &rusqlite::Connection) -> i64 {
    conn.query_row(
        "SELECT (SELECT COUNT(*) FROM q_resort_ticket) + (SELECT COUNT(*) FROM q_season_pass) \
         + (SELECT COUNT(*) FROM q_lift_ride)",
        [],
        |r| r.get(0),
    )
    .unwrap()
}
