//! One module style in every package: a module with children is `foo/mod.rs`, never `foo.rs`
//! beside a `foo/` folder (the style most of the workspace used when the rule was set), and no
//! `#[path]` include reaches out of its own package (code shared between packages lives in a
//! package of its own, as these checks do here).
//!
//! The files read are the package's Rust sources in `src/`, `tests/`, `benches/` and
//! `examples/` (and `build.rs`), not a member package's below it.

use std::path::{Component, Path, PathBuf};

use crate::walk::rust_files;

/// The folders of a package whose Rust files are its own.
const FOLDERS: &[&str] = &["src", "tests", "benches", "examples"];

/// What breaks the rules in `files` (each a path relative to the package's folder and its
/// text), one line each: a `foo.rs` beside a `foo/` folder, an `#[path]` include that leaves
/// the package.
pub fn breaks<P: AsRef<Path>, T: AsRef<str>>(files: &[(P, T)]) -> Vec<String> {
    let mut out = Vec::new();
    for (rel, text) in files {
        let rel = rel.as_ref();
        let stem = rel.file_stem().and_then(|s| s.to_str()).unwrap_or("");
        if stem != "mod" && rel.extension().is_some_and(|e| e == "rs") {
            let folder = rel.with_extension("");
            if files.iter().any(|(f, _)| f.as_ref().starts_with(&folder)) {
                out.push(format!(
                    "{} has a folder of children beside it: move it to {}",
                    rel.display(),
                    folder.join("mod.rs").display()
                ));
            }
        }
        for target in path_attributes(text.as_ref()) {
            let dir = rel.parent().unwrap_or(Path::new(""));
            if leaves(&dir.join(&target)) {
                out.push(format!(
                    "{} includes {target} by #[path], outside its package: put what packages \
                     share in a package of its own (house/)",
                    rel.display()
                ));
            }
        }
    }
    out
}

/// The targets of the `#[path = "…"]` attributes of a file's text.
fn path_attributes(text: &str) -> Vec<String> {
    text.lines()
        .filter_map(|line| line.trim_start().strip_prefix("#[path"))
        .filter_map(|rest| rest.split('"').nth(1))
        .map(str::to_owned)
        .collect()
}

/// Whether a relative path climbs above the folder it starts in.
fn leaves(path: &Path) -> bool {
    let mut depth = 0i32;
    for part in path.components() {
        match part {
            Component::ParentDir => depth -= 1,
            Component::Normal(_) => depth += 1,
            _ => return true,
        }
        if depth < 0 {
            return true;
        }
    }
    false
}

/// Checks the package at `manifest_dir` (a package's test passes `env!("CARGO_MANIFEST_DIR")`).
///
/// # Panics
///
/// Listing what breaks the rules, or if the package has no `src/lib.rs` nor `src/main.rs`
/// (nothing was read).
pub fn check_package(manifest_dir: &str) {
    let root = Path::new(manifest_dir);
    let mut paths = Vec::new();
    for folder in FOLDERS {
        if root.join(folder).is_dir() {
            rust_files(&root.join(folder), &mut paths);
        }
    }
    if root.join("build.rs").is_file() {
        paths.push(root.join("build.rs"));
    }
    let files: Vec<(PathBuf, String)> = paths
        .into_iter()
        .map(|p| {
            let text = std::fs::read_to_string(&p).unwrap();
            (p.strip_prefix(root).unwrap().to_path_buf(), text)
        })
        .collect();
    let roots = [Path::new("src/lib.rs"), Path::new("src/main.rs")];
    assert!(
        files.iter().any(|(p, _)| roots.contains(&p.as_path())),
        "no crate root read in {manifest_dir}"
    );
    let found = breaks(&files);
    assert!(
        found.is_empty(),
        "one module style (`foo/mod.rs`), no include outside the package:\n{}",
        found.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_check_finds_a_file_beside_its_folder_and_an_include_from_elsewhere() {
        let mut files = vec![
            (
                "src/lib.rs",
                "mod channel;\n#[path = \"sql_tests.rs\"]\nmod t;\n",
            ),
            ("src/channel/mod.rs", "mod send;\n"),
            (
                "src/channel/send.rs",
                "#[path = \"../x/../y.rs\"]\nmod y;\n",
            ),
            ("tests/it/main.rs", "mod common;\n"),
            ("tests/it/common/mod.rs", ""),
        ];
        assert!(breaks(&files).is_empty(), "{:?}", breaks(&files));
        files[1].0 = "src/channel.rs";
        files.push((
            "tests/it/readme.rs",
            "#[path = \"../../../src/graph.rs\"]\nmod g;\n",
        ));
        assert_eq!(
            breaks(&files),
            [
                "src/channel.rs has a folder of children beside it: move it to src/channel/mod.rs",
                "tests/it/readme.rs includes ../../../src/graph.rs by #[path], outside its \
                 package: put what packages share in a package of its own (house/)",
            ]
        );
    }

    #[test]
    fn this_package_keeps_the_rules() {
        check_package(env!("CARGO_MANIFEST_DIR"));
    }
}
