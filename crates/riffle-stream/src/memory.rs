//! The `memory` stream: in-process topics, for tests and examples.
//!
//! Topics live in a process-global [`MemoryBroker`] ([`MemoryBroker::global`]), by name; a
//! table reads the topic named by `stream.memory.topic.name`. Producers call
//! [`MemoryBroker::produce`] (or [`MemoryBroker::produce_with`] for a key, headers and a
//! record timestamp) and consumers see the message at once: a waiting fetch is woken, it
//! does not poll.
//!
//! # Offsets
//!
//! Offsets are `Long(0)`, `Long(1)`, ... per partition: a record's offset is its position
//! in the partition, its `next_offset` the position after it. Tombstones
//! ([`MemoryBroker::produce_tombstone`]) occupy an offset but are never returned: the
//! batch's `next_offset` moves past them (contract rule 5).
//!
//! [`MemoryBroker::truncate_before`] simulates retention: the records below an offset are
//! gone, and a fetch from such an offset returns the records from the first available one
//! with [`DataLoss`] set. A fetch from beyond the end of a partition is an
//! `OffsetOutOfRange` error (the broker knows every offset it handed out).
//!
//! # Time criteria
//!
//! Every message has a timestamp (the producer's, or the time of `produce` in epoch ms).
//! `Period` and `Timestamp` criteria give the first message (tombstones aside) at or after
//! the instant, or the end of the partition if there is none.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use riffle_common::{now_ms, PartitionId};
use tokio::sync::Notify;

use crate::{
    DataLoss, MessageBatch, MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig,
    StreamContext, StreamError, StreamErrorKind, StreamMessage, StreamOffset, StreamPlugin,
};

/// The most records (messages and tombstones) one fetch returns.
pub const MAX_BATCH_RECORDS: usize = 10_000;

/// A deadline for timeouts too long to add to the clock.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// The `memory` stream plugin: reads topics of [`MemoryBroker::global`].
#[derive(Clone, Copy, Debug, Default)]
pub struct MemoryPlugin;

/// A record to produce with all its parts.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct MemoryRecord {
    /// Message key.
    pub key: Option<Bytes>,
    /// Message value.
    pub value: Bytes,
    /// Headers in order.
    pub headers: Vec<(String, Bytes)>,
    /// Record timestamp in epoch ms; `None` stamps the time of `produce`.
    pub timestamp_ms: Option<i64>,
}

impl MemoryRecord {
    /// A record with only a value.
    pub fn new(value: impl Into<Bytes>) -> MemoryRecord {
        MemoryRecord {
            value: value.into(),
            ..MemoryRecord::default()
        }
    }
}

/// A stored record.
struct Stored {
    key: Option<Bytes>,
    value: Bytes,
    headers: Vec<(String, Bytes)>,
    timestamp_ms: i64,
    tombstone: bool,
}

/// One partition: the records from offset `start` on.
#[derive(Default)]
struct Log {
    start: i64,
    records: VecDeque<Stored>,
    /// Closed (like a split Kinesis shard): a reader at the end is told so.
    closed: bool,
    /// The partitions this one was split or merged from ([`MemoryBroker::reshard`]).
    parents: Vec<u32>,
}

impl Log {
    /// The next offset to be written.
    fn end(&self) -> i64 {
        self.start + self.records.len() as i64
    }
}

/// A topic: its partitions and the notification of new records.
#[derive(Default)]
struct Topic {
    partitions: Mutex<Vec<Log>>,
    changed: Notify,
}

/// In-process topics by name.
#[derive(Default)]
pub struct MemoryBroker {
    topics: Mutex<HashMap<String, Arc<Topic>>>,
}

fn no_topic(name: &str) -> StreamError {
    StreamError::new(
        StreamErrorKind::NotFound,
        format!("memory topic '{name}' does not exist"),
    )
}

fn no_partition(name: &str, partition: u32, count: usize) -> StreamError {
    StreamError::new(
        StreamErrorKind::NotFound,
        format!("memory topic '{name}' has no partition {partition} (it has {count})"),
    )
}

