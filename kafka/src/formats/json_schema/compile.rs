//! The registry's JSON Schema read as `everit` loads it and `JsonSchemaData.toConnectSchema`
//! turns it into a Connect schema (the rules are listed in the parent module's docs).

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::{
    JsonSchema, Kind, Node, MAX_COMPILE_STEPS, MAX_DEFAULTS_TOTAL, MAX_NODES, MAX_SCHEMA_DEPTH,
};
use crate::formats::json_tree::J;
use crate::formats::walk::Walk;

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

/// `oneOf`, `anyOf` or `allOf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Crit {
    One,
    Any,
    All,
}

/// A schema as `everit` loads it (the Java class `JsonSchemaData` dispatches on).
#[derive(Debug, Clone)]
enum Ev<'s> {
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

/// The longest default a schema may give one node, written (its nested defaults included).
const MAX_DEFAULT_BYTES: usize = 1 << 20;

/// The branches of a combined schema.
#[derive(Debug, Clone)]
enum Subs<'s> {
    /// `allOf`/`anyOf`/`oneOf`'s schemas.
    Schemas(&'s [Value]),
    /// A `type` list: each type with the keywords of the schema `o` that lists them.
    Types(&'s Map<String, Value>, &'s [Value]),
    /// The parts of a schema of several keywords (a handful at most).
    Parts(Vec<Ev<'s>>),
}

impl<'s> Subs<'s> {
    fn len(&self) -> usize {
        match self {
            Self::Schemas(s) | Self::Types(_, s) => s.len(),
            Self::Parts(p) => p.len(),
        }
    }

    /// The branches, each viewed (one schema object's keywords each).
    fn list(&self) -> Vec<Ev<'s>> {
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
fn view(s: &Value) -> Ev<'_> {
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
            let inferred: Vec<Ev> = [
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
fn own<'s>(ev: &Ev<'s>) -> Option<&'s Map<String, Value>> {
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
fn tag(ev: &Ev) -> u8 {
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
fn addr<T: ?Sized>(t: &T) -> usize {
    std::ptr::from_ref(t).cast::<u8>() as usize
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
    /// The defaults' text read and written so far (at most [`MAX_DEFAULTS_TOTAL`]).
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
        let kind = match ev {
            Ev::Unsupported(why) => return Err(format!("unsupported JSON Schema: {why}")),
            Ev::Null => {
                return Err(
                    "unsupported JSON Schema: a lone `null` type (JsonSchemaData has no Connect \
                     type for it)"
                        .into(),
                )
            }
            Ev::Ref(r) => return self.reference(r, force, depth),
            Ev::Bool(_) => Kind::Bool,
            Ev::Number(o, integer) => match o.get("connect.type").and_then(Value::as_str) {
                None if *integer => Kind::Int64,
                None => Kind::Float64,
                Some("int8") => Kind::Int8,
                Some("int16") => Kind::Int16,
                Some("int32") => Kind::Int32,
                Some("int64") => Kind::Int64,
                Some("float32") => Kind::Float32,
                Some("float64") => Kind::Float64,
                Some("bytes") => Kind::Bytes,
                Some(other) => return Err(format!("unsupported connect.type {other:?}")),
            },
            Ev::Str(o) => match o.get("connect.type").and_then(Value::as_str) {
                Some("bytes") => Kind::Bytes,
                _ => Kind::String,
            },
            Ev::Enum(_) => Kind::String,
            Ev::Combined(Crit::All, subs) => {
                let subs = self.list(subs)?;
                return self.all_of(&subs, force, depth);
            }
            Ev::Combined(_, subs) => {
                let subs = self.list(subs)?;
                if subs.len() == 1 {
                    // flatten.singleton.unions (which drops the caller's optional, as Java does).
                    return self.compile(&subs[0], false, depth + 1);
                }
                let nulls = subs.iter().filter(|s| matches!(s, Ev::Null)).count();
                if subs.len() == 2 && nulls > 0 {
                    let other = subs.iter().find(|s| !matches!(s, Ev::Null));
                    return match other {
                        Some(other) => self.compile(other, true, depth + 1),
                        None => Err("unsupported JSON Schema: a union of two nulls".into()),
                    };
                }
                let mut branches = Vec::new();
                for sub in subs.iter().filter(|s| !matches!(s, Ev::Null)) {
                    branches.push(self.compile(sub, true, depth + 1)?);
                }
                branches.shrink_to_fit();
                return self.push(Node {
                    kind: Kind::OneOf(branches),
                    optional: force || nulls > 0,
                    default: None,
                });
            }
            Ev::Array(o) => {
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
                        Kind::EntryMap(k, v)
                    }
                    _ => Kind::Array(self.compile(&item_view, false, depth + 1)?),
                }
            }
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

    /// `allOfToConnectSchema`.
    fn all_of(&mut self, subs: &[Ev<'s>], force: bool, depth: usize) -> Result<usize, String> {
        let mut props = Properties::default();
        let mut seen = 0;
        for sub in subs {
            self.collect_properties(sub, &mut props, &mut seen, depth)?;
        }
        let props = props.list;
        if !props.is_empty() {
            let at = self.push(Node {
                kind: Kind::Pending,
                optional: force,
                default: None,
            })?;
            let mut fields = Vec::new();
            for (name, s) in props {
                let name = self.name(name);
                fields.push((name, self.compile(&view(s), false, depth + 1)?));
            }
            fields.shrink_to_fit();
            self.nodes[at].kind = Kind::Struct(fields);
            return Ok(at);
        }
        let find = |f: fn(&Ev) -> bool| subs.iter().find(|s| f(s));
        let combined = find(|s| matches!(s, Ev::Combined(..)));
        let enumerated = find(|s| matches!(s, Ev::Enum(_)));
        let number = find(|s| matches!(s, Ev::Number(..)));
        let string = find(|s| matches!(s, Ev::Str(_)));
        let reference = find(|s| matches!(s, Ev::Ref(_)));
        let formatted = matches!(string, Some(Ev::Str(o)) if o.contains_key("format"));
        let chosen = if let Some(c) = combined {
            Some(c)
        } else if let Some(e) = enumerated {
            // const/enum with a string: the string (an enum); with a number: the number.
            if string.is_some() {
                Some(e)
            } else {
                number
            }
        } else if formatted {
            number.or(string)
        } else {
            reference
        };
        match chosen {
            Some(sub) => self.compile(sub, force, depth + 1),
            None => Err(
                "unsupported JSON Schema: an allOf (or a schema of several keywords) that \
                 JsonSchemaData cannot make one Connect type of"
                    .into(),
            ),
        }
    }

    /// `collectPropertySchemas`: the properties of the objects among `allOf`'s branches.
    /// `seen` counts the branches and the properties visited: a `$ref` to a large object,
    /// repeated in one `allOf`, visits its properties each time.
    fn collect_properties(
        &mut self,
        ev: &Ev<'s>,
        props: &mut Properties<'s>,
        seen: &mut usize,
        depth: usize,
    ) -> Result<(), String> {
        visit(seen, 1, depth)?;
        match ev {
            Ev::Combined(Crit::All, subs) => {
                for sub in &self.list(subs)? {
                    self.collect_properties(sub, props, seen, depth + 1)?;
                }
            }
            Ev::Object(o) => {
                if let Some(Value::Object(p)) = o.get("properties") {
                    visit(seen, p.len(), depth)?;
                    for (name, s) in p {
                        props.set(name, s);
                    }
                }
            }
            Ev::Ref(r) => {
                let target = self.pointer(r)?;
                self.collect_properties(&view(target), props, seen, depth + 1)?;
            }
            _ => {}
        }
        Ok(())
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

    /// A node of `kind` with `o`'s title (logical types) and default.
    fn finish(
        &mut self,
        mut kind: Kind,
        o: Option<&'s Map<String, Value>>,
        tag: u8,
        force: bool,
    ) -> Result<usize, String> {
        if let Some(title) = o.and_then(|o| o.get("title")).and_then(Value::as_str) {
            let logical = match title {
                "org.apache.kafka.connect.data.Decimal" => Some(("Decimal", Kind::Bytes)),
                "org.apache.kafka.connect.data.Date" => Some(("Date", Kind::Int32)),
                "org.apache.kafka.connect.data.Time" => Some(("Time", Kind::Int32)),
                "org.apache.kafka.connect.data.Timestamp" => Some(("Timestamp", Kind::Int64)),
                _ => None,
            };
            if let Some((name, base)) = logical {
                if std::mem::discriminant(&kind) != std::mem::discriminant(&base) {
                    return Err(format!(
                        "the title names Connect's {name} logical type on a {} schema (it \
                         needs {}): the connector fails such records",
                        kind.name(),
                        base.name()
                    ));
                }
                kind = match name {
                    "Decimal" => Kind::Decimal(
                        o.and_then(|o| o.get("connect.parameters"))
                            .and_then(|p| p.get("scale"))
                            .and_then(|s| match s {
                                Value::String(s) => s.trim().parse().ok(),
                                _ => None,
                            }),
                    ),
                    "Date" => Kind::Date,
                    "Time" => Kind::Time,
                    _ => Kind::Timestamp,
                };
            }
        }
        let at = self.push(Node {
            kind,
            optional: false,
            default: None,
        })?;
        self.nodes[at].default = self.default_of(at, o, tag)?;
        self.nodes[at].optional = force;
        Ok(at)
    }

    /// The `default` of `o`, converted with node `at`, built from `o`'s view `tag` (a `null`
    /// default is none): written once for each object and view, shared by every node built
    /// from them, and counted against the schema's [`MAX_DEFAULTS_TOTAL`] (its text read and
    /// written).
    fn default_of(
        &mut self,
        at: usize,
        o: Option<&'s Map<String, Value>>,
        tag: u8,
    ) -> Result<Option<Arc<str>>, String> {
        let Some(o) = o else { return Ok(None) };
        let Some(d) = o.get("default").filter(|d| !d.is_null()) else {
            return Ok(None);
        };
        let key = (addr(o), tag);
        if let Some(done) = self.defaults.get(&key) {
            return Ok(Some(Arc::clone(done)));
        }
        let text = d.to_string();
        self.charge_defaults(text.len())?;
        let j = J::parse(&text)?;
        // Borrowed, not copied: a schema of many defaults costs one pass each.
        let schema = JsonSchema::of_nodes(std::mem::take(&mut self.nodes), at);
        let mut out = String::new();
        // A default's own defaults are written too (`{}` for an object of defaulted
        // properties): bounded like the registry's answer, so a schema cannot ask for more.
        let written = schema.write(&mut out, at, Some(&j), "", Walk::new(MAX_DEFAULT_BYTES));
        self.nodes = schema.nodes;
        written.map_err(|e| format!("the default does not fit its schema: {e}"))?;
        self.charge_defaults(out.len())?;
        let out: Arc<str> = Arc::from(out);
        self.defaults.insert(key, Arc::clone(&out));
        Ok(Some(out))
    }

    /// Counts `n` more bytes of defaults read or written.
    ///
    /// # Errors
    /// Past [`MAX_DEFAULTS_TOTAL`].
    fn charge_defaults(&mut self, n: usize) -> Result<(), String> {
        self.default_bytes += n;
        if self.default_bytes > MAX_DEFAULTS_TOTAL {
            return Err(format!(
                "the schema's defaults take more than {MAX_DEFAULTS_TOTAL} bytes to read and \
                 write (each default counts once for each schema object that holds it, its \
                 nested defaults included): refused, not built"
            ));
        }
        Ok(())
    }
}

/// Counts `n` more branches or properties visited by one `allOf` at `depth`.
///
/// # Errors
/// Past [`MAX_NODES`] visits or [`MAX_SCHEMA_DEPTH`] levels.
fn visit(seen: &mut usize, n: usize, depth: usize) -> Result<(), String> {
    *seen += n;
    if *seen > MAX_NODES || depth > MAX_SCHEMA_DEPTH {
        return Err(format!(
            "an allOf of too many or too deep branches (more than {MAX_NODES} branches and \
             properties visited, or {MAX_SCHEMA_DEPTH} levels)"
        ));
    }
    Ok(())
}

/// The properties `allOf`'s branches collect, in first-seen order, a later branch's schema
/// replacing an earlier one's (found by name, not by a scan of the list).
#[derive(Default)]
struct Properties<'s> {
    list: Vec<(&'s String, &'s Value)>,
    at: HashMap<&'s str, usize>,
}

impl<'s> Properties<'s> {
    fn set(&mut self, name: &'s String, schema: &'s Value) {
        match self.at.get(name.as_str()) {
            Some(&i) => self.list[i].1 = schema,
            None => {
                self.at.insert(name, self.list.len());
                self.list.push((name, schema));
            }
        }
    }
}
