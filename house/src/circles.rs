//! The circle check of the crates whose rooms (top-level modules) stand on no floors, called
//! by their `module_graph_tests.rs` (the SDK's, the apps', `load`'s and `cli-support`'s) on the
//! graph [`crate::graph`] reads (the sink's and the emulator's rooms are in floors,
//! [`crate::floors`]), at two grains: no room leads back to itself through other rooms, and no module (one source file)
//! through other modules, so a circle inside a room is caught too. Each crate's test names its
//! known circles (the edges left out) and a few of its rooms or modules, so a check that read
//! nothing cannot pass.

use crate::graph::{assert_none, Graph};

/// The advice most crates give with a circle.
pub const BELOW_BOTH: &str = "move what both sides need to a module below both";

/// The rooms' circles, then the files' circles, of `graph`: each through an arrow `known` does
/// not name.
pub fn circles(graph: &Graph, known: &[(&str, &str)]) -> (Vec<String>, Vec<String>) {
    (graph.rooms().circles(known), graph.circles(known))
}

/// Fails, giving `advice`, if a room of `graph` leads back to itself through other rooms by
/// arrows `known` does not name; first, if one of `rooms` is not a room of it.
#[track_caller]
pub fn assert_no_room_circle(graph: &Graph, known: &[(&str, &str)], rooms: &[&str], advice: &str) {
    let graph = graph.rooms();
    assert_read(&graph, rooms);
    assert_none(&graph.circles(known), &format!("module cycles ({advice})"));
}

/// Fails, giving `advice`, if a module of `graph` leads back to itself through other modules
/// by arrows `known` does not name; first, if one of `modules` is not a module of it.
#[track_caller]
pub fn assert_no_file_circle(
    graph: &Graph,
    known: &[(&str, &str)],
    modules: &[&str],
    advice: &str,
) {
    assert_read(graph, modules);
    assert_none(&graph.circles(known), &format!("import circles ({advice})"));
}

/// Fails if one of `modules` is not in `graph`: the sources were not read as they should be.
#[track_caller]
fn assert_read(graph: &Graph, modules: &[&str]) {
    let missing: Vec<&&str> = modules
        .iter()
        .filter(|m| !graph.modules.contains(**m))
        .collect();
    assert!(missing.is_empty(), "{missing:?} not in {:?}", graph.modules);
}
