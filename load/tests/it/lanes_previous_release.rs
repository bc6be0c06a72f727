//! Issue 96 item 2: a load killed mid-way by an earlier release resumes with this one. The
//! state such a load leaves (its lanes' channels and their committed tokens, and the rows
//! committed with them) is in `fixtures/lanes_previous_release.txt`, recorded with an earlier
//! release's binary by the ignored test below; the test replays that state into a fresh
//! emulator (opening those channels and committing those rows with those tokens, as that
//! release did) and runs this release's binary on the same file: every row once, no lane
//! starting over, on the channels the fixture names.
//!
//! A channel's name holds a hash of the file's canonical path (`LOAD_<hash>`, lane `j` adds
//! `_<j>`), and the lab's directory differs from run to run: the fixture records the path and
//! the name the earlier release gave it, the test checks the rule below gives that name for
//! that path, then uses the rule for its own file.

use std::path::Path;
use std::time::{Duration, Instant};

use sha2::{Digest, Sha256};
use snowpipe_streaming::{
    ClientBuilder, LaneRouting, OffsetToken, OpenLanesOptions, Positions, Rows,
    StreamingIngestClient,
};

use crate::common::{key_file, ndjson, Lab};

/// The file: rows `0..ROWS`, about 2 MB, so 20 ranges of [`STEP`] bytes on 16 lanes.
const ROWS: u64 = 60_000;
/// `--range-bytes`.
const STEP: u64 = 100_000;
/// A file's lanes (`load/src/ranges.rs`, `LANES`).
const LANES: u64 = 16;
const ARGS: &[&str] = &["--range-bytes", "100000", "--max-client-lag", "20ms"];
const FIXTURE: &str = "tests/it/fixtures/lanes_previous_release.txt";

/// The channel name an input's canonical path gets (`load/src/token.rs`, `channel_name`).
fn base_name(canonical: &Path) -> String {
    let digest = Sha256::digest(canonical.as_os_str().as_encoded_bytes());
    let hex: String = digest[..8].iter().map(|b| format!("{b:02X}")).collect();
    format!("LOAD_{hex}")
}

/// Lane `lane`'s channel (`load/src/ranges.rs`, `lane_channel`).
fn lane_channel(base: &str, lane: u64) -> String {
    if lane == 0 {
        base.to_owned()
    } else {
        format!("{base}_{lane}")
    }
}

/// The ranges of NDJSON `bytes` as `(grid index, start, end)`: cut `k` is the byte after the
/// first line break at or after `k × STEP - 1` (`load/src/ranges.rs`, `ndjson_by`).
fn ranges(bytes: &[u8]) -> Vec<(u64, u64, u64)> {
    let size = bytes.len() as u64;
    let (mut out, mut k, mut index, mut start) = (Vec::new(), 1u64, 0u64, 0u64);
    while k * STEP < size {
        let from = (k * STEP - 1) as usize;
        let Some(i) = bytes[from..].iter().position(|&b| b == b'\n') else {
            break;
        };
        let cut = (from + i + 1) as u64;
        if cut >= size {
            break;
        }
        out.push((index, start, cut));
        (index, start) = (k, cut);
        k = (cut / STEP + 1).max(k + 1);
    }
    out.push((index, start, size));
    out
}

/// The IDs lane `lane` has committed when its token's position is `position`: the lines of
/// its ranges that end at or before it (a lane loads its ranges in file order).
fn committed_ids(bytes: &[u8], lane: u64, position: u64) -> Vec<u64> {
    let mut ids = Vec::new();
    for (index, start, end) in ranges(bytes) {
        if index % LANES != lane {
            continue;
        }
        let mut at = start;
        for line in bytes[start as usize..end as usize].split_inclusive(|&b| b == b'\n') {
            at += line.len() as u64;
            if at > position {
                break;
            }
            let row: serde_json::Value = serde_json::from_slice(line).unwrap();
            ids.push(row["id"].as_u64().unwrap());
        }
    }
    ids
}

/// The position a load token ends with (`v1r:4096:<hash>:<position>`).
fn position(token: &str) -> u64 {
    token.rsplit(':').next().unwrap().parse().unwrap()
}

