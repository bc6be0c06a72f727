//! [`OffsetToken`]: the application's position marker attached to appended rows.

use std::cmp::Ordering;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An offset token: an opaque string the application attaches to appended rows, which the
/// server stores as the channel's *last committed offset token* once those rows are committed.
///
/// Snowflake treats tokens as opaque strings and never orders them. This crate compares them
/// only where it must decide whether a token has been committed (for example
/// [`Channel::wait_for_commit`](crate::Channel::wait_for_commit)):
///
/// * when both tokens are canonical unsigned integers (`"0"`, `"42"`, no sign, no leading
///   zeros, fitting in a `u64`), they compare **numerically**, so `"10"` is after `"9"`;
/// * otherwise they compare only for **equality**; [`OffsetToken::partial_cmp_numeric`]
///   returns `None`.
///
/// For exactly-once delivery use strictly increasing numeric tokens (for example a source's
/// sequence number or a database row id): `OffsetToken::from(id)`.
///
/// # Examples
/// ```
/// use snowpipe_streaming::OffsetToken;
/// let a = OffsetToken::from(9u64);
/// let b = OffsetToken::from("10");
/// assert_eq!(a.as_u64(), Some(9));
/// assert_eq!(a.partial_cmp_numeric(&b), Some(std::cmp::Ordering::Less));
/// assert_eq!(OffsetToken::from("abc").partial_cmp_numeric(&b), None);
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
        let s = self.0.as_str();
        if s.is_empty()
            || (s.len() > 1 && s.starts_with('0'))
            || !s.bytes().all(|b| b.is_ascii_digit())
        {
            return None;
        }
        s.parse().ok()
    }

    /// Orders two tokens when both are numeric; `Some(Equal)` for identical tokens; `None`
    /// when they are different and not both numeric.
    pub fn partial_cmp_numeric(&self, other: &Self) -> Option<Ordering> {
        if self == other {
            return Some(Ordering::Equal);
        }
        match (self.as_u64(), other.as_u64()) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => None,
        }
    }

    /// Whether `self` (typically the committed token) is at or past `target`: equal, or
    /// numerically greater or equal when both are numeric.
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

/// Converts without validation; an empty or over-long token is rejected later, when it is
/// used in an append (use [`OffsetToken::new`] to validate up front).
impl From<&str> for OffsetToken {
    fn from(value: &str) -> Self {
        Self(value.to_owned())
    }
}

/// Converts without validation, like `From<&str>`.
impl From<String> for OffsetToken {
    fn from(value: String) -> Self {
        Self(value)
    }
}

impl OffsetToken {
    /// Checks a token built with `From` before it goes on the wire.
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
        assert!(OffsetToken::from("abc").reaches(&OffsetToken::from("abc")));
        assert!(!OffsetToken::from("abd").reaches(&OffsetToken::from("abc")));
    }

    #[test]
    fn non_canonical_numbers_are_not_numeric() {
        assert_eq!(OffsetToken::from("007").as_u64(), None);
        assert_eq!(OffsetToken::from("+7").as_u64(), None);
        assert_eq!(OffsetToken::from("18446744073709551616").as_u64(), None);
        assert_eq!(OffsetToken::from("0").as_u64(), Some(0));
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
