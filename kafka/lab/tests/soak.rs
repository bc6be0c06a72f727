//! `snowpipe-kafka-lab soak`, short: the real topology (tansu, the emulator in its own process with
//! 90 s tokens, three instances, a producer with bursts) through every fault of the schedule
//! once (all but the broker restart, which needs `--broker-storage s3`), in 2.5 minutes of
//! producing (`SOAK_MINUTES` for longer: the full run is `SOAK_MINUTES=60`). Asserts what the
//! report says: every acknowledged message landed exactly once (through the SQL API), the
//! broker held every one it acknowledged, no stall outlasted its faults by more than the soak's
//! bound, and each part of the report is there.
//!
//! Needs `tansu` (`.ci/run` installs it): skipped without it, except under `CI=true`. The
//! soak's processes die with it (`PR_SET_PDEATHSIG`), and the soak dies with this test (killed
//! on drop).
#![cfg(unix)]

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use snowpipe_cli_support::server_start;

/// The lab's binary (the soak, and the sink instances it starts).
fn bin() -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_BIN_EXE_snowpipe-kafka-lab"))
}

/// Whether `tool` is on the PATH; without it the test is skipped (failed under `CI=true`).
fn have(tool: &str) -> bool {
    server_start::require_or_skip(server_start::on_path(tool), tool, "see .ci/run")
}

/// The soak's process, killed if the test ends first.
struct Soak(Child);

impl Drop for Soak {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_short_soak_through_every_fault_loses_and_duplicates_nothing() {
    if !have("tansu") {
        return;
    }
    let minutes: f64 = std::env::var("SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(2.5);
    let dir = std::env::temp_dir().join(format!("snowpipe-soak-test-{}", std::process::id()));
    let report = dir.join("test-report.json");
    std::fs::create_dir_all(&dir).expect("work dir");
    let mut soak = Soak(
        Command::new(bin())
            .args(["soak", "--minutes", &minutes.to_string(), "--seed", "7"])
            .arg("--work-dir")
            .arg(&dir)
            .arg("--report")
            .arg(&report)
            .stdin(Stdio::null())
            .spawn()
            .expect("start the soak"),
    );
    // The producing time, the drain (at most 5 minutes) and the starts and checks.
    let limit = Duration::from_secs_f64(minutes * 60.0) + Duration::from_secs(600);
    let started = Instant::now();
    let status = loop {
        if let Some(status) = soak.0.try_wait().expect("wait") {
            break status;
        }
        assert!(started.elapsed() < limit, "the soak ran past {limit:?}");
        std::thread::sleep(Duration::from_millis(500));
    };
    let text = std::fs::read_to_string(&report).expect("the report file");
    let r: Value = serde_json::from_str(&text).expect("JSON");
    assert!(status.success(), "the soak failed: {text}");
    assert_eq!(r["exactly_once"], true, "{text}");
    assert_eq!(r["stalls_within_bound"], true, "{text}");
    assert_eq!(r["drained"], true, "{text}");
    assert_eq!(r["unacknowledged"], 0, "{text}");
    for p in r["partitions"].as_array().expect("partitions") {
        assert_eq!(p["exact"], true, "{p}");
        assert!(p["rows"].as_u64() > Some(0), "{p}");
    }
    for p in r["broker_holds"].as_array().expect("broker_holds") {
        assert_eq!(p["same_offsets"], true, "the broker lost messages: {p}");
    }
    let faults = r["faults"].as_array().expect("faults");
    for name in [
        "SIGSTOP",
        "SIGKILL",
        "scale",
        "broker link: 200 ms",
        "broker link: resets",
        "broker link: black hole",
        "emulator link: 200 ms",
        "emulator link: resets",
        "emulator link: black hole",
        "emulator restart",
    ] {
        let f = faults
            .iter()
            .find(|f| f["fault"].as_str().is_some_and(|s| s.starts_with(name)))
            .unwrap_or_else(|| panic!("no fault {name} in {text}"));
        assert!(f["end_s"].as_f64() >= f["start_s"].as_f64(), "{f}");
    }
    let latency = &r["latency_ms"];
    assert!(latency["p50"].as_f64() > Some(0.0), "{latency}");
    assert!(
        latency["p99"].as_f64() >= latency["p50"].as_f64(),
        "{latency}"
    );
    let messages = r["messages"].as_u64().expect("messages");
    // A latency per message, but for retries acknowledged without their offset.
    let samples = latency["samples"].as_u64().expect("samples");
    assert!(
        samples <= messages && samples >= messages * 9 / 10,
        "{samples} of {messages}"
    );
    assert!(r["sink_cpu_s_per_gb"].as_f64() > Some(0.0), "{text}");
    let first = r["processes"]
        .as_array()
        .expect("processes")
        .iter()
        .find(|p| p["process"] == "sink-1#1")
        .expect("sink-1#1 sampled");
    assert!(first["rss_slope_mb_per_hour"].is_number(), "{first}");
    assert!(first["rss_peak_mb"].as_f64() > Some(0.0), "{first}");
    let _ = std::fs::remove_dir_all(&dir);
}
