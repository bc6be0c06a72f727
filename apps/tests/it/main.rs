//! The process tests of the applications: one test binary, one module per area. Each runs
//! an application's binary (`CARGO_BIN_EXE_<name>`, built by cargo before this binary) against
//! an emulator and checks what landed. Filter by module path:
//! `cargo test -p snowpipe-apps --test it ski_resort_crash::`.
//!
//! All tests share this process, so none may change process-wide state another test can see:
//! environment variables are set only on child processes. The shared harness is `common`.

mod common;

mod caps_inventory;
mod chaos;
mod console_browser;
mod ecommerce_crash;
mod hostile_app_option_files;
mod hostile_app_pace;
mod hostile_app_sizing;
mod hostile_bench_input;
mod hostile_password_file;
mod hostile_sizing_numbers;
mod hostile_suite;
mod json_logs;
mod ownership;
mod readme_flags;
mod sensor_stream_bad_records;
mod sensor_stream_crash;
mod sensor_stream_kinesis;
mod sensor_stream_kinesis_idle;
mod sensor_stream_sequence_switch;
mod sensor_stream_until_idle;
mod ski_resort_bad_records;
mod ski_resort_crash;
mod ski_resort_run;
mod table_replay_bad_rows;
mod table_replay_big_rows;
mod table_replay_crash;
mod table_replay_follow;
mod table_replay_follow_alter;
mod table_replay_follow_big_tx;
mod table_replay_follow_conn;
mod table_replay_follow_crash;
mod table_replay_follow_ddl;
mod table_replay_follow_dead_letters;
mod table_replay_follow_divert;
mod table_replay_follow_evolve;
mod table_replay_follow_failover;
mod table_replay_follow_fix_quoting;
mod table_replay_follow_keyed_dead;
mod table_replay_follow_keys;
mod table_replay_follow_lanes;
mod table_replay_follow_modify;
mod table_replay_follow_observe;
mod table_replay_follow_perf;
mod table_replay_follow_purge;
mod table_replay_follow_rejected;
mod table_replay_follow_replica;
mod table_replay_follow_resnapshot;
mod table_replay_follow_sink;
mod table_replay_follow_snapshot_dead;
mod table_replay_follow_statements;
mod table_replay_follow_truncate;
mod table_replay_follow_values;
mod table_replay_replay_old_dlq;
mod throughput_lanes;
