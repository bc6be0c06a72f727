//! An object's keys, each at most once: the server (and Snowflake's `PARSE_JSON`, strict by
//! default) refuses an object that names a key twice at any depth as a row error
//! (`emulator/src/convert/strict_row.rs`), so the check refuses it first and the message
//! becomes a dead letter with its own partition and offset.
//!
//! Keys are compared as the text they stand for: `"a"` and `"\u0061"` are one key. A key
//! without a backslash is its own bytes; one with escapes is decoded (a lone surrogate, which
//! the check lets pass as serde_json does, as its three WTF-8 bytes, which no character's
//! UTF-8 equals). An object's first [`LINEAR_KEYS`] keys are compared one by one, each by a
//! [`tag`] of its length and end bytes before its bytes (most objects of a row have a few
//! dozen keys at most), and only when a 64-bit filter of the object's tags so far (a bit a
//! tag) says the key may be there: most keys of a row meet no other with their bit and are
//! compared with none. Past that, each key's hash goes into a set (seeded per
//! thread, so no input can aim collisions), a hit confirmed against the keys themselves. At
//! most [`MOST_KEYS`] keys of one object are tracked (`docs/SECURITY.md`'s caps table): the
//! keys after those are not checked (a duplicate among them the server refuses as a row
//! error).
//!
//! The keys are kept as ranges of the row's bytes in buffers each thread reuses (a [`Keys`]
//! takes them and gives them back when dropped), so checking a row allocates nothing once
//! its thread has checked a row as wide and as deep.

use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::hash_map::RandomState;
use std::collections::HashSet;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

/// Keys of one object compared one by one (by their [`tag`] first) before a hash set is built.
pub(super) const LINEAR_KEYS: usize = 32;
/// The most keys of one object tracked.
pub(super) const MOST_KEYS: usize = 65_536;

/// One key: where its text (between its quotes) is, in the row or in the runs of the shape
/// the row was walked along (`in_shape`), whether it has escapes, and its [`tag`].
#[derive(Clone, Copy)]
struct Key {
    start: usize,
    end: usize,
    escaped: bool,
    in_shape: bool,
    tag: u64,
}

/// The buffers a thread's checks reuse.
#[derive(Default)]
struct Buffers {
    /// Every open object's keys so far, one after another.
    keys: Vec<Key>,
    /// For each open object: where its keys start in `keys`, the filter of its keys' tags
    /// ([`bit`]), and its set of key hashes once it has more than [`LINEAR_KEYS`].
    objects: Vec<(usize, u64, Option<Hashes>)>,
    /// Sets of closed objects, empty, for the next wide object.
    spare: Vec<Hashes>,
    /// Which of the backing keys ([`Keys::back_outermost`]) the row's outermost object named.
    suspects: Vec<u32>,
}

/// A set of key hashes: each is already a keyed hash ([`SEED`]), so the set takes it as is.
type Hashes = HashSet<u64, BuildHasherDefault<Taken>>;

/// The hasher of [`Hashes`]: the value it is given, which is a hash already.
#[derive(Default)]
struct Taken(u64);

impl Hasher for Taken {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

thread_local! {
    static BUFFERS: RefCell<Buffers> = RefCell::default();
    /// The hash of keys, seeded once per thread.
    static SEED: RandomState = RandomState::new();
}

/// The keys of the objects open around the scan of `row`, innermost last, some of them
/// perhaps in the runs of the `shape` the row was walked along (the shape's row's keys, which
/// the row shares where it has the shape's runs): this thread's buffers, given back when
/// dropped.
pub(super) struct Keys<'a> {
    b: Buffers,
    hasher: RandomState,
    row: &'a [u8],
    shape: &'a [u8],
    /// The shape's outermost object's keys, not told one by one ([`Keys::back_outermost`]).
    backing: Option<&'a Outermost>,
}

/// The keys of the outermost object of the shape a row is walked along, distinct (the
/// shape's row's), to look a key up among: one by one by their tags up to [`LINEAR_KEYS`] of
/// them, past that by their keyed hashes, sorted (so that a row of many keys against a shape
/// of many keys costs a lookup a key, not a pass over the shape's).
#[derive(Debug, Default)]
pub(super) struct Outermost {
    keys: Vec<Backing>,
    /// Each key's hash (the thread's [`SEED`]) and its index in `keys`, sorted; empty up to
    /// [`LINEAR_KEYS`] keys.
    by_hash: Vec<(u64, u32)>,
}

impl Outermost {
    /// None, for the next shape.
    pub(super) fn clear(&mut self) {
        self.keys.clear();
        self.by_hash.clear();
    }

    /// One more key, `runs[start..end]` of the shape's runs, with escapes or not, its
    /// [`tag_of`] `tag`.
    pub(super) fn push(&mut self, start: usize, end: usize, escaped: bool, tag: u64) {
        self.keys.push(Backing {
            start: start as u32,
            end: end as u32,
            escaped,
            tag,
        });
    }