impl MemoryBroker {
    /// The broker every [`MemoryPlugin`] reads.
    pub fn global() -> &'static MemoryBroker {
        static GLOBAL: OnceLock<MemoryBroker> = OnceLock::new();
        GLOBAL.get_or_init(MemoryBroker::default)
    }

    fn topic(&self, name: &str) -> Result<Arc<Topic>, StreamError> {
        self.topics
            .lock()
            .get(name)
            .cloned()
            .ok_or_else(|| no_topic(name))
    }

    /// Creates an empty topic; an error if it exists.
    pub fn create_topic(&self, name: &str, partitions: u32) -> Result<(), StreamError> {
        let mut topics = self.topics.lock();
        if topics.contains_key(name) {
            return Err(StreamError::new(
                StreamErrorKind::Fatal,
                format!("memory topic '{name}' already exists"),
            ));
        }
        let topic = Topic::default();
        topic
            .partitions
            .lock()
            .extend((0..partitions).map(|_| Log::default()));
        topics.insert(name.to_string(), Arc::new(topic));
        Ok(())
    }

    /// Adds `n` empty partitions; returns the new partition count.
    pub fn add_partitions(&self, name: &str, n: u32) -> Result<u32, StreamError> {
        let topic = self.topic(name)?;
        let count = {
            let mut parts = topic.partitions.lock();
            parts.extend((0..n).map(|_| Log::default()));
            parts.len()
        };
        topic.changed.notify_waiters();
        Ok(u32::try_from(count).unwrap_or(u32::MAX))
    }

    /// The number of partitions of a topic, if it exists.
    pub fn partition_count(&self, name: &str) -> Option<u32> {
        let topic = self.topic(name).ok()?;
        let n = topic.partitions.lock().len();
        Some(u32::try_from(n).unwrap_or(u32::MAX))
    }

    /// The names of all topics, sorted.
    pub fn topic_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.topics.lock().keys().cloned().collect();
        names.sort();
        names
    }

    /// Removes a topic; returns whether it existed. Waiting fetches wake and fail with
    /// `NotFound`.
    pub fn delete_topic(&self, name: &str) -> bool {
        let removed = self.topics.lock().remove(name);
        match removed {
            Some(topic) => {
                topic.changed.notify_waiters();
                true
            }
            None => false,
        }
    }

    fn append(&self, name: &str, partition: u32, record: Stored) -> Result<i64, StreamError> {
        let topic = self.topic(name)?;
        let offset = {
            let mut parts = topic.partitions.lock();
            let count = parts.len();
            let log = parts
                .get_mut(partition as usize)
                .ok_or_else(|| no_partition(name, partition, count))?;
            if log.closed {
                return Err(StreamError::new(
                    StreamErrorKind::InvalidConfig,
                    format!("memory topic '{name}' partition {partition} is closed"),
                ));
            }
            let offset = log.end();
            log.records.push_back(record);
            offset
        };
        topic.changed.notify_waiters();
        Ok(offset)
    }

    /// Appends a message with only a value; returns its offset.
    pub fn produce(
        &self,
        name: &str,
        partition: u32,
        value: impl Into<Bytes>,
    ) -> Result<i64, StreamError> {
        self.produce_with(name, partition, MemoryRecord::new(value))
    }

    /// Appends a message with its key, headers and timestamp; returns its offset.
    pub fn produce_with(
        &self,
        name: &str,
        partition: u32,
        record: MemoryRecord,
    ) -> Result<i64, StreamError> {
        self.append(
            name,
            partition,
            Stored {
                key: record.key,
                value: record.value,
                headers: record.headers,
                timestamp_ms: record.timestamp_ms.unwrap_or_else(now_ms),
                tombstone: false,
            },
        )
    }

    /// Appends a tombstone: it occupies an offset, but fetch never returns it. Returns its
    /// offset.
    pub fn produce_tombstone(&self, name: &str, partition: u32) -> Result<i64, StreamError> {
        self.append(
            name,
            partition,
            Stored {
                key: None,
                value: Bytes::new(),
                headers: Vec::new(),
                timestamp_ms: now_ms(),
                tombstone: true,
            },
        )
    }

    /// Drops the records below `offset` (clamped to the end of the partition), as
    /// retention would. Offsets of the remaining records do not change.
    pub fn truncate_before(
        &self,
        name: &str,
        partition: u32,
        offset: i64,
    ) -> Result<(), StreamError> {
        let topic = self.topic(name)?;
        {
            let mut parts = topic.partitions.lock();
            let count = parts.len();
            let log = parts
                .get_mut(partition as usize)
                .ok_or_else(|| no_partition(name, partition, count))?;
            let new_start = offset.clamp(log.start, log.end());
            let drop = usize::try_from(new_start - log.start).unwrap_or(0);
            log.records.drain(..drop);
            log.start = new_start;
        }
        topic.changed.notify_waiters();
        Ok(())
    }
}

