//! The changelog's fragments: each change is one file in `changelog.d/`, named
//! `<kind>-<topic>.md` with kind `added`, `changed`, `deprecated`, `fixed` or `security`,
//! holding one line of at most [`MAX_LINE`] characters (a leading `- ` is allowed). The
//! `[Unreleased]` section of `CHANGELOG.md`, below the line [`MARKER`] and up to the next
//! `## ` heading, is exactly those fragments folded: a `### Kind` heading per kind present,
//! in Keep a Changelog's order, each fragment a bullet, in file-name order. A second
//! writer of the same section cannot drift from the fragments, and two changes landed in
//! parallel never touch the same lines.

use std::fmt::Write as _;
use std::path::Path;

/// The folder of fragments, at the repository root.
pub const FOLDER: &str = "changelog.d";

/// The line of `CHANGELOG.md` after which the folded fragments stand.
pub const MARKER: &str = "<!-- folded from changelog.d/ -->";

/// Set, the check writes the folded section instead of failing.
pub const WRITE: &str = "CHANGELOG_FOLD_WRITE";

/// The longest fragment, in characters.
pub const MAX_LINE: usize = 400;

/// Keep a Changelog's kinds, in its order, with their headings.
const KINDS: [(&str, &str); 5] = [
    ("added", "Added"),
    ("changed", "Changed"),
    ("deprecated", "Deprecated"),
    ("fixed", "Fixed"),
    ("security", "Security"),
];

/// One change: its file's name, its kind and its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// The file's name (`fixed-probe-backlog.md`).
    pub file: String,
    /// Its kind (`fixed`).
    pub kind: &'static str,
    /// The change, without a leading `- `.
    pub text: String,
}

/// Reads one fragment.
///
/// # Errors
/// A name without a known kind, more than one line, an empty line or one too long: each
/// naming the file and the fix.
pub fn fragment(file: &str, body: &str) -> Result<Fragment, String> {
    let kind = KINDS
        .iter()
        .find(|(k, _)| {
            file.strip_prefix(k)
                .is_some_and(|rest| rest.starts_with('-') && rest.ends_with(".md"))
        })
        .map(|(k, _)| *k)
        .ok_or_else(|| {
            format!(
                "{FOLDER}/{file}: a fragment is named <kind>-<topic>.md with kind one of \
                 added, changed, deprecated, fixed, security"
            )
        })?;
    let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
    let [line] = lines.as_slice() else {
        return Err(format!(
            "{FOLDER}/{file}: a fragment is one line (it has {}): one change per file",
            lines.len()
        ));
    };
    let text = line.trim().trim_start_matches("- ").trim().to_owned();
    let chars = text.chars().count();
    if chars > MAX_LINE {
        return Err(format!(
            "{FOLDER}/{file}: {chars} characters, over {MAX_LINE}: say what a user needs to \
             know; the detail goes in the commit body or the issue"
        ));
    }
    Ok(Fragment {
        file: file.to_owned(),
        kind,
        text,
    })
}

/// The `[Unreleased]` section's body for `fragments` (sorted by file name here).
pub fn fold(fragments: &[Fragment]) -> String {
    let mut sorted: Vec<&Fragment> = fragments.iter().collect();
    sorted.sort_by(|a, b| a.file.cmp(&b.file));
    let mut out = String::new();
    for (kind, heading) in KINDS {
        let of_kind: Vec<&&Fragment> = sorted.iter().filter(|f| f.kind == kind).collect();
        if of_kind.is_empty() {
            continue;
        }
        let _ = write!(out, "\n### {heading}\n\n");
        for f in of_kind {
            let _ = writeln!(out, "- {}", f.text);
        }
    }
    out
}

/// The section of `changelog` below [`MARKER`], up to the next `## ` heading.
///
/// # Errors
/// When the marker is missing.
pub fn folded_section(changelog: &str) -> Result<String, String> {
    let start = changelog.find(MARKER).ok_or_else(|| {
        format!("CHANGELOG.md has no line {MARKER} under ## [Unreleased]: put it back")
    })?;
    let rest = &changelog[start + MARKER.len()..];
    let rest = rest.strip_prefix('\n').unwrap_or(rest);
    let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
    Ok(rest[..end].trim().to_owned())
}

/// Checks the repository at `root`: every fragment well formed, and `CHANGELOG.md`'s
/// `[Unreleased]` section their fold.
///
/// # Panics
/// On the first disagreement, with the section to paste (with [`WRITE`] set, a section that
/// disagrees is written instead).
pub fn check(root: &Path) {
    let mut fragments = Vec::new();
    let mut problems = Vec::new();
    if let Ok(entries) = std::fs::read_dir(root.join(FOLDER)) {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name == "README.md" || name.starts_with('.') {
                continue;
            }
            let body = std::fs::read_to_string(entry.path()).unwrap_or_default();
            match fragment(&name, &body) {
                Ok(f) => fragments.push(f),
                Err(e) => problems.push(e),
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    let changelog =
        std::fs::read_to_string(root.join("CHANGELOG.md")).expect("CHANGELOG.md at the root");
    let have = folded_section(&changelog).unwrap_or_else(|e| panic!("{e}"));
    let want = fold(&fragments).trim().to_owned();
    if have != want && std::env::var_os(WRITE).is_some() {
        let at = changelog.find(MARKER).map_or(0, |i| i + MARKER.len());
        let rest = &changelog[at..];
        let end = rest.find("\n## ").map_or(rest.len(), |i| i + 1);
        let written = format!("{}\n\n{want}\n\n{}", &changelog[..at], &rest[end..]);
        std::fs::write(root.join("CHANGELOG.md"), written).expect("CHANGELOG.md written");
        return;
    }
    assert!(
        have == want,
        "CHANGELOG.md's [Unreleased] section is not the fold of {FOLDER}/: paste this below \
         the line {MARKER} (or run the check again with {WRITE}=1 to write it):\n{want}\n"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fragment_is_named_by_its_kind_and_is_one_short_line() {
        let f = fragment("fixed-probe.md", "- Probes answer.\n").unwrap();
        assert_eq!((f.kind, f.text.as_str()), ("fixed", "Probes answer."));
        assert!(fragment("misc-x.md", "a")
            .unwrap_err()
            .contains("<kind>-<topic>.md"));
        assert!(fragment("added.md", "a")
            .unwrap_err()
            .contains("<kind>-<topic>.md"));
        assert!(fragment("added-x.md", "a\nb\n")
            .unwrap_err()
            .contains("one line"));
        assert!(fragment("added-x.md", "\n")
            .unwrap_err()
            .contains("one line"));
        let long = "x".repeat(MAX_LINE + 1);
        assert!(fragment("added-x.md", &long).unwrap_err().contains("401"));
    }

    #[test]
    fn fragments_fold_by_kind_in_order_then_by_name() {
        let fs = [
            fragment("security-b.md", "S").unwrap(),
            fragment("added-b.md", "B").unwrap(),
            fragment("added-a.md", "A").unwrap(),
        ];
        assert_eq!(
            fold(&fs),
            "\n### Added\n\n- A\n- B\n\n### Security\n\n- S\n"
        );
    }

    #[test]
    fn the_section_runs_from_the_marker_to_the_next_release() {
        let log = format!("# C\n\n## [Unreleased]\n\n{MARKER}\n\n### Added\n\n- A\n\n## [0.1.0]\n");
        assert_eq!(folded_section(&log).unwrap(), "### Added\n\n- A");
        assert!(folded_section("# C\n").unwrap_err().contains(MARKER));
    }
}
