//! The combined schemas: `oneOf`/`anyOf` ([`Compiler::union`]) and `allOf`
//! ([`Compiler::all_of`], as `allOfToConnectSchema`: the properties of its objects merged, or
//! else its combined, enum, number or string branch).

use std::collections::HashMap;

use serde_json::Value;

use super::view::{view, Crit, Ev};
use super::Compiler;
use crate::formats::json_schema::{Kind, Node, MAX_NODES, MAX_SCHEMA_DEPTH};

impl<'s> Compiler<'s> {
    /// A `oneOf` or `anyOf` of `subs`: with one branch, that branch; with two, one of them
    /// `null`, the other, optional; else the `OneOf` struct of the non-null branches
    /// (optional as a whole when a branch is `null`).
    pub(super) fn union(
        &mut self,
        subs: &[Ev<'s>],
        force: bool,
        depth: usize,
    ) -> Result<usize, String> {
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
        self.push(Node {
            kind: Kind::OneOf(branches),
            optional: force || nulls > 0,
            default: None,
        })
    }

    /// `allOfToConnectSchema`.
    pub(super) fn all_of(
        &mut self,
        subs: &[Ev<'s>],
        force: bool,
        depth: usize,
    ) -> Result<usize, String> {
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
        let find = |f: fn(&Ev<'_>) -> bool| subs.iter().find(|s| f(s));
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
        #[cfg(test)]
        crate::formats::json_schema::tests::count_work();
        match self.at.get(name.as_str()) {
            Some(&i) => self.list[i].1 = schema,
            None => {
                self.at.insert(name, self.list.len());
                self.list.push((name, schema));
            }
        }
    }
}
