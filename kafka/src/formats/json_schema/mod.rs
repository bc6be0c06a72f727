//! JSON Schema values as Snowflake's Kafka connector v4 writes them: the payload read through
//! the Connect schema that Confluent's `JsonSchemaData` (v7.9.2, the connector's
//! `confluent.version`) builds from the registry's JSON Schema, then written by the connector's
//! `KafkaRecordConverter` (`kafka/docs/connector-compatibility-registry.md` §7).
//!
//! **The schema** ([`JsonSchema::parse`]) is read as the `everit` loader and `toConnectSchema`
//! read it, with `JsonSchemaDataConfig`'s defaults (`use.optional.for.nonrequired=false`,
//! `flatten.singleton.unions=true`, no generalized sum types):
//!
//! * `boolean` → BOOLEAN; `integer` → INT64; `number` → FLOAT64; `connect.type` (`int8` …
//!   `float64`, `bytes`) overrides; `string` → STRING (`connect.type: bytes` → BYTES); `enum` and
//!   `const` → STRING.
//! * `object` → a STRUCT of its `properties` (ordered by `connect.index`), every property
//!   **required** unless its own schema admits `null`, whatever `required` says; with
//!   `connect.type: map`, a map of string keys to `additionalProperties`. `array` → ARRAY of
//!   `items` (one schema; tuples are refused as `JsonSchemaData` refuses them); with
//!   `connect.type: map` and object items, a map of their `key` to their `value`.
//! * `oneOf`/`anyOf`: with two branches one of which is `null`, the other branch, optional; with
//!   one branch, that branch; otherwise the STRUCT `io.confluent.connect.json.OneOf` with one
//!   optional field `io.confluent.connect.json.OneOf.field.<i>` per non-null branch (optional as a
//!   whole when a branch is `null`). A `type` list is an `anyOf`. `allOf` (and a schema whose
//!   keywords make several schemas, e.g. `type` beside `oneOf`) merges the properties of its
//!   objects, or else takes its combined, enum, number or string branch, as
//!   `allOfToConnectSchema` does.
//! * `$ref` to `#…` (JSON pointers in the same document; recursion allowed).
//! * `title` names Connect's logical types: `org.apache.kafka.connect.data.Decimal` (on BYTES;
//!   scale from `connect.parameters`), `…Date`, `…Time` (on INT32), `…Timestamp` (on INT64).
//! * `default` is used for a missing or `null` value.
//! * Refused (every message of the schema is a dead letter naming it): `{}`/`true`/`false`
//!   schemas and ones with no type keyword (v7.9.2 has no Connect type for them), a lone `null`
//!   schema, `not`, external `$ref`s, unknown `connect.type`s.
//!
//! **The payload** ([`JsonSchema::to_json`]) is read with Jackson's number semantics
//! ([`crate::formats::json_tree`]) and converted as `toConnectData` converts it: undeclared properties are
//! dropped (top level and nested); a missing or `null` property that is neither optional nor
//! defaulted fails the record (the connector's `ERROR_5015`); `integer` keeps the low 64 bits of
//! the truncated value (`longValue()`), `number` becomes the nearest double (NaN and infinities
//! as `"NaN"`, `"Inf"`, `"-Inf"`); decimals keep up to 38 digits as numbers, more as text;
//! logical dates, times and timestamps are ISO text; bytes are base64; a `oneOf` value goes to
//! the first branch whose simple type it is, else the object branch sharing most property
//! names; maps with non-string keys become `[key, value]` pairs in a Java `HashMap`'s order.
//!
//! **Deliberately different**: where Jackson would coerce a value of the wrong JSON type (`0`
//! for a string in a number field, `false`, `null` for a number in a string field, `[]` for a
//! non-array), the record is a dead letter naming the field, rather than a silent `0`; text
//! after the JSON value (which Jackson's `readTree` ignores) is refused too.

mod compile;
mod connect;
mod convert;
mod scalars;
#[cfg(test)]
mod tests;

use std::sync::Arc;

use serde_json::Value;

