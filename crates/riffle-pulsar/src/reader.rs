//! Reading one topic partition: a non-durable exclusive subscription started at a message
//! id (Pinot's reader), with flow-control permits; batches and compressed entries unpacked
//! into single messages.
//!
//! A fetch from where the last one ended goes on with the same subscription; any other
//! offset reconnects and subscribes at that entry, dropping messages before the offset
//! (a broker re-delivers a whole batch).

use std::collections::VecDeque;
use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use prost::Message;
use riffle_common::now_ms;
use riffle_stream::{MessageBatch, StreamError, StreamErrorKind, StreamMessage, StreamOffset};

use crate::config::PulsarConfig;
use crate::connection::Connection;
use crate::offsets::Position;
use crate::proto::{self, compression, kind, BaseCommand, MessageIdData, MessageMetadata};

/// Permits given to the broker at a time.
const PERMITS: u32 = 1000;
/// The most messages one fetch returns.
const MAX_BATCH: usize = 10_000;

/// One unpacked message, with whether it is skipped (a null value, compacted out).
struct Unpacked {
    message: StreamMessage,
    skipped: bool,
}

/// A subscription reading one partition's topic.
pub struct Reader {
    config: Arc<PulsarConfig>,
    /// The topic of the partition (`...-partition-N` for a partitioned topic).
    topic: String,
    partition: i32,
    conn: Option<Connection>,
    consumer_id: u64,
    /// Where the next message returned starts (the offset the last fetch ended at).
    at: Option<StreamOffset>,
    /// Messages before this position are dropped (re-delivered parts of a batch).
    skip_before: Option<Position>,
    buffer: VecDeque<Unpacked>,
    permits: u32,
    /// Entries received since the last acknowledgement.
    acked: u32,
    ended: bool,
}

static SUBSCRIPTIONS: AtomicU64 = AtomicU64::new(0);

impl Reader {
    /// A reader of `topic` (the partition's own topic).
    pub fn new(config: Arc<PulsarConfig>, topic: String, partition: i32) -> Reader {
        Reader {
            config,
            topic,
            partition,
            conn: None,
            consumer_id: 1,
            at: None,
            skip_before: None,
            buffer: VecDeque::new(),
            permits: 0,
            acked: 0,
            ended: false,
        }
    }

    /// Connects and subscribes at `from`.
    async fn subscribe(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<(), StreamError> {
        let start = Position::of(from).map_err(|e| {
            StreamError::new(
                StreamErrorKind::InvalidConfig,
                format!("{e} for topic '{}'", self.topic),
            )
        })?;
        self.conn = None;
        self.buffer.clear();
        self.ended = false;
        let mut conn =
            Connection::open(&self.config.address, self.config.token.as_deref(), timeout).await?;
        let request_id = conn.request_id();
        let mut cmd = BaseCommand::of(kind::SUBSCRIBE);
        cmd.subscribe = Some(proto::CommandSubscribe {
            topic: self.topic.clone(),
            subscription: format!(
                "riffle-reader-{}-{}-{}",
                std::process::id(),
                now_ms(),
                SUBSCRIPTIONS.fetch_add(1, Ordering::Relaxed)
            ),
            sub_type: proto::SUB_EXCLUSIVE,
            consumer_id: self.consumer_id,
            request_id,
            consumer_name: Some("riffle".into()),
            durable: Some(false),
            start_message_id: start.map(|p| MessageIdData {
                ledger_id: p.ledger,
                entry_id: p.entry,
                partition: Some(self.partition),
                batch_index: Some(-1),
                batch_size: None,
            }),
            initial_position: Some(proto::INITIAL_EARLIEST),
        });
        conn.request(
            &cmd,
            request_id,
            &format!("subscribe to '{}'", self.topic),
            timeout,
        )
        .await?;
        // Frames sent before the subscription answered belong to nothing yet.
        conn.pending.clear();
        self.conn = Some(conn);
        self.permits = 0;
        self.flow().await?;
        self.skip_before = start;
        self.at = Some(from.clone());
        Ok(())
    }

    async fn flow(&mut self) -> Result<(), StreamError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let give = PERMITS - self.permits;
        let mut cmd = BaseCommand::of(kind::FLOW);
        cmd.flow = Some(proto::CommandFlow {
            consumer_id: self.consumer_id,
            message_permits: give,
        });
        conn.send(&cmd, None).await?;
        self.permits = PERMITS;
        Ok(())
    }

