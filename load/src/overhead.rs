//! What `memory_budget_bytes` bounds in `snowpipe load` (issue 83): the process, not only the
//! rows. The SDK's budget counts rows (queued, buffered, compressed); the loader also holds what
//! no row accounting sees: the binary's pages and the runtime (what is resident when the
//! loading starts), each lane's read buffer, thread stack and channel task, the SDK's zstd
//! contexts, request bodies and HTTP buffers. The loader estimates that ([`Overhead`]) and
//! takes it from the client's budget before the first row ([`reserve`], the SDK's
//! `StreamingIngestClient::reserve_memory`), after the readers' half (`decode_budget.rs`):
//! the channels buffer within what is left, so the rows' share is the budget less the
//! overhead and the peak RSS stays within the budget (`load/README.md`, "Memory").
//!
//! The estimate is taken from the channels' half and never more than half of it (a quarter of
//! what the budget holds for rows), so the channels keep room for their requests; a budget
//! too small for the overhead is loaded within as before, with a warning naming the size
//! that would hold.

use anyhow::{Context, Result};
use snowpipe_streaming::{MemoryReservation, StreamingIngestClient};

const MIB: u64 = 1 << 20;

/// One lane's fixed buffers: its reader's 256 KiB read buffer and line, its thread's stack
/// and its channel's task and state.
pub(crate) const PER_LANE: u64 = MIB / 2;
/// One compression job's zstd contexts: a whole-batch context (≈ 4.3 MB) and an idle early
/// frame's (≈ 1 MB); the SDK runs one job per core and caps them at an eighth of the budget.
const PER_COMPRESSOR: u64 = 11 * MIB / 2;
/// Request bodies being built and sent, the HTTP client's buffers, and code first run after
/// the start.
const WORKING: u64 = 8 * MIB;
/// What is resident at the start where it cannot be read (not Linux): about the release
/// binary's own.
const RESIDENT_ELSEWHERE: u64 = 16 * MIB;

/// The loader's memory outside the rows, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Overhead {
    /// Resident when the load starts: the binary's pages, the runtime, the connection.
    pub resident: u64,
    /// The lanes' fixed buffers ([`PER_LANE`] each).
    pub lanes: u64,
    /// The SDK's compression contexts.
    pub contexts: u64,
    /// Bodies, HTTP buffers and code run later ([`WORKING`]).
    pub working: u64,
}

impl Overhead {
    /// The estimate for `lanes` channels loading at once under a budget of `budget` bytes, with
    /// `resident` bytes resident now.
    pub(crate) fn estimate(budget: u64, lanes: u64, resident: u64) -> Self {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as u64;
        Self {
            resident,
            lanes: lanes * PER_LANE,
            contexts: (cores * PER_COMPRESSOR).min(budget / 8 + cores * MIB),
            working: WORKING,
        }
    }

    /// All of it.
    pub(crate) fn total(&self) -> u64 {
        self.resident + self.lanes + self.contexts + self.working
    }
}

/// Bytes resident in this process now (`VmRSS` of `/proc/self/status`; elsewhere
/// [`RESIDENT_ELSEWHERE`]).
pub(crate) fn resident() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| vm_rss(&s))
        .unwrap_or(RESIDENT_ELSEWHERE)
}

/// `VmRSS` of a `/proc/PID/status` text, in bytes.
fn vm_rss(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Takes the overhead of `lanes` channels from `client`'s budget (after the readers' share),
/// at most a quarter of what the budget holds for rows: the reservation (held until the run
/// ends) and the estimate.
///
/// # Errors
/// When the client's budget cannot spare it now (rows already buffered).
pub(crate) fn reserve(
    client: &StreamingIngestClient,
    lanes: usize,
) -> Result<(MemoryReservation, Overhead)> {
    let budget = client.memory_budget_bytes() as u64;
    let estimate = Overhead::estimate(budget, lanes as u64, resident());
    let most = client.max_memory_reservation() / 2;
    let wanted = usize::try_from(estimate.total()).unwrap_or(usize::MAX);
    let taken = wanted.min(most);
    if wanted > most {
        tracing::warn!(
            "memory_budget_bytes {} MiB is too small to hold this load's fixed memory too \
             ({} MiB: {} resident at the start, {} for {lanes} channels, {} for compression, {} \
             working): the rows keep what is left, and the peak RSS may pass the budget by up \
             to {} MiB; raise memory_budget_bytes to at least {} MiB to bound it",
            budget / MIB,
            estimate.total().div_ceil(MIB),
            estimate.resident / MIB,
            estimate.lanes / MIB,
            estimate.contexts / MIB,
            estimate.working / MIB,
            (wanted - taken).div_ceil(MIB as usize),
            needed(client, estimate.total()).div_ceil(MIB),
        );
    }
    let held = client
        .reserve_memory(taken)
        .context("cannot take the loader's fixed memory from memory_budget_bytes")?;
    Ok((held, estimate))
}

/// The budget whose rows' quarter holds `overhead` (the client holds the same part of any
/// budget for rows).
fn needed(client: &StreamingIngestClient, overhead: u64) -> u64 {
    let budget = client.memory_budget_bytes() as u64;
    let for_rows = (2 * client.max_memory_reservation() as u64).max(1);
    (4 * overhead).saturating_mul(budget) / for_rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_adds_what_is_resident_the_lanes_and_the_contexts() {
        let o = Overhead::estimate(256 * MIB, 16, 12 * MIB);
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZero::get) as u64;
        assert_eq!(o.lanes, 8 * MIB);
        assert_eq!(
            o.contexts,
            (cores * PER_COMPRESSOR).min(32 * MIB + cores * MIB)
        );
        assert_eq!(o.total(), 12 * MIB + 8 * MIB + o.contexts + WORKING);
        let small = Overhead::estimate(16 * MIB, 1, 0);
        assert_eq!(
            small.contexts,
            (cores * PER_COMPRESSOR).min(2 * MIB + cores * MIB)
        );
    }

    #[test]
    fn vm_rss_is_read_in_kilobytes() {
        let status = "Name:\tsnowpipe\nVmHWM:\t  9000 kB\nVmRSS:\t   12288 kB\nThreads:\t3\n";
        assert_eq!(vm_rss(status), Some(12 * MIB));
        assert_eq!(vm_rss("Name:\tx\n"), None);
        assert!(resident() > 0);
    }
}
