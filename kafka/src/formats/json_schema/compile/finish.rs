//! What a node takes from its schema object once its kind is known: the logical type its
//! `title` names ([`Compiler::finish`]) and its `default`, written once and counted
//! ([`Compiler::default_of`]).

use crate::formats::connect_type::ConnectType;
use std::sync::Arc;

use serde_json::{Map, Value};

use super::view::addr;
use super::Compiler;
use crate::formats::json_schema::{JsonSchema, Kind, Node, MAX_DEFAULTS_TOTAL};
use crate::formats::json_tree::J;
use crate::formats::walk::Walk;

/// The longest default a schema may give one node, written (its nested defaults included).
const MAX_DEFAULT_BYTES: usize = 1 << 20;

impl<'s> Compiler<'s> {
    /// A node of `kind` with `o`'s title (logical types) and default.
    pub(super) fn finish(
        &mut self,
        mut kind: Kind,
        o: Option<&'s Map<String, Value>>,
        tag: u8,
        force: bool,
    ) -> Result<usize, String> {
        if let Some(title) = o.and_then(|o| o.get("title")).and_then(Value::as_str) {
            let logical = match title {
                "org.apache.kafka.connect.data.Decimal" => {
                    Some(("Decimal", Kind::Scalar(ConnectType::Bytes)))
                }
                "org.apache.kafka.connect.data.Date" => {
                    Some(("Date", Kind::Scalar(ConnectType::Int32)))
                }
                "org.apache.kafka.connect.data.Time" => {
                    Some(("Time", Kind::Scalar(ConnectType::Int32)))
                }
                "org.apache.kafka.connect.data.Timestamp" => {
                    Some(("Timestamp", Kind::Scalar(ConnectType::Int64)))
                }
                _ => None,
            };
            if let Some((name, base)) = logical {
                let same = match (&kind, &base) {
                    (Kind::Scalar(a), Kind::Scalar(b)) => a == b,
                    _ => std::mem::discriminant(&kind) == std::mem::discriminant(&base),
                };
                if !same {
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
                    "Date" => Kind::Scalar(ConnectType::Date),
                    "Time" => Kind::Scalar(ConnectType::Time),
                    _ => Kind::Scalar(ConnectType::Timestamp),
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
    pub(super) fn default_of(
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
