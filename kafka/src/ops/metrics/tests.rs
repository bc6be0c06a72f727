/// Issue 56: a client that opens the metrics port and never finishes its request is cut
/// off after the header timeout (before, hyper held it for ever: without a timer its
/// header timeout is off), and the port answers others meanwhile.
#[tokio::test]
async fn a_request_that_never_ends_is_cut_off() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let (addr, task) = serve(
        "127.0.0.1:0".parse().unwrap(),
        handle,
        Arc::new(Health::default()),
    )
    .await
    .unwrap();
    let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let mut other = tokio::net::TcpStream::connect(addr).await.unwrap();
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let mut answer = [0u8; 64];
    let n = other.read(&mut answer).await.unwrap();
    assert!(answer[..n].starts_with(b"HTTP/1.1 "), "{:?}", &answer[..n]);
    let mut rest = Vec::new();
    // Generous: the bound only catches a server that never closes it (the bug), so a loaded
    // machine cannot fail it; the lower bound shows the timeout, not something else, closed it.
    tokio::time::timeout(Duration::from_secs(60), slow.read_to_end(&mut rest))
        .await
        .expect("the server closes a request head that never ends")
        .ok();
    let waited = started.elapsed();
    assert!(
        waited >= HEADER_TIMEOUT - Duration::from_millis(500),
        "{waited:?}"
    );
    task.abort();
}

/// Issue 56: topics created by others (a regex subscription) cannot grow the series
/// without bound: past the bounds, topics and partitions are folded into `_other`, each
/// folded topic counted once.
#[test]
fn label_values_are_bounded_and_the_rest_folded() {
    let labels = Labels::default();
    let mut topic_values = HashSet::new();
    let mut partition_values = HashSet::new();
    for t in 0..1_000 {
        let topic = format!("team-{t}");
        topic_values.insert(labels.topic_with(&topic, 10));
        for p in 0..8 {
            partition_values.insert(labels.partition_with(
                &TopicPartition::new(topic.as_str(), p),
                10,
                50,
            ));
        }
    }
    assert_eq!(topic_values.len(), 11, "10 topics and _other");
    assert!(topic_values.contains(FOLDED));
    assert_eq!(
        partition_values.len(),
        51,
        "50 partitions and the folded None"
    );
    assert_eq!(labels.seen().folded.len(), 990, "folded topics counted");
    assert_eq!(
        labels.topic_with("team-3", 10),
        "team-3",
        "a topic keeps its label"
    );
    assert_eq!(
        labels.partition_with(&TopicPartition::new("team-0", 3), 10, 50),
        Some(("team-0".into(), "3".into()))
    );
}
use super::*;
use std::time::Instant;

#[test]
fn readiness_follows_the_group_the_channels_and_the_stop() {
    let h = Health::default();
    h.tick();
    assert_eq!(h.live(), Ok("ok"));
    assert!(h.ready().unwrap_err().contains("first assignment"));
    h.joined();
    h.opening(true);
    assert!(h.ready().unwrap_err().contains("opening"));
    h.opening(false);
    assert_eq!(h.ready(), Ok("ready"));
    h.stopping();
    assert!(h.ready().unwrap_err().contains("stopping"));
    h.consumer_ended();
    assert!(h.live().unwrap_err().contains("consumer thread"));
}

/// A partition handed to another instance leaves this one's `/metrics` (its lag and its
/// committed offset): over the group (the README's queries), each partition counts once.
/// Held again, it is back. Topic names with the exposition format's escapes are matched.
#[test]
fn a_partition_handed_over_leaves_metrics_until_held_again() {
    let recorder = PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let health = Health::default();
    let odd = "t\"o\\p\nic".to_owned();
    let m = SinkMetrics::new(health.released());
    metrics::with_local_recorder(&recorder, || {
        let lag = |lag| PartitionLag { lag, high: 100 };
        let parts: std::collections::HashMap<TopicPartition, _> = [
            (TopicPartition::new(odd.as_str(), 0), lag(40)),
            (TopicPartition::new(odd.as_str(), 1), lag(7)),
            (TopicPartition::new("t", 0), lag(3)),
        ]
        .into();
        m.lags(&parts);
        PartitionMetrics::new(&TopicPartition::new(odd.as_str(), 0))
            .committed
            .set(99.0);
        m.forget(&TopicPartition::new(odd.as_str(), 0));
    });
    let scrape = || {
        let r = answer("/metrics", &handle, &health);
        let body = r.body;
        body.lines()
            .filter(|l| PARTITION_GAUGES.iter().any(|g| l.starts_with(g)))
            .map(str::to_owned)
            .collect::<Vec<_>>()
    };
    let lines = scrape();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let zeros: Vec<_> = lines
        .iter()
        .filter(|l| l.contains("partition=\"0\""))
        .collect();
    assert_eq!(zeros.len(), 1, "only t/0 of the partitions 0: {lines:?}");
    assert!(zeros[0].contains("topic=\"t\""), "{lines:?}");
    m.hold(&TopicPartition::new(odd.as_str(), 0));
    assert_eq!(
        scrape().len(),
        4,
        "held again: its lag and committed offset are back"
    );
}

/// Round six: 200 clients that each send half a request head, and connect again when the
/// head timeout cuts them, held all 64 slots: `/healthz` answered after 14–18 s, past the
/// Deployment's 5 s liveness timeout. Now a new connection takes the slot of the oldest one
/// still without its head after its grace, and the kernel queues 1,024 connections (tokio's
/// default 128 overflowed: the probe's SYN was dropped and retried a second later), so every
/// probe is answered within a second while the attack goes on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn probes_answer_within_a_second_while_200_slow_clients_hold_connections() {
    use std::sync::atomic::AtomicBool;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let handle = PrometheusBuilder::new().build_recorder().handle();
    let health = Arc::new(Health::default());
    health.tick();
    let (addr, task) = serve("127.0.0.1:0".parse().unwrap(), handle, health)
        .await
        .unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let mut clients = Vec::new();
    for _ in 0..200 {
        let stop = Arc::clone(&stop);
        clients.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let Ok(mut s) = tokio::net::TcpStream::connect(addr).await else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                };
                let _ = s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n").await;
                // Held until the server cuts it (or the test ends), then again.
                let mut sink = [0u8; 64];
                let _ = tokio::time::timeout(Duration::from_secs(10), s.read(&mut sink)).await;
            }
        }));
    }
    // Every slot is taken by now.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let mut waits = Vec::new();
    for _ in 0..4 {
        let started = Instant::now();
        let probe = async {
            let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
            s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
                .await
                .unwrap();
            let mut answer = Vec::new();
            s.read_to_end(&mut answer).await.unwrap();
            answer
        };
        let answer = tokio::time::timeout(Duration::from_secs(10), probe)
            .await
            .expect("the probe is answered");
        waits.push(started.elapsed());
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{answer:?}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    stop.store(true, Ordering::Relaxed);
    task.abort();
    for c in clients {
        c.abort();
    }
    eprintln!("probe answer times under 200 slow clients: {waits:?}");
    assert!(
        waits.iter().all(|w| *w < Duration::from_secs(1)),
        "probe answer times {waits:?}"
    );
}
