//! The consumption loop of one partition.
//!
//! ```text
//! loop:
//!   batch = consumer.fetch(offset, fetch timeout)        (async I/O)
//!   rows  = decode(batch) into column builders             (blocking pool)
//!   segment.append(rows, batch.next_offset)                (rows and offset published together)
//!   offset = batch.next_offset
//!   end criteria reached? -> seal and commit (segment lifecycle)
//! ```
//!
//! Errors: transient fetch errors are retried at the same offset with exponential backoff
//! (100 ms to 5 s) and the partition shows `RETRYING`; any other error, a data-loss report
//! from the stream, or a malformed message under `stopOnDecodeError=true` stops the
//! partition with state `ERROR` and the reason in `last_error`. Malformed messages are
//! otherwise dropped, counted and logged at most once per 10 s per partition.

use std::sync::Arc;
use std::time::Duration;

use riffle_catalog::SegmentMeta;
use riffle_common::{now_ms, PartitionId};
use riffle_config::DataLossPolicy;
use riffle_decode::{decode_batch, decoder_for, SpecialColumns};
use riffle_segment::{BlockBuilder, ConsumingSegment, SegmentRef};
use riffle_stream::{PartitionConsumer, StreamMessage, StreamOffset};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::{IngestContext, PartitionState, PartitionStatus, TableRuntime, PARTITIONS_PER_STREAM};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const LOG_EVERY_MS: i64 = 10_000;

fn update(rt: &TableRuntime, partition: u32, f: impl FnOnce(&mut PartitionStatus)) {
    if let Some(s) = rt.status.lock().get_mut(&partition) {
        f(s);
    }
}

