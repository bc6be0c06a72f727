//! A Kinesis event source mapping on this machine, driving the real `sensor_stream lambda`
//! binary the way AWS Lambda does.
//!
//! * **Instances**: each is a `sensor_stream lambda` process polling its own Lambda runtime API
//!   (`GET …/invocation/next`, `POST …/invocation/{id}/response|error`), served here with
//!   hyper. An instance handles one invocation at a time and keeps its state (open channels)
//!   between them, like a warm Lambda instance. A killed instance fails its invocation
//!   ("Runtime exited") and is replaced by a fresh one (a cold start).
//! * **The mapping**: shards in lineage order (a child after its parents are processed to
//!   their end); per shard, `parallelization_factor` lanes by a hash of the partition key
//!   (MD5-like, not ours: the handler must not depend on it); per lane, batches of
//!   `batch_size` in order. A batch's outcome: success moves past it; `batchItemFailures`
//!   retries from the named record; an error retries the batch, or with `bisect` splits it in
//!   two; after `max_retries` a batch is given to the on-failure destination (kept in
//!   `discarded`) and skipped.
//! * **Faults**: `redeliver_every` gives every n-th successful batch again (a lost
//!   checkpoint); `kill` SIGKILLs the instance of chosen invocations after a delay (or as it
//!   answers, when it answers sooner: the answer is lost);
//!   `poison` kills the instance of any batch of more than one record holding that sequence
//!   number (a record that crashes the runtime, isolated by bisection).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::convert::Infallible;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_kinesis::types::ShardIteratorType;
use base64::Engine as _;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use tokio::sync::{mpsc, oneshot};

/// How an invocation ended.
#[derive(Debug)]
pub enum Outcome {
    /// The handler's answer (JSON).
    Response(serde_json::Value),
    /// The handler reported an error.
    Error(String),
    /// The instance died (SIGKILL, crash) before answering.
    Died,
}

type Pending = (String, String, oneshot::Sender<Outcome>);

/// The runtime API of one instance.
struct RuntimeApi {
    next: tokio::sync::Mutex<mpsc::Receiver<Pending>>,
    waiting: Mutex<HashMap<String, oneshot::Sender<Outcome>>>,
}

/// The process of an instance: plain, or under the hostile suite's limits (measured).
enum Process {
    Plain(Child),
    Capped(Option<Box<snowpipe_hostile::Running>>),
}

impl Process {
    /// SIGKILLs and reaps it (a capped one keeps its measurement for [`Instance::finish`]).
    fn kill(&mut self) {
        match self {
            Process::Plain(c) => {
                let _ = c.kill(); // SIGKILL
                let _ = c.wait();
            }
            Process::Capped(r) => {
                if let Some(r) = r.take() {
                    let _ = r.stop(snowpipe_hostile::Signal::Kill);
                }
            }
        }
    }

    fn has_exited(&mut self) -> bool {
        match self {
            Process::Plain(c) => matches!(c.try_wait(), Ok(Some(_))),
            Process::Capped(r) => r.as_mut().is_none_or(|r| r.has_exited()),
        }
    }
}

/// One warm `sensor_stream lambda` process.
pub struct Instance {
    child: Process,
    queue: mpsc::Sender<Pending>,
    /// When the process was spawned, until its first invocation is answered.
    cold_since: Option<Instant>,
}

impl Instance {
    /// Starts an instance: `env` holds the function's settings.
    pub async fn start(bin: &PathBuf, env: &[(String, String)]) -> Instance {
        Self::start_with(bin, env, |mut cmd| {
            Process::Plain(cmd.spawn().expect("spawn sensor_stream lambda"))
        })
        .await
    }

    /// An instance under the hostile suite's `limits` (its stdout and stderr kept): its peak
    /// RSS and CPU come from [`Instance::finish`].
    pub async fn start_capped(
        bin: &PathBuf,
        env: &[(String, String)],
        limits: &snowpipe_hostile::Limits,
    ) -> Instance {
        Self::start_with(bin, env, |cmd| {
            Process::Capped(Some(Box::new(
                snowpipe_hostile::spawn(cmd, limits).expect("spawn sensor_stream lambda"),
            )))
        })
        .await
    }

