//! The consumption loop of one partition.
//!
//! ```text
//! loop:
//!   batch = consumer.fetch(offset, fetch timeout)        (async I/O)
//!   rows  = decode(batch) into column builders             (blocking pool)
//!   segment.append(rows, batch.next_offset)                (rows and offset published together)
//!   offset = batch.next_offset
//!   end criteria reached? -> freeze the segment, hand it to the sealer (see
//!                            [`crate::lifecycle`]), go on at once in the next segment
//! ```
//!
//! A force-commit request or a pause wakes the loop out of its fetch. A pause freezes the
//! consuming segment with no next segment, waits for its commit and ends the loop.
//!
//! Errors: transient fetch errors are retried at the same offset with exponential backoff
//! (100 ms to 5 s) and the partition shows `RETRYING`; any other error, a data-loss report
//! from the stream, or a malformed message under `stopOnDecodeError=true` stops the
//! partition with state `ERROR` and the reason in `last_error`. Malformed messages are
//! otherwise dropped, counted and logged at most once per 10 s per partition.

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::Ordering;

use riffle_catalog::SegmentMeta;
use riffle_common::{now_ms, PartitionId};
use riffle_config::DataLossPolicy;
use riffle_decode::{decode_batch, decoder_for, SpecialColumns};
use riffle_segment::{BlockBuilder, ConsumingSegment, SegmentRef};
use riffle_stream::{PartitionConsumer, StreamMessage, StreamOffset};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::flush::{row_threshold, EndCriteria, StopReason};
use crate::lifecycle::{freeze, sealer, PartitionControl, SealJob, MAX_PENDING_SEALS};
use crate::{
    in_progress_segment, IngestContext, PartitionState, PartitionStatus, TableRuntime,
    PARTITIONS_PER_STREAM,
};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);
const LOG_EVERY_MS: i64 = 10_000;

pub(crate) fn update(rt: &TableRuntime, partition: u32, f: impl FnOnce(&mut PartitionStatus)) {
    if let Some(s) = rt.status.lock().get_mut(&partition) {
        f(s);
    }
}

/// The consuming segment of a partition and its limits.
struct Current {
    segment: Arc<ConsumingSegment>,
    meta: SegmentMeta,
    criteria: EndCriteria,
    fetched_any: bool,
}

fn open_segment(rt: &TableRuntime, meta: SegmentMeta, criteria: EndCriteria) -> Current {
    let segment = Arc::new(ConsumingSegment::new(
        meta.segment_name.clone(),
        PartitionId(meta.partition),
        meta.sequence,
        meta.start_offset.clone(),
        meta.creation_time_ms,
        rt.columns.clone(),
    ));
    rt.data.put_segment(SegmentRef::Consuming(segment.clone()));
    Current {
        segment,
        meta,
        criteria,
        fetched_any: false,
    }
}

fn criteria_for(
    ctx: &IngestContext,
    rt: &TableRuntime,
    meta: &SegmentMeta,
    start_ms: i64,
    control: &PartitionControl,
) -> EndCriteria {
    let threshold = meta.flush_threshold_rows.unwrap_or_else(|| {
        let a = control.autotune.lock().clone();
        row_threshold(&rt.flush, rt.partition_count(), &a, &mut rand::rng())
    });
    EndCriteria::new(
        threshold,
        rt.flush.time_ms,
        meta.creation_time_ms,
        start_ms,
        ctx.max_consuming_bytes,
    )
}

