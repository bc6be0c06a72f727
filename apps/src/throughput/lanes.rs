//! `--lanes N`: the rows as one logical stream over N lanes (the SDK's `LaneStream`, keyed):
//! one producer, as a user with one fast source, appends each batch to the lane of its key
//! (the batch's number: a batch's rows stay together, a lane's positions rise), with the
//! batch's rows numbered in one sequence across lanes; then waits for every lane's commit.

use std::sync::Arc;
use std::time::{Duration, Instant};

use snowpipe_streaming::{LaneStream, OffsetToken, Positions, Rows};

use super::rows::Ticket;
use super::ChannelResult;

/// Appends `rows` rows of `pool`, `batch` at a time, through `stream`; times since `t0`.
///
/// # Errors
/// An append, flush or commit wait that fails (past 120 s).
pub(super) async fn produce(
    stream: Arc<LaneStream>,
    pool: Arc<Vec<Ticket>>,
    rows: u64,
    batch: usize,
    t0: Instant,
) -> anyhow::Result<ChannelResult> {
    let p = pool.len();
    let (mut sent, mut batch_no, mut longest_wait) = (0u64, 0u64, Duration::ZERO);
    while sent < rows {
        let n = (rows - sent).min(batch as u64) as usize;
        let first = sent as usize;
        let it = (0..n).map(|j| &pool[(first + j) % p]);
        let called = Instant::now();
        stream
            .append_keyed(
                &batch_no.to_le_bytes(),
                Rows::serde(it),
                Positions::span(OffsetToken::from(sent + 1)..=OffsetToken::from(sent + n as u64)),
            )
            .await?;
        longest_wait = longest_wait.max(called.elapsed());
        sent += n as u64;
        batch_no += 1;
    }
    stream.flush().await?;
    let flushed = t0.elapsed();
    stream.wait_for_commit(Duration::from_secs(120)).await?;
    Ok(ChannelResult {
        flushed,
        committed: t0.elapsed(),
        longest_wait,
    })
}
