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
/// The same rule decides how an append's span of tokens is divided when the append is larger
/// than one request: a span `start..=end` of numbers with one prefix that names exactly one
/// token per row (`end − start + 1 == rows`, numbers up to `u64::MAX`) splits into exact
/// sub-spans (`"order_1"..="order_500"` into `"order_1"..="order_250"` and
/// `"order_251"..="order_500"`), as bare numbers do; any other span with more than one row is
/// refused when it must be split (see [`Channel::append`](crate::Channel::append)).
///
/// The prefix and number are read once, when the token is made (or received from the
/// server): [`as_u64`](Self::as_u64) and [`prefixed_number`](Self::prefixed_number) are typed
/// reads of the committed position, with no parse per call.
///
/// For exactly-once delivery use strictly increasing numeric tokens with one prefix per
/// channel (for example a source's sequence number or a database row id):
/// `OffsetToken::from(id)` or `OffsetToken::new(format!("order_{id}"))?`.
///
/// A token that *ends* in data (a hex id, a text key) is read by the same rule: `"k:ab12"`
/// then `"k:ab9"` have one prefix (`"k:ab"`) and go back (12 to 9), so the second append is
/// refused as out of order, though the application meant no number. When a token's tail is
/// data, end it with a counter of your own (`"k:ab9/2"`) or a byte that is not a digit.
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
#[derive(Clone)]
pub struct OffsetToken {
    text: Box<str>,
    /// The canonical decimal number that ends `text`, when there is one and it fits a `u64`
    /// (see `read`).
    number: u64,
    /// Where that number starts, and whether it fits (`read`), packed so the token (and the
    /// errors carrying one) stay small.
    read: Read,
}

/// Where a token's canonical number starts (`NONE`: it has none), and in the top bit
/// whether it fits a `u64` (`FITS`).
#[derive(Clone, Copy)]
struct Read(u32);

impl Read {
    const NONE: Self = Self(u32::MAX);
    const FITS: u32 = 1 << 31;

    fn new(digits_at: Option<usize>, fits: bool) -> Self {
        match digits_at.and_then(|at| u32::try_from(at).ok()) {
            Some(at) if at < Self::FITS => Self(at | if fits { Self::FITS } else { 0 }),
            _ => Self::NONE,
        }
    }

    fn digits_at(self) -> Option<usize> {
        (self.0 != Self::NONE.0).then_some((self.0 & !Self::FITS) as usize)
    }

    fn fits(self) -> bool {
        self.0 != Self::NONE.0 && self.0 & Self::FITS != 0
    }
}

impl PartialEq for OffsetToken {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl Eq for OffsetToken {}

impl std::hash::Hash for OffsetToken {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.text.hash(state);
    }
}

/// As the string (transparent).
impl Serialize for OffsetToken {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// As the string, taken as it is (like a token the server reports).
impl<'de> Deserialize<'de> for OffsetToken {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::from_wire)
    }
}

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
        Ok(Self::from_wire(token))
    }

    /// The token as a string slice.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// The numeric value when the token is a canonical unsigned integer (see the type docs).
    /// A typed read: the number was read when the token was made.
    pub fn as_u64(&self) -> Option<u64> {
        (self.read.digits_at() == Some(0) && self.read.fits()).then_some(self.number)
    }

    /// The token split into its prefix and its canonical decimal number (see the type docs):
    /// `"order_42"` gives `Some(("order_", 42))`, `"42"` gives `Some(("", 42))`, and `"abc"`,
    /// `"order_"` or `"order_007"` give `None`.
    /// A number past `u64::MAX` still orders (see [`OffsetToken::partial_cmp_numeric`]) but
    /// gives `None` here.
    pub fn prefixed_number(&self) -> Option<(&str, u64)> {
        let at = self.read.digits_at()?;
        self.read.fits().then(|| (&self.text[..at], self.number))
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
        Some(self.text.split_at(self.read.digits_at()?))
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
        self.text.into_string()
    }
}

impl fmt::Display for OffsetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for OffsetToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OffsetToken({:?})", self.text)
    }
}

impl AsRef<str> for OffsetToken {
    fn as_ref(&self) -> &str {
        &self.text
    }
}

