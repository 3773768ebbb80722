//! Kafka's stream-level consumer: a consumer group (Pinot's former high-level consumer).
//!
//! The consumer subscribes to the topic in the group `stream.kafka.hlc.group.id` (default
//! `riffle-hlc-<topic>`), so the topic's partitions are split among the group's members.
//! Riffle's catalog, not Kafka, holds the checkpoint: when the group assigns partitions
//! (at start and after every rebalance), each is positioned at the checkpoint's offset for
//! it, or at the start asked for (earliest or latest) if the checkpoint has none. A partition
//! taken away and given back later resumes where this consumer left it, so every record is
//! read once by this table whatever the rebalances. Nothing is committed to Kafka.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use parking_lot::Mutex;
use rdkafka::client::ClientContext;
use rdkafka::config::RDKafkaLogLevel;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::topic_partition_list::{Offset, TopicPartitionList};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::Message;
use riffle_common::PartitionId;
use riffle_stream::{
    StreamError, StreamErrorKind, StreamLevelConsumer, StreamLevelStart, StreamMessage,
    StreamOffset,
};
use tracing::info;

use crate::client::{stream_error, RiffleContext};
use crate::config::KafkaConfig;
use crate::consumer::{copy_out, Fetched};
use crate::{blocking, drop_off_runtime};

/// The most records one batch returns.
const MAX_BATCH: usize = 10_000;

type Positions = Arc<Mutex<BTreeMap<PartitionId, StreamOffset>>>;

/// Positions assigned partitions from the checkpoint; logs as the other clients do.
struct GroupContext {
    log: RiffleContext,
    positions: Positions,
    default_start: Offset,
    group: String,
}

impl ClientContext for GroupContext {
    fn log(&self, level: RDKafkaLogLevel, fac: &str, log_message: &str) {
        self.log.log(level, fac, log_message);
    }

    fn error(&self, error: KafkaError, reason: &str) {
        self.log.error(error, reason);
    }
}

impl ConsumerContext for GroupContext {
    fn rebalance(
        &self,
        base: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        tpl: &mut TopicPartitionList,
    ) {
        if err == RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS {
            let positions = self.positions.lock();
            let mut assign = TopicPartitionList::new();
            let mut shown = Vec::new();
            for e in tpl.elements() {
                let p = PartitionId(u32::try_from(e.partition()).unwrap_or(0));
                let offset = match positions.get(&p) {
                    Some(StreamOffset::Long(n)) => Offset::Offset(*n),
                    _ => self.default_start,
                };
                shown.push(format!("{}@{offset:?}", e.partition()));
                let _ = assign.add_partition_offset(e.topic(), e.partition(), offset);
            }
            info!(group = %self.group, partitions = %shown.join(","), "consumer group assigned partitions");
            if let Err(e) = base.assign(&assign) {
                tracing::warn!(group = %self.group, error = %e, "cannot assign the group's partitions");
            }
        } else {
            info!(group = %self.group, "consumer group revoked partitions");
            let _ = base.unassign();
        }
    }
}

/// A member of the table's consumer group.
pub struct KafkaGroupConsumer {
    consumer: Option<Arc<BaseConsumer<GroupContext>>>,
    positions: Positions,
    topic: String,
    /// Whether messages carry their headers (`metadata.populate`).
    headers: bool,
}

