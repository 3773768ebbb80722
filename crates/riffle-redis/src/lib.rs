//! riffle-redis: Redis Streams as a Riffle stream (`streamType: redis`), a stream Pinot never
//! had, through the same plugin interface (a small RESP2 client, [`resp`]).
//!
//! # Config
//!
//! | Key | Meaning |
//! |---|---|
//! | `stream.redis.topic.name` | required: the stream key, or several keys separated by commas, partition `i` being the `i`-th |
//! | `stream.redis.url` | required: `redis://[[user]:password@]host:port[/db]` |
//! | `stream.redis.value.field` | the entry field holding the message (default `value`); an entry without it becomes a JSON object of all its fields |
//! | `stream.redis.max.entries` | entries per fetch, 1 to 100,000 (default 10,000) |
//!
//! `rediss://` (TLS) is refused naming the key.
//!
//! # Offsets
//!
//! An entry's offset is its ID `<ms>-<seq>`, the sequence padded to 20 digits so that
//! offsets order as entries do; its next offset is the ID plus one. A fetch reads
//! `XRANGE key <from> + COUNT n` and, when nothing is there, waits with
//! `XREAD BLOCK <timeout> STREAMS key <the ID before from>`. `smallest` is the first entry,
//! `largest` the ID after the last, a period or an instant the first entry whose ID time is
//! at or after it (Redis IDs carry their time); a message's timestamp is its ID's
//! millisecond part, its headers the entry's other fields.
//!
//! # Not done
//!
//! TLS, consumer groups (Riffle keeps its own offsets), data-loss detection after `XTRIM`.

pub mod config;
pub mod entry;
pub mod resp;
#[cfg(feature = "testsuite")]
pub mod testing;

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use riffle_common::PartitionId;
use riffle_stream::{
    MessageBatch, MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext,
    StreamError, StreamErrorKind, StreamMessage, StreamOffset, StreamPlugin,
};

pub use crate::config::RedisConfig;
use crate::entry::{entries, xread_entries, EntryId};
use crate::resp::{Connection, Reply};

/// The Redis Streams plugin.
#[derive(Clone, Copy, Debug, Default)]
pub struct RedisPlugin;

#[async_trait]
impl StreamPlugin for RedisPlugin {
    fn stream_type(&self) -> &'static str {
        "redis"
    }

    fn offsets_count_records(&self) -> bool {
        false
    }

    fn validate(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError> {
        RedisConfig::parse(config).map(|_| Vec::new())
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        Ok(Box::new(RedisMetadata {
            config: RedisConfig::parse(config)?,
            conn: None,
        }))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        let config = RedisConfig::parse(config)?;
        let key = config.key(partition)?.to_string();
        Ok(Box::new(RedisConsumer {
            config,
            key,
            conn: None,
        }))
    }
}

struct RedisMetadata {
    config: RedisConfig,
    conn: Option<Connection>,
}

impl RedisMetadata {
    async fn call(&mut self, args: &[&[u8]], timeout: Duration) -> Result<Reply, StreamError> {
        if self.conn.is_none() {
            self.conn = Some(self.config.connect().await?);
        }
        let Some(c) = self.conn.as_mut() else {
            return Err(StreamError::new(
                StreamErrorKind::Transient,
                "redis connection lost",
            ));
        };
        let r = c.call(args, timeout).await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    /// The ID after the last entry (`0-1` for an empty stream).
    async fn after_last(&mut self, key: &str, timeout: Duration) -> Result<EntryId, StreamError> {
        let r = self
            .call(
                &[b"XREVRANGE", key.as_bytes(), b"+", b"-", b"COUNT", b"1"],
                timeout,
            )
            .await?;
        Ok(entries("XREVRANGE", r)?
            .first()
            .map_or(EntryId { ms: 0, seq: 1 }, |(id, _)| id.next()))
    }
}

#[async_trait]
impl MetadataProvider for RedisMetadata {
    async fn partition_ids(&mut self, _timeout: Duration) -> Result<Vec<PartitionId>, StreamError> {
        Ok((0..self.config.keys.len() as u32)
            .map(PartitionId)
            .collect())
    }

    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        timeout: Duration,
    ) -> Result<StreamOffset, StreamError> {
        let key = self.config.key(partition)?.to_string();
        let end = self.after_last(&key, timeout).await?;
        let from = match criteria {
            OffsetCriteria::Largest => return Ok(end.offset()),
            OffsetCriteria::Smallest => "-".to_string(),
            OffsetCriteria::Period(ms) => {
                format!("{}-0", riffle_common::now_ms().saturating_sub(*ms).max(0))
            }
            OffsetCriteria::Timestamp(t) => format!("{}-0", (*t).max(0)),
        };
        let r = self
            .call(
                &[
                    b"XRANGE",
                    key.as_bytes(),
                    from.as_bytes(),
                    b"+",
                    b"COUNT",
                    b"1",
                ],
                timeout,
            )
            .await?;
        Ok(entries("XRANGE", r)?
            .first()
            .map_or(end, |(id, _)| *id)
            .offset())
    }

    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
        let mut out = BTreeMap::new();
        for p in partitions {
            let key = self.config.key(*p)?.to_string();
            out.insert(*p, self.after_last(&key, timeout).await?.offset());
        }
        Ok(out)
    }
}

