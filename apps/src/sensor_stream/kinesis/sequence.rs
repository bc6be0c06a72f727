//! Kinesis sequence numbers as offset tokens.
//!
//! A sequence number is a decimal string (`0|[1-9][0-9]{0,128}` in the Kinesis API reference;
//! 56 digits in practice, past 2^128), unique and increasing within a shard but not
//! contiguous. It is the channel's offset token as it is; it is compared as a number (longer is
//! larger, then digit by digit), never as text, where "9" would follow "10". The SDK orders
//! numeric tokens of any length the same way (`OffsetToken::partial_cmp_numeric`), so
//! `wait_for_commit` and the check that a channel's tokens increase hold for them.
//!
//! A number is trusted only as far as its shard can have produced it
//! ([`SequenceNumber::check_after`]): at most 56 digits, the shard and second it holds, and a
//! jump past the channel's committed position no faster than a shard takes records
//! (docs/kinesis.md "What a sequence number holds"). A forged number is refused, never
//! committed, so it cannot make genuine records after it look handled.
//!
//! Those rules read a layout Kinesis does not document. Should the service change it, every
//! record would be refused and the pipeline would stop, so a switch ([`Rules::Documented`]:
//! `--trust-sequence-numbers`, `SENSOR_STREAM_TRUST_SEQUENCE_NUMBERS` for the consumer,
//! `TRUST_SEQUENCE_NUMBERS` for the Lambda handler) keeps only what AWS documents: decimal,
//! at most 129 digits ([`SequenceNumber::parse`]), increasing per shard (the writer).

use std::cmp::Ordering;
use std::fmt;

use anyhow::{bail, Result};
use snowpipe_streaming::OffsetToken;

/// Which rules a sequence number above a channel's position is held to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Rules {
    /// The layout-derived rules of [`SequenceNumber::check_after`] (the default).
    #[default]
    Layout,
    /// Only what AWS documents (decimal, at most 129 digits, increasing per shard): the
    /// service's numbers are trusted as they come (`--trust-sequence-numbers`), for the day
    /// Kinesis changes the layout the other rules read.
    Documented,
}

/// What a refusal says of the switch (docs/kinesis.md "What a sequence number holds").
pub const SWITCH_HINT: &str = "if Kinesis changed how it builds its numbers (every record \
     refused), trust them as they come: --trust-sequence-numbers (consumer: \
     SENSOR_STREAM_TRUST_SEQUENCE_NUMBERS=true; Lambda handler: TRUST_SEQUENCE_NUMBERS=true), \
     which keeps only the documented checks (decimal, at most 129 digits, increasing per \
     shard)";

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

/// The most digits of a sequence number Kinesis gives (docs/kinesis.md "Sequence numbers"):
/// past it a number is refused, though the API's pattern allows 129.
pub const MAX_REAL_DIGITS: usize = 56;

/// Records a second a shard takes, with a tenfold margin over Kinesis' write limit of 1,000
/// (docs/kinesis.md "What a sequence number holds").
const MAX_RECORDS_PER_SECOND: u128 = 10_000;

/// Seconds added to every elapsed time the jump rule allows (clocks, the counter's second).
const JUMP_SLACK_SECS: u128 = 60;

/// How far past this machine's clock a number's second may be (clock skew).
const FUTURE_SLACK_SECS: u64 = 300;

/// What a 56-digit sequence number holds (docs/kinesis.md "What a sequence number holds"):
/// 188 bits, from the top: the hex digit `2`, the shard's creation second (36 bits) and the
/// low nibble of its index; in the layout whose last hex digit is `2`, then a per-shard record
/// counter (64 bits), a byte, the record's second (36 bits) and the shard index (32 bits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fields {
    /// The top 44 bits: the `2`, the shard's creation second and index nibble.
    shard: u64,
    /// The shard's creation second.
    created: u64,
    /// The fields of the layout ending in `2` (every number seen since 2014).
    record: Option<RecordFields>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct RecordFields {
    counter: u64,
    second: u64,
    index: u32,
}

