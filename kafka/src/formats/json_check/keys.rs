//! An object's keys, each at most once: the server (and Snowflake's `PARSE_JSON`, strict by
//! default) refuses an object that names a key twice at any depth as a row error
//! (`emulator/src/convert/strict_row.rs`), so the check refuses it first and the message
//! becomes a dead letter with its own partition and offset.
//!
//! Keys are compared as the text they stand for: `"a"` and `"\u0061"` are one key. A key
//! without a backslash is its own bytes (borrowed); one with escapes is decoded (a lone
//! surrogate, which the check lets pass as serde_json does, as its three WTF-8 bytes, which no
//! character's UTF-8 equals). An object's first [`LINEAR_KEYS`] keys are compared one by one
//! (most objects of a row have a few); past that, they go into a hash set. At most
//! [`MOST_KEYS`] keys of one object are tracked (`docs/SECURITY.md`'s caps table): the keys
//! after those are not checked (a duplicate among them the server refuses as a row error,
//! which the sink dead-letters with the message's own offset all the same).

use std::borrow::Cow;
use std::collections::HashSet;

/// Keys of one object compared one by one before a hash set is built.
pub(super) const LINEAR_KEYS: usize = 8;
/// The most keys of one object tracked.
pub(super) const MOST_KEYS: usize = 65_536;

/// An object's keys as a set, once it has more than [`LINEAR_KEYS`].
type KeySet<'a> = HashSet<Cow<'a, [u8]>>;

/// The keys of the objects open around the scan, innermost last.
#[derive(Default)]
pub(super) struct Keys<'a> {
    /// Every open object's keys so far, one after another.
    keys: Vec<Cow<'a, [u8]>>,
    /// For each open object: where its keys start in `keys`, and its set once it has more than
    /// [`LINEAR_KEYS`].
    objects: Vec<(usize, Option<KeySet<'a>>)>,
}

impl<'a> Keys<'a> {
    /// An object opens.
    pub(super) fn open(&mut self) {
        self.objects.push((self.keys.len(), None));
    }

    /// The innermost object closes.
    pub(super) fn close(&mut self) {
        if let Some((start, _)) = self.objects.pop() {
            self.keys.truncate(start);
        }
    }

    /// The innermost object's next key, `raw` between its quotes (checked already): whether
    /// it is new there.
    pub(super) fn is_new(&mut self, raw: &'a [u8]) -> bool {
        let Some((start, set)) = self.objects.last_mut() else {
            return true;
        };
        let seen = self.keys.len() - *start;
        if seen >= MOST_KEYS {
            return true;
        }
        let key = decoded(raw);
        if let Some(set) = set {
            if !set.insert(key.clone()) {
                return false;
            }
        } else if self.keys[*start..].contains(&key) {
            return false;
        } else if seen + 1 > LINEAR_KEYS {
            let mut all: KeySet<'a> = self.keys[*start..].iter().cloned().collect();
            all.insert(key.clone());
            *set = Some(all);
        }
        self.keys.push(key);
        true
    }
}

/// The text a key's `raw` bytes (a JSON string's, between its quotes, already checked) stand
/// for, as UTF-8 (a lone surrogate as WTF-8).
pub(super) fn decoded(raw: &[u8]) -> Cow<'_, [u8]> {
    if memchr::memchr(b'\\', raw).is_none() {
        return Cow::Borrowed(raw);
    }
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let c = raw[i];
        if c != b'\\' {
            out.push(c);
            i += 1;
            continue;
        }
        let e = raw.get(i + 1).copied().unwrap_or(b'\\');
        i += 2;
        let simple = match e {
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => {
                let unit = hex4(raw, i);
                i += 4;
                let mut code = u32::from(unit);
                if (0xD800..0xDC00).contains(&unit)
                    && raw.get(i..i + 2) == Some(b"\\u")
                    && (0xDC00..0xE000).contains(&hex4(raw, i + 2))
                {
                    let low = hex4(raw, i + 2);
                    code = 0x10000 + ((code - 0xD800) << 10) + (u32::from(low) - 0xDC00);
                    i += 6;
                }
                push_code(&mut out, code);
                continue;
            }
            other => other,
        };
        out.push(simple);
    }
    Cow::Owned(out)
}

/// The four hex digits at `raw[i..]` (checked already; 0 where there are none).
fn hex4(raw: &[u8], i: usize) -> u16 {
    raw.get(i..i + 4)
        .and_then(|h| std::str::from_utf8(h).ok())
        .and_then(|h| u16::from_str_radix(h, 16).ok())
        .unwrap_or(0)
}

/// `code` as UTF-8, a surrogate as the same three-byte form (WTF-8).
fn push_code(out: &mut Vec<u8>, code: u32) {
    if let Some(c) = char::from_u32(code) {
        let mut buf = [0; 4];
        out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
    } else {
        out.extend_from_slice(&[
            0xE0 | (code >> 12) as u8,
            0x80 | ((code >> 6) & 0x3F) as u8,
            0x80 | (code & 0x3F) as u8,
        ]);
    }
}
