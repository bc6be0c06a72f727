//! `src/` has no import circle. Checked from the sources, cheaply ([`circles`], with the graph
//! every package's `module_graph_tests.rs` shares, [`circles::graph`]), at two grains:
//! * its top-level modules (its rooms): a room only uses rooms below it, so no room leads
//!   back to itself through other rooms.
//! * its files: no module (one source file) leads back to itself through other modules, so a
//!   circle inside a room (`pipeline::batch ⇄ pipeline::compress` was one) is caught too.

mod circles;

use std::path::Path;

use circles::graph::{self, Graph};
use circles::{assert_no_file_circle, assert_no_room_circle, circles, walk, BELOW_BOTH};

/// The one pair of rooms that use each other, on purpose: an `Error` carries the committed
/// `OffsetToken`, and `OffsetToken::new` returns the crate's `Error` (`error.rs` and
/// `offset.rs` are rooms of one file each, so the pair is the files' only exception too).
const ALLOWED: &[(&str, &str)] = &[("error", "offset"), ("offset", "error")];

#[test]
fn the_top_level_modules_have_no_cycle() {
    assert_no_room_circle(
        &Graph::of_crate(),
        ALLOWED,
        &["channel", "client", "client_state", "elastic"],
        "a room may only use the rooms below it, ARCHITECTURE.md",
    );
}

#[test]
fn no_file_leads_back_to_itself() {
    assert_no_file_circle(
        &Graph::of_crate(),
        ALLOWED,
        &["pipeline::batch", "channel::actor::send", "channel::status"],
        BELOW_BOTH,
    );
}

/// The checks fail on a circle: a tree like `src/`, with a circle between two files of a room,
/// then one between rooms.
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

#[test]
fn the_checker_follows_paths_to_the_longest_module() {
    use graph::{from_root, module_of, resolve, root_exports};
    use walk::{code, paths_after};
    let text = "// crate::ignored\n#[cfg(doc)]\nuse crate::DocOnly;\nuse crate::a::b::C;\n\
                use super::{d, e::F};\nuse super::super::g::H;\n#[cfg(test)]\nmod tests {\n    \
                fn t() { crate::t::x(); }\n}\n#[cfg(test)]\nuse crate::u::v;\n\
                #[cfg(all(test, unix))]\nmod unix_tests {\n    use crate::w;\n}\n\
                fn f() { self::i::j(); crate::Root::new(); }\n";
    let code = code(text);
    assert_eq!(
        paths_after(&code, "crate::"),
        [vec!["a", "b", "C"], vec!["Root", "new"]]
    );
    assert_eq!(
        paths_after(&code, "super::"),
        [vec!["d"], vec!["e", "F"], vec!["super", "g", "H"]]
    );
    assert_eq!(paths_after(&code, "self::"), [vec!["i", "j"]]);
    let p = |s: &str| s.split("::").map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(from_root("x::y::z", p("super::g::H")), p("x::g::H"));
    assert_eq!(from_root("x::y::z", p("d")), p("x::y::d"));
    let modules = ["a", "a::b", "x"].map(str::to_owned).into();
    let exports = root_exports("pub use a::b::{C, D as E};\npub use x::Y;\n", &modules);
    assert_eq!(exports["C"], "a::b");
    assert_eq!(exports["E"], "a::b");
    assert_eq!(exports["Y"], "x");
    let r = |s: &str| resolve(&modules, &exports, &p(s));
    assert_eq!(r("a::b::C").as_deref(), Some("a::b"));
    assert_eq!(r("a::c::D").as_deref(), Some("a"));
    assert_eq!(r("Y").as_deref(), Some("x"));
    assert_eq!(r("Root"), None);
    assert_eq!(module_of(Path::new("channel/mod.rs")), "channel");
    assert_eq!(module_of(Path::new("pipeline/batch.rs")), "pipeline::batch");
}
