//! Client-side checks of the names a channel is opened with.

use crate::{Error, Result};

pub(super) fn non_empty(what: &'static str, value: &str) -> Result<()> {
    if value.is_empty() {
        return Err(Error::invalid_argument(
            what,
            format!("the {what} name must not be empty"),
        ));
    }
    Ok(())
}

/// Longest channel name accepted. Snowflake documents no limit for this API; object
/// identifiers are at most 255 characters, so longer names are refused before any request.
pub(crate) const MAX_CHANNEL_NAME_CHARS: usize = 255;

/// Client-side checks of a channel name: the server's rules are undocumented, so the SDK
/// refuses only what cannot work or would be mangled on the way: empty or blank names,
/// leading or trailing whitespace, control characters, `/` (a path separator once decoded by
/// proxies), and names longer than [`MAX_CHANNEL_NAME_CHARS`].
pub(crate) fn validate_channel_name(name: &str) -> Result<()> {
    let bad = |why: String| {
        Err(Error::invalid_argument(
            "channel",
            format!("channel name {name:?} {why}; use letters, digits, '_', '-' or '.'"),
        ))
    };
    if name.trim().is_empty() {
        return bad(if name.is_empty() {
            "is empty".into()
        } else {
            "is blank".into()
        });
    }
    if name.trim() != name {
        return bad("has leading or trailing whitespace".into());
    }
    if name.chars().any(char::is_control) {
        return bad("contains a control character".into());
    }
    if name.contains('/') {
        return bad("contains '/'".into());
    }
    if name.eq_ignore_ascii_case("ELASTIC") {
        // Every pipe's implicit elastic channel; URLs ignore case (docs/protocol.md "Names").
        return Err(Error::invalid_argument(
            "channel",
            format!(
                "channel name {name:?} is reserved for the implicit elastic channel of every \
                 pipe; choose another name, or use Pipe::elastic_channel"
            ),
        ));
    }
    let chars = name.chars().count();
    if chars > MAX_CHANNEL_NAME_CHARS {
        return bad(format!(
            "is too long ({chars} characters, at most {MAX_CHANNEL_NAME_CHARS})"
        ));
    }
    Ok(())
}
