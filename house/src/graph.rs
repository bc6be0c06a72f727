//! The import graph of a crate's `src/`, read by every package's `module_graph_tests.rs`
//! (then checked by [`crate::floors`] or [`crate::circles`]): module (one source file) → the modules it uses, and the
//! circles in it.
//!
//! Every `crate::…`, `super::…` and `self::…` path outside comments and test code names the
//! module it depends on, the longest module path that exists (`crate::pipeline::compress::X`
//! → `pipeline::compress`); a name the crate root re-exports (`crate::OffsetToken`) counts as
//! the module its `pub use` names (`offset`); other names at the crate root depend on nothing.
//! A parent's use of its own child by a relative path (`use child::X;` after `mod child;`) is
//! not an arrow: only the child's `super::` is. Test and benchmark harnesses are left out:
//! they sit above everything they exercise. [`Graph::rooms`] is the same graph between the
//! rooms (top-level modules).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use crate::walk::{code, ident, paths_after, rust_files};

/// One use of a module by another: the file it is in and the path it names.
pub struct Use {
    pub module: String,
    pub target: String,
    pub file: PathBuf,
    pub path: String,
}

/// A crate's modules and every use of one by another, in source order per file.
pub struct Graph {
    pub modules: BTreeSet<String>,
    pub uses: Vec<Use>,
}

/// The room of a module: its top-level module.
pub fn room_of(module: &str) -> &str {
    module.split("::").next().unwrap()
}

/// Files that are no module of the graph: the crate roots, and test and benchmark harnesses
/// (a harness with children, `test_util/mod.rs`, as one without, `test_util.rs`).
fn left_out(rel: &Path) -> bool {
    let name = rel.file_name().and_then(|n| n.to_str()).unwrap_or("");
    rel.components()
        .any(|c| c.as_os_str().to_string_lossy().ends_with("tests"))
        || name.ends_with("tests.rs")
        || (rel.parent() == Some(Path::new("")) && matches!(name, "lib.rs" | "main.rs"))
        || matches!(
            name,
            "test_support.rs" | "test_util.rs" | "testing.rs" | "bench.rs"
        )
        || rel.components().any(|c| {
            let folder = c.as_os_str().to_string_lossy();
            matches!(&*folder, "test_support" | "test_util" | "testing")
        })
}

/// The module a file is: `pipeline/batch.rs` → `pipeline::batch`, `channel/mod.rs` →
/// `channel`.
pub fn module_of(rel: &Path) -> String {
    let mut parts: Vec<String> = rel
        .components()
        .map(|c| c.as_os_str().to_string_lossy().into_owned())
        .collect();
    let last = parts.pop().unwrap();
    let last = last.trim_end_matches(".rs");
    if last != "mod" {
        parts.push(last.to_owned());
    }
    parts.join("::")
}

/// The module a path names: the longest module of `modules` it starts with, else the module a
/// name at the crate root comes from (`None`: the crate root's own items).
pub fn resolve(
    modules: &BTreeSet<String>,
    exports: &BTreeMap<String, String>,
    path: &[String],
) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
        .or_else(|| path.first().and_then(|n| exports.get(n)).cloned())
}

/// Names the crate root re-exports (`pub use a::b::{C, D as E};`), mapped to the module that
/// path names (`a::b`; `pub use a::b;` maps `b` to the module `a::b` if there is one).
pub fn root_exports(lib: &str, modules: &BTreeSet<String>) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for statement in code(lib).split(';') {
        let Some(i) = statement.find("pub use ") else {
            continue;
        };
        let rest = &statement[i + "pub use ".len()..];
        let renamed: BTreeMap<&str, &str> = rest
            .split([',', '{', '}'])
            .filter_map(|m| m.split_once(" as "))
            .map(|(from, to)| (ident(from.rsplit("::").next().unwrap().trim()), to.trim()))
            .collect();
        for path in paths_after(&format!("crate::{rest}"), "crate::") {
            let module = resolve(modules, &BTreeMap::new(), &path);
            if let (Some(name), Some(module)) = (path.last(), module) {
                let name = renamed.get(name.as_str()).copied().unwrap_or(name);
                map.insert(name.to_owned(), module);
            }
        }
    }
    map
}

