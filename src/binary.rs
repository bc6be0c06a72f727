//! Bytes for `BINARY` columns.
//!
//! A `Vec<u8>` serializes as a JSON array of numbers, which no `BINARY` column accepts.
//! Snowflake reads a `BINARY` value from a JSON string in the pipe's `BINARY_INPUT_FORMAT`
//! (hex, base64 or UTF-8), which depends on the account and the pipe: the same string
//! `"CAFE"` is the bytes `CA FE` in hex and `08 01 44` in base64, with no row error either
//! way (docs/protocol-types-and-sql.md "Type conversion (emulator)"). So the SDK asks the service: when a
//! client opens the first channel of a pipe, it reads the pipe's format from the pipe-info
//! call (once per pipe, cached by the client, read again by [`Channel::reopen`]), as the
//! official SDKs do, unless [`ClientBuilder::binary_format`] names it.
//!
//! * [`Binary`] (and `#[serde(with = "binary::pipe")]` on a `Vec<u8>`): bytes written in the
//!   format of the pipe the row is appended to. Serialized outside a channel's append (e.g.
//!   by `serde_json::to_string`), they are written as upper-case hex.
//! * [`hex`], [`base64`] and [`utf8`]: one format whatever the pipe says, for
//!   `#[serde(with = "…")]` on a `Vec<u8>` (or any `AsRef<[u8]>` when only serializing)
//!   field.
//!
//! ```
//! use serde::Serialize;
//! use snowpipe_streaming::binary::{self, Binary};
//!
//! #[derive(Serialize)]
//! struct Blob {
//!     #[serde(rename = "DIGEST")]
//!     digest: Binary, // in the pipe's format when appended
//!     #[serde(rename = "PAYLOAD", with = "binary::base64")] // always base64
//!     payload: Vec<u8>,
//! }
//!
//! let row = Blob { digest: Binary(vec![0xca, 0xfe]), payload: b"hi".to_vec() };
//! // Outside a channel, `Binary` is hex.
//! assert_eq!(
//!     serde_json::to_string(&row).unwrap(),
//!     r#"{"DIGEST":"CAFE","PAYLOAD":"aGk="}"#
//! );
//! ```

#[cfg(doc)]
use crate::{Channel, ClientBuilder};
use std::cell::RefCell;
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A pipe's `BINARY_INPUT_FORMAT`: how the service reads a JSON string into a `BINARY`
/// column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BinaryFormat {
    /// Hexadecimal (`"CAFE"`), Snowflake's default `BINARY_INPUT_FORMAT`.
    Hex,
    /// Standard base64 (`"yv4="`): the official SDKs' default when the service names none.
    Base64,
    /// The bytes as UTF-8 text (`"hi"`): only bytes that are UTF-8 can be sent.
    Utf8,
}

impl BinaryFormat {
    /// The service's name of the format: `HEX`, `BASE64` or `UTF-8`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Hex => "HEX",
            Self::Base64 => "BASE64",
            Self::Utf8 => "UTF-8",
        }
    }

    /// The format the service names `name` (`HEX`, `BASE64`, `UTF-8` or `UTF8`, any case).
    pub fn from_name(name: &str) -> Option<Self> {
        match name.trim().to_ascii_uppercase().as_str() {
            "HEX" => Some(Self::Hex),
            "BASE64" => Some(Self::Base64),
            "UTF-8" | "UTF8" => Some(Self::Utf8),
            _ => None,
        }
    }
}

impl fmt::Display for BinaryFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a channel knows of its pipe's `BINARY_INPUT_FORMAT`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PipeBinary {
    /// Named by the client builder or by the pipe-info call.
    Known(BinaryFormat),
    /// Not learned: why, and what to do (a [`Binary`] cannot be written then).
    Unknown(std::sync::Arc<str>),
}

thread_local! {
    /// The format of the pipe whose rows this thread is serializing (`None`: outside a
    /// channel's append).
    static PIPE_FORMAT: RefCell<Option<PipeBinary>> = const { RefCell::new(None) };
}

/// Runs `f` (the serialization of rows for one pipe) with [`Binary`] writing `format`.
/// Serialization is synchronous on the appending thread, so a thread-local is exact here.
pub(crate) fn with_pipe_format<R>(format: &PipeBinary, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<PipeBinary>);
    impl Drop for Restore {
        fn drop(&mut self) {
            let previous = self.0.take();
            PIPE_FORMAT.with(|p| *p.borrow_mut() = previous);
        }
    }
    let previous = PIPE_FORMAT.with(|p| p.borrow_mut().replace(format.clone()));
    let _restore = Restore(previous);
    f()
}

