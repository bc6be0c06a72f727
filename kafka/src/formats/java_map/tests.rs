//! Expected orders printed by a JDK 17 (`java.util.HashMap`, `put` in order, then
//! `entrySet()`), each entry as `first/last` (the index of the key's first and last `put`).

use num_bigint::BigInt;

use super::{iteration_order, string_order, Capacity, JavaKey};

fn order(keys: &[JavaKey], capacity: Capacity) -> String {
    iteration_order(keys, capacity)
        .expect("an order")
        .iter()
        .map(|e| format!("{}/{}", e.first, e.last))
        .collect::<Vec<_>>()
        .join(" ")
}

fn ints(v: impl IntoIterator<Item = i32>) -> Vec<JavaKey> {
    v.into_iter().map(JavaKey::Int).collect()
}

#[test]
fn the_issues_example_is_in_hash_map_order() {
    // {16: "p", 1: "a", 2: "b"}: v4 writes [[16,"p"],[1,"a"],[2,"b"]].
    assert_eq!(order(&ints([16, 1, 2]), Capacity::Default), ISSUE);
}

#[test]
fn a_hundred_int_keys_follow_buckets_and_resizes() {
    let keys = ints((0..100).map(|i| (i * 7919) % 1000 - 300));
    assert_eq!(order(&keys, Capacity::Default), HUNDRED);
}

#[test]
fn long_keys_beyond_32_bits_hash_both_halves() {
    let keys: Vec<JavaKey> = [1i64 << 32, 1, (1 << 32) | 1, -1, i64::MIN, 5_000_000_000]
        .into_iter()
        .map(JavaKey::Long)
        .collect();
    assert_eq!(order(&keys, Capacity::Default), LONG);
}

#[test]
fn negative_and_bool_keys() {
    assert_eq!(
        order(&ints([-1, -2, -17, 5, i32::MIN]), Capacity::Default),
        NEGATIVE
    );
    let bools = [JavaKey::Bool(true), JavaKey::Bool(false)];
    assert_eq!(order(&bools, Capacity::Default), BOOL);
}

#[test]
fn a_duplicate_key_keeps_its_first_place_and_takes_the_last_value() {
    assert_eq!(order(&ints([17, 1, 17]), Capacity::Default), DUP);
}

#[test]
fn a_sized_map_starts_smaller() {
    // Avro's new HashMap<>(2): one bucket of two, in insertion order.
    assert_eq!(order(&ints([5, 1]), Capacity::Sized(2)), SIZED2);
    assert_eq!(order(&ints([5, 1]), Capacity::Default), DEFAULT2);
    let keys = ints((0..40).map(|i| i * 32));
    assert_eq!(order(&keys, Capacity::Sized(40)), SIZED40);
}

#[test]
fn tree_bins_iterate_root_first_and_children_after_parents() {
    // Every key spreads to hash i << 16: one bin, resized twice, then a tree of 50.
    let keys = ints((0..50).map(|i| (((i * 13) % 50) << 16) | ((i * 13) % 50)));
    assert_eq!(order(&keys, Capacity::Default), TREE50);
    // A bin of 20 multiples of 64 (one a duplicate of a later key), then 30 others.
    let keys = ints((0..20).map(|i| (19 - i) * 64).chain(0..30));
    assert_eq!(order(&keys, Capacity::Default), TREE64);
}

#[test]
fn colliding_strings_are_ordered_by_compare_to_in_a_tree() {
    // "Aa" and "BB" have one hashCode: 16 strings of equal hash, then 60 others.
    let mut keys: Vec<String> = (0..16)
        .map(|i: usize| {
            (0..4)
                .rev()
                .map(|b| if (i >> b) & 1 == 0 { "Aa" } else { "BB" })
                .collect()
        })
        .collect();
    keys.extend((0..60).map(|i| format!("k{i}")));
    let keys: Vec<JavaKey> = keys.into_iter().map(JavaKey::Str).collect();
    assert_eq!(order(&keys, Capacity::Default), STRINGS);
    let names = ["b", "a", "c"];
    assert_eq!(string_order(&names), vec![1, 0, 2]);
}

#[test]
fn floats_doubles_bytes_decimals_and_dates() {
    let floats: Vec<JavaKey> = [0.0f32, -0.0, f32::NAN, 1.5, -2.25]
        .into_iter()
        .map(JavaKey::Float)
        .collect();
    assert_eq!(order(&floats, Capacity::Default), FLOATS);
    let doubles: Vec<JavaKey> = [0.0, -0.0, f64::NAN, 1.5, 1e300, -2.25]
        .into_iter()
        .map(JavaKey::Double)
        .collect();
    assert_eq!(order(&doubles, Capacity::Default), DOUBLES);
    let bytes: Vec<JavaKey> = [vec![1u8, 2], vec![], vec![0xff], vec![1, 2]]
        .into_iter()
        .map(JavaKey::Bytes)
        .collect();
    assert_eq!(order(&bytes, Capacity::Default), BYTES);
    let decimal = |s: &str| JavaKey::Decimal(s.parse::<BigInt>().unwrap(), 2);
    let decimals = [
        decimal("12345"),
        decimal("-7"),
        decimal("123456789012345678901234567890"),
        decimal("0"),
    ];
    assert_eq!(order(&decimals, Capacity::Default), DECIMALS);
    let dates = [
        JavaKey::Date(0),
        JavaKey::Date(86_400_000 * 19_737),
        JavaKey::Date(-23_155_200_000),
    ];
    assert_eq!(order(&dates, Capacity::Default), DATES);
}

