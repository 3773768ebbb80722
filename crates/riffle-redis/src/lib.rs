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

use crate::resp::{Connection, Reply};

/// An entry ID.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct EntryId {
    /// Milliseconds.
    pub ms: u64,
    /// Sequence within the millisecond.
    pub seq: u64,
}

impl EntryId {
    /// Parses `<ms>-<seq>` (the sequence padded or not).
    pub fn parse(s: &str) -> Option<EntryId> {
        let (ms, seq) = s.split_once('-')?;
        Some(EntryId {
            ms: ms.parse().ok()?,
            seq: seq.parse().ok()?,
        })
    }

    /// The ID as Redis writes it.
    pub fn redis(&self) -> String {
        format!("{}-{}", self.ms, self.seq)
    }

    /// The ID as an offset (the sequence padded so that offsets order as IDs).
    pub fn offset(&self) -> StreamOffset {
        StreamOffset::parse(&format!("{}-{:020}", self.ms, self.seq))
    }

    /// The next ID.
    pub fn next(&self) -> EntryId {
        match self.seq.checked_add(1) {
            Some(seq) => EntryId { ms: self.ms, seq },
            None => EntryId {
                ms: self.ms.saturating_add(1),
                seq: 0,
            },
        }
    }

    /// The ID before (`0-0` stays).
    pub fn prev(&self) -> EntryId {
        match (self.ms, self.seq) {
            (ms, 0) if ms > 0 => EntryId {
                ms: ms - 1,
                seq: u64::MAX,
            },
            (ms, 0) => EntryId { ms, seq: 0 },
            (ms, seq) => EntryId { ms, seq: seq - 1 },
        }
    }

    /// The ID an offset names.
    pub fn of(o: &StreamOffset) -> Result<EntryId, StreamError> {
        EntryId::parse(&o.to_string()).ok_or_else(|| {
            StreamError::new(
                StreamErrorKind::InvalidConfig,
                format!("offset '{o}' is not a redis stream entry id (<ms>-<seq>)"),
            )
        })
    }
}

/// The parsed config.
#[derive(Clone)]
pub struct RedisConfig {
    /// `host:port`.
    pub address: String,
    /// `AUTH` user and password.
    pub auth: Option<(Option<String>, String)>,
    /// The database.
    pub db: u32,
    /// The stream keys, one per partition.
    pub keys: Vec<String>,
    /// The field holding the message.
    pub value_field: String,
    /// Entries per fetch.
    pub max_entries: u32,
    /// Connect and call timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("address", &self.address)
            .field("auth", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("keys", &self.keys)
            .finish_non_exhaustive()
    }
}

impl RedisConfig {
    /// Parses a stream config; errors name the key.
    pub fn parse(config: &StreamConfig) -> Result<RedisConfig, StreamError> {
        let get = |k: &str| {
            config
                .plugin_key(k)
                .map(str::trim)
                .filter(|v| !v.is_empty())
        };
        let url = get("url").ok_or_else(|| {
            StreamError::config("stream.redis.url is required: expected redis://host:6379")
        })?;
        if url.starts_with("rediss://") {
            return Err(StreamError::new(
                StreamErrorKind::Unsupported,
                "stream.redis.url: rediss:// (TLS) is not supported; use redis://",
            ));
        }
        let rest = url.strip_prefix("redis://").ok_or_else(|| {
            StreamError::config(format!("stream.redis.url '{url}' is not a redis:// URL"))
        })?;
        let (userinfo, hostpart) = match rest.rsplit_once('@') {
            Some((u, h)) => (Some(u), h),
            None => (None, rest),
        };
        let (hostport, db) = match hostpart.split_once('/') {
            Some((h, "")) => (h, 0),
            Some((h, d)) => (
                h,
                d.parse::<u32>().map_err(|_| {
                    StreamError::config(format!("stream.redis.url: database '{d}' is not a number"))
                })?,
            ),
            None => (hostpart, 0),
        };
        let port_ok = hostport
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(StreamError::config(format!(
                "stream.redis.url '{url}' needs a host and a port, e.g. redis://localhost:6379"
            )));
        }
        let auth = userinfo.map(|u| match u.split_once(':') {
            Some((user, pass)) => (
                (!user.is_empty()).then(|| user.to_string()),
                pass.to_string(),
            ),
            None => (None, u.to_string()),
        });
        let keys: Vec<String> = config
            .topic
            .split(',')
            .map(|k| k.trim().to_string())
            .filter(|k| !k.is_empty())
            .collect();
        if keys.is_empty() {
            return Err(StreamError::config(
                "stream.redis.topic.name has no stream key",
            ));
        }
        let max_entries = match get("max.entries") {
            None => 10_000,
            Some(v) => v
                .parse::<u32>()
                .ok()
                .filter(|n| (1..=100_000).contains(n))
                .ok_or_else(|| {
                    StreamError::config(format!(
                        "stream.redis.max.entries '{v}' is not a number from 1 to 100000"
                    ))
                })?,
        };
        Ok(RedisConfig {
            address: hostport.to_string(),
            auth,
            db,
            keys,
            value_field: get("value.field").unwrap_or("value").to_string(),
            max_entries,
            timeout: Duration::from_millis(config.connection_timeout_ms.clamp(100, 600_000)),
        })
    }

    async fn connect(&self) -> Result<Connection, StreamError> {
        let auth = self.auth.as_ref().map(|(u, p)| (u.as_deref(), p.as_str()));
        Connection::open(&self.address, auth, self.db, self.timeout).await
    }

    fn key(&self, p: PartitionId) -> Result<&str, StreamError> {
        self.keys
            .get(p.0 as usize)
            .map(|s| s.as_str())
            .ok_or_else(|| {
                StreamError::new(
                    StreamErrorKind::NotFound,
                    format!(
                        "redis stream config has no partition {} (it lists {} keys)",
                        p.0,
                        self.keys.len()
                    ),
                )
            })
    }
}

