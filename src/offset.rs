//! [`OffsetToken`]: the application's position marker attached to appended rows.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An offset token: an opaque string the application attaches to appended rows, which the
/// server stores as the channel's *last committed offset token* once those rows are committed.
///
/// Snowflake treats tokens as opaque strings and never orders them. This crate compares them
/// only where it must decide whether a token has been committed (for example
/// [`Channel::wait_for_commit`](crate::Channel::wait_for_commit), `watch_committed` and the
/// check that tokens appended on a channel strictly increase):
///
/// * a token made of a **prefix and a decimal number** (`"order_42"`, `"item_7"`, or just
///   `"42"` with the empty prefix) is split at the run of ASCII digits that ends it; the number
///   must be canonical (`"0"`, `"42"`: no sign, no leading zeros) and may have any number of
///   digits (a Kinesis sequence number has 56);
/// * two such tokens with the **same prefix** compare **by their number**, so `"10"` is after
///   `"9"`, `"order_10"` after `"order_9"` and `"18446744073709551616"` (2^64) after
///   `"18446744073709551615"`;
/// * otherwise (different prefixes, no number, a non-canonical number such as `"order_007"`)
///   they compare only for **equality**; [`OffsetToken::partial_cmp_numeric`] returns `None`.
///
/// For exactly-once delivery use strictly increasing numeric tokens with one prefix per
/// channel (for example a source's sequence number or a database row id):
/// `OffsetToken::from(id)` or `OffsetToken::new(format!("order_{id}"))?`.
///
/// # Examples
/// ```
/// use std::cmp::Ordering;
/// use snowpipe_streaming::OffsetToken;
/// let a = OffsetToken::from(9u64);
/// let b = OffsetToken::new("10")?;
/// assert_eq!(a.as_u64(), Some(9));
/// assert_eq!(a.partial_cmp_numeric(&b), Some(Ordering::Less));
/// assert_eq!(OffsetToken::new("abc")?.partial_cmp_numeric(&b), None);
///
/// let order_9 = OffsetToken::new("order_9")?;
/// let order_10 = OffsetToken::new("order_10")?;
/// assert_eq!(order_10.prefixed_number(), Some(("order_", 10)));
/// assert_eq!(order_9.partial_cmp_numeric(&order_10), Some(Ordering::Less));
/// assert!(order_10.reaches(&order_9));
/// // Different prefixes, or a non-canonical number: equality only.
/// assert_eq!(order_9.partial_cmp_numeric(&OffsetToken::new("item_10")?), None);
/// assert_eq!(order_9.partial_cmp_numeric(&OffsetToken::new("order_007")?), None);
/// # Ok::<(), snowpipe_streaming::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct OffsetToken(String);

impl OffsetToken {
    /// Maximum accepted token length in bytes. Snowflake documents no limit for this API; the
    /// bound keeps a runaway token from bloating every request URL.
    pub const MAX_LEN: usize = 2048;

    /// Creates a token after checking it is not empty and at most [`Self::MAX_LEN`] bytes.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`](crate::Error::InvalidArgument) when the token is empty or
    /// too long.
    pub fn new(token: impl Into<String>) -> crate::Result<Self> {
        let token = token.into();
        if token.is_empty() {
            return Err(crate::Error::invalid_argument(
                "offset_token",
                "an offset token must not be empty; use None for rows without a token",
            ));
        }
        if token.len() > Self::MAX_LEN {
            return Err(crate::Error::invalid_argument(
                "offset_token",
                format!(
                    "an offset token is {} bytes, longer than the {} byte limit",
                    token.len(),
                    Self::MAX_LEN
                ),
            ));
        }
        Ok(Self(token))
    }

    /// The token as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The numeric value when the token is a canonical unsigned integer (see the type docs).
    pub fn as_u64(&self) -> Option<u64> {
        match self.prefixed_number() {
            Some(("", n)) => Some(n),
            _ => None,
        }
    }

