//! `apps/src/` has no import circle, at two grains ([`snowpipe_house::graph_rules`]):
//! * its rooms (top-level modules: each application and `common`): no room leads back to
//!   itself through other rooms;
//! * its files: no module (one source file) leads back to itself through other modules, so a
//!   circle inside an application is caught too.
//!
//! The binaries (`src/bin/<app>.rs`) are crate roots of their own, no modules of the library:
//! left out.

use snowpipe_house::graph_rules::GraphRules;

/// Known circles: none today. An arrow added to `known` must name the issue that breaks its
/// circle.
const RULES: GraphRules = GraphRules {
    rooms: &["common", "ski_resort"],
    files: &["ski_resort::queue", "sensor_stream::kinesis::sequence"],
    advice: "move what two applications share into `common`",
    without: Some("bin::"),
    ..GraphRules::DEFAULT
};

snowpipe_house::graph_rules!(RULES);
