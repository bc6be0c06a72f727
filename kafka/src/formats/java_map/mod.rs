//! The order a `java.util.HashMap` iterates its entries, for the Connect maps Confluent's
//! converters build (`kafka/docs/connector-compatibility-registry.md` §5.19, §6.14, §7).
//!
//! **Why.** `ProtobufData.toConnectData` (`new HashMap<>()`), `AvroData.toConnectData`
//! (`new HashMap<>(original.size())`) and `JsonSchemaData` (`new HashMap<>()`) put a map's
//! entries into a `HashMap` in the order they read them (schema-registry v7.9.2), and the
//! connector writes them in that map's iteration order (`KafkaRecordConverter.convertMapValue`
//! at v4.1.0): a map with non-string keys as `[[key, value], …]`, where order is data.
//!
//! **What Java does** (`java.util.HashMap`, JDK 8 to 21 alike), all of which is simulated:
//!
//! * each key's `hashCode` ([`JavaKey::hash_code`]) is spread (`h ^ h >>> 16`) and masked by
//!   the table's size (a power of two);
//! * the table is made at the first `put`: 16 slots by default (threshold 12), or
//!   `tableSizeFor(n)` for `new HashMap<>(n)` (threshold `(int)(size * 0.75)` below 16); it
//!   doubles when the size passes the threshold, and also when a bin reaches 9 entries while
//!   the table is smaller than 64 (`treeifyBin`);
//! * within a bin entries are kept in insertion order, and a resize splits a bin into two
//!   keeping that order;
//! * a bin of 9 or more entries in a table of 64 or more becomes a red-black tree
//!   (`TreeNode`): iteration still follows the `next` links, but `treeify` moves the tree's
//!   root to the front of the bin, and a later insert links the new node right after its tree
//!   parent, then moves the (possibly new) root to the front. A tree split by a resize into
//!   halves of at most 6 entries becomes a list again (order kept), a larger half is treeified
//!   anew;
//! * a key already present keeps its place and takes the new value (a later duplicate replaces
//!   the value only).
//!
//! Inside a tree, keys of equal hash are ordered by `compareTo` when their class is
//! `Comparable` to itself (every key kind here but bytes); otherwise Java breaks the tie by
//! `System.identityHashCode`, which differs from run to run: such a map is refused (a reason
//! naming it), as no writer can reproduce that order.

use std::cmp::Ordering;

use num_bigint::BigInt;

/// A Connect map key, as the Java object Confluent's converters make of it.
#[derive(Debug, Clone)]
pub(crate) enum JavaKey {
    /// `null` (an optional key schema).
    Null,
    /// `Integer`, `Short` or `Byte` (Connect INT32, INT16, INT8): the same `hashCode` and order.
    Int(i32),
    /// `Long` (Connect INT64; Protobuf's `uint32`, `fixed32` widened, `uint64` wrapped).
    Long(i64),
    /// `Boolean`.
    Bool(bool),
    /// `Float`.
    Float(f32),
    /// `Double`.
    Double(f64),
    /// `String`.
    Str(String),
    /// `java.util.Date` (Connect `Date`, `Time`, `Timestamp`): its milliseconds.
    Date(i64),
    /// `java.nio.ByteBuffer` (Connect BYTES).
    Bytes(Vec<u8>),
    /// `java.math.BigDecimal` (Connect `Decimal`): unscaled value and scale.
    Decimal(BigInt, i32),
}

