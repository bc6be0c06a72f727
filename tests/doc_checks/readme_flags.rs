//! The `readme_flags` test of every package with binaries (`snowpipe-kafka`,
//! `snowpipe-emulator`, `snowpipe-apps`, `snowpipe-load`): each package's
//! `tests/it/readme_flags.rs` includes this file by path (`#[macro_use]`) and names the
//! binaries it builds, `readme_flags!("snowpipe-kafka");`. The check itself, and how a quoted
//! flag is attributed to a binary, is [`flags`]; its table `PROSE` says which READMEs' prose is
//! whose.

#[path = "flags.rs"]
pub(super) mod flags;
#[path = "markdown.rs"]
mod markdown;

/// The test `every_flag_quoted_in_the_docs_is_in_the_binarys_help` of the package this is
/// expanded in: every flag the docs quote for one of the binaries named (each as the pages
/// write it and as its `CARGO_BIN_EXE_…` variable ends) is one its `--help` lists.
macro_rules! readme_flags {
    ($($name:literal),+ $(,)?) => {
        #[test]
        fn every_flag_quoted_in_the_docs_is_in_the_binarys_help() {
            doc_checks::flags::check_package(
                env!("CARGO_MANIFEST_DIR"),
                &[$(($name, env!(concat!("CARGO_BIN_EXE_", $name)))),+],
            );
        }
    };
}
