//! The serializer against serde_json itself: same bytes for every value, or a [`Fallback`].

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use serde::ser::{SerializeSeq, SerializeStruct, Serializer};
use serde::Serialize;
use serde_json::Value;

use super::{write, Fallback};

/// Ours and serde_json's bytes for `value` (ours `None` when it fell back).
fn both<T: Serialize + ?Sized>(value: &T) -> (Option<Vec<u8>>, serde_json::Result<Vec<u8>>) {
    let mut ours = b"prefix".to_vec();
    let mine = write(&mut ours, value)
        .ok()
        .map(|()| ours.split_off(b"prefix".len()));
    (mine, serde_json::to_vec(value))
}

/// Ours must equal serde_json's, byte for byte.
fn same<T: Serialize + ?Sized + std::fmt::Debug>(value: &T) {
    let (mine, theirs) = both(value);
    let theirs = theirs.expect("serde_json serializes it");
    let mine = mine.unwrap_or_else(|| panic!("fell back on {value:?}"));
    assert_eq!(
        String::from_utf8_lossy(&mine),
        String::from_utf8_lossy(&theirs),
        "{value:?}"
    );
}

fn any_string() -> impl Strategy<Value = String> {
    prop_oneof![
        // Mostly the characters that matter: controls, quotes, backslashes, ASCII, multibyte.
        prop::collection::vec(
            prop_oneof![
                (0u32..0x20).prop_map(|c| char::from_u32(c).unwrap_or('?')),
                Just('"'),
                Just('\\'),
                Just('/'),
                Just('\u{7f}'),
                prop::char::range(' ', '~'),
                any::<char>(),
            ],
            0..40,
        )
        .prop_map(|v| v.into_iter().collect()),
        any::<String>(),
    ]
}

fn any_number() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        prop_oneof![
            Just(0.0f64),
            Just(-0.0),
            Just(1e-320),
            Just(f64::MAX),
            Just(1e21)
        ]
        .prop_map(Value::from),
    ]
}

fn any_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any_number(),
        any_string().prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 64, 8, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::btree_map(any_string(), inner, 0..8)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

#[derive(Serialize, Debug, Clone)]
enum Kind {
    Unit,
    Newtype(i32),
    Tuple(u8, String),
    Struct { a: Option<f32>, b: char },
    EmptyTuple(),
    EmptyStruct {},
}

#[derive(Serialize, Debug, Clone)]
struct Wrapper(String);

#[derive(Serialize, Debug, Clone)]
struct Unit;

/// Calls `serialize_bytes` (a `&[u8]` would be a sequence).
#[derive(Debug, Clone)]
struct Raw(Vec<u8>);

impl Serialize for Raw {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(&self.0)
    }
}

#[derive(Serialize, Debug, Clone)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Row {
    id: u64,
    small: i8,
    wide: i128,
    huge: u128,
    ratio: f64,
    single: f32,
    flag: bool,
    name: String,
    letter: char,
    maybe: Option<String>,
    kinds: Vec<Kind>,
    by_number: BTreeMap<i64, Wrapper>,
    by_letter: BTreeMap<char, Unit>,
    by_kind: Vec<(u16, Option<()>)>,
    raw: Raw,
    #[serde(skip_serializing_if = "Option::is_none")]
    skipped: Option<u8>,
    #[serde(flatten)]
    extra: HashMap<String, Value>,
}

fn any_kind() -> impl Strategy<Value = Kind> {
    prop_oneof![
        Just(Kind::Unit),
        any::<i32>().prop_map(Kind::Newtype),
        (any::<u8>(), any_string()).prop_map(|(a, b)| Kind::Tuple(a, b)),
        (any::<Option<f32>>(), any::<char>()).prop_map(|(a, b)| Kind::Struct { a, b }),
        Just(Kind::EmptyTuple()),
        Just(Kind::EmptyStruct {}),
    ]
}

