//! The command line: `snowpipe-kafka`'s arguments ([`args::SinkArgs`], a contract other tools
//! rely on) and the librdkafka properties and sink settings they become; `snowpipe-kafka
//! check`, the plan of a run with them ([`check`]); `snowpipe-kafka audit`, what landed in the
//! tables against the brokers ([`audit`]).

pub mod args;
pub mod audit;
pub mod check;
pub mod settings;
