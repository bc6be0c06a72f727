//! `emulator/src/` is in floors and has no import circle ([`snowpipe_house::graph_rules`]).
//! The rooms (top-level modules) stand on floors (lowest first, the order the crate docs in
//! `lib.rs` list): a room uses only the rooms on its floor or below. No module (file) leads
//! back to itself through other modules.

use snowpipe_house::graph_rules::GraphRules;

/// Known circles and known arrows up a floor: none today (issue 75 moved `ChannelTotals`
/// into `service` and the identifier limit into `catalog`, and put the sandbox, SQLite's
/// bounds, below the rows and the storage that follow them). An arrow added to `known` or
/// `upward` must name the issue that takes it away.
const RULES: GraphRules = GraphRules {
    floors: Some(&[
        &["base"],
        &["security"],
        &["catalog", "sql_sandbox"],
        &["convert", "storage", "offline"],
        &["channels", "stage", "settings"],
        &["sql_api"],
        &["service"],
        &["http"],
        &["server", "with_key"],
    ]),
    files: &["sql_api::rewrite", "stage::upload"],
    advice: "move a piece used up a floor down to where both sides may use it",
    ..GraphRules::DEFAULT
};

snowpipe_house::graph_rules!(RULES);
