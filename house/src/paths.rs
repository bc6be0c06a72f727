//! Every file path the Markdown pages quote exists, so a page cannot go on pointing at a file
//! that moved. The pages are every `*.md` file git knows of but `CHANGELOG.md` (history: it
//! names files as they were when each entry was written); see `markdown_files`.
//!
//! What is a quoted path:
//! * a link or image target (`[text](target)`, `[label]: target`) that is not a URL (`scheme:`)
//!   or an anchor alone: it must exist relative to the page's folder, as GitHub resolves it;
//! * a word of a code span (in prose, tables and headings), or of a command line in a shell
//!   code block (`sh`, `bash`, `console` or no language; with `$ ` prompts, only the prompted
//!   lines, so printed output is not read; comments dropped), that looks like a relative path:
//!   letters, digits, `_ . - /` only, with a `/`, or (in a code span) ending in `.rs`. Quotes,
//!   brackets and trailing punctuation around it, a `KEY=` or `--flag=` before it, a
//!   `#anchor` and a `:LINE` (`:LINE:COL`, `:FIRST-LAST`) after it are not part of it.
//!
//! Not paths of this repository, so not checked: URLs; absolute paths and `~/…`, `$VAR/…`
//! (the user's machine: `/etc/…`, `~/.snowflake/…`); a bare name (`profile.json`,
//! `rsa_key.p8`: the user's files) unless it ends in `.rs`; words with glob or placeholder
//! characters (`*`, `<DIR>`, `{id}`, `…`); `target/…` (build output); `src/main/…` and
//! `src/test/…` (the Maven layout of the Java projects the pages cite).
//!
//! Where a path is looked for: in the page's folder and at the repository root, nowhere else
//! (a page about the sink says `kafka/src/sink/mod.rs`, not `sink/mod.rs`; one in
//! `kafka/docs/` says `../src/…` or `kafka/src/…`). A path is ours when its first folder
//! exists in one of those two places, when it ends in `.rs`, or when a file or folder of the
//! repository ends with it (`sink/mod.rs`, `rows/`); then it must exist in one of the two,
//! unless the paragraph named another GitHub repository before it
//! (`snowflakedb/snowflake-connector-python`, `src/snowflake/connector/`): then a path that is
//! not here is that repository's. The failure names the repository's paths it may stand for.
//! Other paths are another project's (`records/SnowflakeSinkRecord.java`, `text/html`, `MB/s`).
//! A bare file name ending in `.rs` (`batch.rs`, no folder) must be the name of one of the
//! repository's Rust files.

use std::path::{Path, PathBuf};

use crate::markdown::{blocks, code_spans, markdown_files, repository_files, Block};

/// Where a quoted word was found: a code span, or a command line of a code block.
#[derive(Clone, Copy, PartialEq)]
enum Found {
    Span,
    Command,
}

/// The repository's files and folders, to look paths up in.
struct Repo {
    root: PathBuf,
    /// Every file and folder of the repository, relative to its root (`/`-separated).
    paths: Vec<String>,
}

impl Repo {
    fn new(root: PathBuf) -> Self {
        let mut paths = std::collections::BTreeSet::new();
        for file in repository_files(&root) {
            for part in file.ancestors().filter(|p| !p.as_os_str().is_empty()) {
                paths.insert(part.to_string_lossy().replace('\\', "/"));
            }
        }
        Self {
            root,
            paths: paths.into_iter().collect(),
        }
    }

    fn exists(&self, base: &Path, path: &str) -> bool {
        self.root.join(base).join(path).exists()
    }

    /// The repository's paths that end with `path` (a folder's trailing `/` aside).
    fn ending_with(&self, path: &str) -> Vec<&str> {
        let tail = format!("/{}", path.trim_end_matches('/'));
        self.paths
            .iter()
            .filter(|p| p.ends_with(&tail))
            .map(String::as_str)
            .collect()
    }
}

