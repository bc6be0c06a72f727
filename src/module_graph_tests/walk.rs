//! What both packages' import-circle tests (`src/module_graph_tests.rs` and
//! `kafka/src/module_graph_tests.rs`, which includes this file by path) need from a source
//! tree: its files, their code without the inline test module, and a path through a graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`.
pub(super) fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
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
/// `pub(crate) mod tests {`, braces counted).
pub(super) fn without_test_module(text: &str) -> String {
    let Some((start, len)) = [
        "#[cfg(test)]\nmod tests {",
        "#[cfg(test)]\npub(crate) mod tests {",
    ]
    .iter()
    .find_map(|m| text.find(m).map(|i| (i, m.len()))) else {
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

/// A path from `from` to `to` in `graph` that takes no edge `skip` names, if there is one.
pub(super) fn path(
    graph: &BTreeMap<String, BTreeMap<String, PathBuf>>,
    from: &str,
    to: &str,
    skip: &[(&str, &str)],
) -> Option<Vec<String>> {
    let mut seen = BTreeSet::new();
    let mut stack = vec![vec![from.to_owned()]];
    while let Some(trail) = stack.pop() {
        let last = trail.last().unwrap();
        if last == to && trail.len() > 1 {
            return Some(trail);
        }
        if !seen.insert(last.clone()) {
            continue;
        }
        for next in graph.get(last).into_iter().flat_map(BTreeMap::keys) {
            if skip.contains(&(last.as_str(), next.as_str())) {
                continue;
            }
            let mut longer = trail.clone();
            longer.push(next.clone());
            stack.push(longer);
        }
    }
    None
}
