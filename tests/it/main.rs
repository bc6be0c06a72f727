//! The integration tests of `snowpipe-streaming`: one test binary, one module per area,
//! instead of one binary per file, so the suite links once instead of once per file. Filter by
//! module path: `cargo test -p snowpipe-streaming --test it exactly_once::` (`-p`, or
//! `snowpipe-kafka`'s `it` binary is built and run too).
//!
//! All tests share this process, so none may change process-wide state another test can see:
//! environment variables are set only on child processes (see `config_env`), and metrics
//! recorders are installed per thread, not globally (see `elastic`). The shared harness is
//! `common`; the key and certificate fixtures stay in `tests/fixtures/` (the unit tests and
//! `test_util` use them too). The applications' process tests are in `apps/tests/it`.

mod common;

mod arrow;
mod arrow_random;
mod arrow_zones;
mod auth_keypair;
mod bad_input;
mod binary_format;
mod changelog;
mod channel_e2e;
mod channel_emulator;
mod client_calls;
mod config_env;
mod config_profile;
mod config_validation;
mod conformance;
mod doc_paths;
mod elastic;
mod exactly_once;
mod exactly_once_timeouts;
mod lanes;
mod ownership;
mod protocol_fidelity;
mod readme;
mod rest_proxy;
mod rest_tls;
mod rest_tls_env;
mod row_serialization;
mod snowflake_setup;
mod sql_emulator;
mod uncommitted_rows;