/// The path a quoted word stands for, if it looks like a relative path of ours (module docs).
fn path_of(word: &str, found: Found) -> Option<String> {
    let word = word.trim_matches(|c: char| "\"'`(),;:!".contains(c));
    let word = word.trim_end_matches('.');
    let word = match word.split_once('=') {
        Some((key, value)) if !key.contains('/') => value,
        _ => word,
    };
    if word.contains("://")
        || word.contains("...")
        || word.starts_with(['/', '~', '$', '-'])
        || word.contains(['*', '?', '<', '>', '{', '}', '[', ']', '…', '|'])
    {
        return None;
    }
    let word = word.split('#').next().unwrap_or_default();
    // file.rs:120, file.rs:120:5, file.rs:120-140
    let word = match word.split_once(':') {
        Some((path, line))
            if line
                .chars()
                .all(|c| c.is_ascii_digit() || c == ':' || c == '-') =>
        {
            path
        }
        _ => word,
    };
    let path_like = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_.-/".contains(c))
        && word.chars().any(|c| c.is_ascii_alphanumeric());
    let ours = word.contains('/') || (found == Found::Span && word.ends_with(".rs"));
    let elsewhere = ["target/", "src/main/", "src/test/"]
        .iter()
        .any(|p| word.starts_with(p));
    (path_like && ours && !elsewhere).then(|| word.to_owned())
}

/// Why a quoted path of ours is missing: `Err` with the reason, `Ok(true)` when it exists,
/// `Ok(false)` when it is not ours (module docs).
fn look_up(repo: &Repo, bases: &[PathBuf], path: &str) -> Result<bool, String> {
    if !path.contains('/') {
        if !path.ends_with(".rs") {
            return Ok(false);
        }
        let rust =
            |p: &&str| p.ends_with(".rs") && (*p == path || p.ends_with(&format!("/{path}")));
        return match repo.paths.iter().map(String::as_str).any(|p| rust(&p)) {
            true => Ok(true),
            false => Err("no Rust file of the repository has this name".to_owned()),
        };
    }
    if bases.iter().any(|b| repo.exists(b, path)) {
        return Ok(true);
    }
    let first = path.split('/').next().unwrap_or_default();
    let meant = repo.ending_with(path);
    let ours = bases.iter().any(|b| repo.exists(b, first)) || path.ends_with(".rs");
    if !ours && meant.is_empty() {
        return Ok(false);
    }
    let places: Vec<String> = bases
        .iter()
        .map(|b| format!("{}/", Path::new(".").join(b).display()).replace(".//", "./"))
        .collect();
    let mut why = format!("no such file from {}", places.join(" nor "));
    if !meant.is_empty() {
        let shown: Vec<String> = meant.iter().take(3).map(|m| format!("`{m}`")).collect();
        why.push_str(&format!(" (the repository has {})", shown.join(", ")));
    }
    Err(why)
}

/// Whether a word names another GitHub repository, `owner/name`: two parts, the owner not a
/// folder here nor a media type's (`text/html`), the name longer than a unit's (`MB/s`).
fn names_repository(repo: &Repo, bases: &[PathBuf], word: &str) -> bool {
    let word = word.trim_matches(|c: char| "\"'`(),;:.".contains(c));
    let Some((owner, name)) = word.split_once('/') else {
        return false;
    };
    let part = |p: &str| {
        p.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    };
    let media = [
        "text",
        "application",
        "image",
        "audio",
        "video",
        "multipart",
    ];
    part(owner)
        && part(name)
        && !owner.is_empty()
        && name.len() > 2
        && !media.contains(&owner)
        && !bases.iter().any(|b| repo.exists(b, owner))
        && !name.ends_with(".rs")
        && repo.ending_with(word).is_empty()
}

/// The words of a shell code block's command lines.
fn command_words(lines: &[(usize, String)]) -> Vec<(usize, String)> {
    let prompted = lines.iter().any(|(_, l)| l.trim_start().starts_with("$ "));
    let mut out = Vec::new();
    for (n, line) in lines {
        let line = line.trim_start();
        let command = match line.strip_prefix("$ ") {
            Some(c) => c,
            None if prompted => continue,
            None => line,
        };
        for word in command.split_whitespace() {
            if word.starts_with('#') {
                break;
            }
            out.push((*n, word.to_owned()));
        }
    }
    out
}