/// Appends `bytes` as a JSON string in `format`, as [`Binary`] writes them.
///
/// # Errors
/// Bytes that are not UTF-8 for the `UTF-8` format, described with the fix.
#[cfg_attr(not(feature = "arrow"), allow(dead_code))]
pub(crate) fn write_json(
    out: &mut Vec<u8>,
    bytes: &[u8],
    format: BinaryFormat,
) -> Result<(), String> {
    use ::base64::Engine as _;
    match format {
        BinaryFormat::Hex => {
            out.push(b'"');
            out.extend_from_slice(to_hex(bytes).as_bytes());
            out.push(b'"');
        }
        BinaryFormat::Base64 => {
            out.push(b'"');
            out.extend_from_slice(
                ::base64::engine::general_purpose::STANDARD
                    .encode(bytes)
                    .as_bytes(),
            );
            out.push(b'"');
        }
        BinaryFormat::Utf8 => match std::str::from_utf8(bytes) {
            Ok(text) => crate::json::write_str(out, text),
            Err(e) => {
                return Err(format!(
                    "the pipe's BINARY_INPUT_FORMAT is UTF-8 and these bytes are not UTF-8 text \
                     ({e}); use a pipe with HEX or BASE64 input"
                ))
            }
        },
    }
    Ok(())
}

/// Writes `bytes` in the current pipe's format (hex outside a channel's append).
fn serialize_for_pipe<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::Error as _;
    let format = PIPE_FORMAT.with(|p| p.borrow().clone());
    match format {
        None | Some(PipeBinary::Known(BinaryFormat::Hex)) => hex::serialize(bytes, s),
        Some(PipeBinary::Known(BinaryFormat::Base64)) => base64::serialize(bytes, s),
        Some(PipeBinary::Known(BinaryFormat::Utf8)) => utf8::serialize(bytes, s),
        Some(PipeBinary::Unknown(why)) => Err(S::Error::custom(why)),
    }
}

/// Bytes written in the `BINARY_INPUT_FORMAT` of the pipe the row is appended to (see the
/// [module docs](self)); upper-case hex outside a channel's append, and read back from hex
/// (the format Snowflake prints `BINARY` in).
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
        serialize_for_pipe(&self.0, s)
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

/// `#[serde(with = "snowpipe_streaming::binary::pipe")]`: bytes in the format of the pipe the
/// row is appended to, like [`Binary`].
pub mod pipe {
    use serde::{Deserializer, Serializer};

    /// Writes `bytes` in the pipe's format (hex outside a channel's append).
    ///
    /// # Errors
    /// The serializer's own; bytes that are not UTF-8 for a `UTF-8` pipe; a pipe whose format
    /// the client could not learn.
    pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        super::serialize_for_pipe(bytes.as_ref(), s)
    }

    /// Reads hex (either case), the format Snowflake prints `BINARY` in.
    ///
    /// # Errors
    /// An odd length or a character that is not a hex digit.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        super::hex::deserialize(d)
    }
}

/// `#[serde(with = "snowpipe_streaming::binary::utf8")]`: bytes as UTF-8 text, for a pipe
/// whose `BINARY_INPUT_FORMAT` is `UTF-8`.
pub mod utf8 {
    use serde::de::Error as _;
    use serde::ser::Error as _;
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes `bytes` as text.
    ///
    /// # Errors
    /// Bytes that are not UTF-8 (a `UTF-8` pipe cannot take them: send them to a pipe with
    /// `HEX` or `BASE64` input, or as [`hex`](super::hex)/[`base64`](super::base64) text into
    /// a VARCHAR column).
    pub fn serialize<S: Serializer>(bytes: impl AsRef<[u8]>, s: S) -> Result<S::Ok, S::Error> {
        match std::str::from_utf8(bytes.as_ref()) {
            Ok(text) => s.serialize_str(text),
            Err(e) => Err(S::Error::custom(format!(
                "the pipe's BINARY_INPUT_FORMAT is UTF-8 and these bytes are not UTF-8 text \
                 ({e}); use a pipe with HEX or BASE64 input"
            ))),
        }
    }

    /// Reads text as its UTF-8 bytes.
    ///
    /// # Errors
    /// A value that is not a string.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        String::deserialize(d)
            .map(String::into_bytes)
            .map_err(|e| D::Error::custom(format!("not text: {e}")))
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
