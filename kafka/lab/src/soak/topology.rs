//! The soak's topology: the S3 server and the broker, the emulator in its own process, a
//! fault proxy in front of each service, and the sink instances; and each fault done to them.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use crate::soak::args::SoakArgs;
use snowpipe_cli_support::process::Signal;
use snowpipe_cli_support::server_start::{self, log_tail, Attempt};

use crate::soak::procs::{self, await_log, free_port, log_len, Connection, Proc};
use crate::soak::proxy::{Mode, Proxy};
use crate::soak::schedule::Fault;
use crate::soak::watch::Watch;

/// The soak's topic.
pub(super) const TOPIC: &str = "soak";

/// How long a service has to listen after a start.
const START: Duration = Duration::from_secs(60);

/// Latency the latency faults add to every chunk.
const LATENCY: Duration = Duration::from_millis(200);

/// Everything running.
pub(super) struct Topology {
    bin: PathBuf,
    args: SoakArgs,
    dir: PathBuf,
    s3: Option<(Proc, u16)>,
    broker: Proc,
    broker_port: u16,
    emulator: Proc,
    /// The emulator's own port (the lab's status polls and SQL go there, not through a proxy).
    pub emulator_port: u16,
    /// The proxy in front of the broker (the broker advertises it).
    pub broker_proxy: Proxy,
    emulator_proxy: Proxy,
    /// The key the emulator accepts.
    pub key: PathBuf,
    /// Sink instances by slot (slot 0 is `sink-1`); `None` while one is down.
    sinks: Vec<Option<Proc>>,
    /// Processes started per slot (for the names `sink-2#2`).
    starts: Vec<u32>,
    /// Instances that exited without being told to, by name.
    pub unexpected_exits: Vec<String>,
    watch: Watch,
}

impl Topology {
    /// Starts the services (not the instances).
    ///
    /// # Errors
    /// When one cannot start.
    pub(super) async fn start(
        bin: &Path,
        args: &SoakArgs,
        dir: &Path,
        watch: Watch,
    ) -> Result<Self> {
        let s3 = if args.broker_storage == "s3" {
            Some(start_s3(args, dir).await?)
        } else {
            None
        };
        let (broker, broker_port, broker_proxy) = first_broker(args, dir, s3.as_ref()).await?;
        let key = dir.join("key.p8");
        let pair = snowpipe_emulator::KeyPair::from_seed(args.seed)?;
        snowpipe_emulator::write_private_key(&key, pair.private_key_pem())?;
        let (emulator, emulator_port, emulator_proxy) =
            first_emulator(bin, args, dir, &watch).await?;
        watch.add("broker", broker.pid(), None);
        Ok(Self {
            bin: bin.to_owned(),
            args: args.clone(),
            dir: dir.to_owned(),
            s3,
            broker,
            broker_port,
            emulator,
            emulator_port,
            broker_proxy,
            emulator_proxy,
            key,
            sinks: Vec::new(),
            starts: Vec::new(),
            unexpected_exits: Vec::new(),
            watch,
        })
    }

