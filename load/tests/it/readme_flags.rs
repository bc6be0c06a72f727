//! Every flag the docs quote for `snowpipe` (`snowpipe load`) is one its `--help` lists: the
//! check shared with the other packages' binaries, `tests/doc_checks/flags.rs`.

#[path = "../../../tests/doc_checks/flags.rs"]
mod flags;
#[path = "../../../tests/doc_checks/markdown.rs"]
mod markdown;

#[test]
fn every_flag_quoted_in_the_docs_is_in_the_binarys_help() {
    flags::check_package(
        env!("CARGO_MANIFEST_DIR"),
        &[("snowpipe", env!("CARGO_BIN_EXE_snowpipe"))],
    );
}
