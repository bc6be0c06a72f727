//! `kafka/lab/src/` has no import circle: the rooms are in layers, each using only the rooms
//! below it, and no module leads back to itself ([`snowpipe_house::graph_rules`]).

use snowpipe_house::graph_rules::GraphRules;

/// The rooms, lowest first.
const RULES: GraphRules = GraphRules {
    floors: Some(&[&["demo"], &["bench"], &["soak"]]),
    ..GraphRules::DEFAULT
};

snowpipe_house::graph_rules!(RULES);
