//! A stream's shards and their lineage: which shards may be read now.
//!
//! Resharding closes shards: a split ends one parent and opens two children, a merge ends
//! two parents (`ParentShardId`, `AdjacentParentShardId`) and opens one child. A child's
//! records are read only once every parent is *finished*: read to its end (GetRecords gave no
//! next iterator), its last rows committed and its channels closed. So no child reading lands
//! before its parent's last one, and an ended shard's channel is closed, not left open. A
//! parent no longer listed (past the stream's retention) counts as finished.
//!
//! Whether a closed shard was finished by an earlier process is not stored anywhere: its
//! reader starts after its channel's committed token, finds the end at once, and finishes.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use aws_sdk_kinesis::Client;

/// One shard as `ListShards` describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardInfo {
    /// `shardId-…`.
    pub id: String,
    /// Its parents (none, one after a split, two after a merge).
    pub parents: Vec<String>,
}

/// Every shard of `stream` (open and closed, within retention), by id.
///
/// # Errors
/// When Kinesis cannot be asked (the message names the stream).
pub async fn list(client: &Client, stream: &str) -> Result<BTreeMap<String, ShardInfo>> {
    let mut shards = BTreeMap::new();
    let mut next: Option<String> = None;
    loop {
        let request = match &next {
            // A paginated call names the token and not the stream.
            Some(token) => client.list_shards().next_token(token),
            None => client.list_shards().stream_name(stream),
        };
        let page = request
            .send()
            .await
            .with_context(|| format!("cannot list the shards of Kinesis stream {stream}"))?;
        for s in page.shards() {
            let parents = [s.parent_shard_id(), s.adjacent_parent_shard_id()]
                .into_iter()
                .flatten()
                .map(str::to_owned)
                .collect();
            shards.insert(
                s.shard_id().to_owned(),
                ShardInfo {
                    id: s.shard_id().to_owned(),
                    parents,
                },
            );
        }
        match page.next_token() {
            Some(t) if !t.is_empty() => next = Some(t.to_owned()),
            _ => return Ok(shards),
        }
    }
}

/// The shards that may be read now: not finished, not `busy`, and every parent finished or
/// no longer listed.
pub fn ready<'a>(
    shards: &'a BTreeMap<String, ShardInfo>,
    finished: &BTreeSet<String>,
    busy: &BTreeSet<String>,
) -> Vec<&'a ShardInfo> {
    shards
        .values()
        .filter(|s| !finished.contains(&s.id) && !busy.contains(&s.id))
        .filter(|s| {
            s.parents
                .iter()
                .all(|p| finished.contains(p) || !shards.contains_key(p))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(id: &str, parents: &[&str]) -> (String, ShardInfo) {
        (
            id.into(),
            ShardInfo {
                id: id.into(),
                parents: parents.iter().map(|p| (*p).into()).collect(),
            },
        )
    }

    fn ids(v: Vec<&ShardInfo>) -> Vec<&str> {
        v.into_iter().map(|s| s.id.as_str()).collect()
    }

    #[test]
    fn children_wait_for_every_parent() {
        // 0 and 1 at creation; 0 split into 2 and 3; 2 and 1 merged into 4.
        let shards: BTreeMap<_, _> = [
            shard("s0", &[]),
            shard("s1", &[]),
            shard("s2", &["s0"]),
            shard("s3", &["s0"]),
            shard("s4", &["s2", "s1"]),
        ]
        .into();
        let none = BTreeSet::new();
        let mut finished = BTreeSet::new();
        assert_eq!(ids(ready(&shards, &finished, &none)), ["s0", "s1"]);
        finished.insert("s0".to_string());
        assert_eq!(ids(ready(&shards, &finished, &none)), ["s1", "s2", "s3"]);
        finished.insert("s2".to_string());
        // The merge child needs both parents.
        assert_eq!(ids(ready(&shards, &finished, &none)), ["s1", "s3"]);
        finished.insert("s1".to_string());
        let busy: BTreeSet<String> = ["s3".to_string()].into();
        assert_eq!(ids(ready(&shards, &finished, &busy)), ["s4"]);
    }

    #[test]
    fn parents_past_retention_do_not_block() {
        let shards: BTreeMap<_, _> = [shard("s5", &["gone"])].into();
        assert_eq!(
            ids(ready(&shards, &BTreeSet::new(), &BTreeSet::new())),
            ["s5"]
        );
    }
}