/// `path` (after `super::` in `module`) from the crate root: each further leading `super`
/// goes one module up.
pub fn from_root(module: &str, path: Vec<String>) -> Vec<String> {
    let mut base: Vec<String> = module.split("::").map(str::to_owned).collect();
    base.pop();
    let mut path = path.into_iter().peekable();
    while path.next_if(|n| n == "super").is_some() {
        base.pop();
    }
    base.extend(path);
    base
}

/// The paths `code` (of `module`) names, from the crate root, each with its text.
fn named_paths(module: &str, code: &str) -> Vec<(Vec<String>, String)> {
    let text = |prefix: &str, path: &[String]| format!("{prefix}{}", path.join("::"));
    let mut out = Vec::new();
    for path in paths_after(code, "crate::") {
        out.push((path.clone(), text("crate::", &path)));
    }
    for path in paths_after(code, "super::") {
        let shown = text("super::", &path);
        out.push((from_root(module, path), shown));
    }
    for path in paths_after(code, "self::") {
        let shown = text("self::", &path);
        let whole = module.split("::").map(str::to_owned).chain(path).collect();
        out.push((whole, shown));
    }
    out
}

impl Graph {
    /// The graph of the crate in the package at `manifest_dir` (its `src/`; a package's test
    /// passes `env!("CARGO_MANIFEST_DIR")`).
    ///
    /// # Panics
    ///
    /// If `src/` or one of its files cannot be read.
    pub fn of_crate(manifest_dir: &str) -> Self {
        let src = Path::new(manifest_dir).join("src");
        let mut files = Vec::new();
        rust_files(&src, &mut files);
        let sources: Vec<(PathBuf, String)> = files
            .into_iter()
            .map(|file| file.strip_prefix(&src).unwrap().to_path_buf())
            .filter(|rel| rel == Path::new("lib.rs") || !left_out(rel))
            .map(|rel| {
                let text = std::fs::read_to_string(src.join(&rel)).unwrap();
                (rel, text)
            })
            .collect();
        Self::of_sources(&sources)
    }

    /// The graph of a crate's sources: each file's path in `src/` and its text (`lib.rs`, the
    /// crate root, for its re-exports); a small tree written out as `(&str, &str)` pairs too.
    pub fn of_sources<P: AsRef<Path>, T: AsRef<str>>(sources: &[(P, T)]) -> Self {
        let files: BTreeMap<String, (&Path, &str)> = sources
            .iter()
            .map(|(rel, text)| (rel.as_ref(), text.as_ref()))
            .filter(|(rel, _)| !left_out(rel))
            .map(|(rel, text)| (module_of(rel), (rel, text)))
            .collect();
        let modules: BTreeSet<String> = files.keys().cloned().collect();
        let lib = sources
            .iter()
            .find(|(rel, _)| rel.as_ref() == Path::new("lib.rs"));
        let exports = root_exports(lib.map_or("", |(_, text)| text.as_ref()), &modules);
        let mut uses = Vec::new();
        for (module, (rel, text)) in &files {
            for (path, shown) in named_paths(module, &code(text)) {
                let Some(target) = resolve(&modules, &exports, &path) else {
                    continue;
                };
                if target != *module {
                    uses.push(Use {
                        module: module.clone(),
                        target,
                        file: rel.to_path_buf(),
                        path: shown,
                    });
                }
            }
        }
        Self { modules, uses }
    }

    /// The same graph between rooms: each use from one room into another.
    pub fn rooms(&self) -> Self {
        let modules = self.modules.iter().map(|m| room_of(m).to_owned()).collect();
        let uses = self
            .uses
            .iter()
            .filter(|u| room_of(&u.module) != room_of(&u.target))
            .map(|u| Use {
                module: room_of(&u.module).to_owned(),
                target: room_of(&u.target).to_owned(),
                file: u.file.clone(),
                path: u.path.clone(),
            })
            .collect();
        Self { modules, uses }
    }

