//! Rows of several layouts after a learned shape, against serde_json: layouts in turn
//! (optional fields, arrays of other lengths, values of other kinds, line breaks or none),
//! each one byte off anywhere, and streams of mutated rows of several layouts.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::shape::{Shape, Walk};
use super::shape_tests::agree;
use super::tests::{mutate, seed, serde_says, RAW};

/// A row of one of many layouts, as a topic's events vary: `pick` chooses a user id that is
/// a string, a number or `null`, 0–3 segments, an optional field, 1–3 cart items each with an
/// optional note, an empty or full array of tags, and (`pretty`) white space with line breaks
/// between members.
fn layout(pick: u64, pretty: bool) -> Vec<u8> {
    let sep = if pretty { ",\n  " } else { "," };
    let user = match pick % 3 {
        0 => "null".to_string(),
        1 => format!("\"u-{}\"", pick * 7919 % 100_000),
        _ => format!("{}", pick * 31 % 1000),
    };
    let segments: Vec<&str> =
        ["\"returning\"", "\"mobile\"", "\"high\\\"value\""][..(pick / 3 % 4) as usize].to_vec();
    let optional = if pick / 12 % 2 == 0 {
        format!("{sep}\"coupon\":\"SAVE{}\"", pick % 50)
    } else {
        String::new()
    };
    let items: Vec<String> = (0..1 + pick / 24 % 3)
        .map(|k| {
            let note = if (pick + k) % 2 == 0 {
                ",\"note\":[1,{\"x\":[]}]"
            } else {
                ""
            };
            format!(
                "{{\"sku\":\"S{k}-{pick}\",\"qty\":{},\"price\":{}.5{note}}}",
                k + 1,
                pick % 97
            )
        })
        .collect();
    let tags = if pick % 5 == 0 {
        "[]"
    } else {
        "[\"a\",[true,false]]"
    };
    format!(
        "{{\"id\":{pick}{sep}\"user\":{{\"id\":{user},\"segments\":[{}]{optional}}}{sep}\"cart\":{{\"items\":[{}]}}{sep}\"tags\":{tags},\"city\":\"München\",\"ok\":true}}",
        segments.join(","),
        items.join(sep),
    )
    .into_bytes()
}

/// Bytes of each class a row can hold: structure, white space, digits, letters of literals,
/// escapes, control bytes, and bytes beyond ASCII (lone, leading, invalid).
const CLASSES: &[u8] = &[
    b'"', b'\\', b'{', b'}', b'[', b']', b',', b':', b' ', b'\n', b'\r', b'\t', b'0', b'7', b'-',
    b'+', b'.', b'e', b't', b'n', b'f', b'u', b'x', 0x00, 0x1F, 0x7F,
];

#[test]
fn rows_of_layouts_in_turn_get_serde_jsons_answer() {
    let mut shape = Shape::default();
    let mut resumed = 0;
    for pretty in [false, true] {
        for pick in 0..144 {
            // Each layout after each of a few others, so every pair of differences is met.
            for before in [pick / 2, pick + 7, pick * 5 + 1] {
                agree(&mut shape, &layout(before, pretty));
                resumed += usize::from(matches!(
                    shape.walk(&layout(pick, pretty)),
                    Walk::Resume { .. }
                ));
                agree(&mut shape, &layout(pick, pretty));
                agree(&mut shape, &layout(before, !pretty));
            }
        }
    }
    // Most rows walked part of the way before the one pass took over.
    assert!(resumed > 400, "{resumed} rows resumed");
}

#[test]
fn rows_of_other_layouts_one_byte_off_anywhere_get_serde_jsons_answer() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x1A7_0575);
    let mut resumed = 0;
    for (learned, pick) in [(0, 13), (13, 0), (40, 71), (71, 40), (5, 6)] {
        let template = layout(pick, pick % 2 == 0);
        for at in 0..template.len() {
            let byte = if rng.gen_bool(0.5) {
                CLASSES[rng.gen_range(0..CLASSES.len())]
            } else {
                RAW[rng.gen_range(0..RAW.len())]
            };
            for row in [
                replaced(&template, at, byte),
                inserted(&template, at, byte),
                removed(&template, at),
            ] {
                let mut shape = Shape::default();
                agree(&mut shape, &layout(learned, learned % 3 == 0));
                resumed += usize::from(matches!(shape.walk(&row), Walk::Resume { .. }));
                agree(&mut shape, &row);
            }
        }
    }
    assert!(resumed > 1_000, "{resumed} rows resumed");
}