    /// Stops the instance (SIGTERM) and returns how its whole life went; `None` when it was
    /// not started capped.
    pub fn finish(mut self) -> Option<snowpipe_hostile::Outcome> {
        match &mut self.child {
            Process::Capped(r) => r
                .take()
                .and_then(|r| r.stop(snowpipe_hostile::Signal::Term).ok()),
            Process::Plain(_) => None,
        }
    }

    async fn start_with(
        bin: &PathBuf,
        env: &[(String, String)],
        spawn: impl FnOnce(Command) -> Process,
    ) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (tx, rx) = mpsc::channel(1);
        let api = Arc::new(RuntimeApi {
            next: tokio::sync::Mutex::new(rx),
            waiting: Mutex::new(HashMap::new()),
        });
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let api = api.clone();
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req| serve(api.clone(), req));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        let mut cmd = Command::new(bin);
        cmd.arg("lambda")
            .env("AWS_LAMBDA_RUNTIME_API", format!("127.0.0.1:{port}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", "sensor-stream")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(if std::env::var_os("ESM_VERBOSE").is_some() {
                Stdio::inherit()
            } else {
                Stdio::null()
            });
        for (k, v) in env {
            cmd.env(k, v);
        }
        Instance {
            child: spawn(cmd),
            queue: tx,
            cold_since: Some(Instant::now()),
        }
    }

    /// Gives the instance one event; kills it after `kill_after` when set.
    pub async fn invoke(
        &mut self,
        event: &serde_json::Value,
        kill_after: Option<Duration>,
    ) -> Outcome {
        self.invoke_raw(event.to_string(), kill_after).await
    }

    /// Gives the instance one event body as it is (bytes Lambda would deliver, valid JSON
    /// or not); kills it after `kill_after` when set.
    pub async fn invoke_raw(&mut self, body: String, kill_after: Option<Duration>) -> Outcome {
        let id = format!("req-{}", uuid::Uuid::new_v4());
        let (tx, mut rx) = oneshot::channel();
        if self.queue.send((id, body, tx)).await.is_err() {
            return Outcome::Died;
        }
        let deadline = Instant::now() + Duration::from_secs(120);
        let killer = async {
            match kill_after {
                Some(d) => tokio::time::sleep(d).await,
                None => std::future::pending().await,
            }
        };
        tokio::pin!(killer);
        loop {
            tokio::select! {
                biased;
                _ = &mut killer => {
                    self.child.kill();
                    return Outcome::Died;
                }
                outcome = &mut rx => {
                    if kill_after.is_some() {
                        // The kill was due during this invocation and it answered first: the
                        // instance dies before its answer reaches Lambda (it wrote its batch,
                        // which comes again), so every chosen invocation is killed.
                        self.child.kill();
                        return Outcome::Died;
                    }
                    return outcome.unwrap_or(Outcome::Died);
                }
                _ = tokio::time::sleep(Duration::from_millis(20)) => {
                    if self.child.has_exited() || Instant::now() > deadline {
                        return Outcome::Died;
                    }
                }
            }
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        self.child.kill();
    }
}