    /// Module → modules it uses, with the first use that shows each edge.
    fn edges(&self) -> BTreeMap<&str, BTreeMap<&str, &Use>> {
        let mut edges: BTreeMap<&str, BTreeMap<&str, &Use>> = BTreeMap::new();
        for u in &self.uses {
            let to = edges.entry(&u.module).or_default();
            to.entry(&u.target).or_insert(u);
        }
        edges
    }

    /// Every circle through an arrow `allowed` does not name, one line each: the arrow (module,
    /// the module it uses, the path and file that show it) and the way back.
    pub fn circles(&self, allowed: &[(&str, &str)]) -> Vec<String> {
        let edges = self.edges();
        let mut circles = Vec::new();
        for (module, uses) in &edges {
            for (next, u) in uses {
                if allowed.contains(&(module, next)) {
                    continue;
                }
                if let Some(back) = way(&edges, next, module, allowed) {
                    circles.push(format!(
                        "{module} uses {next} (`{}` in src/{}), and {} leads back",
                        u.path,
                        u.file.display(),
                        back.join(" → ")
                    ));
                }
            }
        }
        circles
    }
}

/// Fails, saying `what` went wrong and each of `breaks`, if there are any.
#[track_caller]
pub fn assert_none(breaks: &[String], what: &str) {
    assert!(breaks.is_empty(), "{what}:\n{}", breaks.join("\n"));
}

/// A way from `from` to `to` in `edges` that takes no edge `skip` names, if there is one.
fn way<'g>(
    edges: &BTreeMap<&'g str, BTreeMap<&'g str, &Use>>,
    from: &'g str,
    to: &str,
    skip: &[(&str, &str)],
) -> Option<Vec<&'g str>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from]];
    while let Some(trail) = stack.pop() {
        let last = *trail.last().unwrap();
        if last == to && trail.len() > 1 {
            return Some(trail);
        }
        if !seen.insert(last) {
            continue;
        }
        for next in edges.get(last).into_iter().flat_map(BTreeMap::keys) {
            if skip.contains(&(last, *next)) {
                continue;
            }
            let mut longer = trail.clone();
            longer.push(next);
            stack.push(longer);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::{from_root, module_of, resolve, root_exports};
    use crate::walk::{code, paths_after};

    #[test]
    fn the_checker_follows_paths_to_the_longest_module() {
        let text = "// crate::ignored\n#[cfg(doc)]\nuse crate::DocOnly;\nuse crate::a::b::C;\n\
                    use super::{d, e::F};\nuse super::super::g::H;\n#[cfg(test)]\nmod tests {\n    \
                    fn t() { crate::t::x(); }\n}\n#[cfg(test)]\nuse crate::u::v;\n\
                    #[cfg(all(test, unix))]\nmod unix_tests {\n    use crate::w;\n}\n\
                    fn f() { self::i::j(); crate::Root::new(); }\n";
        let code = code(text);
        assert_eq!(
            paths_after(&code, "crate::"),
            [vec!["a", "b", "C"], vec!["Root", "new"]]
        );
        assert_eq!(
            paths_after(&code, "super::"),
            [vec!["d"], vec!["e", "F"], vec!["super", "g", "H"]]
        );
        assert_eq!(paths_after(&code, "self::"), [vec!["i", "j"]]);
        let p = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
        assert_eq!(from_root("x::y::z", p("super::g::H")), p("x::g::H"));
        assert_eq!(from_root("x::y::z", p("d")), p("x::y::d"));
        let modules = ["a", "a::b", "x"].map(str::to_owned).into();
        let exports = root_exports("pub use a::b::{C, D as E};\npub use x::Y;\n", &modules);
        assert_eq!(exports["C"], "a::b");
        assert_eq!(exports["E"], "a::b");
        assert_eq!(exports["Y"], "x");
        let r = |s: &str| resolve(&modules, &exports, &p(s));
        assert_eq!(r("a::b::C").as_deref(), Some("a::b"));
        assert_eq!(r("a::c::D").as_deref(), Some("a"));
        assert_eq!(r("Y").as_deref(), Some("x"));
        assert_eq!(r("Root"), None);
        assert_eq!(module_of(Path::new("channel/mod.rs")), "channel");
        assert_eq!(module_of(Path::new("pipeline/batch.rs")), "pipeline::batch");
    }
}