use crate::formats::connect_type::{ConnectType, FieldTypes};
use crate::formats::json_tree::J;
use crate::formats::walk::Walk;

/// The most Connect schemas one JSON Schema may make (a schema of `$ref`s fanning out is
/// refused rather than built without bound).
const MAX_NODES: usize = 10_000;
/// The deepest nesting of schemas read (the JSON text itself is at most serde_json's 128).
const MAX_SCHEMA_DEPTH: usize = 128;
/// The most bytes of defaults one schema may read and write when it is compiled (each
/// default once for each schema object holding it, its nested defaults included; a default
/// shared by nodes built from one object counts once, [`Node::default`]): what the written
/// defaults hold is at most this.
const MAX_DEFAULTS_TOTAL: usize = 4 << 20;
/// The most steps of work one schema may take to compile: schemas compiled, branches and
/// properties visited, `$ref` tokens followed (a legitimate schema of 10,000 nodes takes some
/// tens of thousands; a million is a fraction of a second).
const MAX_COMPILE_STEPS: usize = 1_000_000;
/// The most digits a decimal may have to be written as a number (`NUMBER(38)`).
const MAX_NUMBER_DIGITS: usize = 38;
/// Connect's name of a `oneOf`/`anyOf` struct, and its fields' prefix.
const ONE_OF: &str = "io.confluent.connect.json.OneOf";

/// A registry JSON Schema, compiled to the Connect schema v4 reads payloads with.
#[derive(Debug)]
pub struct JsonSchema {
    nodes: Vec<Node>,
    root: usize,
    /// The bytes it holds ([`JsonSchema::weight`]).
    weight: usize,
    /// The steps its compilation took.
    steps: usize,
    /// The Connect types of the top-level object's properties (`connect.rs`).
    fields: Arc<FieldTypes>,
}

#[derive(Debug, Clone)]
struct Node {
    kind: Kind,
    optional: bool,
    /// The `default`, converted (JSON text): one copy for all the nodes built from one schema
    /// object (a `type` list of one type repeated shares it).
    default: Option<Arc<str>>,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A type of no parts (not `Decimal`, which has its scale).
    Scalar(ConnectType),
    Decimal(Option<i64>),
    Array(usize),
    /// String keys; `None`: values without a schema.
    StringMap(Option<usize>),
    /// Keys of a schema (`connect.type: map` on an array of `{key, value}` objects).
    EntryMap(usize, usize),
    /// Fields: each name one copy, shared by every struct that has it.
    Struct(Vec<(Arc<str>, usize)>),
    /// The non-null branches, in order.
    OneOf(Vec<usize>),
    /// Another node (a `$ref`), with this node's optionality.
    Ref(usize),
    /// Being compiled (a `$ref` cycle's target).
    Pending,
}

impl Kind {
    fn name(&self) -> &'static str {
        match self {
            Kind::Scalar(t) => t.name(),
            Kind::Decimal(_) => ConnectType::Decimal.name(),
            Kind::Array(_) => "ARRAY",
            Kind::StringMap(_) | Kind::EntryMap(..) => "MAP",
            Kind::Struct(_) | Kind::OneOf(_) | Kind::Ref(_) | Kind::Pending => "STRUCT",
        }
    }
}

impl JsonSchema {
    /// Compiles the registry's schema text.
    ///
    /// # Errors
    /// Text that is not JSON, or a schema `JsonSchemaData` has no Connect schema for (see the
    /// module docs): the reason names it.
    pub fn parse(text: &str) -> Result<Self, String> {
        let root: Value =
            serde_json::from_str(text).map_err(|e| format!("not a JSON Schema: {e}"))?;
        let (mut nodes, root, steps) = compile::compile(&root)?;
        nodes.shrink_to_fit();
        let weight = held_bytes(&nodes);
        let mut schema = Self {
            nodes,
            root,
            weight,
            steps,
            fields: Arc::default(),
        };
        schema.fields = Arc::new(schema.connect_fields());
        Ok(schema)
    }