async fn serve(
    api: Arc<RuntimeApi>,
    req: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let ok = |status: u16, body: String| {
        Ok(Response::builder()
            .status(status)
            .body(Full::new(Bytes::from(body)))
            .unwrap())
    };
    if path.ends_with("/runtime/invocation/next") {
        let Some((id, body, tx)) = api.next.lock().await.recv().await else {
            return ok(500, "shutting down".into());
        };
        api.waiting.lock().unwrap().insert(id.clone(), tx);
        let deadline = chrono::Utc::now().timestamp_millis() + 60_000;
        return Ok(Response::builder()
            .status(200)
            .header("Lambda-Runtime-Aws-Request-Id", id)
            .header("Lambda-Runtime-Deadline-Ms", deadline.to_string())
            .header(
                "Lambda-Runtime-Invoked-Function-Arn",
                "arn:aws:lambda:us-east-1:123456789012:function:sensor-stream",
            )
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .unwrap());
    }
    let parts: Vec<&str> = path.split('/').collect();
    // /2018-06-01/runtime/invocation/{id}/response|error
    if parts.len() == 6 && parts[3] == "invocation" {
        let id = parts[4].to_owned();
        let kind = parts[5].to_owned();
        let body = req
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body).into_owned();
        if let Some(tx) = api.waiting.lock().unwrap().remove(&id) {
            let _ = tx.send(if kind == "response" {
                Outcome::Response(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
            } else {
                Outcome::Error(text)
            });
        }
        return ok(202, String::new());
    }
    // init/error and anything else: accepted.
    ok(202, String::new())
}

/// The event source mapping's settings and faults.
#[derive(Debug, Clone)]
pub struct Mapping {
    pub stream: String,
    pub batch_size: usize,
    pub parallelization_factor: usize,
    pub bisect: bool,
    pub max_retries: u32,
    pub redeliver_every: Option<usize>,
    /// Invocation numbers (from 1) whose instance is SIGKILLed, and after how long.
    pub kill: BTreeMap<usize, Duration>,
    pub poison: Option<String>,
}

/// What the mapping did.
#[derive(Debug, Default)]
pub struct Tally {
    pub invocations: AtomicUsize,
    pub retries: AtomicUsize,
    pub redeliveries: AtomicUsize,
    pub kills: AtomicUsize,
    pub bisections: AtomicUsize,
    pub discarded: Mutex<Vec<String>>,
    pub cold_starts: AtomicUsize,
    /// Answered invocations: (spawn → answer of an instance's first, as Lambda bills a cold
    /// start) or (event → answer of a warm one), in ms.
    pub cold_ms: Mutex<Vec<u64>>,
    pub warm_ms: Mutex<Vec<u64>>,
}

impl Tally {
    /// `cold starts: n, median … ms; warm invocations: n, median … ms`.
    pub fn timings(&self) -> String {
        let median = |v: &Mutex<Vec<u64>>| {
            let mut v = v.lock().unwrap().clone();
            v.sort_unstable();
            (v.len(), v.get(v.len() / 2).copied().unwrap_or(0))
        };
        let (cold, warm) = (median(&self.cold_ms), median(&self.warm_ms));
        format!(
            "cold invocations (spawn → answer): {}, median {} ms; warm invocations: {}, median {} ms",
            cold.0, cold.1, warm.0, warm.1
        )
    }
}

/// A pool of instances (`size` at most at once), replaced when they die.
pub struct Pool {
    bin: PathBuf,
    env: Vec<(String, String)>,
    free: tokio::sync::Mutex<Vec<Instance>>,
    permits: tokio::sync::Semaphore,
}

impl Pool {
    pub fn new(bin: PathBuf, env: Vec<(String, String)>, size: usize) -> Arc<Pool> {
        Arc::new(Pool {
            bin,
            env,
            free: tokio::sync::Mutex::new(Vec::new()),
            permits: tokio::sync::Semaphore::new(size),
        })
    }
}

fn lane_of(key: &str, lanes: usize) -> usize {
    // Not the handler's hash: FNV-1a.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x100000001b3);
    }
    (h % lanes as u64) as usize
}

/// A record as the mapping holds it.
#[derive(Debug, Clone)]
pub struct Rec {
    pub shard: String,
    pub seq: String,
    pub key: String,
    pub data: Vec<u8>,
    pub arrival: f64,
}