    /// The token split into its prefix and its canonical decimal number (see the type docs):
    /// `"order_42"` gives `Some(("order_", 42))`, `"42"` gives `Some(("", 42))`, and `"abc"`,
    /// `"order_"` or `"order_007"` give `None`.
    /// A number past `u64::MAX` still orders (see [`OffsetToken::partial_cmp_numeric`]) but
    /// gives `None` here.
    pub fn prefixed_number(&self) -> Option<(&str, u64)> {
        let (prefix, digits) = self.prefixed_digits()?;
        digits.parse().ok().map(|n| (prefix, n))
    }

    /// Orders two tokens when both are a number with the same prefix (see the type docs), of
    /// any length; `Some(Equal)` for identical tokens; `None` when they are different and not
    /// comparable.
    pub fn partial_cmp_numeric(&self, other: &Self) -> Option<Ordering> {
        if self == other {
            return Some(Ordering::Equal);
        }
        match (self.prefixed_digits(), other.prefixed_digits()) {
            // Canonical numbers: the longer is the larger; of equal length, the text orders.
            (Some((p, a)), Some((q, b))) if p == q => Some(a.len().cmp(&b.len()).then(a.cmp(b))),
            _ => None,
        }
    }

    /// The token split into its prefix and its canonical decimal digits, of any length.
    fn prefixed_digits(&self) -> Option<(&str, &str)> {
        let s = self.0.as_str();
        let digits_at = s
            .bytes()
            .rposition(|b| !b.is_ascii_digit())
            .map_or(0, |i| i + 1);
        let (prefix, digits) = s.split_at(digits_at);
        if digits.is_empty() || (digits.len() > 1 && digits.starts_with('0')) {
            return None;
        }
        Some((prefix, digits))
    }

    /// Whether `self` (typically the committed token) is at or past `target`: equal, or
    /// numerically greater or equal when both are numbers with the same prefix.
    pub fn reaches(&self, target: &Self) -> bool {
        matches!(
            self.partial_cmp_numeric(target),
            Some(Ordering::Equal | Ordering::Greater)
        )
    }

    /// Consumes the token, returning the string.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for OffsetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for OffsetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OffsetToken({:?})", self.0)
    }
}

impl AsRef<str> for OffsetToken {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<u64> for OffsetToken {
    fn from(value: u64) -> Self {
        Self(value.to_string())
    }
}

/// Validates like [`OffsetToken::new`].
impl TryFrom<&str> for OffsetToken {
    type Error = crate::Error;
    fn try_from(value: &str) -> crate::Result<Self> {
        Self::new(value)
    }
}

/// Validates like [`OffsetToken::new`].
impl TryFrom<String> for OffsetToken {
    type Error = crate::Error;
    fn try_from(value: String) -> crate::Result<Self> {
        Self::new(value)
    }
}

impl OffsetToken {
    /// A token as the server reported it, taken as it is (another client may have written
    /// it, under other rules).
    pub(crate) fn from_wire(token: String) -> Self {
        Self(token)
    }

    /// Checks a token that did not come through [`OffsetToken::new`] (one read from the
    /// server or deserialized, which is taken as it is) before it goes on the wire.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        Self::new(self.0.as_str()).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numeric_tokens_compare_numerically() {
        assert!(OffsetToken::from(10u64).reaches(&OffsetToken::from(9u64)));
        assert!(!OffsetToken::from(9u64).reaches(&OffsetToken::from(10u64)));
        assert!(OffsetToken::new("abc")
            .unwrap()
            .reaches(&OffsetToken::new("abc").unwrap()));
        assert!(!OffsetToken::new("abd")
            .unwrap()
            .reaches(&OffsetToken::new("abc").unwrap()));
    }

    #[test]
    fn non_canonical_numbers_are_not_numeric() {
        assert_eq!(OffsetToken::new("007").unwrap().as_u64(), None);
        assert_eq!(OffsetToken::new("+7").unwrap().as_u64(), None);
        assert_eq!(
            OffsetToken::new("18446744073709551616").unwrap().as_u64(),
            None
        );
        assert_eq!(OffsetToken::new("0").unwrap().as_u64(), Some(0));
    }

