//! How deeply an Avro datum nests, found without decoding it: the check [`crate::formats::avro`] makes
//! before it hands a body to `apache-avro`.
//!
//! **Why.** `apache_avro::from_avro_datum` decodes recursively and has no depth limit, and the
//! JSON writer recurses over the value it builds. A registered recursive schema
//! (`{"type":"record","name":"Node","fields":[{"name":"next","type":["null","Node"]}]}`) lets
//! each nesting level cost the producer one byte, so a 1 MB value nests a million levels: the
//! decoder overflows the worker thread's stack, which aborts the process (a stack overflow
//! cannot be caught), and the restarted sink reads the same message again. A value nested deeper
//! than [`MAX_DEPTH`] levels of records, arrays and maps is therefore refused here, with a reason
//! that says so, and becomes a dead letter like any other message that cannot be a row.
//!
//! **How.** [`check`] walks the bytes with the writer schema as `apache-avro`'s
//! `decode_internal` (0.21) reads them — the same reads in the same order, named references
//! resolved by the same fully qualified names, logical types by their underlying encoding —
//! without building any value, and counts the records, arrays and maps it is inside. Where the
//! decoder reads on it reads on too (a boolean, a string or a union index cut short by the end
//! of the body are a `null` to the decoder, so nothing more to the walk), and where the decoder
//! would refuse the bytes (a bad length, an index out of range, a count too large to allocate)
//! the walk is at least as lenient. Any walk that does not go deeper than the limit therefore
//! covers the decoder's own path, which nests no deeper, and such a body is decoded exactly as
//! before; only the depth is judged here, every other fault is left to the decoder and its
//! message.
//!
//! **The limit** keeps a decode well inside the stack of the sink's runtime threads
//! ([`STACK_BYTES`], 8 MiB, set where the binary builds its runtime; tokio's default is 2
//! MiB) in a debug build, whose frames are the largest: `decode_internal` is generic, so it is
//! compiled unoptimised in this crate's debug builds whatever the profile says for
//! `apache-avro`, and a level of the worst shape (a union whose branch refers to a record:
//! three decoder frames) takes about 69 KiB there (measured: 30 such levels fit in 2 MiB, 121
//! in 8 MiB), so 64 levels take about 4.4 MiB and leave the rest to the frames above the
//! decode. A release build takes about 4.7 KiB a level (431 fit in 2 MiB): 64 levels, 300 KiB.
//! The test `a_value_at_the_limit_decodes_as_before_on_a_small_stack` decodes and writes one at
//! the limit on three quarters of [`STACK_BYTES`] (`probe_the_stack_a_decode_takes`, ignored,
//! measures).
//!
//! **Time.** Every item of an array or a map block that reads a byte moves the walk on, so a
//! count that claims 2^62 items ends with the body. An item that reads nothing (a `null`, an
//! empty record, anything at the end of the body) would read nothing again: the walk does one
//! and skips the rest of its block, with the same depth.

use std::collections::HashMap;

use apache_avro::schema::{Name, Schema};

/// The deepest nesting of records, arrays and maps a value may have (see the module docs).
pub(crate) const MAX_DEPTH: usize = 64;

/// The stack of the sink's runtime threads, where values are decoded (see the module docs).
pub const STACK_BYTES: usize = 8 << 20;

/// With [`VALUES_PER_BYTE`], the most values one body may make the decoder build: `n` bytes
/// decode into at most `VALUES_PER_BYTE × n + MAX_FREE_VALUES` values. A value of a
/// well-formed body takes a byte or more, except `null`s and empty records (and a union or a
/// boolean cut short by the end of the body, a `null` to the decoder): an array block of
/// 2^24 such items is 9 bytes, and a record of a thousand `null` fields is none.
pub(crate) const MAX_FREE_VALUES: u64 = 1 << 16;

/// See [`MAX_FREE_VALUES`].
pub(crate) const VALUES_PER_BYTE: u64 = 8;

/// Why a walk stopped.
enum Stop {
    /// Nested deeper than [`MAX_DEPTH`].
    Deep,
    /// Declares more than its bytes can hold (the reason): the decoder would allocate for it.
    Declares(String),
    /// Something else the decoder refuses too (it says what).
    Other,
}