/// Runs one partition until cancelled, paused or stopped by an error.
pub(crate) async fn run(
    ctx: Arc<IngestContext>,
    rt: Arc<TableRuntime>,
    spec_pos: usize,
    meta: SegmentMeta,
    control: Arc<PartitionControl>,
    cancel: CancellationToken,
) {
    let partition = meta.partition;
    // Frozen segments of an earlier run of this partition were committed or dropped with it.
    *control.frozen.lock() = (0, 0);
    let (seal_tx, seal_rx) = mpsc::channel::<SealJob>(MAX_PENDING_SEALS);
    let mut sealer_task = Some(tokio::spawn(sealer(
        ctx.clone(),
        rt.clone(),
        partition,
        control.clone(),
        seal_rx,
        cancel.clone(),
    )));
    run_inner(
        ctx,
        rt.clone(),
        spec_pos,
        meta,
        control,
        cancel,
        seal_tx,
        &mut sealer_task,
    )
    .await;
    // Segments already frozen still commit when the loop stopped on an error; on a stop
    // request the sealer ends at once. Either way nothing of the partition outlives this.
    if let Some(task) = sealer_task.take() {
        if let Ok(Err(e)) = task.await {
            update(&rt, partition, |s| {
                s.state = PartitionState::Error;
                s.last_error = Some(e);
            });
        }
    }
    rt.running.lock().remove(&partition);
}