    /// The lab's connection to the emulator, not through the proxy.
    pub(super) fn direct_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.emulator_port)
    }

    /// Starts the instance of `slot` (0-based) as a new process, and watches it (its metrics
    /// on the port its line names, once it says so).
    ///
    /// # Errors
    /// When it cannot start, or neither names its metrics port nor exits within [`START`].
    pub(super) async fn start_sink(&mut self, slot: usize) -> Result<()> {
        if self.sinks.len() <= slot {
            self.sinks.resize_with(slot + 1, || None);
            self.starts.resize(slot + 1, 0);
        }
        self.starts[slot] += 1;
        let name = format!("sink-{}#{}", slot + 1, self.starts[slot]);
        let c = Connection {
            brokers: format!("127.0.0.1:{}", self.broker_proxy.port),
            url: format!("http://127.0.0.1:{}", self.emulator_proxy.port),
            key: self.key.clone(),
        };
        let cmd = procs::sink(&self.bin, &c, TOPIC, &self.args.stall_after);
        let log = self.dir.join(format!("sink-{}.log", slot + 1));
        let from = log_len(&log);
        let mut p = Proc::spawn(&name, cmd, &log)?;
        // None: it exited first; `revive` notes it and starts it again.
        let port = procs::metrics_port(&mut p, &log, from, START).await?;
        self.watch.add(&name, p.pid(), port);
        self.sinks[slot] = Some(p);
        Ok(())
    }

    /// Stops the instance of `slot` with SIGTERM (a hand-over); whether it exited cleanly.
    pub(super) async fn stop_sink(&mut self, slot: usize) -> bool {
        let Some(mut p) = self.sinks.get_mut(slot).and_then(Option::take) else {
            return true;
        };
        let status = p.stop(Duration::from_secs(60)).await;
        self.watch.remove(&p.name);
        status.is_some_and(|s| s.success())
    }

    /// Stops every instance; the names of those that did not exit cleanly.
    pub(super) async fn stop_sinks(&mut self) -> Vec<String> {
        let mut bad = Vec::new();
        for slot in 0..self.sinks.len() {
            let name = self.sinks[slot].as_ref().map(|p| p.name.clone());
            if !self.stop_sink(slot).await {
                bad.extend(name);
            }
        }
        bad
    }

    /// Restarts any instance that exited on its own, noting it.
    ///
    /// # Errors
    /// When a restart fails.
    pub(super) async fn revive(&mut self) -> Result<()> {
        for slot in 0..self.sinks.len() {
            let dead = self.sinks[slot].as_mut().is_some_and(|p| !p.running());
            if dead {
                let name = self.sinks[slot]
                    .as_ref()
                    .map(|p| p.name.clone())
                    .unwrap_or_default();
                self.unexpected_exits.push(name.clone());
                self.watch.remove(&name);
                self.start_sink(slot).await?;
            }
        }
        Ok(())
    }

    /// Starts `fault`.
    ///
    /// # Errors
    /// When a process cannot be started.
    pub(super) async fn begin(&mut self, fault: Fault) -> Result<()> {
        match fault {
            Fault::Stop => self.signal(0, Signal::Stop),
            Fault::Kill => {
                if let Some(mut p) = self.sinks.get_mut(1).and_then(Option::take) {
                    p.kill();
                    self.watch.remove(&p.name);
                }
            }
            Fault::ScaleOut => {
                let n = self.args.instances;
                self.start_sink(n).await?;
                self.start_sink(n + 1).await?;
            }
            Fault::BrokerLatency => self.broker_proxy.set(Mode::Latency(LATENCY)),
            Fault::BrokerReset => self.broker_proxy.set(Mode::Reset),
            Fault::BrokerBlackHole => self.broker_proxy.set(Mode::BlackHole),
            Fault::EmulatorLatency => self.emulator_proxy.set(Mode::Latency(LATENCY)),
            Fault::EmulatorReset => self.emulator_proxy.set(Mode::Reset),
            Fault::EmulatorBlackHole => self.emulator_proxy.set(Mode::BlackHole),
            Fault::EmulatorRestart => {
                self.emulator.stop(Duration::from_secs(30)).await;
                let started = start_emulator(
                    &self.bin,
                    &self.args,
                    &self.dir,
                    self.emulator_port,
                    &self.watch,
                )
                .await?;
                self.emulator = restarted("emulator", started)?;
            }
            Fault::BrokerRestart => {
                self.broker.stop(Duration::from_secs(30)).await;
                let started = start_broker(
                    &self.args,
                    &self.dir,
                    self.broker_port,
                    self.broker_proxy.port,
                    self.s3.as_ref(),
                )
                .await?;
                self.broker = restarted("broker", started)?;
                self.watch.remove("broker");
                self.watch.add("broker", self.broker.pid(), None);
            }
        }
        Ok(())
    }

    /// Ends `fault` (the restarts ended when they were done).
    ///
    /// # Errors
    /// When a process cannot be started.
    pub(super) async fn end(&mut self, fault: Fault) -> Result<()> {
        match fault {
            Fault::Stop => self.signal(0, Signal::Cont),
            Fault::Kill => self.start_sink(1).await?,
            Fault::ScaleOut => {
                let n = self.args.instances;
                for slot in [n + 1, n] {
                    if !self.stop_sink(slot).await {
                        self.unexpected_exits
                            .push(format!("sink-{} (SIGTERM)", slot + 1));
                    }
                }
            }
            Fault::BrokerLatency | Fault::BrokerReset | Fault::BrokerBlackHole => {
                self.broker_proxy.set(Mode::Pass);
            }
            Fault::EmulatorLatency | Fault::EmulatorReset | Fault::EmulatorBlackHole => {
                self.emulator_proxy.set(Mode::Pass);
            }
            Fault::EmulatorRestart | Fault::BrokerRestart => {}
        }
        Ok(())
    }

    fn signal(&self, slot: usize, signal: Signal) {
        if let Some(Some(p)) = self.sinks.get(slot) {
            p.signal(signal);
        }
    }

    /// Whether a fault ends when it is done rather than after its hold.
    pub(super) fn instant(fault: Fault) -> bool {
        matches!(fault, Fault::EmulatorRestart | Fault::BrokerRestart)
    }
}

