//! `apps/src/` has no import circle, at two grains, as the SDK's test checks its own (by the
//! circle check the SDK's, `load`'s and `cli-support`'s tests share, [`snowpipe_house::circles`], on the graph
//! the sink's and the emulator's share too, [`snowpipe_house::graph`]):
//! * its rooms (top-level modules: each application and `common`): no room leads back to
//!   itself through other rooms;
//! * its files: no module (one source file) leads back to itself through other modules, so a
//!   circle inside an application is caught too.
//!
//! The binaries (`src/bin/<app>.rs`) are crate roots of their own, no modules of the library:
//! left out.

use snowpipe_house::circles::{assert_no_file_circle, assert_no_room_circle, BELOW_BOTH};
use snowpipe_house::graph::Graph;

/// Known circles, as the edges left out of the check: none today. An edge listed here must
/// name the issue that breaks its circle.
const KNOWN: &[(&str, &str)] = &[];

/// The library's graph: the crate's, without the binaries in `src/bin/`.
fn library(mut graph: Graph) -> Graph {
    let binary = |module: &str| module.starts_with("bin::");
    graph.modules.retain(|m| !binary(m));
    graph
        .uses
        .retain(|u| !binary(&u.module) && !binary(&u.target));
    graph
}

#[test]
fn the_rooms_have_no_cycle() {
    let graph = library(Graph::of_crate(env!("CARGO_MANIFEST_DIR")));
    let rooms = graph.rooms().modules;
    assert!(!rooms.contains("bin"), "{rooms:?}");
    assert_no_room_circle(
        &graph,
        KNOWN,
        &["common", "ski_resort"],
        "move what two applications share into `common`",
    );
}

#[test]
fn no_file_leads_back_to_itself() {
    assert_no_file_circle(
        &library(Graph::of_crate(env!("CARGO_MANIFEST_DIR"))),
        KNOWN,
        &["ski_resort::queue", "sensor_stream::kinesis::sequence"],
        BELOW_BOTH,
    );
}

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