impl KafkaGroupConsumer {
    /// Joins the group and subscribes; partitions are positioned as they are assigned.
    pub async fn open(
        k: Arc<KafkaConfig>,
        group: String,
        start: StreamLevelStart,
    ) -> Result<KafkaGroupConsumer, StreamError> {
        let (positions, default_start) = match start {
            StreamLevelStart::Earliest => (BTreeMap::new(), Offset::Beginning),
            StreamLevelStart::Latest => (BTreeMap::new(), Offset::End),
            // Partitions the checkpoint does not hold (added later) start at their beginning.
            StreamLevelStart::Checkpoint(cp) => (cp, Offset::Beginning),
        };
        let positions: Positions = Arc::new(Mutex::new(positions));
        let topic = k.topic.clone();
        let headers = k.metadata_populate;
        let ctx = GroupContext {
            log: RiffleContext::new(&format!("riffle-hlc-{topic}")),
            positions: positions.clone(),
            default_start,
            group: group.clone(),
        };
        let consumer = blocking(move || {
            let mut c = k.client_config(&format!("riffle-hlc-{}", k.topic));
            for (key, v) in &k.group_client {
                c.set(key.as_str(), v.as_str());
            }
            c.set("group.id", &group);
            c.set("enable.partition.eof", "false");
            let consumer: BaseConsumer<GroupContext> = c
                .create_with_context(ctx)
                .map_err(|e| stream_error("create kafka group consumer", &e, None))?;
            consumer.subscribe(&[k.topic.as_str()]).map_err(|e| {
                stream_error(&format!("subscribe to kafka topic '{}'", k.topic), &e, None)
            })?;
            Ok(consumer)
        })
        .await?;
        Ok(KafkaGroupConsumer {
            consumer: Some(Arc::new(consumer)),
            positions,
            topic,
            headers,
        })
    }
}

impl Drop for KafkaGroupConsumer {
    fn drop(&mut self) {
        // Leaving the group waits for the broker.
        if let Some(c) = self.consumer.take() {
            drop_off_runtime(c);
        }
    }
}

#[async_trait]
impl StreamLevelConsumer for KafkaGroupConsumer {
    async fn next_batch(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<(PartitionId, StreamMessage)>, StreamError> {
        let consumer = self
            .consumer
            .clone()
            .ok_or_else(|| StreamError::new(StreamErrorKind::Fatal, "consumer closed"))?;
        let positions = self.positions.clone();
        let topic = self.topic.clone();
        let headers = self.headers;
        blocking(move || {
            let deadline = Instant::now() + timeout;
            let mut held = Vec::new();
            let mut size = 0;
            loop {
                let wait = if held.is_empty() {
                    deadline.saturating_duration_since(Instant::now())
                } else {
                    Duration::ZERO
                };
                match consumer.poll(wait) {
                    None => break,
                    Some(Ok(m)) => {
                        size += m.payload().map_or(0, |p| p.len()) + m.key().map_or(0, |k| k.len());
                        held.push(m);
                        if held.len() >= MAX_BATCH {
                            break;
                        }
                    }
                    Some(Err(KafkaError::PartitionEOF(_))) => {}
                    Some(Err(e)) => {
                        if matches!(
                            e.rdkafka_error_code(),
                            Some(
                                RDKafkaErrorCode::BrokerTransportFailure
                                    | RDKafkaErrorCode::AllBrokersDown
                            )
                        ) && !held.is_empty()
                        {
                            break;
                        }
                        return Err(stream_error(
                            &format!("read kafka topic '{topic}' in its group"),
                            &e,
                            None,
                        ));
                    }
                }
                if held.is_empty() && Instant::now() >= deadline {
                    break;
                }
            }
            let refs: Vec<&dyn Fetched> = held.iter().map(|m| m as &dyn Fetched).collect();
            let messages = copy_out(&refs, size, headers);
            drop(refs);
            let mut pos = positions.lock();
            let mut out = Vec::with_capacity(messages.len());
            for (m, msg) in held.iter().zip(messages) {
                let p = PartitionId(u32::try_from(m.partition()).unwrap_or(0));
                pos.insert(p, msg.next_offset.clone());
                // Tombstones move the position but are not returned.
                if m.payload().is_some() {
                    out.push((p, msg));
                }
            }
            Ok(out)
        })
        .await
    }

    fn checkpoint(&self) -> BTreeMap<PartitionId, StreamOffset> {
        self.positions.lock().clone()
    }
}
