//! append → flush → ack through the client against the in-process emulator in sink mode
//! (plain HTTP on 127.0.0.1, zstd, commit as the append is answered): one iteration appends
//! 20 000 of the throughput harness's ski-resort rows (≈330 B each, in `append_rows` calls of
//! 1000) on each of 1 or 4 channels, then waits for `flush()` (every request answered with
//! HTTP 200).
//! Client and emulator share the machine's cores, so this is a lower bound for the client.
//!
//! `cargo bench --bench end_to_end` (the throughput harness's rows, so both measure the same
//! data)

use snowpipe_streaming::{Positions, Rows};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use snowpipe_emulator::{Emulator, EmulatorConfig, KeyPair};
use snowpipe_streaming::{Channel, OffsetToken, StreamingIngestClient};

use snowpipe_apps::ski_resort::embedded::SETUP_SQL as DDL;
use snowpipe_apps::throughput::rows;
const ROWS_PER_ITER: u64 = 20_000;
const PER_CALL: usize = 1000;

fn end_to_end(c: &mut Criterion) {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let (emu, client) = rt.block_on(async {
        let key = KeyPair::generate().expect("key");
        let mut cfg = EmulatorConfig::for_tests()
            .with_ddl(DDL)
            .with_public_key(key.public_key_pem());
        cfg.sink = true;
        cfg.request_log_capacity = 0;
        let emu = Emulator::start(cfg).await.expect("emulator");
        let client = StreamingIngestClient::builder()
            .account("ACME")
            .user("STREAMING_INGEST")
            .url(emu.url())
            .private_key_pem(key.private_key_pem())
            // What this measures is the data path, not the service's 20 MB/s per channel.
            .max_bytes_per_second(0)
            .build()
            .await
            .expect("client");
        (emu, client)
    });
    let rows = Arc::new(rows::generate(ROWS_PER_ITER as usize, 7));
    let bytes: u64 = rows
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len() as u64 + 1))
        .sum();
    println!(
        "end_to_end: {:.0} bytes a row",
        bytes as f64 / ROWS_PER_ITER as f64
    );
    let mut group = c.benchmark_group("append_flush_ack");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    for channels in [1usize, 4] {
        let chans: Vec<Arc<Channel>> = rt.block_on(async {
            let mut v = Vec::new();
            for i in 0..channels {
                v.push(Arc::new(
                    client
                        .pipe("STREAMING_INGEST", "STREAMING_INGEST", "RESORT_TICKET_PIPE")
                        .open_channel(&format!("bench_{channels}_{i}"))
                        .await
                        .expect("open"),
                ));
            }
            v
        });
        let next = Arc::new(AtomicU64::new(1));
        group.throughput(Throughput::Elements(ROWS_PER_ITER * channels as u64));
        group.bench_function(BenchmarkId::new("channels", channels), |b| {
            b.to_async(&rt).iter(|| {
                let chans = chans.clone();
                let rows = Arc::clone(&rows);
                let first = next.fetch_add(ROWS_PER_ITER, Ordering::Relaxed);
                async move {
                    let tasks: Vec<_> = chans
                        .into_iter()
                        .map(|ch| {
                            let rows = Arc::clone(&rows);
                            tokio::spawn(async move {
                                for (k, call) in rows.chunks(PER_CALL).enumerate() {
                                    let start = first + (k * PER_CALL) as u64;
                                    let end = start + call.len() as u64 - 1;
                                    ch.append(
                                        Rows::serde(call.iter()),
                                        Positions::span(
                                            OffsetToken::from(start)..=OffsetToken::from(end),
                                        ),
                                    )
                                    .await
                                    .expect("append");
                                }
                                ch.flush().await.expect("flush");
                            })
                        })
                        .collect();
                    for t in tasks {
                        t.await.expect("task");
                    }
                }
            });
        });
    }
    group.finish();
    rt.block_on(async {
        client.close().await.expect("close");
        emu.shutdown().await;
    });
}

criterion_group!(benches, end_to_end);
criterion_main!(benches);
