//! Every flag the docs quote for `snowpipe-kafka` (and its subcommands) is one its `--help`
//! lists: the check shared with the other packages' binaries, `tests/doc_checks/flags.rs`
//! (which says how a quoted flag is attributed to a binary; its table `PROSE` says which
//! READMEs' prose is whose), by `tests/doc_checks/readme_flags.rs`.

#[macro_use]
#[path = "../../../tests/doc_checks/readme_flags.rs"]
mod doc_checks;

readme_flags!("snowpipe-kafka");
