//! The registry's JSON Schema read as `everit` loads it and `JsonSchemaData.toConnectSchema`
//! turns it into a Connect schema (the rules are listed in the parent module's docs): each
//! schema object viewed ([`view()`]), compiled into nodes by [`Compiler`] (the primitive types,
//! arrays, objects and `$ref`s here; `oneOf`/`anyOf`/`allOf` in [`combine`]; a node's logical
//! type and default in [`finish`]), every step counted against the schema's bounds.

mod combine;
mod finish;
mod view;

use crate::formats::connect_type::ConnectType;
use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{Kind, Node, MAX_COMPILE_STEPS, MAX_NODES, MAX_SCHEMA_DEPTH};
use view::{addr, own, tag, view, Crit, Ev, Subs};

/// The Connect schema of the JSON Schema `root`: its nodes, the root's index, and the steps
/// its compilation took (at most [`MAX_COMPILE_STEPS`]).
///
/// # Errors
/// A schema `JsonSchemaData` has no Connect schema for, or one too large or deep to build, or
/// whose defaults or compilation take too much.
pub(super) fn compile(root: &Value) -> Result<(Vec<Node>, usize, usize), String> {
    let mut c = Compiler {
        root,
        nodes: Vec::new(),
        refs: HashMap::new(),
        targets: HashMap::new(),
        defaults: HashMap::new(),
        names: HashMap::new(),
        default_bytes: 0,
        steps: 0,
    };
    let top = c.compile(&view(root), false, 0)?;
    Ok((c.nodes, top, c.steps))
}

struct Compiler<'s> {
    root: &'s Value,
    nodes: Vec<Node>,
    /// Compiled `$ref` targets, by the target's address (two spellings of one target, e.g.
    /// `#/a/0` and `#/a/00`, share it).
    refs: HashMap<usize, usize>,
    /// `$ref` texts resolved, by the text's address and length (each text once).
    targets: HashMap<(usize, usize), &'s Value>,
    /// Written defaults, by the schema object that holds them and the view ([`tag`]) the node
    /// was built from: the same object built again (a `type` list repeating a type) shares its
    /// default, neither written nor held twice.
    defaults: HashMap<(usize, u8), Arc<str>>,
    /// Property names, one copy each (by the name's address and length in the schema).
    names: HashMap<(usize, usize), Arc<str>>,
    /// The defaults' text read and written so far (at most
    /// [`MAX_DEFAULTS_TOTAL`](super::MAX_DEFAULTS_TOTAL)).
    default_bytes: usize,
    /// The work done so far (at most [`MAX_COMPILE_STEPS`]): schemas compiled, branches and
    /// properties visited, `$ref` tokens followed.
    steps: usize,
}

impl<'s> Compiler<'s> {
    /// Counts `n` steps of work.
    ///
    /// # Errors
    /// Past [`MAX_COMPILE_STEPS`].
    fn step(&mut self, n: usize) -> Result<(), String> {
        self.steps += n;
        if self.steps > MAX_COMPILE_STEPS {
            return Err(format!(
                "the schema takes more than {MAX_COMPILE_STEPS} steps to compile (it repeats \
                 large parts many times): refused, not built"
            ));
        }
        Ok(())
    }