struct RedisConsumer {
    config: RedisConfig,
    key: String,
    conn: Option<Connection>,
}

impl RedisConsumer {
    fn message(&self, id: EntryId, fields: Vec<(Vec<u8>, Vec<u8>)>) -> StreamMessage {
        let vf = self.config.value_field.as_bytes();
        let value = match fields.iter().find(|(k, _)| k == vf) {
            Some((_, v)) => Bytes::from(v.clone()),
            None => {
                let obj: serde_json::Map<String, serde_json::Value> = fields
                    .iter()
                    .map(|(k, v)| {
                        (
                            String::from_utf8_lossy(k).into_owned(),
                            serde_json::Value::String(String::from_utf8_lossy(v).into_owned()),
                        )
                    })
                    .collect();
                Bytes::from(serde_json::Value::Object(obj).to_string())
            }
        };
        StreamMessage {
            key: None,
            value,
            headers: fields
                .into_iter()
                .filter(|(k, _)| k != vf)
                .map(|(k, v)| (String::from_utf8_lossy(&k).into_owned(), Bytes::from(v)))
                .collect(),
            offset: id.offset(),
            next_offset: id.next().offset(),
            timestamp_ms: i64::try_from(id.ms).ok(),
        }
    }
}

#[async_trait]
impl PartitionConsumer for RedisConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        let start = EntryId::of(from)?;
        if self.conn.is_none() {
            self.conn = Some(self.config.connect().await?);
        }
        let Some(conn) = self.conn.as_mut() else {
            return Err(StreamError::new(
                StreamErrorKind::Transient,
                "redis connection lost",
            ));
        };
        let count = self.config.max_entries.to_string();
        let call_timeout = self.config.timeout;
        let key = self.key.clone();
        let res = async {
            let r = conn
                .call(
                    &[
                        b"XRANGE",
                        key.as_bytes(),
                        start.redis().as_bytes(),
                        b"+",
                        b"COUNT",
                        count.as_bytes(),
                    ],
                    call_timeout,
                )
                .await?;
            let got = entries("XRANGE", r)?;
            if !got.is_empty() {
                return Ok(got);
            }
            let block = timeout.as_millis().clamp(1, 3_600_000).to_string();
            let r = conn
                .call(
                    &[
                        b"XREAD",
                        b"COUNT",
                        count.as_bytes(),
                        b"BLOCK",
                        block.as_bytes(),
                        b"STREAMS",
                        key.as_bytes(),
                        start.prev().redis().as_bytes(),
                    ],
                    timeout + call_timeout,
                )
                .await?;
            xread_entries(r)
        }
        .await;
        let got = match res {
            Ok(g) => g,
            Err(e) => {
                self.conn = None;
                return Err(e);
            }
        };
        let mut b = MessageBatch::empty(from.clone());
        for (id, fields) in got {
            if id < start {
                continue;
            }
            let m = self.message(id, fields);
            b.size_bytes += m.value.len();
            b.next_offset = m.next_offset.clone();
            b.messages.push(m);
        }
        b.unfiltered_count = b.messages.len();
        Ok(b)
    }
}