/// The link and image targets of a paragraph (`[text](target)`, `![alt](target)`, and a
/// reference definition `[label]: target`), outside its code spans, with their lines.
fn links(paragraph: &str, first_line: usize) -> Vec<(String, usize)> {
    let mut text = paragraph.to_owned();
    for span in code_spans(paragraph, first_line) {
        let blank: String = paragraph[span.start..span.end]
            .chars()
            .map(|c| match c {
                '\n' => "\n".to_owned(),
                c => " ".repeat(c.len_utf8()),
            })
            .collect();
        text.replace_range(span.start..span.end, &blank);
    }
    let mut out = Vec::new();
    let line_of = |at: usize| first_line + text[..at].matches('\n').count();
    let mut from = 0;
    while let Some(k) = text[from..].find("](") {
        let start = from + k + 2;
        let end = text[start..]
            .find([')', ' ', '\n'])
            .map_or(text.len(), |e| start + e);
        out.push((text[start..end].to_owned(), line_of(start)));
        from = end;
    }
    for (i, line) in text.lines().enumerate() {
        let t = line.trim_start();
        if let Some(rest) = t.strip_prefix('[') {
            if let Some((label, target)) = rest.split_once("]:") {
                if !label.contains(']') {
                    if let Some(target) = target.split_whitespace().next() {
                        out.push((target.to_owned(), first_line + i));
                    }
                }
            }
        }
    }
    out
}