#[test]
fn hash_codes_are_javas() {
    let big = JavaKey::Decimal("123456789012345678901234567890".parse().unwrap(), 2);
    assert_eq!(big.hash_code(), -748_148_567);
    assert_eq!(JavaKey::Decimal(BigInt::from(-7), 2).hash_code(), -215);
    assert_eq!(JavaKey::Bytes(vec![0xff, 3]).hash_code(), 1053);
    assert_eq!(JavaKey::Double(1e300).hash_code(), -164_130_400);
    assert_eq!(JavaKey::Float(-2.25).hash_code(), -1_072_693_248);
    assert_eq!(JavaKey::Long(5_000_000_000).hash_code(), 705_032_705);
    assert_eq!(JavaKey::Bool(true).hash_code(), 1231);
}

#[test]
fn byte_keys_java_orders_by_identity_are_refused() {
    // Two-byte buffers hash to 961 + 31 * b1 + b0: five of each hash below, three hashes 64
    // apart, so 14 keys share one bin and some of them their hash too.
    let keys: Vec<JavaKey> = [310u32, 374, 438]
        .into_iter()
        .flat_map(|t| (0..5).map(move |k| (t % 31 + 31 * k, t / 31 - k)))
        .filter(|&(b0, _)| b0 <= 127)
        .map(|(b0, b1)| JavaKey::Bytes(vec![b0 as u8, b1 as u8]))
        .collect();
    assert_eq!(keys.len(), 14);
    assert!(keys
        .windows(2)
        .all(|w| (w[0].hash_code() - w[1].hash_code()) % 64 == 0));
    // Eight in a list bin are ordered by insertion.
    assert!(iteration_order(&keys[..8], Capacity::Default).is_ok());
    let err = iteration_order(&keys, Capacity::Default).unwrap_err();
    assert!(err.contains("object identity"), "{err}");
}

const ISSUE: &str = "0/0 1/1 2/2";
const HUNDRED: &str = "21/21 27/27 58/58 64/64 95/95 86/86 49/49 30/30 12/12 67/67 83/83 46/46 2/2 33/33 9/9 39/39 70/70 76/76 74/74 5/5 37/37 42/42 0/0 79/79 71/71 8/8 34/34 14/14 45/45 51/51 82/82 88/88 17/17 54/54 91/91 96/96 59/59 20/20 22/22 26/26 57/57 63/63 94/94 29/29 66/66 84/84 47/47 1/1 32/32 10/10 38/38 69/69 75/75 4/4 41/41 78/78 72/72 7/7 35/35 13/13 44/44 50/50 81/81 87/87 16/16 53/53 90/90 97/97 60/60 19/19 23/23 25/25 56/56 62/62 93/93 99/99 28/28 65/65 85/85 48/48 31/31 11/11 68/68 3/3 40/40 77/77 73/73 6/6 36/36 43/43 80/80 15/15 52/52 89/89 98/98 61/61 18/18 24/24 55/55 92/92";
const LONG: &str = "2/2 3/3 4/4 0/0 1/1 5/5";
const NEGATIVE: &str = "0/0 2/2 4/4 1/1 3/3";
const BOOL: &str = "1/1 0/0";
const DUP: &str = "0/2 1/1";
const SIZED2: &str = "0/0 1/1";
const DEFAULT2: &str = "1/1 0/0";
const TREE50: &str = "2/2 0/0 27/27 1/1 3/3 4/4 5/5 32/32 28/28 6/6 33/33 29/29 7/7 34/34 30/30 11/11 15/15 42/42 38/38 19/19 23/23 46/46 8/8 35/35 31/31 12/12 16/16 43/43 39/39 20/20 24/24 47/47 9/9 13/13 40/40 36/36 17/17 21/21 44/44 25/25 48/48 10/10 14/14 41/41 37/37 18/18 22/22 45/45 26/26 49/49";
const TREE64: &str = "7/7 3/3 1/1 5/5 9/9 11/11 13/13 15/15 17/17 19/20 21/21 22/22 23/23 24/24 25/25 26/26 27/27 28/28 29/29 30/30 31/31 32/32 33/33 34/34 35/35 36/36 37/37 38/38 39/39 40/40 41/41 42/42 43/43 44/44 45/45 46/46 47/47 48/48 49/49 6/6 0/0 2/2 4/4 8/8 10/10 12/12 14/14 16/16 18/18";
const STRINGS: &str = "47/47 46/46 49/49 48/48 51/51 50/50 53/53 52/52 55/55 54/54 16/16 17/17 56/56 18/18 19/19 58/58 20/20 57/57 21/21 60/60 22/22 59/59 23/23 62/62 24/24 61/61 25/25 64/64 63/63 65/65 67/67 66/66 69/69 3/3 0/0 1/1 2/2 4/4 5/5 6/6 7/7 8/8 9/9 10/10 11/11 12/12 13/13 14/14 15/15 68/68 27/27 71/71 26/26 70/70 29/29 73/73 28/28 72/72 31/31 75/75 30/30 74/74 33/33 32/32 35/35 34/34 36/36 38/38 37/37 40/40 39/39 42/42 41/41 44/44 43/43 45/45";
const FLOATS: &str = "0/0 1/1 2/2 3/3 4/4";
const DOUBLES: &str = "0/0 1/1 5/5 4/4 2/2 3/3";
const BYTES: &str = "0/3 1/1 2/2";
const DECIMALS: &str = "2/2 3/3 1/1 0/0";
const DATES: &str = "0/0 2/2 1/1";
const SIZED40: &str = "14/14 6/6 0/0 2/2 4/4 8/8 10/10 12/12 16/16 18/18 20/20 22/22 24/24 26/26 28/28 30/30 32/32 34/34 36/36 38/38 15/15 7/7 1/1 3/3 5/5 9/9 11/11 13/13 17/17 19/19 21/21 23/23 25/25 27/27 29/29 31/31 33/33 35/35 37/37 39/39";
