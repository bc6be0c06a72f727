//! `snowpipe load`'s integration tests: the real binary against an emulator started in the
//! test process (loopback only), connected through `SNOWFLAKE_*` variables.

mod common;

mod bucket_dead_letters;
mod buckets;
mod caps_inventory;
mod crash;
mod csv;
mod errors;
mod follow;
mod hostile_bucket;
mod hostile_ca_files;
mod hostile_emulator_ddl;
mod hostile_file_names;
mod hostile_files;
mod hostile_profile_files;
mod hostile_records;
mod hostile_server_answers;
mod hostile_suite;
mod json_logs;
mod kubernetes_job;
mod lane_budget;
mod lanes_previous_release;
mod ndjson;
mod parquet;
mod parquet_hostile;
mod ranges;
mod readme_flags;
mod readme_quickstart;
mod rerun;
mod shards;
mod spool;
