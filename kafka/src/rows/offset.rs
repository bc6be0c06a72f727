//! A Kafka offset as the sink carries it to the SDK's offset tokens and back: the one place
//! the two meet.
//!
//! The offset is librdkafka's `i64` (a message's is never negative). A row's offset token is
//! its offset in decimal: the sink hands the SDK the number ([`KafkaOffset::token`], what
//! [`RawRows`](snowpipe_streaming::RawRows) takes), the SDK writes it as text, and that text is
//! what Snowflake's Kafka connector writes and resumes from (the token + 1), so either can take
//! a channel over from the other. A committed token names an offset when it is such a number
//! ([`KafkaOffset::committed`]); a partition resumes at the offset after it
//! ([`KafkaOffset::next`]), which is also the group offset committed to Kafka for lag tools.
//!
//! A Kafka offset has this one type from the poll thread to the commit: the router reads it off
//! librdkafka's message into the batch, and the worker's last offset, the dead letters, the
//! commit tracker, the hand-over and the commits to Kafka carry it. It becomes librdkafka's
//! `i64` again ([`KafkaOffset::get`]) only where rdkafka takes one (a seek's or a commit list's
//! `Offset::Offset`), and a token ([`KafkaOffset::token`]) only where the SDK takes one; the
//! partition's counters hold it in an `AtomicI64` (`-1`, [`KafkaOffset::BEFORE_FIRST`]: none).

use std::fmt;

use snowpipe_streaming::OffsetToken;

/// A Kafka offset (see the module docs). The same `i64` as librdkafka's, carried from the poll
/// thread to the commit at no cost; converted only where rdkafka takes one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[repr(transparent)]
pub struct KafkaOffset(i64);

impl KafkaOffset {
    /// The offset before a partition's first (`-1`): where a partition with no committed
    /// offset has written up to.
    pub const BEFORE_FIRST: Self = Self(-1);

    /// The offset librdkafka reports.
    pub const fn new(offset: i64) -> Self {
        Self(offset)
    }

    /// The offset as librdkafka takes it.
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The offset token of the row at this offset, as the SDK takes it (a number, written in
    /// decimal).
    pub const fn token(self) -> u64 {
        self.0.unsigned_abs()
    }

    /// The offset a row's token names (`None`: past any Kafka offset).
    pub fn from_token(token: u64) -> Option<Self> {
        i64::try_from(token).ok().map(Self)
    }

    /// The offset a channel's committed token names (`None`: no token, or not a Kafka offset:
    /// not a number, or past any Kafka offset).
    pub fn committed(token: Option<&OffsetToken>) -> Option<Self> {
        token
            .and_then(OffsetToken::as_u64)
            .and_then(Self::from_token)
    }

    /// The offset after it: where its partition resumes once it is committed, and the group
    /// offset committed to Kafka.
    #[must_use]
    pub const fn next(self) -> Self {
        Self(self.0.saturating_add(1))
    }
}

impl fmt::Display for KafkaOffset {
    /// In decimal, as its token.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::KafkaOffset;
    use snowpipe_streaming::OffsetToken;

    #[test]
    fn a_token_is_the_offset_in_decimal_both_ways() {
        for offset in [0_i64, 1, 41, 1 << 40, i64::MAX] {
            let o = KafkaOffset::new(offset);
            let token = OffsetToken::from(o.token());
            assert_eq!(token.as_str(), offset.to_string());
            assert_eq!(o.to_string(), offset.to_string());
            assert_eq!(KafkaOffset::committed(Some(&token)), Some(o));
        }
        assert_eq!(KafkaOffset::new(41).next(), KafkaOffset::new(42));
    }

    #[test]
    fn tokens_that_name_no_offset_are_none() {
        assert_eq!(KafkaOffset::committed(None), None);
        let past = OffsetToken::from(u64::try_from(i64::MAX).unwrap() + 1);
        assert_eq!(KafkaOffset::committed(Some(&past)), None);
        let text = OffsetToken::new("v3-token").unwrap();
        assert_eq!(KafkaOffset::committed(Some(&text)), None);
    }
}
