//! `throughput`: see [`snowpipe_apps::throughput`].

fn main() -> anyhow::Result<()> {
    snowpipe_apps::throughput::main()
}
