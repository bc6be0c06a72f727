//! Kinesis sequence numbers as offset tokens.
//!
//! A sequence number is a decimal string (`0|[1-9][0-9]{0,128}` in the Kinesis API reference;
//! 56 digits in practice, past 2^128), unique and increasing within a shard but not
//! contiguous. It is the channel's offset token as it is; it is compared as a number (longer is
//! larger, then digit by digit), never as text, where "9" would follow "10". The SDK orders
//! numeric tokens of any length the same way (`OffsetToken::partial_cmp_numeric`), so
//! `wait_for_commit` and the check that a channel's tokens increase hold for them.

use std::cmp::Ordering;
use std::fmt;

use anyhow::{bail, Result};
use snowpipe_streaming::OffsetToken;

/// The longest sequence number the Kinesis API allows (`[1-9][0-9]{0,128}`).
const MAX_DIGITS: usize = 129;

/// A Kinesis sequence number, ordered by value.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SequenceNumber(String);

impl SequenceNumber {
    /// Reads a sequence number as Kinesis writes it.
    ///
    /// # Errors
    /// When `s` is not canonical decimal digits (no sign, no leading zero, at most 129 digits).
    pub fn parse(s: &str) -> Result<Self> {
        let canonical = !s.is_empty()
            && s.len() <= MAX_DIGITS
            && s.bytes().all(|b| b.is_ascii_digit())
            && (s == "0" || !s.starts_with('0'));
        if !canonical {
            let shown: String = s.chars().take(80).collect();
            bail!("{shown:?} is not a Kinesis sequence number (1 to 129 decimal digits, no leading zero)");
        }
        Ok(SequenceNumber(s.to_owned()))
    }

    /// The digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The offset token of a record at this sequence number.
    pub fn token(&self) -> OffsetToken {
        OffsetToken::new(self.0.as_str()).expect("a sequence number is a valid offset token")
    }

    /// A channel's committed token read back as a sequence number.
    ///
    /// # Errors
    /// When the token is not one (another program fed the channel): the message names the
    /// channel and the fix.
    pub fn from_token(token: &OffsetToken, channel: &str) -> Result<Self> {
        Self::parse(token.as_str()).map_err(|_| {
            anyhow::anyhow!(
                "channel {channel}'s committed offset token {token:?} is not a Kinesis sequence \
                 number: it was fed by another program; use another --stream name or another pipe"
            )
        })
    }
}

impl Ord for SequenceNumber {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .len()
            .cmp(&other.0.len())
            .then_with(|| self.0.cmp(&other.0))
    }
}

impl PartialOrd for SequenceNumber {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SequenceNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SequenceNumber({})", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(s: &str) -> SequenceNumber {
        SequenceNumber::parse(s).unwrap()
    }

    #[test]
    fn compares_by_value_past_two_to_the_64_and_128() {
        // 2^64 and 2^64 - 1: the u64 boundary.
        assert!(seq("18446744073709551616") > seq("18446744073709551615"));
        // As text "9" sorts after "18446744073709551616".
        assert!(seq("9") < seq("18446744073709551616"));
        // 2^128 and 2^128 - 1.
        assert!(
            seq("340282366920938463463374607431768211456")
                > seq("340282366920938463463374607431768211455")
        );
        // Two sequence numbers kinesalite gave one shard, in order.
        let a = seq("49680554656172739339215971155024248448455596580506959874");
        let b = seq("49680554656172739339215971155026666300094825838856372226");
        assert!(a < b);
        assert_eq!(
            a.token().partial_cmp_numeric(&b.token()),
            Some(Ordering::Less)
        );
        assert!(b.token().reaches(&a.token()));
    }

    #[test]
    fn sorts_a_shuffled_list_as_numbers() {
        use rand::seq::SliceRandom;
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(57);
        let mut values: Vec<u128> = (0..200)
            .map(|i| {
                if i % 2 == 0 {
                    rand::Rng::gen::<u64>(&mut rng) as u128
                } else {
                    rand::Rng::gen(&mut rng)
                }
            })
            .collect();
        let mut seqs: Vec<SequenceNumber> = values.iter().map(|v| seq(&v.to_string())).collect();
        seqs.shuffle(&mut rng);
        seqs.sort();
        values.sort_unstable();
        let back: Vec<u128> = seqs.iter().map(|s| s.as_str().parse().unwrap()).collect();
        assert_eq!(back, values);
    }

    #[test]
    fn refuses_what_is_not_a_sequence_number() {
        for bad in ["", "-1", "+1", "007", "1.5", "12a", &"9".repeat(130)] {
            assert!(SequenceNumber::parse(bad).is_err(), "{bad:?}");
        }
        assert!(SequenceNumber::parse("0").is_ok());
        assert!(SequenceNumber::parse(&"9".repeat(129)).is_ok());
        let err = SequenceNumber::from_token(&OffsetToken::new("abc").unwrap(), "S_shardId-0")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("S_shardId-0") && err.contains("not a Kinesis sequence number"),
            "{err}"
        );
    }
}
