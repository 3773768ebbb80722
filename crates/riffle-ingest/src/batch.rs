//! What the partition loop does with a fetched batch: the data-loss policy, skipped
//! records, the exact row threshold, decoding on the cpu pool, and publishing rows together
//! with the offset that follows them.

use arrow::record_batch::RecordBatch;
use riffle_common::{now_ms, StreamOffset};
use riffle_config::DataLossPolicy;
use riffle_decode::{decode_batch, DecodeError, DecodeStats};
use riffle_segment::ExtraValues;
use riffle_stream::{MessageBatch, StreamMessage};
use riffle_transform::IngestPlan;

use std::sync::Arc;

use crate::dead_letter::{to_batch, DeadLetter};
use riffle_config::DeadLetterConfig;
use riffle_segment::TableColumns;
use tracing::warn;

use crate::partition::{Exit, Flow, PartitionLoop};
use crate::status::{PartitionError, PartitionState, Stage};

const LOG_EVERY_MS: i64 = 10_000;

fn failed(stage: Stage, message: String) -> Exit {
    Exit::Failed(PartitionError::new(stage, message, false))
}

impl PartitionLoop {
    /// Handles one fetched batch.
    pub(crate) async fn publish(&mut self, mut batch: MessageBatch) -> Flow {
        let now = now_ms();
        if !self.apply_data_loss_policy(&batch, now)? {
            return Ok(());
        }
        self.table.status.update(self.partition, |s| {
            if s.state != PartitionState::Consuming {
                s.state = PartitionState::Consuming;
            }
            s.last_fetch_ms = now;
        });
        if batch.messages.is_empty() {
            self.end_of_partition = batch.end_of_partition;
            if batch.next_offset != self.offset {
                // Skipped records only: the offset still moves.
                self.cur.fetched_any = true;
                self.publish_offset(batch.next_offset, now)?;
            }
            return Ok(());
        }
        // A segment ends exactly at its row threshold, as Pinot's does: messages past it
        // are left for the next segment (read again by the next fetch).
        let room = self
            .cur
            .criteria
            .row_threshold
            .saturating_sub(self.cur.segment.snapshot().num_rows as u64);
        if (batch.messages.len() as u64) > room {
            batch.end_of_partition = false;
            let keep = room as usize;
            batch.next_offset = batch.messages[keep].offset.clone();
            batch.messages.truncate(keep);
            if keep == 0 {
                return Ok(());
            }
        }
        self.decode_and_append(batch, now).await
    }

    /// The stream deleted offsets before they were read: stops the partition, or (under
    /// `RESUME_FROM_EARLIEST`) counts the gap and goes on. `false` when the batch is done.
    fn apply_data_loss_policy(&mut self, batch: &MessageBatch, now: i64) -> Flow<bool> {
        let Some(loss) = &batch.data_loss else {
            return Ok(true);
        };
        if self.stream.config.data_loss_policy != DataLossPolicy::ResumeFromEarliest {
            return Err(failed(
                Stage::DataLoss,
                format!(
                    "offsets from {} up to {} were deleted from the stream before they were read; \
                     the partition is stopped so that the gap is not skipped silently \
                     (realtime.segment.dataLossPolicy=RESUME_FROM_EARLIEST goes on from {})",
                    loss.requested, loss.available_from, loss.available_from
                ),
            ));
        }
        // The table opted in: log and count the gap, and go on from what is left.
        let lost = loss
            .requested
            .distance_to(&loss.available_from)
            .unwrap_or(0);
        let reason = format!(
            "offsets from {} up to {} were deleted from the stream before they were read; \
             resuming from {} (dataLossPolicy RESUME_FROM_EARLIEST)",
            loss.requested, loss.available_from, loss.available_from
        );
        warn!(table = %self.table.name, partition = self.partition, lost, reason = %reason, "data loss");
        self.table.status.update(self.partition, |s| {
            s.offsets_lost += lost;
            s.last_error = Some(PartitionError::new(Stage::DataLoss, reason, true));
        });
        if batch.messages.is_empty() && batch.next_offset == self.offset {
            self.publish_offset(loss.available_from.clone(), now)?;
            return Ok(false);
        }
        Ok(true)
    }

    /// Publishes a new offset with no rows.
    fn publish_offset(&mut self, next: StreamOffset, now: i64) -> Flow {
        self.cur
            .segment
            .append(None, next.clone(), 0, None, now)
            .map_err(|e| failed(Stage::Internal, format!("publish offset: {e}")))?;
        self.offset = next;
        let o = self.offset.clone();
        self.table
            .status
            .update(self.partition, |s| s.current_offset = o);
        Ok(())
    }

