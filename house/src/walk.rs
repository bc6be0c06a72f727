//! Reading a source tree for the import-circle tests: its files, their code without comments
//! and test code, and the module paths that code names. [`crate::graph`] builds the graph from
//! these, for every package's `module_graph_tests.rs` (the SDK's, the sink's, the emulator's,
//! the apps', `load`'s and `cli-support`'s).

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
/// The workspace's root: the nearest folder at or above `manifest_dir` whose `Cargo.toml` has a
/// `[workspace]` table (`kafka/lab/` is two folders down).
///
/// # Panics
/// When no folder above has one.
pub fn workspace_root(manifest_dir: &Path) -> PathBuf {
    manifest_dir
        .ancestors()
        .find(|dir| {
            std::fs::read_to_string(dir.join("Cargo.toml"))
                .is_ok_and(|t| t.lines().any(|l| l.trim() == "[workspace]"))
        })
        .unwrap_or_else(|| panic!("no workspace above {}", manifest_dir.display()))
        .to_path_buf()
}

/// The workspace members the root manifest at `root` lists (`members = [...]`), as written:
/// `"."`, `"kafka"`, `"kafka/lab"`.
///
/// # Panics
/// When the root manifest cannot be read or lists no members.
pub fn members(root: &Path) -> Vec<String> {
    let top = std::fs::read_to_string(root.join("Cargo.toml"))
        .unwrap_or_else(|e| panic!("{}: {e}", root.join("Cargo.toml").display()));
    top.split_once("members = [")
        .and_then(|(_, rest)| rest.split_once(']'))
        .map(|(list, _)| list)
        .expect("the root manifest lists its members")
        .split(',')
        .map(|m| m.trim().trim_matches('"').to_owned())
        .filter(|m| !m.is_empty())
        .collect()
}

pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// `text` without its inline test module (`#[cfg(test)]` then `mod tests {` or
/// `pub mod tests {`, braces counted).
fn without_test_module(text: &str) -> String {
    let Some((start, len)) = ["#[cfg(test)]\nmod tests {", "#[cfg(test)]\npub mod tests {"]
        .iter()
        .find_map(|m| text.find(m).map(|i| (i, m.len())))
    else {
        return text.to_owned();
    };
    let mut depth = 0usize;
    for (i, c) in text[start + len - 1..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            _ => {}
        }
        if depth == 0 {
            let end = start + len - 1 + i + 1;
            return format!("{}{}", &text[..start], &text[end..]);
        }
    }
    text[..start].to_owned()
}

/// `text` without the items `#[cfg(test)]` (or `#[cfg(all(test, …))]`) and `#[cfg(doc)]`
/// mark: an item ending in `;` on its line, else its braces counted.
fn without_test_items(text: &str) -> String {
    let mut out = String::new();
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        let attr = line.trim_start();
        let marked = attr.starts_with("#[cfg(test)]")
            || attr.starts_with("#[cfg(all(test")
            || attr.starts_with("#[cfg(doc)]");
        if !marked {
            out.push_str(line);
            out.push('\n');
            continue;
        }
        let mut depth = 0usize;
        let mut opened = false;
        for item in lines.by_ref() {
            let item = item.trim_start();
            if item.starts_with("#[") {
                continue; // more attributes of the same item
            }
            for c in item.chars() {
                match c {
                    '{' => {
                        depth += 1;
                        opened = true;
                    }
                    '}' => depth = depth.saturating_sub(1),
                    _ => {}
                }
            }
            if (opened && depth == 0) || (!opened && item.trim_end().ends_with(';')) {
                break;
            }
        }
    }
    out
}

/// The code of a file without comments, its inline test module and other test (and
/// `#[cfg(doc)]`) items.
pub fn code(text: &str) -> String {
    without_test_items(&without_test_module(text))
        .lines()
        .map(str::trim_start)
        .filter(|l| !l.starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The identifier `s` starts with (empty: none).
pub fn ident(s: &str) -> &str {
    let end = s
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(s.len());
    &s[..end]
}

/// The paths after `prefix` in `code`, as lists of names: `crate::a::b::C` → `[a, b, C]`,
/// `crate::a::{b::c, D}` → `[a, b, c]` and `[a, D]`; `super::super::x` → `[super, x]`.
pub fn paths_after(code: &str, prefix: &str) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    for (i, _) in code.match_indices(prefix) {
        if code[..i].ends_with(|c: char| c.is_alphanumeric() || c == '_' || c == ':') {
            continue; // `x::crate::`, `supercrate::`, `super::super::`: not a path's start
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
                names.clear();
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