impl From<u64> for OffsetToken {
    fn from(value: u64) -> Self {
        Self {
            text: value.to_string().into_boxed_str(),
            number: value,
            read: Read::new(Some(0), true),
        }
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
    pub(crate) fn from_wire(text: String) -> Self {
        let digits_at = canonical_digits_at(&text);
        let number = digits_at.and_then(|at| text[at..].parse().ok());
        Self {
            read: Read::new(digits_at, number.is_some()),
            number: number.unwrap_or(0),
            text: text.into_boxed_str(),
        }
    }

    /// Checks a token that did not come through [`OffsetToken::new`] (one read from the
    /// server or deserialized, which is taken as it is) before it goes on the wire.
    pub(crate) fn validate(&self) -> crate::Result<()> {
        Self::new(&*self.text).map(|_| ())
    }

    /// How many rows the span `start..=end` names when both are numbers with one prefix
    /// (`end − start + 1`; `None` otherwise, or when `end` is before `start`).
    pub(crate) fn span_len(start: &Self, end: &Self) -> Option<u64> {
        let (p, a) = start.prefixed_number()?;
        let (q, b) = end.prefixed_number()?;
        (p == q && a <= b).then(|| (b - a).saturating_add(1))
    }

    /// The span `start..=end` as one token per row, when it names exactly `rows` rows (the
    /// one token rule, see the type docs): it then divides into exact sub-spans
    /// ([`DenseSpan::token`]).
    pub(crate) fn dense_span<'a>(
        start: &'a Self,
        end: &Self,
        rows: usize,
    ) -> Option<DenseSpan<'a>> {
        let len = Self::span_len(start, end)?;
        let (prefix, first) = start.prefixed_number()?;
        (len == u64::try_from(rows).ok()?).then_some(DenseSpan { prefix, first })
    }

    /// The start token a request may name once the appends in it hold `rows` rows and end at
    /// `end` (the one token rule, as [`dense_span`](Self::dense_span)): `start` when
    /// `start..=end` names exactly one token per row, else none, and the request carries its
    /// end token alone (as [`Positions::at`](crate::Positions::at)'s do). Two appends whose
    /// spans do not meet (`0..=9`, then `20..=29`), or a span then an append at one token
    /// (`0..=9`, then `12` for five rows), thus never share a request naming a span that does
    /// not count its rows. Without an end token no span is named and `start` stays.
    pub(crate) fn merged_start(
        start: Option<Self>,
        end: Option<&Self>,
        rows: usize,
    ) -> Option<Self> {
        let Some(end) = end else {
            return start;
        };
        start.filter(|s| Self::dense_span(s, end, rows).is_some())
    }
}

/// A span of tokens with one prefix naming one row each: row `i` has the token
/// `prefix` + (`first` + `i`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct DenseSpan<'a> {
    prefix: &'a str,
    first: u64,
}

impl DenseSpan<'_> {
    /// The token of row `row` of the span (counted from 0; within the span's rows).
    pub(crate) fn token(&self, row: usize) -> OffsetToken {
        let number = self.first + row as u64;
        if self.prefix.is_empty() {
            return OffsetToken::from(number);
        }
        OffsetToken {
            text: format!("{}{number}", self.prefix).into_boxed_str(),
            number,
            read: Read::new(Some(self.prefix.len()), true),
        }
    }
}

/// Where the canonical decimal number ending `s` starts: a run of ASCII digits with no
/// leading zero (`"0"` alone is canonical). `None` when there is none.
fn canonical_digits_at(s: &str) -> Option<usize> {
    let at = s
        .bytes()
        .rposition(|b| !b.is_ascii_digit())
        .map_or(0, |i| i + 1);
    let digits = &s[at..];
    let leading_zero = digits.len() > 1 && digits.starts_with('0');
    (!digits.is_empty() && !leading_zero).then_some(at)
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
    fn a_span_of_one_prefix_naming_one_token_per_row_divides_exactly() {
        let t = |s: &str| OffsetToken::new(s).unwrap();
        let (a, b) = (t("order_1"), t("order_500"));
        assert_eq!(OffsetToken::span_len(&a, &b), Some(500));
        let span = OffsetToken::dense_span(&a, &b, 500).unwrap();
        assert_eq!(span.token(0), a);
        assert_eq!(span.token(249), t("order_250"));
        assert_eq!(span.token(249).prefixed_number(), Some(("order_", 250)));
        assert_eq!(span.token(499), b);
        // Not one token per row, two prefixes, backwards, non-canonical: no division.
        assert!(OffsetToken::dense_span(&a, &b, 499).is_none());
        assert!(OffsetToken::dense_span(&a, &t("item_500"), 500).is_none());
        assert_eq!(OffsetToken::span_len(&b, &a), None);
        assert_eq!(OffsetToken::span_len(&t("order_01"), &b), None);
        // Bare numbers follow the same rule.
        let (x, y) = (OffsetToken::from(7u64), t("9"));
        assert_eq!(OffsetToken::dense_span(&x, &y, 3).unwrap().token(1), t("8"));
    }

    #[test]
    fn the_number_is_read_once_and_survives_serde() {
        let t: OffsetToken = serde_json::from_str("\"shard_42\"").unwrap();
        assert_eq!(t.prefixed_number(), Some(("shard_", 42)));
        assert_eq!(OffsetToken::from(42u64), OffsetToken::new("42").unwrap());
        assert_eq!(OffsetToken::from_wire("42".into()).as_u64(), Some(42));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"shard_42\"");
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
