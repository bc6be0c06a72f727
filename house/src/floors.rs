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
