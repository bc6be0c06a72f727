//! A subscription the broker refuses while the sink runs stops it: the sink consumes a listed
//! topic and topics its `--topic-regex` matches; then the broker starts answering one of them
//! with `TOPIC_AUTHORIZATION_FAILED` (librdkafka's mock cluster's topic error injection, as
//! an ACL change would). The sink leaves the group and exits non-zero, naming the topic and
//! the error, instead of going on without it.
#![cfg(unix)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rdkafka::config::ClientConfig;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::types::RDKafkaRespErr;
use snowpipe_kafka_lab::demo::Lab;

use crate::common::{bin, deliver, lab, run};

/// The lab's instance command, on `brokers` instead of the lab's cluster.
fn instance(lab: &Lab, brokers: &str, group: &str) -> Command {
    let base = lab.instance_of(&bin(), group);
    let mut cmd = Command::new(base.get_program());
    let mut brokers_next = false;
    for arg in base.get_args() {
        cmd.arg(if brokers_next { brokers.as_ref() } else { arg });
        brokers_next = arg == "--brokers";
    }
    for (k, v) in base.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

async fn produce(producer: &FutureProducer, topic: &str, n: i64) {
    for id in 0..n {
        let v = format!(r#"{{"ID":{id}}}"#);
        deliver(producer, FutureRecord::to(topic).key("k").payload(&v)).await;
    }
}

/// Waits until `n` rows landed (the sink is consuming), at most a minute.
fn wait_for_rows(lab: &Lab, n: usize, child: &mut Child) {
    let until = Instant::now() + Duration::from_secs(60);
    while lab.landed().map_or(0, |r| r.len()) < n {
        assert!(
            child.try_wait().expect("wait").is_none(),
            "the sink ended early"
        );
        assert!(Instant::now() < until, "{n} rows never landed");
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_topic_the_broker_stops_authorizing_stops_the_sink_naming_it() {
    // (which topic becomes refused, the sink's subscription)
    let cases: [(&str, &[&str]); 2] = [
        (
            "orders",
            &["--topic", "orders", "--pipe", "EVENTS-STREAMING"],
        ),
        (
            "clicks.eu",
            &["--topic-regex", "clicks\\..*", "--pipe", "EVENTS-STREAMING"],
        ),
    ];
    for (refused, subscription) in cases {
        let lab = lab(&[]).await;
        let cluster = MockCluster::new(1).expect("mock cluster");
        cluster.create_topic(refused, 1, 1).expect("topic");
        let brokers = cluster.bootstrap_servers();
        let producer: FutureProducer = ClientConfig::new()
            .set("bootstrap.servers", &brokers)
            .create()
            .expect("producer");
        produce(&producer, refused, 3).await;

        let mut cmd = instance(&lab, &brokers, &format!("g-{refused}"));
        cmd.args(subscription)
            .args(["--metadata", "-X", "topic.metadata.refresh.interval.ms=500"]);
        let mut child = cmd.spawn().expect("start the sink");
        wait_for_rows(&lab, 3, &mut child);
        cluster
            .topic_error(
                refused,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
            )
            .expect("inject");
        let started = Instant::now();
        while child.try_wait().expect("wait").is_none() {
            if started.elapsed() > Duration::from_secs(60) {
                let _ = child.kill();
                panic!("{refused}: the sink went on without the topic");
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        let out = child.wait_with_output().expect("output");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{refused}: {stderr}");
        for needle in [
            "Kafka refused the subscription",
            "Topic authorization failed",
            &format!("refused: {refused}: "),
        ] {
            assert!(stderr.contains(needle), "{refused}: {needle:?} in {stderr}");
        }
    }
}

/// `--until-idle` ends with success only when the work is done: a listed topic the broker
/// does not have (a typo) was never read, so the sink reads what it can, then exits non-zero
/// naming the topic; with the name right, the same run exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn until_idle_with_a_topic_that_does_not_exist_exits_non_zero_naming_it() {
    let lab = lab(&[("events", 1)]).await;
    let producer = lab.producer().expect("producer");
    produce(&producer, "events", 3).await;
    let bin = bin();
    for (topics, ok) in [(&["events", "evnets"][..], false), (&["events"][..], true)] {
        let mut cmd = lab.instance_of(&bin, "idle");
        for t in topics {
            cmd.args(["--topic", t, "--pipe", "EVENTS-STREAMING"]);
        }
        let out = run(cmd.args(["--metadata", "--until-idle", "2s"]));
        let stderr = out.stderr;
        assert_eq!(out.success, ok, "{topics:?}: {stderr}");
        if !ok {
            assert!(
                stderr.contains("evnets: Broker: Unknown topic or partition")
                    && stderr.contains("--until-idle: nothing was read from a topic"),
                "{stderr}"
            );
        }
        assert_eq!(lab.landed().expect("table").len(), 3, "{topics:?}");
    }
}