impl SequenceNumber {
    /// Its fields when it has 56 digits and starts with the hex digit `2` (`None` otherwise).
    fn fields(&self) -> Option<Fields> {
        if self.0.len() != MAX_REAL_DIGITS {
            return None;
        }
        // The number in three 64-bit limbs, least significant first (56 digits < 2^187).
        let mut limbs = [0u64; 3];
        for b in self.0.bytes() {
            let mut carry = u128::from(b - b'0');
            for limb in &mut limbs {
                let v = u128::from(*limb) * 10 + carry;
                *limb = v as u64;
                carry = v >> 64;
            }
        }
        let bits = |from: u32, len: u32| -> u64 {
            (0..len).fold(0u64, |out, i| {
                let at = from + i;
                out | (((limbs[(at / 64) as usize] >> (at % 64)) & 1) << i)
            })
        };
        if bits(184, 4) != 2 || bits(188, 4) != 0 {
            return None;
        }
        let index = bits(4, 32) as u32;
        let record =
            (bits(0, 4) == 2 && bits(144, 4) == u64::from(index & 0xf)).then(|| RecordFields {
                counter: bits(80, 64),
                second: bits(36, 36),
                index,
            });
        Some(Fields {
            shard: bits(144, 44),
            created: bits(148, 36),
            record,
        })
    }

