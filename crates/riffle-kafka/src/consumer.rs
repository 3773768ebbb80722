//! Reading one partition ([`KafkaPartitionConsumer`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use parking_lot::Mutex;
use rdkafka::consumer::Consumer as _;
use rdkafka::error::KafkaError;
use rdkafka::message::{Headers, Message};

use rdkafka::{Offset, TopicPartitionList};
use riffle_stream::{
    DataLoss, MessageBatch, PartitionConsumer, StreamError, StreamErrorKind, StreamMessage,
    StreamOffset,
};

use crate::batch;
use crate::client::{stream_error, Consumer, RiffleContext};
use crate::config::KafkaConfig;
use crate::{blocking, drop_off_runtime};

/// How long a fetch spends checking that the brokers are back after a transport failure.
const RECONNECT_CHECK: Duration = Duration::from_secs(1);
/// The least time given to finding the log start offset after an out-of-range fetch.
const OUT_OF_RANGE_CHECK: Duration = Duration::from_secs(2);

/// A consumer of one partition: a librdkafka consumer with exactly that partition assigned.
/// It keeps no committed state: each fetch says where to start, and the consumer seeks
/// (re-assigns) when that is not where its last fetch ended.
pub struct KafkaPartitionConsumer {
    inner: Option<Arc<Inner>>,
}

struct Inner {
    config: Arc<KafkaConfig>,
    topic: String,
    partition: i32,
    max_messages: usize,
    max_bytes: usize,
    state: Mutex<State>,
}

/// The client and where it stands.
struct State {
    consumer: Consumer,
    /// The offset the consumer delivers next, if it is positioned.
    next: Option<i64>,
    /// Whether the consumer has been assigned a position (and may have a fetch in flight).
    used: bool,
}

fn new_client(config: &KafkaConfig, partition: i32) -> Result<Consumer, StreamError> {
    let id = format!("riffle-{}-{partition}", config.topic);
    let mut c = config.client_config(&id);
    // No end-of-partition events: a fetch ends on its own once the queue is empty, and an
    // event taken among messages by [`batch::drain`] would move librdkafka's position one
    // past the end (it counts every message of a batch, errors included).
    c.set("enable.partition.eof", "false");
    c.create_with_context(RiffleContext::new(&id)).map_err(|e| {
        stream_error(
            &format!("kafka topic '{}' partition {partition}", config.topic),
            &e,
            None,
        )
    })
}

impl KafkaPartitionConsumer {
    /// Creates the client (no request is made yet).
    pub async fn new(
        config: Arc<KafkaConfig>,
        partition: u32,
    ) -> Result<KafkaPartitionConsumer, StreamError> {
        let partition = i32::try_from(partition).map_err(|_| {
            StreamError::new(
                StreamErrorKind::NotFound,
                format!("partition {partition} is not a Kafka partition id"),
            )
        })?;
        let inner = blocking(move || {
            let consumer = new_client(&config, partition)?;
            Ok(Inner {
                topic: config.topic.clone(),
                partition,
                max_messages: config.max_batch_messages.max(1),
                max_bytes: config.max_batch_bytes.max(1),
                state: Mutex::new(State {
                    consumer,
                    next: None,
                    used: false,
                }),
                config,
            })
        })
        .await?;
        Ok(KafkaPartitionConsumer {
            inner: Some(Arc::new(inner)),
        })
    }
}

impl Drop for KafkaPartitionConsumer {
    fn drop(&mut self) {
        if let Some(inner) = self.inner.take() {
            drop_off_runtime(inner);
        }
    }
}

#[async_trait]
impl PartitionConsumer for KafkaPartitionConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        let from = match from {
            StreamOffset::Long(n) if *n >= 0 => *n,
            other => {
                return Err(StreamError::new(
                    StreamErrorKind::Fatal,
                    format!("kafka offsets are whole numbers from 0, got '{other}'"),
                ))
            }
        };
        let inner = self
            .inner
            .clone()
            .ok_or_else(|| StreamError::new(StreamErrorKind::Fatal, "consumer closed"))?;
        let now = Instant::now();
        let deadline = now
            .checked_add(timeout)
            .unwrap_or_else(|| now + Duration::from_secs(86_400));
        blocking(move || inner.fetch(from, deadline)).await
    }
}