fn reply_error(what: &str, e: String) -> StreamError {
    let kind = if e.starts_with("NOAUTH") || e.starts_with("WRONGPASS") || e.starts_with("NOPERM") {
        StreamErrorKind::Unauthorized
    } else if e.starts_with("WRONGTYPE") {
        StreamErrorKind::InvalidConfig
    } else {
        StreamErrorKind::Fatal
    };
    StreamError::new(kind, format!("redis {what} failed: {e}"))
}

/// One stream entry: its ID and field-value pairs.
type Entry = (EntryId, Vec<(Vec<u8>, Vec<u8>)>);

/// The entries of an `XRANGE` reply (an array of `[id, [field, value, ...]]`).
fn entries(what: &str, r: Reply) -> Result<Vec<Entry>, StreamError> {
    let bad = || {
        StreamError::new(
            StreamErrorKind::Fatal,
            format!("redis {what}: an unexpected reply"),
        )
    };
    let items = match r {
        Reply::Array(a) => a,
        Reply::Nil => return Ok(Vec::new()),
        Reply::Error(e) => return Err(reply_error(what, e)),
        _ => return Err(bad()),
    };
    let mut out = Vec::with_capacity(items.len());
    for it in items {
        let Reply::Array(mut pair) = it else {
            return Err(bad());
        };
        if pair.len() != 2 {
            return Err(bad());
        }
        let fields = pair.pop().ok_or_else(bad)?;
        let id = pair
            .pop()
            .and_then(|i| i.text())
            .and_then(|t| EntryId::parse(&t))
            .ok_or_else(bad)?;
        let mut kv = Vec::new();
        if let Reply::Array(f) = fields {
            let mut it = f.into_iter();
            while let (Some(k), Some(v)) = (it.next(), it.next()) {
                kv.push((
                    k.bytes().unwrap_or_default().to_vec(),
                    v.bytes().unwrap_or_default().to_vec(),
                ));
            }
        }
        out.push((id, kv));
    }
    Ok(out)
}

/// The entries of an `XREAD` reply for one key.
fn xread_entries(r: Reply) -> Result<Vec<Entry>, StreamError> {
    match r {
        Reply::Nil => Ok(Vec::new()),
        Reply::Error(e) => Err(reply_error("XREAD", e)),
        Reply::Array(mut streams) => match streams.pop() {
            Some(Reply::Array(mut kv)) if kv.len() == 2 => {
                entries("XREAD", kv.pop().unwrap_or(Reply::Nil))
            }
            _ => Ok(Vec::new()),
        },
        _ => Err(StreamError::new(
            StreamErrorKind::Fatal,
            "redis XREAD: an unexpected reply",
        )),
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_entry_ids_order_and_step() {
        let a = EntryId { ms: 5, seq: 9 };
        let b = EntryId { ms: 5, seq: 10 };
        let c = EntryId { ms: 6, seq: 0 };
        assert!(a.offset() < b.offset() && b.offset() < c.offset());
        assert_eq!(EntryId::of(&b.offset()).unwrap(), b);
        assert_eq!(a.next(), b);
        assert_eq!(
            c.prev(),
            EntryId {
                ms: 5,
                seq: u64::MAX
            }
        );
        assert_eq!(EntryId { ms: 0, seq: 0 }.prev(), EntryId { ms: 0, seq: 0 });
        assert_eq!(
            EntryId {
                ms: 1,
                seq: u64::MAX
            }
            .next(),
            EntryId { ms: 2, seq: 0 }
        );
        assert!(EntryId::of(&StreamOffset::parse("x")).is_err());
        assert_eq!(StreamOffset::parse(&a.offset().to_string()), a.offset());
    }

    #[test]
    fn test_config() {
        let cfg = |url: &str| {
            let m: BTreeMap<String, String> = [
                ("streamType", "redis"),
                ("stream.redis.topic.name", "a, b"),
                ("stream.redis.url", url),
                (
                    "stream.redis.decoder.class.name",
                    "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
                ),
            ]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
            RedisConfig::parse(&StreamConfig::parse("$", &m).unwrap())
        };
        let c = cfg("redis://u:s3cr3t@h:6380/2").unwrap();
        assert_eq!((c.address.as_str(), c.db, c.keys.len()), ("h:6380", 2, 2));
        assert_eq!(c.auth, Some((Some("u".into()), "s3cr3t".into())));
        assert!(!format!("{c:?}").contains("s3cr3t"));
        let c = cfg("redis://:only@h:1").unwrap();
        assert_eq!(c.auth, Some((None, "only".into())));
        for (bad, want) in [
            ("rediss://h:1", "TLS"),
            ("http://h:1", "not a redis://"),
            ("redis://h", "host and a port"),
            ("redis://h:1/x", "database 'x'"),
        ] {
            let e = cfg(bad).unwrap_err();
            assert!(e.message.contains(want), "{bad}: {e}");
        }
    }
}
