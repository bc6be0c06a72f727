//! What an operator's tools see: `/metrics`, `/healthz` and `/readyz` scraped while the sink
//! runs (`--metrics-addr`), and one instance taking hundreds of partitions, then sharing them
//! with a second in a rebalance, every message landing once.
#![cfg(unix)]

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use snowpipe_kafka_lab::demo::Lab;

use crate::common::{bin, lab, produce_per_partition, signal, wait_landed};
use snowpipe_cli_support::process::Signal;

/// `GET path` over HTTP/1.1: (status, body).
pub(crate) fn get(addr: &str, path: &str) -> (u16, String) {
    let mut s = std::net::TcpStream::connect(addr).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )
    .expect("send");
    let mut text = String::new();
    s.read_to_string(&mut text).expect("read");
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_owned();
    (status, body)
}

/// The value of the sample `name{labels…}` in a Prometheus text body (labels in any order).
pub(crate) fn sample(body: &str, name: &str, labels: &[&str]) -> Option<f64> {
    body.lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(name)
                && l[name.len()..].starts_with(['{', ' '])
                && labels.iter().all(|x| l.contains(x))
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

/// Starts an instance whose stderr is read here; returns it and the metrics address it logs.
fn with_metrics(lab: &Lab, topic: &str, group: &'static str, extra: &[&str]) -> (Child, String) {
    let (child, addr, _) = with_metrics_and_log(lab, topic, group, extra);
    (child, addr)
}

/// As [`with_metrics`], also keeping every stderr line after the address.
pub(crate) fn with_metrics_and_log(
    lab: &Lab,
    topic: &str,
    group: &'static str,
    extra: &[&str],
) -> (Child, String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    let mut child = lab
        .instance(&bin(), topic, group)
        .args(["--metrics-addr", "127.0.0.1:0"])
        .args(extra)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the sink");
    let mut lines = BufReader::new(child.stderr.take().expect("stderr")).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("a line before the address")
            .expect("text");
        if let Some(rest) = line.split_once("on http://").map(|(_, r)| r) {
            break rest.trim().to_owned();
        }
    };
    // Pass the rest on (a failing test shows it) so the child never blocks on a full pipe.
    let log = std::sync::Arc::<std::sync::Mutex<Vec<String>>>::default();
    let kept = std::sync::Arc::clone(&log);
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            eprintln!("[{group}] {line}");
            kept.lock().expect("log").push(line);
        }
    });
    (child, addr, log)
}

/// `per_partition` messages on each of `partitions` partitions of `topic`: how many.
async fn produce(lab: &Lab, topic: &str, partitions: i32, per_partition: i64) -> usize {
    produce_per_partition(lab, topic, partitions, per_partition)
        .await
        .len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_health_and_readiness_are_served_while_the_sink_runs() {
    const TOPIC: &str = "scraped";
    let lab = lab(&[(TOPIC, 3)]).await;
    let (mut child, addr) = with_metrics(&lab, TOPIC, "scrape", &[]);
    assert_eq!(get(&addr, "/healthz").0, 200);
    let n = produce(&lab, TOPIC, 3, 50).await;
    wait_landed(&lab, n, Duration::from_secs(60)).await;
    // Committed offsets and rows are reported per partition; the SDK's metrics come too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let body = loop {
        let (status, body) = get(&addr, "/metrics");
        assert_eq!(status, 200);
        let committed = (0..3).all(|p| {
            sample(
                &body,
                "snowpipe_kafka_committed_offset",
                &[&format!("partition=\"{p}\""), "topic=\"scraped\""],
            ) == Some(49.0)
        });
        if committed || Instant::now() > deadline {
            break body;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    for p in 0..3 {
        let part = format!("partition=\"{p}\"");
        assert_eq!(
            sample(&body, "snowpipe_kafka_rows_appended_total", &[&part]),
            Some(50.0),
            "{body}"
        );
        assert_eq!(
            sample(&body, "snowpipe_kafka_committed_offset", &[&part]),
            Some(49.0),
            "{body}"
        );
    }
    assert_eq!(
        sample(&body, "snowpipe_kafka_assigned_partitions", &[]),
        Some(3.0),
        "{body}"
    );
    assert!(
        sample(&body, "snowpipe_kafka_memory_budget_bytes", &[]).is_some(),
        "{body}"
    );
    assert!(
        sample(
            &body,
            "snowpipe_kafka_rebalances_total",
            &["kind=\"assign\""]
        ) >= Some(1.0)
    );
    assert!(
        body.contains("snowpipe_kafka_commit_latency_seconds_bucket"),
        "{body}"
    );
    assert!(
        body.contains("snowpipe_rows_appended_total"),
        "the SDK's own: {body}"
    );
    let (status, ready) = get(&addr, "/readyz");
    assert_eq!((status, ready.trim()), (200, "ready"));
    assert_eq!(get(&addr, "/nothing").0, 404);
    signal(&child, Signal::Term);
    let status = child.wait().expect("wait");
    assert!(status.success(), "{status}");
}

/// One instance takes 512 partitions (channels opened concurrently) and lands a message of
/// each; a second instance joins (an eager rebalance: all 512 handed over, then shared) and
/// every partition lands its next message; both leave cleanly. Each message is in the table
/// once. How long each step took is printed (`snowpipe-kafka-lab bench` measures it too).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn five_hundred_and_twelve_partitions_open_share_and_land_once() {
    const TOPIC: &str = "wide";
    const PARTITIONS: i32 = 512;
    let lab = Lab::start(&[(TOPIC, PARTITIONS)], Duration::from_millis(200))
        .await
        .expect("lab");
    let n = produce(&lab, TOPIC, PARTITIONS, 1).await;
    let t0 = Instant::now();
    let (mut a, addr) = with_metrics(&lab, TOPIC, "wide", &["--max-client-lag", "200ms"]);
    wait_landed(&lab, n, Duration::from_secs(120)).await;
    let first = t0.elapsed();
    assert_eq!(get(&addr, "/readyz").0, 200);
    let t1 = Instant::now();
    let (mut b, _) = with_metrics(&lab, TOPIC, "wide", &["--max-client-lag", "200ms"]);
    // Once b is in the group (the assignment moved), a message more per partition.
    tokio::time::sleep(Duration::from_secs(8)).await;
    let more = produce(&lab, TOPIC, PARTITIONS, 1).await;
    wait_landed(&lab, n + more, Duration::from_secs(120)).await;
    let second = t1.elapsed();
    for c in [&a, &b] {
        signal(c, Signal::Term);
    }
    for c in [&mut a, &mut b] {
        let status = c.wait().expect("wait");
        assert!(status.success(), "{status}");
    }
    let mut landed = lab.landed_offsets().expect("table");
    let all = landed.len();
    landed.sort_unstable();
    landed.dedup();
    assert_eq!(
        (all, landed.len()),
        (n + more, n + more),
        "each message once"
    );
    println!(
        "{PARTITIONS} partitions: one instance landed a row of each {first:?} after it started; \
         with a second instance joining, the next row of each landed {second:?} after it started"
    );
}
