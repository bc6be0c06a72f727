//! `load/src/` has no import circle: no module (one source file) leads back to itself through
//! other modules, and no room (top-level module) through other rooms
//! ([`snowpipe_house::graph_rules`]). The crate root is `main.rs` (a binary): it uses every
//! module and none uses it.

use snowpipe_house::graph_rules::GraphRules;

/// Known circles: none today (issue 75 moved `Input` and `Settings` out of `load.rs` into
/// `input.rs`, below `load.rs` and `stdin.rs`, which used each other). An arrow added to
/// `known` must name the issue that breaks its circle.
const RULES: GraphRules = GraphRules {
    rooms: &["load", "stdin"],
    ..GraphRules::DEFAULT
};

snowpipe_house::graph_rules!(RULES);