/// Runs one partition until cancelled or stopped by an error.
pub(crate) async fn run(
    ctx: Arc<IngestContext>,
    rt: Arc<TableRuntime>,
    spec_pos: usize,
    meta: SegmentMeta,
    cancel: CancellationToken,
) {
    let spec = &rt.streams[spec_pos];
    let partition = meta.partition;
    let stream_partition = PartitionId(partition % PARTITIONS_PER_STREAM);
    let segment = Arc::new(ConsumingSegment::new(
        meta.segment_name.clone(),
        PartitionId(partition),
        meta.sequence,
        meta.start_offset.clone(),
        meta.creation_time_ms,
        rt.columns.clone(),
    ));
    rt.data.put_segment(SegmentRef::Consuming(segment.clone()));
    rt.status.lock().insert(
        partition,
        PartitionStatus {
            partition,
            segment: meta.segment_name.clone(),
            state: PartitionState::Starting,
            current_offset: meta.start_offset.clone(),
            messages_read: 0,
            rows_indexed: 0,
            decode_errors: 0,
            offsets_lost: 0,
            last_error: None,
            last_fetch_ms: 0,
            last_indexed_ms: 0,
        },
    );
    let table = rt.name_with_type.clone();
    let stop = |reason: String| {
        error!(table = %table, partition, reason = %reason, "partition stopped");
        update(&rt, partition, |s| {
            s.state = PartitionState::Error;
            s.last_error = Some(reason);
        });
    };

    let mut decoder = match decoder_for(&spec.config, &rt.columns) {
        Ok(d) => d,
        Err(e) => return stop(format!("decoder: {e}")),
    };
    let special = SpecialColumns::new(&rt.columns, spec.config.metadata_populate);
    let fetch_timeout = Duration::from_millis(spec.config.fetch_timeout_ms.clamp(1, 60_000));
    let stop_on_error = spec.config.stop_on_decode_error;

    // Connect, retrying transient failures.
    let mut backoff = BACKOFF_MIN;
    let mut consumer: Box<dyn PartitionConsumer> = loop {
        let attempt =
            spec.plugin
                .partition_consumer(&spec.config, &ctx.stream_ctx, stream_partition);
        let res = tokio::select! {
            _ = cancel.cancelled() => return stopped(&rt, partition),
            r = attempt => r,
        };
        match res {
            Ok(c) => break c,
            Err(e) if e.is_retryable() => {
                warn!(table = %table, partition, error = %e, "cannot create consumer, retrying");
                update(&rt, partition, |s| {
                    s.state = PartitionState::Retrying;
                    s.last_error = Some(e.to_string());
                });
                tokio::select! {
                    _ = cancel.cancelled() => return stopped(&rt, partition),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
            Err(e) => return stop(format!("create consumer: {e}")),
        }
    };
    info!(table = %table, partition, segment = %meta.segment_name,
          offset = %meta.start_offset, "partition consuming");
    update(&rt, partition, |s| s.state = PartitionState::Consuming);

    let mut offset = StreamOffset::parse(&meta.start_offset);
    let mut builder = Some(BlockBuilder::new(rt.columns.clone(), 1024));
    let mut last_log_ms = 0i64;
    let mut suppressed = 0u64;
    backoff = BACKOFF_MIN;
    loop {
        let res = tokio::select! {
            _ = cancel.cancelled() => return stopped(&rt, partition),
            r = consumer.fetch(&offset, fetch_timeout) => r,
        };
        let now = now_ms();
        let batch = match res {
            Ok(b) => {
                backoff = BACKOFF_MIN;
                b
            }
            Err(e) if e.is_retryable() => {
                warn!(table = %table, partition, offset = %offset, error = %e, "fetch failed, retrying");
                update(&rt, partition, |s| {
                    s.state = PartitionState::Retrying;
                    s.last_error = Some(format!("fetch at offset {offset}: {e}"));
                    s.last_fetch_ms = now;
                });
                tokio::select! {
                    _ = cancel.cancelled() => return stopped(&rt, partition),
                    _ = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
                continue;
            }
            Err(e) => return stop(format!("fetch at offset {offset}: {e}")),
        };
        if let Some(loss) = &batch.data_loss {
            if spec.config.data_loss_policy != DataLossPolicy::ResumeFromEarliest {
                return stop(format!(
                    "offsets from {} up to {} were deleted from the stream before they were read; \
                     the partition is stopped so that the gap is not skipped silently \
                     (realtime.segment.dataLossPolicy=RESUME_FROM_EARLIEST goes on from {})",
                    loss.requested, loss.available_from, loss.available_from
                ));
            }
            // The table opted in: log and count the gap, and go on from what is left.
            let lost = match (loss.requested.as_i64(), loss.available_from.as_i64()) {
                (Some(a), Some(b)) => (b - a).max(0) as u64,
                _ => 0,
            };
            let reason = format!(
                "offsets from {} up to {} were deleted from the stream before they were read; \
                 resuming from {} (dataLossPolicy RESUME_FROM_EARLIEST)",
                loss.requested, loss.available_from, loss.available_from
            );
            warn!(table = %table, partition, lost, reason = %reason, "data loss");
            update(&rt, partition, |s| {
                s.offsets_lost += lost;
                s.last_error = Some(reason.clone());
            });
            if batch.messages.is_empty() && batch.next_offset == offset {
                if let Err(e) = segment.append(None, loss.available_from.to_string(), 0, None, now)
                {
                    return stop(format!("publish offset: {e}"));
                }
                offset = loss.available_from.clone();
                continue;
            }
        }
        update(&rt, partition, |s| {
            if s.state != PartitionState::Consuming {
                s.state = PartitionState::Consuming;
            }
            s.last_fetch_ms = now;
        });
        if batch.messages.is_empty() {
            if batch.next_offset != offset {
                // Skipped records only: the offset still moves.
                if let Err(e) = segment.append(None, batch.next_offset.to_string(), 0, None, now) {
                    return stop(format!("publish offset: {e}"));
                }
                offset = batch.next_offset;
                let o = offset.to_string();
                update(&rt, partition, |s| s.current_offset = o);
            }
            continue;
        }

        // Decode on the blocking pool: CPU work must not stall the async runtime.
        let Some(mut b) = builder.take() else {
            return stop("internal: block builder lost".into());
        };
        let messages: Vec<StreamMessage> = batch.messages;
        let special_c = special.clone();
        let pid = partition;
        let joined = tokio::task::spawn_blocking(move || {
            let stats = decode_batch(
                decoder.as_mut(),
                &special_c,
                pid,
                &messages,
                &mut b,
                stop_on_error,
            );
            let rows = b.finish();
            (decoder, b, messages, stats, rows)
        })
        .await;
        let (d, b, messages, stats, rows) = match joined {
            Ok(x) => x,
            Err(e) => return stop(format!("decode task failed: {e}")),
        };
        decoder = d;
        builder = Some(b);
        let rows = match rows {
            Ok(r) => r,
            Err(e) => return stop(format!("build rows: {e}")),
        };

        // Under stopOnDecodeError the offset stops at the bad message: it is re-read (and
        // fails again, visibly) rather than skipped.
        let (next_offset, read) = match (&stats.first_error, stop_on_error) {
            (Some((bad, _)), true) => {
                let pos = messages
                    .iter()
                    .position(|m| m.offset.to_string() == *bad)
                    .unwrap_or(messages.len());
                (StreamOffset::parse(bad), pos as u64)
            }
            _ => (batch.next_offset.clone(), messages.len() as u64),
        };
        if let Err(e) = segment.append(
            Some(rows),
            next_offset.to_string(),
            read,
            stats.latest_timestamp_ms,
            now,
        ) {
            return stop(format!("publish rows: {e}"));
        }
        offset = next_offset;
        let o = offset.to_string();
        update(&rt, partition, |s| {
            s.current_offset = o;
            s.messages_read += read;
            s.rows_indexed += stats.rows as u64;
            s.decode_errors += stats.errors as u64;
            if stats.rows > 0 {
                s.last_indexed_ms = now;
            }
        });
        if let Some((bad, err)) = &stats.first_error {
            if stop_on_error {
                return stop(format!(
                    "malformed message at offset {bad}: {err} (stopOnDecodeError=true)"
                ));
            }
            let e = format!("malformed message at offset {bad}: {err}");
            update(&rt, partition, |s| s.last_error = Some(e.clone()));
            if now - last_log_ms >= LOG_EVERY_MS {
                warn!(table = %table, partition, dropped = stats.errors as u64 + suppressed,
                      first = %e, "malformed messages dropped");
                last_log_ms = now;
                suppressed = 0;
            } else {
                suppressed += stats.errors as u64;
            }
        }
    }
}

fn stopped(rt: &TableRuntime, partition: u32) {
    update(rt, partition, |s| s.state = PartitionState::Stopped);
}
