//! Pieces the hand-written stream clients share (Redis, NATS): their service URL in a
//! table's config, and the CRLF-terminated lines of their text protocols.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

use crate::{StreamError, StreamErrorKind};

/// The longest protocol line read.
pub const MAX_LINE: u64 = 64 * 1024;

/// A service URL `<scheme>://[userinfo@]host:port[/path]`.
#[derive(Clone, Debug, PartialEq)]
pub struct ServiceUrl<'a> {
    /// What stands before `@`, if anything.
    pub userinfo: Option<&'a str>,
    /// `host:port`.
    pub host_port: &'a str,
    /// What follows the first `/` after the host (empty when none).
    pub path: &'a str,
}

impl ServiceUrl<'_> {
    /// The credentials of the userinfo: `user:password`, or a lone token or password (no
    /// user). An empty user counts as none.
    pub fn credentials(&self) -> Option<(Option<String>, String)> {
        self.userinfo.map(|u| match u.split_once(':') {
            Some((user, pass)) => (
                (!user.is_empty()).then(|| user.to_string()),
                pass.to_string(),
            ),
            None => (None, u.to_string()),
        })
    }
}

/// Parses the value of config key `key` as a `<scheme>://` URL with a host and a port;
/// `tls_scheme` is refused as not supported. Errors name the key and show `example`.
pub fn parse_service_url<'a>(
    key: &str,
    value: &'a str,
    scheme: &str,
    tls_scheme: &str,
    example: &str,
) -> Result<ServiceUrl<'a>, StreamError> {
    if value.starts_with(&format!("{tls_scheme}://")) {
        return Err(StreamError::new(
            StreamErrorKind::Unsupported,
            format!("{key}: {tls_scheme}:// (TLS) is not supported; use {scheme}://"),
        ));
    }
    let rest = value.strip_prefix(&format!("{scheme}://")).ok_or_else(|| {
        StreamError::config(format!(
            "{key} '{value}' is not a {scheme}:// URL (expected e.g. {example})"
        ))
    })?;
    let (userinfo, host_part) = match rest.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, rest),
    };
    let (host_port, path) = host_part.split_once('/').unwrap_or((host_part, ""));
    let port_ok = host_port
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if !port_ok {
        return Err(StreamError::config(format!(
            "{key} '{value}' needs a host and a port, e.g. {example}"
        )));
    }
    Ok(ServiceUrl {
        userinfo,
        host_port,
        path,
    })
}

/// The topic names of a stream config that lists several, separated by commas (one per
/// partition: Redis stream keys, NATS JetStream streams), blanks dropped.
pub fn topic_list(config: &crate::StreamConfig) -> Vec<String> {
    config
        .topic
        .split(',')
        .map(|k| k.trim().to_string())
        .filter(|k| !k.is_empty())
        .collect()
}

/// The topic of partition `p` in a list from [`topic_list`]; `NotFound` when the list is
/// shorter. `stream_type` and `noun` name the stream and its topics in the error.
pub fn topic_at<'a>(
    topics: &'a [String],
    p: crate::PartitionId,
    stream_type: &str,
    noun: &str,
) -> Result<&'a str, StreamError> {
    topics.get(p.0 as usize).map(|s| s.as_str()).ok_or_else(|| {
        StreamError::new(
            StreamErrorKind::NotFound,
            format!(
                "{stream_type} stream config has no partition {} (it lists {} {noun})",
                p.0,
                topics.len()
            ),
        )
    })
}

/// A count read from the key `key` of a stream config: `default` when the key is absent,
/// else a whole number within `range`, or an error naming the key, the value and the range.
pub fn bounded_count(
    key: &str,
    value: Option<&str>,
    default: u32,
    range: std::ops::RangeInclusive<u32>,
) -> Result<u32, StreamError> {
    let Some(v) = value else {
        return Ok(default);
    };
    v.parse::<u32>()
        .ok()
        .filter(|n| range.contains(n))
        .ok_or_else(|| {
            StreamError::config(format!(
                "{key} '{v}' is not a number from {} to {}",
                range.start(),
                range.end()
            ))
        })
}

