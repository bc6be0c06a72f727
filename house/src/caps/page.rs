//! The caps table as data: `docs/caps.toml`, one `[[cap]]` a row (input, bytes, depth, count,
//! time, where it is enforced, the test), rendered into `docs/caps.md`, which is never edited
//! by hand ([`render`]; the `caps_page` test fails when the page is not the file's rendering,
//! and writes it with `CAPS_WRITE=1`). The inventory ([`super::check_package`]) reads the rows
//! from the file, each as the page's line.

use std::path::Path;

use serde::Deserialize;

/// The data, from the repository's root.
pub const DATA: &str = "docs/caps.toml";
/// The page rendered from it, from the repository's root.
pub const PAGE: &str = "docs/caps.md";

/// One row of the table.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cap {
    /// The input, as a user names it (the program and the flag, the file, the answer).
    pub input: String,
    /// Its size limits.
    pub bytes: String,
    /// Its depth limits.
    pub depth: String,
    /// Its count limits.
    pub count: String,
    /// Its time limits.
    pub time: String,
    /// Where the code enforces them.
    pub enforced_in: String,
    /// The tests that show them (a `hostile_` generator among them, for an input the
    /// inventory lists).
    pub test: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    cap: Vec<Cap>,
}

/// The rows of `text` (the contents of [`DATA`]).
///
/// # Errors
/// What does not parse, with the line and the field, naming [`DATA`].
pub fn parse(text: &str) -> Result<Vec<Cap>, String> {
    toml::from_str::<File>(text)
        .map(|f| f.cap)
        .map_err(|e| format!("{DATA}: {e}"))
}

/// The rows of the repository at `root`.
///
/// # Errors
/// A file that cannot be read or does not parse, named.
pub fn load(root: &Path) -> Result<Vec<Cap>, String> {
    let text = std::fs::read_to_string(root.join(DATA)).map_err(|e| format!("{DATA}: {e}"))?;
    parse(&text)
}

/// `cap` as one line of the table: its cells in order, a `|` in a cell escaped.
pub fn line(cap: &Cap) -> String {
    let cells = [
        &cap.input,
        &cap.bytes,
        &cap.depth,
        &cap.count,
        &cap.time,
        &cap.enforced_in,
        &cap.test,
    ];
    let cells: Vec<String> = cells
        .iter()
        .map(|c| c.replace('\n', " ").replace('|', "\\|"))
        .collect();
    format!("| {} |", cells.join(" | "))
}

/// The page [`PAGE`] of `caps`.
pub fn render(caps: &[Cap]) -> String {
    let mut page = String::from(
        "# Caps: every outside input and its limits\n\n\
         <!-- Rendered from docs/caps.toml by `CAPS_WRITE=1 cargo test -p snowpipe-house \
         caps_page`; edit that file, not this page. -->\n\n\
         Each input that comes from outside a process, each limit it has (bytes, depth, count, \
         time), where the code enforces it and the test that shows it. What the table means, \
         the inventory that checks it and the gaps still open: \
         [`SECURITY.md`](SECURITY.md#caps-every-outside-input-and-its-limits).\n\n\
         | input | bytes | depth | count | time | enforced in | test |\n\
         | --- | --- | --- | --- | --- | --- | --- |\n",
    );
    for cap in caps {
        page.push_str(&line(cap));
        page.push('\n');
    }
    page
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/caps.md` is the rendering of `docs/caps.toml` (`CAPS_WRITE=1` writes it).
    #[test]
    fn caps_page() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace");
        let caps = load(root).unwrap_or_else(|e| panic!("{e}"));
        assert!(caps.len() > 10, "{DATA} has {} rows", caps.len());
        let page = render(&caps);
        if std::env::var_os("CAPS_WRITE").is_some() {
            std::fs::write(root.join(PAGE), &page).expect(PAGE);
        }
        let on_disk = std::fs::read_to_string(root.join(PAGE)).unwrap_or_default();
        assert!(
            on_disk == page,
            "{PAGE} is not the rendering of {DATA}: edit {DATA}, then run \
             CAPS_WRITE=1 cargo test -p snowpipe-house caps_page"
        );
    }

    /// A row's cells in order; a `|` escaped, a line break a space; a field missing or
    /// unknown named with its place.
    #[test]
    fn a_row_renders_in_order_and_a_bad_file_is_named() {
        let caps = parse(
            "[[cap]]\ninput = \"`x --flag`\"\nbytes = \"4 MiB `A | B`\"\ndepth = \"—\"\n\
             count = \"2\"\ntime = \"1 s\\nat most\"\nenforced_in = \"`x.rs`\"\n\
             test = \"`hostile_x`\"\n",
        )
        .expect("parses");
        assert_eq!(
            line(&caps[0]),
            "| `x --flag` | 4 MiB `A \\| B` | — | 2 | 1 s at most | `x.rs` | `hostile_x` |"
        );
        let missing = parse("[[cap]]\ninput = \"x\"\n").expect_err("fields missing");
        assert!(missing.starts_with("docs/caps.toml: "), "{missing}");
        assert!(missing.contains("missing field"), "{missing}");
        let unknown = parse(
            "[[cap]]\ninput = \"\"\nbytes = \"\"\ndepth = \"\"\ncount = \"\"\ntime = \"\"\n\
             enforced_in = \"\"\ntest = \"\"\nextra = \"\"\n",
        )
        .expect_err("a field no row has");
        assert!(unknown.contains("extra"), "{unknown}");
    }
}