/// Whether `body` (one Avro binary datum of `schema`, whose named types `names` holds by their
/// fully qualified names, as `apache_avro::schema::ResolvedSchema` has them) nests no deeper
/// than [`MAX_DEPTH`].
///
/// # Errors
/// The dead-letter reason when it nests deeper. Bytes that do not match the schema otherwise
/// are not an error here: the decoder's message says what is wrong with them.
pub(crate) fn check(
    schema: &Schema,
    names: &HashMap<Name, Schema>,
    body: &[u8],
) -> Result<(), String> {
    match walk(schema, names, body).0 {
        Err(Stop::Deep) => Err(format!(
            "the Avro value nests deeper than {MAX_DEPTH} levels of records, arrays and maps \
             (the most this sink reads; a value this deep is most likely hostile or corrupt)"
        )),
        Err(Stop::Declares(reason)) => Err(reason),
        Ok(()) | Err(Stop::Other) => Ok(()),
    }
}

/// The walk's outcome, and how many bytes it left.
fn walk(schema: &Schema, names: &HashMap<Name, Schema>, body: &[u8]) -> (Result<(), Stop>, usize) {
    let mut walk = Walk {
        rest: body,
        names,
        values: 0,
        max_values: (body.len() as u64)
            .saturating_mul(VALUES_PER_BYTE)
            .saturating_add(MAX_FREE_VALUES),
    };
    let outcome = walk.value(schema, None, 0);
    (outcome, walk.rest.len())
}

struct Walk<'a, 's> {
    rest: &'a [u8],
    names: &'s HashMap<Name, Schema>,
    /// Values the decoder will build: those walked, and those of the items a block skips
    /// because they read nothing.
    values: u64,
    /// The most it may build (see [`MAX_FREE_VALUES`]).
    max_values: u64,
}

