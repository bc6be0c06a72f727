//! The test-side producer's encoders: varints, zigzag longs, lengths and Protobuf tags written
//! here from the specifications (Avro 1.11 "Binary Encoding", Protobuf "Encoding"), not with
//! the sink's decoders, so a claim can say what the bytes do not.

/// An unsigned LEB128 varint (Protobuf's varint; Avro's long after zigzag).
pub(crate) fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7F) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A zigzag varint: Avro's `int` and `long`, the Confluent Protobuf message indexes.
pub(crate) fn zigzag(out: &mut Vec<u8>, v: i64) {
    varint(out, ((v << 1) ^ (v >> 63)) as u64);
}

/// A varint of 11 bytes: one more than any 64-bit value takes.
pub(crate) fn varint_11(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xFF; 10]);
    out.push(0x01);
}

/// A varint of 10 bytes whose last byte carries bits past 64.
pub(crate) fn varint_overflow(out: &mut Vec<u8>) {
    out.extend_from_slice(&[0xFF; 9]);
    out.push(0x7F);
}

/// Avro `bytes` or `string`: the zigzag length, then the bytes.
pub(crate) fn avro_bytes(out: &mut Vec<u8>, b: &[u8]) {
    zigzag(out, b.len() as i64);
    out.extend_from_slice(b);
}

/// A Protobuf tag: field number and wire type.
pub(crate) fn tag(out: &mut Vec<u8>, field: u64, wire_type: u8) {
    varint(out, (field << 3) | u64::from(wire_type));
}

/// A Protobuf length-delimited field (wire type 2).
pub(crate) fn pb_bytes(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    tag(out, field, 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// A Protobuf varint field (wire type 0).
pub(crate) fn pb_varint(out: &mut Vec<u8>, field: u64, v: u64) {
    tag(out, field, 0);
    varint(out, v);
}

/// A Protobuf `double` field (wire type 1, little-endian).
pub(crate) fn pb_double(out: &mut Vec<u8>, field: u64, v: f64) {
    tag(out, field, 1);
    out.extend_from_slice(&v.to_le_bytes());
}

/// How many bytes `v` takes as a varint.
pub(crate) fn varint_len(v: u64) -> u64 {
    let mut n = 1;
    let mut v = v >> 7;
    while v > 0 {
        n += 1;
        v >>= 7;
    }
    n
}

/// A random string of `n` letters of one kind (the case's seed picks it).
pub(crate) fn letters(n: usize, rng: &mut snowpipe_hostile::Rng) -> Vec<u8> {
    vec![b'a' + rng.below(26) as u8; n]
}
