//! Text lanes inside the one memory budget (issue 83): a multi-range NDJSON load on 16
//! channels under a small `memory_budget_bytes`. Each lane's reader queues chunks of 1 MiB for
//! its loader (buffers from one pool, `load/src/chunk_pool.rs`, reused rather than left in
//! sixteen threads' allocator arenas); those chunks hold their bytes of the readers' share
//! (`load/src/decode_budget.rs`) from their first row until appended, and that share is taken
//! from the client's one budget (`StreamingIngestClient::reserve_memory`), as is the loader's
//! fixed memory (`load/src/overhead.rs`: what is resident at the start, the lanes' buffers,
//! the compression contexts). 32 MiB cannot hold the fixed memory of a debug build (about 31
//! MiB resident at the start alone), so the loader warns by how much the peak may pass the
//! budget, and that is what the test holds it to: the budget and the excess it stated.
//! Measured (debug build, one run each): 85 and 86 MiB before the pool and the overhead's
//! charge (when this test was written; no warning), 65 and 66 MiB after, against the 79 MiB the warning allows. Run
//! through the real binary with the hostile harness's measurement (`snowpipe_hostile::run`,
//! peak RSS from `wait4`).

use std::io::Write;
use std::time::Duration;

use snowpipe_hostile::{Input, Limits, MIB};

use crate::common::Lab;

/// The client's memory budget in this test (`memory_budget_bytes` in the profile).
const BUDGET: u64 = 32 * MIB;
/// The file: 16 ranges of 6 MiB, each more than a lane's queue of 5 chunks of 1 MiB.
const FILE_BYTES: u64 = 96 * MIB;
const RANGE_BYTES: u64 = 6 * MIB;
/// One row's padding: rows of about 1 KB.
const PAD: usize = 1000;

/// Writes rows of about 1 KB (ids from 1) until `FILE_BYTES`: the number of rows.
fn write_ndjson(path: &std::path::Path) -> u64 {
    let file = std::fs::File::create(path).expect("create the input");
    let mut out = std::io::BufWriter::new(file);
    let pad = "p".repeat(PAD);
    let (mut written, mut rows) = (0u64, 0u64);
    while written < FILE_BYTES {
        rows += 1;
        let line = format!("{{\"id\":{rows},\"name\":\"name-{rows}\",\"note\":\"{pad}\"}}\n");
        out.write_all(line.as_bytes()).expect("write the input");
        written += line.len() as u64;
    }
    out.flush().expect("flush the input");
    rows
}

#[test]
fn sixteen_text_lanes_peak_within_the_memory_budget() {
    let lab = Lab::new();
    let path = lab.path("big.ndjson");
    let rows = write_ndjson(&path);
    let profile = lab.profile(BUDGET as usize);
    let range = RANGE_BYTES.to_string();
    let args = [
        "--profile",
        profile.to_str().expect("a UTF-8 path"),
        "--channels",
        "16",
        "--range-bytes",
        &range,
        "--no-progress",
    ];
    let mut limits = Limits::with_budget(BUDGET);
    limits.wall = Duration::from_secs(300);
    // 16 readers on the blocking pool: glibc gives each thread's allocations an arena that
    // reserves 64 MiB of address space (up to 8 per core), past the harness's usual net of
    // budget + 1 GiB (the run aborted in `malloc` under it). The assertion is on RSS.
    limits.address_space_bytes = BUDGET + 4096 * MIB;
    let cmd = lab.command(&[&path], &args);
    let o = snowpipe_hostile::run(cmd, Input::Null, &limits).expect("start snowpipe");
    assert_eq!(o.code, Some(0), "the load failed: {}", o.summary());
    let summary: serde_json::Value =
        serde_json::from_slice(&o.stdout).expect("a JSON summary on stdout");
    let lanes = summary["per_file"][0]["channels"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(lanes, 16, "16 lanes of ranges: {summary}");
    assert_eq!(lab.counts(), (rows, rows), "every row once");
    // The budget and what the loader said the peak may pass it by.
    let stderr = o.stderr_text();
    let excess = stated_excess(&stderr).unwrap_or_else(|| {
        panic!("a 32 MiB budget cannot hold a debug build's fixed memory; no warning: {stderr}")
    });
    let allowed = BUDGET + excess * MIB;
    eprintln!(
        "peak RSS {} MiB (allowed {} MiB), CPU {:?}",
        o.peak_rss_bytes >> 20,
        allowed >> 20,
        o.cpu
    );
    assert!(
        o.peak_rss_bytes <= allowed,
        "peak RSS {} MiB is over the budget {} MiB and the {excess} MiB the loader stated: {}",
        o.peak_rss_bytes >> 20,
        BUDGET >> 20,
        o.summary()
    );
}

/// The MiB the warning says the peak RSS may pass the budget by ("by up to N MiB").
fn stated_excess(stderr: &str) -> Option<u64> {
    let line = stderr
        .lines()
        .find(|l| l.contains("memory_budget_bytes 32 MiB is too small"))?;
    let (_, after) = line.split_once("may pass the budget by up to ")?;
    after.split_once(" MiB")?.0.parse().ok()
}
