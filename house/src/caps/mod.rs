//! The inventory of outside inputs, as a check: every command-line flag that takes a value
//! (from each binary's `--help` and its subcommands') and every environment variable the
//! code reads by name is named in a row of the caps table (`docs/caps.toml`, rendered into
//! `docs/caps.md`: [`page`]) whose test cell names a `hostile_…` generator, or is listed
//! in `crate::caps_tables` with its reason (not an outside input worth a generator, or a
//! `TODO(caps)` naming the generator still missing). Called by the `caps_inventory` tests of
//! `snowpipe-kafka`, `snowpipe-emulator`, `snowpipe-apps` and `snowpipe-load`
//! ([`crate::caps_inventory!`]) and, for the variables, by this crate's own test.
//!
//! Not listed anywhere: a flag whose `--help` gives its possible values (a closed set clap
//! checks before anything reads it), and a flag without a value (a switch).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::caps_tables::{Allowed, FLAGS, VARIABLES};
use crate::flags::listed_subcommands;

pub mod page;

/// Where the inputs must be named: the caps table's data.
pub const PAGE: &str = page::DATA;
/// The section of a Markdown caps table ([`caps_rows`]).
const SECTION: &str = "## Caps: every outside input and its limits";

/// A flag that takes a value: the command whose help lists it (`snowpipe-kafka check`), its
/// program (`snowpipe-kafka`) and its name (`--group`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct ValueFlag {
    pub command: String,
    pub program: String,
    pub name: String,
}

/// The rows of the caps table (each line of the section that starts with `|`, past the
/// header and its rule).
pub fn caps_rows(security: &str) -> Vec<String> {
    let Some(start) = security.find(SECTION) else {
        return Vec::new();
    };
    let section = &security[start + SECTION.len()..];
    let section = &section[..section.find("\n## ").unwrap_or(section.len())];
    section
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(str::to_owned)
        .collect()
}

/// The caps rows of the repository at `root` ([`page::DATA`]), each as the page's line;
/// none when the file cannot be read or parsed (the `caps_page` test names why).
pub fn table_rows(root: &Path) -> Vec<String> {
    page::load(root)
        .map(|caps| caps.iter().map(page::line).collect())
        .unwrap_or_default()
}

/// Whether `name` (a flag or a variable) is in `text` as a whole word (`--topic` is not in
/// `--topic-regex`, `SNOWFLAKE_PRIVATE_KEY` not in `SNOWFLAKE_PRIVATE_KEY_FILE`).
fn names(text: &str, name: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '-' || c == '_';
    text.match_indices(name).any(|(i, _)| {
        !text[..i].ends_with(|c: char| word(c) && !name.starts_with('-'))
            && !text[i + name.len()..].starts_with(word)
    })
}

/// The workspace's programs, as a row's input cell names them (`snowpipe` is `snowpipe load`).
pub const PROGRAMS: &[&str] = &[
    "snowpipe-kafka",
    "snowpipe-emulator",
    "snowpipe",
    "ski_resort",
    "ecommerce",
    "sensor_stream",
    "throughput",
    "table_replay",
];

/// Whether a row naming `name` has a generator in its test cell (the last one), whatever
/// program it is for.
pub fn has_row_with_generator(rows: &[String], name: &str) -> bool {
    PROGRAMS
        .iter()
        .any(|program| row_covers(rows, program, name))
}

/// Whether a row covers `program`'s flag `name`: it names `name` outside its test cell, its
/// test cell (the last) names a `hostile_` generator, and its input cell (the first) names
/// `program` or no program of ours. A row whose input names its binary
/// (`snowpipe-kafka --schema-registry-basic-auth`) does not cover another binary's flag of the
/// same name: each binary's copy needs its own row.
pub fn row_covers(rows: &[String], program: &str, name: &str) -> bool {
    rows.iter().any(|row| {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        let for_program =
            |input: &str| names(input, program) || !PROGRAMS.iter().any(|p| names(input, p));
        cells.len() > 1
            && cells[..cells.len() - 1].iter().any(|c| names(c, name))
            && cells.last().is_some_and(|c| c.contains("hostile_"))
            && for_program(cells[0])
    })
}

/// The flags a clap help text lists that take a value, and whether the help gives their
/// possible values (a closed set).
fn value_flags(help: &str) -> Vec<(String, bool)> {
    let mut out: Vec<(String, bool)> = Vec::new();
    let mut current: Option<usize> = None;
    for line in help.lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        if trimmed.starts_with('-') && indent <= 6 {
            current = None;
            let mut words = trimmed.split_whitespace().map(|w| w.trim_end_matches(','));
            let mut long = None;
            for word in words.by_ref() {
                if word.starts_with("--") {
                    long = Some(word.split('=').next().unwrap_or(word).to_owned());
                    break;
                }
            }
            let takes = words
                .next()
                .is_some_and(|w| w.starts_with('<') || w.starts_with("[<"));
            if let (Some(name), true) = (long, takes) {
                out.push((name, trimmed.contains("[possible values:")));
                current = Some(out.len() - 1);
            }
        } else if let Some(i) = current {
            if trimmed.contains("[possible values:") {
                out[i].1 = true;
            }
            if trimmed.starts_with("Possible values:") {
                out[i].1 = true;
            }
        }
    }
    out
}