/// `1-5,9-9` for `[1, 2, 3, 4, 5, 9]` (sorted).
fn spans(ids: &[u64]) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut i = 0;
    while i < ids.len() {
        let mut j = i;
        while j + 1 < ids.len() && ids[j + 1] == ids[j] + 1 {
            j += 1;
        }
        out.push(format!("{}-{}", ids[i], ids[j]));
        i = j + 1;
    }
    out.join(",")
}

fn parse_spans(text: &str) -> Vec<u64> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .flat_map(|s| {
            let (a, b) = s.split_once('-').unwrap();
            a.parse::<u64>().unwrap()..=b.parse::<u64>().unwrap()
        })
        .collect()
}

/// What the fixture holds: the recorded path and its base name, and per lane with a committed
/// token `(lane, channel, token, ids committed)`.
struct Fixture {
    path: String,
    base: String,
    lanes: Vec<(u64, String, String, Vec<u64>)>,
}

impl Fixture {
    fn read() -> Self {
        let text = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE))
            .expect("the fixture");
        let (mut path, mut base, mut lanes) = (None, None, Vec::new());
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let fields: Vec<&str> = line.split(' ').collect();
            match fields[..] {
                ["path", p] => path = Some(p.to_owned()),
                ["base", b] => base = Some(b.to_owned()),
                ["lane", j, name, token, ids] => lanes.push((
                    j.parse().unwrap(),
                    name.to_owned(),
                    token.to_owned(),
                    parse_spans(ids),
                )),
                _ => panic!("a fixture line not understood: {line}"),
            }
        }
        Self {
            path: path.expect("a path line"),
            base: base.expect("a base line"),
            lanes,
        }
    }
}

