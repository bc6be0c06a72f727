//! A minimal reader of Thrift's compact protocol, the encoding of Parquet's footer and page
//! headers: enough to read the few fields `parquet_guard.rs` checks (schema nesting, column
//! count, page sizes) before the parquet crate builds anything from them. Every read is
//! bounded: a skipped value nests at most [`MAX_SKIP_DEPTH`] deep and a skipped string is
//! read through, never allocated.

use std::io::{self, Read};

/// How deep a skipped value may nest (parquet's own reader stops at the same depth).
pub(crate) const MAX_SKIP_DEPTH: u32 = 64;

/// A field's or element's type, as the compact protocol numbers it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// `true` or `false`, held in a field header (as a list element: one byte).
    Bool(Option<bool>),
    /// i8.
    Byte,
    /// i16, i32, i64: zigzag varints.
    Int,
    /// f64: 8 bytes.
    Double,
    /// A length-prefixed string or binary.
    Binary,
    /// A list or a set.
    List,
    /// A map.
    Map,
    /// A struct.
    Struct,
}

impl Kind {
    fn of(nibble: u8) -> io::Result<Self> {
        Ok(match nibble {
            1 => Self::Bool(Some(true)),
            2 => Self::Bool(Some(false)),
            3 => Self::Byte,
            4..=6 => Self::Int,
            7 => Self::Double,
            8 => Self::Binary,
            9 | 10 => Self::List,
            11 => Self::Map,
            12 => Self::Struct,
            _ => return Err(invalid(format!("unknown Thrift type {nibble}"))),
        })
    }

    /// As a list element: booleans are a byte each.
    fn element(nibble: u8) -> io::Result<Self> {
        match Self::of(nibble)? {
            Self::Bool(_) => Ok(Self::Bool(None)),
            k => Ok(k),
        }
    }
}

fn invalid(why: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why)
}

/// Reads compact-protocol values from `R`, counting the bytes read.
#[derive(Debug)]
pub(crate) struct Reader<R> {
    inner: R,
    /// Bytes read so far.
    pub read: u64,
}

impl<R: Read> Reader<R> {
    /// A reader of `inner`.
    pub(crate) fn new(inner: R) -> Self {
        Self { inner, read: 0 }
    }

    fn byte(&mut self) -> io::Result<u8> {
        let mut b = [0u8; 1];
        self.inner.read_exact(&mut b)?;
        self.read += 1;
        Ok(b[0])
    }

    fn varint(&mut self) -> io::Result<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let b = self.byte()?;
            value |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(invalid("a varint longer than 10 bytes".to_owned()))
    }

    /// An integer field's value (i16, i32 or i64).
    ///
    /// # Errors
    /// When the input ends or is not a varint.
    pub(crate) fn int(&mut self) -> io::Result<i64> {
        let v = self.varint()?;
        Ok((v >> 1) as i64 ^ -((v & 1) as i64))
    }

    /// The next field's id and kind, `None` at the struct's end.
    ///
    /// # Errors
    /// When the input ends or names an unknown type.
    pub(crate) fn field(&mut self, last_id: &mut i16) -> io::Result<Option<Kind>> {
        let b = self.byte()?;
        if b == 0 {
            return Ok(None);
        }
        let delta = b >> 4;
        *last_id = if delta == 0 {
            i16::try_from(self.int()?).map_err(|_| invalid("a field id past i16".to_owned()))?
        } else {
            last_id.wrapping_add(i16::from(delta))
        };
        Kind::of(b & 0x0f).map(Some)
    }

    /// A list's element kind and length.
    ///
    /// # Errors
    /// When the input ends or names an unknown type.
    pub(crate) fn list(&mut self) -> io::Result<(Kind, u64)> {
        let b = self.byte()?;
        let len = match b >> 4 {
            15 => self.varint()?,
            n => u64::from(n),
        };
        Ok((Kind::element(b & 0x0f)?, len))
    }

    /// Skips a value of `kind`.
    ///
    /// # Errors
    /// When the input ends, names an unknown type, or nests past [`MAX_SKIP_DEPTH`].
    pub(crate) fn skip(&mut self, kind: Kind) -> io::Result<()> {
        self.skip_at(kind, 0)
    }

    fn skip_at(&mut self, kind: Kind, depth: u32) -> io::Result<()> {
        if depth > MAX_SKIP_DEPTH {
            return Err(invalid(format!(
                "a Thrift value nested past {MAX_SKIP_DEPTH} levels"
            )));
        }
        match kind {
            Kind::Bool(Some(_)) => {}
            Kind::Bool(None) | Kind::Byte => {
                self.byte()?;
            }
            Kind::Int => {
                self.varint()?;
            }
            Kind::Double => self.bytes(8)?,
            Kind::Binary => {
                let len = self.varint()?;
                self.bytes(len)?;
            }
            Kind::List => {
                let (element, len) = self.list()?;
                for _ in 0..len {
                    self.skip_at(element, depth + 1)?;
                }
            }
            Kind::Map => {
                let len = self.varint()?;
                if len > 0 {
                    let b = self.byte()?;
                    let (k, v) = (Kind::element(b >> 4)?, Kind::element(b & 0x0f)?);
                    for _ in 0..len {
                        self.skip_at(k, depth + 1)?;
                        self.skip_at(v, depth + 1)?;
                    }
                }
            }
            Kind::Struct => {
                let mut id = 0;
                while let Some(k) = self.field(&mut id)? {
                    self.skip_at(k, depth + 1)?;
                }
            }
        }
        Ok(())
    }

    /// Reads through `n` bytes without keeping them.
    fn bytes(&mut self, n: u64) -> io::Result<()> {
        let copied = io::copy(&mut (&mut self.inner).take(n), &mut io::sink())?;
        self.read += copied;
        if copied < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_ints_and_skips_read_what_the_compact_protocol_writes() {
        // struct { 1: i32 -3, 2: string "ab", 5: list<i32> [1, 2], 20: struct { 1: true } }
        let bytes = [
            0x15, 0x05, // field 1 (delta 1), i32, zigzag(-3) = 5
            0x18, 0x02, b'a', b'b', // field 2, binary of 2
            0x39, 0x25, 0x02, 0x04, // field 5 (delta 3), list of 2 i32: 1, 2
            0x0c, 0x28, // field 20 (long form), struct
            0x11, 0x00, // field 1 true, stop
            0x00, // stop
        ];
        let mut r = Reader::new(&bytes[..]);
        let mut id = 0;
        assert_eq!(r.field(&mut id).unwrap(), Some(Kind::Int));
        assert_eq!((id, r.int().unwrap()), (1, -3));
        let mut seen = vec![];
        while let Some(k) = r.field(&mut id).unwrap() {
            seen.push(id);
            r.skip(k).unwrap();
        }
        assert_eq!(seen, [2, 5, 20]);
        assert_eq!(r.read, bytes.len() as u64);
    }

    #[test]
    fn a_value_nested_past_the_skip_depth_is_refused() {
        // 100 nested lists of one list each.
        let mut bytes = vec![0x19; 100];
        bytes.push(0x05);
        let mut r = Reader::new(&bytes[..]);
        let e = r.skip(Kind::List).unwrap_err();
        assert!(e.to_string().contains("nested past 64"), "{e}");
    }

    #[test]
    fn a_string_claiming_more_than_the_input_ends_cleanly() {
        let bytes = [0xff, 0xff, 0xff, 0xff, 0x0f, b'x'];
        let mut r = Reader::new(&bytes[..]);
        assert_eq!(
            r.skip(Kind::Binary).unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
