//! `kafka/src/` has no import circle: the rooms (top-level modules) are in layers, each using
//! only the rooms below it ([`ROOMS`], the order `ARCHITECTURE.md` draws), and no module (file)
//! leads back to itself through other modules. Checked from the sources: every `crate::…` and
//! `super::…` path outside comments and test code names the module it depends on (the longest
//! module path that exists); names at the crate root (`crate::Part`, `crate::lock`) depend on
//! nothing.

#[path = "../../src/module_graph_tests/walk.rs"]
mod walk;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use walk::{path, rust_files, without_test_module};

/// The rooms, lowest first: a room may use the rooms before it, never one after it.
const ROOMS: &[&str] = &[
    "formats",
    "rows",
    "ops",
    "kafka",
    "connector",
    "sink",
    "cli",
    "demo",
    "bench",
];

/// The code of a file without comments and its inline test module.
fn code(text: &str) -> String {
    without_test_module(text)
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths after `prefix` in `code`, as lists of names: `crate::a::b::C` → `[a, b, C]`,
/// `crate::a::{b::c, D}` → `[a, b, c]` and `[a, D]`.
fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `x::crate::`, `supercrate::`: not ours
        }
        let mut rest = &code[i + prefix.len()..];
        let mut names = Vec::new();
        loop {
            if let Some(group) = rest.strip_prefix('{') {
                let group = &group[..group.find('}').unwrap_or(group.len())];
                for member in group.split(',') {
                    let mut path = names.clone();
                    path.extend(
                        member
                            .trim()
                            .split("::")
                            .map(|n| ident(n.trim()).to_owned())
                            .filter(|n| !n.is_empty()),
                    );
                    out.push(path);
                }
                break;
            }
            let name = ident(rest);
            if name.is_empty() {
                break;
            }
            names.push(name.to_owned());
            rest = &rest[name.len()..];
            match rest.strip_prefix("::") {
                Some(r) => rest = r,
                None => break,
            }
        }
        if !names.is_empty() {
            out.push(names);
        }
    }
    out
}

/// The module a file is: `rows/batch.rs` → `rows::batch`, `bench/mod.rs` → `bench`.
fn module_of(rel: &Path) -> String {
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

/// The longest module of `modules` that `path` starts with (`None`: the crate root's items).
fn resolve(modules: &BTreeSet<String>, path: &[String]) -> Option<String> {
    (1..=path.len())
        .rev()
        .map(|n| path[..n].join("::"))
        .find(|m| modules.contains(m))
}

/// Module → modules it uses, with one file that shows each edge. Test files are left out: a
/// test sits above everything it exercises.
fn module_graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut sources = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_path_buf();
        let name = rel.file_name().unwrap().to_string_lossy();
        if rel == Path::new("lib.rs") || rel == Path::new("main.rs") || name.ends_with("tests.rs") {
            continue;
        }
        sources.insert(module_of(&rel), rel);
    }
    let modules: BTreeSet<String> = sources.keys().cloned().collect();
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for (module, rel) in &sources {
        let code = code(&std::fs::read_to_string(src.join(rel)).unwrap());
        let parent: Vec<String> = {
            let mut p: Vec<String> = module.split("::").map(str::to_owned).collect();
            p.pop();
            p
        };
        let mut uses: Vec<Vec<String>> = paths_after(&code, "crate::");
        for path in paths_after(&code, "super::") {
            uses.push(parent.iter().cloned().chain(path).collect());
        }
        let edges = graph.entry(module.clone()).or_default();
        for path in uses {
            if let Some(target) = resolve(&modules, &path) {
                if target != *module {
                    edges.entry(target).or_insert_with(|| rel.clone());
                }
            }
        }
    }
    graph
}

fn room_of(module: &str) -> &str {
    module.split("::").next().unwrap()
}

#[test]
fn each_room_uses_only_the_rooms_below_it() {
    let graph = module_graph();
    let rank = |room: &str| {
        ROOMS.iter().position(|r| *r == room).unwrap_or_else(|| {
            panic!("{room} is a room not in ROOMS: give it its layer (and ARCHITECTURE.md)")
        })
    };
    let mut seen = BTreeSet::new();
    for (module, uses) in &graph {
        seen.insert(room_of(module));
        for (target, file) in uses {
            let (from, to) = (room_of(module), room_of(target));
            assert!(
                rank(to) <= rank(from),
                "room {from} uses room {to} (src/{} uses {target}), but {to} is above it: a \
                 room may only use the rooms below it ({ROOMS:?})",
                file.display()
            );
        }
    }
    assert_eq!(seen.len(), ROOMS.len(), "every room has modules: {seen:?}");
}

#[test]
fn no_module_leads_back_to_itself() {
    let graph = module_graph();
    assert!(graph.contains_key("rows::row") && graph.contains_key("kafka::router"));
    for (module, uses) in &graph {
        for (next, file) in uses {
            if let Some(back) = path(&graph, next, module, &[]) {
                panic!(
                    "import circle: {module} uses {next} (in src/{}), and {} leads back",
                    file.display(),
                    back.join(" → ")
                );
            }
        }
    }
}

#[test]
fn the_checker_sees_uses_and_ignores_comments_and_tests() {
    let text = "// crate::ignored\nuse crate::a::b;\nuse crate::{B, c::d};\n\
                use super::{e, f::G};\n#[cfg(test)]\nmod tests {\n    fn t() { crate::t::x(); }\n}\n\
                fn f() { crate::h::i(); }\n";
    let code = code(text);
    assert_eq!(
        paths_after(&code, "crate::"),
        [vec!["a", "b"], vec!["B"], vec!["c", "d"], vec!["h", "i"]]
    );
    assert_eq!(paths_after(&code, "super::"), [vec!["e"], vec!["f", "G"]]);
    let modules: BTreeSet<String> = ["a", "c", "c::d"].map(str::to_owned).into();
    let p = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(resolve(&modules, &p("c::d::X")).as_deref(), Some("c::d"));
    assert_eq!(resolve(&modules, &p("a::b")).as_deref(), Some("a"));
    assert_eq!(resolve(&modules, &p("Part")), None);
    assert_eq!(module_of(Path::new("bench/mod.rs")), "bench");
    assert_eq!(module_of(Path::new("rows/batch.rs")), "rows::batch");
}
