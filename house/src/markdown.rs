//! What the documentation checks read in a Markdown page: headings, paragraphs (a list item
//! and a table row are paragraphs of their own) with their code spans, and fenced
//! code blocks, each with its line number; and the repository's Markdown files. Read by
//! [`crate::paths`] (file paths) and [`crate::flags`] (the flags of our binaries). Enough of
//! CommonMark for our own pages, not all of it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The append-only log folder (dated runs, review rounds, the changelog's history): pages of
/// record, never reference, so their paths and flags are as they were.
pub const LOG: &str = "docs/log";

/// The Markdown files the checks read, relative to the repository root: every `*.md` file
/// git knows of (tracked, or new and not ignored, so a page is checked before its first
/// commit), else, outside a git checkout, every one below the root but `target/` and hidden
/// directories. Not `CHANGELOG.md` nor the log folder [`LOG`]: they are history, naming files
/// and flags as they were when each entry was written.
pub fn markdown_files(root: &Path) -> Vec<PathBuf> {
    let mut files = repository_files(root);
    files.retain(|f| {
        f.extension().is_some_and(|e| e == "md")
            && f != Path::new("CHANGELOG.md")
            && !f.starts_with(LOG)
    });
    files
}

/// Every file of the repository, relative to its root (see [`markdown_files`]).
pub fn repository_files(root: &Path) -> Vec<PathBuf> {
    let git = Command::new("git")
        .args([
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ])
        .current_dir(root)
        .output();
    let mut files: Vec<PathBuf> = match git {
        Ok(out) if out.status.success() => out
            .stdout
            .split(|&b| b == 0)
            .filter(|name| !name.is_empty())
            .map(|name| PathBuf::from(String::from_utf8_lossy(name).into_owned()))
            .filter(|name| root.join(name).exists())
            .collect(),
        _ => {
            let mut out = Vec::new();
            walk(root, Path::new(""), &mut out);
            out
        }
    };
    files.sort();
    files.dedup();
    files
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(root.join(dir)) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let rel = dir.join(&*name);
        if entry.path().is_dir() {
            if !name.starts_with('.') && name != "target" && name != "node_modules" {
                walk(root, &rel, out);
            }
        } else {
            out.push(rel);
        }
    }
}

/// A part of a page.
#[derive(Debug)]
pub enum Block {
    /// `## Text`: its level (the number of `#`) and its text.
    Heading {
        level: usize,
        text: String,
        line: usize,
    },
    /// Lines of prose, joined with `\n`; `line` is the first one's.
    Paragraph { text: String, line: usize },
    /// A fenced code block: its language (the info string's first word, may be empty) and its
    /// lines with their numbers.
    Code {
        lang: String,
        lines: Vec<(usize, String)>,
    },
}

/// An open fenced code block: its fence (``` or ~~~, at least three) and what it holds.
struct Fence {
    marker: char,
    len: usize,
    lang: String,
    lines: Vec<(usize, String)>,
}

/// The blocks of a page.
pub fn blocks(page: &str) -> Vec<Block> {
    let mut out = Vec::new();
    let mut para: Option<(usize, String)> = None;
    let mut fence: Option<Fence> = None;
    let flush = |para: &mut Option<(usize, String)>, out: &mut Vec<Block>| {
        if let Some((line, text)) = para.take() {
            out.push(Block::Paragraph { text, line });
        }
    };
    for (i, raw) in page.lines().enumerate() {
        let n = i + 1;
        let trimmed = raw.trim_start();
        let run = |marker: char| trimmed.chars().take_while(|&c| c == marker).count();
        if let Some(open) = fence.as_mut() {
            let closing = run(open.marker) >= open.len
                && trimmed.trim_end().chars().all(|c| c == open.marker);
            if closing {
                out.push(Block::Code {
                    lang: std::mem::take(&mut open.lang),
                    lines: std::mem::take(&mut open.lines),
                });
                fence = None;
            } else {
                open.lines.push((n, raw.to_owned()));
            }
            continue;
        }
        if let Some(marker) = ['`', '~'].into_iter().find(|&m| run(m) >= 3) {
            flush(&mut para, &mut out);
            let len = run(marker);
            let lang = trimmed[len..].split_whitespace().next().unwrap_or("");
            fence = Some(Fence {
                marker,
                len,
                lang: lang.to_owned(),
                lines: Vec::new(),
            });
            continue;
        }
        if trimmed.is_empty() {
            flush(&mut para, &mut out);
            continue;
        }
        let hashes = raw.chars().take_while(|&c| c == '#').count();
        if (1..=6).contains(&hashes) && raw[hashes..].starts_with(' ') {
            flush(&mut para, &mut out);
            out.push(Block::Heading {
                level: hashes,
                text: raw[hashes..].trim().to_owned(),
                line: n,
            });
            continue;
        }
        if starts_item(trimmed) {
            flush(&mut para, &mut out);
        }
        match para.as_mut() {
            Some((_, text)) => {
                text.push('\n');
                text.push_str(raw);
            }
            None => para = Some((n, raw.to_owned())),
        }
        if trimmed.starts_with('|') {
            flush(&mut para, &mut out);
        }
    }
    flush(&mut para, &mut out);
    if let Some(open) = fence {
        out.push(Block::Code {
            lang: open.lang,
            lines: open.lines,
        });
    }
    out
}

/// Whether a line starts a list item or a table row (a paragraph of its own).
fn starts_item(trimmed: &str) -> bool {
    let digits = trimmed.chars().take_while(char::is_ascii_digit).count();
    ["* ", "- ", "+ ", "|"]
        .iter()
        .any(|m| trimmed.starts_with(m))
        || (digits > 0 && trimmed[digits..].starts_with(". "))
}

/// A code span of a paragraph: its text (line breaks as spaces, one surrounding space
/// stripped, as CommonMark does), where it starts and ends (after its closing backticks) in
/// the paragraph, and on which line it starts.
#[derive(Debug)]
pub struct CodeSpan {
    pub text: String,
    pub start: usize,
    pub end: usize,
    pub line: usize,
}

/// The code spans of a paragraph whose first line is `first_line`.
pub fn code_spans(paragraph: &str, first_line: usize) -> Vec<CodeSpan> {
    let bytes = paragraph.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            i += 2;
            continue;
        }
        if bytes[i] != b'`' {
            i += 1;
            continue;
        }
        let run = bytes[i..].iter().take_while(|&&b| b == b'`').count();
        let body = i + run;
        let mut j = body;
        let mut end = None;
        while j < bytes.len() {
            if bytes[j] == b'`' {
                let close = bytes[j..].iter().take_while(|&&b| b == b'`').count();
                if close == run {
                    end = Some(j);
                    break;
                }
                j += close;
            } else {
                j += 1;
            }
        }
        let Some(end) = end else {
            i = body;
            continue;
        };
        let text = paragraph[body..end].replace('\n', " ");
        let text = match text.strip_prefix(' ').and_then(|t| t.strip_suffix(' ')) {
            Some(inner) if !inner.trim().is_empty() => inner.to_owned(),
            _ => text,
        };
        out.push(CodeSpan {
            text,
            start: i,
            end: end + run,
            line: first_line + paragraph[..i].matches('\n').count(),
        });
        i = end + run;
    }
    out
}