    /// The branches of `subs`, viewed, counted as steps.
    fn list(&mut self, subs: &Subs<'s>) -> Result<Vec<Ev<'s>>, String> {
        self.step(subs.len())?;
        Ok(subs.list())
    }

    /// The one shared copy of the property name `name`.
    fn name(&mut self, name: &'s str) -> Arc<str> {
        Arc::clone(
            self.names
                .entry((name.as_ptr() as usize, name.len()))
                .or_insert_with(|| Arc::from(name)),
        )
    }

    fn push(&mut self, node: Node) -> Result<usize, String> {
        if self.nodes.len() >= MAX_NODES {
            return Err(format!(
                "the schema makes more than {MAX_NODES} Connect schemas (refused, not built)"
            ));
        }
        self.nodes.push(node);
        Ok(self.nodes.len() - 1)
    }

    fn compile(&mut self, ev: &Ev<'s>, force: bool, depth: usize) -> Result<usize, String> {
        if depth > MAX_SCHEMA_DEPTH {
            return Err(format!(
                "schemas nested deeper than {MAX_SCHEMA_DEPTH} levels"
            ));
        }
        self.step(1)?;
        let kind =
            match ev {
                Ev::Unsupported(why) => return Err(format!("unsupported JSON Schema: {why}")),
                Ev::Null => return Err(
                    "unsupported JSON Schema: a lone `null` type (JsonSchemaData has no Connect \
                     type for it)"
                        .into(),
                ),
                Ev::Ref(r) => return self.reference(r, force, depth),
                Ev::Bool(_) => Kind::Scalar(ConnectType::Boolean),
                Ev::Number(o, integer) => number_kind(o, *integer)?,
                Ev::Str(o) => match o.get("connect.type").and_then(Value::as_str) {
                    Some("bytes") => Kind::Scalar(ConnectType::Bytes),
                    _ => Kind::Scalar(ConnectType::String),
                },
                Ev::Enum(_) => Kind::Scalar(ConnectType::String),
                Ev::Combined(Crit::All, subs) => {
                    let subs = self.list(subs)?;
                    return self.all_of(&subs, force, depth);
                }
                Ev::Combined(_, subs) => {
                    let subs = self.list(subs)?;
                    return self.union(&subs, force, depth);
                }
                Ev::Array(o) => self.array(o, depth)?,
                Ev::Object(o) => {
                    if o.get("connect.type").and_then(Value::as_str) == Some("map") {
                        match o.get("additionalProperties") {
                            Some(s @ Value::Object(_)) => {
                                Kind::StringMap(Some(self.compile(&view(s), false, depth + 1)?))
                            }
                            _ => Kind::StringMap(None),
                        }
                    } else {
                        return self.object(o, force, depth);
                    }
                }
            };
        self.finish(kind, own(ev), tag(ev), force)
    }

    /// The kind of the array schema `o`: an array of its one `items` schema, or with
    /// `connect.type: map` and object items, a map of their `key` to their `value`.
    fn array(&mut self, o: &'s Map<String, Value>, depth: usize) -> Result<Kind, String> {
        let items = match o.get("items") {
            Some(items @ (Value::Object(_) | Value::Bool(_))) => items,
            _ => {
                return Err(
                    "an array schema without one `items` schema (JsonSchemaData: \
                     \"Array schema did not specify the items type\")"
                        .into(),
                )
            }
        };
        let item_view = view(items);
        let is_map = o.get("connect.type").and_then(Value::as_str) == Some("map");
        match (&item_view, is_map) {
            (Ev::Object(io), true) => {
                let prop = |name: &str| {
                    io.get("properties")
                        .and_then(|p| p.get(name))
                        .map(view)
                        .ok_or_else(|| {
                            format!("a connect.type map array whose items have no {name:?}")
                        })
                };
                let (k, v) = (prop("key")?, prop("value")?);
                let k = self.compile(&k, false, depth + 1)?;
                let v = self.compile(&v, false, depth + 1)?;
                Ok(Kind::EntryMap(k, v))
            }
            _ => Ok(Kind::Array(self.compile(&item_view, false, depth + 1)?)),
        }
    }

    /// A struct of `o`'s properties (registered before its fields, so a `$ref` back to it
    /// finds it).
    fn object(
        &mut self,
        o: &'s Map<String, Value>,
        force: bool,
        depth: usize,
    ) -> Result<usize, String> {
        let at = self.push(Node {
            kind: Kind::Pending,
            optional: false,
            default: None,
        })?;
        let mut props: Vec<(i64, usize, &String, &Value)> = Vec::new();
        if let Some(Value::Object(p)) = o.get("properties") {
            for (i, (name, s)) in p.iter().enumerate() {
                let index = s
                    .get("connect.index")
                    .and_then(Value::as_i64)
                    .unwrap_or(i as i64);
                props.push((index, i, name, s));
            }
        }
        self.step(props.len())?;
        props.sort_by_key(|p| (p.0, p.1));
        let mut fields = Vec::new();
        for (_, _, name, s) in props {
            let name = self.name(name);
            fields.push((name, self.compile(&view(s), false, depth + 1)?));
        }
        fields.shrink_to_fit();
        self.nodes[at].kind = Kind::Struct(fields);
        self.nodes[at].optional = force;
        // Not `tag(Ev::Object)`: a `connect.type: map` object is built by `finish`.
        self.nodes[at].default = self.default_of(at, Some(o), 8)?;
        Ok(at)
    }

    /// The target of the `$ref` text `r` (resolved once per text).
    fn pointer(&mut self, r: &'s str) -> Result<&'s Value, String> {
        let key = (r.as_ptr() as usize, r.len());
        if let Some(&target) = self.targets.get(&key) {
            return Ok(target);
        }
        let Some(path) = r.strip_prefix('#') else {
            return Err(format!(
                "unsupported JSON Schema: the $ref {r:?} is outside the schema (only `#…` \
                 references are resolved)"
            ));
        };
        self.step(path.split('/').count())?;
        let mut at = self.root;
        for token in path.split('/').skip(1) {
            let token = token.replace("~1", "/").replace("~0", "~");
            at = match at {
                Value::Object(o) => o.get(&token),
                Value::Array(a) => token.parse::<usize>().ok().and_then(|i| a.get(i)),
                _ => None,
            }
            .ok_or_else(|| format!("the $ref {r:?} points at nothing"))?;
        }
        self.targets.insert(key, at);
        Ok(at)
    }

    fn reference(&mut self, r: &'s str, force: bool, depth: usize) -> Result<usize, String> {
        let schema = self.pointer(r)?;
        let target = match self.refs.get(&addr(schema)) {
            Some(&t) => t,
            None => {
                let at = self.push(Node {
                    kind: Kind::Pending,
                    optional: false,
                    default: None,
                })?;
                self.refs.insert(addr(schema), at);
                let built = self.compile(&view(schema), false, depth + 1)?;
                if self.resolve(built).is_none() {
                    return Err(format!("the $ref {r:?} refers only to itself"));
                }
                let mut node = self.nodes[built].clone();
                node.kind = Kind::Ref(built);
                self.nodes[at] = node;
                at
            }
        };
        let optional = force || self.nodes[target].optional;
        self.push(Node {
            kind: Kind::Ref(target),
            optional,
            default: None,
        })
    }

    /// Follows `Ref`s to a node that is not one (`None` for a cycle of references).
    fn resolve(&self, mut at: usize) -> Option<usize> {
        for _ in 0..64 {
            match self.nodes[at].kind {
                Kind::Ref(t) => at = t,
                Kind::Pending => return None,
                _ => return Some(at),
            }
        }
        None
    }
}

/// The kind of a number schema of the keywords `o` (`integer`: of type `integer`):
/// `connect.type` overrides INT64 or FLOAT64.
///
/// # Errors
/// A `connect.type` that is no Connect number type (nor `bytes`).
fn number_kind(o: &Map<String, Value>, integer: bool) -> Result<Kind, String> {
    Ok(match o.get("connect.type").and_then(Value::as_str) {
        None if integer => Kind::Scalar(ConnectType::Int64),
        None => Kind::Scalar(ConnectType::Float64),
        Some("int8") => Kind::Scalar(ConnectType::Int8),
        Some("int16") => Kind::Scalar(ConnectType::Int16),
        Some("int32") => Kind::Scalar(ConnectType::Int32),
        Some("int64") => Kind::Scalar(ConnectType::Int64),
        Some("float32") => Kind::Scalar(ConnectType::Float32),
        Some("float64") => Kind::Scalar(ConnectType::Float64),
        Some("bytes") => Kind::Scalar(ConnectType::Bytes),
        Some(other) => return Err(format!("unsupported connect.type {other:?}")),
    })
}
