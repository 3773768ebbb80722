//! One connection to a Pulsar broker speaking the binary protocol.
//!
//! Frames: `[total size u32][command size u32][BaseCommand]`, and for commands that carry a
//! message (`SEND`, `MESSAGE`) then `[0x0e01][crc32c u32]` (optional), `[metadata size
//! u32][MessageMetadata][payload]`; sizes are big-endian, the total counts what follows it.
//! The connection answers the broker's `PING`s while it waits for a frame; messages that
//! arrive while a request waits for its answer are kept for the next read.

use std::collections::VecDeque;
use std::time::Duration;

use prost::Message;
use riffle_stream::{StreamError, StreamErrorKind};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::proto::{self, kind, BaseCommand, MessageMetadata};

/// The largest frame accepted (Pulsar's default maximum message size is 5 MiB).
pub const MAX_FRAME: usize = 64 * 1024 * 1024;
/// The protocol version this client speaks (v13: batches, checksums, last message id).
const PROTOCOL_VERSION: i32 = 13;

/// A frame read from the broker.
#[derive(Debug)]
pub struct Frame {
    /// The command.
    pub command: BaseCommand,
    /// For `MESSAGE`: the message metadata and the payload (checksum verified if present).
    pub payload: Option<(MessageMetadata, Vec<u8>)>,
}

/// A connected, handshaken connection.
pub struct Connection {
    stream: TcpStream,
    /// `MESSAGE` and other unsolicited frames read while waiting for an answer.
    pub pending: VecDeque<Frame>,
    next_request: u64,
    /// The broker's version string.
    pub server_version: String,
}

fn io_error(what: &str, e: std::io::Error) -> StreamError {
    let kind = if e.kind() == std::io::ErrorKind::TimedOut {
        StreamErrorKind::Timeout
    } else {
        StreamErrorKind::Transient
    };
    StreamError::new(kind, format!("pulsar {what}: {e}"))
}

fn protocol_error(message: String) -> StreamError {
    StreamError::new(
        StreamErrorKind::Transient,
        format!("pulsar protocol error: {message}"),
    )
}

/// Pulsar's `ServerError` codes as stream error kinds.
pub fn server_error_kind(code: i32) -> StreamErrorKind {
    match code {
        // MetadataError, PersistenceError, ServiceNotReady, TooManyRequests, ... are passing.
        1 | 2 | 5 | 12 | 14 | 16 | 17 | 19 => StreamErrorKind::Transient,
        // AuthenticationError, AuthorizationError.
        3 | 4 => StreamErrorKind::Unauthorized,
        // TopicNotFound, SubscriptionNotFound, ConsumerNotFound.
        13 | 20 | 21 => StreamErrorKind::NotFound,
        // InvalidTopicName, IncompatibleSchema, NotAllowedError.
        10 | 15 | 25 => StreamErrorKind::InvalidConfig,
        _ => StreamErrorKind::Fatal,
    }
}

/// CRC-32C (Castagnoli), as Pulsar checksums payloads.
pub fn crc32c(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (i, e) in t.iter_mut().enumerate() {
            let mut c = i as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0x82F6_3B78 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *e = c;
        }
        t
    });
    let mut crc = !0u32;
    for b in data {
        crc = table[((crc ^ u32::from(*b)) & 0xff) as usize] ^ (crc >> 8);
    }
    !crc
}

/// Splits a frame body (after the total size) into its command and payload.
pub fn parse_frame(body: &[u8]) -> Result<Frame, StreamError> {
    let take_u32 = |b: &[u8], at: usize| -> Result<usize, StreamError> {
        b.get(at..at + 4)
            .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
            .ok_or_else(|| {
                protocol_error(format!("frame of {} bytes cut short at byte {at}", b.len()))
            })
    };
    let cmd_size = take_u32(body, 0)?;
    let cmd_end = 4usize
        .checked_add(cmd_size)
        .filter(|e| *e <= body.len())
        .ok_or_else(|| {
            protocol_error(format!(
                "command size {cmd_size} exceeds the frame ({} bytes)",
                body.len()
            ))
        })?;
    let command = BaseCommand::decode(&body[4..cmd_end])
        .map_err(|e| protocol_error(format!("undecodable command: {e}")))?;
    let mut rest = &body[cmd_end..];
    if rest.is_empty() {
        return Ok(Frame {
            command,
            payload: None,
        });
    }
    if rest.len() >= 6 && rest[0] == 0x0e && rest[1] == 0x01 {
        let want = u32::from_be_bytes([rest[2], rest[3], rest[4], rest[5]]);
        rest = &rest[6..];
        let got = crc32c(rest);
        if got != want {
            return Err(StreamError::new(
                StreamErrorKind::Transient,
                format!("pulsar message checksum mismatch (frame says {want:#010x}, payload has {got:#010x})"),
            ));
        }
    }
    let meta_size = take_u32(rest, 0)?;
    let meta_end = 4usize
        .checked_add(meta_size)
        .filter(|e| *e <= rest.len())
        .ok_or_else(|| protocol_error(format!("metadata size {meta_size} exceeds the frame")))?;
    let meta = MessageMetadata::decode(&rest[4..meta_end])
        .map_err(|e| protocol_error(format!("undecodable message metadata: {e}")))?;
    Ok(Frame {
        command,
        payload: Some((meta, rest[meta_end..].to_vec())),
    })
}

