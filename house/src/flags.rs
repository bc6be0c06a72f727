//! Every flag the pages quote for one of our binaries is one its `--help` lists. Called by the
//! `readme_flags` tests of `snowpipe-kafka`, `snowpipe-emulator`, `snowpipe-apps` and
//! `snowpipe-load` (each names the binaries it builds: `readme_flags!("snowpipe-kafka")`,
//! [`crate::readme_flags`]); the tables are `crate::flag_tables`.
//!
//! Which binary a quoted flag belongs to:
//! * **On a command line** (a line of a shell code block, or a code span) that starts with the
//!   binary's name (after `NAME=value` variables and a `$ ` prompt; a path before the name is
//!   allowed), or with `cargo run` naming it (`--bin`, `--example` or `-p`; the flags after
//!   `--` are the binary's): that binary, and the subcommand the first words name
//!   (`snowpipe-kafka check --topic T`: `check`'s help). In every Markdown file the paths test
//!   reads, not only the READMEs. In a section `flag_tables::PROSE` gives a binary, a span that starts
//!   with one of its subcommands (`consume --source kinesis`) is that subcommand's.
//! * **In prose** (a code span starting with a flag, or a comment in a shell code block): any
//!   flag of the binary or its subcommands (prose does not say which subcommand), where the
//!   binary is, by the closest context: "X's `--flag`" names X (`the emulator's --grant` in
//!   the Kafka README); else, after command lines in the same paragraph, the programs they name
//!   and the section's (a flag of any of them; not checked when one is another program:
//!   `cargo install --path kafka` … `--features tls`); else the program of the comment's own
//!   line; else the binary `flag_tables::PROSE` gives the page's section (pages and sections it does
//!   not list are not checked).
//! * Never: flags on command lines of other programs (`cargo`, `podman`, `openssl`, `kubectl`,
//!   `curl`…), and what is not a flag (`--` alone, `--no-metadata-…`). A flag the binary
//!   accepts but hides from its help passes only when `flag_tables::HIDDEN` lists it.
//!
//! And the other way: every section of a page a `--help` points at (`kafka/README.md, "Row
//! layouts"`) is a heading, or a paragraph's bold label, of that page.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::flag_tables::{ALIASES, HIDDEN, OURS, PROSE};
use crate::markdown::{blocks, code_spans, markdown_files, Block};

/// One of our binaries: its name, as the pages write it, and its executable.
pub struct Program {
    pub name: &'static str,
    pub exe: PathBuf,
}

/// What a command's `--help` lists: its flags, the README sections it points at
/// (`kafka/README.md, "Row layouts"`) and its subcommands' helps.
#[derive(Default)]
struct Help {
    flags: BTreeSet<String>,
    pointers: Vec<(String, String)>,
    subcommands: BTreeMap<String, Help>,
}

impl Help {
    /// Runs `exe [words…] --help` and, for each subcommand it lists, its own (two levels).
    fn of(exe: &Path, words: &[&str]) -> Help {
        let out = Command::new(exe)
            .args(words)
            .arg("--help")
            .env("NO_COLOR", "1")
            .env_remove("CLICOLOR_FORCE")
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{} {} --help failed: {}{}",
            exe.display(),
            words.join(" "),
            text,
            String::from_utf8_lossy(&out.stderr)
        );
        let mut help = Help {
            flags: listed_flags(&text),
            pointers: section_pointers(&text),
            ..Help::default()
        };
        if words.len() < 2 {
            for name in listed_subcommands(&text) {
                let mut deeper = words.to_vec();
                deeper.push(&name);
                let sub = Help::of(exe, &deeper);
                help.subcommands.insert(name, sub);
            }
        }
        help
    }

    /// Its section pointers and every subcommand's, with the command line that prints them.
    fn all_pointers(&self, whose: &str, out: &mut Vec<(String, String, String)>) {
        for (page, title) in &self.pointers {
            out.push((whose.to_owned(), page.clone(), title.clone()));
        }
        for (name, sub) in &self.subcommands {
            sub.all_pointers(&format!("{whose} {name}"), out);
        }
    }

    /// Its flags and every subcommand's.
    fn all_flags(&self, out: &mut BTreeSet<String>) {
        out.extend(self.flags.iter().cloned());
        for sub in self.subcommands.values() {
            sub.all_flags(out);
        }
    }
}

