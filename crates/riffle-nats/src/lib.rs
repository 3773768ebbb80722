//! riffle-nats: NATS JetStream as a Riffle stream (`streamType: nats`), a stream Pinot never
//! had, through the same plugin interface: a small client of NATS's text protocol and
//! JetStream's JSON API ([`client`]).
//!
//! # Config
//!
//! | Key | Meaning |
//! |---|---|
//! | `stream.nats.topic.name` | required: the JetStream stream, or several separated by commas, partition `i` being the `i`-th |
//! | `stream.nats.url` | required: `nats://[user:password@]host:port`, or `nats://token@host:port` |
//! | `stream.nats.max.messages` | messages per fetch, 1 to 10,000 (default 1,000) |
//!
//! `tls://` is refused naming the key.
//!
//! # Offsets
//!
//! A message's offset is its stream sequence number (an integer), its next offset the
//! number after it. A fetch asks JetStream for the first message at or after the offset
//! (`$JS.API.STREAM.MSG.GET` with `next_by_subj`), so deleted messages are passed over,
//! and polls every 50 ms when there is none. `smallest` is the stream's first sequence,
//! `largest` the one after its last, a period or an instant the first message stored at or
//! after it (a binary search over sequences by their stored time). A message's timestamp is
//! its stored time, its key its subject.
//!
//! # Not done
//!
//! TLS, NKEY/JWT credentials, push or pull consumers (each message is one request: a
//! few thousand messages per second per partition), data-loss detection after a purge.

pub mod client;
#[cfg(feature = "testsuite")]
pub mod testing;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use riffle_common::PartitionId;
use riffle_stream::{
    MessageBatch, MetadataProvider, OffsetCriteria, PartitionConsumer, StreamConfig, StreamContext,
    StreamError, StreamErrorKind, StreamMessage, StreamOffset, StreamPlugin,
};

use riffle_stream::wire::{bounded_count, parse_service_url, topic_at, topic_list};

use crate::client::{Connection, StoredMessage};

/// The parsed config.
#[derive(Clone)]
pub struct NatsConfig {
    /// `host:port`.
    pub address: String,
    /// User and password, or a token (user `None`).
    pub auth: Option<(Option<String>, String)>,
    /// The streams, one per partition.
    pub streams: Vec<String>,
    /// Messages per fetch.
    pub max_messages: u32,
    /// Connect and request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NatsConfig")
            .field("address", &self.address)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("streams", &self.streams)
            .finish_non_exhaustive()
    }
}

impl NatsConfig {
    /// Parses a stream config; errors name the key.
    pub fn parse(config: &StreamConfig) -> Result<NatsConfig, StreamError> {
        let url = config.plugin_value("url").ok_or_else(|| {
            StreamError::config("stream.nats.url is required: expected nats://host:4222")
        })?;
        let u = parse_service_url(
            "stream.nats.url",
            url.trim_end_matches('/'),
            "nats",
            "tls",
            "nats://localhost:4222",
        )?;
        let hostport = u.host_port;
        let auth = u.credentials();
        let streams = topic_list(config);
        if let Some(bad) = streams.iter().find(|s| {
            !s.bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
        }) {
            return Err(StreamError::config(format!(
                "stream.nats.topic.name: '{bad}' is not a JetStream stream name (letters, digits, '-' and '_')"
            )));
        }
        if streams.is_empty() {
            return Err(StreamError::config("stream.nats.topic.name has no stream"));
        }
        let max_messages = bounded_count(
            "stream.nats.max.messages",
            config.plugin_value("max.messages"),
            1_000,
            1..=10_000,
        )?;
        Ok(NatsConfig {
            address: hostport.to_string(),
            auth,
            streams,
            max_messages,
            timeout: Duration::from_millis(config.connection_timeout_ms.clamp(100, 600_000)),
        })
    }

    async fn connect(&self) -> Result<Connection, StreamError> {
        let auth = self.auth.as_ref().map(|(u, p)| (u.as_deref(), p.as_str()));
        Connection::open(&self.address, auth, self.timeout).await
    }

    fn stream(&self, p: PartitionId) -> Result<&str, StreamError> {
        topic_at(&self.streams, p, "nats", "streams")
    }
}

/// The NATS JetStream plugin.
#[derive(Clone, Copy, Debug, Default)]
pub struct NatsPlugin;

#[async_trait]
impl StreamPlugin for NatsPlugin {
    fn stream_type(&self) -> &'static str {
        "nats"
    }

    fn validate(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError> {
        NatsConfig::parse(config).map(|_| Vec::new())
    }

    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError> {
        Ok(Box::new(NatsMetadata {
            config: NatsConfig::parse(config)?,
            conn: None,
        }))
    }

    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        _ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError> {
        let config = NatsConfig::parse(config)?;
        let stream = config.stream(partition)?.to_string();
        Ok(Box::new(NatsConsumer {
            config,
            stream,
            conn: None,
        }))
    }
}

/// A connection made on first use and dropped after a failure.
async fn conn_of<'a>(
    slot: &'a mut Option<Connection>,
    config: &NatsConfig,
) -> Result<&'a mut Connection, StreamError> {
    if slot.is_none() {
        *slot = Some(config.connect().await?);
    }
    slot.as_mut()
        .ok_or_else(|| StreamError::new(StreamErrorKind::Transient, "nats connection lost"))
}

struct NatsMetadata {
    config: NatsConfig,
    conn: Option<Connection>,
}