/// `exe [words…] --help`.
fn help_text(exe: &Path, words: &[&str]) -> String {
    let out = Command::new(exe)
        .args(words)
        .arg("--help")
        .env("NO_COLOR", "1")
        .env_remove("CLICOLOR_FORCE")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()));
    assert!(
        out.status.success(),
        "{} {} --help failed: {}",
        exe.display(),
        words.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every flag taking a value of `program` and its subcommands (two levels), closed sets
/// apart: (open, closed).
pub fn program_flags(program: &str, exe: &Path) -> (Vec<ValueFlag>, Vec<ValueFlag>) {
    let (mut open, mut closed) = (Vec::new(), Vec::new());
    let mut commands: Vec<Vec<String>> = vec![Vec::new()];
    while let Some(words) = commands.pop() {
        let refs: Vec<&str> = words.iter().map(String::as_str).collect();
        let help = help_text(exe, &refs);
        if words.len() < 2 {
            for sub in listed_subcommands(&help) {
                let mut deeper = words.clone();
                deeper.push(sub);
                commands.push(deeper);
            }
        }
        let command = std::iter::once(program.to_owned())
            .chain(words.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        for (name, is_closed) in value_flags(&help) {
            let flag = ValueFlag {
                command: command.clone(),
                program: program.to_owned(),
                name,
            };
            if is_closed {
                closed.push(flag);
            } else {
                open.push(flag);
            }
        }
    }
    (open, closed)
}

/// The allow-list entry for `name` of `program`, if any.
fn allowed<'a>(table: &'a [Allowed], program: &str, name: &str) -> Option<&'a Allowed> {
    table.iter().find(|a| {
        (a.programs.contains(&"*") || a.programs.contains(&program)) && a.names.contains(&name)
    })
}

/// Checks `flags` against the caps rows and the allow-list; returns the failures.
pub(crate) fn flag_failures(
    rows: &[String],
    flags: &[ValueFlag],
    table: &[Allowed],
) -> Vec<String> {
    let mut failures = BTreeSet::new();
    for flag in flags {
        let row = row_covers(rows, &flag.program, &flag.name);
        match (row, allowed(table, &flag.program, &flag.name)) {
            (false, None) => failures.insert(format!(
                "`{} {}` takes a value and no row of {PAGE} with a `hostile_` generator names \
                 it: add its row (bytes, depth, count, time; where enforced; the test; then \
                 CAPS_WRITE=1 cargo test -p snowpipe-house caps_page) and its generator, or list it in house/src/caps_tables.rs with the \
                 reason it is not an outside input (or a `TODO(caps)` naming the missing \
                 generator)",
                flag.command, flag.name
            )),
            (true, Some(entry)) if !entry.reason.starts_with("TODO(caps)") => {
                failures.insert(format!(
                    "`{} {}` has its caps row and generator: take it out of \
                     house/src/caps_tables.rs",
                    flag.command, flag.name
                ))
            }
            _ => false,
        };
    }
    failures.into_iter().collect()
}

/// Entries of the allow-list for these programs that name no flag of theirs (stale).
fn stale_entries(flags: &[ValueFlag], programs: &[&str], table: &[Allowed]) -> Vec<String> {
    let mut out = Vec::new();
    for entry in table {
        let mine: Vec<&str> = entry
            .programs
            .iter()
            .copied()
            .filter(|p| programs.contains(p))
            .collect();
        if mine.len() != entry.programs.len() {
            continue; // another package's, or every program's: checked where all are built
        }
        for name in entry.names {
            if !flags
                .iter()
                .any(|f| f.name == *name && mine.contains(&f.program.as_str()))
            {
                out.push(format!(
                    "house/src/caps_tables.rs lists {name} for {}, which takes no such value: \
                     take it out",
                    mine.join(", ")
                ));
            }
        }
    }
    out
}

