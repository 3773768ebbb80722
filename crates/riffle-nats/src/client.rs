//! A minimal NATS client: the text protocol (`CONNECT`, `SUB`, `PUB`, `MSG` / `HMSG`,
//! `PING` / `PONG`) and JetStream's JSON API as request and reply over one connection, one
//! request at a time.

use std::time::Duration;

use base64::Engine;
use riffle_stream::{StreamError, StreamErrorKind};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// The largest message accepted (NATS's default maximum payload is 1 MiB).
const MAX_PAYLOAD: usize = 64 * 1024 * 1024;
/// Connections made by this process, for unique inboxes.
static CONNECTIONS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

/// A message JetStream stored.
#[derive(Clone, Debug, PartialEq)]
pub struct StoredMessage {
    /// Its stream sequence number.
    pub seq: u64,
    /// The subject it was published to.
    pub subject: String,
    /// Its payload.
    pub data: Vec<u8>,
    /// When it was stored (epoch ms).
    pub time_ms: i64,
}

/// A connection.
pub struct Connection {
    stream: BufReader<TcpStream>,
    address: String,
    /// The subject this connection's replies come to (its own: replies to an inbox shared
    /// by several connections would reach them all).
    inbox: String,
}

fn io_error(what: &str, e: std::io::Error) -> StreamError {
    StreamError::new(StreamErrorKind::Transient, format!("nats {what}: {e}"))
}

fn protocol(msg: String) -> StreamError {
    StreamError::new(
        StreamErrorKind::Transient,
        format!("nats protocol error: {msg}"),
    )
}

/// Epoch milliseconds of an RFC 3339 time (`2026-12-05T11:28:16.813220184Z`).
pub fn rfc3339_ms(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.timestamp_millis())
}

/// A JetStream API error as a stream error.
fn api_error(what: &str, e: &Value) -> StreamError {
    let code = e["code"].as_i64().unwrap_or(0);
    let kind = match code {
        404 => StreamErrorKind::NotFound,
        401 | 403 => StreamErrorKind::Unauthorized,
        400 => StreamErrorKind::InvalidConfig,
        503 => StreamErrorKind::Transient,
        _ => StreamErrorKind::Fatal,
    };
    StreamError::new(
        kind,
        format!(
            "nats {what} failed: {} (code {code}, err_code {})",
            e["description"].as_str().unwrap_or(""),
            e["err_code"]
        ),
    )
}

impl Connection {
    /// Connects, sends `CONNECT` (with a user and password, or a token) and subscribes the
    /// reply inbox; checked with a `PING`.
    pub async fn open(
        address: &str,
        auth: Option<(Option<&str>, &str)>,
        timeout: Duration,
    ) -> Result<Connection, StreamError> {
        let tcp = tokio::time::timeout(timeout, TcpStream::connect(address))
            .await
            .map_err(|_| {
                StreamError::new(
                    StreamErrorKind::Timeout,
                    format!("nats connect to {address} timed out"),
                )
            })?
            .map_err(|e| io_error(&format!("connect to {address}"), e))?;
        let _ = tcp.set_nodelay(true);
        let inbox = format!(
            "_INBOX.riffle.{}.{}.{}",
            std::process::id(),
            riffle_common::now_ms(),
            CONNECTIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut c = Connection {
            stream: BufReader::new(tcp),
            address: address.to_string(),
            inbox,
        };
        let mut connect = json!({"verbose": false, "pedantic": false, "headers": true, "no_responders": true, "lang": "rust", "version": env!("CARGO_PKG_VERSION"), "name": "riffle"});
        match auth {
            Some((Some(user), pass)) => {
                connect["user"] = json!(user);
                connect["pass"] = json!(pass);
            }
            Some((None, token)) => connect["auth_token"] = json!(token),
            None => {}
        }
        let hello = format!("CONNECT {connect}\r\nSUB {} 1\r\nPING\r\n", c.inbox);
        let work = async {
            c.stream
                .get_mut()
                .write_all(hello.as_bytes())
                .await
                .map_err(|e| io_error("write", e))?;
            loop {
                let line = c.line().await?;
                if line.starts_with("PONG") {
                    return Ok(());
                }
                if let Some(err) = line.strip_prefix("-ERR") {
                    let err = err.trim().trim_matches('\'');
                    let kind = if err.to_ascii_lowercase().contains("authorization") {
                        StreamErrorKind::Unauthorized
                    } else {
                        StreamErrorKind::Fatal
                    };
                    return Err(StreamError::new(
                        kind,
                        format!("nats server refused the connection: {err}"),
                    ));
                }
            }
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            StreamError::new(
                StreamErrorKind::Timeout,
                format!("nats {address}: no answer to CONNECT"),
            )
        })??;
        Ok(c)
    }

