//! `snowpipe-kafka`: see the crate docs and kafka/README.md.

fn main() -> std::process::ExitCode {
    snowpipe_kafka::main(std::env::args_os().collect())
}