/// The S3 server (moto) on a port chosen free: ready when it says it runs on that port; a
/// start that exits first (the port was taken meanwhile) moves to another, at most
/// [`TRIES`](server_start::TRIES).
async fn start_s3(args: &SoakArgs, dir: &Path) -> Result<(Proc, u16)> {
    let log = dir.join("s3.log");
    let s3 = server_start::start_on_async("s3", &mut free_port, |port| {
        let log = &log;
        async move {
            let from = log_len(log);
            let mut p = Proc::spawn("s3", procs::moto(&args.moto, port), log)?;
            let running = format!("Running on http://127.0.0.1:{port}");
            let ready = await_log(&mut p, log, from, &[&running], START).await?;
            anyhow::Ok(attempt(ready.then_some((p, port)), log, from))
        }
    })
    .await?;
    create_bucket(s3.1).await?;
    Ok(s3)
}

/// The broker's first start, on a port chosen free behind a new fault proxy; a start that
/// loses its port moves (with a new proxy) to another, at most
/// [`TRIES`](server_start::TRIES).
async fn first_broker(
    args: &SoakArgs,
    dir: &Path,
    s3: Option<&(Proc, u16)>,
) -> Result<(Proc, u16, Proxy)> {
    server_start::start_on_async("broker", &mut free_port, |port| async move {
        let proxy = Proxy::start(0, format!("127.0.0.1:{port}")).await?;
        let started = start_broker(args, dir, port, proxy.port, s3).await?;
        Ok(started.map(|p| (p, port, proxy)))
    })
    .await
}

/// The emulator's first start, as [`first_broker`]'s.
async fn first_emulator(
    bin: &Path,
    args: &SoakArgs,
    dir: &Path,
    watch: &Watch,
) -> Result<(Proc, u16, Proxy)> {
    server_start::start_on_async("emulator", &mut free_port, |port| async move {
        let proxy = Proxy::start(0, format!("127.0.0.1:{port}")).await?;
        let started = start_emulator(bin, args, dir, port, watch).await?;
        Ok(started.map(|p| (p, port, proxy)))
    })
    .await
}

/// `Ready(p)` when a start is ready, else `Lost` with its log's tail (from byte `from`).
fn attempt<T>(ready: Option<T>, log: &Path, from: u64) -> Attempt<T> {
    match ready {
        Some(p) => Attempt::Ready(p),
        None => Attempt::Lost(log_tail(log, from, 5)),
    }
}

/// A restart's process, or the error naming `what` and what it said last.
fn restarted(what: &str, attempt: Attempt<Proc>) -> Result<Proc> {
    match attempt {
        Attempt::Ready(p) => Ok(p),
        Attempt::Lost(tail) => Err(anyhow::anyhow!(
            "the {what} did not start again on its port: {tail}"
        )),
    }
}

/// Starts the emulator's process on `port`, its data in `dir`: ready when it says it listens
/// there; `Lost` when it exits first (the port was taken).
async fn start_emulator(
    bin: &Path,
    args: &SoakArgs,
    dir: &Path,
    port: u16,
    watch: &Watch,
) -> Result<Attempt<Proc>> {
    let cmd = procs::emulator(bin, port, dir, args.seed, args.token_ttl);
    let log = dir.join("emulator.log");
    let from = log_len(&log);
    let mut p = Proc::spawn("emulator", cmd, &log)?;
    let listening = format!("listening on http://127.0.0.1:{port}");
    if !await_log(&mut p, &log, from, &[&listening], START).await? {
        return Ok(attempt(None, &log, from));
    }
    watch.remove("emulator");
    watch.add("emulator", p.pid(), None);
    Ok(Attempt::Ready(p))
}

/// Starts tansu on `port`, advertising the proxy's `advertised` port: ready when it says it
/// listens there and is ready (it says "listening on" before it binds); `Lost` when it exits
/// first (the port was taken).
async fn start_broker(
    args: &SoakArgs,
    dir: &Path,
    port: u16,
    advertised: u16,
    s3: Option<&(Proc, u16)>,
) -> Result<Attempt<Proc>> {
    let cmd = procs::tansu(&args.tansu, port, advertised, s3.map(|s| s.1));
    let log = dir.join("broker.log");
    let from = log_len(&log);
    let mut p = Proc::spawn("broker", cmd, &log)?;
    let listening = format!("listening on: tcp://127.0.0.1:{port}");
    let ready = await_log(&mut p, &log, from, &[&listening, "ready in"], START).await?;
    Ok(attempt(ready.then_some(p), &log, from))
}

/// Creates the bucket `tansu` in the S3 server on `port`.
async fn create_bucket(port: u16) -> Result<()> {
    let started = Instant::now();
    loop {
        let put = reqwest::Client::new()
            .put(format!("http://127.0.0.1:{port}/tansu"))
            .send()
            .await;
        match put {
            Ok(r) if r.status().is_success() => return Ok(()),
            _ if started.elapsed() < START => tokio::time::sleep(Duration::from_millis(200)).await,
            other => {
                return other
                    .map(|_| ())
                    .context("cannot create the S3 bucket tansu");
            }
        }
    }
}
