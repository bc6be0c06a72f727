//! What a Protobuf payload will cost before `prost-reflect` decodes it: a walk of the wire
//! format with the message's descriptor that builds nothing (docs/SECURITY.md, "Sink
//! decoders' own memory").
//!
//! **Why.** `DynamicMessage::decode` builds the whole message before the row writer sees a
//! byte of it, and a few bytes of payload can ask for far more: an empty sub-message is two
//! bytes on the wire and a `DynamicMessage` in memory, a sub-message with one field set is
//! four bytes and a B-tree node, a packed repeated `int32` is a byte a value and a
//! [`Value`] each. A 1 MB message of 500,000 empty sub-messages peaked at 44 MB while it was
//! decoded, only for the writer to refuse the row it makes.
//!
//! **How.** [`check`] reads every tag, length and varint as the decoder does, looks each field
//! up in the descriptor (then the extensions, else it is an unknown field) and adds up two
//! figures:
//! - the decoder's memory, by the sizes of the types it builds ([`DECODED_LIMIT`]);
//! - a lower bound of the row the writer makes: every message writes each of its fields'
//!   names (a field that is not set writes its default or `null`), and every value of a
//!   repeated field at least a character. Past the row's limit the message is refused with
//!   the writer's own reason ([`Walk::check_len`]), before anything is decoded.
//!
//! Malformed bytes end the walk where they start, and the decoder then refuses them with its
//! own message; only cost is judged here. Nesting past the decoder's recursion limit (100)
//! ends the walk too: the decoder refuses it.

use std::mem::size_of;

use prost_reflect::{DynamicMessage, Kind, MessageDescriptor, Value};

use crate::formats::walk::Walk;

/// The most memory one payload's decode may take, estimated (see the module docs): a 1 MB
/// message of well-formed fields takes a few MB; a hostile one of a million tiny
/// sub-messages would take hundreds.
pub(super) const DECODED_LIMIT: u64 = 64 << 20;

/// The decoder's recursion limit: deeper, it refuses the payload itself.
const DECODER_DEPTH: usize = 100;

/// A value in a message's field map or a list.
const VALUE: u64 = size_of::<Value>() as u64;
/// A sub-message: its value, and the first node of its field map (a B-tree leaf of eleven
/// entries of a field number and a value) once it holds a field.
const MESSAGE: u64 = VALUE + size_of::<DynamicMessage>() as u64;
const FIELD_MAP_NODE: u64 = 11 * (4 + VALUE) + 16;

/// The walk's running totals.
struct Cost {
    decoded: u64,
    row_floor: u64,
    max_row: u64,
}

/// Refuses a payload whose decode would take more than [`DECODED_LIMIT`], or whose row must
/// pass `at.max_len`.
///
/// # Errors
/// The dead-letter reason: the row's (as the writer words it) or the decoder's limit.
pub(super) fn check(
    descriptor: &MessageDescriptor,
    payload: &[u8],
    at: Walk,
) -> Result<(), String> {
    let mut cost = Cost {
        decoded: MESSAGE,
        row_floor: row_floor(descriptor),
        max_row: at.max_len as u64,
    };
    let mut rest = payload;
    message(Some(descriptor), &mut rest, None, 0, &mut cost)?;
    Ok(())
}

/// The least a message writes: `{}` and each field outside a oneof as `"name":0,`.
fn row_floor(descriptor: &MessageDescriptor) -> u64 {
    2 + descriptor
        .fields()
        .filter(|f| f.containing_oneof().is_none_or(|o| o.is_synthetic()))
        .map(|f| f.name().len() as u64 + 4)
        .sum::<u64>()
}

impl Cost {
    fn add(&mut self, decoded: u64, row: u64) -> Result<(), String> {
        self.decoded += decoded;
        self.row_floor += row;
        if self.row_floor > self.max_row {
            // The writer's own reason, before a byte is decoded.
            return Walk::new(self.max_row as usize).check_len(self.row_floor as usize);
        }
        if self.decoded > DECODED_LIMIT {
            return Err(format!(
                "the Protobuf payload would take more than {} MiB to decode (many small \
                 sub-messages or values); the sink refuses it before decoding",
                DECODED_LIMIT >> 20
            ));
        }
        Ok(())
    }
}