fn replaced(t: &[u8], at: usize, byte: u8) -> Vec<u8> {
    let mut row = t.to_vec();
    row[at] = byte;
    row
}

fn inserted(t: &[u8], at: usize, byte: u8) -> Vec<u8> {
    let mut row = t.to_vec();
    row.insert(at, byte);
    row
}

fn removed(t: &[u8], at: usize) -> Vec<u8> {
    let mut row = t.to_vec();
    row.remove(at);
    row
}

/// Every byte value at every place of a row of another layout than the shape's, for two
/// pairs of layouts.
#[test]
fn every_byte_at_every_place_of_another_layout_gets_serde_jsons_answer() {
    let mut resumed = 0;
    for (learned, pick) in [(1, 26), (26, 1)] {
        let template = layout(pick, false);
        for at in 0..template.len() {
            for byte in 0..=u8::MAX {
                let mut shape = Shape::default();
                agree(&mut shape, &layout(learned, false));
                let row = replaced(&template, at, byte);
                resumed += usize::from(matches!(shape.walk(&row), Walk::Resume { .. }));
                agree(&mut shape, &row);
            }
        }
    }
    assert!(resumed > 10_000, "{resumed} rows resumed");
}

#[test]
fn streams_of_mutated_rows_of_several_layouts_get_serde_jsons_answer() {
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0x57_2EA3);
    let mut shape = Shape::default();
    let (mut valid, mut invalid, mut resumed) = (0, 0, 0);
    for _ in 0..20_000 {
        let mut row = layout(rng.gen_range(0..400), rng.gen_bool(0.2));
        if rng.gen_bool(0.5) {
            mutate(&mut rng, &mut row);
        }
        if serde_says(&row) {
            valid += 1;
        } else {
            invalid += 1;
        }
        resumed += usize::from(matches!(shape.walk(&row), Walk::Resume { .. }));
        agree(&mut shape, &row);
    }
    assert!(
        valid > 10_000 && invalid > 5_000 && resumed > 5_000,
        "{valid} valid, {invalid} invalid, {resumed} resumed"
    );
}

/// As the sink bench's varying events: a row of another layout walks the shape from its
/// start, leaves it where it differs, and the whole row is judged as serde_json does.
#[test]
fn a_row_of_another_layout_leaves_the_shape_part_way() {
    let mut shape = Shape::default();
    agree(&mut shape, &layout(0, false));
    let other = layout(13, false);
    assert!(matches!(shape.walk(&other), Walk::Resume { .. }));
    agree(&mut shape, &other);
}

/// The sink bench's own events (`kafka/lab/src/bench/events.rs`: a user id a string or `null`,
/// 0–3 segments, 1–2 cart items), each as made and mutated, then each byte class at every
/// place of a few of them after another event: serde_json's answer, and the one pass hands
/// most rows back to the walk where an object or array closes. The events come from the
/// lab's bench (a dev-dependency).
#[test]
fn the_sink_benchs_events_handed_back_to_the_walk_get_serde_jsons_answer() {
    use snowpipe_kafka_lab::bench::{events::message, Events};
    let mut rng = ChaCha8Rng::seed_from_u64(seed() ^ 0xE7E_475);
    let event = |id| message(Events::Realistic, 1, id, 1024).into_bytes();
    let mut shape = Shape::default();
    for id in 0..2_000 {
        let row = event(id);
        agree(&mut shape, &row);
        let mut changed = row.clone();
        mutate(&mut rng, &mut changed);
        agree(&mut shape, &changed);
    }
    // Rows of another length of cart or user id leave the shape part way and are handed
    // back: hundreds of them.
    assert!(
        shape.handbacks.get() > 100,
        "{} rows handed back",
        shape.handbacks.get()
    );
    for (learned, id) in [(0, 1), (1, 2), (2, 3), (5, 9)] {
        let template = event(id);
        for at in 0..template.len() {
            let byte = CLASSES[at % CLASSES.len()];
            for row in [
                replaced(&template, at, byte),
                inserted(&template, at, byte),
                removed(&template, at),
            ] {
                let mut shape = Shape::default();
                agree(&mut shape, &event(learned));
                agree(&mut shape, &row);
            }
        }
    }
}