impl JavaKey {
    /// The key's Java `hashCode()`.
    pub(crate) fn hash_code(&self) -> i32 {
        match self {
            JavaKey::Null => 0,
            JavaKey::Int(v) => *v,
            // Long.hashCode: (int)(v ^ (v >>> 32)); Date.hashCode: (int)t ^ (int)(t >> 32),
            // the same low 32 bits.
            JavaKey::Long(v) | JavaKey::Date(v) => (*v ^ ((*v as u64) >> 32) as i64) as i32,
            JavaKey::Bool(b) => {
                if *b {
                    1231
                } else {
                    1237
                }
            }
            JavaKey::Float(f) => float_to_int_bits(*f),
            JavaKey::Double(d) => {
                let bits = double_to_long_bits(*d);
                (bits ^ ((bits as u64) >> 32) as i64) as i32
            }
            JavaKey::Str(s) => java_string_hash(s),
            // ByteBuffer.hashCode: h = 1, then 31 * h + b from the last byte to the first.
            JavaKey::Bytes(b) => b.iter().rev().fold(1i32, |h, &x| {
                h.wrapping_mul(31).wrapping_add(i32::from(x as i8))
            }),
            JavaKey::Decimal(unscaled, scale) => {
                // BigDecimal.hashCode: 31 * unscaledValue().hashCode() + scale (its compact
                // form computes the same), BigInteger's over its 32-bit magnitude words.
                let (sign, words) = unscaled.to_u32_digits();
                let mag = words.iter().rev().fold(0i32, |h, &w| {
                    (i64::from(h.wrapping_mul(31)) + i64::from(w)) as i32
                });
                let signed = match sign {
                    num_bigint::Sign::Minus => mag.wrapping_neg(),
                    num_bigint::Sign::NoSign => 0,
                    num_bigint::Sign::Plus => mag,
                };
                signed.wrapping_mul(31).wrapping_add(*scale)
            }
        }
    }

    /// Java's `equals` between two keys of one map.
    fn java_eq(&self, other: &JavaKey) -> bool {
        match (self, other) {
            (JavaKey::Null, JavaKey::Null) => true,
            (JavaKey::Int(a), JavaKey::Int(b)) => a == b,
            (JavaKey::Long(a), JavaKey::Long(b)) | (JavaKey::Date(a), JavaKey::Date(b)) => a == b,
            (JavaKey::Bool(a), JavaKey::Bool(b)) => a == b,
            (JavaKey::Float(a), JavaKey::Float(b)) => {
                float_to_int_bits(*a) == float_to_int_bits(*b)
            }
            (JavaKey::Double(a), JavaKey::Double(b)) => {
                double_to_long_bits(*a) == double_to_long_bits(*b)
            }
            (JavaKey::Str(a), JavaKey::Str(b)) => a == b,
            (JavaKey::Bytes(a), JavaKey::Bytes(b)) => a == b,
            (JavaKey::Decimal(a, s), JavaKey::Decimal(b, t)) => a == b && s == t,
            _ => false,
        }
    }

    /// `compareComparables`: the keys' `compareTo` when this key's class is comparable to
    /// itself and the other is of that class, else `None` (`HashMap` then breaks the tie).
    fn compare(&self, other: &JavaKey) -> Option<Ordering> {
        Some(match (self, other) {
            (JavaKey::Int(a), JavaKey::Int(b)) => a.cmp(b),
            (JavaKey::Long(a), JavaKey::Long(b)) | (JavaKey::Date(a), JavaKey::Date(b)) => a.cmp(b),
            (JavaKey::Bool(a), JavaKey::Bool(b)) => a.cmp(b),
            (JavaKey::Float(a), JavaKey::Float(b)) => java_compare(
                a.partial_cmp(b),
                float_to_int_bits(*a).cmp(&float_to_int_bits(*b)),
            ),
            (JavaKey::Double(a), JavaKey::Double(b)) => java_compare(
                a.partial_cmp(b),
                double_to_long_bits(*a).cmp(&double_to_long_bits(*b)),
            ),
            // String.compareTo: by UTF-16 code units.
            (JavaKey::Str(a), JavaKey::Str(b)) => a.encode_utf16().cmp(b.encode_utf16()),
            (JavaKey::Decimal(a, s), JavaKey::Decimal(b, t)) if s == t => a.cmp(b),
            _ => return None,
        })
    }
}

