//! `src/` has no import circle, at two grains ([`snowpipe_house::graph_rules`]):
//! * its top-level modules (its rooms): a room only uses rooms below it, so no room leads
//!   back to itself through other rooms.
//! * its files: no module (one source file) leads back to itself through other modules, so a
//!   circle inside a room (`pipeline::batch ⇄ pipeline::compress` was one) is caught too.

use snowpipe_house::graph_rules::GraphRules;

/// The one pair of rooms that use each other, on purpose: an `Error` carries the committed
/// `OffsetToken`, and `OffsetToken::new` returns the crate's `Error` (`error.rs` and
/// `offset.rs` are rooms of one file each, so the pair is the files' only exception too).
const RULES: GraphRules = GraphRules {
    known: &[("error", "offset"), ("offset", "error")],
    rooms: &["channel", "client", "client_state", "elastic"],
    files: &["pipeline::batch", "channel::actor::send", "channel::status"],
    advice: "a room may only use the rooms below it, ARCHITECTURE.md",
    ..GraphRules::DEFAULT
};

snowpipe_house::graph_rules!(RULES);
