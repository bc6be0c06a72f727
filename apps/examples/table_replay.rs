//! `table_replay`: see [`snowpipe_apps::table_replay`].

fn main() -> anyhow::Result<std::process::ExitCode> {
    snowpipe_apps::table_replay::main()
}
