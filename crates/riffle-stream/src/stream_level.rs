//! A stream-level consumer (Pinot's former high-level consumer) for any plugin, built from
//! its metadata provider and partition consumers: it reads every partition round-robin and
//! keeps the position after what it returned, which it hands out only as a checkpoint when
//! asked. A plugin with a native stream-level client may override
//! [`StreamPlugin::stream_level_consumer`](crate::StreamPlugin::stream_level_consumer).

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use riffle_common::PartitionId;

use crate::{
    OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext, StreamError,
    StreamLevelConsumer, StreamLevelStart, StreamMessage, StreamOffset, StreamPlugin,
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
}
