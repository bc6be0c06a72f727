//! Text lanes inside the one memory budget (issue 83): a multi-range NDJSON load on 16
//! channels under a small `memory_budget_bytes`. Each lane's reader queues chunks of 1 MiB for
//! its loader; those chunks hold their bytes of the readers' share (`load/src/decode_budget.rs`)
//! from their first row until appended, and that share is taken from the client's one budget
//! (`StreamingIngestClient::reserve_memory`), so the SDK buffers within the rest and the bound
//! a load keeps is the budget and the harness's fixed 64 MiB: 32 + 64 = 96 MiB here. Measured
//! (debug build, one run each): 80 and 89 MiB before the share was taken from the SDK's budget,
//! 85 and 86 MiB after (this load is paced, so the SDK rarely fills its half; a one-channel
//! load of the same file: 41 MiB, so about 40 MiB of a 16-lane load is the channels' and
//! readers' fixed buffers). Run through the real binary with the hostile harness's measurement
//! (`snowpipe_hostile::run`, peak RSS from `wait4`).

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
    // The client's one budget (the readers' half is taken from it) and the harness's fixed
    // margin.
    let allowed = BUDGET + 64 * MIB;
    eprintln!(
        "peak RSS {} MiB (allowed {} MiB), CPU {:?}",
        o.peak_rss_bytes >> 20,
        allowed >> 20,
        o.cpu
    );
    assert!(
        o.peak_rss_bytes <= allowed,
        "peak RSS {} MiB is over the budget {} MiB and 64 MiB: {}",
        o.peak_rss_bytes >> 20,
        BUDGET >> 20,
        o.summary()
    );
}