    #[test]
    fn prefixed_tokens_compare_by_their_number() {
        let t = |s: &str| OffsetToken::new(s).unwrap();
        assert_eq!(t("order_10").prefixed_number(), Some(("order_", 10)));
        assert_eq!(t("item_0").prefixed_number(), Some(("item_", 0)));
        assert_eq!(t("v2-17").prefixed_number(), Some(("v2-", 17)));
        assert_eq!(t("42").prefixed_number(), Some(("", 42)));
        assert!(t("order_10").reaches(&t("order_9")));
        assert!(!t("order_9").reaches(&t("order_10")));
        assert!(t("order_9").reaches(&t("order_9")));
        assert_eq!(
            t("order_9").partial_cmp_numeric(&t("order_10")),
            Some(Ordering::Less)
        );
        assert_eq!(
            t("order_18446744073709551615").partial_cmp_numeric(&t("order_1")),
            Some(Ordering::Greater)
        );
        // Different prefixes, or one prefixed and one bare number: equality only.
        assert_eq!(t("order_9").partial_cmp_numeric(&t("item_10")), None);
        assert_eq!(t("order_9").partial_cmp_numeric(&t("9")), None);
        assert_eq!(t("10").partial_cmp_numeric(&t("order_9")), None);
        assert!(!t("item_10").reaches(&t("order_9")));
        // Prefixes are compared exactly (case-sensitive).
        assert_eq!(t("Order_9").partial_cmp_numeric(&t("order_10")), None);
    }

    #[test]
    fn prefixed_tokens_need_a_canonical_number() {
        let t = |s: &str| OffsetToken::new(s).unwrap();
        for s in [
            "order_",
            "order_007",
            "order_00",
            "order_18446744073709551616",
            "abc",
            "order_9x",
        ] {
            assert_eq!(t(s).prefixed_number(), None, "{s}");
        }
        // "order_007" is not the number 7: it only equals itself.
        assert_eq!(t("order_007").partial_cmp_numeric(&t("order_8")), None);
        assert!(t("order_007").reaches(&t("order_007")));
        assert!(!t("order_8").reaches(&t("order_007")));
        // A bare leading-zero number keeps today's rule; "0" alone is canonical.
        assert_eq!(t("007").as_u64(), None);
        assert_eq!(t("x0").prefixed_number(), Some(("x", 0)));
        assert_eq!(t("order_7").as_u64(), None);
    }

    #[test]
    fn numbers_past_u64_compare_by_value_not_text() {
        let t = |s: &str| OffsetToken::new(s).unwrap();
        let two_64 = t("18446744073709551616");
        assert!(two_64.reaches(&t("18446744073709551615")));
        assert!(!t("18446744073709551615").reaches(&two_64));
        // As text "9" > "18446744073709551616"; as numbers it is far below.
        assert_eq!(t("9").partial_cmp_numeric(&two_64), Some(Ordering::Less));
        // Kinesis sequence numbers: 56 digits, ordered within a shard.
        let a = t("49680554656172739339215971155024248448455596580506959874");
        let b = t("49680554656172739339215971155026666300094825838856372226");
        assert_eq!(a.partial_cmp_numeric(&b), Some(Ordering::Less));
        assert!(b.reaches(&a) && !a.reaches(&b));
        assert_eq!(
            t("shard_49680554656172739339215971155026666300094825838856372226")
                .partial_cmp_numeric(&t("shard_9")),
            Some(Ordering::Greater)
        );
        // Still canonical only, and still no u64 for them.
        assert_eq!(
            t("0018446744073709551616").partial_cmp_numeric(&two_64),
            None
        );
        assert_eq!(two_64.as_u64(), None);
    }

    #[test]
    fn validation_rejects_empty_and_long_tokens() {
        assert!(OffsetToken::new("").is_err());
        assert!(OffsetToken::new("x".repeat(OffsetToken::MAX_LEN + 1)).is_err());
        assert!(OffsetToken::new("x".repeat(OffsetToken::MAX_LEN)).is_ok());
    }

    #[test]
    fn serde_is_transparent() {
        let t = OffsetToken::from(5u64);
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"5\"");
        let back: OffsetToken = serde_json::from_str("\"5\"").unwrap();
        assert_eq!(back, t);
    }
}
