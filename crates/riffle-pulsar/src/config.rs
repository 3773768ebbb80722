//! The Pulsar stream config: Pinot's `stream.pulsar.*` keys parsed into a typed
//! [`PulsarConfig`].
//!
//! | Key (after `stream.pulsar.`) | Meaning |
//! |---|---|
//! | `topic.name` | required: `persistent://tenant/namespace/topic`, or a short name in `public/default` |
//! | `bootstrap.servers` | required: the service URL, `pulsar://host:6650` (one broker or a proxy) |
//! | `authenticationToken` | a JWT sent with the `token` auth method |
//! | `metadata.populate` | fills `__key`, `__header$<property>` and `__metadata$offset` / `partition` / `recordTimestamp` (the publish time) |
//!
//! Refused with an error naming the key: `pulsar+ssl://` URLs and `tlsTrustCertsFilePath`
//! (TLS is not implemented), OAuth2 (`issuerUrl`, `credsFilePath`, `audience`), a URL that is
//! not `pulsar://host:port`. `serviceHttpUrl`, `metadata.fields` and `enableKeyValueStitch`
//! are accepted with a warning (not used).

use riffle_stream::{StreamConfig, StreamError, StreamErrorKind};

/// A parsed Pulsar stream config.
#[derive(Clone)]
pub struct PulsarConfig {
    /// `host:port` of the broker.
    pub address: String,
    /// The full topic name (`persistent://tenant/ns/topic`).
    pub topic: String,
    /// A token for the `token` auth method.
    pub token: Option<String>,
    /// Keys accepted but not used.
    pub warnings: Vec<String>,
}

impl std::fmt::Debug for PulsarConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PulsarConfig")
            .field("address", &self.address)
            .field("topic", &self.topic)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// The full name of a topic: short names live in `persistent://public/default/`.
pub fn full_topic(name: &str) -> Result<String, String> {
    let n = name.trim();
    if n.contains("://") {
        let (scheme, rest) = n.split_once("://").unwrap_or(("", n));
        if !matches!(scheme, "persistent" | "non-persistent") || rest.split('/').count() != 3 {
            return Err(format!(
                "'{n}' is not a topic name: expected persistent://tenant/namespace/topic or a short name"
            ));
        }
        return Ok(n.to_string());
    }
    match n.split('/').count() {
        1 if !n.is_empty() => Ok(format!("persistent://public/default/{n}")),
        3 => Ok(format!("persistent://{n}")),
        _ => Err(format!(
            "'{n}' is not a topic name: expected persistent://tenant/namespace/topic or a short name"
        )),
    }
}

impl PulsarConfig {
    /// Parses a stream config; errors name the key.
    pub fn parse(config: &StreamConfig) -> Result<PulsarConfig, StreamError> {
        let get = |k: &str| config.plugin_value(k);
        let unsupported = |key: &str, why: &str| {
            StreamError::new(
                StreamErrorKind::Unsupported,
                format!("stream.pulsar.{key}: {why}"),
            )
        };
        let url = get("bootstrap.servers").ok_or_else(|| {
            StreamError::config(
                "stream.pulsar.bootstrap.servers is required: expected the service URL, e.g. pulsar://localhost:6650",
            )
        })?;
        if url.starts_with("pulsar+ssl://") {
            return Err(unsupported(
                "bootstrap.servers",
                "pulsar+ssl:// (TLS) is not supported; use pulsar://",
            ));
        }
        let hostport = url.strip_prefix("pulsar://").ok_or_else(|| {
            StreamError::config(format!(
                "stream.pulsar.bootstrap.servers '{url}' is not a pulsar:// URL (expected pulsar://host:6650)"
            ))
        })?;
        let hostport = hostport.trim_end_matches('/');
        // Several brokers (a, b): the first is used; Pinot's client would try them in turn.
        let first = hostport.split(',').next().unwrap_or_default().trim();
        let port_ok = first
            .rsplit_once(':')
            .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
        if !port_ok {
            return Err(StreamError::config(format!(
                "stream.pulsar.bootstrap.servers '{url}' needs a host and a port, e.g. pulsar://localhost:6650"
            )));
        }
        for key in [
            "tlsTrustCertsFilePath",
            "issuerUrl",
            "credsFilePath",
            "audience",
        ] {
            if get(key).is_some() {
                return Err(unsupported(
                    key,
                    "TLS and OAuth2 are not supported by Riffle's Pulsar plugin; use authenticationToken",
                ));
            }
        }
        let topic = full_topic(&config.topic)
            .map_err(|e| StreamError::config(format!("stream.pulsar.topic.name: {e}")))?;
        let mut warnings = Vec::new();
        for key in ["serviceHttpUrl", "metadata.fields", "enableKeyValueStitch"] {
            if get(key).is_some() {
                warnings.push(format!("stream.pulsar.{key} is accepted but not used"));
            }
        }
        Ok(PulsarConfig {
            address: first.to_string(),
            topic,
            token: get("authenticationToken").map(str::to_string),
            warnings,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn stream(extra: &[(&str, &str)]) -> StreamConfig {
        let mut m: BTreeMap<String, String> = [
            ("streamType", "pulsar"),
            ("stream.pulsar.topic.name", "events"),
            ("stream.pulsar.bootstrap.servers", "pulsar://localhost:6650"),
            (
                "stream.pulsar.decoder.class.name",
                "org.apache.pinot.plugin.inputformat.json.JSONMessageDecoder",
            ),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        for (k, v) in extra {
            m.insert(k.to_string(), v.to_string());
        }
        StreamConfig::parse("$", &m).unwrap()
    }

    #[test]
    fn test_keys() {
        let c =
            PulsarConfig::parse(&stream(&[("stream.pulsar.authenticationToken", "jwt")])).unwrap();
        assert_eq!(c.address, "localhost:6650");
        assert_eq!(c.topic, "persistent://public/default/events");
        assert_eq!(c.token.as_deref(), Some("jwt"));
        assert!(!format!("{c:?}").contains("jwt"));
        let cases: &[(&str, &str, &str)] = &[
            (
                "stream.pulsar.bootstrap.servers",
                "pulsar+ssl://h:6651",
                "TLS",
            ),
            (
                "stream.pulsar.bootstrap.servers",
                "http://h:6650",
                "not a pulsar:// URL",
            ),
            (
                "stream.pulsar.bootstrap.servers",
                "pulsar://h",
                "needs a host and a port",
            ),
            (
                "stream.pulsar.issuerUrl",
                "https://idp",
                "stream.pulsar.issuerUrl",
            ),
            ("stream.pulsar.topic.name", "a/b", "not a topic name"),
        ];
        for (k, v, want) in cases {
            let e = PulsarConfig::parse(&stream(&[(k, v)])).unwrap_err();
            assert!(e.message.contains(want), "{k}={v}: {e}");
        }
        assert_eq!(full_topic("t/ns/x").unwrap(), "persistent://t/ns/x");
        assert!(full_topic("kafka://a/b/c").is_err());
        let c = PulsarConfig::parse(&stream(&[(
            "stream.pulsar.serviceHttpUrl",
            "http://h:8080",
        )]))
        .unwrap();
        assert_eq!(c.warnings.len(), 1);
    }
}