/// Encodes a frame (a command, and a message for `SEND`).
pub fn encode_frame(command: &BaseCommand, payload: Option<(&MessageMetadata, &[u8])>) -> Vec<u8> {
    let cmd = command.encode_to_vec();
    let mut tail = Vec::new();
    if let Some((meta, data)) = payload {
        let m = meta.encode_to_vec();
        let mut checked = Vec::with_capacity(4 + m.len() + data.len());
        checked.extend_from_slice(&(m.len() as u32).to_be_bytes());
        checked.extend_from_slice(&m);
        checked.extend_from_slice(data);
        tail.extend_from_slice(&[0x0e, 0x01]);
        tail.extend_from_slice(&crc32c(&checked).to_be_bytes());
        tail.extend_from_slice(&checked);
    }
    let total = 4 + cmd.len() + tail.len();
    let mut out = Vec::with_capacity(4 + total);
    out.extend_from_slice(&(total as u32).to_be_bytes());
    out.extend_from_slice(&(cmd.len() as u32).to_be_bytes());
    out.extend_from_slice(&cmd);
    out.extend_from_slice(&tail);
    out
}

impl Connection {
    /// Connects to `host:port` and handshakes (with a token when given).
    pub async fn open(
        addr: &str,
        token: Option<&str>,
        timeout: Duration,
    ) -> Result<Connection, StreamError> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| {
                StreamError::new(
                    StreamErrorKind::Timeout,
                    format!("pulsar connect to {addr} timed out"),
                )
            })?
            .map_err(|e| io_error(&format!("connect to {addr}"), e))?;
        let _ = stream.set_nodelay(true);
        let mut c = Connection {
            stream,
            pending: VecDeque::new(),
            next_request: 1,
            server_version: String::new(),
        };
        let mut cmd = BaseCommand::of(kind::CONNECT);
        cmd.connect = Some(proto::CommandConnect {
            client_version: format!("riffle-{}", env!("CARGO_PKG_VERSION")),
            auth_data: token.map(|t| t.as_bytes().to_vec()),
            protocol_version: Some(PROTOCOL_VERSION),
            auth_method_name: token.map(|_| "token".to_string()),
        });
        c.send(&cmd, None).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let f = c.read_frame(deadline).await?.ok_or_else(|| {
                StreamError::new(
                    StreamErrorKind::Timeout,
                    format!("pulsar broker {addr} did not answer CONNECT"),
                )
            })?;
            match f.command.r#type {
                kind::CONNECTED => {
                    c.server_version = f
                        .command
                        .connected
                        .map(|x| x.server_version)
                        .unwrap_or_default();
                    return Ok(c);
                }
                kind::ERROR => return Err(Self::error_of(&f.command, "connect")),
                _ => c.pending.push_back(f),
            }
        }
    }

    /// A new request id.
    pub fn request_id(&mut self) -> u64 {
        self.next_request += 1;
        self.next_request
    }

    /// Sends a frame.
    pub async fn send(
        &mut self,
        command: &BaseCommand,
        payload: Option<(&MessageMetadata, &[u8])>,
    ) -> Result<(), StreamError> {
        let bytes = encode_frame(command, payload);
        self.stream
            .write_all(&bytes)
            .await
            .map_err(|e| io_error("write", e))
    }

    /// The next frame, answering pings; `None` if none arrives before `deadline`.
    pub async fn read_frame(
        &mut self,
        deadline: tokio::time::Instant,
    ) -> Result<Option<Frame>, StreamError> {
        loop {
            let mut size = [0u8; 4];
            match tokio::time::timeout_at(deadline, self.stream.read_exact(&mut size)).await {
                Err(_) => return Ok(None),
                Ok(r) => {
                    r.map_err(|e| io_error("read", e))?;
                }
            }
            let total = u32::from_be_bytes(size) as usize;
            if total > MAX_FRAME {
                return Err(protocol_error(format!(
                    "frame of {total} bytes exceeds the limit of {MAX_FRAME}"
                )));
            }
            let mut body = vec![0u8; total];
            // The rest of a frame is read whatever the deadline: the stream must stay aligned.
            self.stream
                .read_exact(&mut body)
                .await
                .map_err(|e| io_error("read", e))?;
            let f = parse_frame(&body)?;
            if f.command.r#type == kind::PING {
                self.send(&BaseCommand::of(kind::PONG), None).await?;
                continue;
            }
            return Ok(Some(f));
        }
    }

    /// Sends a request and waits for the frame answering `request_id` (`SUCCESS`, `ERROR`
    /// or a typed response); other frames are kept in `pending`.
    pub async fn request(
        &mut self,
        command: &BaseCommand,
        request_id: u64,
        what: &str,
        timeout: Duration,
    ) -> Result<BaseCommand, StreamError> {
        self.send(command, None).await?;
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let Some(f) = self.read_frame(deadline).await? else {
                return Err(StreamError::new(
                    StreamErrorKind::Timeout,
                    format!("pulsar {what}: no answer within {} ms", timeout.as_millis()),
                ));
            };
            if answers(&f.command) == Some(request_id) {
                if f.command.r#type == kind::ERROR {
                    return Err(Self::error_of(&f.command, what));
                }
                return Ok(f.command);
            }
            self.pending.push_back(f);
        }
    }

    fn error_of(cmd: &BaseCommand, what: &str) -> StreamError {
        match &cmd.error {
            Some(e) => StreamError::new(
                server_error_kind(e.error),
                format!(
                    "pulsar {what} failed: {} (server error {})",
                    e.message, e.error
                ),
            ),
            None => protocol_error(format!("{what}: an ERROR without details")),
        }
    }
}

