//! `sensor_stream consume --until-idle` stops only when the broker has nothing more to give:
//! 120 messages of ~1000 KiB, written here (async-nats, not the application's `publish`) into
//! the JetStream stream of a private `nats-server -js`, read by the real binary with one pull
//! asking for all of them at once (`--batch-max 500 --batch-max-bytes 1 GiB`) and
//! `--until-idle 2s`: exit 0 must mean every message is a row of `SENSOR_READINGS`.

use async_nats::jetstream;
use bytes::Bytes;
use snowpipe_apps::sensor_stream::nats_server;
use snowpipe_cli_support::process::{self, Signal};

use crate::common;
use crate::hostile_suite::{keys_within, wide_reading};

const STREAM: &str = "SENSORS";
const MESSAGES: usize = 120;

/// A private `nats-server -js` (with `conf` added to its configuration), the emulator, and
/// `count` readings of about `bytes` each published to shard 0 here.
/// Fields drop in their order: the emulator, the broker, its directory, the runtime last.
struct Lab {
    emulator: snowpipe_emulator::Emulator,
    key: std::path::PathBuf,
    nats: nats_server::NatsServer,
    dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Lab {
    fn start(conf: Option<&str>, count: usize, bytes: usize) -> Self {
        let rt = common::sensor_stream::runtime();
        let dir = tempfile::tempdir().unwrap();
        let nats = nats_server::NatsServer::start_with(Some(&dir.path().join("nats")), conf)
            .expect("start nats-server");
        let (emulator, key) = common::sensor_stream::start_emulator(&rt, dir.path());
        let js: jetstream::Context =
            rt.block_on(common::sensor_stream::provision_stream(&nats.url(), STREAM));
        let n = keys_within(bytes);
        rt.block_on(async {
            for _ in 0..count {
                let ack = js
                    .publish("sensors.0", Bytes::from(wide_reading(n)))
                    .await
                    .expect("publish");
                ack.await
                    .expect("the broker stores a message within its max payload");
            }
        });
        Self {
            emulator,
            key,
            nats,
            dir,
            rt,
        }
    }

    /// `sensor_stream consume` of the one shard.
    fn consume(&self) -> std::process::Command {
        common::sensor_stream::consume_cmd(
            &common::bin::sensor_stream_bin(),
            &self.nats.url(),
            STREAM,
            1,
            &self.emulator.url(),
            &self.key,
        )
    }

    fn sql(&self) -> snowpipe_streaming::sql::SqlClient {
        common::sensor_stream::sql_client(&self.emulator.url(), &self.key)
    }

    /// The broker's log.
    fn broker_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("nats/nats-server.log")).unwrap_or_default()
    }
}

#[test]
fn until_idle_waits_for_a_big_pull_still_arriving() {
    if !common::sensor_stream::nats_available("until_idle_waits_for_a_big_pull_still_arriving") {
        return;
    }
    let lab = Lab::start(None, MESSAGES, 1_000 * 1024);
    let mut cmd = lab.consume();
    let out = cmd
        .args(["--until-idle", "2s", "--batch-max", "500"])
        .args(["--batch-max-bytes", "1073741824"])
        .env("RUST_LOG", "warn")
        .output()
        .expect("run sensor_stream consume");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "consume failed: {stderr}");
    let rows = lab
        .rt
        .block_on(
            lab.sql()
                .query("SELECT COUNT(DISTINCT STREAM_SEQ) FROM SENSOR_READINGS"),
        )
        .expect("count SENSOR_READINGS")
        .rows;
    let landed = rows[0][0].clone().unwrap_or_default();
    assert_eq!(
        landed,
        MESSAGES.to_string(),
        "exit 0 after landing {landed} of {MESSAGES} messages: {stderr}"
    );
}

/// The production mode (no `--until-idle`): the same big pull must land every message within
/// 45 s (it landed 13 and then nothing: the server cut the client as a slow consumer). Stopped
/// with SIGTERM (what Kubernetes and systemd send) once all landed (or the bound passed): it
/// must drain and exit 0 (it was killed undrained by SIGTERM before). The broker's log is quoted
/// when not all landed.
#[test]
fn forever_lands_every_message_of_a_big_pull() {
    if !common::sensor_stream::nats_available("forever_lands_every_message_of_a_big_pull") {
        return;
    }
    let lab = Lab::start(None, MESSAGES, 1_000 * 1024);
    let mut cmd = lab.consume();
    cmd.args(["--batch-max", "500", "--batch-max-bytes", "1073741824"]);
    let (landed, out) = run_until_landed(&lab.rt, cmd, &lab.sql(), MESSAGES, 45, Signal::Term);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let log = lab.broker_log();
    let log_tail: Vec<&str> = log.lines().rev().take(8).collect();
    assert_eq!(
        landed,
        MESSAGES.to_string(),
        "without --until-idle, {landed} of {MESSAGES} messages landed in 45 s\n\
         consume's log: {stderr}\nthe broker's log (last lines, newest first): {log_tail:#?}"
    );
    assert!(out.status.success(), "consume failed on SIGTERM: {stderr}");
}

