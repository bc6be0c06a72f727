//! `--shard I/N`: this process loads the inputs whose name hashes to `I` of `N`, so that `N`
//! processes (machines, an Indexed Job's pods) given the same inputs share them out, each
//! input to exactly one, without talking to each other.
//!
//! The hash is the first 8 bytes of the SHA-256 of the input's name (an object's URL as
//! listed, `s3://bucket/key`; a local file's canonical path), big-endian, modulo `N`: the
//! same for every process and every run (no seed, no order of listing), so a rerun of shard
//! `I` takes the same inputs and resumes them on their own channels. Every process must name
//! the inputs alike (the same URL or glob; for local files, the same canonical paths).

use std::str::FromStr;

use sha2::{Digest as _, Sha256};

/// The most shards (more processes than this would each get next to nothing).
pub(crate) const MAX_SHARDS: u32 = 100_000;

/// One share of the inputs: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// This process's share, `0..count`.
    pub index: u32,
    /// How many processes share the inputs.
    pub count: u32,
}

impl Shard {
    /// Whether the input named `name` is this shard's.
    pub(crate) fn takes(&self, name: &str) -> bool {
        of(name, self.count) == self.index
    }
}

/// The shard (of `count`) that the input `name` belongs to.
pub(crate) fn of(name: &str, count: u32) -> u32 {
    let digest = Sha256::digest(name.as_bytes());
    let mut head = [0u8; 8];
    head.copy_from_slice(&digest[..8]);
    let n = u64::from_be_bytes(head) % u64::from(count.max(1));
    u32::try_from(n).unwrap_or(0)
}

impl FromStr for Shard {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!(
                "--shard {s:?}: expected I/N with 0 <= I < N <= {MAX_SHARDS} (e.g. 0/4; in a \
                 Kubernetes Indexed Job, $(JOB_COMPLETION_INDEX)/<completions>)"
            )
        };
        let (i, n) = s.trim().split_once('/').ok_or_else(bad)?;
        let index: u32 = i.trim().parse().map_err(|_| bad())?;
        let count: u32 = n.trim().parse().map_err(|_| bad())?;
        if count == 0 || count > MAX_SHARDS || index >= count {
            return Err(bad());
        }
        Ok(Self { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_refuse_what_cannot_be_a_share() {
        assert_eq!("2/4".parse(), Ok(Shard { index: 2, count: 4 }));
        for bad in ["4/4", "1/0", "x/2", "1", "-1/2", "0/100001", ""] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }

    #[test]
    fn every_name_belongs_to_exactly_one_shard_and_the_shares_are_even() {
        let names: Vec<String> = (0..4000)
            .map(|i| format!("s3://b/exports/part-{i:05}.parquet"))
            .collect();
        let mut counts = [0u32; 4];
        for name in &names {
            let owners: Vec<u32> = (0..4)
                .filter(|&i| Shard { index: i, count: 4 }.takes(name))
                .collect();
            assert_eq!(owners.len(), 1, "{name}: {owners:?}");
            counts[owners[0] as usize] += 1;
        }
        // 1,000 expected each; a hash that favoured a shard would leave it far off.
        assert!(
            counts.iter().all(|&c| (850..1150).contains(&c)),
            "{counts:?}"
        );
        // Stable across runs and releases (reruns of a shard resume its own inputs): the
        // shards Python's hashlib gives for the same rule (SHA-256, first 8 bytes, big-endian).
        assert_eq!(of("s3://b/exports/part-00007.parquet", 4), 1);
        assert_eq!(of("s3://b/exports/part-00007.parquet", 1000), 949);
        assert_eq!(of("/data/a.ndjson", 4), 2);
        assert_eq!(of("/data/a.ndjson", 1000), 990);
    }
}