fn event(stream: &str, batch: &[Rec]) -> serde_json::Value {
    let records: Vec<serde_json::Value> = batch
        .iter()
        .map(|r| {
            serde_json::json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.key,
                    "sequenceNumber": r.seq,
                    "data": base64::engine::general_purpose::STANDARD.encode(&r.data),
                    "approximateArrivalTimestamp": r.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("{}:{}", r.shard, r.seq),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/sensor-stream",
                "awsRegion": "us-east-1",
                "eventSourceARN": format!("arn:aws:kinesis:us-east-1:123456789012:stream/{stream}"),
            })
        })
        .collect();
    serde_json::json!({ "Records": records })
}

/// Runs one batch to its end (success, or given to the on-failure destination).
async fn run_batch(m: &Mapping, pool: &Arc<Pool>, tally: &Arc<Tally>, batch: Vec<Rec>) {
    let mut queue: VecDeque<(Vec<Rec>, u32)> = VecDeque::from([(batch, 0)]);
    while let Some((batch, tries)) = queue.pop_front() {
        if batch.is_empty() {
            continue;
        }
        let permit = pool.permits.acquire().await.unwrap();
        let instance = pool.free.lock().await.pop();
        let mut instance = match instance {
            Some(i) => i,
            None => {
                tally.cold_starts.fetch_add(1, Ordering::Relaxed);
                Instance::start(&pool.bin, &pool.env).await
            }
        };
        let n = tally.invocations.fetch_add(1, Ordering::Relaxed) + 1;
        let poisoned = batch.len() > 1
            && m.poison
                .as_ref()
                .is_some_and(|p| batch.iter().any(|r| &r.seq == p));
        let kill = if poisoned {
            Some(Duration::from_millis(30))
        } else {
            m.kill.get(&n).copied()
        };
        let sent = Instant::now();
        let outcome = instance.invoke(&event(&m.stream, &batch), kill).await;
        let died = matches!(outcome, Outcome::Died);
        if matches!(outcome, Outcome::Response(_)) {
            let (list, since) = match instance.cold_since.take() {
                Some(spawned) => (&tally.cold_ms, spawned),
                None => (&tally.warm_ms, sent),
            };
            list.lock()
                .unwrap()
                .push(since.elapsed().as_millis() as u64);
        }
        instance.cold_since = None;
        if died {
            tally.kills.fetch_add(1, Ordering::Relaxed);
        } else {
            pool.free.lock().await.push(instance);
        }
        drop(permit);
        let failed_at: Option<usize> = match &outcome {
            Outcome::Response(v) => v["batchItemFailures"]
                .as_array()
                .and_then(|f| f.first())
                .and_then(|f| f["itemIdentifier"].as_str())
                .map(|id| {
                    batch
                        .iter()
                        .position(|r| r.seq == id)
                        .expect("a failure names a record of the batch")
                }),
            _ => None,
        };
        match outcome {
            Outcome::Response(_) if failed_at.is_none() => {
                if m.redeliver_every.is_some_and(|k| n % k == 0) && tries == 0 {
                    tally.redeliveries.fetch_add(1, Ordering::Relaxed);
                    queue.push_front((batch, 1));
                }
            }
            Outcome::Response(_) => {
                let from = failed_at.unwrap();
                tally.retries.fetch_add(1, Ordering::Relaxed);
                queue.push_front((batch[from..].to_vec(), tries + 1));
            }
            Outcome::Error(_) | Outcome::Died => {
                if tries >= m.max_retries {
                    tally
                        .discarded
                        .lock()
                        .unwrap()
                        .extend(batch.iter().map(|r| r.seq.clone()));
                } else if m.bisect && batch.len() > 1 {
                    tally.bisections.fetch_add(1, Ordering::Relaxed);
                    let (a, b) = batch.split_at(batch.len() / 2);
                    queue.push_front((b.to_vec(), tries + 1));
                    queue.push_front((a.to_vec(), tries + 1));
                } else {
                    tally.retries.fetch_add(1, Ordering::Relaxed);
                    queue.push_front((batch, tries + 1));
                }
            }
        }
    }
}