impl<'s> Walk<'_, 's> {
    /// Walks one value of `schema` inside `depth` records, arrays and maps, in the enclosing
    /// namespace `ns` (as the decoder's `enclosing_namespace`).
    fn value(&mut self, schema: &'s Schema, ns: Option<&'s str>, depth: usize) -> Result<(), Stop> {
        self.count(1)?;
        match schema {
            Schema::Null => Ok(()),
            // A byte, or (at the end) the decoder's null.
            Schema::Boolean => {
                self.skip(1.min(self.rest.len()));
                Ok(())
            }
            Schema::Int
            | Schema::Long
            | Schema::Enum(_)
            | Schema::Date
            | Schema::TimeMillis
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => self.varint().map(drop).map_err(|_| Stop::Other),
            Schema::Float => self.exact(4),
            Schema::Double => self.exact(8),
            Schema::Duration => self.exact(12),
            Schema::Fixed(f) => self.fixed(f.size),
            Schema::Bytes | Schema::String | Schema::Uuid | Schema::BigDecimal => self.bytes(),
            Schema::Decimal(d) => match &*d.inner {
                Schema::Fixed(f) => self.fixed(f.size),
                Schema::Bytes => self.bytes(),
                _ => Err(Stop::Other),
            },
            Schema::Array(a) => {
                let depth = deeper(depth)?;
                self.blocks(|w| w.value(&a.items, ns, depth))
            }
            Schema::Map(m) => {
                let depth = deeper(depth)?;
                self.blocks(|w| {
                    w.bytes()?;
                    w.value(&m.types, ns, depth)
                })
            }
            Schema::Union(u) => {
                let index = match self.varint() {
                    Ok(i) => i,
                    // The decoder takes an index cut short by the end as the first branch's null.
                    Err(Varint::End) => return Ok(()),
                    Err(Varint::TooLong) => return Err(Stop::Other),
                };
                let branch = usize::try_from(index)
                    .ok()
                    .and_then(|i| u.variants().get(i))
                    .ok_or(Stop::Other)?;
                self.value(branch, ns, depth)
            }
            Schema::Record(r) => {
                let depth = deeper(depth)?;
                let inner = namespace(&r.name, ns);
                for field in &r.fields {
                    self.value(&field.schema, inner, depth)?;
                }
                Ok(())
            }
            Schema::Ref { name } => {
                let inner = namespace(name, ns);
                let key = Name {
                    name: name.name.clone(),
                    namespace: inner.map(str::to_owned),
                };
                let named = self.names.get(&key).ok_or(Stop::Other)?;
                self.value(named, inner, depth)
            }
        }
    }

    /// An array's or a map's blocks: a count (0 ends them; a negative one is followed by the
    /// block's size in bytes) and that many items.
    fn blocks(&mut self, mut item: impl FnMut(&mut Self) -> Result<(), Stop>) -> Result<(), Stop> {
        loop {
            let count = self.varint().map_err(|_| Stop::Other)?;
            let count = match count {
                0 => return Ok(()),
                c if c < 0 => {
                    self.varint().map_err(|_| Stop::Other)?;
                    c.checked_neg().ok_or(Stop::Other)?
                }
                c => c,
            };
            for done in 1..=count {
                let (before, values) = (self.rest.len(), self.values);
                item(self)?;
                if self.rest.len() == before {
                    // It read nothing, so the block's other items would read nothing either
                    // and go exactly as deep; the decoder builds each of them all the same.
                    let each = self.values - values;
                    self.count(each.saturating_mul((count - done) as u64))?;
                    break;
                }
            }
        }
    }

    /// Counts `more` values the decoder will build.
    fn count(&mut self, more: u64) -> Result<(), Stop> {
        self.values = self.values.saturating_add(more);
        if self.values > self.max_values {
            return Err(Stop::Declares(format!(
                "the Avro value declares more values than its bytes can hold (over {} for its \
                 length: {VALUES_PER_BYTE} a byte and {MAX_FREE_VALUES} more, the most this \
                 sink decodes; an array or map block of items that take no bytes, or records of \
                 many nulls): most likely hostile or corrupt",
                self.max_values
            )));
        }
        Ok(())
    }

    /// A length (a zigzag varint, not negative) and that many bytes, as many as are left (a
    /// string cut short is the decoder's null; bytes cut short it refuses).
    fn bytes(&mut self) -> Result<(), Stop> {
        let len = self.varint().map_err(|_| Stop::Other)?;
        let len = usize::try_from(len).map_err(|_| Stop::Other)?;
        self.skip(len.min(self.rest.len()));
        Ok(())
    }

    /// A fixed value of `n` bytes, all there: the decoder allocates `n` bytes before it reads
    /// them (a schema's `"size": 1e12` would abort the process).
    fn fixed(&mut self, n: usize) -> Result<(), Stop> {
        if n > self.rest.len() {
            return Err(Stop::Declares(format!(
                "the Avro value ends before its fixed field of {n} bytes ({} left)",
                self.rest.len()
            )));
        }
        self.exact(n)
    }

    /// `n` bytes, all there.
    fn exact(&mut self, n: usize) -> Result<(), Stop> {
        if n > self.rest.len() {
            return Err(Stop::Other);
        }
        self.skip(n);
        Ok(())
    }

    fn skip(&mut self, n: usize) {
        self.rest = &self.rest[n..];
    }

    /// A zigzag varint of at most 10 bytes (`apache_avro::util::zag_i64`); the bytes read are
    /// consumed whatever the outcome, as the decoder's reader does.
    fn varint(&mut self) -> Result<i64, Varint> {
        let mut raw: u64 = 0;
        for j in 0..10 {
            let Some((&byte, tail)) = self.rest.split_first() else {
                return Err(Varint::End);
            };
            self.rest = tail;
            raw |= u64::from(byte & 0x7f) << (j * 7);
            if byte & 0x80 == 0 {
                return Ok(if raw & 1 == 0 {
                    (raw >> 1) as i64
                } else {
                    !(raw >> 1) as i64
                });
            }
        }
        Err(Varint::TooLong)
    }
}

/// Why a varint could not be read.
enum Varint {
    /// The body ended in it.
    End,
    /// More than 10 bytes.
    TooLong,
}

/// `depth` one level deeper.
fn deeper(depth: usize) -> Result<usize, Stop> {
    if depth >= MAX_DEPTH {
        Err(Stop::Deep)
    } else {
        Ok(depth + 1)
    }
}

/// The namespace inside a type named `name` in the enclosing namespace `enclosing`
/// (`Name::fully_qualified_name`'s: its own, else a non-empty enclosing one).
fn namespace<'s>(name: &'s Name, enclosing: Option<&'s str>) -> Option<&'s str> {
    name.namespace
        .as_deref()
        .or(enclosing.filter(|ns| !ns.is_empty()))
}

#[cfg(test)]
mod tests {
    use apache_avro::schema::ResolvedSchema;
    use apache_avro::types::Value;
    use rand::{Rng as _, SeedableRng as _};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::formats::avro::AvroSchema;

    fn parse(text: &str) -> (Schema, HashMap<Name, Schema>) {
        let schema = Schema::parse_str(text).unwrap();
        let names = ResolvedSchema::try_from(&schema)
            .unwrap()
            .get_names()
            .iter()
            .map(|(n, s)| (n.clone(), (*s).clone()))
            .collect();
        (schema, names)
    }