    /// The Connect types `JsonSchemaData` gives the top-level object's properties (worked out
    /// once, when the schema was compiled).
    pub fn field_types(&self) -> &Arc<FieldTypes> {
        &self.fields
    }

    /// Nodes being compiled as a schema rooted at `root` (to write a default with them),
    /// without its weight, steps or field types.
    fn of_nodes(nodes: Vec<Node>, root: usize) -> Self {
        Self {
            nodes,
            root,
            weight: 0,
            steps: 0,
            fields: Arc::default(),
        }
    }

    /// The bytes the compiled schema holds (its nodes, their fields and branches, and each
    /// shared name and default once): what the registry's cache weighs it at.
    pub fn weight(&self) -> usize {
        self.weight
    }

    /// The steps of work its compilation took (at most `MAX_COMPILE_STEPS`).
    pub fn compile_steps(&self) -> usize {
        self.steps
    }

    /// The JSON text of the row (`any` false: a JSON object, its keys columns) or of
    /// `RECORD_CONTENT` (`any` true: any value) for the payload `text`, as v4 writes it; `null`
    /// for a `null` payload of a schema that admits it (a tombstone).
    ///
    /// The row is at most about `max_len` bytes ([`Walk`]).
    ///
    /// # Errors
    /// A payload that is not one JSON value, that does not fit the schema (the reason names the
    /// field), (`any` false) whose value is no object, or whose row grows past `max_len`.
    pub fn to_json(&self, text: &str, any: bool, max_len: usize) -> Result<String, String> {
        let j = J::parse(text).map_err(|e| format!("the payload is not JSON: {e}"))?;
        let root = self.resolve(self.root);
        if !any && !matches!(j, J::Null) {
            match &self.nodes[root].kind {
                Kind::Struct(_) | Kind::OneOf(_) | Kind::StringMap(_) => {}
                Kind::EntryMap(..) => {
                    return Err(
                        "the schema is a map with non-string keys: as columns it needs text \
                         keys (use --layout record-content)"
                            .into(),
                    )
                }
                other => {
                    return Err(format!(
                        "the schema is {}, not an object: a row needs column names",
                        other.name()
                    ))
                }
            }
        }
        let mut out = String::new();
        if j == J::Null && self.nodes[self.root].default.is_none() {
            let optional = self.nodes[self.root].optional || self.nodes[root].optional;
            if !optional {
                return Err(
                    "the payload is null and the schema admits no null (JsonSchemaData fails \
                     the record: \"Invalid null value for required field\"): only a schema \
                     with a null branch makes a null payload a tombstone"
                        .into(),
                );
            }
        }
        self.write(&mut out, self.root, Some(&j), "", Walk::new(max_len))?;
        Ok(out)
    }

    fn resolve(&self, mut at: usize) -> usize {
        for _ in 0..64 {
            match self.nodes[at].kind {
                Kind::Ref(t) => at = t,
                _ => break,
            }
        }
        at
    }
}

/// The field a reason is about.
fn field(path: &str) -> String {
    crate::formats::avro::at(path)
}

/// The bytes `nodes` hold, each shared text counted once.
fn held_bytes(nodes: &[Node]) -> usize {
    use std::mem::size_of;
    let mut texts = std::collections::HashSet::new();
    let mut text = |t: &Arc<str>| {
        if texts.insert(Arc::as_ptr(t).cast::<u8>() as usize) {
            t.len() + 2 * size_of::<usize>()
        } else {
            0
        }
    };
    let mut bytes = size_of::<JsonSchema>() + std::mem::size_of_val(nodes);
    for node in nodes {
        if let Some(d) = &node.default {
            bytes += text(d);
        }
        match &node.kind {
            Kind::Struct(fields) => {
                bytes += fields.capacity() * size_of::<(Arc<str>, usize)>();
                bytes += fields.iter().map(|(name, _)| text(name)).sum::<usize>();
            }
            Kind::OneOf(branches) => bytes += branches.capacity() * size_of::<usize>(),
            _ => {}
        }
    }
    bytes
}
