//! The two stages every row of the sink goes through, alone, on the bench's own messages: the
//! JSON check (`formats::json_check`) and zstd at the SDK's default level. With the floor
//! (reading alone), they make the least any sink that checks and compresses every row spends
//! on this machine, printed beside what the sink spent: the part of its CPU that is the
//! machine's and the format's, and the part that is ours (batches, requests, TLS, memory).
//!
//! Each stage runs on one thread over the same messages the backlog holds, 4 MiB of NDJSON at
//! a time (the messages are made outside the clock), and is timed with the thread's own CPU
//! clock, so neither the lab's threads nor the messages' making are counted. zstd compresses
//! as the SDK's early frames do (`src/pipeline/compress/frame.rs`): level 1, the SDK's default
//! (`ChannelSettings::default` in `src/settings.rs`), a window of 128 KiB, one frame per 4 MiB
//! of rows, fed 64 KiB at a time. Beside the check, the one it replaced (`std::str::from_utf8`
//! and `serde_json` into `IgnoredAny`) is timed over the same messages.

use std::io::Write;

use anyhow::{Context, Result};

use crate::bench::load::Load;

/// The SDK's default zstd level (`src/settings.rs`), which the sink runs at.
pub(crate) const SDK_ZSTD_LEVEL: i32 = 1;
/// log2 of the SDK's early frames' window (`FRAME_WINDOW_LOG` in
/// `src/pipeline/compress/frame.rs`).
const WINDOW_LOG: u32 = 17;
/// Rows a frame holds (about what a busy partition's batch holds at the default lag).
const FRAME_BYTES: usize = 4 << 20;
/// Bytes fed to the frame at once.
const FEED_BYTES: usize = 64 << 10;

/// What the stages alone cost over `bytes` of message values.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Stages {
    /// Bytes of message values (without the line feeds the rows add).
    pub(crate) bytes: u64,
    /// CPU seconds of the JSON check over every message.
    pub(crate) check_s: f64,
    /// CPU seconds of the check the sink made before its own (`json_check`'s module docs):
    /// `std::str::from_utf8`, then `serde_json` into `IgnoredAny`, over every message.
    pub(crate) serde_s: f64,
    /// CPU seconds of zstd over every message as an NDJSON line.
    pub(crate) zstd_s: f64,
    /// Uncompressed bytes per compressed byte.
    pub(crate) ratio: f64,
}

impl Stages {
    /// The JSON check's CPU seconds per GB of messages.
    pub(crate) fn check_per_gb(&self) -> f64 {
        self.check_s / self.gb()
    }

    /// The serde_json check's CPU seconds per GB of messages.
    pub(crate) fn serde_per_gb(&self) -> f64 {
        self.serde_s / self.gb()
    }

    /// zstd's CPU seconds per GB of messages.
    pub(crate) fn zstd_per_gb(&self) -> f64 {
        self.zstd_s / self.gb()
    }

    fn gb(&self) -> f64 {
        self.bytes as f64 / 1e9
    }
}

/// Runs both stages over messages `0..messages` of `load` on a blocking thread.
///
/// # Errors
/// When a message is not one JSON value (the bench's own events always are), or zstd fails.
///
/// # Cancellation
/// Dropping the future leaves the blocking thread to finish on its own (about a second).
pub(crate) async fn measure(load: &Load, messages: u64) -> Result<Stages> {
    let load = load.clone();
    tokio::task::spawn_blocking(move || measure_here(&load, messages))
        .await
        .context("the stages' thread")?
}

fn measure_here(load: &Load, messages: u64) -> Result<Stages> {
    let mut stages = Stages {
        bytes: 0,
        check_s: 0.0,
        serde_s: 0.0,
        zstd_s: 0.0,
        ratio: 0.0,
    };
    let mut rows = Vec::with_capacity(FRAME_BYTES + (64 << 10));
    let mut ends = Vec::new();
    let mut body = Vec::with_capacity(FRAME_BYTES);
    let (mut lines, mut compressed) = (0u64, 0u64);
    let mut id = 0;
    while id < messages {
        rows.clear();
        ends.clear();
        while id < messages && rows.len() < FRAME_BYTES {
            rows.extend_from_slice(load.message(id).as_bytes());
            ends.push(rows.len());
            rows.push(b'\n');
            id += 1;
        }
        let t = thread_cpu_s();
        let mut start = 0;
        for &end in &ends {
            if !snowpipe_kafka::is_one_value(&rows[start..end]) {
                anyhow::bail!("message {id}'s frame holds a value that is not JSON");
            }
            start = end + 1;
        }
        let t_check = thread_cpu_s();
        let mut start = 0;
        for &end in &ends {
            let text = std::str::from_utf8(&rows[start..end])?;
            serde_json::from_str::<serde::de::IgnoredAny>(text)?;
            start = end + 1;
        }
        let t_serde = thread_cpu_s();
        body.clear();
        let mut frame = zstd::stream::write::Encoder::new(&mut body, SDK_ZSTD_LEVEL)?;
        frame.window_log(WINDOW_LOG)?;
        for piece in rows.chunks(FEED_BYTES) {
            frame.write_all(piece)?;
        }
        frame.finish()?;
        let t_zstd = thread_cpu_s();
        stages.check_s += t_check - t;
        stages.serde_s += t_serde - t_check;
        stages.zstd_s += t_zstd - t_serde;
        stages.bytes += (rows.len() - ends.len()) as u64;
        lines += rows.len() as u64;
        compressed += body.len() as u64;
    }
    {
        stages.ratio = lines as f64 / compressed.max(1) as f64;
    }
    Ok(stages)
}

/// This thread's CPU seconds so far (user and system).
fn thread_cpu_s() -> f64 {
    crate::bench::measure::thread_usage().cpu_s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bench::Events;

    /// Both stages take time over a few MB of events, and level 1 compresses clickstream
    /// events several times over.
    #[test]
    fn the_stages_cost_something_and_compress_events() {
        let load = Load::one_topic(1, Events::Realistic, 1024);
        let stages = measure_here(&load, 6_000).unwrap();
        assert!(stages.bytes > 5_000_000, "{stages:?}");
        assert!(
            stages.check_s > 0.0 && stages.serde_s > 0.0 && stages.zstd_s > 0.0,
            "{stages:?}"
        );
        assert!(stages.ratio > 4.0, "{stages:?}");
    }
}
