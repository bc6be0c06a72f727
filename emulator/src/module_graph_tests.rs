//! `emulator/src/` is in floors and has no import circle. The rooms (top-level modules) stand
//! on floors ([`FLOORS`], lowest first, the order the crate docs in `lib.rs` list): a room uses
//! only the rooms on its floor or below. No module (file) leads back to itself through other
//! modules. Checked from the sources as the SDK's and the sink's tests do, by the graph and
//! the floor check they share ([`snowpipe_house::graph`], [`snowpipe_house::floors`]).

use snowpipe_house::floors;
use snowpipe_house::graph::{assert_none, Graph};

/// Known circles, as the edges left out of the check: none today. An edge listed here must
/// name the issue that breaks its circle.
const KNOWN: &[(&str, &str)] = &[];

/// The floors, lowest first, each a list of rooms: a room may use the rooms on its floor and
/// the floors before it, never a room on a later floor.
const FLOORS: &[&[&str]] = &[
    &["base"],
    &["security"],
    &["catalog", "sql_sandbox"],
    &["convert", "storage", "offline"],
    &["channels", "stage", "settings"],
    &["sql_api"],
    &["service"],
    &["http"],
    &["server", "with_key"],
];

/// Known arrows up (room, the room above it it uses), left out of the floor check: none today
/// (issue 75 moved `ChannelTotals` into `service` and the identifier limit into `catalog`, and
/// put the sandbox, SQLite's bounds, below the rows and the storage that follow them). An arrow
/// listed here must name the issue that takes it down.
const UPWARD: &[(&str, &str)] = &[];

/// What breaks the floors of `graph`, then its circles.
fn breaks(graph: &Graph) -> (Vec<String>, Vec<String>) {
    (
        floors::floor_breaks(graph, FLOORS, UPWARD),
        graph.circles(KNOWN),
    )
}

#[test]
fn each_room_uses_only_its_floor_and_below() {
    let (floors, _) = breaks(&Graph::of_crate(env!("CARGO_MANIFEST_DIR")));
    assert_none(
        &floors,
        "the floors are broken (move a piece used up a floor down to where both sides may use \
         it; a new room needs its floor in FLOORS and in lib.rs's list)",
    );
}

#[test]
fn no_module_leads_back_to_itself() {
    let graph = Graph::of_crate(env!("CARGO_MANIFEST_DIR"));
    assert!(graph.modules.contains("sql_api::rewrite") && graph.modules.contains("stage::upload"));
    let (_, circles) = breaks(&graph);
    assert_none(
        &circles,
        "import circles (move what both sides need to a module below both)",
    );
}

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
