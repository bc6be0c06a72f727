//! No hand-written Markdown page over [`MAX_LINES`] lines or with a line over
//! [`MAX_LINE_CHARS`] characters: a reference page holds the current table and how to reproduce
//! it, split by question when it grows; a long table cell becomes a list item.
//!
//! The pages are those [`markdown_files`] lists (the log folder and `CHANGELOG.md` are records,
//! not reference), less the pages a test writes ([`GENERATED`]).

use std::path::Path;

use crate::markdown::markdown_files;

/// The most lines a hand-written page may have.
pub const MAX_LINES: usize = 600;

/// The most characters a line of a hand-written page may have.
pub const MAX_LINE_CHARS: usize = 400;

/// Pages rendered from data by a test (`docs/caps.md` from `docs/caps.toml`): their rows are
/// the data's.
pub const GENERATED: &[&str] = &["docs/caps.md"];

/// What is wrong in `pages` (each a path relative to the root and its text): each page over
/// [`MAX_LINES`] lines, and each line over [`MAX_LINE_CHARS`] characters, named with the fix.
pub fn over<P: AsRef<Path>, T: AsRef<str>>(pages: &[(P, T)]) -> Vec<String> {
    let mut found = Vec::new();
    for (path, text) in pages {
        let (path, text) = (path.as_ref(), text.as_ref());
        if GENERATED.iter().any(|g| path == Path::new(g)) {
            continue;
        }
        let lines = text.lines().count();
        if lines > MAX_LINES {
            found.push(format!(
                "{} has {lines} lines, more than {MAX_LINES}: split it by question into pages \
                 of its folder, and link them",
                path.display()
            ));
        }
        for (n, line) in text.lines().enumerate() {
            let chars = line.chars().count();
            if chars > MAX_LINE_CHARS {
                found.push(format!(
                    "{}:{}: {chars} characters, more than {MAX_LINE_CHARS}: wrap it (a table \
                     row that long reads better as a list item)",
                    path.display(),
                    n + 1
                ));
            }
        }
    }
    found.sort();
    found
}

/// Checks every hand-written page under `root` (the repository's root).
///
/// # Panics
/// With each page or line past its limit and how to fix it.
pub fn check(root: &Path) {
    let pages: Vec<_> = markdown_files(root)
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(root.join(&p)).ok()?;
            Some((p, text))
        })
        .collect();
    assert!(pages.len() > 10, "only {} pages found", pages.len());
    let found = over(&pages);
    assert!(
        found.is_empty(),
        "pages past their size:\n{}",
        found.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_page_and_a_long_line_are_named_and_generated_pages_are_not() {
        let long = "a line\n".repeat(MAX_LINES + 1);
        let wide = format!("short\n{}\n", "x".repeat(MAX_LINE_CHARS + 1));
        let just = format!("{}\n", "é".repeat(MAX_LINE_CHARS));
        let pages = [
            ("docs/long.md", long.as_str()),
            ("docs/wide.md", wide.as_str()),
            ("docs/just.md", just.as_str()),
            ("docs/caps.md", wide.as_str()),
        ];
        let found = over(&pages);
        assert_eq!(found.len(), 2, "{found:?}");
        assert!(
            found[0].starts_with("docs/long.md has 601 lines"),
            "{found:?}"
        );
        assert!(
            found[1].starts_with("docs/wide.md:2: 401 characters"),
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