impl MemoryBroker {
    /// Closes a partition: no more records can be produced to it, and a reader that reached
    /// its end gets `end_of_partition` (as a split or merged Kinesis shard does).
    pub fn close_partition(&self, name: &str, partition: u32) -> Result<(), StreamError> {
        let topic = self.topic(name)?;
        {
            let mut parts = topic.partitions.lock();
            let count = parts.len();
            parts
                .get_mut(partition as usize)
                .ok_or_else(|| no_partition(name, partition, count))?
                .closed = true;
        }
        topic.changed.notify_waiters();
        Ok(())
    }
}

impl MemoryBroker {
    /// Reshards as Kinesis does: closes `parents` and adds `children` partitions whose
    /// parents they are (a split: one parent, two children; a merge: two parents, one
    /// child). Returns the ids of the new partitions.
    pub fn reshard(
        &self,
        name: &str,
        parents: &[u32],
        children: u32,
    ) -> Result<Vec<u32>, StreamError> {
        let topic = self.topic(name)?;
        let ids = {
            let mut parts = topic.partitions.lock();
            let count = parts.len();
            for p in parents {
                parts
                    .get_mut(*p as usize)
                    .ok_or_else(|| no_partition(name, *p, count))?
                    .closed = true;
            }
            let first = u32::try_from(count).unwrap_or(u32::MAX);
            parts.extend((0..children).map(|_| Log {
                parents: parents.to_vec(),
                ..Log::default()
            }));
            (first..first + children).collect()
        };
        topic.changed.notify_waiters();
        Ok(ids)
    }
}

impl Topic {
    /// The records at `from`, or `None` if there are none yet (and nothing to report).
    fn read(
        &self,
        name: &str,
        partition: u32,
        from: i64,
    ) -> Result<Option<MessageBatch>, StreamError> {
        let parts = self.partitions.lock();
        let log = parts
            .get(partition as usize)
            .ok_or_else(|| no_partition(name, partition, parts.len()))?;
        let mut pos = from;
        let mut data_loss = None;
        if pos < log.start {
            data_loss = Some(DataLoss {
                requested: StreamOffset::Long(from),
                available_from: StreamOffset::Long(log.start),
            });
            pos = log.start;
        }
        let end = log.end();
        if pos > end {
            return Err(StreamError::new(
                StreamErrorKind::OffsetOutOfRange,
                format!(
                    "memory topic '{name}' partition {partition}: offset {from} is beyond the end \
                     of the partition (next offset {end})"
                ),
            ));
        }
        if pos == end && data_loss.is_none() {
            if log.closed {
                return Ok(Some(MessageBatch {
                    messages: Vec::new(),
                    next_offset: StreamOffset::Long(end),
                    unfiltered_count: 0,
                    end_of_partition: true,
                    data_loss: None,
                    size_bytes: 0,
                }));
            }
            return Ok(None);
        }
        let skip = usize::try_from(pos - log.start).unwrap_or(0);
        let mut messages = Vec::new();
        let mut unfiltered = 0usize;
        let mut size_bytes = 0usize;
        for (i, r) in log
            .records
            .iter()
            .skip(skip)
            .take(MAX_BATCH_RECORDS)
            .enumerate()
        {
            unfiltered += 1;
            if r.tombstone {
                continue;
            }
            let offset = pos + i as i64;
            size_bytes += r.value.len() + r.key.as_ref().map_or(0, |k| k.len());
            messages.push(StreamMessage {
                key: r.key.clone(),
                value: r.value.clone(),
                headers: r.headers.clone(),
                offset: StreamOffset::Long(offset),
                next_offset: StreamOffset::Long(offset + 1),
                timestamp_ms: Some(r.timestamp_ms),
            });
        }
        Ok(Some(MessageBatch {
            messages,
            next_offset: StreamOffset::Long(pos + unfiltered as i64),
            unfiltered_count: unfiltered,
            end_of_partition: log.closed && pos + unfiltered as i64 == end,
            data_loss,
            size_bytes,
        }))
    }

