//! `kafka/src/` has no import circle: the rooms (top-level modules) are in layers, each using
//! only the rooms below it (the order `ARCHITECTURE.md` draws), and no module (file) leads back
//! to itself through other modules ([`snowpipe_house::graph_rules`]).

use snowpipe_house::graph_rules::GraphRules;

/// The rooms, lowest first, one to a floor: a room may use the rooms before it, never one
/// after it.
const RULES: GraphRules = GraphRules {
    floors: Some(&[
        &["lock"],
        &["error"],
        &["formats"],
        &["rows"],
        &["ops"],
        &["source"],
        &["connector"],
        &["sink"],
        &["cli"],
    ]),
    files: &["rows::row", "source::router"],
    ..GraphRules::DEFAULT
};

snowpipe_house::graph_rules!(RULES);