/// The flags a clap help text defines: the `-X, --long <VALUE>` at the start of its option
/// lines (not the flags its descriptions mention), and `[aliases: --other]`.
fn listed_flags(help: &str) -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    for line in help.lines() {
        let indent = line.len() - line.trim_start().len();
        if line.trim_start().starts_with('-') && indent <= 6 {
            for word in line.split_whitespace() {
                let word = word.trim_end_matches(',');
                if let Some(flag) = flag_name(word) {
                    flags.insert(flag);
                } else if !(word.starts_with('<') || word.starts_with("[<") || word == "...") {
                    break;
                }
            }
        }
        let mut rest = line;
        while let Some(at) = rest.find("aliases: ").or_else(|| rest.find("alias: ")) {
            let list = &rest[at..];
            let list = &list[list.find(' ').unwrap_or(0)..];
            let end = list.find(']').unwrap_or(list.len());
            for word in list[..end].split([',', ' ']) {
                if let Some(flag) = flag_name(word) {
                    flags.insert(flag);
                }
            }
            rest = &list[end..];
        }
    }
    flags
}

/// The sections of our pages a help text points at: `PAGE.md, "Title"` (line breaks and
/// backticks aside).
fn section_pointers(help: &str) -> Vec<(String, String)> {
    let text = help.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(".md") {
        let end = from + at + 3;
        from = end;
        let start = text[..end]
            .rfind(|c: char| c.is_whitespace() || "(`\"".contains(c))
            .map_or(0, |i| i + 1);
        let rest = text[end..].trim_start_matches('`');
        if let Some(title) = rest.strip_prefix(", \"").and_then(|r| r.split('"').next()) {
            out.push((text[start..end].to_owned(), title.to_owned()));
        }
    }
    out
}

/// Whether a page has a heading, or a paragraph's bold label (`**Creating tables.**`), that
/// starts with `title`.
fn has_section(page: &str, title: &str) -> bool {
    page.lines().any(|line| {
        let heading = line.trim_start_matches('#');
        (heading.len() < line.len() && heading.trim_start().starts_with(title))
            || line
                .trim_start()
                .strip_prefix("**")
                .is_some_and(|l| l.starts_with(title))
    })
}

/// The subcommands a clap help text lists under `Commands:` (not `help`).
pub(crate) fn listed_subcommands(help: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut inside = false;
    for line in help.lines() {
        if line.trim_end() == "Commands:" {
            inside = true;
            continue;
        }
        if inside {
            let indent = line.len() - line.trim_start().len();
            if line.trim().is_empty() || indent == 0 {
                inside = false;
            } else if indent == 2 {
                if let Some(name) = line.split_whitespace().next() {
                    if name != "help" {
                        out.push(name.to_owned());
                    }
                }
            }
        }
    }
    out
}

/// The flag a word is (`--name`, `--name=value`, `-X`), if it is one.
fn flag_name(word: &str) -> Option<String> {
    let name = word.split('=').next().unwrap_or_default();
    let long = name.strip_prefix("--").is_some_and(|n| {
        n.chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
            && !n.ends_with('-')
            && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    });
    let short = name.len() == 2
        && name.starts_with('-')
        && name[1..].chars().all(|c| c.is_ascii_alphabetic());
    (long || short).then(|| name.to_owned())
}

/// A word of a command line without the brackets, parentheses and punctuation around it.
fn bare(word: &str) -> &str {
    word.trim_start_matches(['[', '(', '"', '\''])
        .trim_end_matches(['.', '…'])
        .trim_end_matches([']', ')', ',', ';', ':', '"', '\''])
}

/// The flags a word of a command line names (`--a/--b` is two).
fn flags_in(word: &str) -> Vec<String> {
    let word = bare(word);
    if word.contains('/') && word.split('/').all(|w| w.starts_with('-')) {
        return word.split('/').filter_map(flag_name).collect();
    }
    flag_name(word).into_iter().collect()
}

