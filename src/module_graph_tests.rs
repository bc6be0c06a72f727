//! `src/` has no import circle. Checked from the sources, cheaply ([`snowpipe_house::circles`], with the graph
//! every package's `module_graph_tests.rs` shares, [`snowpipe_house::graph`]), at two grains:
//! * its top-level modules (its rooms): a room only uses rooms below it, so no room leads
//!   back to itself through other rooms.
//! * its files: no module (one source file) leads back to itself through other modules, so a
//!   circle inside a room (`pipeline::batch ⇄ pipeline::compress` was one) is caught too.

use snowpipe_house::circles::{assert_no_file_circle, assert_no_room_circle, circles, BELOW_BOTH};
use snowpipe_house::graph::Graph;

/// The one pair of rooms that use each other, on purpose: an `Error` carries the committed
/// `OffsetToken`, and `OffsetToken::new` returns the crate's `Error` (`error.rs` and
/// `offset.rs` are rooms of one file each, so the pair is the files' only exception too).
const ALLOWED: &[(&str, &str)] = &[("error", "offset"), ("offset", "error")];

#[test]
fn the_top_level_modules_have_no_cycle() {
    assert_no_room_circle(
        &Graph::of_crate(env!("CARGO_MANIFEST_DIR")),
        ALLOWED,
        &["channel", "client", "client_state", "elastic"],
        "a room may only use the rooms below it, ARCHITECTURE.md",
    );
}

#[test]
fn no_file_leads_back_to_itself() {
    assert_no_file_circle(
        &Graph::of_crate(env!("CARGO_MANIFEST_DIR")),
        ALLOWED,
        &["pipeline::batch", "channel::actor::send", "channel::status"],
        BELOW_BOTH,
    );
}

/// The checks fail on a circle: a tree like `src/`, with a circle between two files of a room,
/// then one between rooms.
#[test]
fn the_checks_find_circles_in_a_small_tree() {
    let mut files = vec![
        ("lib.rs", "pub use error::Error;\npub use offset::OffsetToken;\n"),
        ("error.rs", "use crate::OffsetToken;\n"),
        ("offset.rs", "use crate::Error;\n"),
        ("pipeline/mod.rs", "mod batch;\nmod compress;\nuse batch::B;\n"),
        ("pipeline/batch.rs", "use super::compress::frame;\n"),
        ("pipeline/compress.rs", "fn f() { super::batch::g(); }\n"),
        (
            "channel/mod.rs",
            "use crate::pipeline::batch::B;\n#[cfg(test)]\nmod tests {\n    use crate::client::C;\n}\n",
        ),
        ("client.rs", "use crate::channel::Channel;\n"),
        ("channel/tests/mod.rs", "use crate::client::C;\n"),
    ];
    let (rooms, modules) = circles(&Graph::of_sources(&files), ALLOWED);
    assert!(rooms.is_empty(), "{rooms:?}");
    assert_eq!(
        modules,
        [
            "pipeline::batch uses pipeline::compress (`super::compress::frame` in \
             src/pipeline/batch.rs), and pipeline::compress → pipeline::batch leads back",
            "pipeline::compress uses pipeline::batch (`super::batch::g` in \
             src/pipeline/compress.rs), and pipeline::batch → pipeline::compress leads back",
        ]
    );
    files[5].1 = "fn f() { crate::client::h(); }\n";
    let (rooms, modules) = circles(&Graph::of_sources(&files), ALLOWED);
    assert_eq!(rooms.len(), 3, "{rooms:?}");
    assert!(rooms[0].starts_with("channel uses pipeline"), "{rooms:?}");
    assert_eq!(modules.len(), 4, "{modules:?}");
}

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
