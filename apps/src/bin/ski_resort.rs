//! `ski_resort`: see [`snowpipe_apps::ski_resort`].

fn main() -> std::process::ExitCode {
    snowpipe_apps::ski_resort::main()
}