/// Walks one message's fields from `rest` to its end (`group`: to the end-group tag of that
/// field number). `Ok(false)`: the bytes are malformed or too deep, the walk stops there.
fn message(
    descriptor: Option<&MessageDescriptor>,
    rest: &mut &[u8],
    group: Option<u32>,
    depth: usize,
    cost: &mut Cost,
) -> Result<bool, String> {
    if depth > DECODER_DEPTH {
        return Ok(false);
    }
    let mut has_fields = false;
    while !rest.is_empty() {
        let Some(tag) = varint(rest) else {
            return Ok(false);
        };
        let (number, wire) = ((tag >> 3) as u32, tag & 7);
        if wire == 4 {
            return Ok(group == Some(number));
        }
        if !has_fields {
            has_fields = true;
            cost.add(FIELD_MAP_NODE, 0)?;
        }
        // The field's kind, and whether it repeats, if the message knows it.
        let field = descriptor.and_then(|d| {
            d.get_field(number)
                .map(|f| (f.kind(), f.is_list() || f.is_map()))
                .or_else(|| d.get_extension(number).map(|e| (e.kind(), e.is_list())))
        });
        let element_row = u64::from(field.as_ref().is_some_and(|(_, list)| *list));
        match wire {
            0 => {
                if varint(rest).is_none() {
                    return Ok(false);
                }
                cost.add(VALUE, element_row)?;
            }
            1 | 5 => {
                let width = if wire == 1 { 8 } else { 4 };
                if rest.len() < width {
                    return Ok(false);
                }
                *rest = &rest[width..];
                cost.add(VALUE, element_row)?;
            }
            2 => {
                let Some(len) = varint(rest).and_then(|l| usize::try_from(l).ok()) else {
                    return Ok(false);
                };
                if rest.len() < len {
                    return Ok(false);
                }
                let (body, after) = rest.split_at(len);
                *rest = after;
                let packed_width = match &field {
                    Some((kind, true)) => packed(kind),
                    _ => None,
                };
                match (&field, packed_width) {
                    (Some((Kind::Message(sub), _)), _) => {
                        cost.add(MESSAGE, element_row + row_floor(sub))?;
                        let mut body = body;
                        if !message(Some(sub), &mut body, None, depth + 1, cost)? {
                            return Ok(false);
                        }
                    }
                    (_, Some(width)) => {
                        let count = match width {
                            0 => body.iter().filter(|&&b| b < 0x80).count() as u64,
                            width => (len / width) as u64,
                        };
                        cost.add(count * VALUE, count)?;
                    }
                    // Text, bytes, and an unknown field's bytes: held as they are.
                    _ => cost.add(VALUE + len as u64, element_row)?,
                }
            }
            3 => {
                let sub = match &field {
                    Some((Kind::Message(sub), list)) => {
                        cost.add(MESSAGE, u64::from(*list) + row_floor(sub))?;
                        Some(sub.clone())
                    }
                    // An unknown group is a set of unknown fields, each held.
                    _ => {
                        cost.add(VALUE, 0)?;
                        None
                    }
                };
                if !message(sub.as_ref(), rest, Some(number), depth + 1, cost)? {
                    return Ok(false);
                }
            }
            _ => return Ok(false),
        }
    }
    Ok(group.is_none())
}

/// The width of one packed element of `kind` (`0`: a varint), `None` for a kind that does not
/// pack.
fn packed(kind: &Kind) -> Option<usize> {
    match kind {
        Kind::Double | Kind::Fixed64 | Kind::Sfixed64 => Some(8),
        Kind::Float | Kind::Fixed32 | Kind::Sfixed32 => Some(4),
        Kind::Int32
        | Kind::Int64
        | Kind::Uint32
        | Kind::Uint64
        | Kind::Sint32
        | Kind::Sint64
        | Kind::Bool
        | Kind::Enum(_) => Some(0),
        Kind::String | Kind::Bytes | Kind::Message(_) => None,
    }
}

/// Reads a varint of at most ten bytes.
fn varint(rest: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for (i, &b) in rest.iter().enumerate().take(10) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            *rest = &rest[i + 1..];
            return Some(value);
        }
    }
    None
}
