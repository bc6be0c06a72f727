//! The README's first screen: the two set-up commands first, then the dependency lines and a
//! short example that is `examples/quickstart.rs` word for word (CI builds the example, and the
//! README's blocks run as doc tests).

const README: &str = include_str!("../../README.md");
const QUICKSTART: &str = include_str!("../../examples/quickstart.rs");

/// The text of the first fenced block opened by `fence` (e.g. "```rust\n").
fn block<'a>(text: &'a str, fence: &str) -> &'a str {
    let start = text.find(fence).map(|i| i + fence.len());
    let body = &text[start.unwrap_or_else(|| panic!("no {fence:?} block"))..];
    &body[..body.find("```").expect("the block is closed")]
}

#[test]
fn the_first_screen_has_the_commands_the_dependency_and_the_quickstart() {
    let screen: String = README.lines().take(50).map(|l| format!("{l}\n")).collect();
    let commands: Vec<&str> = block(&screen, "```sh\n")
        .lines()
        .map(|l| l.split('#').next().unwrap_or_default().trim())
        .collect();
    assert_eq!(commands, ["cargo run --example ski_resort", "cargo test"]);
    assert!(
        screen.find("```sh\n") < screen.find("```toml\n"),
        "the commands come first"
    );

    let version = env!("CARGO_PKG_VERSION").rsplit_once('.').unwrap().0;
    let dependency = format!(r#"snowpipe-streaming = {{ version = "{version}", features = ["#);
    assert!(
        block(&screen, "```toml\n").contains(&dependency),
        "{dependency}"
    );
    assert!(screen.contains("cargo add snowpipe-streaming"));

    let example = &QUICKSTART[QUICKSTART.find("\nuse ").expect("a use line") + 1..];
    assert_eq!(
        block(&screen, "```rust\n"),
        example,
        "the README's example is examples/quickstart.rs from its first `use` down: copy it"
    );
    assert!(example.lines().count() <= 25, "a first-screen example");
}
