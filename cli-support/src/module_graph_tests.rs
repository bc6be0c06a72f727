//! `cli-support/src/` has no import circle: no module (one source file) leads back to itself
//! through other modules, and no room (top-level module) through other rooms. Two rooms that
//! use nothing of each other today; checked from the sources as the SDK's, the sink's and the
//! emulator's tests do, by the graph they share and the circle check ([`snowpipe_house::graph`],
//! [`snowpipe_house::circles`]), so a circle cannot come in unseen.

use snowpipe_house::circles::{assert_no_file_circle, assert_no_room_circle, BELOW_BOTH};
use snowpipe_house::graph::Graph;

/// Known circles, as the edges left out of the check: none. An edge listed here must name the
/// issue that breaks its circle.
const KNOWN: &[(&str, &str)] = &[];

#[test]
fn no_module_leads_back_to_itself() {
    let graph = Graph::of_crate(env!("CARGO_MANIFEST_DIR"));
    assert_no_room_circle(&graph, KNOWN, &["env", "log"], BELOW_BOTH);
    assert_no_file_circle(&graph, KNOWN, &[], BELOW_BOTH);
}

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