impl NatsMetadata {
    /// The first sequence and the one after the last.
    async fn bounds(&mut self, stream: &str, timeout: Duration) -> Result<(u64, u64), StreamError> {
        let conn = conn_of(&mut self.conn, &self.config).await?;
        let r = conn.stream_state(stream, timeout).await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }

    async fn at_or_after(
        &mut self,
        stream: &str,
        seq: u64,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, StreamError> {
        let conn = conn_of(&mut self.conn, &self.config).await?;
        let r = conn.message_at_or_after(stream, seq, timeout).await;
        if r.is_err() {
            self.conn = None;
        }
        r
    }
}

#[async_trait]
impl MetadataProvider for NatsMetadata {
    async fn partition_ids(&mut self, _timeout: Duration) -> Result<Vec<PartitionId>, StreamError> {
        Ok((0..self.config.streams.len() as u32)
            .map(PartitionId)
            .collect())
    }

    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        timeout: Duration,
    ) -> Result<StreamOffset, StreamError> {
        let stream = self.config.stream(partition)?.to_string();
        let (first, end) = self.bounds(&stream, timeout).await?;
        let t = match criteria {
            OffsetCriteria::Largest => return Ok(StreamOffset::Long(end as i64)),
            OffsetCriteria::Smallest => return Ok(StreamOffset::Long(first.min(end) as i64)),
            OffsetCriteria::Period(ms) => riffle_common::now_ms().saturating_sub(*ms),
            OffsetCriteria::Timestamp(t) => *t,
        };
        // The first message stored at or after t: stored times grow with sequences.
        let (mut lo, mut hi) = (first, end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.at_or_after(&stream, mid, timeout).await? {
                Some(m) if m.seq < hi && m.time_ms < t => lo = m.seq + 1,
                Some(m) if m.seq < hi => hi = m.seq.max(mid),
                _ => hi = mid,
            }
        }
        match self.at_or_after(&stream, lo, timeout).await? {
            Some(m) if m.seq < end => Ok(StreamOffset::Long(m.seq as i64)),
            _ => Ok(StreamOffset::Long(end as i64)),
        }
    }

    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError> {
        let mut out = BTreeMap::new();
        for p in partitions {
            let stream = self.config.stream(*p)?.to_string();
            out.insert(
                *p,
                StreamOffset::Long(self.bounds(&stream, timeout).await?.1 as i64),
            );
        }
        Ok(out)
    }
}

struct NatsConsumer {
    config: NatsConfig,
    stream: String,
    conn: Option<Connection>,
}

#[async_trait]
impl PartitionConsumer for NatsConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        let start = match from {
            StreamOffset::Long(n) if *n >= 1 => *n as u64,
            StreamOffset::Long(0) => 1,
            other => {
                return Err(StreamError::new(
                    StreamErrorKind::InvalidConfig,
                    format!("offset '{other}' is not a jetstream sequence number"),
                ))
            }
        };
        let deadline = Instant::now() + timeout;
        let mut b = MessageBatch::empty(from.clone());
        let mut next = start;
        loop {
            let conn = conn_of(&mut self.conn, &self.config).await?;
            let got = match conn
                .message_at_or_after(&self.stream, next, self.config.timeout)
                .await
            {
                Ok(g) => g,
                Err(e) => {
                    self.conn = None;
                    return Err(e);
                }
            };
            match got {
                Some(m) => {
                    next = m.seq + 1;
                    b.size_bytes += m.data.len();
                    b.messages.push(StreamMessage {
                        key: Some(Bytes::from(m.subject.into_bytes())),
                        value: Bytes::from(m.data),
                        headers: Vec::new(),
                        offset: StreamOffset::Long(m.seq as i64),
                        next_offset: StreamOffset::Long(next as i64),
                        timestamp_ms: Some(m.time_ms),
                    });
                    if b.messages.len() >= self.config.max_messages as usize {
                        break;
                    }
                }
                None if !b.messages.is_empty() || Instant::now() >= deadline => break,
                None => {
                    tokio::time::sleep(
                        Duration::from_millis(50)
                            .min(deadline.saturating_duration_since(Instant::now())),
                    )
                    .await
                }
            }
        }
        if let Some(last) = b.messages.last() {
            b.next_offset = last.next_offset.clone();
        }
        b.unfiltered_count = b.messages.len();
        Ok(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_config() {
        let cfg = |url: &str, topic: &str| {
            let m: BTreeMap<String, String> = [
                ("streamType", "nats"),
                ("stream.nats.topic.name", topic),
                ("stream.nats.url", url),
                (
                    "stream.nats.decoder.class.name",
                    "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
                ),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            NatsConfig::parse(&StreamConfig::parse("$", &m).unwrap())
        };
        let c = cfg("nats://u:s3cr3t@h:4222", "a, b").unwrap();
        assert_eq!((c.address.as_str(), c.streams.len()), ("h:4222", 2));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let c = cfg("nats://tok@h:1", "a").unwrap();
        assert_eq!(c.auth, Some((None, "tok".into())));
        for (url, topic, want) in [
            ("tls://h:1", "a", "tls://"),
            ("http://h:1", "a", "not a nats://"),
            ("nats://h", "a", "host and a port"),
            ("nats://h:1", "a.b", "not a JetStream stream name"),
        ] {
            let e = cfg(url, topic).unwrap_err();
            assert!(e.message.contains(want), "{url} {topic}: {e}");
        }
    }
}
