//! `sensor_stream`: see [`snowpipe_apps::sensor_stream`].

fn main() -> std::process::ExitCode {
    snowpipe_apps::sensor_stream::main()
}