/// Checks every Markdown page of the repository at `root` (see the module docs).
///
/// # Panics
///
/// Listing each quoted path that does not exist, or if fewer than `min_checked` paths were
/// found (a check that read nothing must not pass).
pub fn check_paths(root: &Path, min_checked: usize) {
    let repo = Repo::new(root.to_path_buf());
    let pages = markdown_files(&repo.root);
    assert!(
        pages.iter().any(|p| p == Path::new("README.md")),
        "no Markdown files found under {}",
        repo.root.display()
    );
    let mut checked = 0;
    let mut failures = Vec::new();
    for page in &pages {
        let text = std::fs::read_to_string(repo.root.join(page)).unwrap();
        let dir = page.parent().unwrap_or(Path::new("")).to_path_buf();
        let mut bases = vec![dir.clone(), PathBuf::new()];
        bases.dedup();
        for block in blocks(&text) {
            let mut words: Vec<(usize, String, Found)> = Vec::new();
            match &block {
                Block::Heading { text, line, .. } => {
                    let spans = code_spans(text, *line);
                    words.extend(spans.into_iter().map(|s| (s.line, s.text, Found::Span)));
                }
                Block::Paragraph { text, line } => {
                    for (target, n) in links(text, *line) {
                        let target = target.trim_start_matches('<').trim_end_matches('>');
                        let scheme = target
                            .split_once(':')
                            .is_some_and(|(s, _)| !s.is_empty() && !s.contains(['/', '.']));
                        let file = target.split(['#', '?']).next().unwrap_or_default();
                        if scheme || file.is_empty() {
                            continue;
                        }
                        checked += 1;
                        if !repo.exists(&dir, file) {
                            failures.push(format!(
                                "{}:{n}: link to {target}: no {}",
                                page.display(),
                                dir.join(file).display()
                            ));
                        }
                    }
                    for span in code_spans(text, *line) {
                        words.push((span.line, span.text, Found::Span));
                    }
                }
                Block::Code { lang, lines } => {
                    if ["", "sh", "bash", "shell", "console"].contains(&lang.as_str()) {
                        words.extend(
                            command_words(lines)
                                .into_iter()
                                .map(|(n, w)| (n, w, Found::Command)),
                        );
                    }
                }
            }
            // Whether the block has named another repository (`snowflakedb/snowflake-connector-python`,
            // `src/snowflake/connector/`): a missing path after it is that repository's.
            let mut other_repository = false;
            for (n, span, found) in words {
                for word in span.split_whitespace() {
                    other_repository |= names_repository(&repo, &bases, word);
                    let Some(path) = path_of(word, found) else {
                        continue;
                    };
                    match look_up(&repo, &bases, &path) {
                        Ok(false) => {}
                        Ok(true) => checked += 1,
                        Err(_) if other_repository => {}
                        Err(why) => {
                            checked += 1;
                            failures.push(format!("{}:{n}: `{path}`: {why}", page.display()));
                        }
                    }
                }
            }
        }
    }
    println!(
        "{checked} quoted paths checked in {} Markdown files",
        pages.len()
    );
    assert!(checked >= min_checked, "only {checked} quoted paths found");
    assert!(
        failures.is_empty(),
        "{} quoted file paths do not exist (fix the page; what counts as a path: \
         house/src/paths.rs):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::check_paths;
    use crate::scratch::{panic_message, Tree};

    /// The check passes on pages whose quoted paths exist and fails naming the one that does
    /// not.
    #[test]
    fn the_check_names_a_quoted_path_that_does_not_exist() {
        let mut files = vec![
            ("Cargo.toml", ""),
            ("src/lib.rs", ""),
            (
                "docs/guide.md",
                "See `src/lib.rs` and [the guide](guide.md).\n",
            ),
            (
                "README.md",
                "Run `cargo test` (`src/lib.rs`, `docs/guide.md`).\n",
            ),
        ];
        let tree = Tree::new("paths-ok", &files);
        assert_eq!(panic_message(|| check_paths(&tree.0, 3)), None);
        files[3].1 = "Run `cargo test` (`src/lib.rs`, `src/main.rs`).\n";
        let tree = Tree::new("paths-bad", &files);
        let message = panic_message(|| check_paths(&tree.0, 1)).expect("the check passed");
        assert!(
            message.contains("README.md:1: `src/main.rs`: no such file"),
            "{message}"
        );
        assert!(!message.contains("src/lib.rs"), "{message}");
    }

    /// A page in a package's folder, or about one, quotes the package's files from its own
    /// folder or the repository root: `src/sink/mod.rs` in `kafka/docs/guide.md` is not
    /// `kafka/src/sink/mod.rs`, nor `sink/mod.rs` in the root's README (which is no GitHub
    /// repository's name either); the failure names the file meant.
    #[test]
    fn a_path_resolves_from_the_pages_folder_or_the_root_only() {
        let mut files = vec![
            ("src/lib.rs", ""),
            ("kafka/src/sink/mod.rs", ""),
            ("kafka/src/lib.rs", ""),
            (
                "kafka/docs/guide.md",
                "`../src/lib.rs`, `kafka/src/sink/mod.rs`, `../../src/lib.rs`\n",
            ),
            (
                "README.md",
                "## The sink (`kafka/`)\n\n`kafka/src/sink/` and `text/html`.\n",
            ),
        ];
        let tree = Tree::new("paths-strict-ok", &files);
        assert_eq!(panic_message(|| check_paths(&tree.0, 4)), None);
        files[3].1 = "`src/sink/mod.rs`\n";
        files[4].1 = "## The sink (`kafka/`)\n\n`sink/mod.rs` and `sink/`.\n";
        let tree = Tree::new("paths-strict-bad", &files);
        let message = panic_message(|| check_paths(&tree.0, 1)).expect("the check passed");
        for line in [
            "kafka/docs/guide.md:1: `src/sink/mod.rs`: no such file from ./kafka/docs/ nor ./ \
             (the repository has `kafka/src/sink/mod.rs`)",
            "README.md:3: `sink/mod.rs`: no such file from ./ (the repository has \
             `kafka/src/sink/mod.rs`)",
            "README.md:3: `sink/`: no such file from ./ (the repository has `kafka/src/sink`)",
        ] {
            assert!(message.contains(line), "{line} not in {message}");
        }
    }
}
