//! The sensor feed on Amazon Kinesis Data Streams, as the seed's users run it: a long-running
//! consumer (`consume --source kinesis`) or an AWS Lambda handler (`lambda`) behind an event
//! source mapping, into Snowflake exactly once through retries, resharding and parallel
//! batches.
//!
//! ```text
//!  producers ──► Kinesis stream, shards shardId-… (sequence numbers: 56-digit decimals)
//!                 │ GetRecords (consume)          │ event source mapping (lambda)
//!                 ▼                               ▼
//!            Writer per channel: <ACCOUNT>_<REGION>_<STREAM>_<shardId> (the stream's ARN;
//!                                per partition key with ParallelizationFactor > 1)
//!                 ├─► KINESIS_READINGS      (token = sequence number; skip ≤ committed)
//!                 └─► KINESIS_DEAD_LETTERS  (channel <stem>_DLQ; committed before anything after it)
//! ```
//!
//! * `sequence.rs`: sequence numbers, compared as numbers of any length.
//! * `record.rs`: a record, the reading it holds (the NATS path's rules) or its dead letter;
//!   `../columns.rs` (shared with the NATS path): a reading's values must fit the table's
//!   columns, else a dead letter.
//! * `writer.rs`: the one place records become rows; why a redelivery lands nothing twice.
//! * `shards.rs`: lineage: parents drained, committed and closed before children are read.
//! * `consume.rs`: the consumer (`idle.rs`: when `--until-idle` counts a shard idle);
//!   `lambda.rs`: the handler (and its channel choice).
//! * `stream.rs`: create, publish, reshard, read a stream; `server.rs`: a private kinesalite;
//!   `aws.rs`: the SDK client (rustls on ring, the AWS credential chain).
//! * `report.rs`: the reconciliation; `pipeline.rs`: the commands.

pub mod aws;
pub mod channel_cap;
pub mod consume;
pub mod idle;
pub mod lambda;
pub mod pipeline;
pub mod record;
pub mod report;
pub mod sequence;
pub mod server;
pub mod shards;
pub mod stream;
pub mod writer;