    fn deep(outcome: Result<(), String>) -> bool {
        outcome.is_err_and(|e| e.contains(&format!("nests deeper than {MAX_DEPTH} levels")))
    }

    /// Records, arrays and maps count, through references in namespaces; unions do not.
    #[test]
    fn records_arrays_and_maps_are_levels() {
        // Each `Node` level is one byte: the branch `Node` of the union.
        let (node, names) = parse(
            r#"{"type":"record","name":"Node","namespace":"a.b","fields":[
                {"name":"n","type":"int"},
                {"name":"next","type":["null","a.b.Node"]}]}"#,
        );
        let body = |levels: usize| {
            let mut b = b"\x00\x02".repeat(levels - 1);
            b.extend(b"\x00\x00");
            b
        };
        assert_eq!(check(&node, &names, &body(MAX_DEPTH)), Ok(()));
        assert!(deep(check(&node, &names, &body(MAX_DEPTH + 1))));
        // An array of the record: two levels each (a count of one, then the record's field).
        let (tree, names) = parse(
            r#"{"type":"record","name":"T","fields":[
                {"name":"kids","type":{"type":"array","items":"T"}}]}"#,
        );
        let body = |records: usize| {
            let mut b = vec![2u8; records - 1];
            b.push(0);
            b.extend(vec![0u8; records - 1]);
            b
        };
        let half = MAX_DEPTH / 2;
        assert_eq!(check(&tree, &names, &body(half)), Ok(()));
        assert!(deep(check(&tree, &names, &body(half + 1))));
        // A map of maps of the record, blocks with their byte sizes.
        let (maps, names) = parse(
            r#"{"type":"record","name":"M","namespace":"x","fields":[
                {"name":"m","type":{"type":"map","values":{"type":"map","values":"x.M"}}}]}"#,
        );
        // One entry (count -1, size 0), key "", then the inner map the same way.
        let level = b"\x01\x00\x00\x01\x00\x00";
        let body = |records: usize| {
            let mut b = level.repeat(records - 1);
            b.push(0);
            b.extend(b"\x00\x00".repeat(records - 1));
            b
        };
        let third = MAX_DEPTH / 3;
        assert_eq!(walk(&maps, &names, &body(third)).1, 0, "read to the end");
        assert_eq!(check(&maps, &names, &body(third)), Ok(()));
        assert!(deep(check(&maps, &names, &body(third + 1))));
    }

    /// Counts of 2^62 items end with the body, also when the items read nothing.
    #[test]
    fn a_huge_count_ends_with_the_body() {
        let count = b"\xfe\xff\xff\xff\xff\xff\xff\xff\x7f"; // 2^62 - 1 (zigzag)
        for schema in [
            r#"{"type":"array","items":"null"}"#,
            r#"{"type":"array","items":"int"}"#,
            r#"{"type":"array","items":{"type":"record","name":"E","fields":[]}}"#,
            r#"{"type":"map","values":"null"}"#,
            r#"{"type":"array","items":"boolean"}"#,
        ] {
            let (s, names) = parse(schema);
            for tail in [&b""[..], b"\x02\x02\x02"] {
                let mut body = count.to_vec();
                body.extend(tail);
                let (outcome, _) = walk(&s, &names, &body);
                assert!(
                    matches!(outcome, Err(Stop::Other | Stop::Declares(_))),
                    "{schema}"
                );
                let decoded = AvroSchema::parse(schema).unwrap().value_to_json(&body);
                assert!(decoded.is_err(), "{schema}: the decoder takes it");
            }
        }
    }

    /// Issue 56: a count the bytes cannot hold. Nine bytes declaring 2^24 items of a union
    /// (each a `null` to the decoder once the body ends) made `apache-avro` build 16.7 million
    /// values (gigabytes); a `fixed` of 10^12 bytes made it allocate them (the process
    /// aborts). Both are refused before the decoder runs, with the reason; a block of a few
    /// `null`s still decodes.
    #[test]
    fn counts_and_sizes_the_body_cannot_hold_are_refused_before_decoding() {
        let union_items = r#"{"type":"array","items":["null","string"]}"#;
        let declared = b"\x80\x80\x80\x10"; // 2^24 items (zigzag), then nothing
        let outcome = AvroSchema::parse(union_items)
            .unwrap()
            .value_to_json(declared)
            .unwrap_err();
        assert!(
            outcome.contains("more values than its bytes can hold"),
            "{outcome}"
        );
        let record = r#"{"type":"array","items":{"type":"record","name":"E","fields":[
            {"name":"a","type":"null"},{"name":"b","type":"null"}]}}"#;
        let mut body = vec![0x80, 0x80, 0x10]; // 131,072 items
        body.push(0);
        assert!(AvroSchema::parse(record)
            .unwrap()
            .value_to_json(&body)
            .is_err());
        let few = [0x14, 0x00]; // 10 empty records
        assert_eq!(
            AvroSchema::parse(record)
                .unwrap()
                .value_to_json(&few)
                .unwrap(),
            format!("[{}]", [r#"{"a":null,"b":null}"#; 10].join(","))
        );
        // Few items, each a record of 1,000 `null` fields: the values count, not the items.
        let fields: Vec<String> = (0..1_000)
            .map(|i| format!(r#"{{"name":"f{i}","type":"null"}}"#))
            .collect();
        let wide = format!(
            r#"{{"type":"array","items":{{"type":"record","name":"W","fields":[{}]}}}}"#,
            fields.join(",")
        );
        let outcome = AvroSchema::parse(&wide)
            .unwrap()
            .value_to_json(&[0xc8, 0x01, 0x00]) // 100 items
            .unwrap_err();
        assert!(
            outcome.contains("more values than its bytes can hold"),
            "{outcome}"
        );
        let fixed = r#"{"type":"fixed","name":"F","size":1000000000000}"#;
        let outcome = AvroSchema::parse(fixed)
            .unwrap()
            .value_to_json(b"\x01\x02")
            .unwrap_err();
        assert!(
            outcome.contains("fixed field of 1000000000000 bytes"),
            "{outcome}"
        );
    }

    /// The walk reads what the decoder reads: on random bodies the decoder takes, the walk takes
    /// them too and ends where the decoder did.
    #[test]
    fn the_walk_reads_as_the_decoder_does() {
        let (schema, names) = parse(
            r#"{"type":"record","name":"R","namespace":"n","fields":[
                {"name":"b","type":"boolean"},
                {"name":"i","type":"int"},
                {"name":"s","type":"string"},
                {"name":"f","type":{"type":"fixed","name":"F","size":2}},
                {"name":"e","type":{"type":"enum","name":"E","symbols":["A","B","C"]}},
                {"name":"d","type":{"type":"bytes","logicalType":"decimal","precision":9,"scale":2}},
                {"name":"t","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"x","type":"float"},
                {"name":"a","type":{"type":"array","items":["null","R"]}},
                {"name":"m","type":{"type":"map","values":"n.F"}},
                {"name":"u","type":["null","R","long"]}
            ]}"#,
        );
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let mut decoded = 0;
        for _ in 0..200_000 {
            let len = rng.gen_range(0..300);
            let body: Vec<u8> = (0..len)
                .map(|_| match rng.gen_range(0..10) {
                    0..=3 => 0,
                    4..=5 => 2,
                    6 => 1,
                    7 => 3,
                    // No varint longer than a byte: a large count makes the decoder reserve
                    // room for that many items first.
                    _ => rng.gen_range(0..0x80),
                })
                .collect();
            let (outcome, rest) = walk(&schema, &names, &body);
            let mut reader = &body[..];
            // (Random bytes do not nest that deep; a decode of one that did could overflow.)
            assert!(!matches!(outcome, Err(Stop::Deep)), "{body:?}");
            if let Ok(value) = apache_avro::from_avro_datum(&schema, &mut reader, None) {
                decoded += 1;
                assert!(outcome.is_ok(), "{body:?}");
                assert_eq!(rest, reader.len(), "{body:?}");
                assert!(levels(&value) <= MAX_DEPTH, "{body:?}");
            }
        }
        assert!(decoded > 1000, "{decoded} decoded");
    }

    /// How many records, arrays and maps `value` nests.
    fn levels(value: &Value) -> usize {
        match value {
            Value::Record(f) => 1 + f.iter().map(|(_, v)| levels(v)).max().unwrap_or(0),
            Value::Array(v) => 1 + v.iter().map(levels).max().unwrap_or(0),
            Value::Map(m) => 1 + m.values().map(levels).max().unwrap_or(0),
            Value::Union(_, v) => levels(v),
            _ => 0,
        }
    }
}
