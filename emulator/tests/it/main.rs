//! The integration tests of `snowpipe-emulator`: one test binary, one module per area,
//! instead of one binary per file, so the suite links once instead of 11 times. Filter by
//! module path: `cargo test -p snowpipe-emulator --test it protocol::`.
//!
//! All tests share this process, so none may change process-wide state another test can see
//! (none sets environment variables; a test that must would run itself in a child process,
//! as the SDK's `tests/it/common::run_test_in_child` does). The shared harness is `common`.

mod common;

mod caps_inventory;
mod catalog;
mod classic_migration;
mod convert;
mod ddl_files;
mod durability;
mod environment;
mod exact_output;
mod faults;
mod fidelity;
mod file_mode;
mod hardening;
mod hostile_console;
mod hostile_credentials;
mod hostile_data_dir;
mod hostile_file_mode;
mod hostile_input;
mod hostile_option_files;
mod hostile_suite;
mod json_logs;
mod keygen;
mod pipe_cost;
mod pipe_transforms;
mod protocol;
mod readme_flags;
mod round_five;
mod schema_evolution;
mod sink_sql;
mod sql_cost;
mod sql_ddl;
mod sql_drop;
mod sql_overwrite;
mod sql_sandbox;
mod table_features;
