//! The caps on the numbers that size what the harness allocates, checked right after the
//! command line is parsed and before anything is sized by them: a typo of a few zeros is
//! refused naming the flag, the limit and the fix, not an abort on a failed allocation.

use anyhow::{bail, Result};

/// The most rows `--pool` may generate (each a few hundred bytes in memory; written by
/// `--write-rows`, ~340 bytes a row, they stay under [`MAX_INPUT_BYTES`]).
pub(super) const MAX_POOL: usize = 500_000;
/// The most `--input` may hold: the benchmark's rows, loaded into memory by design.
pub(super) const MAX_INPUT_BYTES: u64 = 256 << 20;
/// The most channels `--channels` may stream through (one task and buffer each).
pub(super) const MAX_CHANNELS: usize = 10_000;
/// The most idle channels `--idle-channels` may open.
pub(super) const MAX_IDLE_CHANNELS: usize = 100_000;
/// The most lanes `--lanes` may open: the SDK's own cap on a lane stream.
pub(super) const MAX_LANES: usize = snowpipe_streaming::LaneStream::MAX_LANES;
/// The most rows one append may carry (`--batch`).
pub(super) const MAX_BATCH: usize = 1_000_000;

/// Refuses a size past its cap, naming the flag, the cap and the fix.
///
/// # Errors
/// The first of `sizes` (flag, value, cap) whose value is past its cap.
pub(super) fn check(sizes: &[(&str, usize, usize)]) -> Result<()> {
    for &(flag, value, cap) in sizes {
        if value > cap {
            bail!(
                "{flag} {value} is more than the harness sizes: it takes at most {cap}; give a \
                 smaller {flag}"
            );
        }
    }
    Ok(())
}
