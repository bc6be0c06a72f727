//! `--limits snowflake`: the service's documented limits (docs/protocol.md "Limits").
//!
//! * 4 MB per request on the wire → 413 (always on: [`crate::config::MAX_PAYLOAD_BYTES`] is the
//!   default `--max-payload`).
//! * Per named channel, 10 appends/s and 20 MB/s uncompressed → 429
//!   `ERR_TOO_MANY_REQUESTS`. Each is a token bucket that starts full (a burst of 10 requests
//!   or 20 MB) and refills at its rate; a request is admitted while both buckets are
//!   positive and then charged, so one large request is never refused forever.
//! * 2,000 named channels per pipe → 400 `ERR_TOO_MANY_CHANNELS` on the open that would make
//!   the 2,001st.
//! * 10 pipes per table, its default pipe counted once it exists (from its first pipe-info,
//!   open or append) → the DDL is refused at start when its declared pipes (and a default
//!   pipe an earlier run created) pass 10; with 10 declared pipes, the call that would create
//!   the default pipe is answered 400 `ERR_TOO_MANY_PIPES`.

use std::str::FromStr;
use std::time::Instant;

/// Which service limits the emulator enforces.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Limits {
    /// Only the request-size cap (`max_payload_bytes`).
    #[default]
    Off,
    /// Snowflake's documented per-channel, per-pipe and per-table limits.
    Snowflake,
}

impl FromStr for Limits {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "off" | "none" => Ok(Self::Off),
            "snowflake" => Ok(Self::Snowflake),
            _ => Err(format!("unknown limits {s:?}: use snowflake or off")),
        }
    }
}

/// Appends per second per named channel.
pub const APPENDS_PER_SECOND: f64 = 10.0;
/// Uncompressed bytes per second per named channel.
pub const BYTES_PER_SECOND: f64 = 20_000_000.0;
/// Named channels per pipe.
pub const CHANNELS_PER_PIPE: usize = 2_000;
/// Pipes per table, its default pipe included once it exists.
pub const PIPES_PER_TABLE: usize = 10;

/// A channel's two token buckets.
#[derive(Debug, Clone)]
pub(crate) struct ChannelRate {
    appends: f64,
    bytes: f64,
    at: Instant,
}

impl ChannelRate {
    pub(crate) fn new(now: Instant) -> Self {
        Self {
            appends: APPENDS_PER_SECOND,
            bytes: BYTES_PER_SECOND,
            at: now,
        }
    }

    /// Admits an append of `uncompressed` bytes at `now`, or says which limit it exceeds.
    pub(crate) fn admit(&mut self, now: Instant, uncompressed: usize) -> Result<(), String> {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.at = now;
        self.appends = (self.appends + dt * APPENDS_PER_SECOND).min(APPENDS_PER_SECOND);
        self.bytes = (self.bytes + dt * BYTES_PER_SECOND).min(BYTES_PER_SECOND);
        if self.appends < 1.0 {
            return Err(format!(
                "more than {APPENDS_PER_SECOND} appends per second on this channel"
            ));
        }
        if self.bytes <= 0.0 {
            return Err(format!(
                "more than {} MB/s uncompressed on this channel",
                BYTES_PER_SECOND / 1e6
            ));
        }
        self.appends -= 1.0;
        self.bytes -= uncompressed as f64;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_allow_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut r = ChannelRate::new(t0);
        for _ in 0..10 {
            r.admit(t0, 100).unwrap();
        }
        assert!(r.admit(t0, 100).unwrap_err().contains("appends per second"));
        r.admit(t0 + Duration::from_millis(100), 100).unwrap();
        // One 30 MB request is admitted (the bucket was positive), the next waits 0.5 s.
        let mut r = ChannelRate::new(t0);
        r.admit(t0, 30_000_000).unwrap();
        assert!(r
            .admit(t0 + Duration::from_millis(400), 1)
            .unwrap_err()
            .contains("MB/s"));
        r.admit(t0 + Duration::from_millis(600), 1).unwrap();
    }
}