#[allow(clippy::too_many_arguments)]
async fn run_inner(
    ctx: Arc<IngestContext>,
    rt: Arc<TableRuntime>,
    spec_pos: usize,
    meta: SegmentMeta,
    control: Arc<PartitionControl>,
    cancel: CancellationToken,
    seal_tx: mpsc::Sender<SealJob>,
    sealer_task: &mut Option<tokio::task::JoinHandle<Result<(), String>>>,
) {
    let spec = &rt.streams[spec_pos];
    let partition = meta.partition;
    let stream_partition = PartitionId(partition % PARTITIONS_PER_STREAM);
    let consumer_start_ms = now_ms();
    let mut cur = open_segment(
        &rt,
        meta.clone(),
        criteria_for(&ctx, &rt, &meta, consumer_start_ms, &control),
    );
    let mut seal_tx = Some(seal_tx);
    let mut forces_handled = control.force.load(Ordering::SeqCst);
    // The stream said the partition is closed (a Kinesis shard): commit and end.
    let mut end_of_partition = false;
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
            segments_committed: 0,
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
        // Pause: commit what was consumed, with no next segment, and end the loop.
        let pausing = control.pause.load(Ordering::SeqCst);
        if pausing || end_of_partition {
            let now = now_ms();
            let consumed = now - consumer_start_ms.max(cur.meta.creation_time_ms);
            let job = freeze(
                &cur.segment,
                &cur.meta,
                if pausing {
                    StopReason::ForceCommit
                } else {
                    StopReason::EndOfPartitionGroup
                },
                None,
                consumed,
                cur.criteria.row_threshold,
            );
            let Some(tx) = seal_tx.take() else {
                return stop("internal: sealer channel lost".into());
            };
            control.hold(job.snapshot.bytes);
            let sent = tx.send(job).await;
            drop(tx);
            let res = match sealer_task.take() {
                Some(task) => task.await,
                None => Ok(Err("internal: sealer lost".into())),
            };
            match (sent, res) {
                (Ok(()), Ok(Ok(()))) => {
                    let state = if pausing {
                        PartitionState::Paused
                    } else {
                        PartitionState::Ended
                    };
                    info!(table = %table, partition, segment = %cur.meta.segment_name,
                          offset = %offset, state = ?state, "partition no longer consuming");
                    update(&rt, partition, |s| {
                        s.state = state;
                        s.segment = String::new();
                    });
                    return;
                }
                (_, Ok(Err(e))) => return stop(e),
                _ => return stop("pause: the commit did not finish".into()),
            }
        }
        // End criteria (and force-commit requests).
        {
            let now = now_ms();
            let requested = control.force.load(Ordering::SeqCst);
            let force = requested > forces_handled;
            forces_handled = requested;
            if let Some((seq, t)) = *control.threshold.lock() {
                if seq == cur.meta.sequence {
                    cur.criteria.row_threshold = t.max(1);
                }
            }
            let snap = cur.segment.snapshot();
            let reason = cur.criteria.check(
                snap.num_rows as u64,
                snap.bytes,
                now,
                cur.fetched_any,
                false,
                force,
            );
            if let Some(reason) = reason {
                let consumed = now - consumer_start_ms.max(cur.meta.creation_time_ms);
                let next = in_progress_segment(
                    &rt.raw_name,
                    &rt.name_with_type,
                    partition,
                    cur.meta.sequence + 1,
                    &offset,
                );
                let job = freeze(
                    &cur.segment,
                    &cur.meta,
                    reason,
                    Some(next.clone()),
                    consumed,
                    cur.criteria.row_threshold,
                );
                let Some(tx) = seal_tx.as_ref() else {
                    return stop("internal: sealer channel lost".into());
                };
                control.hold(job.snapshot.bytes);
                let sent = tokio::select! {
                    _ = cancel.cancelled() => return stopped(&rt, partition),
                    r = tx.send(job) => r,
                };
                if sent.is_err() {
                    let why = match sealer_task.take() {
                        Some(task) => match task.await {
                            Ok(Err(e)) => e,
                            _ => "the sealer stopped".into(),
                        },
                        None => "the sealer stopped".into(),
                    };
                    return stop(why);
                }
                info!(table = %table, partition, segment = %cur.meta.segment_name,
                      rows = snap.num_rows, reason = reason.as_str(), end = %offset,
                      "segment ended; sealing");
                let criteria = criteria_for(&ctx, &rt, &next, now, &control);
                cur = open_segment(&rt, next, criteria);
                let name = cur.meta.segment_name.clone();
                update(&rt, partition, |s| s.segment = name);
                // Memory: frozen segments beyond one may hold at most the cap together.
                let cap = ctx.max_consuming_bytes as u64;
                if control.frozen_over(cap) {
                    let (count, bytes) = *control.frozen.lock();
                    info!(table = %table, partition, frozen_segments = count, frozen_bytes = bytes,
                          cap, "waiting for the sealer: frozen segments hold more than the memory cap");
                    while control.frozen_over(cap)
                        && !control.pause.load(Ordering::SeqCst)
                        && sealer_task.as_ref().is_some_and(|t| !t.is_finished())
                    {
                        tokio::select! {
                            _ = cancel.cancelled() => return stopped(&rt, partition),
                            _ = control.sealed.notified() => {}
                            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
                        }
                    }
                }
            }
        }
        let res = tokio::select! {
            _ = cancel.cancelled() => return stopped(&rt, partition),
            _ = control.wake.notified() => continue,
            r = consumer.fetch(&offset, fetch_timeout) => r,
        };
        let now = now_ms();
        let mut batch = match res {
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
                if let Err(e) =
                    cur.segment
                        .append(None, loss.available_from.to_string(), 0, None, now)
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
            end_of_partition = batch.end_of_partition;
            if batch.next_offset != offset {
                // Skipped records only: the offset still moves.
                cur.fetched_any = true;
                if let Err(e) =
                    cur.segment
                        .append(None, batch.next_offset.to_string(), 0, None, now)
                {
                    return stop(format!("publish offset: {e}"));
                }
                offset = batch.next_offset;
                let o = offset.to_string();
                update(&rt, partition, |s| s.current_offset = o);
            }
            continue;
        }

        // A segment ends exactly at its row threshold, as Pinot's does: messages past it
        // are left for the next segment (read again by the next fetch).
        let room = cur
            .criteria
            .row_threshold
            .saturating_sub(cur.segment.snapshot().num_rows as u64);
        if (batch.messages.len() as u64) > room {
            batch.end_of_partition = false;
            let keep = room as usize;
            batch.next_offset = batch.messages[keep].offset.clone();
            batch.messages.truncate(keep);
            if keep == 0 {
                continue;
            }
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
        cur.fetched_any = true;
        if let Err(e) = cur.segment.append(
            Some(rows),
            next_offset.to_string(),
            read,
            stats.latest_timestamp_ms,
            now,
        ) {
            return stop(format!("publish rows: {e}"));
        }
        offset = next_offset;
        end_of_partition = batch.end_of_partition && stats.first_error.is_none();
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
