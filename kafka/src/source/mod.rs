//! The sink's source, Kafka: librdkafka's consumer on its own thread ([`consumer`]), the queue its messages
//! are read from in batches ([`fetch_queue`]), each message and all its FFI ([`message`]), what it did over a run ([`counts`]), which subscription errors stop the sink
//! ([`subscription`]), and the librdkafka properties a user passes, with their secrets
//! ([`properties`]).

pub(crate) mod consumer;
pub(crate) mod counts;
pub(crate) mod fetch_queue;
pub(crate) mod message;
pub(crate) mod poll;
pub(crate) mod properties;
pub(crate) mod router;
pub(crate) mod subscription;
