//! Every flag the docs quote for `snowpipe-kafka` (and its subcommands) is one its `--help` lists: the
//! check shared with the other packages' binaries, `tests/doc_checks/flags.rs` (which says how
//! a quoted flag is attributed to a binary; its table `PROSE` says which READMEs' prose is
//! whose).

#[path = "../../../tests/doc_checks/flags.rs"]
mod flags;
#[path = "../../../tests/doc_checks/markdown.rs"]
mod markdown;

#[test]
fn every_flag_quoted_in_the_docs_is_in_the_binarys_help() {
    flags::check_package(
        env!("CARGO_MANIFEST_DIR"),
        &[("snowpipe-kafka", env!("CARGO_BIN_EXE_snowpipe-kafka"))],
    );
}
