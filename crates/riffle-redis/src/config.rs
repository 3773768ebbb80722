//! The Redis stream config (see the crate documentation for the keys).

use std::time::Duration;

use riffle_common::PartitionId;
use riffle_stream::wire::{bounded_count, parse_service_url, topic_at, topic_list};
use riffle_stream::{StreamConfig, StreamError};

use crate::resp::Connection;

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
        let url = config.plugin_value("url").ok_or_else(|| {
            StreamError::config("stream.redis.url is required: expected redis://host:6379")
        })?;
        let u = parse_service_url(
            "stream.redis.url",
            url,
            "redis",
            "rediss",
            "redis://localhost:6379",
        )?;
        let db = match u.path {
            "" => 0,
            d => d.parse::<u32>().map_err(|_| {
                StreamError::config(format!("stream.redis.url: database '{d}' is not a number"))
            })?,
        };
        let hostport = u.host_port;
        let auth = u.credentials();
        let keys = topic_list(config);
        if keys.is_empty() {
            return Err(StreamError::config(
                "stream.redis.topic.name has no stream key",
            ));
        }
        let max_entries = bounded_count(
            "stream.redis.max.entries",
            config.plugin_value("max.entries"),
            10_000,
            1..=100_000,
        )?;
        Ok(RedisConfig {
            address: hostport.to_string(),
            auth,
            db,
            keys,
            value_field: config
                .plugin_value("value.field")
                .unwrap_or("value")
                .to_string(),
            max_entries,
            timeout: Duration::from_millis(config.connection_timeout_ms.clamp(100, 600_000)),
        })
    }

    pub(crate) async fn connect(&self) -> Result<Connection, StreamError> {
        let auth = self.auth.as_ref().map(|(u, p)| (u.as_deref(), p.as_str()));
        Connection::open(&self.address, auth, self.db, self.timeout).await
    }

    pub(crate) fn key(&self, p: PartitionId) -> Result<&str, StreamError> {
        topic_at(&self.keys, p, "redis", "keys")
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

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