/// Runs `consume` (no `--until-idle`) until `expected` distinct sequences are in
/// `SENSOR_READINGS` or `bound_s` seconds passed, then stops it with `signal` (SIGINT or
/// SIGTERM, the stops it drains on); what landed, and its output.
fn run_until_landed(
    rt: &tokio::runtime::Runtime,
    mut cmd: std::process::Command,
    sql: &snowpipe_streaming::sql::SqlClient,
    expected: usize,
    bound_s: u64,
    signal: Signal,
) -> (String, std::process::Output) {
    let child = cmd
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run sensor_stream consume");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(bound_s);
    let mut landed = String::new();
    while std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(500));
        let rows = rt
            .block_on(sql.query("SELECT COUNT(DISTINCT STREAM_SEQ) FROM SENSOR_READINGS"))
            .expect("count SENSOR_READINGS")
            .rows;
        landed = rows[0][0].clone().unwrap_or_default();
        if landed == expected.to_string() {
            break;
        }
    }
    process::signal(child.id(), signal).expect("signal the child");
    let out = child
        .wait_with_output()
        .expect("consume exits on the signal");
    (landed, out)
}

/// A server that buffers less for a client than one pull asks for (`max_pending: 2MB`, under
/// the 16 MiB pull of 1 MiB max payloads) cuts the consumer as a slow consumer, again and
/// again: what it had sent is lost. Run forever (no `--until-idle`), every message must still
/// land within 60 s (a cut pull that no message follows is found stalled after 30 s and read
/// again), and the consumer's log must say what happened.
#[test]
fn a_consumer_cut_by_a_small_max_pending_lands_everything_and_says_so() {
    let name = "a_consumer_cut_by_a_small_max_pending_lands_everything_and_says_so";
    if !common::sensor_stream::nats_available(name) {
        return;
    }
    const SMALL: usize = 30;
    let lab = Lab::start(Some("max_pending: 2MB\n"), SMALL, 500 * 1024);
    let (landed, out) =
        run_until_landed(&lab.rt, lab.consume(), &lab.sql(), SMALL, 150, Signal::Int);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        landed,
        SMALL.to_string(),
        "{landed} of {SMALL} landed in 150 s: {stderr}"
    );
    assert!(out.status.success(), "consume failed on SIGINT: {stderr}");
    let log = lab.broker_log();
    assert!(
        log.contains("Slow Consumer Detected"),
        "the server did not cut the consumer, so this test shows nothing: {log}"
    );
    assert!(
        stderr.contains("NATS: disconnected"),
        "the cut was silent in consume's log: {stderr}"
    );
}

/// Readings in bursts that take turns between three shards, 1.5 s apart, with
/// `--until-idle 3s`: each shard is quiet for 4.5 s at a time, the stream never for more than
/// 1.5 s, so `consume` must still be running before each burst and, at exit 0, every reading
/// must be a row.
#[test]
fn bursts_taking_turns_between_shards_all_land() {
    let name = "bursts_taking_turns_between_shards_all_land";
    if !common::sensor_stream::nats_available(name) {
        return;
    }
    const SHARDS: u32 = 3;
    let lab = Lab::start(None, 0, 1_024);
    let mut child = common::bin::Guard(
        common::sensor_stream::consume_cmd(
            &common::bin::sensor_stream_bin(),
            &lab.nats.url(),
            STREAM,
            SHARDS,
            &lab.emulator.url(),
            &lab.key,
        )
        .args(["--until-idle", "3s"])
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("spawn consume"),
    );
    let js = lab.rt.block_on(common::sensor_stream::provision_stream(
        &lab.nats.url(),
        STREAM,
    ));
    let count = || -> String {
        let rows = lab
            .rt
            .block_on(
                lab.sql()
                    .query("SELECT COUNT(DISTINCT STREAM_SEQ) FROM SENSOR_READINGS"),
            )
            .expect("count SENSOR_READINGS")
            .rows;
        rows[0][0].clone().unwrap_or_default()
    };
    let (bursts, per_burst) = (9, 40);
    for burst in 0..bursts {
        if let Some(status) = child.0.try_wait().unwrap() {
            panic!(
                "consume exited ({status}) before burst {burst}, 1.5 s after the last, with {} of \
                 the {} readings written before it landed",
                count(),
                burst * per_burst
            );
        }
        lab.rt.block_on(async {
            for i in 0..per_burst {
                let reading = format!(
                    r#"{{"sensorId": {}, "currentTemperature": {}, "status": "OK"}}"#,
                    i % 50,
                    10 + burst
                );
                let subject = format!("sensors.{}", burst as u32 % SHARDS);
                js.publish(subject, Bytes::from(reading))
                    .await
                    .expect("publish")
                    .await
                    .expect("the broker stores it");
            }
        });
        std::thread::sleep(std::time::Duration::from_millis(1_500));
    }
    let status = child.wait_within(std::time::Duration::from_secs(60), "consume --until-idle");
    assert!(status.success(), "consume exited with {status}");
    assert_eq!(count(), (bursts * per_burst).to_string());
}
