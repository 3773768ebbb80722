//! The stream-level (Pinot's former high-level) consumer, as a table mode and as a plugin
//! role.
//!
//! - [`RoundRobinConsumer`]: a [`StreamLevelConsumer`] for any plugin, built from its
//!   metadata provider and partition consumers: it reads every partition round-robin and
//!   keeps the position after what it returned, which it hands out only as a checkpoint
//!   when asked. A plugin with a native stream-level client (Kafka's consumer group)
//!   overrides [`StreamPlugin::stream_level_consumer`](crate::StreamPlugin::stream_level_consumer).
//! - [`StreamLevelPlugin`]: what a table with `stream.<t>.consumer.type: highlevel` reads. It
//!   wraps the stream's plugin and shows the stream as **one partition** (0) whose offset is
//!   the checkpoint: the vector of every stream partition's offset, in the string form of
//!   [`encode_checkpoint`]. The ingestion loop, the catalog and the commit protocol treat it
//!   as any partition, so a checkpoint is recorded only when a segment commits, in the same
//!   catalog transaction as the segment, and a restart resumes from the last committed
//!   checkpoint, re-reading the rows the crash lost: exactly once, as partition-level
//!   consumption.
//!
//! Each message's offset is the checkpoint before it and its next offset the checkpoint
//! after it, so a segment may end between any two messages. Offset criteria resolve per
//! stream partition (`smallest`, `largest`, a time) into the first checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use riffle_common::PartitionId;

use crate::{
    MessageBatch, MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext,
    StreamError, StreamErrorKind, StreamLevelConsumer, StreamLevelStart, StreamMessage,
    StreamOffset, StreamPlugin,
};

/// Round-robin over the partitions that existed when it was opened.
pub struct RoundRobinConsumer {
    consumers: Vec<(PartitionId, Box<dyn PartitionConsumer>)>,
    positions: BTreeMap<PartitionId, StreamOffset>,
    next: usize,
}

/// Opens a stream-level consumer on `plugin` starting at `start`. Partitions missing from a
/// checkpoint start from the smallest offset.
pub async fn open<P: StreamPlugin + ?Sized>(
    plugin: &P,
    config: &StreamConfig,
    ctx: &StreamContext,
    start: StreamLevelStart,
) -> Result<RoundRobinConsumer, StreamError> {
    let timeout = Duration::from_millis(config.connection_timeout_ms.max(1));
    let mut md = plugin.metadata_provider(config, ctx).await?;
    let mut consumers = Vec::new();
    let mut positions = BTreeMap::new();
    for p in md.partition_ids(timeout).await? {
        let from = match &start {
            StreamLevelStart::Earliest => {
                md.offset_for(p, &OffsetCriteria::Smallest, timeout).await?
            }
            StreamLevelStart::Latest => md.offset_for(p, &OffsetCriteria::Largest, timeout).await?,
            StreamLevelStart::Checkpoint(c) => match c.get(&p) {
                Some(o) => o.clone(),
                None => md.offset_for(p, &OffsetCriteria::Smallest, timeout).await?,
            },
        };
        consumers.push((p, plugin.partition_consumer(config, ctx, p).await?));
        positions.insert(p, from);
    }
    Ok(RoundRobinConsumer {
        consumers,
        positions,
        next: 0,
    })
}

#[async_trait]
impl StreamLevelConsumer for RoundRobinConsumer {
    async fn next_batch(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<(PartitionId, StreamMessage)>, StreamError> {
        let n = self.consumers.len();
        if n == 0 {
            tokio::time::sleep(timeout).await;
            return Ok(Vec::new());
        }
        // Each partition gets a share of the wait; the first with messages answers.
        let share = (timeout / n as u32).max(Duration::from_millis(1));
        for _ in 0..n {
            let i = self.next % n;
            self.next = (self.next + 1) % n;
            let (p, consumer) = &mut self.consumers[i];
            let Some(from) = self.positions.get(p).cloned() else {
                continue;
            };
            let batch = consumer.fetch(&from, share).await?;
            self.positions.insert(*p, batch.next_offset.clone());
            if !batch.messages.is_empty() {
                let p = *p;
                return Ok(batch.messages.into_iter().map(|m| (p, m)).collect());
            }
        }
        Ok(Vec::new())
    }

    fn checkpoint(&self) -> BTreeMap<PartitionId, StreamOffset> {
        self.positions.clone()
    }
}

/// The string form of a checkpoint: a JSON object of stream partition to offset (both as
/// strings), e.g. `{"0":"120","1":"97"}`. Stored in the catalog as the stream-level
/// partition's offset.
pub fn encode_checkpoint(cp: &BTreeMap<PartitionId, StreamOffset>) -> StreamOffset {
    let mut s = String::from("{");
    for (i, (p, o)) in cp.iter().enumerate() {
        if i > 0 {
            s.push(',');
        }
        s.push_str(&serde_json::to_string(&p.0.to_string()).unwrap_or_default());
        s.push(':');
        s.push_str(&serde_json::to_string(&o.to_string()).unwrap_or_default());
    }
    s.push('}');
    StreamOffset::Text(Arc::from(s.as_str()))
}

/// The checkpoint a stream-level offset holds.
pub fn decode_checkpoint(
    o: &StreamOffset,
) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
    let bad = |why: String| {
        StreamError::new(
            StreamErrorKind::InvalidConfig,
            format!("offset '{o}' is not a stream-level checkpoint ({why}); expected e.g. {{\"0\":\"120\"}}"),
        )
    };
    let map: BTreeMap<String, String> =
        serde_json::from_str(&o.to_string()).map_err(|e| bad(e.to_string()))?;
    map.into_iter()
        .map(|(p, off)| {
            let p = p
                .parse::<u32>()
                .map_err(|_| bad(format!("partition '{p}' is not a number")))?;
            Ok((PartitionId(p), StreamOffset::parse(&off)))
        })
        .collect()
}

