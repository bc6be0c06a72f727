//! `kafka/src/` has no import circle: the rooms (top-level modules) are in layers, each using
//! only the rooms below it ([`ROOMS`], the order `ARCHITECTURE.md` draws), and no module (file)
//! leads back to itself through other modules. Checked from the sources as the SDK's and the
//! emulator's tests do, by the graph they share ([`snowpipe_house::graph`]).

use std::path::{Path, PathBuf};

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

/// The checks fail on a circle and on a use up a layer: a tree with every room, then a
/// circle between two of its files (one in a lower room) and a use up from the lowest room.
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
    let (layers, circles) = breaks(&Graph::of_sources(&files));
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
    let (layers, circles) = breaks(&Graph::of_sources(&files));
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
}

/// One module style (`foo/mod.rs`), no `#[path]` include from outside the package.
#[test]
fn one_module_style() {
    snowpipe_house::module_style::check_package(env!("CARGO_MANIFEST_DIR"));
}
