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

#[cfg(test)]
mod tests {
    use super::circles;
    use crate::graph::Graph;

    /// The one pair allowed in the SDK: an `Error` carries an `OffsetToken`, whose `new`
    /// returns the `Error`.
    const ALLOWED: &[(&str, &str)] = &[("error", "offset"), ("offset", "error")];

    /// The checks fail on a circle: a tree like the SDK's `src/`, with a circle between two
    /// files of a room, then one between rooms (a test module's uses counted as its room's).
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

    /// A binary's circle (`main.rs` the root, as `snowpipe load`'s): two rooms that use each
    /// other, then the shared piece moved below both.
    #[test]
    fn a_binarys_circle_is_found_and_gone_once_the_piece_moves_below() {
        let mut files = vec![
            ("main.rs", "mod load;\nmod stdin;\nuse load::Input;\n"),
            ("load.rs", "fn f() { crate::stdin::read(); }\n"),
            ("stdin.rs", "use crate::load::{Input, Settings};\n"),
        ];
        let (rooms, modules) = circles(&Graph::of_sources(&files), &[]);
        assert_eq!(rooms, modules);
        assert_eq!(modules.len(), 2, "{modules:?}");
        files[2].1 = "use crate::input::{Input, Settings};\n";
        files.push(("input.rs", ""));
        let (rooms, modules) = circles(&Graph::of_sources(&files), &[]);
        assert!(
            rooms.is_empty() && modules.is_empty(),
            "{rooms:?} {modules:?}"
        );
    }
}
