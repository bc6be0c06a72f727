//! The command line: `snowpipe-kafka`'s arguments ([`args::SinkArgs`], a contract other tools
//! rely on) and the librdkafka properties and sink settings they become; `snowpipe-kafka
//! check`, the plan of a run with them ([`check`]); `snowpipe-kafka audit`, what landed in the
//! tables against the brokers ([`audit`]); and the command line run to its end
//! ([`entry::main`]).

pub(crate) mod args;
pub(crate) mod audit;
pub(crate) mod check;
pub(crate) mod entry;
pub(crate) mod settings;
