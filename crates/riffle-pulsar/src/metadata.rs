//! Partitions and the offsets of criteria (Pinot's `StreamMetadataProvider` for Pulsar).
//!
//! A partitioned topic of N partitions is partitions 0..N, each read as the topic
//! `<topic>-partition-<p>`; a non-partitioned topic is partition 0, the topic itself.
//! `largest` is the position after the last message (`GET_LAST_MESSAGE_ID`), `smallest` the
//! first message (or the beginning of an empty partition); a period or an instant is the
//! first message published at or after it, found by reading from the beginning (Pulsar's seek
//! by time is not relied on), or `largest` when none is that recent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use riffle_common::{now_ms, PartitionId};
use riffle_stream::{MetadataProvider, OffsetCriteria, StreamError, StreamErrorKind, StreamOffset};

use crate::config::PulsarConfig;
use crate::connection::Connection;
use crate::offsets::{Position, EARLIEST};
use crate::proto::{self, kind, BaseCommand};
use crate::reader::Reader;

/// The number of partitions of a topic (0: not partitioned).
pub async fn partition_count(config: &PulsarConfig, timeout: Duration) -> Result<u32, StreamError> {
    let mut conn = Connection::open(&config.address, config.token.as_deref(), timeout).await?;
    let request_id = conn.request_id();
    let mut cmd = BaseCommand::of(kind::PARTITIONED_METADATA);
    cmd.partition_metadata = Some(proto::CommandPartitionedTopicMetadata {
        topic: config.topic.clone(),
        request_id,
    });
    let answer = conn
        .request(
            &cmd,
            request_id,
            &format!("partitioned metadata of '{}'", config.topic),
            timeout,
        )
        .await?;
    let r = answer.partition_metadata_response.unwrap_or_default();
    if r.response == Some(1) {
        return Err(StreamError::new(
            r.error
                .map_or(StreamErrorKind::Fatal, crate::connection::server_error_kind),
            format!(
                "pulsar partitioned metadata of '{}' failed: {}",
                config.topic,
                r.message.unwrap_or_default()
            ),
        ));
    }
    Ok(r.partitions.unwrap_or(0))
}

/// The topic that holds partition `p`.
pub fn partition_topic(
    config: &PulsarConfig,
    count: u32,
    p: PartitionId,
) -> Result<String, StreamError> {
    if count == 0 && p.0 == 0 {
        return Ok(config.topic.clone());
    }
    if p.0 < count {
        return Ok(format!("{}-partition-{}", config.topic, p.0));
    }
    Err(StreamError::new(
        StreamErrorKind::NotFound,
        format!(
            "pulsar topic '{}' has no partition {} (it has {})",
            config.topic,
            p.0,
            count.max(1)
        ),
    ))
}

/// A provider for one topic.
pub struct PulsarMetadataProvider {
    config: Arc<PulsarConfig>,
}

impl PulsarMetadataProvider {
    /// A provider for a parsed config.
    pub fn new(config: Arc<PulsarConfig>) -> PulsarMetadataProvider {
        PulsarMetadataProvider { config }
    }

    async fn topic_of(&self, p: PartitionId, timeout: Duration) -> Result<String, StreamError> {
        let n = partition_count(&self.config, timeout).await?;
        partition_topic(&self.config, n, p)
    }

