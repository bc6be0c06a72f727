//! Every flag the docs quote for `snowpipe-emulator` (and its subcommands) is one its `--help`
//! lists: the check shared with the other packages' binaries, `house/src/flags.rs` (which
//! says how a quoted flag is attributed to a binary; its table `PROSE`, in
//! `house/src/flag_tables.rs`, says which READMEs' prose is whose).

snowpipe_house::readme_flags!("snowpipe-emulator");

/// `--data-dir`'s default as `--help` and the README's option table say it: the database in a
/// new private temporary directory removed at exit (`Storage::open`), never in memory.
#[test]
fn help_and_readme_give_the_same_data_dir_default() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_snowpipe-emulator"))
        .arg("--help")
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    // The option's line and its description, up to the next option.
    let option: Vec<&str> = help
        .lines()
        .skip_while(|l| !l.trim_start().starts_with("--data-dir <"))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || !l.trim_start().starts_with('-'))
        .map(|(_, l)| l.trim())
        .collect();
    assert!(!option.is_empty(), "--data-dir is not in --help");
    let option = option.join(" ");
    let readme = include_str!("../../README.md");
    // The option's item in the README's list: its first line and the indented lines after.
    let item: Vec<&str> = readme
        .lines()
        .skip_while(|l| !l.starts_with("- `--data-dir`:"))
        .enumerate()
        .take_while(|(i, l)| *i == 0 || l.starts_with("  "))
        .map(|(_, l)| l.trim())
        .collect();
    assert!(!item.is_empty(), "the README's --data-dir item");
    let row = item.join(" ");
    for text in [option.as_str(), row.as_str()] {
        for words in ["private temporary directory", "removed at exit"] {
            assert!(text.contains(words), "{words:?} not in {text:?}");
        }
        assert!(!text.contains("in memory"), "{text:?}");
    }
}