async fn client(lab: &Lab) -> StreamingIngestClient {
    ClientBuilder::new()
        .account("LAB")
        .user("LOADER")
        .url(lab.url())
        .private_key_file(key_file())
        .build()
        .await
        .expect("client")
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_load_killed_by_the_previous_release_resumes_on_its_lanes() {
    let fixture = Fixture::read();
    // The naming rule reproduces what the earlier release named its file's channels.
    assert_eq!(base_name(Path::new(&fixture.path)), fixture.base);
    assert!(fixture.lanes.len() > 1, "a multi-lane state");
    let lab = Lab::new();
    let file = lab.path("lanes.ndjson");
    let data = ndjson(0..ROWS);
    std::fs::write(&file, &data).unwrap();
    let base = base_name(&file.canonicalize().unwrap());
    let mut replayed = 0;
    runtime().block_on(async {
        let client = client(&lab).await;
        let pipe = client.table_pipe("D", "S", "T");
        for (lane, name, token, ids) in &fixture.lanes {
            assert_eq!(name, &lane_channel(&fixture.base, *lane), "{name}");
            // The rows the fixture says the lane committed are the rows its token covers.
            assert_eq!(ids, &committed_ids(data.as_bytes(), *lane, position(token)));
            let ch = pipe
                .open_channel(&lane_channel(&base, *lane))
                .await
                .expect("open");
            let rows: Vec<_> = ids
                .iter()
                .map(|i| serde_json::json!({"ID": i, "NAME": format!("name-{i}")}))
                .collect();
            let token = OffsetToken::new(token.clone()).unwrap();
            ch.append(Rows::serde(rows), Positions::at(token.clone()))
                .await
                .expect("append");
            ch.wait_for_commit(&token, Duration::from_secs(60))
                .await
                .expect("commit");
            ch.close().await.expect("close");
            replayed += ids.len() as u64;
        }
        // The SDK's lane stream, routed by the caller, reopens those channels with their
        // tokens as they are: what load's lanes need of it to move onto it.
        let options = OpenLanesOptions::default().routing(LaneRouting::Caller);
        let stream = pipe
            .open_lanes_with(&base, LANES as usize, options)
            .await
            .expect("open the lanes");
        let committed = stream.committed();
        for lane in 0..LANES {
            let name = lane_channel(&base, lane);
            assert_eq!(stream.lane(lane as usize).name(), name);
            let recorded = fixture.lanes.iter().find(|l| l.0 == lane);
            assert_eq!(
                committed[lane as usize].as_ref().map(OffsetToken::as_str),
                recorded.map(|l| l.2.as_str()),
                "{name}"
            );
        }
        stream.close().await.expect("close the lanes");
    });
    assert!(replayed > 0 && replayed < ROWS, "{replayed}");
    assert_eq!(lab.counts(), (replayed, replayed));
    let summary = lab.load(&[&file], ARGS).ok();
    let per_file = &summary["per_file"][0];
    // Only what the earlier release had not committed is sent: no lane starts over.
    assert_eq!(summary["rows"], ROWS - replayed, "{summary}");
    assert_eq!(lab.counts(), (ROWS, ROWS), "{summary}");
    let channels: Vec<&str> = per_file["channels"]
        .as_array()
        .expect("a multi-lane file")
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    for (lane, _, _, _) in &fixture.lanes {
        let name = lane_channel(&base, *lane);
        assert!(channels.contains(&name.as_str()), "{name}: {per_file}");
    }
    // Every channel is one of the file's lanes under the same rule.
    for c in &channels {
        assert!(
            (0..LANES).any(|j| lane_channel(&base, j) == *c),
            "{c}: {per_file}"
        );
    }
}

/// Records the fixture with an earlier release's binary:
/// `SNOWPIPE_OLD_BIN=/path/to/old/snowpipe cargo test -p snowpipe-load --test it -- --ignored
/// record_the_previous_release_fixture`. It kills that binary once a tenth of the rows
/// are in and writes each lane's committed token and the rows it covers.
#[test]
#[ignore = "needs SNOWPIPE_OLD_BIN, an earlier release's binary"]
fn record_the_previous_release_fixture() {
    let old = std::env::var("SNOWPIPE_OLD_BIN").expect("SNOWPIPE_OLD_BIN");
    let commit = std::env::var("SNOWPIPE_OLD_COMMIT").unwrap_or_else(|_| "unknown".into());
    let lab = Lab::new();
    let file = lab.path("lanes.ndjson");
    let data = ndjson(0..ROWS);
    std::fs::write(&file, &data).unwrap();
    let mut cmd = lab.command_of(Path::new(&old), &[&file], ARGS);
    cmd.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
    let mut child = cmd.spawn().expect("start the old binary");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline && lab.count() < ROWS / 10 {
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let canonical = file.canonicalize().unwrap();
    let base = base_name(&canonical);
    let mut out = format!(
        "# The state `snowpipe load` of commit {commit} left when SIGKILLed mid-way through\n\
         # loading ndjson(0..{ROWS}) with {ARGS:?}: per lane with a committed token, its\n\
         # channel, token and the IDs it committed. Regenerate with SNOWPIPE_OLD_BIN (and\n\
         # SNOWPIPE_OLD_COMMIT) set: see `record_the_previous_release_fixture`.\n\
         path {}\nbase {base}\n",
        canonical.display()
    );
    let mut all = Vec::new();
    runtime().block_on(async {
        let client = client(&lab).await;
        let pipe = client.table_pipe("D", "S", "T");
        for lane in 0..LANES {
            let name = lane_channel(&base, lane);
            let ch = pipe.open_channel(&name).await.expect("open");
            if let Some(token) = ch.latest_committed_offset_token() {
                let ids = committed_ids(data.as_bytes(), lane, position(token.as_str()));
                out.push_str(&format!(
                    "lane {lane} {name} {} {}\n",
                    token.as_str(),
                    spans(&ids)
                ));
                all.extend(ids);
            }
            ch.close().await.expect("close");
        }
    });
    all.sort_unstable();
    let mut table: Vec<u64> = lab
        .rows("ID")
        .iter()
        .map(|r| r[0].as_u64().unwrap())
        .collect();
    table.sort_unstable();
    assert_eq!(all, table, "the tokens cover exactly the rows committed");
    std::fs::write(Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE), out).unwrap();
}