prop_compose! {
    fn any_row()(
        id in any::<u64>(), small in any::<i8>(), wide in any::<i128>(), huge in any::<u128>(),
        ratio in any::<f64>(), single in any::<f32>(), flag in any::<bool>(),
        name in any_string(), letter in any::<char>(), maybe in prop::option::of(any_string()),
        kinds in prop::collection::vec(any_kind(), 0..4),
        by_number in prop::collection::btree_map(any::<i64>(), any_string().prop_map(Wrapper), 0..3),
        by_letter in prop::collection::btree_map(any::<char>(), Just(Unit), 0..3),
        by_kind in prop::collection::vec((any::<u16>(), prop::option::of(Just(()))), 0..3),
        raw in prop::collection::vec(any::<u8>(), 0..6),
        skipped in any::<Option<u8>>(),
        extra in prop::collection::hash_map("[a-z]{1,6}", any_value(), 0..3),
    ) -> Row {
        Row { id, small, wide, huge, ratio, single, flag, name, letter, maybe, kinds, by_number,
              by_letter, by_kind, raw: Raw(raw), skipped, extra }
    }
}

proptest! {
    #![proptest_config(crate::test_support::proptest_config(512))]

    /// Random JSON values (every escape, every number kind, nesting): serde_json's bytes.
    #[test]
    fn values_serialize_as_serde_json_does(value in any_value()) {
        same(&value);
    }

    /// Rows with every serde data-model shape, including non-finite floats (`null`), integer
    /// and char map keys, variants, bytes and flattened maps: serde_json's bytes.
    #[test]
    fn typed_rows_serialize_as_serde_json_does(row in any_row()) {
        same(&row);
    }

    /// Strings of any characters, alone and as map keys.
    #[test]
    fn strings_and_keys_serialize_as_serde_json_does(s in any_string()) {
        same(&s);
        same(&BTreeMap::from([(s.clone(), 1)]));
    }
}

