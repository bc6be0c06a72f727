//! The Kinesis stream itself: created when missing, published to (seed-format readings),
//! resharded, and read whole for the reconciliation.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::{
    PutRecordsRequestEntry, ShardIteratorType, StreamDescriptionSummary, StreamStatus,
};
use aws_sdk_kinesis::Client;

use crate::sensor_stream::kinesis::sequence::SequenceNumber;
use crate::sensor_stream::kinesis::shards;

/// The part of a channel name that names a stream, from its ARN
/// (`arn:<partition>:kinesis:<region>:<account>:stream/<name>`): `<account>_<region>_<name>`,
/// the partition first when it is not `aws` (`aws-cn_…`). Another account's or region's stream
/// of the same name gets other channels. At most 16 + 32 + 12 + 128 characters and three
/// `_`: with `_<shardId>`, a key's `_k<16 hex>` and `_DLQ` the name stays under Snowflake's 255.
///
/// # Errors
/// When `arn` is not a Kinesis stream ARN (each part checked against what AWS allows).
pub fn channel_prefix(arn: &str) -> Result<String> {
    let bad = |why: &str| {
        let shown: String = arn.chars().take(300).collect();
        anyhow::anyhow!(
            "{shown:?} is not a Kinesis stream ARN (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME): {why}"
        )
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [scheme, partition, service, region, account, resource] = parts[..] else {
        return Err(bad("it has fewer than six ':'-separated parts"));
    };
    let name = resource
        .strip_prefix("stream/")
        .ok_or_else(|| bad("its resource is not stream/NAME"))?;
    let all = |s: &str, max: usize, ok: fn(u8) -> bool| {
        !s.is_empty() && s.len() <= max && s.bytes().all(ok)
    };
    if scheme != "arn" || service != "kinesis" {
        return Err(bad("not arn:…:kinesis:…"));
    }
    if !all(partition, 16, |b| b.is_ascii_lowercase() || b == b'-') {
        return Err(bad("its partition is not aws, aws-cn, …"));
    }
    if !all(region, 32, |b| {
        b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
    }) {
        return Err(bad("its region is not like us-east-1"));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("its account is not 12 digits"));
    }
    if !all(name, 128, |b| {
        b.is_ascii_alphanumeric() || b"_.-".contains(&b)
    }) {
        return Err(bad("its stream name is not 1 to 128 of [a-zA-Z0-9_.-]"));
    }
    Ok(if partition == "aws" {
        format!("{account}_{region}_{name}")
    } else {
        format!("{partition}_{account}_{region}_{name}")
    })
}

/// The stream's ARN (DescribeStreamSummary): what its channels are named by.
///
/// # Errors
/// When Kinesis cannot be asked or gives none.
pub async fn arn(client: &Client, stream: &str) -> Result<String> {
    describe(client, stream)
        .await?
        .map(|s| s.stream_arn)
        .filter(|a| !a.is_empty())
        .with_context(|| format!("Kinesis gave no ARN for stream {stream}"))
}

/// The stream's summary (DescribeStreamSummary), if Kinesis gives one.
///
/// # Errors
/// When Kinesis cannot be asked (the stream is missing, the credentials are refused).
async fn describe(client: &Client, stream: &str) -> Result<Option<StreamDescriptionSummary>> {
    let d = client
        .describe_stream_summary()
        .stream_name(stream)
        .send()
        .await
        .with_context(|| format!("cannot describe Kinesis stream {stream}"))?;
    Ok(d.stream_description_summary)
}