/// What [`copy_out`] reads of a message librdkafka returned, however it was taken.
pub(crate) trait Fetched {
    fn key_bytes(&self) -> Option<&[u8]>;
    fn value_bytes(&self) -> Option<&[u8]>;
    fn record_offset(&self) -> i64;
    fn timestamp_ms(&self) -> Option<i64>;
    fn header_list(&self) -> Vec<(String, Bytes)>;
}

impl Fetched for rdkafka::message::BorrowedMessage<'_> {
    fn key_bytes(&self) -> Option<&[u8]> {
        Message::key(self)
    }

    fn value_bytes(&self) -> Option<&[u8]> {
        Message::payload(self)
    }

    fn record_offset(&self) -> i64 {
        Message::offset(self)
    }

    fn timestamp_ms(&self) -> Option<i64> {
        self.timestamp().to_millis()
    }

    fn header_list(&self) -> Vec<(String, Bytes)> {
        Message::headers(self)
            .map(|hs| {
                hs.iter()
                    .map(|h| {
                        (
                            h.key.to_string(),
                            h.value.map(Bytes::copy_from_slice).unwrap_or_default(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// Where a fetch stands: the next offset, the records read (tombstones included), and the
/// messages and bytes held, against the fetch's limits.
struct Progress {
    next: i64,
    unfiltered: usize,
    held: usize,
    size: usize,
    max_messages: usize,
    max_bytes: usize,
}

impl Progress {
    fn new(from: i64, max_messages: usize, max_bytes: usize) -> Progress {
        Progress {
            next: from,
            unfiltered: 0,
            held: 0,
            size: 0,
            max_messages,
            max_bytes,
        }
    }

    /// Counts the partition's record at `offset`; whether to hold it (not a repeat of an
    /// earlier offset, not a tombstone: a null value is skipped, but the offset moves past
    /// it).
    fn admit(&mut self, offset: i64, value: Option<&[u8]>, key: Option<&[u8]>) -> bool {
        if offset < self.next {
            return false;
        }
        self.next = offset.saturating_add(1);
        self.unfiltered += 1;
        match value {
            Some(v) => {
                self.size += v.len() + key.map_or(0, <[u8]>::len);
                self.held += 1;
                true
            }
            None => false,
        }
    }

    fn full(&self) -> bool {
        self.held >= self.max_messages
            || self.size >= self.max_bytes
            || self.unfiltered >= self.max_messages.saturating_mul(4)
    }

    /// How many messages to take next: never more than the message limits allow (a message
    /// taken cannot be given back), and about what the byte limit leaves at the average
    /// size so far.
    fn room(&self) -> usize {
        let by_count = (self.max_messages.saturating_sub(self.held)).min(
            self.max_messages
                .saturating_mul(4)
                .saturating_sub(self.unfiltered),
        );
        let average = (self.size / self.held.max(1)).max(1);
        let by_bytes = self.max_bytes.saturating_sub(self.size) / average + 1;
        by_count.min(by_bytes).min(batch::MAX_DRAIN)
    }
}

/// The messages of a fetch with their keys and values copied into one buffer of `size`
/// bytes (what they hold together).
///
/// Headers are read only when `headers` is set (the table populates metadata, the only
/// reader of headers): librdkafka parses a record's headers on demand, allocating a
/// buffer even for a record with none, which cost about a tenth of the consuming
/// process's CPU on the ingest benchmark.
pub(crate) fn copy_out(held: &[&dyn Fetched], size: usize, headers: bool) -> Vec<StreamMessage> {
    let mut buf = Vec::with_capacity(size);
    let mut ranges = Vec::with_capacity(held.len());
    for m in held {
        let mut copy = |b: &[u8]| {
            let start = buf.len();
            buf.extend_from_slice(b);
            start..buf.len()
        };
        let key = m.key_bytes().map(&mut copy);
        let value = copy(m.value_bytes().unwrap_or_default());
        ranges.push((key, value));
    }
    let data = Bytes::from(buf);
    held.iter()
        .zip(ranges)
        .map(|(m, (key, value))| StreamMessage {
            key: key.map(|r| data.slice(r)),
            value: data.slice(value),
            headers: if headers { m.header_list() } else { Vec::new() },
            offset: StreamOffset::Long(m.record_offset()),
            next_offset: StreamOffset::Long(m.record_offset().saturating_add(1)),
            timestamp_ms: m.timestamp_ms(),
        })
        .collect()
}

impl Inner {
    fn what(&self, from: i64) -> String {
        format!(
            "fetch from kafka topic '{}' partition {} at offset {from}",
            self.topic, self.partition
        )
    }

    fn fetch(&self, from: i64, deadline: Instant) -> Result<MessageBatch, StreamError> {
        // A fetch abandoned by its caller may still be running: wait for it, within time.
        let Some(mut state) = self.state.try_lock_until(deadline) else {
            return Ok(MessageBatch::empty(StreamOffset::Long(from)));
        };
        let state = &mut *state;

        // After a transport failure, fail fast until a broker answers again.
        let trouble = state.consumer.context().broker_trouble.lock().clone();
        if let Some(trouble) = trouble {
            let left = deadline.saturating_duration_since(Instant::now());
            let check = left.clamp(Duration::from_millis(1), RECONNECT_CHECK);
            match state.consumer.fetch_metadata(Some(&self.topic), check) {
                Ok(_) => {
                    // The client's queue still holds an error for each failed attempt to
                    // reach the brokers during the outage, which polls would return one by
                    // one as if the trouble went on: start afresh with a new client.
                    let fresh = new_client(&self.config, self.partition)?;
                    drop_off_runtime(std::mem::replace(&mut state.consumer, fresh));
                    state.next = None;
                    state.used = false;
                }
                Err(_) => {
                    return Err(StreamError::new(
                        StreamErrorKind::Transient,
                        format!(
                            "{}: the brokers are unreachable: {trouble}",
                            self.what(from)
                        ),
                    ))
                }
            }
        }

        let mut repositioned = false;
        if state.next != Some(from) {
            if state.used {
                // A fetch of the old position may be waiting in the broker (up to
                // fetch.wait.max.ms at the end of the log), and librdkafka sends no other
                // fetch on that connection until it returns: a new client starts at once.
                let fresh = new_client(&self.config, self.partition)?;
                drop_off_runtime(std::mem::replace(&mut state.consumer, fresh));
            }
            let mut tpl = TopicPartitionList::with_capacity(1);
            tpl.add_partition_offset(&self.topic, self.partition, Offset::Offset(from))
                .map_err(|e| stream_error(&self.what(from), &e, None))?;
            state
                .consumer
                .assign(&tpl)
                .map_err(|e| stream_error(&self.what(from), &e, Some(state.consumer.context())))?;
            state.next = Some(from);
            state.used = true;
            repositioned = true;
        }
        let consumer = &state.consumer;
        let ctx = consumer.context();

        // Messages with a value are held as librdkafka returned them and copied at the end
        // into one buffer of the exact size: one allocation per fetch, not one or two per
        // message. The first is waited for with a poll (which also serves the client's
        // events); the rest already queued are taken in a few calls ([`batch::drain`]).
        let mut first = Vec::new();
        let mut rest = Vec::new();
        let mut p = Progress::new(from, self.max_messages, self.max_bytes);
        while p.unfiltered == 0 {
            let wait = deadline.saturating_duration_since(Instant::now());
            let Some(item) = consumer.poll(wait) else {
                break;
            };
            match item {
                Ok(m) => {
                    let keep = m.partition() == self.partition && m.topic() == self.topic;
                    if keep && p.admit(m.offset(), m.payload(), m.key()) {
                        first.push(m);
                    }
                }
                Err(KafkaError::PartitionEOF(_)) => {}
                Err(e) => {
                    let se = stream_error(&self.what(from), &e, Some(ctx));
                    match se.kind {
                        StreamErrorKind::Transient | StreamErrorKind::Timeout => {
                            *ctx.broker_trouble.lock() = Some(se.message.clone());
                            return Err(se);
                        }
                        kind => {
                            // Re-position next time: the error comes again if it lasts.
                            state.next = None;
                            if kind == StreamErrorKind::OffsetOutOfRange {
                                return self.out_of_range(consumer, from, deadline, se);
                            }
                            return Err(se);
                        }
                    }
                }
            }
        }
        // Once something arrived, take only what is already here: return promptly. Every
        // message taken is kept or passed over by offset, never dropped unread, so the
        // client's position stays the batch's next offset.
        let mut more = p.unfiltered > 0;
        while more && !p.full() {
            let want = p.room();
            let taken = batch::drain(consumer, want);
            more = taken.len() == want;
            for item in taken {
                match item {
                    Ok(m) => {
                        let keep = m.partition() == self.partition && m.topic_is(&self.topic);
                        if keep && p.admit(m.offset(), m.value_bytes(), m.key_bytes()) {
                            rest.push(m);
                        }
                    }
                    Err(e) => {
                        // Keep what was read, and re-position next time with a new client:
                        // librdkafka moved its position one past the error's offset, so it
                        // no longer says where reading stands. The error comes again if it
                        // lasts.
                        more = false;
                        state.next = None;
                        let se = stream_error(&self.what(from), &e, Some(ctx));
                        if matches!(
                            se.kind,
                            StreamErrorKind::Transient | StreamErrorKind::Timeout
                        ) {
                            *ctx.broker_trouble.lock() = Some(se.message.clone());
                        }
                    }
                }
            }
        }
        let Progress {
            mut next,
            mut unfiltered,
            size,
            ..
        } = p;

        // Records librdkafka passes over without returning them (transaction markers,
        // aborted records under read_committed) still move its position: follow it.
        if unfiltered == 0 && !repositioned {
            if let Ok(tpl) = consumer.position() {
                if let Some(el) = tpl.find_partition(&self.topic, self.partition) {
                    if let Offset::Offset(p) = el.offset() {
                        if p > from {
                            next = p;
                            unfiltered = usize::try_from(p - from).unwrap_or(usize::MAX);
                        }
                    }
                }
            }
        }
        let held: Vec<&dyn Fetched> = first
            .iter()
            .map(|m| m as &dyn Fetched)
            .chain(rest.iter().map(|m| m as &dyn Fetched))
            .collect();
        let messages = copy_out(&held, size, self.config.metadata_populate);
        drop(held);
        drop(rest);
        drop(first);
        if state.next.is_some() {
            state.next = Some(next);
        }
        Ok(MessageBatch {
            messages,
            next_offset: StreamOffset::Long(next),
            unfiltered_count: unfiltered,
            end_of_partition: false,
            data_loss: None,
            size_bytes: size,
        })
    }

    /// The broker said `from` is out of range: below the log start it is data loss (an
    /// empty batch saying so), otherwise an error.
    fn out_of_range(
        &self,
        consumer: &Consumer,
        from: i64,
        deadline: Instant,
        cause: StreamError,
    ) -> Result<MessageBatch, StreamError> {
        let left = deadline
            .saturating_duration_since(Instant::now())
            .max(OUT_OF_RANGE_CHECK);
        let (low, high) = consumer
            .fetch_watermarks(&self.topic, self.partition, left)
            .map_err(|e| {
                let mut se = stream_error(
                    &format!(
                        "{} was out of range; reading the partition's offsets",
                        self.what(from)
                    ),
                    &e,
                    Some(consumer.context()),
                );
                se.message.push_str(&format!(" ({})", cause.message));
                se
            })?;
        if from < low {
            return Ok(MessageBatch {
                data_loss: Some(DataLoss {
                    requested: StreamOffset::Long(from),
                    available_from: StreamOffset::Long(low),
                }),
                ..MessageBatch::empty(StreamOffset::Long(from))
            });
        }
        let holds = if high > low {
            format!("the partition holds offsets {low} to {}", high - 1)
        } else {
            format!("the partition is empty, its next offset is {high}")
        };
        Err(StreamError::new(
            StreamErrorKind::OffsetOutOfRange,
            format!(
                "{}: offset {from} is out of range: {holds}",
                self.what(from)
            ),
        ))
    }
}