    /// Decodes the messages on the cpu pool into the column builders and publishes the
    /// rows with the offset that follows them.
    async fn decode_and_append(&mut self, batch: MessageBatch, now: i64) -> Flow {
        // Messages fetched after the spec changed are decoded with the new one.
        self.follow_spec()?;
        let stop_on_error = self.stream.config.stop_on_decode_error;
        if !self.prefetch_schemas(&batch.messages).await? {
            return Ok(());
        }
        let (Some(mut decoder), Some(mut b)) = (self.decoder.take(), self.builder.take()) else {
            return Err(failed(
                Stage::Internal,
                "decoder or block builder lost".into(),
            ));
        };
        let messages: Vec<StreamMessage> = batch.messages;
        let (special, pid) = (self.special.clone(), self.partition);
        let plan = self.spec.ingest.clone();
        let dead = self.dead_letter_room(stop_on_error);
        let table_name = self.table.name.to_string();
        // A partition decodes on one thread when it can: its consuming segments' memory
        // comes from, and returns to, one allocator arena.
        let (d, b, messages, stats, (rows, letters)) = self
            .ctx
            .cpu
            .run_keyed(self.affinity, move || {
                let mut stats = decode_batch(
                    decoder.as_mut(),
                    &special,
                    pid,
                    &messages,
                    &mut b,
                    stop_on_error,
                );
                let rows = match &plan {
                    None => b.finish(),
                    Some(plan) => b.finish_with_extras().map(|(rows, extras)| {
                        transform(plan, rows, extras, &mut stats, &messages, stop_on_error)
                    }),
                };
                let letters =
                    dead.and_then(|d| dead_letters(d, &table_name, pid, &stats, &messages, now));
                (decoder, b, messages, stats, (rows, letters))
            })
            .await
            .map_err(|e| failed(Stage::Internal, format!("decode task failed: {e}")))?;
        self.decoder = Some(d);
        self.builder = Some(b);
        let rows = rows.map_err(|e| failed(Stage::Internal, format!("build rows: {e}")))?;
        let (next_offset, read) =
            resume_point(&stats, &messages, &batch.next_offset, stop_on_error);
        self.cur.fetched_any = true;
        // Dead letters first: a reader that sees the rows and offset sees them too.
        if let (Some(dead), Some(letters)) = (&self.cur.dead, letters) {
            let letters = letters.map_err(|e| failed(Stage::Internal, e))?;
            dead.append(Some(letters), next_offset.clone(), 0, None, now)
                .map_err(|e| failed(Stage::Internal, format!("publish dead letters: {e}")))?;
        }
        self.cur
            .segment
            .append(
                Some(rows),
                next_offset.clone(),
                read,
                stats.latest_timestamp_ms,
                now,
            )
            .map_err(|e| failed(Stage::Internal, format!("publish rows: {e}")))?;
        self.offset = next_offset;
        self.end_of_partition =
            batch.end_of_partition && stats.first_error.is_none() && stats.retry_at.is_none();
        self.count_decoded(&stats, read, now);
        self.report_decode_errors(&stats, stop_on_error, now)?;
        if let Some((_, e)) = &stats.retry_at {
            self.outage(e).await?;
        }
        Ok(())
    }

    /// Where a batch's dead letters go and how many more the segment may keep: `None`
    /// when the stream keeps none, or when the partition stops at a bad message instead.
    fn dead_letter_room(
        &self,
        stop_on_error: bool,
    ) -> Option<(DeadLetterConfig, usize, Arc<TableColumns>)> {
        match (&self.cur.dead, &self.stream.config.dead_letter) {
            (Some(seg), Some(cfg)) if !stop_on_error => {
                let room = cfg.max_per_segment.saturating_sub(seg.snapshot().num_rows);
                Some((cfg.clone(), room, seg.columns().clone()))
            }
            _ => None,
        }
    }

    /// The partition's counters after a published batch.
    fn count_decoded(&self, stats: &DecodeStats, read: u64, now: i64) {
        let o = self.offset.clone();
        self.table.status.update(self.partition, |s| {
            s.current_offset = o;
            s.messages_read += read;
            s.rows_indexed += stats.rows as u64;
            s.decode_errors += stats.errors as u64;
            s.rows_filtered += stats.filtered as u64;
            if stats.rows > 0 {
                s.last_indexed_ms = now;
            }
        });
    }

    /// Fetches what the decoder needs for these messages (a schema registry's schemas).
    /// `false` when it cannot now: the partition's error says why, and after a backoff the
    /// same offset is fetched again, so nothing is skipped.
    async fn prefetch_schemas(&mut self, messages: &[StreamMessage]) -> Flow<bool> {
        let Some(source) = self.decoder.as_ref().and_then(|d| d.schema_source()) else {
            return Ok(true);
        };
        match source.prefetch(messages).await {
            Ok(()) => {
                self.decode_log.outage_backoff = std::time::Duration::ZERO;
                Ok(true)
            }
            Err(e) => {
                self.outage(&e).await?;
                Ok(false)
            }
        }
    }

    /// An outage of something decoding needs: report it, wait, and let the loop read the
    /// same offset again.
    async fn outage(&mut self, e: &DecodeError) -> Flow {
        let msg = format!("decoding at offset {} waits: {}", self.offset, e.message);
        warn!(table = %self.table.name, partition = self.partition, offset = %self.offset,
              error = %e, "decoding waits for an outage to end");
        self.table.status.error(
            self.partition,
            PartitionError::new(Stage::Decode, msg, true),
        );
        let log = &mut self.decode_log;
        if log.outage_backoff.is_zero() {
            log.outage_backoff = crate::partition::BACKOFF_MIN;
        }
        let mut backoff = log.outage_backoff;
        crate::partition::backoff_sleep(&self.cancel, &mut backoff).await?;
        self.decode_log.outage_backoff = backoff;
        Ok(())
    }