/// The request id a frame answers, if it answers one.
fn answers(c: &BaseCommand) -> Option<u64> {
    c.success
        .as_ref()
        .map(|x| x.request_id)
        .or(c.error.as_ref().map(|x| x.request_id))
        .or(c.producer_success.as_ref().map(|x| x.request_id))
        .or(c.partition_metadata_response.as_ref().map(|x| x.request_id))
        .or(c
            .get_last_message_id_response
            .as_ref()
            .map(|x| x.request_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_crc32c_known_value() {
        // The standard check value of CRC-32C.
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }

    #[test]
    fn test_frames_round_trip_and_bad_frames_are_errors() {
        let mut cmd = BaseCommand::of(kind::SEND);
        cmd.send = Some(proto::CommandSend {
            producer_id: 1,
            sequence_id: 7,
            num_messages: None,
        });
        let meta = MessageMetadata {
            producer_name: "p".into(),
            sequence_id: 7,
            publish_time: 5,
            ..Default::default()
        };
        let bytes = encode_frame(&cmd, Some((&meta, b"hello")));
        let f = parse_frame(&bytes[4..]).unwrap();
        assert_eq!(f.command, cmd);
        let (m, p) = f.payload.unwrap();
        assert_eq!((m, p), (meta.clone(), b"hello".to_vec()));
        // A flipped payload byte fails the checksum.
        let mut bad = bytes.clone();
        let n = bad.len();
        bad[n - 1] ^= 1;
        assert!(parse_frame(&bad[4..])
            .unwrap_err()
            .message
            .contains("checksum"));
        // Without a checksum (pulsar-lite sends none) the payload is taken as it is.
        let plain = {
            let c = cmd.encode_to_vec();
            let m = meta.encode_to_vec();
            let mut b = Vec::new();
            b.extend_from_slice(&(c.len() as u32).to_be_bytes());
            b.extend_from_slice(&c);
            b.extend_from_slice(&(m.len() as u32).to_be_bytes());
            b.extend_from_slice(&m);
            b.extend_from_slice(b"hi");
            b
        };
        assert_eq!(parse_frame(&plain).unwrap().payload.unwrap().1, b"hi");
        // Garbage never panics.
        for g in [
            &b""[..],
            &[0, 0, 0, 9, 1][..],
            &[0, 0, 0, 0, 0, 0, 0, 200][..],
            &[255; 40][..],
        ] {
            let _ = parse_frame(g);
        }
        assert!(parse_frame(&[0, 0, 1, 0]).is_err());
    }
}