/// NaN and the infinities become the strings Snowflake's FLOAT takes (serde_json's `null`
/// would land as SQL NULL); extreme finite floats print as serde_json prints them.
#[test]
fn non_finite_floats_are_strings_and_extremes_print_alike() {
    let ours = |v: &dyn erased::Ser| {
        let mut out = Vec::new();
        v.write(&mut out);
        String::from_utf8(out).unwrap()
    };
    assert_eq!(ours(&f64::NAN), r#""NaN""#);
    assert_eq!(ours(&f64::INFINITY), r#""inf""#);
    assert_eq!(ours(&f64::NEG_INFINITY), r#""-inf""#);
    assert_eq!(ours(&f32::NAN), r#""NaN""#);
    assert_eq!(ours(&f32::NEG_INFINITY), r#""-inf""#);
    #[derive(serde::Serialize)]
    struct Reading {
        t: f64,
        ok: Option<f32>,
    }
    assert_eq!(
        ours(&Reading {
            t: f64::NAN,
            ok: Some(f32::INFINITY)
        }),
        r#"{"t":"NaN","ok":"inf"}"#
    );
    for f in [0.0, -0.0, 1e300, 5e-324, 0.1] {
        same(&f);
    }
    for f in [1.5e-45, f32::MAX, 0.3] {
        same(&f);
    }
    same(&(i128::MIN, u128::MAX, i64::MIN, u64::MAX));
}

mod erased {
    /// A value the test can write with [`crate::json::write_or_fallback`].
    pub(super) trait Ser {
        fn write(&self, out: &mut Vec<u8>);
    }
    impl<T: serde::Serialize> Ser for T {
        fn write(&self, out: &mut Vec<u8>) {
            crate::json::write_or_fallback(out, self).unwrap();
        }
    }
}

/// A length of zero stated up front and elements anyway: serde_json writes `[]` and then a
/// comma before the first element; so do we.
#[test]
fn a_stated_length_that_lies_is_written_as_serde_json_writes_it() {
    struct Liar;
    impl Serialize for Liar {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut seq = s.serialize_seq(Some(0))?;
            seq.serialize_element(&1)?;
            seq.serialize_element(&2)?;
            seq.end()
        }
    }
    impl std::fmt::Debug for Liar {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Liar")
        }
    }
    same(&Liar);
    same(&Vec::<u8>::new());
    same(&BTreeMap::<String, u8>::new());
}

/// What is left to serde_json: non-string-like keys, serde_json's private raw-value struct,
/// and every error a `Serialize` impl raises (the caller re-runs serde_json for its message).
#[test]
fn what_serde_json_must_do_itself_falls_back() {
    let (mine, _) = both(&BTreeMap::from([(true, 1)]));
    assert!(mine.is_none(), "bool keys are serde_json's to decide");
    let (mine, theirs) = both(&HashMap::from([(vec![1u8], 1)]));
    assert!(mine.is_none());
    assert!(theirs.is_err(), "serde_json refuses sequence keys itself");
    let (mine, _) = both(&BTreeMap::from([((), 1)]));
    assert!(mine.is_none());

    struct RawLike;
    impl Serialize for RawLike {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            let mut st = s.serialize_struct("$serde_json::private::RawValue", 1)?;
            st.serialize_field("$serde_json::private::RawValue", "{\"raw\":1}")?;
            st.end()
        }
    }
    let (mine, theirs) = both(&RawLike);
    assert!(mine.is_none());
    assert_eq!(theirs.unwrap(), b"{\"raw\":1}");

    struct Refuses;
    impl Serialize for Refuses {
        fn serialize<S: Serializer>(&self, _s: S) -> Result<S::Ok, S::Error> {
            Err(serde::ser::Error::custom("no, thanks"))
        }
    }
    let mut out = Vec::new();
    assert!(matches!(write(&mut out, &Refuses), Err(Fallback)));
}

/// Keys serde_json writes as strings: newtype structs, unit variants, 128-bit integers, chars.
#[test]
fn every_key_kind_serde_json_quotes_is_quoted_alike() {
    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
    struct Id(u32);
    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord, Debug)]
    enum Side {
        Left,
        Right,
    }
    same(&BTreeMap::from([(Id(7), 1), (Id(8), 2)]));
    same(&BTreeMap::from([(Side::Left, "l"), (Side::Right, "r")]));
    same(&BTreeMap::from([(i128::MIN, 1), (0, 2)]));
    same(&BTreeMap::from([(u128::MAX, 1)]));
    same(&BTreeMap::from([('"', 1), ('\u{1}', 2)]));
    let (mine, theirs) = both(&BTreeMap::from([(Some(1), 1)]));
    assert!(mine.is_none(), "Option keys are serde_json's to decide");
    assert_eq!(
        theirs.is_ok(),
        serde_json::to_string(&BTreeMap::from([(Some(1), 1)])).is_ok()
    );
}

/// `collect_str` (a `Display` value) is an escaped string.
#[test]
fn display_values_are_escaped_strings() {
    struct Shown;
    impl Serialize for Shown {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(&format_args!("a \"quoted\"\tline {}", 42))
        }
    }
    impl std::fmt::Debug for Shown {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("Shown")
        }
    }
    same(&Shown);
    same(&std::net::Ipv4Addr::LOCALHOST);
}

/// An impl that ignores an error this serializer raised (a key it leaves to serde_json)
/// still gets its row written by serde_json, not a half-written object.
#[test]
fn a_swallowed_refusal_still_falls_back() {
    struct Careless;
    impl Serialize for Careless {
        fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(None)?;
            let _ = m.serialize_entry(&true, &1);
            m.serialize_entry("a", &2)?;
            m.end()
        }
    }
    let mut out = Vec::new();
    assert!(matches!(write(&mut out, &Careless), Err(Fallback)));
    let mut out = b"x".to_vec();
    super::write_or_fallback(&mut out, &Careless).unwrap();
    assert_eq!(&out[1..], &serde_json::to_vec(&Careless).unwrap()[..]);
}
