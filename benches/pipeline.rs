//! Serialize + buffer + compress throughput by row size (≈100 B, 1 KB, 10 KB): the CPU work a
//! channel does before the HTTP request, through the same functions `append_rows` and the
//! channel actor use (`snowpipe_streaming::bench_internals::Pipeline`), with zstd (the default)
//! and without compression. Criterion reports rows/s (`elem/s`) and bytes/s of NDJSON.
//!
//! `cargo bench --bench pipeline`

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::Serialize;
use snowpipe_streaming::bench_internals::{Output, Pipeline};
use snowpipe_streaming::Compression;

#[derive(Serialize, Clone)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Row {
    id: u64,
    ts: String,
    name: String,
    score: f64,
    note: String,
}

/// `n` rows of about `size` bytes of NDJSON each, and their exact NDJSON size.
fn rows(size: usize, n: usize) -> (Vec<Row>, u64) {
    let rows: Vec<Row> = (0..n as u64)
        .map(|i| {
            let base = Row {
                id: i * 7919,
                ts: format!("2026-01-01T09:{:02}:{:02}.{:06}", i % 60, (i / 60) % 60, i),
                name: format!("skier-{}", i % 1000),
                score: i as f64 / 3.0,
                note: String::new(),
            };
            let len = serde_json::to_vec(&base).map_or(0, |v| v.len()) + 1;
            let pad = size.saturating_sub(len);
            // Pseudo-random words (xorshift), so a row is not a repeating pattern. Each
            // iteration appends the same rows again, so zstd finds the previous iteration's
            // copy in its window when the rows of one call are smaller than it: wire/NDJSON is
            // about 1/250 at 100 B rows, 0.54 at 1 KB, 0.21 at 10 KB (`examples/pipeline_fixed.rs`
            // under valgrind). The 100 B zstd figures are therefore not those of real rows.
            let mut x = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let note: String = (0..pad)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    match x % 32 {
                        0..=4 => ' ',
                        k => (b'a' + (k % 26) as u8) as char,
                    }
                })
                .collect();
            Row { note, ..base }
        })
        .collect();
    let bytes = rows
        .iter()
        .map(|r| serde_json::to_vec(r).map_or(0, |v| v.len() as u64 + 1))
        .sum();
    (rows, bytes)
}

fn pipeline(c: &mut Criterion) {
    for (label, compression) in [("zstd", Compression::Zstd), ("none", Compression::None)] {
        for (unit, by_bytes) in [("rows", false), ("bytes", true)] {
            let mut group = c.benchmark_group(format!("pipeline_{label}_{unit}"));
            group
                .sample_size(10)
                .warm_up_time(Duration::from_millis(500))
                .measurement_time(Duration::from_secs(2));
            for size in [100usize, 1_000, 10_000] {
                // One append_rows call of ~1 MB (10 KB rows) or 1000 rows.
                let per_call = (1_000_000 / size).clamp(1, 1000);
                let (batch, bytes) = rows(size, per_call);
                group.throughput(if by_bytes {
                    Throughput::Bytes(bytes)
                } else {
                    Throughput::Elements(per_call as u64)
                });
                let mut p = Pipeline::new(compression).expect("pipeline");
                let mut out = Output::default();
                group.bench_with_input(BenchmarkId::from_parameter(size), &batch, |b, batch| {
                    b.iter(|| p.append(batch.iter(), &mut out).expect("append"));
                });
                p.finish(&mut out).expect("finish");
                if by_bytes && out.ndjson_bytes > 0 {
                    println!(
                        "  {label}, {size} B rows: {} requests, wire/NDJSON = {:.3}",
                        out.requests,
                        out.body_bytes as f64 / out.ndjson_bytes as f64
                    );
                }
            }
            group.finish();
        }
    }
}

criterion_group!(benches, pipeline);
criterion_main!(benches);
