//! Channel settings: their defaults, the one place for their accepted ranges, and the
//! validation the client builder reports by setting name.

use std::time::Duration;

#[cfg(any(test, feature = "bench-internals"))]
use crate::pipeline::compress::codec::Codec;
use crate::pipeline::compress::CompressorPool;
use crate::pipeline::encode::RowCap;
use crate::Compression;
use crate::{Error, Result};

/// Smallest accepted `max_client_lag`.
pub(crate) const MIN_CLIENT_LAG: Duration = Duration::from_millis(10);
/// Largest accepted `max_client_lag`.
pub(crate) const MAX_CLIENT_LAG: Duration = Duration::from_secs(600);
/// Smallest accepted `max_request_bytes`.
pub(crate) const MIN_REQUEST_BYTES: usize = 1024;
/// Largest accepted `max_request_bytes`: 4 MB on the wire, Snowflake's hard per-request cap
/// ("not raised on request"; one byte more answers 413; docs/protocol.md "Limits").
pub(crate) const MAX_REQUEST_BYTES: usize = 4_000_000;
/// Largest row sent alone in a request when it compresses into one: 64 MiB, the service's
/// values go to 16 MB each (docs/protocol.md "Limits"; the emulator's own cap after
/// decompression is the same 64 MiB).
pub(crate) const MAX_ROW_BYTES: usize = 64 << 20;
/// Accepted `zstd_level`s (zstd's negative "fast" levels down to -7, up to 22).
pub(crate) const ZSTD_LEVELS: std::ops::RangeInclusive<i32> = -7..=22;
/// Accepted `recovery_timeout`s.
pub(crate) const RECOVERY_TIMEOUT_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_secs(1)..=Duration::from_secs(3600);
/// Accepted `commit_poll_interval`s.
pub(crate) const COMMIT_POLL_RANGE: std::ops::RangeInclusive<Duration> =
    Duration::from_millis(10)..=Duration::from_secs(60);

/// Tuning of channels, set through the client builder. Defaults are documented on the
/// builder's setters.
#[derive(Debug, Clone)]
pub(crate) struct ChannelSettings {
    /// Flush a batch this long after its first row was appended. Default 1 s.
    pub(crate) max_client_lag: Duration,
    /// Target size of one append request on the wire (after compression). Default 4 MB.
    pub(crate) max_request_bytes: usize,
    /// Client-wide budget of buffered + sent-but-uncommitted bytes. Default 256 MiB.
    pub(crate) memory_budget_bytes: usize,
    /// Compression of append bodies. Default zstd.
    pub(crate) compression: Compression,
    /// zstd level. Default 1: on ski-resort NDJSON (≈339 B rows) `zstd -b1 -e3` measured
    /// level 1 at 249 MB/s and ratio 4.83, level 3 at 151 MB/s and ratio 4.41.
    pub(crate) zstd_level: i32,
    /// Commit poll interval while some channel has uncommitted data. Default 100 ms.
    pub(crate) commit_poll_interval: Duration,
    /// Commit poll interval while everything is committed. Default 5 s.
    pub(crate) idle_poll_interval: Duration,
    /// Longest time one automatic recovery (reopen + replay, all attempts) may take before
    /// the channel fails. Default 2 min.
    pub(crate) recovery_timeout: Duration,
    /// The pipes' `BINARY_INPUT_FORMAT`, when the builder names it; `None` (default): learned
    /// from each pipe's pipe-info call.
    pub(crate) binary_format: Option<crate::binary::BinaryFormat>,
}

impl Default for ChannelSettings {
    fn default() -> Self {
        Self {
            max_client_lag: Duration::from_secs(1),
            max_request_bytes: 4_000_000,
            memory_budget_bytes: 256 << 20,
            compression: Compression::Zstd,
            zstd_level: 1,
            commit_poll_interval: Duration::from_millis(100),
            idle_poll_interval: Duration::from_secs(5),
            recovery_timeout: Duration::from_secs(120),
            binary_format: None,
        }
    }
}

