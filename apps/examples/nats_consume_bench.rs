//! Throughput of `sensor_stream consume --until-idle` draining a NATS JetStream backlog into
//! the emulator: prints messages/s and CPU-seconds per GB of the consumer process (one run per
//! size). Not a test: it asserts only that every message landed.
//!
//! ```sh
//! cargo build --release -p snowpipe-apps --bin sensor_stream --example nats_consume_bench
//! target/release/examples/nats_consume_bench            # the sensor_stream beside it
//! SENSOR_STREAM_BIN=/path/to/sensor_stream target/release/examples/nats_consume_bench
//! ```
//!
//! A private `nats-server -js` (temporary directory, free loopback port) and the emulator in
//! this process (commit delay 200 ms). Readings are written here, 4 shards round-robin:
//! `BENCH_SMALL` (default 200,000) of ~90 bytes, as `publish` writes them, and `BENCH_LARGE`
//! (default 2,000) of ~64 KiB (the same reading with a 64 KiB `note` the consumer ignores).
//! messages/s is over the run's wall time less the `--until-idle` window (1 s); CPU is the
//! consumer's user + system time, start-up included.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{ensure, Context, Result};
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use snowpipe_apps::sensor_stream::nats_server::NatsServer;
use snowpipe_apps::sensor_stream::pipeline::SETUP_SQL;
use snowpipe_emulator::Emulator;

const SHARDS: u32 = 4;
const IDLE: Duration = Duration::from_secs(1);

fn main() -> Result<()> {
    let bin = match std::env::var_os("SENSOR_STREAM_BIN") {
        Some(bin) => PathBuf::from(bin),
        None => std::env::current_exe()?
            .parent()
            .and_then(|examples| examples.parent())
            .context("no directory above the example")?
            .join("sensor_stream"),
    };
    let count = |name: &str, default: usize| -> Result<usize> {
        std::env::var(name).map_or(Ok(default), |v| v.parse().context(name.to_owned()))
    };
    let small = count("BENCH_SMALL", 200_000)?;
    let large = count("BENCH_LARGE", 2_000)?;
    println!("binary: {}", bin.display());
    println!("| readings | messages | MB | wall s | messages/s | CPU s | CPU-s per GB |");
    println!("|---|---:|---:|---:|---:|---:|---:|");
    run(&bin, "~90 B", small, 0)?;
    run(&bin, "~64 KiB", large, 64 << 10)?;
    Ok(())
}

/// One reading as `publish` writes it (`SensorEvent`'s JSON), with a `note` of `pad` bytes.
fn reading(i: usize, pad: usize) -> Vec<u8> {
    let status = ["OK", "FAIL", "WARN"][i % 3];
    let mut out = format!(
        r#"{{"sensorId":{},"currentTemperature":{},"status":"{status}","eventTime":"2026-11-28T01:00:00.{:03}Z""#,
        i % 51,
        10 + i % 141,
        i % 1000
    );
    if pad > 0 {
        out.push_str(r#","note":""#);
        out.extend(std::iter::repeat_n('x', pad));
        out.push('"');
    }
    out.push('}');
    out.into_bytes()
}

/// Publishes `n` readings padded by `pad` to a fresh broker and times one consumer draining them.
fn run(bin: &PathBuf, what: &str, n: usize, pad: usize) -> Result<()> {
    let rt = tokio::runtime::Runtime::new()?;
    let dir = tempfile::tempdir()?;
    let nats = NatsServer::start(Some(&dir.path().join("nats")))?;
    let mut config = snowpipe_apps::common::embedded_config(
        vec![SETUP_SQL.to_string()],
        Duration::from_millis(200),
    );
    config.strict_offsets = true;
    let (emulator, key) = rt.block_on(Emulator::start_with_new_key(config))?;
    let key_file = dir.path().join("key.p8");
    snowpipe_apps::common::write_private_key(&key_file, key.private_key_pem())?;
    let bytes = rt.block_on(publish(&nats.url(), n, pad))?;

    let started = Instant::now();
    let before = children_cpu();
    let out = std::process::Command::new(bin)
        .args(["consume", "--nats", &nats.url(), "--stream", "SENSORS"])
        .args(["--shards", &SHARDS.to_string(), "--until-idle", "1s"])
        .args(["--database", "STREAMING_INGEST", "--schema", "SENSORS"])
        .args(["--pipe", "SENSOR_READINGS_PIPE"])
        .env("SNOWFLAKE_URL", emulator.url())
        .env("SNOWFLAKE_ACCOUNT", "SENSORS")
        .env("SNOWFLAKE_USER", "STREAMING_INGEST")
        .env("SNOWFLAKE_PRIVATE_KEY_FILE", &key_file)
        .env_remove("SNOWFLAKE_PRIVATE_KEY")
        .env("RUST_LOG", "warn")
        .stdin(std::process::Stdio::null())
        .output()
        .with_context(|| format!("run {}", bin.display()))?;
    let wall = started.elapsed();
    let cpu = children_cpu() - before;
    ensure!(
        out.status.success(),
        "consume failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let sql = snowpipe_streaming::StreamingIngestClient::builder()
        .account("SENSORS")
        .user("STREAMING_INGEST")
        .url(emulator.url())
        .private_key_file(&key_file)
        .build_sql()?
        .database("STREAMING_INGEST")
        .schema("SENSORS");
    let rows = rt
        .block_on(sql.query("SELECT COUNT(DISTINCT STREAM_SEQ) FROM SENSOR_READINGS"))?
        .rows;
    let landed = rows[0][0].clone().unwrap_or_default();
    ensure!(landed == n.to_string(), "{landed} of {n} landed");
    let busy = wall.saturating_sub(IDLE).as_secs_f64();
    println!(
        "| {what} | {n} | {:.1} | {:.2} | {:.0} | {cpu:.2} | {:.1} |",
        bytes as f64 / 1e6,
        wall.as_secs_f64(),
        n as f64 / busy,
        cpu / (bytes as f64 / 1e9)
    );
    Ok(())
}

/// Publishes `n` readings padded by `pad` to `sensors.0` .. `sensors.3` of a new `SENSORS`
/// stream (file storage) at `url`, every ack awaited; returns their bytes.
async fn publish(url: &str, n: usize, pad: usize) -> Result<u64> {
    let js = jetstream::new(async_nats::connect(url).await?);
    js.get_or_create_stream(stream::Config {
        name: "SENSORS".into(),
        subjects: vec!["sensors.*".into()],
        storage: stream::StorageType::File,
        ..Default::default()
    })
    .await?;
    let mut bytes = 0u64;
    let mut acks = Vec::with_capacity(1024);
    for i in 0..n {
        let payload = reading(i, pad);
        bytes += payload.len() as u64;
        let subject = format!("sensors.{}", i as u32 % SHARDS);
        acks.push(js.publish(subject, Bytes::from(payload)).await?);
        if acks.len() == 1024 || i + 1 == n {
            for ack in acks.drain(..) {
                ack.await?;
            }
        }
    }
    Ok(bytes)
}

/// User + system CPU seconds of this process's waited-for children.
fn children_cpu() -> f64 {
    snowpipe_cli_support::process::rusage(snowpipe_cli_support::process::Who::Children).cpu_s()
}
