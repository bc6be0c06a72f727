//! The integration tests of `snowpipe-streaming`: one test binary, one module per area,
//! instead of one binary per file, so the suite links once instead of 27 times. Filter by
//! module path: `cargo test -p snowpipe-streaming --test it exactly_once::` (`-p`, or
//! `snowpipe-kafka`'s `it` binary is built and run too).
//!
//! All tests share this process, so none may change process-wide state another test can see:
//! environment variables are set only on child processes (see `config_env`), and metrics
//! recorders are installed per thread, not globally (see `elastic`). The shared harness is
//! `common`; the key and certificate fixtures stay in `tests/fixtures/` (the unit tests and
//! `test_util` use them too).

mod common;

// Modules of the examples that tests drive directly, each loaded once for the whole binary
// and at its root, as in the example (`source` names `crate::schema`).
#[cfg(unix)]
#[allow(dead_code)]
#[path = "../../examples/sensor_stream/broker.rs"]
mod broker;
#[cfg(unix)]
#[allow(dead_code)]
#[path = "../../examples/table_replay/mariadb.rs"]
mod mariadb;
#[cfg(unix)]
#[allow(dead_code)]
#[path = "../../examples/sensor_stream/nats_server.rs"]
mod nats_server;
#[cfg(unix)]
#[allow(dead_code)]
#[path = "../../examples/table_replay/sample.rs"]
mod sample;
#[cfg(unix)]
#[allow(dead_code)]
#[path = "../../examples/table_replay/schema.rs"]
mod schema;
#[cfg(unix)]
#[allow(dead_code)]
#[path = "../../examples/table_replay/source.rs"]
mod source;

mod auth_keypair;
mod bad_input;
mod channel_e2e;
mod channel_emulator;
mod chaos;
mod client_calls;
mod config_env;
mod config_profile;
mod config_validation;
mod console_browser;
mod ecommerce_crash;
mod elastic;
mod exactly_once;
mod ownership;
mod protocol_fidelity;
mod rest_proxy;
mod rest_tls;
mod rest_tls_env;
mod row_serialization;
mod sensor_stream_bad_records;
mod sensor_stream_crash;
mod ski_resort_bad_records;
mod ski_resort_crash;
mod ski_resort_run;
mod sql_emulator;
mod table_replay_bad_rows;
mod table_replay_crash;
