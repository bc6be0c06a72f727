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

use snowpipe_house::circles::{assert_no_file_circle, assert_no_room_circle, circles, BELOW_BOTH};
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

/// The checks fail on a circle: a tree like `src/`, with a circle between two files of an
/// application, then one between an application and `common`.
#[test]
fn the_checks_find_circles_in_a_small_tree() {
    let mut files = [
        ("lib.rs", "pub mod common;\npub mod ski_resort;\n"),
        ("common.rs", "mod cli;\npub use cli::Args;\n"),
        ("common/cli.rs", ""),
        (
            "ski_resort/mod.rs",
            "mod pipeline;\nmod queue;\nuse crate::common::Args;\n",
        ),
        ("ski_resort/pipeline.rs", "use super::queue::Queue;\n"),
        ("ski_resort/queue.rs", "fn f() { super::pipeline::g(); }\n"),
        (
            "ski_resort/queue/tests.rs",
            "use crate::ski_resort::pipeline;\n",
        ),
        (
            "bin/ski_resort.rs",
            "fn main() { snowpipe_apps::ski_resort::main() }\n",
        ),
    ];
    let (rooms, modules) = circles(&library(Graph::of_sources(&files)), KNOWN);
    assert!(rooms.is_empty(), "{rooms:?}");
    assert_eq!(
        modules,
        [
            "ski_resort::pipeline uses ski_resort::queue (`super::queue::Queue` in \
             src/ski_resort/pipeline.rs), and ski_resort::queue → ski_resort::pipeline leads \
             back",
            "ski_resort::queue uses ski_resort::pipeline (`super::pipeline::g` in \
             src/ski_resort/queue.rs), and ski_resort::pipeline → ski_resort::queue leads back",
        ]
    );
    files[5].1 = "use crate::common::Args;\n";
    files[1].1 = "mod cli;\npub use cli::Args;\nfn f() { crate::ski_resort::pipeline::g(); }\n";
    let (rooms, modules) = circles(&library(Graph::of_sources(&files)), KNOWN);
    assert_eq!(
        rooms,
        [
            "common uses ski_resort (`crate::ski_resort::pipeline::g` in src/common.rs), and \
             ski_resort → common leads back",
            "ski_resort uses common (`crate::common::Args` in src/ski_resort/mod.rs), and \
             common → ski_resort leads back",
        ]
    );
    assert_eq!(modules.len(), 3, "{modules:?}");
    assert!(
        modules[0].starts_with("common uses ski_resort::pipeline "),
        "{modules:?}"
    );
}

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