/// `Float.compare` / `Double.compare`: by value, then (equal or NaN) by the canonical bits.
fn java_compare(by_value: Option<Ordering>, by_bits: Ordering) -> Ordering {
    match by_value {
        Some(Ordering::Less) => Ordering::Less,
        Some(Ordering::Greater) => Ordering::Greater,
        _ => by_bits,
    }
}

/// `Float.floatToIntBits`: the bits, every NaN as `0x7fc00000`.
fn float_to_int_bits(f: f32) -> i32 {
    if f.is_nan() {
        0x7fc0_0000
    } else {
        f.to_bits() as i32
    }
}

/// `Double.doubleToLongBits`: the bits, every NaN as `0x7ff8000000000000`.
fn double_to_long_bits(d: f64) -> i64 {
    if d.is_nan() {
        0x7ff8_0000_0000_0000
    } else {
        d.to_bits() as i64
    }
}

/// Java's `String.hashCode` (over UTF-16 code units, wrapping).
pub(crate) fn java_string_hash(s: &str) -> i32 {
    s.encode_utf16()
        .fold(0i32, |h, c| h.wrapping_mul(31).wrapping_add(i32::from(c)))
}

/// How the converter made its map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Capacity {
    /// `new HashMap<>()` (Protobuf, JSON Schema).
    Default,
    /// `new HashMap<>(n)` (Avro: `n` is the entry count read, duplicates included).
    Sized(usize),
}

/// One distinct key of the map: where it was first put and where it was last put (its value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Entry {
    /// The index of the key's first `put` (its place and its key).
    pub first: usize,
    /// The index of its last `put` (its value).
    pub last: usize,
}

/// The entries a `HashMap` made with `capacity` iterates after `put`ting `keys` in order, a
/// later duplicate replacing the value only.
///
/// # Errors
/// A map whose order Java decides by object identity (two distinct keys of equal hash in a
/// tree bin, of a class not comparable to itself: bytes); the reason says so.
pub(crate) fn iteration_order(keys: &[JavaKey], capacity: Capacity) -> Result<Vec<Entry>, String> {
    let mut map = Sim::new(keys, capacity);
    for i in 0..keys.len() {
        map.put(i)?;
    }
    if map.identity_tie {
        return Err(sim::IDENTITY_ORDER.into());
    }
    Ok(map.iterate())
}

/// The order a `HashMap<>()` iterates distinct `String` keys put in order.
pub(crate) fn string_order<S: AsRef<str>>(keys: &[S]) -> Vec<usize> {
    let keys: Vec<JavaKey> = keys
        .iter()
        .map(|k| JavaKey::Str(k.as_ref().to_owned()))
        .collect();
    // Strings are comparable: no identity tie-break, never an error.
    iteration_order(&keys, Capacity::Default)
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.first)
        .collect()
}

const TREEIFY_THRESHOLD: usize = 8;
const UNTREEIFY_THRESHOLD: usize = 6;
const MIN_TREEIFY_CAPACITY: usize = 64;
const MAXIMUM_CAPACITY: usize = 1 << 30;

/// One `Node` / `TreeNode` (indexes into [`Sim::nodes`]).
#[derive(Debug, Clone)]
struct Node {
    hash: i32,
    entry: Entry,
    next: Option<usize>,
    prev: Option<usize>,
    parent: Option<usize>,
    left: Option<usize>,
    right: Option<usize>,
    red: bool,
}

/// A `HashMap` that holds key indexes: `putVal`, `resize`, `treeifyBin` and `TreeNode`'s
/// `putTreeVal`, `treeify`, `split`, `moveRootToFront` and `balanceInsertion`, as in the JDK.
struct Sim<'k> {
    keys: &'k [JavaKey],
    nodes: Vec<Node>,
    table: Vec<Option<usize>>,
    /// Whether each bin is a tree.
    tree: Vec<bool>,
    threshold: usize,
    size: usize,
    /// Whether a tree was built with a tie Java breaks by object identity.
    identity_tie: bool,
}

mod sim;

#[cfg(test)]
mod tests;
