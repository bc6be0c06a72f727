//! The row check every message gets (`json_check::is_one_value`: the previous row's shape, then
//! the one pass) beside the one pass alone (`is_one_value_by_one_pass`) and what it replaced
//! (`std::str::from_utf8`, then `serde_json::from_str::<IgnoredAny>`), in bytes a second.
//!
//! Rows of 1 KB, each over and over (so the shape always fits): the sink bench's padded row
//! (one long padding string), a dense clickstream row of many short fields, an event shaped as
//! the sink bench's realistic events (nested objects, a URL, a user agent, floats, some
//! unicode), and text that is mostly not ASCII. Then streams: the four in turn (`mixed`: no
//! row has the shape of the one before, as in a stream of mixed topics), and events that vary
//! as the sink bench's do (`event stream`: the walk along the shape stops part way).

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use serde::de::IgnoredAny;
use snowpipe_kafka::{is_one_value, is_one_value_by_one_pass};

/// An event of the shape `snowpipe-kafka-lab bench --events realistic` makes (its module docs):
/// the table's columns, a time and id, then the session, user, page, device, place, timings,
/// flags and a cart.
const EVENT: &str = r#"{"id":48213,"kind":"add_to_cart","amount":2399,"ts":"2026-11-27T21:14:03.512Z","event_id":"9f86d081884c7d659a2feaa0c55ad015","session":{"id":"a3f1c2e4b5d6","started":1764277843,"hits":17,"referrer":"https://www.example.com/search?q=running+shoes&page=2"},"user":{"id":"u-000482","logged_in":true,"segment":"returning","locale":"de-DE"},"page":{"url":"https://shop.example.com/p/trail-runner-x2?color=blue&size=42&utm_source=news","title":"Trail Runner X2 – Größe 42 · Blau","type":"product","category":["shoes","running","trail"]},"device":{"ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","screen":{"w":1920,"h":1080,"dpr":1.25},"mobile":false},"geo":{"country":"DE","region":"BY","city":"München","lat":48.1374,"lon":11.5755},"timing":{"dns":12.5,"connect":31.25,"ttfb":184.75,"load":1203.5},"flags":{"consent":true,"ab_test":"checkout_v3","bot":false,"new_visitor":null},"cart":{"currency":"EUR","items":[{"sku":"TRX2-BL-42","qty":1,"price":139.95,"name":"Trail Runner X2"},{"sku":"SOCK-3P","qty":2,"price":12.5,"name":"Laufsocken \"Pro\" 3er"}]}}"#;

/// 64 events of [`EVENT`]'s shape as the sink bench's generator varies them from one message to
/// the next: a user id that is a string or `null`, 0–3 segments, one or two cart items, numbers
/// and strings of other lengths. Most rows leave the previous row's shape somewhere.
fn event_stream() -> Vec<Vec<u8>> {
    (0..64_u64)
        .map(|i| {
            let user = if i % 5 < 2 {
                "null".to_string()
            } else {
                format!("\"u-{}\"", i * 7919 % 5_000_000)
            };
            let segments = ["\"returning\"", "\"mobile\"", "\"high_value\""][..(i % 4) as usize].join(",");
            let items: Vec<String> = (0..1 + i % 2)
                .map(|k| {
                    format!(
                        r#"{{"sku":"TRX{k}-{i}","qty":{},"price":{}.{},"name":"Trail Runner X{k}"}}"#,
                        1 + i % 3,
                        100 + i * 13 % 900,
                        i % 100
                    )
                })
                .collect();
            format!(
                r#"{{"id":{},"kind":"{}","amount":{},"ts":"2026-11-27T21:14:{:02}.512Z","event_id":"9f86d081884c7d659a2feaa0c55ad{:03}","session":{{"id":"a3f1c2e4b5d6","started":{},"hits":{},"referrer":"https://www.example.com/search?q=running+shoes&page={}"}},"user":{{"id":{user},"logged_in":{},"segments":[{segments}],"locale":"de-DE"}},"page":{{"url":"https://shop.example.com/p/trail-runner-x2?color=blue&size=42&utm_source=news","title":"Trail Runner X2 – Größe 42 · Blau","type":"product","category":["shoes","running","trail"]}},"device":{{"ua":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36","screen":{{"w":1920,"h":1080,"dpr":1.25}},"mobile":false}},"geo":{{"country":"DE","region":"BY","city":"München","lat":48.1374,"lon":11.5755}},"timing":{{"dns":12.5,"connect":31.25,"ttfb":184.75,"load":{}.5}},"cart":{{"currency":"EUR","items":[{}]}}}}"#,
                48_213 + i * 977,
                ["view", "click", "add_to_cart", "search"][(i % 4) as usize],
                i * 4_099 % 100_000,
                i % 60,
                i,
                1_764_277_843 + i * 31,
                i % 40,
                i % 9,
                i % 2 == 0,
                800 + i * 37 % 2000,
                items.join(",")
            )
            .into_bytes()
        })
        .collect()
}

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
        ("event", EVENT.as_bytes().to_vec()),
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
        group.bench_with_input(BenchmarkId::new("one pass", name), &row, |b, row| {
            b.iter(|| is_one_value_by_one_pass(std::hint::black_box(row)));
        });
        group.bench_with_input(BenchmarkId::new("utf8+serde_json", name), &row, |b, row| {
            b.iter(|| {
                std::str::from_utf8(std::hint::black_box(row))
                    .is_ok_and(|t| serde_json::from_str::<IgnoredAny>(t).is_ok())
            });
        });
    }
    // Streams: the four kinds in turn (each row's shape differs from the one before), and
    // events that vary as the sink bench's do.
    let mixed: Vec<Vec<u8>> = rows().into_iter().map(|(_, row)| row).collect();
    for (name, stream) in [("mixed", mixed), ("event stream", event_stream())] {
        assert!(stream.iter().all(|row| is_one_value(row)), "{name}");
        let bytes: usize = stream.iter().map(Vec::len).sum();
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_with_input(BenchmarkId::new("json_check", name), &stream, |b, rows| {
            b.iter(|| {
                rows.iter()
                    .all(|row| is_one_value(std::hint::black_box(row)))
            });
        });
        group.bench_with_input(BenchmarkId::new("one pass", name), &stream, |b, rows| {
            b.iter(|| {
                rows.iter()
                    .all(|row| is_one_value_by_one_pass(std::hint::black_box(row)))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, check);
criterion_main!(benches);