    /// Done pushing: the hashes sorted when there are more than [`LINEAR_KEYS`] keys.
    pub(super) fn seal(&mut self, runs: &[u8]) {
        self.by_hash.clear();
        if self.keys.len() <= LINEAR_KEYS {
            return;
        }
        let hasher = SEED.try_with(RandomState::clone).unwrap_or_default();
        for (i, k) in self.keys.iter().enumerate() {
            let key = k.key();
            self.by_hash
                .push((hash(&hasher, (&[], runs), key), i as u32));
        }
        self.by_hash.sort_unstable();
    }

    /// Key `i`.
    pub(super) fn get(&self, i: u32) -> Option<&Backing> {
        self.keys.get(i as usize)
    }

    fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Which key, if any, stands for the same text as `key` (compared in `texts`).
    fn find(&self, hasher: &RandomState, texts: (&[u8], &[u8]), key: Key) -> Option<u32> {
        if self.by_hash.is_empty() {
            let named = self.keys.iter().position(|k| {
                let k = k.key();
                k.tag == key.tag && same(texts, k, key)
            });
            return named.map(|i| i as u32);
        }
        let h = hash(hasher, texts, key);
        let from = self.by_hash.partition_point(|&(x, _)| x < h);
        self.by_hash[from..]
            .iter()
            .take_while(|&&(x, _)| x == h)
            .find(|&&(_, i)| same(texts, self.keys[i as usize].key(), key))
            .map(|&(_, i)| i)
    }
}

/// A key of the outermost object of the shape a row is walked along: where its text is in the
/// shape's runs, whether it has escapes, and its [`tag`].
#[derive(Debug, Clone, Copy)]
pub(super) struct Backing {
    pub(super) start: u32,
    end: u32,
    escaped: bool,
    tag: u64,
}

impl Backing {
    /// As a key of the shape's runs.
    fn key(&self) -> Key {
        Key {
            start: self.start as usize,
            end: self.end as usize,
            escaped: self.escaped,
            in_shape: true,
            tag: self.tag,
        }
    }
}

impl<'a> Keys<'a> {
    /// No object open yet, for the keys of `row` and of `shape`'s runs.
    pub(super) fn new(row: &'a [u8], shape: &'a [u8]) -> Self {
        let b = BUFFERS
            .try_with(|b| b.try_borrow_mut().map(|mut b| std::mem::take(&mut *b)).ok())
            .ok()
            .flatten()
            .unwrap_or_default();
        let hasher = SEED.try_with(RandomState::clone).unwrap_or_default();
        Self {
            b,
            hasher,
            row,
            shape,
            backing: None,
        }
    }

    /// The row's outermost object is the shape's outermost one where the row was walked
    /// along it, and its keys there are `backing`'s (distinct: the shape's row's), which are
    /// therefore not told one by one. Each key of the row's own (read by the one pass) in the
    /// outermost object is compared with them, and those it names are kept in
    /// [`suspects`](Self::suspects): a key named twice when the row was walked where that
    /// backing key stands.
    pub(super) fn back_outermost(&mut self, backing: &'a Outermost) {
        self.backing = (!backing.is_empty()).then_some(backing);
    }

    /// The indexes in the backing keys of those the row's own keys named.
    pub(super) fn suspects(&self) -> &[u32] {
        &self.b.suspects
    }
}

impl Drop for Keys<'_> {
    fn drop(&mut self) {
        let mut b = std::mem::take(&mut self.b);
        b.keys.clear();
        b.suspects.clear();
        for (_, _, set) in b.objects.drain(..) {
            if let Some(mut set) = set {
                set.clear();
                b.spare.push(set);
            }
        }
        let _ = BUFFERS.try_with(|cell| {
            if let Ok(mut cell) = cell.try_borrow_mut() {
                *cell = b;
            }
        });
    }
}