/// A command line of one of our binaries: its name and its arguments.
fn ours<'a>(words: &[&'a str]) -> Option<(&'static str, Vec<&'a str>)> {
    let mut words = words.iter().copied().skip_while(|w| {
        let (name, _) = w.split_once('=').unwrap_or(("", ""));
        ["exec", "time", "env", "nohup"].contains(w)
            || (!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    });
    let program = bare(words.next()?);
    let program = program.rsplit('/').next().unwrap_or(program);
    let rest: Vec<&str> = words.collect();
    if let Some(name) = OURS.iter().find(|&&n| n == program) {
        return Some((name, rest));
    }
    if program != "cargo" || !rest.contains(&"run") {
        return None;
    }
    let split = rest.iter().position(|w| bare(w) == "--" || *w == "[--");
    let cargo_args = &rest[..split.unwrap_or(rest.len())];
    let named = |opt: &str| {
        cargo_args
            .iter()
            .position(|w| *w == opt)
            .and_then(|i| cargo_args.get(i + 1))
            .map(|w| bare(w))
    };
    let target = named("--bin")
        .or_else(|| named("--example"))
        .or_else(|| named("-p"))
        .or_else(|| named("--package"))?;
    let name = OURS.iter().find(|&&n| n == target)?;
    Some((name, split.map_or(Vec::new(), |i| rest[i + 1..].to_vec())))
}

/// Where a quoted flag was, for the failure message.
struct At<'a> {
    page: &'a Path,
    line: usize,
}

/// The check's state: the binaries' helps, what was checked, what failed.
pub struct Checker {
    helps: BTreeMap<&'static str, Help>,
    /// Quoted flags checked.
    pub checked: usize,
    /// One line per unknown flag.
    pub failures: BTreeSet<String>,
}

impl Checker {
    /// Reads each program's help (and its subcommands').
    pub fn new(programs: &[Program]) -> Self {
        let mut helps: BTreeMap<&'static str, Help> = programs
            .iter()
            .map(|p| (p.name, Help::of(&p.exe, &[])))
            .collect();
        let mut failures = BTreeSet::new();
        for (name, flag) in HIDDEN {
            let (Some(program), Some(help)) = (
                programs.iter().find(|p| p.name == *name),
                helps.get_mut(name),
            ) else {
                continue;
            };
            // An unknown flag before `--help` is an error; a known one is not.
            let accepted = Command::new(&program.exe)
                .args([flag, "--help"])
                .output()
                .is_ok_and(|o| o.status.success());
            if accepted {
                help.flags.insert((*flag).to_owned());
            } else {
                failures.insert(format!(
                    "`{name}` refuses {flag}, which house/src/flag_tables.rs's HIDDEN lists: \
                     take it out there and out of the pages"
                ));
            }
        }
        Checker {
            helps,
            checked: 0,
            failures,
        }
    }

    fn check(&mut self, at: &At<'_>, flag: &str, allowed: &BTreeSet<String>, whose: &str) {
        self.checked += 1;
        if !allowed.contains(flag) {
            self.failures.insert(format!(
                "{}:{}: `{flag}` is not an option of `{whose}`",
                at.page.display(),
                at.line,
            ));
        }
    }

    /// Checks a command line of `program` (arguments `args`) if this test has its binary.
    fn command(&mut self, at: &At<'_>, program: &str, args: &[&str]) {
        let Some(mut help) = self.helps.get(program) else {
            return;
        };
        let mut whose = program.to_owned();
        let mut descending = true;
        let mut checks = Vec::new();
        for word in args {
            let word = bare(word);
            if word.is_empty() || word == "--" || word == "|" {
                continue;
            }
            if descending {
                if let Some(sub) = help.subcommands.get(word) {
                    help = sub;
                    whose = format!("{whose} {word}");
                    continue;
                }
            }
            descending = false;
            checks.extend(flags_in(word));
        }
        let allowed = help.flags.clone();
        for flag in checks {
            self.check(at, &flag, &allowed, &whose);
        }
    }

