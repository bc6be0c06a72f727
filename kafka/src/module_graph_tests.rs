//! `kafka/src/` has no import circle: the rooms (top-level modules) are in layers, each using
//! only the rooms below it ([`ROOMS`], the order `ARCHITECTURE.md` draws), and no module (file)
//! leads back to itself through other modules. Checked from the sources as the SDK's and the
//! emulator's tests do, by the graph they share ([`snowpipe_house::graph`]).

use snowpipe_house::floors;
use snowpipe_house::graph::{assert_none, Graph};

/// The rooms, lowest first, one to a floor: a room may use the rooms before it, never one
/// after it.
const ROOMS: &[&[&str]] = &[
    &["error"],
    &["formats"],
    &["rows"],
    &["ops"],
    &["source"],
    &["connector"],
    &["sink"],
    &["cli"],
    &["demo"],
    &["bench"],
    &["soak"],
];

/// What breaks the layers of `graph`, then its circles.
fn breaks(graph: &Graph) -> (Vec<String>, Vec<String>) {
    (floors::floor_breaks(graph, ROOMS, &[]), graph.circles(&[]))
}

#[test]
fn each_room_uses_only_the_rooms_below_it() {
    let (layers, _) = breaks(&Graph::of_crate(env!("CARGO_MANIFEST_DIR")));
    assert_none(
        &layers,
        &format!(
            "a room may only use the rooms below it ({ROOMS:?}; a new room needs its layer \
             here and in ARCHITECTURE.md)"
        ),
    );
}

#[test]
fn no_module_leads_back_to_itself() {
    let graph = Graph::of_crate(env!("CARGO_MANIFEST_DIR"));
    assert!(graph.modules.contains("rows::row") && graph.modules.contains("source::router"));
    let (_, circles) = breaks(&graph);
    assert_none(&circles, "import circles");
}

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