    /// The position after the last message of a partition's topic, `None` when it has none.
    async fn after_last(
        &self,
        topic: &str,
        timeout: Duration,
    ) -> Result<Option<Position>, StreamError> {
        let mut conn =
            Connection::open(&self.config.address, self.config.token.as_deref(), timeout).await?;
        let request_id = conn.request_id();
        let mut cmd = BaseCommand::of(kind::SUBSCRIBE);
        cmd.subscribe = Some(proto::CommandSubscribe {
            topic: topic.to_string(),
            subscription: format!("riffle-metadata-{}-{}", std::process::id(), now_ms()),
            sub_type: proto::SUB_EXCLUSIVE,
            consumer_id: 1,
            request_id,
            consumer_name: Some("riffle-metadata".into()),
            durable: Some(false),
            start_message_id: None,
            initial_position: Some(proto::INITIAL_LATEST),
        });
        conn.request(
            &cmd,
            request_id,
            &format!("subscribe to '{topic}'"),
            timeout,
        )
        .await?;
        let request_id = conn.request_id();
        let mut cmd = BaseCommand::of(kind::GET_LAST_MESSAGE_ID);
        cmd.get_last_message_id = Some(proto::CommandGetLastMessageId {
            consumer_id: 1,
            request_id,
        });
        match conn
            .request(
                &cmd,
                request_id,
                &format!("last message id of '{topic}'"),
                timeout,
            )
            .await
        {
            Ok(answer) => {
                let Some(r) = answer.get_last_message_id_response else {
                    return Ok(None);
                };
                let id = r.last_message_id;
                // An empty topic may answer ledger or entry "-1" (u64::MAX on the wire).
                if id.ledger_id == u64::MAX || id.entry_id == u64::MAX {
                    return Ok(None);
                }
                let at = Position {
                    ledger: id.ledger_id,
                    entry: id.entry_id,
                    index: 0,
                };
                Ok(Some(match (id.batch_index, id.batch_size) {
                    (Some(i), Some(n)) if i >= 0 && i + 1 < n => Position {
                        index: (i + 1) as u32,
                        ..at
                    },
                    _ => at.next(1),
                }))
            }
            // pulsar-lite answers an empty topic with an error.
            Err(e) if e.message.contains("has no messages") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The first message published at or after `t` (any message when `None`), before `end`.
    async fn first_at_or_after(
        &self,
        topic: &str,
        t: Option<i64>,
        end: Position,
        timeout: Duration,
    ) -> Result<Option<StreamOffset>, StreamError> {
        let mut r = Reader::new(self.config.clone(), topic.to_string(), -1);
        let deadline = tokio::time::Instant::now() + timeout;
        let mut at = EARLIEST;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Err(StreamError::new(
                    StreamErrorKind::Timeout,
                    format!(
                        "pulsar topic '{topic}': no message found at the time asked within {} ms",
                        timeout.as_millis()
                    ),
                ));
            }
            let b = r.fetch(&at, left.min(Duration::from_secs(1))).await?;
            for m in &b.messages {
                if Position::of(&m.offset)
                    .ok()
                    .flatten()
                    .is_some_and(|p| p >= end)
                {
                    return Ok(None);
                }
                if t.is_none_or(|t| m.timestamp_ms.is_some_and(|ts| ts >= t)) {
                    return Ok(Some(m.offset.clone()));
                }
            }
            if Position::of(&b.next_offset)
                .ok()
                .flatten()
                .is_some_and(|p| p >= end)
            {
                return Ok(None);
            }
            at = b.next_offset;
        }
    }
}

#[async_trait]
impl MetadataProvider for PulsarMetadataProvider {
    async fn partition_ids(&mut self, timeout: Duration) -> Result<Vec<PartitionId>, StreamError> {
        let n = partition_count(&self.config, timeout).await?;
        Ok((0..n.max(1)).map(PartitionId).collect())
    }

    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        timeout: Duration,
    ) -> Result<StreamOffset, StreamError> {
        let topic = self.topic_of(partition, timeout).await?;
        let Some(end) = self.after_last(&topic, timeout).await? else {
            // No message yet: every criteria means the first one to come.
            return Ok(EARLIEST);
        };
        let t = match criteria {
            OffsetCriteria::Largest => return Ok(end.offset()),
            OffsetCriteria::Smallest => None,
            OffsetCriteria::Period(ms) => Some(now_ms().saturating_sub(*ms)),
            OffsetCriteria::Timestamp(t) => Some(*t),
        };
        Ok(self
            .first_at_or_after(&topic, t, end, timeout)
            .await?
            .unwrap_or_else(|| end.offset()))
    }

    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
        let n = partition_count(&self.config, timeout).await?;
        let mut out = BTreeMap::new();
        for p in partitions {
            let topic = partition_topic(&self.config, n, *p)?;
            let end = self.after_last(&topic, timeout).await?;
            out.insert(*p, end.map_or(EARLIEST, |e| e.offset()));
        }
        Ok(out)
    }
}