/// Processes the records of one shard read from `after`; returns the last one read and
/// whether the shard has ended.
async fn process_shard(
    m: &Mapping,
    kinesis: &aws_sdk_kinesis::Client,
    pool: &Arc<Pool>,
    tally: &Arc<Tally>,
    shard: &str,
    after: Option<&str>,
) -> (Option<String>, bool) {
    let mut req = kinesis
        .get_shard_iterator()
        .stream_name(&m.stream)
        .shard_id(shard);
    req = match after {
        Some(s) => req
            .shard_iterator_type(ShardIteratorType::AfterSequenceNumber)
            .starting_sequence_number(s),
        None => req.shard_iterator_type(ShardIteratorType::TrimHorizon),
    };
    let it = req
        .send()
        .await
        .unwrap()
        .shard_iterator()
        .unwrap()
        .to_owned();
    let page = kinesis
        .get_records()
        .shard_iterator(it)
        .limit(10_000)
        .send()
        .await
        .unwrap();
    // A closed shard read to its end gives no next iterator.
    let ended = page.next_shard_iterator().is_none();
    let records: Vec<Rec> = page
        .records()
        .iter()
        .map(|r| Rec {
            shard: shard.to_owned(),
            seq: r.sequence_number().to_owned(),
            key: r.partition_key().unwrap_or_default().to_owned(),
            data: r.data().as_ref().to_vec(),
            arrival: r
                .approximate_arrival_timestamp()
                .map_or(0.0, |t| t.as_secs_f64()),
        })
        .collect();
    let last = records
        .last()
        .map(|r| r.seq.clone())
        .or(after.map(str::to_owned));
    let mut lanes: Vec<Vec<Rec>> = vec![Vec::new(); m.parallelization_factor];
    for r in records {
        lanes[lane_of(&r.key, m.parallelization_factor)].push(r);
    }
    let runs = lanes.into_iter().map(|lane| async move {
        for batch in lane.chunks(m.batch_size) {
            run_batch(m, pool, tally, batch.to_vec()).await;
        }
    });
    futures_util::future::join_all(runs).await;
    (last, ended)
}

/// Runs the mapping until `done()` says the feed is over and a full pass finds nothing new.
pub async fn run(
    m: &Mapping,
    kinesis: &aws_sdk_kinesis::Client,
    pool: &Arc<Pool>,
    tally: &Arc<Tally>,
    done: impl Fn() -> bool,
) {
    let mut checkpoint: BTreeMap<String, Option<String>> = BTreeMap::new();
    let mut finished: BTreeSet<String> = BTreeSet::new();
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        assert!(
            Instant::now() < deadline,
            "the mapping did not finish in 300 s"
        );
        let feed_over = done();
        let listed = kinesis
            .list_shards()
            .stream_name(&m.stream)
            .send()
            .await
            .unwrap();
        let known: BTreeSet<String> = listed
            .shards()
            .iter()
            .map(|s| s.shard_id().to_owned())
            .collect();
        let ready: Vec<String> = listed
            .shards()
            .iter()
            .filter(|s| !finished.contains(s.shard_id()))
            .filter(|s| {
                [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                    .into_iter()
                    .flatten()
                    .all(|p| finished.contains(p) || !known.contains(p))
            })
            .map(|s| s.shard_id().to_owned())
            .collect();
        let passes = ready.iter().map(|shard| {
            let after = checkpoint.get(shard).cloned().flatten();
            async move {
                let (last, ended) =
                    process_shard(m, kinesis, pool, tally, shard, after.as_deref()).await;
                let moved = last != after;
                (shard.clone(), last, ended, moved)
            }
        });
        let mut progressed = false;
        for (shard, last, ended, moved) in futures_util::future::join_all(passes).await {
            progressed |= moved || ended;
            checkpoint.insert(shard.clone(), last);
            if ended {
                finished.insert(shard);
            }
        }
        if feed_over && !progressed {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
