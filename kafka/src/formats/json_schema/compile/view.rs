//! A schema as `everit` loads it ([`Ev`], the Java class `JsonSchemaData` dispatches on): one
//! schema object's keywords viewed ([`view`]), never its whole subtree, and what a node is
//! read from (its own keywords, [`own`]; which view built it, [`tag`]).

use serde_json::{Map, Value};

/// `oneOf`, `anyOf` or `allOf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Crit {
    One,
    Any,
    All,
}

/// A schema as `everit` loads it (the Java class `JsonSchemaData` dispatches on).
#[derive(Debug, Clone)]
pub(super) enum Ev<'s> {
    Bool(&'s Map<String, Value>),
    Number(&'s Map<String, Value>, bool),
    Str(&'s Map<String, Value>),
    Null,
    Array(&'s Map<String, Value>),
    Object(&'s Map<String, Value>),
    /// `enum` or `const`.
    Enum(&'s Map<String, Value>),
    /// Its branches, viewed when they are visited ([`Subs::list`]): a view costs the keywords
    /// of one schema object, never its whole subtree, however often it is visited.
    Combined(Crit, Subs<'s>),
    Ref(&'s str),
    /// What `JsonSchemaData` has no Connect type for, and why.
    Unsupported(String),
}

/// The branches of a combined schema.
#[derive(Debug, Clone)]
pub(super) enum Subs<'s> {
    /// `allOf`/`anyOf`/`oneOf`'s schemas.
    Schemas(&'s [Value]),
    /// A `type` list: each type with the keywords of the schema `o` that lists them.
    Types(&'s Map<String, Value>, &'s [Value]),
    /// The parts of a schema of several keywords (a handful at most).
    Parts(Vec<Ev<'s>>),
}

impl<'s> Subs<'s> {
    pub(super) fn len(&self) -> usize {
        match self {
            Self::Schemas(s) | Self::Types(_, s) => s.len(),
            Self::Parts(p) => p.len(),
        }
    }

    /// The branches, each viewed (one schema object's keywords each).
    pub(super) fn list(&self) -> Vec<Ev<'s>> {
        match self {
            Self::Schemas(s) => s.iter().map(view).collect(),
            Self::Types(o, ts) => ts
                .iter()
                .map(|t| match t.as_str() {
                    Some(t) => typed(o, t),
                    None => Ev::Unsupported("a `type` list item that is not text".into()),
                })
                .collect(),
            Self::Parts(p) => p.clone(),
        }
    }
}

const OBJECT_WORDS: [&str; 8] = [
    "properties",
    "required",
    "additionalProperties",
    "patternProperties",
    "minProperties",
    "maxProperties",
    "dependencies",
    "propertyNames",
];
const ARRAY_WORDS: [&str; 6] = [
    "items",
    "additionalItems",
    "minItems",
    "maxItems",
    "uniqueItems",
    "contains",
];
const NUMBER_WORDS: [&str; 5] = [
    "minimum",
    "maximum",
    "multipleOf",
    "exclusiveMinimum",
    "exclusiveMaximum",
];
const STRING_WORDS: [&str; 4] = ["minLength", "maxLength", "pattern", "format"];

/// The schema `s` as `everit` loads it.
pub(super) fn view(s: &Value) -> Ev<'_> {
    let o = match s {
        Value::Object(o) => o,
        Value::Bool(b) => {
            return Ev::Unsupported(format!(
                "the schema `{b}` (JsonSchemaData has no Connect type for it)"
            ))
        }
        _ => return Ev::Unsupported("a schema that is not an object".into()),
    };
    if let Some(r) = o.get("$ref") {
        return match r.as_str() {
            Some(r) => Ev::Ref(r),
            None => Ev::Unsupported("a $ref that is not text".into()),
        };
    }
    let mut parts = Vec::new();
    match o.get("type") {
        Some(Value::String(t)) => parts.push(typed(o, t)),
        Some(Value::Array(ts)) => parts.push(Ev::Combined(Crit::Any, Subs::Types(o, ts))),
        Some(_) => parts.push(Ev::Unsupported("a `type` that is not text".into())),
        None => {
            let has = |words: &[&str]| words.iter().any(|w| o.contains_key(*w));
            let inferred: Vec<Ev<'_>> = [
                (has(&OBJECT_WORDS), Ev::Object(o)),
                (has(&ARRAY_WORDS), Ev::Array(o)),
                (has(&NUMBER_WORDS), Ev::Number(o, false)),
                (has(&STRING_WORDS), Ev::Str(o)),
            ]
            .into_iter()
            .filter_map(|(yes, ev)| yes.then_some(ev))
            .collect();
            match inferred.len() {
                0 => {}
                1 => parts.extend(inferred),
                _ => parts.push(Ev::Unsupported(
                    "a schema without `type` whose keywords belong to several types".into(),
                )),
            }
        }
    }
    for (word, crit) in [
        ("allOf", Crit::All),
        ("anyOf", Crit::Any),
        ("oneOf", Crit::One),
    ] {
        if let Some(subs) = o.get(word) {
            match subs.as_array() {
                Some(subs) => parts.push(Ev::Combined(crit, Subs::Schemas(subs))),
                None => parts.push(Ev::Unsupported(format!("an `{word}` that is not a list"))),
            }
        }
    }
    if o.contains_key("enum") || o.contains_key("const") {
        parts.push(Ev::Enum(o));
    }
    if o.contains_key("not") {
        parts.push(Ev::Unsupported(
            "`not` (JsonSchemaData has no Connect type for it)".into(),
        ));
    }
    match parts.len() {
        0 => Ev::Unsupported(
            "a schema with no type (`{}`: JsonSchemaData has no Connect type for it)".into(),
        ),
        1 => parts.pop().unwrap_or(Ev::Null),
        _ => Ev::Combined(Crit::All, Subs::Parts(parts)),
    }
}

/// The schema of explicit type `t` with the keywords of `o`.
fn typed<'s>(o: &'s Map<String, Value>, t: &str) -> Ev<'s> {
    match t {
        "boolean" => Ev::Bool(o),
        "integer" => Ev::Number(o, true),
        "number" => Ev::Number(o, false),
        "string" => Ev::Str(o),
        "null" => Ev::Null,
        "array" => Ev::Array(o),
        "object" => Ev::Object(o),
        other => Ev::Unsupported(format!("the type {other:?}")),
    }
}

/// The keywords a schema's own properties (title, default, connect.*) are read from.
pub(super) fn own<'s>(ev: &Ev<'s>) -> Option<&'s Map<String, Value>> {
    match ev {
        Ev::Bool(o)
        | Ev::Number(o, _)
        | Ev::Str(o)
        | Ev::Array(o)
        | Ev::Object(o)
        | Ev::Enum(o) => Some(o),
        _ => None,
    }
}

/// Which view of a schema object a node was built from (with the object, it decides the node
/// and so its written default).
pub(super) fn tag(ev: &Ev<'_>) -> u8 {
    match ev {
        Ev::Bool(_) => 1,
        Ev::Number(_, true) => 2,
        Ev::Number(_, false) => 3,
        Ev::Str(_) => 4,
        Ev::Array(_) => 5,
        Ev::Object(_) => 6,
        Ev::Enum(_) => 7,
        _ => 0,
    }
}

/// The address of `t`, as a key: within one compilation, the same address is the same part
/// of the schema.
pub(super) fn addr<T: ?Sized>(t: &T) -> usize {
    std::ptr::from_ref(t).cast::<u8>() as usize
}