    /// Acknowledges everything up to `id` (cumulatively), so that the broker does not
    /// deliver it again.
    async fn ack(&mut self, id: &MessageIdData) -> Result<(), StreamError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(());
        };
        let mut cmd = BaseCommand::of(kind::ACK);
        cmd.ack = Some(proto::CommandAck {
            consumer_id: self.consumer_id,
            ack_type: proto::ACK_CUMULATIVE,
            message_id: vec![MessageIdData {
                batch_index: None,
                batch_size: None,
                ..id.clone()
            }],
        });
        conn.send(&cmd, None).await
    }

    /// Messages from `from`, waiting at most about `timeout` for the first.
    pub async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        if self.conn.is_none() || self.at.as_ref() != Some(from) {
            self.subscribe(from, timeout.max(Duration::from_secs(5)))
                .await?;
        }
        let deadline = tokio::time::Instant::now() + timeout;
        let result = self.read_until(deadline).await;
        if result.is_err() {
            // The next fetch reconnects at the same offset.
            self.conn = None;
        }
        result?;
        let mut b = MessageBatch::empty(from.clone());
        let mut next = from.clone();
        while let Some(u) = self.buffer.pop_front() {
            b.unfiltered_count += 1;
            next = u.message.next_offset.clone();
            if !u.skipped {
                b.size_bytes +=
                    u.message.value.len() + u.message.key.as_ref().map_or(0, |k| k.len());
                b.messages.push(u.message);
            }
            if b.unfiltered_count >= MAX_BATCH {
                break;
            }
        }
        b.next_offset = next.clone();
        b.end_of_partition = self.ended && self.buffer.is_empty();
        self.at = Some(next);
        Ok(b)
    }

    /// Reads frames into the buffer until something is there, the topic ended, or the deadline.
    async fn read_until(&mut self, deadline: tokio::time::Instant) -> Result<(), StreamError> {
        loop {
            let Some(conn) = self.conn.as_mut() else {
                return Ok(());
            };
            let frame = match conn.pending.pop_front() {
                Some(f) => Some(f),
                None if !self.buffer.is_empty() || self.ended => {
                    // Take what has already arrived, without waiting.
                    conn.read_frame(tokio::time::Instant::now() + Duration::from_millis(1))
                        .await?
                }
                None => conn.read_frame(deadline).await?,
            };
            let Some(f) = frame else {
                return Ok(());
            };
            match f.command.r#type {
                kind::MESSAGE => {
                    let (Some(msg), Some((meta, payload))) = (f.command.message, f.payload) else {
                        return Err(StreamError::new(
                            StreamErrorKind::Fatal,
                            format!(
                                "pulsar topic '{}': a MESSAGE frame without its message",
                                self.topic
                            ),
                        ));
                    };
                    self.permits = self.permits.saturating_sub(1);
                    self.unpack(&msg.message_id, &meta, payload)?;
                    self.acked += 1;
                    if self.acked >= PERMITS / 4 {
                        self.acked = 0;
                        self.ack(&msg.message_id).await?;
                    }
                    if self.permits < PERMITS / 2 {
                        self.flow().await?;
                    }
                }
                kind::REACHED_END_OF_TOPIC => self.ended = true,
                kind::CLOSE_CONSUMER => {
                    return Err(StreamError::new(
                        StreamErrorKind::Transient,
                        format!("pulsar broker closed the reader of '{}'", self.topic),
                    ))
                }
                _ => {}
            }
            if self.buffer.len() >= MAX_BATCH {
                return Ok(());
            }
        }
    }

    /// Unpacks an entry (a message or a batch) into the buffer.
    fn unpack(
        &mut self,
        id: &MessageIdData,
        meta: &MessageMetadata,
        payload: Vec<u8>,
    ) -> Result<(), StreamError> {
        let data = decompress(meta, payload).map_err(|e| {
            StreamError::new(
                StreamErrorKind::Fatal,
                format!(
                    "pulsar topic '{}' entry {}:{}: {e}",
                    self.topic, id.ledger_id, id.entry_id
                ),
            )
        })?;
        let headers = |props: &[proto::KeyValue]| {
            props
                .iter()
                .map(|kv| (kv.key.clone(), Bytes::from(kv.value.clone().into_bytes())))
                .collect()
        };
        let publish = i64::try_from(meta.publish_time).ok();
        let base = Position {
            ledger: id.ledger_id,
            entry: id.entry_id,
            index: 0,
        };
        let push = |this: &mut Reader,
                    index: u32,
                    n: u32,
                    key: Option<&String>,
                    value: Bytes,
                    hdrs,
                    skipped: bool| {
            let pos = Position { index, ..base };
            if this.skip_before.is_some_and(|s| pos < s) {
                return;
            }
            // A message the broker delivers again (unacknowledged ones may come back) is
            // dropped: everything before the next position was kept already.
            this.skip_before = Some(pos.next(n));
            this.buffer.push_back(Unpacked {
                message: StreamMessage {
                    key: key.map(|k| Bytes::from(k.clone().into_bytes())),
                    value,
                    headers: hdrs,
                    offset: pos.offset(),
                    next_offset: pos.next(n).offset(),
                    timestamp_ms: publish,
                },
                skipped,
            });
        };
        match meta.num_messages_in_batch {
            None => {
                let skipped = meta.null_value == Some(true);
                push(
                    self,
                    0,
                    1,
                    meta.partition_key.as_ref(),
                    Bytes::from(data),
                    headers(&meta.properties),
                    skipped,
                );
            }
            Some(n) => {
                let n = u32::try_from(n).unwrap_or(0);
                let data = Bytes::from(data);
                let mut at = 0usize;
                for i in 0..n {
                    let size = data
                        .get(at..at + 4)
                        .map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]]) as usize)
                        .ok_or_else(|| batch_error(&self.topic, id, i, "cut short"))?;
                    let meta_end = (at + 4)
                        .checked_add(size)
                        .filter(|e| *e <= data.len())
                        .ok_or_else(|| {
                            batch_error(&self.topic, id, i, "metadata beyond the entry")
                        })?;
                    let single = proto::SingleMessageMetadata::decode(&data[at + 4..meta_end])
                        .map_err(|e| {
                            batch_error(&self.topic, id, i, &format!("undecodable metadata: {e}"))
                        })?;
                    let len = usize::try_from(single.payload_size).unwrap_or(usize::MAX);
                    let end = meta_end
                        .checked_add(len)
                        .filter(|e| *e <= data.len())
                        .ok_or_else(|| {
                            batch_error(&self.topic, id, i, "payload beyond the entry")
                        })?;
                    let skipped =
                        single.null_value == Some(true) || single.compacted_out == Some(true);
                    let value = data.slice(meta_end..end);
                    push(
                        self,
                        i,
                        n,
                        single.partition_key.as_ref(),
                        value,
                        headers(&single.properties),
                        skipped,
                    );
                    at = end;
                }
            }
        }
        Ok(())
    }
}

