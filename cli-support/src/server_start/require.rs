//! A test's prologue when it needs an outside tool (`nats-server`, `mariadbd`, tansu,
//! chromium, kinesalite, `moto_server`, promtool): a missing tool skips the test, saying how
//! to install it, except under `CI=true`, where the tools are installed and a missing one is a
//! failure (a skip there would pass silently).

use std::path::Path;

/// `found` (whether `tool` is here, as the caller looks for it); when not, `false` after
/// printing that the test is skipped and `hint` (how to install it).
///
/// # Panics
/// When `tool` is missing under `CI=true`.
pub fn require_or_skip(found: bool, tool: &str, hint: &str) -> bool {
    if found {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{tool} is missing under CI=true, where a missing tool fails the test ({hint}; \
         .ci/run installs it)"
    );
    eprintln!("skipped: {tool} is missing ({hint})");
    false
}

/// Whether an executable file `tool` is in a directory of `PATH`.
pub fn on_path(tool: &str) -> bool {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path).any(|dir| is_executable(&dir.join(tool)))
}

#[cfg(unix)]
fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(p: &Path) -> bool {
    p.is_file()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A tool that is here runs the test; one that is not skips it, or fails under `CI=true`.
    #[test]
    fn a_missing_tool_skips_except_under_ci() {
        assert!(require_or_skip(true, "sh", "always here"));
        let missing = "snowpipe-no-such-tool";
        assert!(!on_path(missing));
        let under_ci = std::env::var("CI").as_deref() == Ok("true");
        let skipped = std::panic::catch_unwind(|| require_or_skip(false, missing, "no hint"));
        match skipped {
            Ok(run) => assert!(!under_ci && !run, "skipped outside CI"),
            Err(panic) => {
                assert!(under_ci, "a panic only under CI=true");
                let text = panic.downcast_ref::<String>().cloned().unwrap_or_default();
                assert!(text.contains(missing) && text.contains("no hint"), "{text}");
            }
        }
    }

    /// A shell is on every test machine's `PATH`.
    #[test]
    fn sh_is_on_the_path() {
        assert!(on_path("sh"));
    }
}
