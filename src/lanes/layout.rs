//! What a lane stream's channels are called, which lane a key goes to, and the layout a
//! resize leaves behind (the one piece of state a stream keeps beside its lanes' tokens).
//!
//! **Names.** Lane 0 is the base name itself and lane `j` is `<base>_<j>`: the names
//! `snowpipe load` gives the channels of a file's ranges, so its lanes are a stream's.
//!
//! **Keys.** A key goes to lane `fnv1a64(key) % lanes`: FNV-1a, 64 bits, fixed by this
//! release and every later one (a change would move keys between lanes, and a lane's token
//! would then say nothing about a key's records). The test vectors in the tests pin it.
//!
//! **Layout.** A stream opened with `N` lanes and never resized keeps nothing but its lanes.
//! A resize records the new lane count and the boundary (the last position every lane had
//! committed when the stream was drained) as the committed token of a channel of its own,
//! `<base>_lanes`, set by opening it with that token, no row written:
//! `lanes:v1:<count>:<boundary>`. A reopen reads it: the count must be the caller's, and a
//! position at or before the boundary is committed whatever lane it maps to now.

use crate::OffsetToken;

/// The most lanes one stream has.
pub(crate) const MAX_LANES: usize = 256;

/// The channel of lane `lane` of the stream `base`.
pub(crate) fn lane_name(base: &str, lane: usize) -> String {
    if lane == 0 {
        base.to_owned()
    } else {
        format!("{base}_{lane}")
    }
}

/// The channel holding the layout of the stream `base` after a resize.
pub(crate) fn layout_name(base: &str) -> String {
    format!("{base}_lanes")
}

/// FNV-1a, 64 bits, of `key`.
pub(crate) fn fnv1a64(key: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in key {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// A resized stream's layout: its lane count and the boundary its drain reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    pub lanes: usize,
    pub boundary: Option<OffsetToken>,
}

const PREFIX: &str = "lanes:v1:";

impl Layout {
    /// The token that records it.
    pub(crate) fn token(&self) -> crate::Result<OffsetToken> {
        let boundary = self.boundary.as_ref().map_or("", OffsetToken::as_str);
        OffsetToken::new(format!("{PREFIX}{}:{boundary}", self.lanes))
    }

    /// The layout a committed token records; `None` when it is not one.
    pub(crate) fn parse(token: &OffsetToken) -> Option<Self> {
        let rest = token.as_str().strip_prefix(PREFIX)?;
        let (count, boundary) = rest.split_once(':')?;
        // Only the form `token` writes: ASCII digits, no sign, no leading zero.
        if count.starts_with('0') || !count.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let lanes: usize = count.parse().ok().filter(|n| (1..=MAX_LANES).contains(n))?;
        let boundary = match boundary {
            "" => None,
            b => Some(OffsetToken::new(b).ok()?),
        };
        Some(Self { lanes, boundary })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// FNV-1a's published vectors: the routing of a key never changes.
    #[test]
    fn keys_route_by_fnv1a_as_published() {
        assert_eq!(fnv1a64(b""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64(b"a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn lanes_are_named_as_snowpipe_load_names_its_ranges() {
        assert_eq!(lane_name("LOAD_AB", 0), "LOAD_AB");
        assert_eq!(lane_name("LOAD_AB", 3), "LOAD_AB_3");
        assert_eq!(layout_name("LOAD_AB"), "LOAD_AB_lanes");
    }

    /// A layout is read from a server's answer (the committed token of `<base>_lanes`):
    /// anything but `lanes:v1:<1..=256>:<token>` is none, whatever its count's digits say.
    #[test]
    fn a_layout_round_trips_through_its_token_and_nothing_else_is_one() {
        for layout in [
            Layout {
                lanes: 3,
                boundary: Some(OffsetToken::from(1_234)),
            },
            Layout {
                lanes: 12,
                boundary: Some(OffsetToken::new("order_7:x").unwrap()),
            },
            Layout {
                lanes: 1,
                boundary: None,
            },
        ] {
            assert_eq!(Layout::parse(&layout.token().unwrap()), Some(layout));
        }
        for other in [
            "42",
            "lanes:v1:0:",
            "lanes:v1:257:9",
            "lanes:v2:3:9",
            "lanes:v1:x:9",
            "lanes:v1:99999999999999999999999:9",
            "lanes:v1:-3:9",
            "lanes:v1: 3:9",
            "lanes:v1:+3:9",
            "lanes:v1:03:9",
            "lanes:v1:3",
            "lanes:v1:٣:9",
        ] {
            assert_eq!(
                Layout::parse(&OffsetToken::new(other).unwrap()),
                None,
                "{other}"
            );
        }
    }
}
