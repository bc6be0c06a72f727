//! Bytes for `BINARY` columns.
//!
//! A `Vec<u8>` serializes as a JSON array of numbers, which no `BINARY` column accepts.
//! Snowflake reads a `BINARY` value from a JSON string in the pipe's `BINARY_INPUT_FORMAT`:
//! `HEX` unless the account or pipe sets otherwise (docs/protocol.md, "Type conversion"; the
//! default can differ per account, so check `SHOW PARAMETERS LIKE 'BINARY_INPUT_FORMAT'`).
//!
//! * [`Binary`]: a newtype that serializes as hex.
//! * [`hex`] and [`base64`]: for `#[serde(with = "…")]` on a `Vec<u8>` (or any
//!   `AsRef<[u8]>` when only serializing) field.
//!
//! ```
//! use serde::Serialize;
//! use snowpipe_streaming::binary::{self, Binary};
//!
//! #[derive(Serialize)]
//! struct Blob {
//!     #[serde(rename = "DIGEST")]
//!     digest: Binary,
//!     #[serde(rename = "PAYLOAD", with = "binary::base64")] // a pipe with BASE64 input
//!     payload: Vec<u8>,
//! }
//!
//! let row = Blob { digest: Binary(vec![0xca, 0xfe]), payload: b"hi".to_vec() };
//! assert_eq!(
//!     serde_json::to_string(&row).unwrap(),
//!     r#"{"DIGEST":"CAFE","PAYLOAD":"aGk="}"#
//! );
//! ```

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Bytes that serialize as an upper-case hex string, the `HEX` input format of a `BINARY`
/// column (and the format Snowflake prints them in).
#[derive(Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Binary(pub Vec<u8>);

impl fmt::Debug for Binary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Binary({})", to_hex(&self.0))
    }
}

impl From<Vec<u8>> for Binary {
    fn from(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Binary {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl Serialize for Binary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        hex::serialize(&self.0, s)
    }
}

impl<'de> Deserialize<'de> for Binary {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        hex::deserialize(d).map(Self)
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789ABCDEF";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 15)]));
    }
    s
}

/// `#[serde(with = "snowpipe_streaming::binary::hex")]`: bytes as an upper-case hex string
/// (reads either case).
pub mod hex {
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as hex.
    ///
    /// # Errors
    /// The serializer's own.
    pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::to_hex(bytes.as_ref()))
    }

    /// Reads hex (either case).
    ///
    /// # Errors
    /// An odd length or a character that is not a hex digit.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(D::Error::custom(format!(
                "{:?} is not a hex digit",
                char::from(c)
            ))),
        };
        let bytes = text.as_bytes();
        if bytes.len() % 2 != 0 {
            return Err(D::Error::custom("hex text of odd length"));
        }
        bytes
            .chunks_exact(2)
            .map(|p| Ok(digit(p[0])? << 4 | digit(p[1])?))
            .collect()
    }
}

/// `#[serde(with = "snowpipe_streaming::binary::base64")]`: bytes as standard, padded base64,
/// for a pipe whose `BINARY_INPUT_FORMAT` is `BASE64`.
pub mod base64 {
    use base64::Engine as _;
    use serde::de::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as base64.
    ///
    /// # Errors
    /// The serializer's own.
    pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&base64::engine::general_purpose::STANDARD.encode(bytes))
    }

    /// Reads standard, padded base64.
    ///
    /// # Errors
    /// Text that is not base64.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(d)?;
        base64::engine::general_purpose::STANDARD
            .decode(text)
            .map_err(|e| D::Error::custom(format!("not base64: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Serialize, Deserialize, PartialEq, Debug)]
    struct Row {
        a: Binary,
        #[serde(with = "super::hex")]
        b: Vec<u8>,
        #[serde(with = "super::base64")]
        c: Vec<u8>,
    }

    #[test]
    fn bytes_round_trip_as_strings_never_as_arrays() {
        let all: Vec<u8> = (0..=255).collect();
        let row = Row {
            a: Binary(all.clone()),
            b: vec![0, 0x0f, 0xf0, 0xff],
            c: all.clone(),
        };
        let text = serde_json::to_string(&row).unwrap();
        assert!(!text.contains('['), "{text}");
        assert!(text.contains(r#""b":"000FF0FF""#), "{text}");
        assert_eq!(serde_json::from_str::<Row>(&text).unwrap(), row);
        // The SDK's own serializer writes the same bytes.
        let mut ours = Vec::new();
        crate::json::write_or_fallback(&mut ours, &row).unwrap();
        assert_eq!(String::from_utf8(ours).unwrap(), text);
        // Lower case reads too; bad input is an error naming the problem.
        let lower: Binary = serde_json::from_str(r#""cafe""#).unwrap();
        assert_eq!(lower.0, [0xca, 0xfe]);
        let odd = serde_json::from_str::<Binary>(r#""abc""#).unwrap_err();
        assert!(odd.to_string().contains("odd length"), "{odd}");
        let bad = serde_json::from_str::<Binary>(r#""zz""#).unwrap_err();
        assert!(bad.to_string().contains("not a hex digit"), "{bad}");
        assert_eq!(format!("{:?}", Binary(vec![1, 171])), "Binary(01AB)");
    }
}
