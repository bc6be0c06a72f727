//! `src/` has no import circle. Checked from the sources, cheaply ([`snowpipe_house::circles`], with the graph
//! every package's `module_graph_tests.rs` shares, [`snowpipe_house::graph`]), at two grains:
//! * its top-level modules (its rooms): a room only uses rooms below it, so no room leads
//!   back to itself through other rooms.
//! * its files: no module (one source file) leads back to itself through other modules, so a
//!   circle inside a room (`pipeline::batch ⇄ pipeline::compress` was one) is caught too.

use snowpipe_house::circles::{assert_no_file_circle, assert_no_room_circle, BELOW_BOTH};
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

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
