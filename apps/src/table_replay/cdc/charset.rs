//! Binlog text in its column's character set → UTF-8, as the snapshot reads it.
//!
//! The snapshot reads text through a `utf8mb4` connection, so the server converts each
//! column from its character set; the binlog carries the stored bytes. Each column's set is
//! `information_schema.COLUMNS.CHARACTER_SET_NAME`, read at the start and again at each
//! `ALTER TABLE` of the table (`evolve.rs`), and its binlog text is decoded here:
//!
//! | set (MariaDB name) | decoded as |
//! |---|---|
//! | `utf8mb4`, `utf8mb3`, `utf8`, none (not text) | UTF-8, unchanged |
//! | `binary` | bytes, unchanged |
//! | `latin1` (MariaDB's is Windows-1252), `ascii` | windows-1252 |
//! | `latin2`, `greek`, `hebrew`, `latin7` | ISO-8859-2, -7, -8, -13 |
//! | `cp1250`, `cp1251`, `cp1256`, `cp1257`, `cp866`, `koi8r`, `koi8u` | the same code page |
//! | `utf16`, `ucs2` / `utf16le` | UTF-16BE / UTF-16LE |
//! | `utf32` | UTF-32BE, by hand |
//!
//! Any other set (the multi-byte Asian sets, whose MariaDB tables differ from the WHATWG
//! ones `encoding_rs` implements, `dec8`, `swe7`, …) is refused when `follow` starts or
//! `ddl --changes` describes the table, naming the table, the column, the set and the fix.

use anyhow::{bail, Result};
use encoding_rs::Encoding;

use crate::table_replay::schema::{Kind, SourceTable};

/// How a column's binlog bytes become the snapshot's UTF-8.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Charset {
    /// UTF-8 already, or not text.
    Utf8,
    /// A single- or double-byte set `encoding_rs` decodes (UTF-16 too).
    Encoding(&'static Encoding),
    /// UTF-32 big-endian (`encoding_rs` has none).
    Utf32,
}

impl Charset {
    /// The decoder for MariaDB's set `name` (`None`: not text), `Err` naming the set when
    /// there is none.
    pub(crate) fn of(name: Option<&str>) -> Result<Self, String> {
        let Some(name) = name else {
            return Ok(Self::Utf8);
        };
        let e = match name.to_ascii_lowercase().as_str() {
            "utf8mb4" | "utf8mb3" | "utf8" | "binary" => return Ok(Self::Utf8),
            "utf32" => return Ok(Self::Utf32),
            "latin1" | "ascii" => encoding_rs::WINDOWS_1252,
            "latin2" => encoding_rs::ISO_8859_2,
            "greek" => encoding_rs::ISO_8859_7,
            "hebrew" => encoding_rs::ISO_8859_8,
            "latin7" => encoding_rs::ISO_8859_13,
            "cp1250" => encoding_rs::WINDOWS_1250,
            "cp1251" => encoding_rs::WINDOWS_1251,
            "cp1256" => encoding_rs::WINDOWS_1256,
            "cp1257" => encoding_rs::WINDOWS_1257,
            "cp866" => encoding_rs::IBM866,
            "koi8r" => encoding_rs::KOI8_R,
            "koi8u" => encoding_rs::KOI8_U,
            "utf16" | "ucs2" => encoding_rs::UTF_16BE,
            "utf16le" => encoding_rs::UTF_16LE,
            _ => return Err(name.to_owned()),
        };
        Ok(Self::Encoding(e))
    }

    /// `bytes` as UTF-8 (a byte sequence the set does not define becomes U+FFFD).
    pub(crate) fn decode(self, bytes: Vec<u8>) -> Vec<u8> {
        match self {
            Self::Utf8 => bytes,
            Self::Encoding(e) => e
                .decode_without_bom_handling(&bytes)
                .0
                .into_owned()
                .into_bytes(),
            Self::Utf32 => bytes
                .chunks(4)
                .map(|c| {
                    let mut b = [0u8; 4];
                    b[4 - c.len()..].copy_from_slice(c);
                    char::from_u32(u32::from_be_bytes(b)).unwrap_or('\u{fffd}')
                })
                .collect::<String>()
                .into_bytes(),
        }
    }
}

/// Each column's decoder: text and JSON by their set, every other column unchanged.
pub(crate) fn of_table(table: &SourceTable) -> Vec<Charset> {
    table
        .columns
        .iter()
        .map(|c| match c.kind {
            Kind::Text { .. } | Kind::Json => {
                Charset::of(c.charset.as_deref()).unwrap_or(Charset::Utf8)
            }
            _ => Charset::Utf8,
        })
        .collect()
}

/// Refuses a table with a text column in a set `follow` cannot decode.
///
/// # Errors
/// Naming the table, the column, its set and the fix.
pub(crate) fn check(table: &SourceTable) -> Result<()> {
    for c in &table.columns {
        if let Err(set) = Charset::of(c.charset.as_deref()) {
            bail!(
                "table {}: column {} is in the character set {set}, which follow cannot decode \
                 from the binlog; convert it (ALTER TABLE {} MODIFY {} … CHARACTER SET \
                 utf8mb4) or leave the table out",
                table.name,
                c.name,
                table.name,
                c.name
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_set_decodes_as_the_server_converts_it() {
        let d = |set: &str, b: &[u8]| {
            String::from_utf8(Charset::of(Some(set)).unwrap().decode(b.to_vec())).unwrap()
        };
        assert_eq!(d("latin1", b"caf\xe9 \x80"), "café €");
        assert_eq!(d("latin1", b"\xc3\xa9"), "Ã©");
        assert_eq!(d("cp1251", b"\xc6\xc6"), "ЖЖ");
        assert_eq!(d("utf16", b"\0A\0B"), "AB");
        assert_eq!(d("utf16le", b"A\0B\0"), "AB");
        assert_eq!(d("utf32", b"\0\x01\xf6\x00"), "😀");
        assert_eq!(d("utf8mb4", "é".as_bytes()), "é");
        assert_eq!(Charset::of(Some("big5")), Err("big5".to_owned()));
        assert_eq!(Charset::of(None), Ok(Charset::Utf8));
    }
}
