//! The sink's source, Kafka: librdkafka's consumer on its own thread ([`consumer`]), the queue its messages
//! are read from in batches ([`fetch_queue`]), each message and all its FFI ([`message`]), which subscription errors stop the sink
//! ([`subscription`]), and the librdkafka properties a user passes, with their secrets
//! ([`properties`]).

pub mod consumer;
pub mod fetch_queue;
pub mod message;
pub mod poll;
pub mod properties;
pub mod router;
pub mod subscription;
