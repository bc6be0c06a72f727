//! The JSON check alone on the sink bench's own events (`snowpipe-kafka-lab bench`'s default
//! realistic clickstream events, `kafka/lab/src/bench/events.rs`, seed 1, about 1 KB), in the
//! bench's order: a quick and stable measure of the check where the bench's stage line is
//! noisy. `cargo run -p snowpipe-kafka-lab --release --example json_check_events -- [check|one]
//! [ROUNDS]` prints seconds per GB (wall time on one thread); under
//! `valgrind --tool=cachegrind`, the instructions of `ROUNDS` rounds less those of 0 rounds,
//! over the rows checked, are the check's instructions a row.

use snowpipe_kafka_lab::bench::events;

/// Events made and checked each round.
const EVENTS: u64 = 4_000;

fn main() {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "check".to_owned());
    let rounds: u32 = args.next().and_then(|r| r.parse().ok()).unwrap_or(50);
    let check: fn(&[u8]) -> bool = match which.as_str() {
        "one" => snowpipe_kafka::is_one_value_by_one_pass,
        _ => snowpipe_kafka::is_one_value,
    };
    let rows: Vec<Vec<u8>> = (0..EVENTS)
        .map(|id| events::message(events::Events::Realistic, 1, id, 1024).into_bytes())
        .collect();
    let bytes: usize = rows.iter().map(Vec::len).sum();
    let start = cpu_s();
    let mut ok = 0u64;
    for _ in 0..rounds {
        for row in &rows {
            ok += u64::from(check(std::hint::black_box(row)));
        }
    }
    let s = cpu_s() - start;
    assert_eq!(ok, EVENTS * u64::from(rounds), "a bench event was refused");
    let gb = bytes as f64 * f64::from(rounds) / 1e9;
    println!(
        "{which}: {} rows of {} bytes on average, {rounds} rounds: {:.3} s per GB",
        rows.len(),
        bytes / rows.len(),
        s / gb.max(1e-12)
    );
}

/// Seconds since the first call (wall time, one thread: run it on an idle core).
fn cpu_s() -> f64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_secs_f64()
}