    /// The offset of a criteria in one partition.
    fn offset_for(
        &self,
        name: &str,
        partition: u32,
        criteria: &OffsetCriteria,
    ) -> Result<i64, StreamError> {
        let parts = self.partitions.lock();
        let log = parts
            .get(partition as usize)
            .ok_or_else(|| no_partition(name, partition, parts.len()))?;
        let instant = match criteria {
            OffsetCriteria::Smallest => return Ok(log.start),
            OffsetCriteria::Largest => return Ok(log.end()),
            OffsetCriteria::Period(ms) => now_ms().saturating_sub(*ms),
            OffsetCriteria::Timestamp(ms) => *ms,
        };
        Ok(log
            .records
            .iter()
            .position(|r| !r.tombstone && r.timestamp_ms >= instant)
            .map_or(log.end(), |i| log.start + i as i64))
    }
}

#[async_trait]
impl StreamPlugin for MemoryPlugin {
    fn stream_type(&self) -> &'static str {
        "memory"
    }

    fn validate(
        &self,
        _config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError> {
        // The topic may be created after the table.
        Ok(Vec::new())
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        Ok(Box::new(MemoryMetadataProvider {
            topic: config.topic.clone(),
        }))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        let topic = MemoryBroker::global().topic(&config.topic)?;
        let count = topic.partitions.lock().len();
        if partition.0 as usize >= count {
            return Err(no_partition(&config.topic, partition.0, count));
        }
        Ok(Box::new(MemoryPartitionConsumer {
            topic: config.topic.clone(),
            partition: partition.0,
        }))
    }
}

/// Partitions and offsets of a memory topic.
struct MemoryMetadataProvider {
    topic: String,
}

#[async_trait]
impl MetadataProvider for MemoryMetadataProvider {
    async fn partition_ids(&mut self, _timeout: Duration) -> Result<Vec<PartitionId>, StreamError> {
        let n = MemoryBroker::global()
            .partition_count(&self.topic)
            .ok_or_else(|| no_topic(&self.topic))?;
        Ok((0..n).map(PartitionId).collect())
    }

    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        _timeout: Duration,
    ) -> Result<StreamOffset, StreamError> {
        let topic = MemoryBroker::global().topic(&self.topic)?;
        topic
            .offset_for(&self.topic, partition.0, criteria)
            .map(StreamOffset::Long)
    }

    async fn parents(
        &mut self,
        _timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, Vec<PartitionId>>, StreamError> {
        let topic = MemoryBroker::global().topic(&self.topic)?;
        let parts = topic.partitions.lock();
        Ok(parts
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.parents.is_empty())
            .map(|(i, l)| {
                let id = PartitionId(u32::try_from(i).unwrap_or(u32::MAX));
                (id, l.parents.iter().copied().map(PartitionId).collect())
            })
            .collect())
    }

    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        _timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
        let topic = MemoryBroker::global().topic(&self.topic)?;
        partitions
            .iter()
            .map(|p| {
                topic
                    .offset_for(&self.topic, p.0, &OffsetCriteria::Largest)
                    .map(|o| (*p, StreamOffset::Long(o)))
            })
            .collect()
    }
}

