//! The row check every message gets (`json_check::is_one_value`) against what it replaced
//! (`std::str::from_utf8`, then `serde_json::from_str::<IgnoredAny>`), in bytes a second, on
//! three kinds of 1 KB rows: the sink bench's (one long padding string), a clickstream event
//! of many short fields, and text that is mostly not ASCII.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::de::IgnoredAny;
use snowpipe_kafka::is_one_value;

fn rows() -> Vec<(&'static str, Vec<u8>)> {
    let padded = format!(
        r#"{{"id":123456,"kind":"view","amount":456,"pad":"{}"}}"#,
        "x".repeat(964)
    );
    let mut clicks = String::from("{");
    let mut i = 0;
    while clicks.len() < 1000 {
        clicks.push_str(&format!(
            r#""field_{i}":{{"user":"u-{i:05}","ts":1732000000{i:03},"ok":true,"score":{i}.25,"tags":["a","b\n"]}},"#
        ));
        i += 1;
    }
    clicks.pop();
    clicks.push('}');
    let text = format!(
        r#"{{"id":1,"review":"{}","lang":"de"}}"#,
        "Größenverhältnisse – 日本語のテキスト 😀 ".repeat(18)
    );
    vec![
        ("padded", padded.into_bytes()),
        ("clickstream", clicks.into_bytes()),
        ("non-ascii", text.into_bytes()),
    ]
}

fn check(c: &mut Criterion) {
    let mut group = c.benchmark_group("row check");
    for (name, row) in rows() {
        assert!(is_one_value(&row), "{name}");
        group.throughput(Throughput::Bytes(row.len() as u64));
        group.bench_with_input(BenchmarkId::new("json_check", name), &row, |b, row| {
            b.iter(|| is_one_value(std::hint::black_box(row)));
        });
        group.bench_with_input(BenchmarkId::new("utf8+serde_json", name), &row, |b, row| {
            b.iter(|| {
                std::str::from_utf8(std::hint::black_box(row))
                    .is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok())
            });
        });
    }
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
