//! Every flag of `snowpipe-kafka` (and its subcommands) that takes a value is named in a row of
//! `docs/SECURITY.md`'s caps table with a `hostile_` generator, or listed with its reason in
//! `house/src/caps_tables.rs`: the inventory shared with the other packages' binaries,
//! `house/src/caps.rs`.

snowpipe_house::caps_inventory!("snowpipe-kafka");