    /// Checks flags quoted in prose against `programs` (those this test has).
    fn prose(&mut self, at: &At<'_>, flags: &[String], programs: &[&str]) {
        let mut allowed = BTreeSet::new();
        let mut whose = Vec::new();
        for p in programs {
            if let Some(help) = self.helps.get(p) {
                help.all_flags(&mut allowed);
                whose.push(*p);
            }
        }
        if whose.is_empty() {
            return;
        }
        let whose = format!("{} (or its subcommands)", whose.join(" / "));
        for flag in flags {
            self.check(at, flag, &allowed, &whose);
        }
    }

    /// Checks the words of a command line (code block line or code span): each command of
    /// ours in it (split at `|`, `&&`, `;`). Returns what the line says about the programs
    /// its flags belong to: `Some(Some(name))` ours, `Some(None)` another program's (a word,
    /// then flags), `None` no command.
    fn line(&mut self, at: &At<'_>, words: &[&str]) -> Option<Option<&'static str>> {
        let mut depth = 0i32;
        let mut segment: Vec<&str> = Vec::new();
        let mut said = None;
        let mut segments = Vec::new();
        for word in words {
            let ends = matches!(*word, "|" | "||" | "&&" | ";") && depth == 0;
            depth += word.matches('[').count() as i32 - word.matches(']').count() as i32;
            if ends {
                segments.push(std::mem::take(&mut segment));
            } else {
                segment.push(word);
            }
        }
        segments.push(segment);
        for segment in segments.iter().filter(|s| !s.is_empty()) {
            match ours(segment) {
                Some((program, args)) => {
                    self.command(at, program, &args);
                    said = Some(Some(program));
                }
                None if said.is_none()
                    && !bare(segment[0]).starts_with('-')
                    && segment.iter().any(|w| !flags_in(w).is_empty()) =>
                {
                    said = Some(None)
                }
                None => {}
            }
        }
        said
    }

    /// Checks one page: command lines everywhere, prose where `flag_tables::PROSE` names its binaries.
    pub fn page(&mut self, root: &Path, page: &Path) {
        let text = std::fs::read_to_string(root.join(page)).unwrap();
        let name = page.to_string_lossy().replace('\\', "/");
        let sections: Vec<(&str, &[&str])> = PROSE
            .iter()
            .filter(|(p, _, _)| *p == name)
            .map(|(_, s, who)| (*s, *who))
            .collect();
        let owners_of = |heading: Option<&str>| -> &[&str] {
            let own = sections.iter().find(|(s, _)| match heading {
                None => s.is_empty(),
                Some(h) => !s.is_empty() && *s != "*" && h.starts_with(s),
            });
            own.or_else(|| sections.iter().find(|(s, _)| *s == "*"))
                .map_or(&[], |(_, w)| *w)
        };
        let mut owners = owners_of(None);
        for block in blocks(&text) {
            match block {
                Block::Heading { level, text, .. } => {
                    if level == 2 {
                        owners = owners_of(Some(&text));
                    }
                }
                Block::Paragraph { text, line } => self.paragraph(page, &text, line, owners),
                Block::Code { lang, lines } => {
                    if ["", "sh", "bash", "shell", "console"].contains(&lang.as_str()) {
                        self.code(page, &lines, owners);
                    }
                }
            }
        }
    }

    fn paragraph(&mut self, page: &Path, text: &str, line: usize, owners: &[&str]) {
        let spans = code_spans(text, line);
        // The programs the paragraph's command lines so far name: ours (`Some(name)`) or
        // another (`None`); a flag quoted alone after them may be theirs.
        let mut context: BTreeSet<Option<&'static str>> = BTreeSet::new();
        let mut flag_spans = Vec::new();
        for span in &spans {
            let at = At {
                page,
                line: span.line,
            };
            let words: Vec<&str> = span.text.split_whitespace().collect();
            let Some(first) = words.first().map(|w| bare(w)) else {
                continue;
            };
            if !first.starts_with('-') && ours(&words).is_none() {
                // `consume --source kinesis`: a subcommand of the section's binary.
                let with_sub: Vec<&'static str> = OURS
                    .iter()
                    .copied()
                    .filter(|p| owners.contains(p))
                    .filter(|p| {
                        self.helps
                            .get(p)
                            .is_some_and(|h| h.subcommands.contains_key(first))
                    })
                    .collect();
                if !with_sub.is_empty() {
                    for program in with_sub {
                        self.command(&at, program, &words);
                        context.insert(Some(program));
                    }
                    continue;
                }
            }
            if let Some(said) = self.line(&at, &words) {
                context.insert(said);
                continue;
            }
            let flags: Vec<String> = words.iter().flat_map(|w| flags_in(w)).collect();
            if !flags.is_empty() {
                flag_spans.push((at, span.start, flags, context.clone()));
            }
        }
        for (at, start, flags, context) in flag_spans {
            // "the emulator's `--grant`"
            let before = text[..start].trim_end();
            if let Some(word) = before
                .strip_suffix("'s")
                .or_else(|| before.strip_suffix("’s"))
                .and_then(|b| b.split_whitespace().last())
            {
                let word = word.trim_matches('`');
                let named = OURS.iter().find(|&&n| n == word).copied().or_else(|| {
                    ALIASES
                        .iter()
                        .find(|(alias, _)| *alias == word)
                        .map(|(_, n)| *n)
                });
                if let Some(program) = named {
                    self.prose(&at, &flags, &[program]);
                }
                continue;
            }
            if context.is_empty() {
                self.prose(&at, &flags, owners);
            } else if let Some(mut programs) = context.into_iter().collect::<Option<Vec<_>>>() {
                // The section's binaries or those named before: a flag of any of them is right,
                // so check only when this test has every one of them.
                programs.extend(owners);
                if programs.iter().all(|p| self.helps.contains_key(p)) {
                    self.prose(&at, &flags, &programs);
                }
            }
        }
    }

    fn code(&mut self, page: &Path, lines: &[(usize, String)], owners: &[&str]) {
        let prompted = lines.iter().any(|(_, l)| l.trim_start().starts_with("$ "));
        // Logical lines: a line ending in `\` goes on on the next; in a synopsis, an indented
        // line goes on the command line of ours before it.
        let mut logical: Vec<(usize, String, bool)> = Vec::new();
        let mut open = false;
        for (n, raw) in lines {
            let trimmed = raw.trim_start();
            let indented = trimmed.len() < raw.len();
            let continues = open
                || (!prompted
                    && indented
                    && !trimmed.starts_with('#')
                    && logical.last().is_some_and(|(_, _, ours)| *ours));
            let text = match trimmed.strip_prefix("$ ") {
                Some(command) => command,
                None if prompted && !continues => continue,
                None => trimmed,
            };
            open = text.trim_end().ends_with('\\');
            let text = text.trim_end().trim_end_matches('\\');
            match logical.last_mut() {
                Some(last) if continues => {
                    last.1.push(' ');
                    last.1.push_str(text);
                }
                _ => {
                    let words: Vec<&str> = text.split_whitespace().collect();
                    let ours = ours(&words).is_some();
                    logical.push((*n, text.to_owned(), ours));
                }
            }
        }
        for (n, text, _) in logical {
            let at = At { page, line: n };
            let words: Vec<&str> = text.split_whitespace().collect();
            let hash = words.iter().position(|w| w.starts_with('#'));
            let (command, comment) = words.split_at(hash.unwrap_or(words.len()));
            let said = self.line(&at, command);
            // A comment's long flags, and a flag it starts with (`# -X: …`).
            let comment: Vec<&str> = comment
                .iter()
                .map(|w| w.trim_start_matches('#'))
                .filter(|w| !w.is_empty())
                .collect();
            let flags: Vec<String> = comment
                .iter()
                .enumerate()
                .filter(|(i, w)| *i == 0 || w.starts_with("--"))
                .flat_map(|(_, w)| flags_in(w))
                .collect();
            if flags.is_empty() {
                continue;
            }
            match said {
                Some(None) => {}
                Some(Some(program)) => self.prose(&at, &flags, &[program]),
                None => self.prose(&at, &flags, owners),
            }
        }
    }
}

/// [`check_pages`] for a package's tests: the repository is the parent of `manifest_dir`
/// (`env!("CARGO_MANIFEST_DIR")`), the programs are (name, `env!("CARGO_BIN_EXE_…")`).
pub fn check_package(manifest_dir: &str, programs: &[(&'static str, &str)]) {
    let root = crate::walk::workspace_root(Path::new(manifest_dir));
    let root = root.as_path();
    let programs: Vec<Program> = programs
        .iter()
        .map(|&(name, exe)| Program {
            name,
            exe: exe.into(),
        })
        .collect();
    check_pages(root, &programs);
}

/// Checks every Markdown page below `root` (as the paths test lists them) against
/// `programs`; panics listing each unknown flag.
pub fn check_pages(root: &Path, programs: &[Program]) {
    let mut checker = Checker::new(programs);
    for program in programs {
        let mut pointers = Vec::new();
        checker.helps[program.name].all_pointers(program.name, &mut pointers);
        for (whose, page, title) in pointers {
            checker.checked += 1;
            let text = std::fs::read_to_string(root.join(&page)).unwrap_or_default();
            if !has_section(&text, &title) {
                checker.failures.insert(format!(
                    "`{whose} --help` points at {page}, \"{title}\": no such heading or bold \
                     paragraph label there"
                ));
            }
        }
    }
    let pages = markdown_files(root);
    for page in &pages {
        checker.page(root, page);
    }
    let names: Vec<&str> = programs.iter().map(|p| p.name).collect();
    println!(
        "{} quoted flags of {} checked in {} Markdown files",
        checker.checked,
        names.join(", "),
        pages.len()
    );
    assert!(
        checker.checked > 10,
        "only {} quoted flags of {} found",
        checker.checked,
        names.join(", ")
    );
    assert!(
        checker.failures.is_empty(),
        "{} flags quoted in the docs are not in the binary's --help (fix the page or the \
         binary; how a flag is attributed to a binary: house/src/flags.rs):\n{}",
        checker.failures.len(),
        checker
            .failures
            .iter()
            .cloned()
            .collect::<Vec<_>>()
            .join("\n")
    );
}

#[cfg(test)]
mod tests {
    use super::{check_pages, Program};
    use crate::scratch::{panic_message, Tree};

    /// The check passes when every flag a page quotes for a binary is in its `--help`, and
    /// fails naming the one that is not (`--bogus`).
    #[test]
    fn the_check_names_a_quoted_flag_the_help_does_not_list() {
        let flags: Vec<String> = (0..12).map(|i| format!("--flag-{i}")).collect();
        let help: String = flags
            .iter()
            .map(|f| format!("  {f} <VALUE>  What it does\n"))
            .collect();
        let script =
            format!("#!/bin/sh\ncat <<'HELP'\nUsage: snowpipe [OPTIONS]\n\nOptions:\n{help}HELP\n");
        let page = |extra: &str| format!("```sh\nsnowpipe {} {extra}\n```\n", flags.join(" "));
        let good = page("");
        let bad = page("--bogus 1");
        for (name, readme, failure) in [
            ("flags-ok", &good, None),
            ("flags-bad", &bad, Some("--bogus")),
        ] {
            let tree = Tree::new(name, &[("README.md", readme), ("help.sh", &script)]);
            let exe = tree.0.join("help.sh");
            std::process::Command::new("chmod")
                .arg("755")
                .arg(&exe)
                .status()
                .unwrap();
            let programs = [Program {
                name: "snowpipe",
                exe,
            }];
            let message = panic_message(|| check_pages(&tree.0, &programs));
            match failure {
                None => assert_eq!(message, None),
                Some(flag) => {
                    let message = message.expect("the check passed");
                    assert!(message.contains(flag), "{message}");
                    assert!(!message.contains("--flag-1 "), "{message}");
                }
            }
        }
    }
}