/// A plugin as a table with the stream-level consumer sees it: one partition whose offset is
/// the checkpoint vector (see the module documentation).
pub struct StreamLevelPlugin {
    inner: Arc<dyn StreamPlugin>,
}

impl StreamLevelPlugin {
    /// Wraps a stream's plugin.
    pub fn new(inner: Arc<dyn StreamPlugin>) -> StreamLevelPlugin {
        StreamLevelPlugin { inner }
    }
}

fn only_partition_zero(p: PartitionId) -> Result<(), StreamError> {
    if p.0 == 0 {
        Ok(())
    } else {
        Err(StreamError::new(
            StreamErrorKind::NotFound,
            format!("a stream-level table has one partition, 0, not {}", p.0),
        ))
    }
}

#[async_trait]
impl StreamPlugin for StreamLevelPlugin {
    fn stream_type(&self) -> &'static str {
        self.inner.stream_type()
    }

    fn offsets_count_records(&self) -> bool {
        false
    }

    fn validate(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError> {
        self.inner.validate(config, ctx)
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        Ok(Box::new(CheckpointProvider {
            inner: self.inner.metadata_provider(config, ctx).await?,
        }))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        only_partition_zero(partition)?;
        Ok(Box::new(CheckpointConsumer {
            plugin: self.inner.clone(),
            config: config.clone(),
            ctx: ctx.clone(),
            consumer: None,
            at: None,
            last: Vec::new(),
        }))
    }

    async fn stream_level_consumer(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
        start: StreamLevelStart,
    ) -> Result<Box<dyn StreamLevelConsumer>, StreamError> {
        self.inner.stream_level_consumer(config, ctx, start).await
    }
}

/// Checkpoints of the whole stream, as the offsets of partition 0.
struct CheckpointProvider {
    inner: Box<dyn MetadataProvider>,
}

#[async_trait]
impl MetadataProvider for CheckpointProvider {
    async fn partition_ids(&mut self, _timeout: Duration) -> Result<Vec<PartitionId>, StreamError> {
        Ok(vec![PartitionId(0)])
    }

    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        timeout: Duration,
    ) -> Result<StreamOffset, StreamError> {
        only_partition_zero(partition)?;
        let mut cp = BTreeMap::new();
        for p in self.inner.partition_ids(timeout).await? {
            cp.insert(p, self.inner.offset_for(p, criteria, timeout).await?);
        }
        Ok(encode_checkpoint(&cp))
    }

    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
        if !partitions.contains(&PartitionId(0)) {
            return Ok(BTreeMap::new());
        }
        let ids = self.inner.partition_ids(timeout).await?;
        let latest = self.inner.latest_offsets(&ids, timeout).await?;
        Ok(BTreeMap::from([(
            PartitionId(0),
            encode_checkpoint(&latest),
        )]))
    }
}

/// Partition 0 of a stream-level table: the plugin's stream-level consumer, opened at the
/// checkpoint a fetch asks for.
struct CheckpointConsumer {
    plugin: Arc<dyn StreamPlugin>,
    config: StreamConfig,
    ctx: StreamContext,
    consumer: Option<Box<dyn StreamLevelConsumer>>,
    /// The checkpoint after what was returned last.
    at: Option<StreamOffset>,
    /// The messages returned last: a fetch from one of them (the loop leaves the messages
    /// past a segment's row threshold for the next segment) gets the rest again without
    /// reopening the consumer, which for a group would mean a rebalance.
    last: Vec<StreamMessage>,
}