impl ChannelSettings {
    /// Checks every setting against its accepted range, naming the setting at fault.
    ///
    /// # Errors
    /// [`Error::Config`] naming the first setting outside its range, and the range.
    pub(crate) fn validate(&self) -> Result<()> {
        duration_within(
            "max_client_lag",
            self.max_client_lag,
            &(MIN_CLIENT_LAG..=MAX_CLIENT_LAG),
            "10ms..=10min",
        )?;
        if !(MIN_REQUEST_BYTES..=MAX_REQUEST_BYTES).contains(&self.max_request_bytes) {
            return Err(Error::config(
                "max_request_bytes",
                format!(
                    "{} is outside the accepted range {MIN_REQUEST_BYTES}..={MAX_REQUEST_BYTES}",
                    self.max_request_bytes
                ),
            ));
        }
        if self.memory_budget_bytes < 2 * self.max_request_bytes {
            return Err(Error::config(
                "memory_budget_bytes",
                format!(
                    "{} is less than twice max_request_bytes ({}): raise it or lower \
                     max_request_bytes",
                    self.memory_budget_bytes, self.max_request_bytes
                ),
            ));
        }
        if !ZSTD_LEVELS.contains(&self.zstd_level) {
            return Err(Error::config(
                "zstd_level",
                format!(
                    "{} is outside zstd's levels {}..={} (1 is the default and fastest \
                     non-negative level)",
                    self.zstd_level,
                    ZSTD_LEVELS.start(),
                    ZSTD_LEVELS.end()
                ),
            ));
        }
        duration_within(
            "recovery_timeout",
            self.recovery_timeout,
            &RECOVERY_TIMEOUT_RANGE,
            "1s..=1h",
        )?;
        duration_within(
            "commit_poll_interval",
            self.commit_poll_interval,
            &COMMIT_POLL_RANGE,
            "10ms..=1min",
        )
    }

    /// Clamps every setting into the range [`validate`](Self::validate) accepts (the builder
    /// validates and reports; this is the channel layer's own guard for settings made in
    /// code).
    pub(crate) fn normalized(mut self) -> Self {
        let clamp =
            |d: Duration, r: &std::ops::RangeInclusive<Duration>| d.clamp(*r.start(), *r.end());
        self.max_client_lag = self.max_client_lag.clamp(MIN_CLIENT_LAG, MAX_CLIENT_LAG);
        self.max_request_bytes = self
            .max_request_bytes
            .clamp(MIN_REQUEST_BYTES, MAX_REQUEST_BYTES);
        // Only floored: the channel layer works with any budget of at least one request (unit
        // tests use budgets smaller than the builder's two requests to reach its edges).
        self.memory_budget_bytes = self.memory_budget_bytes.max(MIN_REQUEST_BYTES);
        self.commit_poll_interval = clamp(self.commit_poll_interval, &COMMIT_POLL_RANGE);
        self.idle_poll_interval = self.idle_poll_interval.max(self.commit_poll_interval);
        self.recovery_timeout = clamp(self.recovery_timeout, &RECOVERY_TIMEOUT_RANGE);
        self.zstd_level = self
            .zstd_level
            .clamp(*ZSTD_LEVELS.start(), *ZSTD_LEVELS.end());
        self
    }

    /// How large one row may be (`encode::RowCap`): a batch, or alone up to
    /// [`MAX_ROW_BYTES`] (and half the memory budget) when it compresses into one.
    pub(crate) fn row_cap(&self) -> RowCap {
        RowCap::new(
            self.batch_cap(),
            MAX_ROW_BYTES.min(self.memory_budget_bytes / 2),
            self.compression,
            self.zstd_level,
        )
    }

    /// 1/256 plus a small header).
    pub(crate) fn batch_cap(&self) -> usize {
        match self.compression {
            Compression::None => self.max_request_bytes,
            _ => self.max_request_bytes - self.max_request_bytes / 256 - 256,
        }
    }

    /// A codec of these settings with no context yet (the first `encode` makes one).
    #[cfg(any(test, feature = "bench-internals"))]
    pub(crate) fn codec(&self) -> Codec {
        Codec::template(self.compression, self.zstd_level, self.batch_cap())
    }

    /// The client's compressors on a machine with `cores` cores.
    pub(crate) fn compressors(&self, cores: usize) -> std::sync::Arc<CompressorPool> {
        CompressorPool::for_client(
            self.compression,
            self.zstd_level,
            self.batch_cap(),
            self.memory_budget_bytes,
            cores,
        )
    }
}

/// `value` of `setting` within `range` (`shown` is the range as the message prints it).
fn duration_within(
    setting: &'static str,
    value: Duration,
    range: &std::ops::RangeInclusive<Duration>,
    shown: &str,
) -> Result<()> {
    if range.contains(&value) {
        Ok(())
    } else {
        Err(Error::config(
            setting,
            format!("{value:?} is outside the accepted range {shown}"),
        ))
    }
}