    async fn line(&mut self) -> Result<String, StreamError> {
        riffle_stream::wire::read_line(&mut self.stream, "nats").await
    }

    /// Publishes `payload` to `subject` with the inbox as reply subject and returns the
    /// reply's payload.
    pub async fn request(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, StreamError> {
        let mut out = format!("PUB {subject} {} {}\r\n", self.inbox, payload.len()).into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        let address = self.address.clone();
        let work = async {
            self.stream
                .get_mut()
                .write_all(&out)
                .await
                .map_err(|e| io_error("write", e))?;
            loop {
                let line = self.line().await?;
                let parts: Vec<&str> = line.split_ascii_whitespace().collect();
                match parts.first().copied() {
                    Some("PING") => {
                        self.stream
                            .get_mut()
                            .write_all(b"PONG\r\n")
                            .await
                            .map_err(|e| io_error("write", e))?;
                    }
                    Some("MSG") => {
                        let n = parts
                            .last()
                            .and_then(|n| n.parse::<usize>().ok())
                            .filter(|n| *n <= MAX_PAYLOAD)
                            .ok_or_else(|| protocol(format!("bad MSG line '{line}'")))?;
                        let mut body = vec![0u8; n + 2];
                        self.stream
                            .read_exact(&mut body)
                            .await
                            .map_err(|e| io_error("read", e))?;
                        body.truncate(n);
                        return Ok(body);
                    }
                    Some("HMSG") => {
                        let total = parts
                            .last()
                            .and_then(|n| n.parse::<usize>().ok())
                            .filter(|n| *n <= MAX_PAYLOAD);
                        let hdr = parts
                            .get(parts.len().saturating_sub(2))
                            .and_then(|n| n.parse::<usize>().ok());
                        let (Some(total), Some(hdr)) = (total, hdr) else {
                            return Err(protocol(format!("bad HMSG line '{line}'")));
                        };
                        let mut body = vec![0u8; total + 2];
                        self.stream
                            .read_exact(&mut body)
                            .await
                            .map_err(|e| io_error("read", e))?;
                        let head = String::from_utf8_lossy(&body[..hdr.min(total)]).into_owned();
                        // A status-only reply (503 no responders: no JetStream there).
                        if head.contains(" 503") {
                            return Err(StreamError::new(
                                StreamErrorKind::NotFound,
                                format!("nats {subject}: no responders (is JetStream enabled on the server?)"),
                            ));
                        }
                        return Ok(body[hdr.min(total)..total].to_vec());
                    }
                    Some("-ERR") => {
                        return Err(StreamError::new(
                            StreamErrorKind::Fatal,
                            format!("nats server error: {line}"),
                        ))
                    }
                    _ => {}
                }
            }
        };
        tokio::time::timeout(timeout, work).await.map_err(|_| {
            StreamError::new(
                StreamErrorKind::Timeout,
                format!(
                    "nats {address}: no reply to {subject} within {} ms",
                    timeout.as_millis()
                ),
            )
        })?
    }

    async fn api(
        &mut self,
        what: &str,
        subject: &str,
        body: &Value,
        timeout: Duration,
    ) -> Result<Value, StreamError> {
        let reply = self
            .request(subject, body.to_string().as_bytes(), timeout)
            .await?;
        serde_json::from_slice(&reply)
            .map_err(|e| protocol(format!("{what}: reply is not JSON: {e}")))
    }

    /// The stream's first sequence and the sequence after its last.
    pub async fn stream_state(
        &mut self,
        stream: &str,
        timeout: Duration,
    ) -> Result<(u64, u64), StreamError> {
        let v = self
            .api(
                "stream info",
                &format!("$JS.API.STREAM.INFO.{stream}"),
                &json!({}),
                timeout,
            )
            .await?;
        if v.get("error").is_some() {
            return Err(api_error(
                &format!("stream info of '{stream}'"),
                &v["error"],
            ));
        }
        let first = v["state"]["first_seq"].as_u64().unwrap_or(1).max(1);
        let last = v["state"]["last_seq"].as_u64().unwrap_or(0);
        Ok((first, last + 1))
    }

    /// The first stored message with a sequence at or after `seq`, if any.
    pub async fn message_at_or_after(
        &mut self,
        stream: &str,
        seq: u64,
        timeout: Duration,
    ) -> Result<Option<StoredMessage>, StreamError> {
        let v = self
            .api(
                "get message",
                &format!("$JS.API.STREAM.MSG.GET.{stream}"),
                &json!({"seq": seq.max(1), "next_by_subj": ">"}),
                timeout,
            )
            .await?;
        if let Some(e) = v.get("error") {
            if e["err_code"].as_i64() == Some(10037) {
                return Ok(None);
            }
            return Err(api_error(&format!("get message {seq} of '{stream}'"), e));
        }
        let m = &v["message"];
        let bad = || {
            StreamError::new(
                StreamErrorKind::Fatal,
                format!("nats stream '{stream}': a malformed message at {seq}"),
            )
        };
        let data = base64::engine::general_purpose::STANDARD
            .decode(m["data"].as_str().unwrap_or_default())
            .map_err(|_| bad())?;
        Ok(Some(StoredMessage {
            seq: m["seq"].as_u64().ok_or_else(bad)?,
            subject: m["subject"].as_str().unwrap_or_default().to_string(),
            data,
            time_ms: m["time"].as_str().and_then(rfc3339_ms).unwrap_or(0),
        }))
    }

    /// Creates a stream over `subjects` (tests and tools).
    pub async fn create_stream(
        &mut self,
        stream: &str,
        subjects: &[String],
        timeout: Duration,
    ) -> Result<(), StreamError> {
        let v = self
            .api(
                "create stream",
                &format!("$JS.API.STREAM.CREATE.{stream}"),
                &json!({"name": stream, "subjects": subjects}),
                timeout,
            )
            .await?;
        match v.get("error") {
            Some(e) => Err(api_error(&format!("create stream '{stream}'"), e)),
            None => Ok(()),
        }
    }

    /// Publishes to a JetStream subject and waits for the store's acknowledgement; returns
    /// the sequence.
    pub async fn publish(
        &mut self,
        subject: &str,
        payload: &[u8],
        timeout: Duration,
    ) -> Result<u64, StreamError> {
        let reply = self.request(subject, payload, timeout).await?;
        let v: Value = serde_json::from_slice(&reply)
            .map_err(|e| protocol(format!("publish ack is not JSON: {e}")))?;
        if let Some(e) = v.get("error") {
            return Err(api_error(&format!("publish to '{subject}'"), e));
        }
        v["seq"]
            .as_u64()
            .ok_or_else(|| protocol(format!("publish ack without seq: {v}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_times() {
        assert_eq!(
            rfc3339_ms("2026-12-05T11:28:16.813220184Z"),
            Some(1_796_470_096_813)
        );
        assert_eq!(rfc3339_ms("garbage"), None);
    }
}
