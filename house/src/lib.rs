//! The rules every package of the workspace keeps, as checks its tests call (a dev-dependency
//! of each; nothing here is published):
//!
//! * the import graph of a crate's `src/` ([`graph`], read by [`walk`]), checked for circles
//!   ([`circles`]) or for rooms standing on floors ([`floors`]); a package's rules are one
//!   [`graph_rules::GraphRules`] and one line, [`graph_rules!`];
//! * every path a Markdown page quotes exists ([`paths`], on the pages [`markdown`] reads);
//! * every flag the pages quote for one of our binaries is in its `--help` ([`flags`], with
//!   its tables in `flag_tables`; a package's test is one line, [`readme_flags!`]);
//! * every outside input (a flag taking a value, an environment variable read by name) has
//!   its row in `docs/SECURITY.md`'s caps table with a `hostile_` generator, or a reason
//!   ([`caps`], with its allow-lists in `caps_tables`; a package's test is one line,
//!   [`caps_inventory!`]);
//! * one module style, `foo/mod.rs` ([`module_style`]);
//! * every crate two or more packages use comes from `[workspace.dependencies]`
//!   ([`shared_deps`]);
//! * `CHANGELOG.md`'s `[Unreleased]` section is the fold of `changelog.d/` ([`changelog`]);
//! * no production source file over 700 lines ([`file_size`]), no hand-written page over 600
//!   lines or with a line over 400 characters ([`page_size`]), and no commit subject over 72
//!   characters from a base commit on ([`commit_subjects`]): all on the whole repository, from
//!   this package's own tests.
//!
//! Each check panics with what is wrong and how to fix it; each has a test here that shows it
//! failing on a small bad input.

pub mod caps;
mod caps_tables;
pub mod changelog;
pub mod circles;
pub mod commit_subjects;
pub mod file_size;
mod flag_tables;
pub mod flags;
pub mod floors;
pub mod graph;
pub mod graph_rules;
pub mod markdown;
pub mod module_style;
pub mod page_size;
pub mod paths;
#[cfg(test)]
mod scratch;
pub mod shared_deps;
pub mod walk;

/// The test `every_flag_quoted_in_the_docs_is_in_the_binarys_help` of the package this is
/// expanded in: every flag the docs quote for one of the binaries named (each as the pages
/// write it and as its `CARGO_BIN_EXE_…` variable ends) is one its `--help` lists
/// ([`flags::check_package`]). In a package's integration tests:
/// `snowpipe_house::readme_flags!("snowpipe-kafka");`.
#[macro_export]
macro_rules! readme_flags {
    ($($name:literal),+ $(,)?) => {
        #[test]
        fn every_flag_quoted_in_the_docs_is_in_the_binarys_help() {
            $crate::flags::check_package(
                env!("CARGO_MANIFEST_DIR"),
                &[$(($name, env!(concat!("CARGO_BIN_EXE_", $name)))),+],
            );
        }
    };
}

/// The test `every_flag_taking_a_value_has_its_caps_row` of the package this is expanded in:
/// every flag taking a value of the binaries named (as `CARGO_BIN_EXE_…` ends) is named in a
/// row of `docs/SECURITY.md`'s caps table with a generator, or listed with its reason
/// ([`caps::check_package`]). In a package's integration tests:
/// `snowpipe_house::caps_inventory!("snowpipe-kafka");`.
#[macro_export]
macro_rules! caps_inventory {
    ($($name:literal),+ $(,)?) => {
        #[test]
        fn every_flag_taking_a_value_has_its_caps_row() {
            $crate::caps::check_package(
                env!("CARGO_MANIFEST_DIR"),
                &[$(($name, env!(concat!("CARGO_BIN_EXE_", $name)))),+],
            );
        }
    };
}

/// The import-graph tests of the package this is expanded in, from its
/// [`GraphRules`](graph_rules::GraphRules): `the_rooms_keep_their_rules` (floors, or no room
/// circle), `no_file_leads_back_to_itself`, and `one_module_style`
/// ([`module_style::check_package`]). In a package's `src/module_graph_tests.rs`:
/// `snowpipe_house::graph_rules!(RULES);`.
#[macro_export]
macro_rules! graph_rules {
    ($rules:expr) => {
        #[test]
        fn the_rooms_keep_their_rules() {
            $rules.check_rooms(env!("CARGO_MANIFEST_DIR"));
        }

        #[test]
        fn no_file_leads_back_to_itself() {
            $rules.check_files(env!("CARGO_MANIFEST_DIR"));
        }

        /// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
        #[test]
        fn one_module_style() {
            $crate::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
        }
    };
}
