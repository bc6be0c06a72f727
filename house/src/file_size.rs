//! No production source file over [`MAX_LINES`] lines: a file that long holds more than one
//! job, and its reader cannot keep it in mind.
//!
//! Production is every `.rs` file of the repository except tests: not under a `tests/`,
//! `benches/` or `examples/` folder, and not a file whose name ends in `tests.rs` (a module's
//! tests moved beside it: `tests.rs`, `schema_tests.rs`, `module_graph_tests.rs`). Tests written
//! inline (`#[cfg(test)] mod tests { … }`) count with their file: move them to such a file when
//! the file grows. `target/` and hidden folders are not read.

use std::path::{Component, Path};

/// The most lines a production source file may have.
pub const MAX_LINES: usize = 700;

/// Whether `path` (relative to the repository's root) is a production source file.
#[must_use]
pub fn production(path: &Path) -> bool {
    let is_rs = path.extension().is_some_and(|e| e == "rs");
    let test_file = path
        .file_name()
        .and_then(|n| n.to_str())
        .is_some_and(|n| n.ends_with("tests.rs"));
    let test_folder = path.components().any(|c| match c {
        Component::Normal(n) => {
            let n = n.to_string_lossy();
            matches!(n.as_ref(), "tests" | "benches" | "examples" | "target") || n.starts_with('.')
        }
        _ => false,
    });
    is_rs && !test_file && !test_folder
}

/// What is wrong in `files` (each a path relative to the root and its text): each production
/// file over [`MAX_LINES`] lines, named with its count and the fix. Empty when all keep it.
pub fn over<P: AsRef<Path>, T: AsRef<str>>(files: &[(P, T)]) -> Vec<String> {
    let mut found: Vec<String> = files
        .iter()
        .filter(|(p, _)| production(p.as_ref()))
        .filter_map(|(p, t)| {
            let lines = t.as_ref().lines().count();
            (lines > MAX_LINES).then(|| {
                format!(
                    "{} has {lines} lines, more than {MAX_LINES}: split it by job, or move its \
                     inline tests to a sibling `*_tests.rs` (`#[cfg(test)] #[path = \"…\"] mod tests;`)",
                    p.as_ref().display()
                )
            })
        })
        .collect();
    found.sort();
    found
}

/// Checks every production source file under `root` (the repository's root).
///
/// # Panics
/// With each file over [`MAX_LINES`] lines and how to fix it, or when `root` cannot be read.
pub fn check(root: &Path) {
    let mut files = Vec::new();
    collect(root, root, &mut files);
    let found = over(&files);
    assert!(
        found.is_empty(),
        "production files over {MAX_LINES} lines:\n{}",
        found.join("\n")
    );
}

/// Every production `.rs` file under `dir`, relative to `root`, with its text.
fn collect(root: &Path, dir: &Path, files: &mut Vec<(std::path::PathBuf, String)>) {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
            .path();
        let rel = path.strip_prefix(root).unwrap_or(&path).to_path_buf();
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned());
        if path.is_dir() {
            let skip = name
                .as_deref()
                .is_some_and(|n| n.starts_with('.') || n == "target");
            if !skip {
                collect(root, &path, files);
            }
        } else if production(&rel) {
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            files.push((rel, text));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_production_file_is_named_and_tests_are_not() {
        let long = "fn f() {}\n".repeat(MAX_LINES + 1);
        let just = "fn f() {}\n".repeat(MAX_LINES);
        let files = [
            ("apps/src/big.rs", long.as_str()),
            ("apps/src/fine.rs", just.as_str()),
            ("apps/src/big_tests.rs", long.as_str()),
            ("apps/src/big/tests.rs", long.as_str()),
            ("apps/tests/it/long.rs", long.as_str()),
            ("kafka/benches/long.rs", long.as_str()),
            ("load/examples/long.rs", long.as_str()),
            ("README.md", long.as_str()),
        ];
        let found = over(&files);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(
            found[0].starts_with("apps/src/big.rs has 701 lines, more than 700"),
            "{found:?}"
        );
    }

    #[test]
    fn this_repository_keeps_the_rule() {
        check(&crate::walk::workspace_root(Path::new(env!(
            "CARGO_MANIFEST_DIR"
        ))));
    }
}