/// Reads one CRLF-terminated line (at most [`MAX_LINE`] bytes) and returns it without the
/// CRLF; `peer` names the server in errors. A closed connection, a line without CRLF and
/// text that is not UTF-8 are transient errors (the caller reconnects).
pub async fn read_line<R: AsyncBufRead + Unpin>(
    r: &mut R,
    peer: &str,
) -> Result<String, StreamError> {
    let mut buf = Vec::new();
    let n = r
        .take(MAX_LINE)
        .read_until(b'\n', &mut buf)
        .await
        .map_err(|e| StreamError::new(StreamErrorKind::Transient, format!("{peer} read: {e}")))?;
    let fail = |why: &str| {
        StreamError::new(
            StreamErrorKind::Transient,
            format!("{peer} protocol error: {why}"),
        )
    };
    if n == 0 {
        return Err(StreamError::new(
            StreamErrorKind::Transient,
            format!("{peer} closed the connection"),
        ));
    }
    if !buf.ends_with(b"\r\n") {
        return Err(fail("a line without CRLF (or longer than 64 KiB)"));
    }
    buf.truncate(buf.len() - 2);
    String::from_utf8(buf).map_err(|_| fail("a line that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_counts_and_topics() {
        let n = |v: Option<&str>| bounded_count("stream.x.max.entries", v, 7, 1..=100);
        assert_eq!(n(None).unwrap(), 7);
        assert_eq!(n(Some("100")).unwrap(), 100);
        for bad in ["0", "101", "-1", "ten", "1.5"] {
            let e = n(Some(bad)).unwrap_err();
            assert_eq!(e.kind, StreamErrorKind::InvalidConfig);
            assert_eq!(
                e.message,
                format!("stream.x.max.entries '{bad}' is not a number from 1 to 100")
            );
        }
        let topics = vec!["a".to_string(), "b".to_string()];
        assert_eq!(
            topic_at(&topics, crate::PartitionId(1), "redis", "keys").unwrap(),
            "b"
        );
        let e = topic_at(&topics, crate::PartitionId(2), "redis", "keys").unwrap_err();
        assert_eq!(e.kind, StreamErrorKind::NotFound);
        assert_eq!(
            e.message,
            "redis stream config has no partition 2 (it lists 2 keys)"
        );
    }

    #[test]
    fn test_service_urls() {
        let u = parse_service_url(
            "k",
            "redis://u:p@h:1/2",
            "redis",
            "rediss",
            "redis://h:6379",
        )
        .unwrap();
        assert_eq!((u.host_port, u.path), ("h:1", "2"));
        assert_eq!(u.credentials(), Some((Some("u".into()), "p".into())));
        let u = parse_service_url("k", "nats://tok@h:1", "nats", "tls", "nats://h:4222").unwrap();
        assert_eq!(u.credentials(), Some((None, "tok".into())));
        let u = parse_service_url("k", "nats://:pw@h:1", "nats", "tls", "x").unwrap();
        assert_eq!(u.credentials(), Some((None, "pw".into())));
        for (bad, want, kind) in [
            ("rediss://h:1", "TLS", StreamErrorKind::Unsupported),
            (
                "http://h:1",
                "not a redis:// URL",
                StreamErrorKind::InvalidConfig,
            ),
            (
                "redis://h",
                "host and a port",
                StreamErrorKind::InvalidConfig,
            ),
            (
                "redis://:1",
                "host and a port",
                StreamErrorKind::InvalidConfig,
            ),
            (
                "redis://h:0",
                "host and a port",
                StreamErrorKind::InvalidConfig,
            ),
        ] {
            let e = parse_service_url("stream.redis.url", bad, "redis", "rediss", "redis://h:6379")
                .unwrap_err();
            assert_eq!(e.kind, kind, "{bad}");
            assert!(
                e.message.contains(want) && e.message.contains("stream.redis.url"),
                "{bad}: {e}"
            );
        }
    }

    #[tokio::test]
    async fn test_lines() {
        let mut r: &[u8] = b"+OK\r\nno crlf\n";
        assert_eq!(read_line(&mut r, "x").await.unwrap(), "+OK");
        assert!(read_line(&mut r, "x")
            .await
            .unwrap_err()
            .message
            .contains("without CRLF"));
        assert!(read_line(&mut r, "x")
            .await
            .unwrap_err()
            .message
            .contains("closed"));
        let long = vec![b'a'; 70_000];
        let mut r: &[u8] = &long;
        assert!(read_line(&mut r, "x").await.is_err());
    }
}
