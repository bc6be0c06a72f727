//! The layer check the sink's and the emulator's `module_graph_tests.rs` call (the other
//! packages' rooms are checked for circles only, [`crate::circles`]): the rooms (top-level
//! modules) stand on floors, lowest first, and a room uses only the rooms on its floor or
//! below.

use crate::graph::Graph;

/// What breaks the floors of `graph`, one line each: a room that stands on no floor, a room in
/// `floors` that no module is in, a use pointing up a floor that `upward` (room, the room above
/// it it uses) does not name.
pub fn floor_breaks(graph: &Graph, floors: &[&[&str]], upward: &[(&str, &str)]) -> Vec<String> {
    let rooms = graph.rooms();
    let floor_of = |room: &str| floors.iter().position(|floor| floor.contains(&room));
    let mut breaks: Vec<String> = rooms
        .modules
        .iter()
        .filter(|room| floor_of(room).is_none())
        .map(|room| format!("room {room} stands on no floor: give it one"))
        .collect();
    for room in floors.iter().flat_map(|f| f.iter()) {
        if !rooms.modules.contains(*room) {
            breaks.push(format!("room {room} is on a floor, but no module is in it"));
        }
    }
    for u in &rooms.uses {
        let (Some(from), Some(to)) = (floor_of(&u.module), floor_of(&u.target)) else {
            continue;
        };
        if to > from && !upward.contains(&(u.module.as_str(), u.target.as_str())) {
            breaks.push(format!(
                "{} (floor {}) uses {} (floor {}): `{}` in src/{}",
                u.module,
                from + 1,
                u.target,
                to + 1,
                u.path,
                u.file.display()
            ));
        }
    }
    breaks
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::floor_breaks;
    use crate::graph::Graph;

    /// The Kafka sink's rooms, one to a floor.
    const ROOMS: &[&[&str]] = &[&["error"], &["formats"], &["rows"], &["ops"], &["source"]];

    /// The checks fail on a circle and on a use up a floor: a tree with every room, then a
    /// circle between two of its files (one in a lower room) and a use up from a low room.
    #[test]
    fn the_checks_find_circles_and_uses_up_in_a_small_tree() {
        let mut files: Vec<(PathBuf, String)> = ROOMS
            .iter()
            .map(|floor| (PathBuf::from(format!("{}/mod.rs", floor[0])), String::new()))
            .collect();
        files.push(("lib.rs".into(), "mod rows;\npub fn lock() {}\n".into()));
        files.push(("rows/row.rs".into(), "use crate::lock;\n".into()));
        files.push((
            "source/router.rs".into(),
            "use crate::rows::row::Row;\n".into(),
        ));
        files.push((
            "rows/tests.rs".into(),
            "use crate::source::router;\n".into(),
        ));
        let graph = Graph::of_sources(&files);
        let (layers, circles) = (floor_breaks(&graph, ROOMS, &[]), graph.circles(&[]));
        assert!(
            layers.is_empty() && circles.is_empty(),
            "{layers:?} {circles:?}"
        );
        let mut set = |path: &str, text: &str| {
            let file = files.iter_mut().find(|(p, _)| p == Path::new(path));
            file.unwrap().1 = text.to_owned();
        };
        set("rows/row.rs", "fn f() { crate::source::router::g(); }\n");
        set("formats/mod.rs", "use super::rows::row::Row;\n");
        let graph = Graph::of_sources(&files);
        let (layers, circles) = (floor_breaks(&graph, ROOMS, &[]), graph.circles(&[]));
        assert_eq!(
            layers,
            [
                "formats (floor 2) uses rows (floor 3): `super::rows::row::Row` in src/formats/mod.rs",
                "rows (floor 3) uses source (floor 5): `crate::source::router::g` in src/rows/row.rs",
            ]
        );
        assert_eq!(circles.len(), 2, "{circles:?}");
        assert!(
            circles[0].starts_with("rows::row uses source::router ")
                && circles[1].starts_with("source::router uses rows::row "),
            "{circles:?}"
        );
        // An arrow up named as known is left out.
        let graph = Graph::of_sources(&files);
        assert_eq!(floor_breaks(&graph, ROOMS, &[("formats", "rows")]).len(), 1);
    }
}
