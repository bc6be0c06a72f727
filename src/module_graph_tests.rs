//! `src/` has no cycle between its top-level modules (its rooms): a room only uses rooms
//! below it. Checked from the sources, cheaply: every `crate::…` path outside comments and
//! test code names the room it depends on (a name re-exported at the crate root counts as
//! the room that defines it).

mod walk;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use walk::{path, rust_files, without_test_module};

/// The one pair of rooms that use each other, on purpose: an `Error` carries the committed
/// `OffsetToken`, and `OffsetToken::new` returns the crate's `Error`.
const ALLOWED: &[(&str, &str)] = &[("error", "offset"), ("offset", "error")];

/// Test and benchmark harnesses, left out: they sit above everything they exercise.
fn is_harness(path: &Path) -> bool {
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
    path.components()
        .any(|c| c.as_os_str().to_string_lossy().ends_with("tests"))
        || name.ends_with("tests.rs")
        || matches!(
            name,
            "test_support.rs" | "test_util.rs" | "testing.rs" | "bench.rs"
        )
}

/// The code of a file without comments, `#[cfg(doc)]` imports and its inline test module.
fn code(text: &str) -> String {
    let text = without_test_module(text);
    let mut out = String::new();
    let mut doc_only = false;
    for line in text.lines() {
        let line = line.trim_start();
        if line.starts_with("//") {
            continue;
        }
        if line.starts_with("#[cfg(doc)]") {
            doc_only = true;
            continue;
        }
        if std::mem::take(&mut doc_only) && line.starts_with("use ") {
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// The names after `crate::` in `code` (`crate::a::b` → `a`, `crate::{A, b::c}` → `A`, `b`).
fn crate_names(code: &str) -> Vec<String> {
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let group = &group[..group.find('}').unwrap_or(group.len())];
            names.extend(group.split(',').map(|n| ident(n.trim())));
        } else {
            names.push(ident(rest));
        }
    }
    names.retain(|n| !n.is_empty());
    names
}

/// Names the crate root re-exports (`pub use room::…::{A, B};`), mapped to their room.
fn root_exports(lib: &str) -> BTreeMap<String, String> {
    let mut map = BTreeMap::new();
    for line in lib.lines() {
        let Some(rest) = line.trim().strip_prefix("pub use ") else {
            continue;
        };
        let room: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        let items = rest.rsplit("::").next().unwrap_or("");
        for name in items.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
            if name.starts_with(|c: char| c.is_ascii_uppercase()) {
                map.insert(name.to_owned(), room.clone());
            }
        }
    }
    map
}

/// Room → rooms it uses, with one file that shows each edge.
fn graph() -> BTreeMap<String, BTreeMap<String, PathBuf>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let exports = root_exports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeMap<String, PathBuf>> = BTreeMap::new();
    for file in files {
        let rel = file.strip_prefix(&src).unwrap().to_path_buf();
        if rel == Path::new("lib.rs") || is_harness(&rel) {
            continue;
        }
        let first = rel
            .components()
            .next()
            .unwrap()
            .as_os_str()
            .to_string_lossy();
        let room = first.trim_end_matches(".rs").to_owned();
        let text = std::fs::read_to_string(&file).unwrap();
        for name in crate_names(&code(&text)) {
            let target = exports.get(&name).cloned().unwrap_or(name);
            if target != room {
                graph
                    .entry(room.clone())
                    .or_default()
                    .entry(target)
                    .or_insert_with(|| rel.clone());
            }
        }
    }
    graph
}

#[test]
fn the_top_level_modules_have_no_cycle() {
    let graph = graph();
    assert!(graph.contains_key("channel") && graph.contains_key("client"));
    for (room, uses) in &graph {
        for (next, file) in uses {
            if ALLOWED.contains(&(room.as_str(), next.as_str())) {
                continue;
            }
            if let Some(back) = path(&graph, next, room, ALLOWED) {
                panic!(
                    "module cycle: {room} uses {next} (in src/{}), and {} leads back; a room \
                     may only use the rooms below it (ARCHITECTURE.md)",
                    file.display(),
                    back.join(" → ")
                );
            }
        }
    }
}

#[test]
fn the_checker_sees_uses_and_ignores_comments_and_tests() {
    let text = "// crate::ignored\n#[cfg(doc)]\nuse crate::DocOnly;\nuse crate::a::b;\n\
                use crate::{B, c::d};\n#[cfg(test)]\nmod tests {\n    fn t() { crate::t::x(); }\n}\n\
                fn f() { crate::e::f(); }\n";
    assert_eq!(crate_names(&code(text)), ["a", "B", "c", "e"]);
}