impl Keys<'_> {
    /// An object opens.
    pub(super) fn open(&mut self) {
        self.b.objects.push((self.b.keys.len(), 0, None));
    }

    /// The innermost object closes.
    pub(super) fn close(&mut self) {
        if let Some((start, _, set)) = self.b.objects.pop() {
            self.b.keys.truncate(start);
            if let Some(mut set) = set {
                set.clear();
                self.b.spare.push(set);
            }
        }
    }

    /// The innermost object's next key, `row[start..end]` (between its quotes, checked
    /// already; `escaped` when it holds a backslash): whether it is new there.
    #[inline(always)]
    pub(super) fn is_new(&mut self, start: usize, end: usize, escaped: bool) -> bool {
        let tag = tag_of(&self.row[start..end], escaped);
        let key = Key {
            start,
            end,
            escaped,
            in_shape: false,
            tag,
        };
        if self.backing.is_some() && self.b.objects.len() == 1 {
            self.suspect(key);
        }
        self.insert(key)
    }

    /// Keeps which backing key, if any, `key` (of the outermost object) names.
    #[cold]
    fn suspect(&mut self, key: Key) {
        let texts = (self.row, self.shape);
        let named = self.backing.and_then(|b| b.find(&self.hasher, texts, key));
        if let Some(i) = named {
            self.b.suspects.push(i);
        }
    }

    /// [`is_new`](Self::is_new) for a key in the shape's runs, `shape[start..end]`, whose
    /// [`tag_of`] is `tag`.
    #[inline]
    pub(super) fn is_new_in_shape(
        &mut self,
        start: usize,
        end: usize,
        escaped: bool,
        tag: u64,
    ) -> bool {
        self.insert(Key {
            start,
            end,
            escaped,
            in_shape: true,
            tag,
        })
    }

    /// Whether `key` is new in the innermost object, which then has it. The linear keys'
    /// path here; an object of more keys in [`insert_wide`](Self::insert_wide).
    #[inline(always)]
    fn insert(&mut self, key: Key) -> bool {
        let b = &mut self.b;
        let Some((first, filter, set)) = b.objects.last_mut() else {
            return true;
        };
        let first = *first;
        if set.is_some() || b.keys.len() - first >= LINEAR_KEYS {
            return self.insert_wide(key);
        }
        let bit = bit(key.tag);
        if *filter & bit != 0 {
            let texts = (self.row, self.shape);
            let mine = &b.keys[first..];
            if mine
                .iter()
                .any(|k| k.tag == key.tag && same(texts, *k, key))
            {
                return false;
            }
        }
        *filter |= bit;
        b.keys.push(key);
        true
    }

    /// [`insert`](Self::insert) into an object of [`LINEAR_KEYS`] keys or more: by a set of
    /// their hashes, made from its keys so far when it has none yet.
    #[cold]
    #[inline(never)]
    fn insert_wide(&mut self, key: Key) -> bool {
        let (b, hasher, texts) = (&mut self.b, &self.hasher, (self.row, self.shape));
        let Some((first, _, set)) = b.objects.last_mut() else {
            return true;
        };
        let mine = &b.keys[*first..];
        if mine.len() >= MOST_KEYS {
            return true;
        }
        let set = set.get_or_insert_with(|| {
            let mut all = b.spare.pop().unwrap_or_default();
            all.extend(mine.iter().map(|k| hash(hasher, texts, *k)));
            all
        });
        if !set.insert(hash(hasher, texts, key)) && mine.iter().any(|k| same(texts, *k, key)) {
            return false;
        }
        b.keys.push(key);
        true
    }
}

/// The [`tag`] of a key whose text between its quotes is `raw` (`escaped`: it holds a
/// backslash, so its tag is its decoded text's).
#[inline]
pub(super) fn tag_of(raw: &[u8], escaped: bool) -> u64 {
    if escaped {
        tag(&decoded(raw))
    } else {
        tag(raw)
    }
}

/// What two keys' texts must share to be one: their length and their first and last four
/// bytes, mixed into a word (a filter before the bytes are compared).
#[inline]
fn tag(text: &[u8]) -> u64 {
    let n = text.len();
    let ends = match (text.first_chunk::<4>(), text.last_chunk::<4>()) {
        (Some(head), Some(tail)) => {
            u64::from(u32::from_le_bytes(*head)) << 32 | u64::from(u32::from_le_bytes(*tail))
        }
        _ => text.iter().fold(0, |t, &c| t << 8 | u64::from(c)),
    };
    ends ^ (n as u64).rotate_right(16)
}

/// The bit of an object's key filter that `tag` sets: its top six bits, mixed.
fn bit(tag: u64) -> u64 {
    1 << (tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58)
}

/// The bytes between the quotes of key `k`: in the row, or in the shape's runs.
fn text<'t>((row, shape): (&'t [u8], &'t [u8]), k: Key) -> &'t [u8] {
    if k.in_shape {
        &shape[k.start..k.end]
    } else {
        &row[k.start..k.end]
    }
}

/// Whether keys `a` and `b` stand for the same text.
fn same(texts: (&[u8], &[u8]), a: Key, b: Key) -> bool {
    let (ra, rb) = (text(texts, a), text(texts, b));
    if !a.escaped && !b.escaped {
        return ra == rb;
    }
    decoded(ra) == decoded(rb)
}

/// The hash of the text key `k` stands for.
fn hash(hasher: &RandomState, texts: (&[u8], &[u8]), k: Key) -> u64 {
    let raw = text(texts, k);
    if k.escaped {
        hasher.hash_one(decoded(raw).as_ref())
    } else {
        hasher.hash_one(raw)
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