/// A consumer of one memory partition.
struct MemoryPartitionConsumer {
    topic: String,
    partition: u32,
}

#[async_trait]
impl PartitionConsumer for MemoryPartitionConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        let start = match from {
            StreamOffset::Long(n) => *n,
            StreamOffset::Text(t) => {
                return Err(StreamError::new(
                    StreamErrorKind::Fatal,
                    format!(
                        "memory topic '{}' partition {}: offset '{t}' is not an integer",
                        self.topic, self.partition
                    ),
                ))
            }
        };
        let now = tokio::time::Instant::now();
        let deadline = now.checked_add(timeout).unwrap_or(now + FAR_FUTURE);
        loop {
            // Looked up every time: the topic may be deleted (and re-created) meanwhile.
            let topic = MemoryBroker::global().topic(&self.topic)?;
            let changed = topic.changed.notified();
            tokio::pin!(changed);
            // Registered before reading, so a record produced in between still wakes us.
            changed.as_mut().enable();
            if let Some(batch) = topic.read(&self.topic, self.partition, start)? {
                return Ok(batch);
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return Ok(MessageBatch::empty(from.clone()));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const T: Duration = Duration::from_millis(50);

    fn config(topic: &str) -> StreamConfig {
        let m: BTreeMap<String, String> = [
            ("streamType", "memory"),
            ("stream.memory.topic.name", topic),
            (
                "stream.memory.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        StreamConfig::parse("$", &m).unwrap()
    }

    fn ctx() -> StreamContext {
        StreamContext::new(std::env::temp_dir())
    }

    async fn consumer(topic: &str, p: u32) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        MemoryPlugin
            .partition_consumer(&config(topic), &ctx(), PartitionId(p))
            .await
    }

    fn values(b: &MessageBatch) -> Vec<&[u8]> {
        b.messages.iter().map(|m| m.value.as_ref()).collect()
    }

    #[tokio::test]
    async fn test_data_loss_after_truncate_before() {
        let broker = MemoryBroker::global();
        broker.create_topic("unit-truncate", 1).unwrap();
        for v in ["a", "b", "c", "d"] {
            broker.produce("unit-truncate", 0, v).unwrap();
        }
        broker.truncate_before("unit-truncate", 0, 2).unwrap();
        let mut c = consumer("unit-truncate", 0).await.unwrap();
        let b = c.fetch(&StreamOffset::Long(1), T).await.unwrap();
        assert_eq!(
            b.data_loss,
            Some(DataLoss {
                requested: StreamOffset::Long(1),
                available_from: StreamOffset::Long(2),
            })
        );
        assert_eq!(values(&b), vec![b"c".as_ref(), b"d"]);
        assert_eq!(b.messages[0].offset, StreamOffset::Long(2));
        assert_eq!(b.next_offset, StreamOffset::Long(4));
        let b = c.fetch(&StreamOffset::Long(2), T).await.unwrap();
        assert_eq!(b.data_loss, None);

        // Everything gone: data loss is reported at once, with no messages.
        broker.truncate_before("unit-truncate", 0, 100).unwrap();
        let b = c
            .fetch(&StreamOffset::Long(0), Duration::from_secs(10))
            .await
            .unwrap();
        assert!(b.messages.is_empty());
        assert_eq!(b.next_offset, StreamOffset::Long(4));
        assert!(b.data_loss.is_some());
        let mut p = MemoryPlugin
            .metadata_provider(&config("unit-truncate"), &ctx())
            .await
            .unwrap();
        let smallest = p
            .offset_for(PartitionId(0), &OffsetCriteria::Smallest, T)
            .await;
        assert_eq!(smallest.unwrap(), StreamOffset::Long(4));
        assert_eq!(broker.produce("unit-truncate", 0, "e").unwrap(), 4);
    }

    #[tokio::test]
    async fn test_records_keys_headers_timestamps_and_tombstones() {
        let broker = MemoryBroker::global();
        broker.create_topic("unit-records", 1).unwrap();
        let record = MemoryRecord {
            key: Some(Bytes::from_static(b"k")),
            value: Bytes::from_static(b"v"),
            headers: vec![("h".to_string(), Bytes::from_static(b"1"))],
            timestamp_ms: Some(1_000),
        };
        assert_eq!(
            broker
                .produce_with("unit-records", 0, record.clone())
                .unwrap(),
            0
        );
        assert_eq!(broker.produce_tombstone("unit-records", 0).unwrap(), 1);
        let late = MemoryRecord {
            timestamp_ms: Some(5_000),
            ..MemoryRecord::new("w")
        };
        assert_eq!(broker.produce_with("unit-records", 0, late).unwrap(), 2);
        let mut c = consumer("unit-records", 0).await.unwrap();
        let b = c.fetch(&StreamOffset::Long(0), T).await.unwrap();
        assert_eq!(b.unfiltered_count, 3);
        assert_eq!(b.size_bytes, 3);
        let m = &b.messages[0];
        assert_eq!(m.key, record.key);
        assert_eq!(m.headers, record.headers);
        assert_eq!(m.timestamp_ms, Some(1_000));
        assert_eq!(b.messages[1].offset, StreamOffset::Long(2));

        let mut p = MemoryPlugin
            .metadata_provider(&config("unit-records"), &ctx())
            .await
            .unwrap();
        let at = |ts| OffsetCriteria::Timestamp(ts);
        assert_eq!(
            p.offset_for(PartitionId(0), &at(0), T).await.unwrap(),
            StreamOffset::Long(0)
        );
        // The tombstone (stamped now) is not a message: the first message at or after is `w`.
        assert_eq!(
            p.offset_for(PartitionId(0), &at(1_001), T).await.unwrap(),
            StreamOffset::Long(2)
        );
        assert_eq!(
            p.offset_for(PartitionId(0), &at(9_000), T).await.unwrap(),
            StreamOffset::Long(3)
        );

        // Beyond the end of the partition.
        let err = c.fetch(&StreamOffset::Long(10), T).await.unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::OffsetOutOfRange);
        assert!(
            err.message.contains("'unit-records' partition 0"),
            "{}",
            err.message
        );
    }

    #[tokio::test]
    async fn test_unknown_topics_and_partitions() {
        let mut p = MemoryPlugin
            .metadata_provider(&config("unit-nosuch"), &ctx())
            .await
            .unwrap();
        let err = p.partition_ids(T).await.unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::NotFound);
        assert!(err.message.contains("'unit-nosuch'"), "{}", err.message);
        let err = consumer("unit-nosuch", 0).await.err().unwrap();
        assert_eq!(err.kind, StreamErrorKind::NotFound);

        let broker = MemoryBroker::global();
        broker.create_topic("unit-parts", 2).unwrap();
        assert!(broker.create_topic("unit-parts", 2).is_err());
        let err = consumer("unit-parts", 2).await.err().unwrap();
        assert_eq!(err.kind, StreamErrorKind::NotFound);
        assert!(err.message.contains("partition 2"), "{}", err.message);
        assert!(broker.produce("unit-parts", 5, "x").is_err());
        assert_eq!(broker.partition_count("unit-parts"), Some(2));
        assert!(broker.topic_names().contains(&"unit-parts".to_string()));
    }

    #[tokio::test]
    async fn test_delete_wakes_a_waiting_fetch() {
        let broker = MemoryBroker::global();
        broker.create_topic("unit-delete", 1).unwrap();
        let mut c = consumer("unit-delete", 0).await.unwrap();
        let deleter = tokio::spawn(async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            MemoryBroker::global().delete_topic("unit-delete")
        });
        let started = std::time::Instant::now();
        let err = c
            .fetch(&StreamOffset::Long(0), Duration::from_secs(10))
            .await
            .unwrap_err();
        assert_eq!(err.kind, StreamErrorKind::NotFound);
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(deleter.await.unwrap());
        assert!(!broker.delete_topic("unit-delete"));
    }
}