    /// Refuses a sequence number shard `shard_id` cannot have produced, given the channel's
    /// committed position and this machine's clock (`now`, seconds since the epoch). Only a
    /// number above `position` is checked (one at or below it is skipped as handled, never
    /// committed). The rules (docs/kinesis.md "What a sequence number holds"):
    ///
    /// 1. at most [`MAX_REAL_DIGITS`] digits; with 56, the hex digit `2` first and a shard
    ///    created at most 5 minutes past `now`; in the layout ending in `2`, the shard index it
    ///    holds is the shard id's number and its second at most 5 minutes past `now`;
    /// 2. against a position: as many digits; with 56, the same shard (creation second and
    ///    index nibble); in the layout ending in `2`, a counter at most 10,000 records a
    ///    second (tenfold Kinesis' write limit of 1,000) past the position's, over the seconds
    ///    between the two plus 60.
    ///
    /// With no position only rule 1 holds: the first number a channel commits is trusted as
    /// far as its own fields go. With [`Rules::Documented`] neither holds (the number was
    /// parsed, so it is decimal and at most 129 digits; the writer checks that a shard's
    /// numbers increase).
    ///
    /// # Errors
    /// A number that cannot be real, naming it, the rule and the position.
    pub fn check_after(
        &self,
        shard_id: &str,
        position: Option<&SequenceNumber>,
        now: u64,
        rules: Rules,
    ) -> Result<()> {
        if rules == Rules::Documented || position.is_some_and(|p| self <= p) {
            return Ok(());
        }
        let shown = |s: &SequenceNumber| -> String {
            if s.0.len() <= 60 {
                s.0.clone()
            } else {
                format!("{}… ({} digits)", &s.0[..40], s.0.len())
            }
        };
        let refuse = |why: String| -> anyhow::Error {
            anyhow::anyhow!(
                "sequence number {} of {shard_id} cannot be real: {why}; the record is refused \
                 (not written, not committed, not skipped). A forged event: restrict who may \
                 invoke the function; a stream deleted and created again under the same name: \
                 drop the channel; {SWITCH_HINT} (docs/kinesis.md \"What a sequence number \
                 holds\")",
                shown(self)
            )
        };
        let latest = now.saturating_add(FUTURE_SLACK_SECS);
        if self.0.len() > MAX_REAL_DIGITS {
            return Err(refuse(format!(
                "Kinesis gives at most {MAX_REAL_DIGITS} digits"
            )));
        }
        let fields = self.fields();
        if self.0.len() == MAX_REAL_DIGITS {
            let Some(f) = &fields else {
                return Err(refuse(
                    "Kinesis' 56-digit numbers start with the hex digit 2".into(),
                ));
            };
            if f.created > latest {
                return Err(refuse(format!(
                    "its shard was created at {} (seconds since 1970), past this machine's clock",
                    f.created
                )));
            }
            if let Some(r) = &f.record {
                let number = shard_id
                    .strip_prefix("shardId-")
                    .and_then(|n| n.parse::<u64>().ok());
                if number.is_some_and(|n| u64::from(r.index) != n & 0xffff_ffff) {
                    return Err(refuse(format!("it holds shard index {}", r.index)));
                }
                if r.second > latest {
                    return Err(refuse(format!(
                        "it was stamped at {} (seconds since 1970), past this machine's clock",
                        r.second
                    )));
                }
            }
        }
        let Some(position) = position else {
            return Ok(());
        };
        if self.0.len() != position.0.len() {
            return Err(refuse(format!(
                "it has {} digits and the channel's position {} has {}: one shard's numbers \
                 have one length",
                self.0.len(),
                shown(position),
                position.0.len()
            )));
        }
        let (Some(f), Some(p)) = (fields, position.fields()) else {
            return Ok(());
        };
        if f.shard != p.shard {
            return Err(refuse(format!(
                "it is of a shard created at {} (seconds since 1970), the channel's position {} \
                 of one created at {}",
                f.created,
                shown(position),
                p.created
            )));
        }
        if f.record.is_some() != p.record.is_some() {
            return Err(refuse(format!(
                "its last hex digit differs from the channel's position {}: one shard's numbers \
                 have one layout",
                shown(position)
            )));
        }
        if let (Some(f), Some(p)) = (f.record, p.record) {
            let records = u128::from(f.counter.saturating_sub(p.counter));
            let seconds = u128::from(f.second.saturating_sub(p.second));
            let most = MAX_RECORDS_PER_SECOND * (seconds + JUMP_SLACK_SECS);
            if records > most {
                return Err(refuse(format!(
                    "it is {records} records past the channel's position {} in {seconds} s; a \
                     shard takes at most {most} in that time",
                    shown(position)
                )));
            }
        }
        Ok(())
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

    /// A 56-digit number of the layout ending in `2` (docs/kinesis.md), as Kinesis builds it.
    fn made(created: u64, counter: u64, second: u64, index: u32) -> SequenceNumber {
        made_ending(2, created, counter, second, index)
    }

    /// The same, its last hex digit `end`.
    fn made_ending(
        end: u64,
        created: u64,
        counter: u64,
        second: u64,
        index: u32,
    ) -> SequenceNumber {
        let mut limbs = [0u64; 3];
        let mut put = |from: u32, len: u32, value: u64| {
            for i in 0..len {
                let at = from + i;
                if (value >> i) & 1 == 1 {
                    limbs[(at / 64) as usize] |= 1 << (at % 64);
                }
            }
        };
        put(0, 4, end);
        put(4, 32, u64::from(index));
        put(36, 36, second);
        put(80, 64, counter);
        put(144, 4, u64::from(index & 0xf));
        put(148, 36, created);
        put(184, 4, 2);
        // To decimal: divide the limbs by 10 until nothing is left.
        let mut digits = Vec::new();
        while limbs.iter().any(|l| *l != 0) {
            let mut rem = 0u128;
            for limb in limbs.iter_mut().rev() {
                let v = (rem << 64) | u128::from(*limb);
                *limb = (v / 10) as u64;
                rem = v % 10;
            }
            digits.push(b'0' + rem as u8);
        }
        digits.reverse();
        seq(std::str::from_utf8(&digits).unwrap())
    }

    const NOW: u64 = 1_795_685_180;

    #[test]
    fn real_numbers_pass_and_decode_to_their_shard_and_second() {
        // AWS's Lambda example: shardId-000000000006, arrival 1545084650.987.
        let aws = seq("49590338271490256608559692538361571095921575989136588898");
        let f = aws.fields().unwrap().record.unwrap();
        assert_eq!((f.index, f.second), (6, 1_545_084_650));
        aws.check_after("shardId-000000000006", None, NOW, Rules::Layout)
            .unwrap();
        let err = aws
            .check_after("shardId-000000000005", None, NOW, Rules::Layout)
            .unwrap_err()
            .to_string();
        assert!(err.contains("holds shard index 6"), "{err}");
        // Two consecutive records of one shard on AWS: the counter moves by one.
        let (a, b) = (
            seq("49582644240588213996014774893954419364389880543362154498"),
            seq("49582644240588213996014774893955628290209495172536860674"),
        );
        let (fa, fb) = (a.fields().unwrap(), b.fields().unwrap());
        assert_eq!(fb.record.unwrap().counter - fa.record.unwrap().counter, 1);
        b.check_after("shardId-000000000000", Some(&a), NOW, Rules::Layout)
            .unwrap();
        // Two of kinesalite's (docs/kinesis.md).
        let (k1, k2) = (
            seq("49680554656172739339215971155024248448455596580506959874"),
            seq("49680554656172739339215971155026666300094825838856372226"),
        );
        k2.check_after("shardId-000000000000", Some(&k1), NOW, Rules::Layout)
            .unwrap();
        // A number made here decodes to what it was made of.
        let m = made(NOW - 3_600, 12_345, NOW - 10, 3);
        let f = m.fields().unwrap();
        assert_eq!(f.created, NOW - 3_600);
        assert_eq!(
            f.record.unwrap(),
            RecordFields {
                counter: 12_345,
                second: NOW - 10,
                index: 3
            }
        );
    }

    #[test]
    fn a_jump_no_shard_can_make_is_refused_naming_it() {
        let created = NOW - 86_400;
        let position = made(created, 1_000, NOW - 100, 0);
        let ok = |s: &SequenceNumber| {
            s.check_after("shardId-000000000000", Some(&position), NOW, Rules::Layout)
        };
        let refused = |s: &SequenceNumber, says: &str| {
            let err = ok(s).unwrap_err().to_string();
            assert!(
                err.contains("cannot be real") && err.contains(says),
                "{says:?} not in {err}"
            );
        };
        // Issue 72: 129 nines.
        refused(&seq(&"9".repeat(129)), "at most 56 digits");
        refused(&seq(&"9".repeat(57)), "at most 56 digits");
        // 56 nines: not a number Kinesis writes.
        refused(&seq(&"9".repeat(56)), "start with the hex digit 2");
        // The highest counter of the position's own shard and second.
        refused(
            &made(created, u64::MAX, NOW, 0),
            "records past the channel's position",
        );
        // A counter as far as 10,000 a second over 100 s + 60 allows, and one past it.
        ok(&made(created, 1_000 + 1_600_000, NOW, 0)).unwrap();
        refused(&made(created, 1_000 + 1_600_001, NOW, 0), "at most 1600000");
        // Another shard, a shard created later (the stream made again, or forged), the future.
        refused(&made(created, 1_001, NOW, 1), "holds shard index 1");
        refused(&made(created + 1, 0, NOW, 0), "of a shard created at");
        refused(
            &made(created, 1_001, NOW + 301, 0),
            "past this machine's clock",
        );
        refused(
            &made(NOW + 301, 0, NOW + 301, 0),
            "past this machine's clock",
        );
        // Another length, another layout (the last hex digit).
        let err = made(created, 1_001, NOW, 0)
            .check_after(
                "shardId-000000000000",
                Some(&seq("21269319989652663814458848515492872193")),
                NOW,
                Rules::Layout,
            )
            .unwrap_err()
            .to_string();
        assert!(err.contains("has 56 digits"), "{err}");
        refused(&made_ending(1, created, 1_001, NOW, 0), "one layout");
        // At or below the position: handled already, never checked, never committed.
        ok(&made(created, 5, NOW - 200, 0)).unwrap();
        // The next record, and a plausible one a minute later.
        ok(&made(created, 1_001, NOW - 100, 0)).unwrap();
        ok(&made(created, 61_000, NOW - 40, 0)).unwrap();
        // Shorter numbers (older streams) are compared by length alone.
        let short = seq("21269319989652663814458848515492872193");
        seq("21269319989652663814458848515492872194")
            .check_after("shardId-000000000000", Some(&short), NOW, Rules::Layout)
            .unwrap();
    }

    #[test]
    fn the_switch_keeps_only_the_documented_rules_and_the_refusal_names_it() {
        let position = made(NOW - 86_400, 1_000, NOW - 100, 0);
        // Each breaks a layout rule only: too long, not the hex digit 2, another shard.
        for s in [
            seq(&"9".repeat(129)),
            seq(&"9".repeat(56)),
            made(NOW - 86_400, 1_001, NOW, 1),
        ] {
            let err = s
                .check_after("shardId-000000000000", Some(&position), NOW, Rules::Layout)
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("--trust-sequence-numbers")
                    && err.contains("SENSOR_STREAM_TRUST_SEQUENCE_NUMBERS=true")
                    && err.contains("TRUST_SEQUENCE_NUMBERS=true"),
                "{err}"
            );
            s.check_after(
                "shardId-000000000000",
                Some(&position),
                NOW,
                Rules::Documented,
            )
            .unwrap();
            s.check_after("shardId-000000000000", None, NOW, Rules::Documented)
                .unwrap();
        }
        // What is not decimal or longer than 129 digits is refused before any rule.
        assert!(SequenceNumber::parse(&"9".repeat(130)).is_err());
        assert_eq!(Rules::default(), Rules::Layout);
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
