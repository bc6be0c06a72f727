//! The integration tests of `snowpipe-kafka`: one test binary (`cargo test -p snowpipe-kafka
//! --test it`), one module per area. They run the real `snowpipe-kafka` binary
//! (`CARGO_BIN_EXE_snowpipe-kafka`), most against librdkafka's mock cluster and the emulator.
//! Filter by module path, e.g. `cargo test -p snowpipe-kafka --test it rebalance::`.
//! What they share (the lab set-up, producing and awaiting delivery, running the sink, the
//! Schema Registry) is in `common`.

mod alerts;
mod audit;
mod caps_inventory;
mod check;
mod client_side;
mod command_line;
mod common;
mod connector_takeover;
mod container;
mod create_tables;
mod duplicate_keys;
mod environment;
mod golden;
mod headers;
mod hostile_audit;
mod hostile_formats;
mod hostile_registry;
mod hostile_secret_files;
mod hostile_sql_answers;
mod hostile_suite;
mod json_check_edges;
mod json_logs;
mod kubernetes_manifests;
mod late_start;
mod layouts;
mod memory;
mod operations;
mod partitions_added;
mod readme_flags;
mod rebalance;
mod refetch;
mod registry_layouts;
mod retention;
mod row_errors;
mod schema_registry;
mod stalls;
mod topic_errors;
mod topic_regex;
mod v3_migration;
