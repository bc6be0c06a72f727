//! The builder stage copies only what cargo reads to build the sink, not the whole context
//! (where a user's keys or environment files may lie): its `COPY` lines, copied into an empty
//! folder, must be a workspace cargo loads with the lockfile as it is, and must hold every file
//! the sink's crates include at build time.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{read, repo_root};

/// The sources of the builder stage's `COPY` lines (not `COPY --from`), each checked to land at
/// the same relative path in the image's `/src`.
fn builder_copies(containerfile: &str) -> Vec<String> {
    let mut in_builder = false;
    let mut sources = Vec::new();
    for line in containerfile.lines().map(str::trim) {
        if line.starts_with("FROM ") {
            in_builder = line.ends_with(" AS builder");
            continue;
        }
        let Some(args) = line.strip_prefix("COPY ").filter(|_| in_builder) else {
            continue;
        };
        assert!(!args.starts_with("--"), "a flag in the builder's {line:?}");
        let words: Vec<&str> = args.split_whitespace().collect();
        let (dest, srcs) = words.split_last().expect("COPY SRC... DEST");
        assert_ne!(
            *dest, ".",
            "the builder copies the whole context again: {line:?}"
        );
        for src in srcs {
            let parent = Path::new(src)
                .parent()
                .map(|p| format!("{}/", p.display()))
                .filter(|p| p != "/")
                .unwrap_or_else(|| "./".to_owned());
            // A folder copied to its own name, or files copied into their own folder.
            assert!(
                *dest == *src || *dest == parent,
                "{line:?}: {src} does not land at its own path (the workspace's layout)"
            );
            sources.push((*src).to_owned());
        }
    }
    assert!(!sources.is_empty(), "no COPY in the builder stage");
    sources
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() == "target" {
                continue;
            }
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap_or_else(|e| panic!("{}: {e}", from.display()));
    }
}

/// Every `include_str!`/`include_bytes!` path of a crate's code outside its tests: files named
/// `*_tests.rs`, the `test_util`/`test_support` modules, and a file's lines from its inline
/// `#[cfg(test)] mod … {` on (an inline test module closes a file).
fn build_includes(src: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(src).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_dir() {
            if name != "test_util" {
                build_includes(&path, out);
            }
            continue;
        }
        if !name.ends_with(".rs") || name.ends_with("_tests.rs") || name == "test_support.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let tests_start = lines
            .windows(2)
            .position(|w| {
                w[0].trim() == "#[cfg(test)]" && w[1].contains("mod ") && w[1].ends_with('{')
            })
            .unwrap_or(lines.len());
        for line in &lines[..tests_start] {
            for mac in ["include_str!(\"", "include_bytes!(\""] {
                if let Some(rest) = line.split(mac).nth(1) {
                    let rel = rest.split('"').next().unwrap();
                    out.push(path.parent().unwrap().join(rel));
                }
            }
        }
    }
}

#[test]
fn the_builder_copies_what_the_build_reads_and_no_more() {
    let root = repo_root();
    let sources = builder_copies(&read("kafka/Containerfile"));
    for never in ["tests", "docs", "deploy", ".ci", "changelog.d"] {
        assert!(
            !sources.iter().any(|s| s == never),
            "the builder copies {never}/"
        );
    }
    let ctx = tempfile::tempdir().unwrap();
    for src in &sources {
        copy_tree(&root.join(src), &ctx.path().join(src));
    }
    // The workspace loads (every member's manifest and the targets they name) and resolves
    // from the lockfile as it is, with nothing to download: what `--locked` needs.
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args(["fetch", "--offline", "--locked"])
        .current_dir(ctx.path())
        .env("CARGO_TARGET_DIR", ctx.path().join("target"))
        .output()
        .expect("cargo");
    assert!(
        out.status.success(),
        "the builder's context is not a workspace cargo loads:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What the sink's crates include at build time is in it.
    let mut includes = Vec::new();
    for krate in ["src", "cli-support/src", "kafka/src"] {
        build_includes(&root.join(krate), &mut includes);
    }
    assert!(
        includes.iter().any(|p| p.ends_with("README.md")),
        "the root crate's docs include its README: {includes:?}"
    );
    for path in includes {
        let rel = path
            .canonicalize()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let rel = rel.strip_prefix(root.canonicalize().unwrap()).unwrap();
        assert!(
            ctx.path().join(rel).is_file(),
            "the build includes {}, which the builder does not copy",
            rel.display()
        );
    }
}
