//! Noticing a binlog connection that went silent (a firewall or NAT that dropped its state
//! sends no FIN or RST: the socket stays open and nothing arrives).
//!
//! `follow` asks the server for a heartbeat (`SET @master_heartbeat_period = <ns>` before
//! `COM_BINLOG_DUMP`, as a MariaDB/MySQL replica does): the server sends a
//! `HEARTBEAT_LOG_EVENT` (type 27, which `mysql_common` parses as `HeartbeatEvent`) whenever
//! it had no event to send for a period. A read that brings neither an event nor a heartbeat
//! for [`Heartbeat::read_timeout`] (a few periods) means the connection is gone: it ends as
//! a lost connection and `follow` connects again, from each table's last appended change.
//! Connecting and opening the stream are bounded the same way. A heartbeat is not a binlog
//! event: it never counts as activity for `--until-idle`.

use std::time::Duration;

/// The heartbeat period when `--heartbeat` is not given.
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(10);

/// The shortest period `--heartbeat` takes (the server's floor is 1 ms; shorter than this is
/// traffic with no use).
pub const MIN_PERIOD: Duration = Duration::from_millis(100);

/// The longest period `--heartbeat` takes (the read timeout is a few of them).
pub const MAX_PERIOD: Duration = Duration::from_secs(600);

/// How many periods without a heartbeat or an event end the connection.
pub const PERIODS_BEFORE_TIMEOUT: u32 = 3;

/// The shortest time connecting and opening the stream may take (a loaded server answers a
/// handshake slowly; a heartbeat period of 100 ms must not make that a failure).
const MIN_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// The heartbeat a binlog connection asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Heartbeat {
    period: Duration,
}

impl Default for Heartbeat {
    fn default() -> Self {
        Self {
            period: DEFAULT_PERIOD,
        }
    }
}

impl Heartbeat {
    /// A heartbeat of `period`.
    ///
    /// # Errors
    /// When `period` is outside [`MIN_PERIOD`]`..=`[`MAX_PERIOD`], naming the range.
    pub fn new(period: Duration) -> Result<Self, String> {
        if !(MIN_PERIOD..=MAX_PERIOD).contains(&period) {
            return Err(format!(
                "--heartbeat {period:?}: expected {MIN_PERIOD:?} to {MAX_PERIOD:?} (the server \
                 sends a heartbeat after this long without an event; {PERIODS_BEFORE_TIMEOUT} \
                 periods without one end the connection and follow connects again)"
            ));
        }
        Ok(Self { period })
    }

    /// Parses a `--heartbeat` value (`10s`, `500ms`).
    ///
    /// # Errors
    /// A malformed duration or one outside the range, named.
    pub fn parse(text: &str) -> Result<Self, String> {
        Self::new(snowpipe_streaming::duration::parse(text).map_err(|e| e.to_string())?)
    }

    /// The period.
    pub fn period(self) -> Duration {
        self.period
    }

    /// The statement that asks the server for it: the period in nanoseconds.
    pub fn statement(self) -> String {
        format!("SET @master_heartbeat_period = {}", self.period.as_nanos())
    }

    /// How long a read may bring nothing, not even a heartbeat, before the connection is
    /// taken for lost.
    pub fn read_timeout(self) -> Duration {
        self.period * PERIODS_BEFORE_TIMEOUT
    }

    /// How long connecting and opening the binlog stream may take.
    pub fn connect_timeout(self) -> Duration {
        self.read_timeout().max(MIN_CONNECT_TIMEOUT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_period_is_bounded_and_asked_for_in_nanoseconds() {
        let h = Heartbeat::parse("250ms").unwrap();
        assert_eq!(h.statement(), "SET @master_heartbeat_period = 250000000");
        assert_eq!(h.read_timeout(), Duration::from_millis(750));
        assert_eq!(h.connect_timeout(), Duration::from_secs(5));
        assert_eq!(Heartbeat::default().read_timeout(), Duration::from_secs(30));
        let e = Heartbeat::parse("10ms").unwrap_err();
        assert!(e.contains("--heartbeat") && e.contains("100ms"), "{e}");
        assert!(Heartbeat::parse("11m").is_err());
        assert!(Heartbeat::parse("soon").is_err());
    }
}