    /// Malformed messages: stop under `stopOnDecodeError`, else count, keep the first as
    /// the partition's last error and log at most every [`LOG_EVERY_MS`].
    fn report_decode_errors(&mut self, stats: &DecodeStats, stop: bool, now: i64) -> Flow {
        let Some((bad, err)) = &stats.first_error else {
            return Ok(());
        };
        if stop {
            return Err(failed(
                Stage::Decode,
                format!("malformed message at offset {bad}: {err} (stopOnDecodeError=true)"),
            ));
        }
        let e = format!("malformed message at offset {bad}: {err}");
        let err = PartitionError::new(Stage::Decode, e.clone(), true);
        self.table
            .status
            .update(self.partition, |s| s.last_error = Some(err));
        let log = &mut self.decode_log;
        if now - log.last_log_ms >= LOG_EVERY_MS {
            warn!(table = %self.table.name, partition = self.partition,
                  dropped = stats.errors as u64 + log.suppressed, first = %e, "malformed messages dropped");
            log.last_log_ms = now;
            log.suppressed = 0;
        } else {
            log.suppressed += stats.errors as u64;
        }
        Ok(())
    }
}

/// Runs the table's transforms and filter on a decoded block: filtered rows are counted,
/// rows that fail count as malformed messages (the earliest failure, by position in the
/// batch, is the one reported). Under `stop_on_error` the rows from the first failing
/// message on are left out, so that the offset stops there.
fn transform(
    plan: &IngestPlan,
    rows: RecordBatch,
    extras: ExtraValues,
    stats: &mut DecodeStats,
    messages: &[StreamMessage],
    stop_on_error: bool,
) -> RecordBatch {
    let applied = plan.apply(rows, extras);
    stats.filtered += applied.filtered;
    let mut batch = applied.batch;
    for (row, e) in &applied.errors {
        if let Some(m) = stats.row_messages.get(*row as usize) {
            let m = *m as usize;
            // A message unnested into several rows fails once.
            if !stats.failures.iter().any(|(x, _)| *x == m) {
                stats.failures.push((m, DecodeError::new(e.clone())));
            }
        }
    }
    stats.failures.sort_by_key(|(m, _)| *m);
    let first = applied
        .errors
        .iter()
        .filter_map(|(row, e)| Some((*stats.row_messages.get(*row as usize)? as usize, e)))
        .min_by_key(|(m, _)| *m);
    if let Some((m, e)) = first {
        if stats.first_error_index.is_none_or(|d| m < d) {
            if let Some(msg) = messages.get(m) {
                stats.first_error = Some((msg.offset.clone(), DecodeError::new(e.clone())));
                stats.first_error_index = Some(m);
            }
        }
        if stop_on_error {
            let keep = applied
                .kept
                .iter()
                .take_while(|r| {
                    stats
                        .row_messages
                        .get(**r as usize)
                        .is_some_and(|x| (*x as usize) < m)
                })
                .count();
            batch = batch.slice(0, keep);
        }
    }
    stats.errors += applied.errors.len();
    stats.rows = batch.num_rows();
    batch
}

/// Where reading goes on after a decoded batch, and how many of its messages were read.
/// Under `stopOnDecodeError` the offset stops at the bad message: it is re-read (and fails
/// again, visibly) rather than skipped. An outage (a retryable error) stops it too, and the
/// message is read again after a backoff.
fn resume_point(
    stats: &DecodeStats,
    messages: &[StreamMessage],
    batch_next: &StreamOffset,
    stop_on_error: bool,
) -> (StreamOffset, u64) {
    match (&stats.retry_at, &stats.first_error, stop_on_error) {
        (Some((pos, _)), _, _) => match messages.get(*pos) {
            Some(m) => (m.offset.clone(), *pos as u64),
            None => (batch_next.clone(), messages.len() as u64),
        },
        (None, Some((bad, _)), true) => {
            let pos = messages
                .iter()
                .position(|m| &m.offset == bad)
                .unwrap_or(messages.len());
            (bad.clone(), pos as u64)
        }
        _ => (batch_next.clone(), messages.len() as u64),
    }
}

/// The dead-letter rows of a batch's failed messages, at most `room` of them.
fn dead_letters(
    (cfg, room, columns): (DeadLetterConfig, usize, Arc<TableColumns>),
    table: &str,
    partition: u32,
    stats: &DecodeStats,
    messages: &[StreamMessage],
    now: i64,
) -> Option<Result<RecordBatch, String>> {
    let letters: Vec<DeadLetter> = stats
        .failures
        .iter()
        .take(room)
        .filter_map(|(m, e)| {
            let msg = messages.get(*m)?;
            Some(DeadLetter::new(
                table, partition, msg, &e.message, now, &cfg,
            ))
        })
        .collect();
    (!letters.is_empty()).then(|| to_batch(&columns, &letters))
}
