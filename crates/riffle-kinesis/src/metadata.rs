//! Shards, their lineage and the offsets of criteria (Pinot's `StreamMetadataProvider` for
//! Kinesis).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use riffle_common::{now_ms, PartitionId};
use riffle_stream::{MetadataProvider, OffsetCriteria, StreamError, StreamErrorKind, StreamOffset};

use crate::client::{IteratorStart, KinesisClient, Shard};
use crate::config::KinesisConfig;
use crate::offsets;

/// How long a `ListShards` answer is reused by the calls of one provider.
const SHARDS_TTL: Duration = Duration::from_secs(1);
/// `GetRecords` calls a time criteria may spend looking for its first record.
const MAX_SCAN_CALLS: usize = 20;

/// The partition id of a shard: the number of `shardId-000000000003`.
pub fn partition_of(shard_id: &str) -> Result<PartitionId, StreamError> {
    shard_id
        .rsplit('-')
        .next()
        .and_then(|n| n.parse::<u32>().ok())
        .map(PartitionId)
        .ok_or_else(|| {
            StreamError::new(
                StreamErrorKind::Fatal,
                format!("shard id '{shard_id}' does not end in a number (expected shardId-000000000003)"),
            )
        })
}

/// The shard id of a partition.
pub fn shard_of(p: PartitionId) -> String {
    format!("shardId-{:012}", p.0)
}

/// A provider for one stream.
pub struct KinesisMetadataProvider {
    config: Arc<KinesisConfig>,
    client: KinesisClient,
    shards: Option<(Instant, Vec<Shard>)>,
}

impl KinesisMetadataProvider {
    /// A provider for a parsed config.
    pub fn new(config: Arc<KinesisConfig>, client: KinesisClient) -> KinesisMetadataProvider {
        KinesisMetadataProvider {
            config,
            client,
            shards: None,
        }
    }

    /// The stream's shards (cached for a second).
    pub async fn shards(&mut self, timeout: Duration) -> Result<&[Shard], StreamError> {
        let fresh = self
            .shards
            .as_ref()
            .is_some_and(|(at, _)| at.elapsed() < SHARDS_TTL);
        if !fresh {
            let list = self
                .client
                .list_shards(&self.config.stream, timeout)
                .await?;
            self.shards = Some((Instant::now(), list));
        }
        Ok(self
            .shards
            .as_ref()
            .map(|(_, s)| s.as_slice())
            .unwrap_or(&[]))
    }

    async fn shard(&mut self, p: PartitionId, timeout: Duration) -> Result<Shard, StreamError> {
        let id = shard_of(p);
        let stream = self.config.stream.clone();
        self.shards(timeout)
            .await?
            .iter()
            .find(|s| s.shard_id == id)
            .cloned()
            .ok_or_else(|| {
                StreamError::new(
                    StreamErrorKind::NotFound,
                    format!(
                        "kinesis stream '{stream}' has no shard '{id}' (partition {})",
                        p.0
                    ),
                )
            })
    }

    /// The first record at or after `start`, reading at most [`MAX_SCAN_CALLS`] calls
    /// within `timeout`; `None` when the shard holds no such record yet.
    async fn first_record(
        &self,
        shard: &str,
        start: IteratorStart,
        timeout: Duration,
    ) -> Result<Option<String>, StreamError> {
        let deadline = Instant::now() + timeout;
        let mut it = self
            .client
            .shard_iterator(&self.config.stream, shard, &start, timeout)
            .await?;
        for _ in 0..MAX_SCAN_CALLS {
            let left = deadline.saturating_duration_since(Instant::now());
            let r = self.client.get_records(&it, 1, left).await?;
            if let Some(rec) = r.records.first() {
                return Ok(Some(rec.sequence_number.clone()));
            }
            // Caught up, or a closed shard read to its end.
            if r.millis_behind_latest.unwrap_or(0) == 0 {
                return Ok(None);
            }
            match r.next_shard_iterator {
                Some(n) => it = n,
                None => return Ok(None),
            }
            if Instant::now() >= deadline {
                break;
            }
        }
        Err(StreamError::new(
            StreamErrorKind::Timeout,
            format!(
                "kinesis shard '{shard}' of stream '{}': no record found within {} calls",
                self.config.stream, MAX_SCAN_CALLS
            ),
        ))
    }
}

#[async_trait]
impl MetadataProvider for KinesisMetadataProvider {
    async fn partition_ids(&mut self, timeout: Duration) -> Result<Vec<PartitionId>, StreamError> {
        let mut ids = self
            .shards(timeout)
            .await?
            .iter()
            .map(|s| partition_of(&s.shard_id))
            .collect::<Result<Vec<_>, _>>()?;
        ids.sort();
        ids.dedup();
        Ok(ids)
    }

    async fn parents(
        &mut self,
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, Vec<PartitionId>>, StreamError> {
        let mut out = BTreeMap::new();
        for s in self.shards(timeout).await? {
            let parents = s
                .parents()
                .map(partition_of)
                .collect::<Result<Vec<_>, _>>()?;
            if !parents.is_empty() {
                out.insert(partition_of(&s.shard_id)?, parents);
            }
        }
        Ok(out)
    }

    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        timeout: Duration,
    ) -> Result<StreamOffset, StreamError> {
        let shard = self.shard(partition, timeout).await?;
        let time = match criteria {
            OffsetCriteria::Largest => return Ok(offsets::at_time(now_ms())),
            OffsetCriteria::Smallest => None,
            OffsetCriteria::Period(ms) => Some(now_ms().saturating_sub(*ms)),
            OffsetCriteria::Timestamp(t) => Some(*t),
        };
        let start = match time {
            None => IteratorStart::TrimHorizon,
            // Kinesis refuses a time to come; no record can be there yet.
            Some(t) if t > now_ms() => return Ok(offsets::at_time(t)),
            Some(t) => IteratorStart::AtTimestamp(t.max(1)),
        };
        match self.first_record(&shard.shard_id, start, timeout).await? {
            Some(seq) => Ok(offsets::sequence(&seq)),
            // No record yet: the first to arrive (after the shard's start, or the time).
            None => Ok(offsets::at_time(time.unwrap_or(1))),
        }
    }

    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
        // Only a closed shard has a known end; an open shard's next sequence number is not
        // known before it is written.
        let mut out = BTreeMap::new();
        for s in self.shards(timeout).await? {
            let p = partition_of(&s.shard_id)?;
            if !partitions.contains(&p) {
                continue;
            }
            if let Some(end) = &s.sequence_number_range.ending_sequence_number {
                out.insert(p, offsets::after(end));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_shard_ids_and_partitions() {
        assert_eq!(
            partition_of("shardId-000000000003").unwrap(),
            PartitionId(3)
        );
        assert_eq!(shard_of(PartitionId(12)), "shardId-000000000012");
        assert!(partition_of("shard-x")
            .unwrap_err()
            .message
            .contains("shard-x"));
    }
}