#[async_trait]
impl PartitionConsumer for CheckpointConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        let mut cp = decode_checkpoint(from)?;
        if self.consumer.is_some() && self.at.as_ref() != Some(from) {
            if let Some(i) = self.last.iter().position(|m| &m.offset == from) {
                let rest: Vec<StreamMessage> = self.last.split_off(i);
                self.last = rest.clone();
                let mut b = MessageBatch::empty(from.clone());
                b.size_bytes = rest
                    .iter()
                    .map(|m| m.value.len() + m.key.as_ref().map_or(0, |k| k.len()))
                    .sum();
                b.unfiltered_count = rest.len();
                b.messages = rest;
                b.next_offset = self.at.clone().unwrap_or_else(|| from.clone());
                return Ok(b);
            }
        }
        if self.consumer.is_none() || self.at.as_ref() != Some(from) {
            // A new start (or a restart at the last committed checkpoint): reopen there.
            self.consumer = None;
            let c = self
                .plugin
                .stream_level_consumer(
                    &self.config,
                    &self.ctx,
                    StreamLevelStart::Checkpoint(cp.clone()),
                )
                .await?;
            self.consumer = Some(c);
            self.at = Some(from.clone());
        }
        let Some(consumer) = self.consumer.as_mut() else {
            return Ok(MessageBatch::empty(from.clone()));
        };
        let got = match consumer.next_batch(timeout).await {
            Ok(g) => g,
            Err(e) => {
                // Reopen at the same checkpoint next time.
                self.consumer = None;
                return Err(e);
            }
        };
        let mut b = MessageBatch::empty(from.clone());
        let mut before = from.clone();
        for (p, mut m) in got {
            cp.insert(p, m.next_offset.clone());
            let after = encode_checkpoint(&cp);
            b.size_bytes += m.value.len() + m.key.as_ref().map_or(0, |k| k.len());
            m.offset = before;
            m.next_offset = after.clone();
            before = after;
            b.messages.push(m);
        }
        // The consumer's own checkpoint also moved past records it skipped.
        let mut all = cp;
        for (p, o) in consumer.checkpoint() {
            all.insert(p, o);
        }
        let next = encode_checkpoint(&all);
        b.unfiltered_count = b.messages.len() + usize::from(b.messages.is_empty() && &next != from);
        b.next_offset = next.clone();
        self.at = Some(next);
        self.last = b.messages.clone();
        Ok(b)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::memory::{MemoryBroker, MemoryPlugin};

    fn config(topic: &str) -> StreamConfig {
        let map = [
            ("streamType", "memory"),
            ("stream.memory.topic.name", topic),
            ("stream.memory.decoder.class.name", "json"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        StreamConfig::parse("$", &map).unwrap()
    }

    async fn drain(c: &mut dyn StreamLevelConsumer) -> Vec<String> {
        let mut out = Vec::new();
        loop {
            let b = c.next_batch(Duration::from_millis(30)).await.unwrap();
            if b.is_empty() {
                return out;
            }
            out.extend(
                b.into_iter()
                    .map(|(p, m)| format!("{}:{}", p.0, String::from_utf8_lossy(&m.value))),
            );
        }
    }

    #[tokio::test]
    async fn test_stream_level_reads_all_and_resumes_from_checkpoint() {
        let broker = MemoryBroker::global();
        broker.create_topic("stream-level", 3).unwrap();
        for i in 0..30u32 {
            broker
                .produce("stream-level", i % 3, format!("m{i}"))
                .unwrap();
        }
        broker.produce_tombstone("stream-level", 1).unwrap();
        let ctx = StreamContext::new(std::env::temp_dir());
        let cfg = config("stream-level");
        let mut c = MemoryPlugin
            .stream_level_consumer(&cfg, &ctx, StreamLevelStart::Earliest)
            .await
            .unwrap();
        let mut got = drain(c.as_mut()).await;
        got.sort();
        let mut want: Vec<String> = (0..30u32).map(|i| format!("{}:m{i}", i % 3)).collect();
        want.sort();
        assert_eq!(got, want);
        // The checkpoint is after everything returned, skipped records included.
        let cp = c.checkpoint();
        assert_eq!(cp[&PartitionId(1)], StreamOffset::Long(11));
        for i in 30..33u32 {
            broker
                .produce("stream-level", i % 3, format!("m{i}"))
                .unwrap();
        }
        let mut c = MemoryPlugin
            .stream_level_consumer(&cfg, &ctx, StreamLevelStart::Checkpoint(cp))
            .await
            .unwrap();
        let mut got = drain(c.as_mut()).await;
        got.sort();
        assert_eq!(got, vec!["0:m30", "1:m31", "2:m32"]);
        // Latest sees only what comes next.
        let mut c = MemoryPlugin
            .stream_level_consumer(&cfg, &ctx, StreamLevelStart::Latest)
            .await
            .unwrap();
        assert!(drain(c.as_mut()).await.is_empty());
        broker.produce("stream-level", 2, "late").unwrap();
        assert_eq!(drain(c.as_mut()).await, vec!["2:late"]);
    }

    #[test]
    fn test_checkpoints_round_trip_and_bad_ones_are_named() {
        let cp = BTreeMap::from([
            (PartitionId(0), StreamOffset::Long(120)),
            (PartitionId(7), StreamOffset::parse("4959+")),
        ]);
        let o = encode_checkpoint(&cp);
        assert_eq!(o.to_string(), r#"{"0":"120","7":"4959+"}"#);
        assert_eq!(StreamOffset::parse(&o.to_string()), o);
        assert_eq!(decode_checkpoint(&o).unwrap(), cp);
        for bad in ["12", "{\"x\":\"1\"}", "[1]", "{"] {
            let e = decode_checkpoint(&StreamOffset::parse(bad)).unwrap_err();
            assert!(
                e.message.contains("not a stream-level checkpoint"),
                "{bad}: {e}"
            );
        }
    }

    /// One partition whose offsets are checkpoints: every message once, each message's
    /// next offset a checkpoint to resume from.
    #[tokio::test]
    async fn test_the_stream_level_table_partition_resumes_between_any_two_messages() {
        let broker = MemoryBroker::global();
        broker.create_topic("stream-level-table", 2).unwrap();
        for i in 0..20u32 {
            broker
                .produce("stream-level-table", i % 2, format!("m{i}"))
                .unwrap();
        }
        let ctx = StreamContext::new(std::env::temp_dir());
        let cfg = config("stream-level-table");
        let plugin = StreamLevelPlugin::new(Arc::new(MemoryPlugin));
        let mut md = plugin.metadata_provider(&cfg, &ctx).await.unwrap();
        let t = Duration::from_secs(1);
        assert_eq!(md.partition_ids(t).await.unwrap(), vec![PartitionId(0)]);
        let start = md
            .offset_for(PartitionId(0), &OffsetCriteria::Smallest, t)
            .await
            .unwrap();
        assert_eq!(start.to_string(), r#"{"0":"0","1":"0"}"#);
        let mut c = plugin
            .partition_consumer(&cfg, &ctx, PartitionId(0))
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut at = start.clone();
        let mut offsets = Vec::new();
        while got.len() < 20 {
            let b = c.fetch(&at, Duration::from_millis(50)).await.unwrap();
            for m in &b.messages {
                got.push(String::from_utf8_lossy(&m.value).into_owned());
                offsets.push(m.next_offset.clone());
            }
            at = b.next_offset;
        }
        got.sort();
        let mut want: Vec<String> = (0..20).map(|i| format!("m{i}")).collect();
        want.sort();
        assert_eq!(got, want);
        // A fetch from inside the last batch gets its rest again (no reopening).
        let b = c.fetch(&start, Duration::from_millis(50)).await.unwrap();
        assert!(b.messages.len() >= 2, "{}", b.messages.len());
        let second = b.messages[1].offset.clone();
        let again = c.fetch(&second, Duration::from_millis(50)).await.unwrap();
        assert_eq!(again.messages.len(), b.messages.len() - 1);
        assert_eq!(again.messages[0].value, b.messages[1].value);
        assert_eq!(again.next_offset, b.next_offset);
        // Resuming after message 7 (a fresh consumer, as after a crash) reads the other 12.
        let mut c2 = plugin
            .partition_consumer(&cfg, &ctx, PartitionId(0))
            .await
            .unwrap();
        let b = c2
            .fetch(&offsets[7], Duration::from_millis(50))
            .await
            .unwrap();
        let mut rest = b.messages.len();
        let mut at = b.next_offset;
        while rest < 12 {
            let b = c2.fetch(&at, Duration::from_millis(50)).await.unwrap();
            rest += b.messages.len();
            at = b.next_offset;
        }
        assert_eq!(rest, 12);
        let latest = md.latest_offsets(&[PartitionId(0)], t).await.unwrap();
        assert_eq!(
            latest[&PartitionId(0)].to_string(),
            r#"{"0":"10","1":"10"}"#
        );
    }
}
