//! Every flag of `snowpipe-kafka-lab` (`demo`, `bench`, `soak`) that takes a value is named in
//! a row of `docs/caps.toml` with a `hostile_` generator, or listed with its reason in
//! `house/src/caps_tables.rs`: the inventory shared with the other packages' binaries.

snowpipe_house::caps_inventory!("snowpipe-kafka-lab");
