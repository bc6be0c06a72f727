//! `ecommerce`: see [`snowpipe_apps::ecommerce`].

fn main() -> std::process::ExitCode {
    snowpipe_apps::ecommerce::main()
}
