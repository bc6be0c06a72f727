//! A [`LaneStream`](crate::LaneStream) on a target: written by one process that stops without
//! a close, reopened by another with the same count, resized by drain and hand-over, then
//! reopened once more with the new count: the table holds every record once, and a reopen
//! with the old count is refused.
//!
//! And a stream routed by the caller taking over lanes a writer opened one by one (as
//! `snowpipe load` did before the stream type): their tokens resume it, every record once.

use std::sync::Arc;
use std::time::Duration;

use super::{ConformanceTarget, Knobs, Row};
use crate::{LaneRouting, LaneStream, OffsetToken, OpenLanesOptions, Positions, Rows};

/// Hands records `1..=until` (key `k<id mod 7>`) to `stream`, skipping those it says are
/// committed.
async fn feed(stream: &LaneStream, until: u64) {
    for id in 1..=until {
        let key = format!("k{}", id % 7);
        let lane = stream.lane_of(key.as_bytes());
        let at = OffsetToken::from(id);
        if stream.is_committed(lane, &at) {
            continue;
        }
        let row = Row {
            id,
            pad: key.clone(),
        };
        stream
            .append(lane, Rows::serde([row]), Positions::at(at))
            .await
            .expect("append");
    }
}

/// Four lanes written to 200 and dropped; reopened with four (three refused), on to 300, resized
/// to two at 300, on to 400; reopened with two and fed from the start: 400 rows, each once.
pub async fn a_lane_stream_resumes_and_resizes_exactly(target: Arc<dyn ConformanceTarget>) {
    let wait = Duration::from_secs(60);
    let table = target.create_table("lanes").await;
    let pipe = |c: &crate::StreamingIngestClient| {
        c.table_pipe(&table.database, &table.schema, &table.name)
    };
    let first = target.client(&table, &Knobs::default()).await;
    let stream = pipe(&first).open_lanes("s", 4).await.expect("open 4");
    feed(&stream, 200).await;
    drop(stream);

    let second = target.client(&table, &Knobs::default()).await;
    let refused = pipe(&second).open_lanes("s", 3).await.expect_err("3 of 4");
    assert!(refused.to_string().contains("has 4 lanes"), "{refused}");
    let stream = pipe(&second).open_lanes("s", 4).await.expect("reopen 4");
    feed(&stream, 300).await;
    let stream = stream
        .resize(2, &OffsetToken::from(300u64), wait)
        .await
        .expect("resize to 2");
    feed(&stream, 400).await;
    stream.wait_for_commit(wait).await.expect("commit");
    stream.close().await.expect("close");

    let third = target.client(&table, &Knobs::default()).await;
    let stream = pipe(&third).open_lanes("s", 2).await.expect("reopen 2");
    assert_eq!(stream.boundary(), Some(&OffsetToken::from(300u64)));
    feed(&stream, 400).await;
    stream.close().await.expect("close");
    let ids = target.ids(&table).await;
    assert_eq!(ids, (1..=400).collect::<Vec<i64>>(), "every record once");
}

/// Records of range `k` (`50k+1..=50k+50`) go to lane `k`, which no count moves. A writer opens
/// lanes 0 and 1 one by one, writes ranges 0 and 1 up to record 80 and stops without a close;
/// the stream of three lanes routed by the caller resumes from their tokens and writes range 2:
/// 150 rows, each once.
pub async fn a_caller_routed_stream_resumes_lanes_opened_one_by_one(
    target: Arc<dyn ConformanceTarget>,
) {
    let wait = Duration::from_secs(60);
    let table = target.create_table("callerlanes").await;
    let pipe = |c: &crate::StreamingIngestClient| {
        c.table_pipe(&table.database, &table.schema, &table.name)
    };
    let rows = |from: u64, to: u64| {
        let rows: Vec<Row> = (from..=to)
            .map(|id| Row {
                id,
                pad: format!("r{}", (id - 1) / 50),
            })
            .collect();
        (Rows::serde(rows), Positions::span(from.into()..=to.into()))
    };
    let first = target.client(&table, &Knobs::default()).await;
    let lane0 = pipe(&first).open_channel("c").await.expect("open c");
    let lane1 = pipe(&first).open_channel("c_1").await.expect("open c_1");
    let (r, p) = rows(1, 50);
    lane0.append(r, p).await.expect("append");
    let (r, p) = rows(51, 80);
    lane1.append(r, p).await.expect("append");
    lane1
        .wait_for_commit(&OffsetToken::from(80u64), wait)
        .await
        .expect("commit");
    drop((lane0, lane1));

    let second = target.client(&table, &Knobs::default()).await;
    let caller = OpenLanesOptions::default().routing(LaneRouting::Caller);
    let stream = pipe(&second)
        .open_lanes_with("c", 3, caller)
        .await
        .expect("open 3, routed by the caller");
    assert_eq!(stream.committed()[1], Some(OffsetToken::from(80u64)));
    for k in 0..3u64 {
        for id in 50 * k + 1..=50 * k + 50 {
            let lane = k as usize;
            let at = OffsetToken::from(id);
            if stream.is_committed(lane, &at) {
                continue;
            }
            let (r, p) = rows(id, id);
            stream.append(lane, r, p).await.expect("append");
        }
    }
    stream.wait_for_commit(wait).await.expect("commit");
    stream.close().await.expect("close");
    let ids = target.ids(&table).await;
    assert_eq!(ids, (1..=150).collect::<Vec<i64>>(), "every record once");
}