/// The check of one package's binaries: (name, executable) each; the repository is the
/// workspace root above `manifest_dir`. Panics listing every flag without its row or reason.
pub fn check_package(manifest_dir: &str, programs: &[(&str, &str)]) {
    let root = crate::walk::workspace_root(Path::new(manifest_dir));
    let root = root.as_path();
    let rows = table_rows(root);
    assert!(rows.len() > 10, "{} has no caps rows", page::DATA);
    let (mut open, mut closed) = (Vec::new(), 0);
    for (name, exe) in programs {
        let (o, c) = program_flags(name, &PathBuf::from(exe));
        open.extend(o);
        closed += c.len();
    }
    let names: Vec<&str> = programs.iter().map(|p| p.0).collect();
    let mut failures = flag_failures(&rows, &open, FLAGS);
    failures.extend(stale_entries(&open, &names, FLAGS));
    let todo = open
        .iter()
        .filter(|f| allowed(FLAGS, &f.program, &f.name).is_some_and(|a| a.is_todo()))
        .count();
    println!(
        "{} flags taking a value in {}: {} closed sets, {} open ({} of them TODO(caps))",
        open.len() + closed,
        names.join(", "),
        closed,
        open.len(),
        todo
    );
    assert!(!open.is_empty(), "no flag taking a value found");
    assert!(
        failures.is_empty(),
        "{} inputs without their caps row:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// The line of `code` that holds byte `at`.
fn line_of(code: &str, at: usize) -> &str {
    let start = code[..at].rfind('\n').map_or(0, |n| n + 1);
    let end = code[at..].find('\n').map_or(code.len(), |n| at + n);
    &code[start..end]
}

/// Environment variables the code of `root`'s packages reads by name: `var("NAME")`,
/// `var_os("NAME")`, `env = "NAME"`, clap's `mut_arg(…, |a| a.env("NAME"))`, and every `"SNOWPIPE_…"` or `"SNOWFLAKE_…"` literal
/// (names kept in constants); test code and prefixes (`"SNOWPIPE_KAFKA_"`) aside.
pub fn variables_read(root: &Path) -> BTreeSet<(String, PathBuf)> {
    let mut files = Vec::new();
    for member in crate::walk::members(root) {
        if member != "house" && member != "hostile" {
            crate::walk::rust_files(&root.join(member).join("src"), &mut files);
        }
    }
    let mut out = BTreeSet::new();
    for file in files {
        let name = file.file_name().unwrap_or_default().to_string_lossy();
        let test_support = file.components().any(|c| {
            let c = c.as_os_str().to_string_lossy();
            c == "test_util" || c.starts_with("test_support")
        });
        if name.ends_with("tests.rs") || test_support {
            continue;
        }
        let code = crate::walk::code(&std::fs::read_to_string(&file).unwrap());
        for (i, _) in code.match_indices('"') {
            let rest = &code[i + 1..];
            let Some(end) = rest.find('"') else { break };
            let lit = &rest[..end];
            let is_name = !lit.is_empty()
                && !lit.ends_with('_')
                && lit
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_');
            let before = code[..i].trim_end();
            let read = before.ends_with("var(")
                || before.ends_with("var_os(")
                || before.ends_with("env =")
                || (before.ends_with(".env(") && line_of(&code, i).contains("mut_arg("));
            // A name kept in a constant or a table, not an argument of another call
            // (`.user("SNOWPIPE_LOAD")`).
            let argument = before.ends_with('(') && !before.ends_with("Some(");
            let ours = (lit.starts_with("SNOWPIPE_") || lit.starts_with("SNOWFLAKE_")) && !argument;
            if is_name && (read || ours) {
                let rel = file.strip_prefix(root).unwrap_or(&file).to_path_buf();
                out.insert((lit.to_owned(), rel));
            }
        }
    }
    out
}

/// The check of the variables: each read is in a caps row with a generator or in
/// `caps_tables::VARIABLES`. Returns the failures.
pub fn variable_failures(root: &Path) -> Vec<String> {
    let rows = table_rows(root);
    let mut failures = BTreeSet::new();
    let read = variables_read(root);
    for (name, file) in &read {
        let row = has_row_with_generator(&rows, name);
        let listed = VARIABLES.iter().find(|(n, _)| n == name);
        match (row, listed) {
            (false, None) => {
                failures.insert(format!(
                    "{} reads the variable {name} and no row of {PAGE} with a `hostile_` \
                     generator names it: add its row and generator, or list it in \
                     house/src/caps_tables.rs's VARIABLES with the reason",
                    file.display()
                ));
            }
            (true, Some((_, why))) if !why.starts_with("TODO(caps)") => {
                failures.insert(format!(
                    "{name} has its caps row: take it out of house/src/caps_tables.rs"
                ));
            }
            _ => {}
        }
    }
    for (name, _) in VARIABLES {
        if !read.iter().any(|(n, _)| n == name) {
            failures.insert(format!(
                "house/src/caps_tables.rs lists the variable {name}, which no code reads: \
                 take it out"
            ));
        }
    }
    failures.into_iter().collect()
}

#[cfg(test)]
mod tests;
