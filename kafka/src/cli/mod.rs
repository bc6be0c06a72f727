//! The command line: `snowpipe-kafka`'s arguments ([`args::SinkArgs`], a contract other tools
//! rely on) and the librdkafka properties and sink settings they become.

pub mod args;
pub mod settings;
