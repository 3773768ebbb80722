//! Reads one shard (Pinot's `PartitionGroupConsumer` for Kinesis).
//!
//! The consumer keeps the `NextShardIterator` of its last call with the offset it leads
//! to; a fetch from that offset goes on with it, any other fetch asks for a new iterator
//! at the offset's position (see [`crate::offsets`]). An expired iterator is replaced the same way. Calls are spaced
//! by `1 / requests_per_second_limit`; a fetch with nothing to read polls until its timeout.

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use riffle_common::{now_ms, PartitionId};
use riffle_stream::{
    MessageBatch, PartitionConsumer, StreamError, StreamErrorKind, StreamMessage, StreamOffset,
};

use crate::client::{is_exception, KinesisClient};
use crate::config::KinesisConfig;
use crate::metadata::shard_of;
use crate::offsets::{self, Position};

/// The least time a call may take: a fetch's timeout bounds how long it waits for records,
/// not how long a slow answer may take to arrive.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// A consumer of one shard.
pub struct KinesisPartitionConsumer {
    config: Arc<KinesisConfig>,
    client: KinesisClient,
    shard: String,
    /// The iterator that continues from an offset, if the last call left one.
    next: Option<(StreamOffset, Option<String>)>,
    last_call: Option<Instant>,
}

impl KinesisPartitionConsumer {
    /// A consumer of the shard of `partition`.
    pub fn new(
        config: Arc<KinesisConfig>,
        client: KinesisClient,
        partition: PartitionId,
    ) -> KinesisPartitionConsumer {
        KinesisPartitionConsumer {
            config,
            client,
            shard: shard_of(partition),
            next: None,
            last_call: None,
        }
    }

    fn interval(&self) -> Duration {
        Duration::from_secs_f64(1.0 / self.config.requests_per_second)
    }

    /// An iterator for `from` ([`Position`]); `None` for a time still in the future (Kinesis
    /// refuses those; nothing can be there yet).
    async fn iterator_for(
        &self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<Option<String>, StreamError> {
        let pos = Position::of(from).ok_or_else(|| {
            StreamError::new(
                StreamErrorKind::InvalidConfig,
                format!(
                    "offset '{from}' is not a kinesis position (a sequence number, optionally followed by '+') for shard '{}'",
                    self.shard
                ),
            )
        })?;
        if matches!(pos, Position::AtTime(t) if t > now_ms()) {
            return Ok(None);
        }
        self.client
            .shard_iterator(&self.config.stream, &self.shard, &pos.start(), timeout)
            .await
            .map(Some)
    }

    async fn pace(&mut self, deadline: Instant) -> bool {
        if let Some(last) = self.last_call {
            let at = last + self.interval();
            if at > deadline {
                return false;
            }
            tokio::time::sleep_until(at.into()).await;
        }
        self.last_call = Some(Instant::now());
        true
    }
}

#[async_trait]
impl PartitionConsumer for KinesisPartitionConsumer {
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError> {
        let deadline = Instant::now() + timeout;
        let mut iterator = match self.next.take() {
            Some((o, it)) if &o == from => it,
            _ => match self.iterator_for(from, timeout.max(CALL_TIMEOUT)).await? {
                Some(it) => Some(it),
                None => {
                    // A start time still to come: wait for it.
                    tokio::time::sleep(timeout.min(Duration::from_millis(200))).await;
                    return Ok(MessageBatch::empty(from.clone()));
                }
            },
        };
        loop {
            let Some(it) = iterator.clone() else {
                // The shard is closed and read to its end.
                self.next = Some((from.clone(), None));
                let mut b = MessageBatch::empty(from.clone());
                b.end_of_partition = true;
                return Ok(b);
            };
            if !self.pace(deadline).await {
                self.next = Some((from.clone(), Some(it)));
                return Ok(MessageBatch::empty(from.clone()));
            }
            let left = deadline
                .saturating_duration_since(Instant::now())
                .max(CALL_TIMEOUT);
            let r = match self
                .client
                .get_records(&it, self.config.max_records, left)
                .await
            {
                Ok(r) => r,
                Err(e) if is_exception(&e, "ExpiredIteratorException") => {
                    iterator = self.iterator_for(from, left).await?;
                    continue;
                }
                Err(e) => return Err(e),
            };
            if r.records.is_empty() {
                iterator = r.next_shard_iterator;
                if iterator.is_some() && Instant::now() < deadline {
                    continue;
                }
                let end = iterator.is_none();
                self.next = Some((from.clone(), iterator));
                let mut b = MessageBatch::empty(from.clone());
                b.end_of_partition = end;
                return Ok(b);
            }
            let mut messages = Vec::with_capacity(r.records.len());
            let mut size = 0;
            for rec in &r.records {
                if !offsets::is_sequence(&rec.sequence_number) {
                    return Err(StreamError::new(
                        StreamErrorKind::Fatal,
                        format!(
                            "kinesis shard '{}' returned a record whose sequence number '{}' is not a decimal number",
                            self.shard, rec.sequence_number
                        ),
                    ));
                }
                let value = Bytes::from(rec.payload()?);
                let key = rec
                    .partition_key
                    .as_ref()
                    .map(|k| Bytes::copy_from_slice(k.as_bytes()));
                size += value.len() + key.as_ref().map_or(0, |k| k.len());
                messages.push(StreamMessage {
                    key,
                    value,
                    headers: Vec::new(),
                    offset: offsets::sequence(&rec.sequence_number),
                    next_offset: offsets::after(&rec.sequence_number),
                    timestamp_ms: rec.arrival_ms(),
                });
            }
            let next_offset = messages
                .last()
                .map(|m| m.next_offset.clone())
                .unwrap_or_else(|| from.clone());
            let end = r.next_shard_iterator.is_none();
            self.next = Some((next_offset.clone(), r.next_shard_iterator));
            return Ok(MessageBatch {
                unfiltered_count: messages.len(),
                messages,
                next_offset,
                end_of_partition: end,
                data_loss: None,
                size_bytes: size,
            });
        }
    }
}
