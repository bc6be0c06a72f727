//! The alert rules of `deploy/prometheus/` against the real thing: `promtool check rules` and
//! `promtool test rules` (a firing and a quiet series per alert), then a real Prometheus
//! scraping a running sink while the emulator stops showing commits: the stall alert fires,
//! then resolves when commits resume.
//!
//! Needs `prometheus` and `promtool` (Debian's `prometheus` package, which `.ci/run`
//! installs): skipped without them, except under `CI=true`. The real-Prometheus case runs the
//! rules with the stall alert's `for:` cut from 1m to 5s so that it fits in a test; every
//! other word of the rule is the shipped one.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use snowpipe_cli_support::server_start::{self, log_has, log_tail, wait_ready, Attempt, Readiness};
use snowpipe_emulator::{Endpoint, FaultAction, FaultRule};

use crate::common::{lab, produce_per_partition, signal, wait_landed};
use crate::operations::{get, with_metrics_and_log};
use crate::stalls::within;
use snowpipe_cli_support::process::Signal;

const TOPIC: &str = "alerting";

fn rules_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/prometheus")
}

/// Whether `tool` is on the PATH; without it the test is skipped (failed under `CI=true`).
fn have(tool: &str) -> bool {
    let found = server_start::on_path(tool);
    server_start::require_or_skip(found, tool, "apt-get install prometheus")
}

#[test]
fn the_rules_check_and_their_unit_tests_pass() {
    if !have("promtool") {
        return;
    }
    for args in [
        vec!["check", "rules", "snowpipe-kafka.rules.yml"],
        vec!["test", "rules", "snowpipe-kafka.tests.yml"],
    ] {
        let out = Command::new("promtool")
            .args(&args)
            .current_dir(rules_dir())
            .output()
            .expect("promtool");
        assert!(
            out.status.success(),
            "promtool {args:?}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Starts Prometheus in `dir`, scraping `target` every second with the shipped rules (the
/// stall alert's `for:` cut to 5 s); returns it and its address. Ready when its log says it
/// listens on its port; a start that loses the port moves to another, at most three.
fn prometheus(dir: &Path, target: &str) -> (Child, String) {
    let rules =
        std::fs::read_to_string(rules_dir().join("snowpipe-kafka.rules.yml")).expect("the rules");
    let (head, tail) = rules
        .split_once("- alert: SnowpipeKafkaPartitionStalled")
        .expect("the stall alert");
    let tail = tail.replacen("for: 1m", "for: 5s", 1);
    std::fs::write(
        dir.join("rules.yml"),
        format!("{head}- alert: SnowpipeKafkaPartitionStalled{tail}"),
    )
    .expect("write rules");
    std::fs::write(
        dir.join("prometheus.yml"),
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nrule_files: [rules.yml]\n\
             scrape_configs:\n  - job_name: snowpipe-kafka\n    static_configs:\n      \
             - targets: ['{target}']\n"
        ),
    )
    .expect("write config");
    let mut start = |port: u16| prometheus_on(dir, port);
    let (child, port) =
        server_start::start_on("prometheus", &mut server_start::free_port, &mut start)
            .expect("start prometheus");
    (child, format!("127.0.0.1:{port}"))
}

/// One start of Prometheus on `port`, its log in `dir`: ready when its own log says it
/// listens on that port and is ready; lost when it exits first (the port was taken).
fn prometheus_on(dir: &Path, port: u16) -> std::io::Result<Attempt<(Child, u16)>> {
    let log = dir.join(format!("prometheus-{port}.log"));
    let mut child = Command::new("prometheus")
        .arg(format!(
            "--config.file={}",
            dir.join("prometheus.yml").display()
        ))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.join(format!("data-{port}")).display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log)?)
        .spawn()?;
    let listening = format!("\"Listening on\" address=127.0.0.1:{port}");
    let ready = "Server is ready to receive web requests.";
    match wait_ready(&mut child, Duration::from_secs(60), &mut || {
        log_has(&log, 0, &[&listening, ready])
    }) {
        Readiness::Ready => Ok(Attempt::Ready((child, port))),
        Readiness::Exited(_) => Ok(Attempt::Lost(log_tail(&log, 0, 5))),
        Readiness::TimedOut => {
            let _ = child.kill();
            let _ = child.wait();
            Err(std::io::Error::other(format!(
                "prometheus not ready on port {port} within 60 s: {}",
                log_tail(&log, 0, 5)
            )))
        }
    }
}

/// The states of the stall alert for `TOPIC` partition 0 Prometheus reports now.
fn stall_alert(prometheus: &str) -> Option<String> {
    let (status, body) = get(prometheus, "/api/v1/alerts");
    if status != 200 {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&body).ok()?;
    doc["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == "SnowpipeKafkaPartitionStalled"
                && a["labels"]["topic"] == TOPIC
                && a["labels"]["partition"] == "0"
        })
        .and_then(|a| a["state"].as_str().map(str::to_owned))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_fires_the_stall_alert_and_resolves_it() {
    if !have("prometheus") {
        return;
    }
    let lab = lab(&[(TOPIC, 1)]).await;
    let (mut sink, metrics, _log) = with_metrics_and_log(
        &lab,
        TOPIC,
        "alerts",
        &["--stall-after", "2s", "--max-client-lag", "200ms"],
    );
    let dir = tempfile::tempdir().expect("temp dir");
    let (mut prom, prom_addr) = prometheus(dir.path(), &metrics);
    let first = produce_per_partition(&lab, TOPIC, 1, 10).await.len();
    wait_landed(&lab, first, Duration::from_secs(60)).await;

    lab.emulator().faults().add(FaultRule::new(
        Endpoint::BulkStatus,
        FaultAction::Latency { ms: 10_000 },
    ));
    produce_per_partition(&lab, TOPIC, 1, 10).await;
    let fired = within(Duration::from_secs(90), || {
        stall_alert(&prom_addr).as_deref() == Some("firing")
    })
    .await;
    lab.emulator().faults().clear();
    let resolved = fired
        && within(Duration::from_secs(90), || {
            stall_alert(&prom_addr).is_none()
        })
        .await;
    let _ = prom.kill();
    let _ = prom.wait();
    signal(&sink, Signal::Term);
    let _ = sink.wait();
    assert!(fired, "the stall alert never fired");
    assert!(
        resolved,
        "the stall alert never resolved: {:?}",
        stall_alert(&prom_addr)
    );
    wait_landed(&lab, first * 2, Duration::from_secs(60)).await;
}