fn batch_error(topic: &str, id: &MessageIdData, i: u32, what: &str) -> StreamError {
    StreamError::new(
        StreamErrorKind::Fatal,
        format!(
            "pulsar topic '{topic}' entry {}:{}: batch message {i}: {what}",
            id.ledger_id, id.entry_id
        ),
    )
}

/// The entry's payload, uncompressed.
pub fn decompress(meta: &MessageMetadata, payload: Vec<u8>) -> Result<Vec<u8>, String> {
    let size = meta.uncompressed_size.unwrap_or(0) as usize;
    if size > crate::connection::MAX_FRAME {
        return Err(format!("uncompressed size {size} exceeds the limit"));
    }
    match meta.compression.unwrap_or(compression::NONE) {
        compression::NONE => Ok(payload),
        compression::LZ4 => {
            lz4_flex::block::decompress(&payload, size).map_err(|e| format!("lz4: {e}"))
        }
        compression::ZLIB => {
            let mut out = Vec::with_capacity(size);
            flate2::read::ZlibDecoder::new(&payload[..])
                .take(size as u64 + 1)
                .read_to_end(&mut out)
                .map_err(|e| format!("zlib: {e}"))?;
            Ok(out)
        }
        compression::ZSTD => {
            zstd::bulk::decompress(&payload, size).map_err(|e| format!("zstd: {e}"))
        }
        compression::SNAPPY => snap::raw::Decoder::new()
            .decompress_vec(&payload)
            .map_err(|e| format!("snappy: {e}")),
        other => Err(format!("unknown compression type {other}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta(c: i32, size: usize) -> MessageMetadata {
        MessageMetadata {
            compression: Some(c),
            uncompressed_size: Some(size as u32),
            ..Default::default()
        }
    }

    #[test]
    fn test_every_codec_decompresses() {
        let data = b"riffle riffle riffle riffle riffle".to_vec();
        let lz4 = lz4_flex::block::compress(&data);
        assert_eq!(
            decompress(&meta(compression::LZ4, data.len()), lz4).unwrap(),
            data
        );
        let z = {
            use std::io::Write;
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(&data).unwrap();
            e.finish().unwrap()
        };
        assert_eq!(
            decompress(&meta(compression::ZLIB, data.len()), z).unwrap(),
            data
        );
        let zs = zstd::bulk::compress(&data, 3).unwrap();
        assert_eq!(
            decompress(&meta(compression::ZSTD, data.len()), zs).unwrap(),
            data
        );
        let sn = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(&meta(compression::SNAPPY, data.len()), sn).unwrap(),
            data
        );
        assert!(decompress(&meta(9, 3), vec![1])
            .unwrap_err()
            .contains("unknown compression"));
        assert!(decompress(&meta(compression::LZ4, 10), vec![255, 1, 2]).is_err());
    }

    #[test]
    fn test_batches_unpack_and_bad_batches_are_errors() {
        let cfg = Arc::new(PulsarConfig {
            address: "x:1".into(),
            topic: "persistent://public/default/t".into(),
            token: None,
            warnings: Vec::new(),
        });
        let mut r = Reader::new(cfg, "t".into(), -1);
        let mut payload = Vec::new();
        for (i, v) in [b"a".as_slice(), b"bb", b"ccc"].iter().enumerate() {
            let s = proto::SingleMessageMetadata {
                payload_size: v.len() as i32,
                partition_key: Some(format!("k{i}")),
                null_value: Some(i == 1),
                ..Default::default()
            }
            .encode_to_vec();
            payload.extend_from_slice(&(s.len() as u32).to_be_bytes());
            payload.extend_from_slice(&s);
            payload.extend_from_slice(v);
        }
        let id = MessageIdData {
            ledger_id: 3,
            entry_id: 7,
            partition: None,
            batch_index: None,
            batch_size: None,
        };
        let m = MessageMetadata {
            num_messages_in_batch: Some(3),
            publish_time: 42,
            ..Default::default()
        };
        // Re-delivered batch: the first message was read already.
        r.skip_before = Some(Position {
            ledger: 3,
            entry: 7,
            index: 1,
        });
        r.unpack(&id, &m, payload.clone()).unwrap();
        let got: Vec<_> = r
            .buffer
            .iter()
            .map(|u| {
                (
                    u.message.value.clone(),
                    u.skipped,
                    u.message.offset.to_string(),
                )
            })
            .collect();
        assert_eq!(got.len(), 2);
        assert_eq!(
            got[0],
            (
                Bytes::from_static(b"bb"),
                true,
                "3:00000000000000000007:000001".to_string()
            )
        );
        assert_eq!(got[1].0, Bytes::from_static(b"ccc"));
        assert_eq!(
            r.buffer[1].message.next_offset.to_string(),
            "3:00000000000000000008:000000"
        );
        assert_eq!(r.buffer[1].message.timestamp_ms, Some(42));
        // The same entry delivered again (unacknowledged) adds nothing.
        r.unpack(&id, &m, payload.clone()).unwrap();
        assert_eq!(r.buffer.len(), 2);
        // Cut short or lying sizes: errors, never panics.
        for cut in [1, 5, payload.len() - 1] {
            assert!(r.unpack(&id, &m, payload[..cut].to_vec()).is_err(), "{cut}");
        }
        let mut lying = payload.clone();
        lying[3] = 200;
        assert!(r.unpack(&id, &m, lying).is_err());
    }
}