/// Waits until `stream` is `ACTIVE` (after a create or a reshard).
///
/// # Errors
/// When it is not within 60 s, or Kinesis cannot be asked.
pub async fn wait_active(client: &Client, stream: &str) -> Result<()> {
    for _ in 0..600 {
        let summary = describe(client, stream).await?;
        if summary.is_some_and(|s| s.stream_status == StreamStatus::Active) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    bail!("Kinesis stream {stream} is not ACTIVE after 60 s")
}

/// Creates `stream` with `shards` shards unless it exists (then it is used as it is).
///
/// # Errors
/// When Kinesis refuses.
pub async fn ensure(client: &Client, stream: &str, shards: u32) -> Result<()> {
    match client
        .create_stream()
        .stream_name(stream)
        .shard_count(shards as i32)
        .send()
        .await
    {
        Ok(_) => {}
        Err(e)
            if e.as_service_error()
                .is_some_and(|e| e.is_resource_in_use_exception()) => {}
        Err(e) => return Err(e).with_context(|| format!("cannot create Kinesis stream {stream}")),
    }
    wait_active(client, stream).await
}

/// Splits `shard_id` at the middle of its hash key range.
///
/// # Errors
/// When Kinesis refuses (the shard is closed, or the stream is being resharded).
pub async fn split(client: &Client, stream: &str, shard_id: &str) -> Result<()> {
    let listed = client
        .list_shards()
        .stream_name(stream)
        .send()
        .await
        .context("ListShards")?;
    let shard = listed
        .shards()
        .iter()
        .find(|s| s.shard_id() == shard_id)
        .with_context(|| format!("no shard {shard_id} in {stream}"))?;
    let range = shard
        .hash_key_range()
        .context("a shard without a hash key range")?;
    let start: u128 = range.starting_hash_key().parse()?;
    let end: u128 = range.ending_hash_key().parse()?;
    client
        .split_shard()
        .stream_name(stream)
        .shard_to_split(shard_id)
        .new_starting_hash_key((start + (end - start) / 2 + 1).to_string())
        .send()
        .await
        .with_context(|| format!("cannot split {stream}/{shard_id}"))?;
    wait_active(client, stream).await
}

/// Merges two adjacent open shards.
///
/// # Errors
/// When Kinesis refuses.
pub async fn merge(client: &Client, stream: &str, shard: &str, adjacent: &str) -> Result<()> {
    client
        .merge_shards()
        .stream_name(stream)
        .shard_to_merge(shard)
        .adjacent_shard_to_merge(adjacent)
        .send()
        .await
        .with_context(|| format!("cannot merge {stream}/{shard} and {adjacent}"))?;
    wait_active(client, stream).await
}

/// Puts records (partition key, data) in order, retrying the ones Kinesis refuses; returns
/// their sequence numbers by shard.
///
/// # Errors
/// When a PutRecords call fails, or records are still refused after 20 tries.
pub async fn put(
    client: &Client,
    stream: &str,
    records: Vec<(String, Vec<u8>)>,
) -> Result<BTreeMap<String, Vec<SequenceNumber>>> {
    let mut out: BTreeMap<String, Vec<SequenceNumber>> = BTreeMap::new();
    for chunk in records.chunks(500) {
        let mut pending: Vec<&(String, Vec<u8>)> = chunk.iter().collect();
        for attempt in 0.. {
            if pending.is_empty() {
                break;
            }
            if attempt == 20 {
                bail!(
                    "Kinesis still refuses {} records after 20 tries",
                    pending.len()
                );
            }
            let entries = pending
                .iter()
                .map(|(key, data)| {
                    PutRecordsRequestEntry::builder()
                        .partition_key(key)
                        .data(Blob::new(data.clone()))
                        .build()
                        .expect("key and data are set")
                })
                .collect::<Vec<_>>();
            let result = client
                .put_records()
                .stream_name(stream)
                .set_records(Some(entries))
                .send()
                .await
                .with_context(|| format!("PutRecords to {stream} failed"))?;
            let mut again = Vec::new();
            for (entry, sent) in result.records().iter().zip(pending) {
                match (entry.shard_id(), entry.sequence_number()) {
                    (Some(shard), Some(seq)) if entry.error_code().is_none() => {
                        out.entry(shard.to_owned())
                            .or_default()
                            .push(SequenceNumber::parse(seq)?);
                    }
                    _ => again.push(sent),
                }
            }
            if !again.is_empty() {
                tokio::time::sleep(Duration::from_millis(100 << attempt.min(4))).await;
            }
            pending = again;
        }
    }
    Ok(out)
}

/// Every record's sequence number in every shard (closed ones too), read from the start.
///
/// # Errors
/// When Kinesis cannot be read.
pub async fn all_sequences(
    client: &Client,
    stream: &str,
) -> Result<BTreeMap<String, Vec<SequenceNumber>>> {
    let mut out = BTreeMap::new();
    for shard in shards::list(client, stream).await?.into_keys() {
        let mut seqs = Vec::new();
        let mut iterator = client
            .get_shard_iterator()
            .stream_name(stream)
            .shard_id(&shard)
            .shard_iterator_type(ShardIteratorType::TrimHorizon)
            .send()
            .await
            .context("GetShardIterator")?
            .shard_iterator()
            .map(str::to_owned);
        while let Some(it) = iterator {
            let page = client
                .get_records()
                .shard_iterator(it)
                .limit(10_000)
                .send()
                .await
                .context("GetRecords")?;
            for r in page.records() {
                seqs.push(SequenceNumber::parse(r.sequence_number())?);
            }
            // An open shard's iterator never ends: stop at its tip.
            let at_tip = page.records().is_empty() && page.millis_behind_latest() == Some(0);
            iterator = if at_tip {
                None
            } else {
                page.next_shard_iterator().map(str::to_owned)
            };
        }
        out.insert(shard, seqs);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn channels_are_named_by_account_region_and_stream() {
        let a = channel_prefix("arn:aws:kinesis:us-east-1:123456789012:stream/sensors").unwrap();
        assert_eq!(a, "123456789012_us-east-1_sensors");
        // Another account's, another region's stream of the same name: other channels.
        let b = channel_prefix("arn:aws:kinesis:us-east-1:210987654321:stream/sensors").unwrap();
        let c = channel_prefix("arn:aws:kinesis:eu-west-1:123456789012:stream/sensors").unwrap();
        assert!(a != b && a != c && b != c);
        assert_eq!(
            channel_prefix("arn:aws-cn:kinesis:cn-north-1:123456789012:stream/s.1_x-y").unwrap(),
            "aws-cn_123456789012_cn-north-1_s.1_x-y"
        );
        // The longest parts AWS allows, with a shard, a key and _DLQ: within 255.
        let longest = channel_prefix(&format!(
            "arn:aws-iso-b:kinesis:{}:123456789012:stream/{}",
            "a".repeat(32),
            "n".repeat(128)
        ))
        .unwrap();
        let name = format!("{longest}_shardId-000000000000_k0123456789abcdef_DLQ");
        assert!(name.len() <= 255, "{}", name.len());
        for bad in [
            "",
            "sensors",
            "arn:aws:kinesis:us-east-1:123456789012:sensors",
            "arn:aws:sqs:us-east-1:123456789012:stream/sensors",
            "arn:aws:kinesis:us-east-1:1234:stream/sensors",
            "arn:aws:kinesis:us-east-1:123456789012:stream/a/b",
            "arn:aws:kinesis:us-east-1:123456789012:stream/",
            "arn:aws:kinesis:US_EAST:123456789012:stream/s",
        ] {
            let err = channel_prefix(bad).unwrap_err().to_string();
            assert!(err.contains("is not a Kinesis stream ARN"), "{bad}: {err}");
        }
        let long = format!(
            "arn:aws:kinesis:us-east-1:123456789012:stream/{}",
            "n".repeat(129)
        );
        assert!(channel_prefix(&long).is_err());
    }
}
