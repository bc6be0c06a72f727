//! A package's import rules as data: its rooms (top-level modules) either stand on floors
//! ([`crate::floors`]) or need only lead back to no other room ([`crate::circles`]), its files
//! lead back to no file, and a few rooms and modules it names prove the sources were read. A
//! package's `module_graph_tests.rs` states its [`GraphRules`] and expands
//! [`graph_rules!`](crate::graph_rules!) once: the same three tests in every package.

use crate::circles::{assert_no_file_circle, assert_no_room_circle};
use crate::floors::floor_breaks;
use crate::graph::{assert_none, Graph};

/// What a package's import graph must keep.
#[derive(Debug, Clone, Copy)]
pub struct GraphRules {
    /// The rooms' floors, lowest first: a room uses only rooms on its floor or below. `None`:
    /// the rooms need only have no circle.
    pub floors: Option<&'static [&'static [&'static str]]>,
    /// Known arrows up a floor (room, the room above it it uses), each naming in a comment the
    /// issue that takes it down.
    pub upward: &'static [(&'static str, &'static str)],
    /// Known circles, as the arrows (from, to) left out of the circle checks.
    pub known: &'static [(&'static str, &'static str)],
    /// Rooms that must be in the graph (without floors; floors name every room).
    pub rooms: &'static [&'static str],
    /// Modules (files) that must be in the graph.
    pub files: &'static [&'static str],
    /// What a failure advises.
    pub advice: &'static str,
    /// Modules under this path prefix are not the library's (`bin::`: the binaries of
    /// `src/bin/`, crate roots of their own) and are left out.
    pub without: Option<&'static str>,
}

impl GraphRules {
    /// Rules with no floors, no known arrows, nothing named, the common advice.
    pub const DEFAULT: Self = Self {
        floors: None,
        upward: &[],
        known: &[],
        rooms: &[],
        files: &[],
        advice: crate::circles::BELOW_BOTH,
        without: None,
    };

    /// The graph of the crate at `manifest_dir`, less the modules [`Self::without`] leaves out.
    pub fn graph(&self, manifest_dir: &str) -> Graph {
        let mut graph = Graph::of_crate(manifest_dir);
        if let Some(prefix) = self.without {
            let out = |module: &str| module.starts_with(prefix);
            graph.modules.retain(|m| !out(m));
            graph.uses.retain(|u| !out(&u.module) && !out(&u.target));
        }
        graph
    }

    /// Fails if the rooms break their floors, or, without floors, lead back to themselves.
    #[track_caller]
    pub fn check_rooms(&self, manifest_dir: &str) {
        let graph = self.graph(manifest_dir);
        match self.floors {
            Some(floors) => assert_none(
                &floor_breaks(&graph, floors, self.upward),
                &format!(
                    "the floors are broken ({}; a new room needs its floor here and in \
                     ARCHITECTURE.md)",
                    self.advice
                ),
            ),
            None => assert_no_room_circle(&graph, self.known, self.rooms, self.advice),
        }
    }

    /// Fails if a module (one source file) leads back to itself through other modules.
    #[track_caller]
    pub fn check_files(&self, manifest_dir: &str) {
        assert_no_file_circle(
            &self.graph(manifest_dir),
            self.known,
            self.files,
            self.advice,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::GraphRules;

    /// This package's own rules, as a package states them: its rooms have no circle, and the
    /// modules it names are read.
    const RULES: GraphRules = GraphRules {
        rooms: &["graph", "circles", "floors"],
        files: &["graph_rules", "walk"],
        ..GraphRules::DEFAULT
    };

    crate::graph_rules!(RULES);

    /// A room named that the sources do not have fails the check: it read nothing it should.
    #[test]
    #[should_panic(expected = "not in")]
    fn a_named_room_the_sources_lack_fails() {
        GraphRules {
            rooms: &["no_such_room"],
            ..RULES
        }
        .check_rooms(env!("CARGO_MANIFEST_DIR"));
    }

    /// Floors that leave a room out fail the check, naming the room.
    #[test]
    #[should_panic(expected = "stands on no floor")]
    fn a_room_on_no_floor_fails() {
        GraphRules {
            floors: Some(&[&["graph"]]),
            ..RULES
        }
        .check_rooms(env!("CARGO_MANIFEST_DIR"));
    }
}
