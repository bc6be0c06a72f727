//! Every flag the docs quote for `snowpipe` (`snowpipe load`) is one its `--help` lists: the
//! check shared with the other packages' binaries, `tests/doc_checks/readme_flags.rs`.

#[macro_use]
#[path = "../../../tests/doc_checks/readme_flags.rs"]
mod doc_checks;

readme_flags!("snowpipe");
