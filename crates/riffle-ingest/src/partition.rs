//! The consumption loop of one partition, as a struct with one method per step.
//!
//! ```text
//! connect (retrying transient failures)
//! loop:
//!   a sealer failure, a pause or a closed partition?  -> stop (committing what was read)
//!   end criteria reached?  -> freeze the segment, hand it to the sealer, go on at once in
//!                             the next one (the controller names it)
//!   batch = fetch(offset)                       (async I/O)
//!   data loss?             -> stop, or skip the gap under RESUME_FROM_EARLIEST
//!   rows = decode(batch)                        (cpu pool, straight into column builders)
//!   segment.append(rows, batch.next_offset)     (rows and offset published together)
//! ```
//!
//! A force-commit request or a pause wakes the loop out of its fetch. A pause freezes the
//! consuming segment with no next segment, waits for its commit and ends the loop.
//!
//! Errors: transient fetch errors are retried at the same offset with exponential backoff
//! (100 ms to 5 s) and the partition shows `RETRYING`; any other error, a data-loss report
//! from the stream, a permanent sealing failure, or a malformed message under
//! `stopOnDecodeError=true` stops the partition with state `ERROR` and the error (with its
//! stage) in `last_error`. Malformed messages are otherwise dropped, counted and logged at
//! most once per 10 s per partition (in `batch`).

use std::sync::Arc;
use std::time::Duration;

use riffle_catalog::{SegmentMeta, StopReason};
use riffle_common::{now_ms, PartitionId, StreamOffset};
use riffle_decode::{decoder_for, MessageDecoder, SpecialColumns};
use riffle_segment::{BlockBuilder, ConsumingSegment, SegmentRef};
use riffle_stream::{MessageBatch, PartitionConsumer};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::context::ServerContext;
use crate::control::PartitionControl;
use crate::end::EndCriteria;
use crate::sealer::{freeze, SealJob, Sealer, MAX_PENDING_SEALS};
use crate::spec::{StreamSpec, TableSpec, PARTITIONS_PER_STREAM};
use crate::status::{PartitionError, PartitionState, PartitionStatus, Stage};
use crate::table::TableRuntime;

pub(crate) const BACKOFF_MIN: Duration = Duration::from_millis(100);
const BACKOFF_MAX: Duration = Duration::from_secs(5);

/// The row threshold of a consuming segment the controller gave none (Pinot's cap).
const FALLBACK_THRESHOLD: u64 = 5_000_000;

/// Malformed messages are logged at most once per `LOG_EVERY_MS` per partition.
#[derive(Debug, Default)]
pub(crate) struct DecodeErrorLog {
    pub(crate) last_log_ms: i64,
    pub(crate) suppressed: u64,
    /// The wait before the next try while a decoder's schema source is out (zero when
    /// it is not).
    pub(crate) outage_backoff: Duration,
}

/// Why a loop ended.
pub(crate) enum Exit {
    /// The table stopped.
    Cancelled,
    /// A pause committed the consuming segment.
    Paused,
    /// The stream closed the partition; its last segment committed.
    Ended,
    /// An error that needs a person.
    Failed(PartitionError),
}

/// The next step, or why the loop ends.
pub(crate) type Flow<T = ()> = Result<T, Exit>;

/// The consuming segment of a partition and its limits.
pub(crate) struct Current {
    pub(crate) segment: Arc<ConsumingSegment>,
    /// The segment's dead letters (a segment of the dead-letter table of the same name).
    pub(crate) dead: Option<Arc<ConsumingSegment>>,
    pub(crate) meta: SegmentMeta,
    pub(crate) criteria: EndCriteria,
    pub(crate) fetched_any: bool,
}

/// The partition's sealer: the channel to it and its task.
struct SealerHandle {
    tx: Option<mpsc::Sender<SealJob>>,
    task: Option<JoinHandle<Result<(), PartitionError>>>,
}

impl SealerHandle {
    /// The sealer's own error once it has stopped (its channel closed).
    async fn stopped_with(&mut self) -> PartitionError {
        let why = match self.task.take() {
            Some(task) => match task.await {
                Ok(Err(e)) => return e,
                Ok(Ok(())) => "the sealer stopped".to_string(),
                Err(e) => format!("the sealer failed: {e}"),
            },
            None => "the sealer stopped".to_string(),
        };
        PartitionError::new(Stage::Internal, why, false)
    }
}

/// One partition's loop.
pub(crate) struct PartitionLoop {
    pub(crate) ctx: Arc<ServerContext>,
    pub(crate) table: Arc<TableRuntime>,
    pub(crate) stream: StreamSpec,
    pub(crate) partition: u32,
    pub(crate) control: Arc<PartitionControl>,
    pub(crate) cancel: CancellationToken,
    pub(crate) cur: Current,
    pub(crate) offset: StreamOffset,
    pub(crate) decoder: Option<Box<dyn MessageDecoder>>,
    pub(crate) builder: Option<BlockBuilder>,
    pub(crate) special: SpecialColumns,
    pub(crate) decode_log: DecodeErrorLog,
    /// The cpu pool's affinity key of this partition's decoding.
    pub(crate) affinity: u64,
    sealer: SealerHandle,
    consumer_start_ms: i64,
    forces_handled: u64,
    pub(crate) end_of_partition: bool,
    /// The table's spec as this loop follows it (decoder, builder, transforms, segment
    /// columns), and its version.
    pub(crate) spec: Arc<TableSpec>,
    spec_version: u64,
}

impl PartitionLoop {
    /// A loop for the consuming segment `meta`, with its sealer started.
    pub(crate) fn new(
        ctx: Arc<ServerContext>,
        table: Arc<TableRuntime>,
        stream: StreamSpec,
        meta: SegmentMeta,
        cancel: CancellationToken,
    ) -> PartitionLoop {
        let partition = meta.partition;
        let control = table.control(partition);
        // Frozen segments of an earlier run of this partition were committed or dropped
        // with it; so was its failure.
        control.reset_frozen();
        control.clear_failure();
        let (tx, rx) = mpsc::channel::<SealJob>(MAX_PENDING_SEALS);
        let sealer = Sealer {
            ctx: ctx.clone(),
            table: table.clone(),
            partition,
            control: control.clone(),
            cancel: cancel.clone(),
        };
        let task = tokio::spawn(sealer.run(rx));
        let consumer_start_ms = now_ms();
        let offset = meta.start_offset.clone();
        table.status.set(PartitionStatus::starting(
            partition,
            meta.segment_name.clone(),
            offset.clone(),
        ));
        let (spec, spec_version) = table.spec_version();
        let (target, extras) = spec.decode_target();
        let special = SpecialColumns::new(&target, stream.config.metadata_populate);
        let builder = Some(BlockBuilder::with_extras(target, 1024, extras.extras.len()));
        let forces_handled = control.forces();
        let cur = open_segment(&ctx, &table, &spec, meta, consumer_start_ms);
        let affinity = {
            use std::hash::{Hash, Hasher};
            let mut h = std::collections::hash_map::DefaultHasher::new();
            (table.name.to_string(), partition).hash(&mut h);
            h.finish()
        };
        PartitionLoop {
            ctx,
            table,
            stream,
            partition,
            control,
            cancel,
            cur,
            offset,
            decoder: None,
            builder,
            special,
            decode_log: Default::default(),
            affinity,
            sealer: SealerHandle {
                tx: Some(tx),
                task: Some(task),
            },
            consumer_start_ms,
            forces_handled,
            spec: spec.clone(),
            spec_version,
            end_of_partition: false,
        }
    }

    /// Runs until cancelled, paused, ended or stopped by an error, then lets the sealer
    /// finish what was frozen.
    pub(crate) async fn run(mut self) {
        let exit = match self.connect().await {
            Ok(consumer) => self.consume(consumer).await,
            Err(exit) => exit,
        };
        let (table, p) = (self.table.clone(), self.partition);
        match exit {
            Exit::Cancelled => table
                .status
                .update(p, |s| s.state = PartitionState::Stopped),
            Exit::Paused | Exit::Ended => {
                let state = if matches!(exit, Exit::Paused) {
                    PartitionState::Paused
                } else {
                    PartitionState::Ended
                };
                info!(table = %table.name, partition = p, segment = %self.cur.meta.segment_name,
                      offset = %self.offset, state = ?state, "partition no longer consuming");
                table.status.update(p, |s| {
                    s.state = state;
                    s.segment = String::new();
                });
            }
            Exit::Failed(e) => {
                error!(table = %table.name, partition = p, stage = ?e.stage, reason = %e, "partition stopped");
                table.status.error(
                    p,
                    PartitionError {
                        retrying: false,
                        ..e
                    },
                );
            }
        }
        // Segments already frozen still commit when the loop stopped on an error; on a stop
        // request the sealer ends at once. Either way nothing of the partition outlives this.
        self.sealer.tx = None;
        if let Some(task) = self.sealer.task.take() {
            if let Ok(Err(e)) = task.await {
                table.status.error(p, e);
            }
        }
        table.mark_ended(p);
    }

    /// Creates the decoder and the stream consumer, retrying transient failures.
    async fn connect(&mut self) -> Flow<Box<dyn PartitionConsumer>> {
        let spec = self.spec.clone();
        let (target, extras) = spec.decode_target();
        let decoder = decoder_for(&self.stream.config, &target, extras).map_err(|e| {
            Exit::Failed(PartitionError::new(
                Stage::Connect,
                format!("decoder: {e}"),
                false,
            ))
        })?;
        self.decoder = Some(decoder);
        let sp = PartitionId(self.partition % PARTITIONS_PER_STREAM);
        let mut backoff = BACKOFF_MIN;
        loop {
            let attempt = self.stream.plugin.partition_consumer(
                &self.stream.config,
                &self.ctx.stream_ctx,
                sp,
            );
            let res = tokio::select! {
                _ = self.cancel.cancelled() => return Err(Exit::Cancelled),
                r = attempt => r,
            };
            match res {
                Ok(c) => {
                    info!(table = %self.table.name, partition = self.partition,
                          segment = %self.cur.meta.segment_name, offset = %self.offset, "partition consuming");
                    self.table
                        .status
                        .update(self.partition, |s| s.state = PartitionState::Consuming);
                    return Ok(c);
                }
                Err(e) if e.is_retryable() => {
                    warn!(table = %self.table.name, partition = self.partition, error = %e,
                          "cannot create consumer, retrying");
                    let e = PartitionError::new(Stage::Connect, riffle_common::chain(&e), true);
                    self.table.status.error(self.partition, e);
                    backoff_sleep(&self.cancel, &mut backoff).await?;
                }
                Err(e) => {
                    return Err(Exit::Failed(PartitionError::new(
                        Stage::Connect,
                        format!("create consumer: {}", riffle_common::chain(&e)),
                        false,
                    )))
                }
            }
        }
    }

    /// The loop proper.
    async fn consume(&mut self, mut consumer: Box<dyn PartitionConsumer>) -> Exit {
        let mut backoff = BACKOFF_MIN;
        loop {
            if let Err(exit) = self.step(consumer.as_mut(), &mut backoff).await {
                return exit;
            }
        }
    }

    /// One turn of the loop.
    async fn step(&mut self, consumer: &mut dyn PartitionConsumer, backoff: &mut Duration) -> Flow {
        self.stop_if_asked().await?;
        self.follow_spec()?;
        self.end_segment_if_due().await?;
        let Some(batch) = self.fetch(consumer, backoff).await? else {
            return Ok(());
        };
        self.publish(batch).await
    }

    /// A changed spec (a column added to the schema, new transforms): the decoder, the
    /// block builder and the consuming segment move to it between two batches, without a
    /// restart; the rows so far read the new columns' defaults.
    pub(crate) fn follow_spec(&mut self) -> Flow {
        let (spec, version) = self.table.spec_version();
        if version == self.spec_version {
            return Ok(());
        }
        let (target, extras) = spec.decode_target();
        let decoder = decoder_for(&self.stream.config, &target, extras).map_err(|e| {
            Exit::Failed(PartitionError::new(
                Stage::Connect,
                format!("decoder: {e}"),
                false,
            ))
        })?;
        self.cur.segment.evolve(spec.columns.clone()).map_err(|e| {
            Exit::Failed(PartitionError::new(
                Stage::Internal,
                format!("move the consuming segment to the new columns: {e}"),
                false,
            ))
        })?;
        self.special = SpecialColumns::new(&target, self.stream.config.metadata_populate);
        self.builder = Some(BlockBuilder::with_extras(target, 1024, extras.extras.len()));
        self.decoder = Some(decoder);
        self.spec = spec.clone();
        self.spec_version = version;
        info!(table = %self.table.name, partition = self.partition, segment = %self.cur.meta.segment_name,
              "following the table's new columns and transforms");
        Ok(())
    }

    /// A sealer failure stops the loop; a pause or a closed partition commits the
    /// consuming segment (with no next one) and ends it.
    async fn stop_if_asked(&mut self) -> Flow {
        if let Some(e) = self.control.failure() {
            return Err(Exit::Failed(e));
        }
        let pausing = self.control.pausing();
        if !pausing && !self.end_of_partition {
            return Ok(());
        }
        let reason = if pausing {
            StopReason::ForceCommit
        } else {
            StopReason::EndOfPartitionGroup
        };
        let job = self.freeze(reason, None, now_ms());
        self.control.hold(job.snapshot.bytes);
        let sent = match self.sealer.tx.take() {
            Some(tx) => tx.send(job).await.is_ok(),
            None => false,
        };
        let res = match self.sealer.task.take() {
            Some(task) => task.await,
            None => Ok(Ok(())),
        };
        match (sent, res) {
            (true, Ok(Ok(()))) if pausing => Err(Exit::Paused),
            (true, Ok(Ok(()))) => Err(Exit::Ended),
            (_, Ok(Err(e))) => Err(Exit::Failed(e)),
            _ => Err(Exit::Failed(PartitionError::new(
                Stage::Commit,
                "pause: the commit did not finish",
                false,
            ))),
        }
    }

    /// Checks the end criteria (and force-commit requests); when the segment ends, freezes
    /// it for the sealer and goes on in the next one.
    async fn end_segment_if_due(&mut self) -> Flow {
        let now = now_ms();
        let requested = self.control.forces();
        let force = requested > self.forces_handled;
        self.forces_handled = requested;
        if let Some(t) = self.control.threshold_for(self.cur.meta.sequence) {
            self.cur.criteria.row_threshold = t.max(1);
        }
        let snap = self.cur.segment.snapshot();
        let fetched_any = self.cur.fetched_any;
        let reason = self.cur.criteria.check(
            snap.num_rows as u64,
            snap.bytes,
            now,
            fetched_any,
            false,
            force,
        );
        let Some(reason) = reason else {
            return Ok(());
        };
        let next = self
            .ctx
            .committer
            .next_segment(&self.cur.meta, &self.offset)
            .await
            .map_err(|e| {
                Exit::Failed(PartitionError::new(
                    Stage::Commit,
                    format!("plan the next segment: {e}"),
                    false,
                ))
            })?;
        let job = self.freeze(reason, Some(next.clone()), now);
        self.control.hold(job.snapshot.bytes);
        let Some(tx) = self.sealer.tx.as_ref() else {
            return Err(Exit::Failed(PartitionError::new(
                Stage::Internal,
                "sealer channel lost",
                false,
            )));
        };
        let sent = tokio::select! {
            _ = self.cancel.cancelled() => return Err(Exit::Cancelled),
            r = tx.send(job) => r,
        };
        if sent.is_err() {
            return Err(Exit::Failed(self.sealer.stopped_with().await));
        }
        info!(table = %self.table.name, partition = self.partition, segment = %self.cur.meta.segment_name,
              rows = snap.num_rows, reason = reason.as_str(), end = %self.offset, "segment ended; sealing");
        self.cur = open_segment(&self.ctx, &self.table, &self.spec, next, now);
        let name = self.cur.meta.segment_name.clone();
        self.table
            .status
            .update(self.partition, |s| s.segment = name);
        self.wait_for_sealer_memory().await
    }

    /// Frozen segments beyond one may hold at most the memory cap together: waits for the
    /// sealer until they do (or a pause or failure is asked).
    async fn wait_for_sealer_memory(&mut self) -> Flow {
        let cap = self.ctx.max_consuming_bytes as u64;
        let frozen = self.control.frozen();
        if !frozen.over(cap) {
            return Ok(());
        }
        info!(table = %self.table.name, partition = self.partition, frozen_segments = frozen.count,
              frozen_bytes = frozen.bytes, cap, "waiting for the sealer: frozen segments hold more than the memory cap");
        while self.control.frozen().over(cap)
            && !self.control.pausing()
            && self.control.failure().is_none()
            && self.sealer.task.as_ref().is_some_and(|t| !t.is_finished())
        {
            tokio::select! {
                _ = self.cancel.cancelled() => return Err(Exit::Cancelled),
                _ = self.control.wait_frozen_within(cap) => {}
            }
        }
        Ok(())
    }

    /// Freezes the consuming segment into a seal job.
    fn freeze(&self, reason: StopReason, next: Option<SegmentMeta>, now: i64) -> SealJob {
        let consumed = now - self.consumer_start_ms.max(self.cur.meta.creation_time_ms);
        let mut job = freeze(
            self.cur.segment.snapshot(),
            &self.cur.meta,
            reason,
            next,
            consumed,
            self.cur.criteria.row_threshold,
        );
        job.dead = self.cur.dead.as_ref().map(|d| d.snapshot());
        job
    }

    /// One fetch: a batch, `None` after a retryable failure (already waited for), or the
    /// end of the loop.
    async fn fetch(
        &mut self,
        consumer: &mut dyn PartitionConsumer,
        backoff: &mut Duration,
    ) -> Flow<Option<MessageBatch>> {
        let timeout = Duration::from_millis(self.stream.config.fetch_timeout_ms.clamp(1, 60_000));
        let res = tokio::select! {
            _ = self.cancel.cancelled() => return Err(Exit::Cancelled),
            _ = self.control.woken() => return Ok(None),
            r = consumer.fetch(&self.offset, timeout) => r,
        };
        let now = now_ms();
        match res {
            Ok(batch) => {
                *backoff = BACKOFF_MIN;
                Ok(Some(batch))
            }
            Err(e) if e.is_retryable() => {
                warn!(table = %self.table.name, partition = self.partition, offset = %self.offset,
                      error = %e, "fetch failed, retrying");
                let msg = format!(
                    "fetch at offset {}: {}",
                    self.offset,
                    riffle_common::chain(&e)
                );
                self.table
                    .status
                    .error(self.partition, PartitionError::new(Stage::Fetch, msg, true));
                self.table
                    .status
                    .update(self.partition, |s| s.last_fetch_ms = now);
                backoff_sleep(&self.cancel, backoff).await?;
                Ok(None)
            }
            Err(e) => Err(Exit::Failed(PartitionError::new(
                Stage::Fetch,
                format!(
                    "fetch at offset {}: {}",
                    self.offset,
                    riffle_common::chain(&e)
                ),
                false,
            ))),
        }
    }
}

/// Sleeps for the backoff (doubling it), unless the table stops.
pub(crate) async fn backoff_sleep(cancel: &CancellationToken, backoff: &mut Duration) -> Flow {
    tokio::select! {
        _ = cancel.cancelled() => return Err(Exit::Cancelled),
        _ = tokio::time::sleep(*backoff) => {}
    }
    *backoff = (*backoff * 2).min(BACKOFF_MAX);
    Ok(())
}

/// A new consuming segment for `meta`, registered for queries, with its end criteria.
fn open_segment(
    ctx: &ServerContext,
    table: &TableRuntime,
    spec: &TableSpec,
    meta: SegmentMeta,
    start_ms: i64,
) -> Current {
    let segment = Arc::new(ConsumingSegment::new(
        meta.segment_name.clone(),
        PartitionId(meta.partition),
        meta.sequence,
        meta.start_offset.clone(),
        meta.creation_time_ms,
        spec.columns.clone(),
    ));
    table
        .data
        .put_segment(SegmentRef::Consuming(segment.clone()));
    let dead = table.dead.as_ref().map(|d| {
        let seg = Arc::new(ConsumingSegment::new(
            meta.segment_name.clone(),
            PartitionId(meta.partition),
            meta.sequence,
            meta.start_offset.clone(),
            meta.creation_time_ms,
            d.columns(),
        ));
        d.put_segment(SegmentRef::Consuming(seg.clone()));
        seg
    });
    let threshold = meta.flush_threshold_rows.unwrap_or_else(|| {
        warn!(table = %table.name, segment = %meta.segment_name,
              "the consuming segment has no row threshold; using {FALLBACK_THRESHOLD}");
        FALLBACK_THRESHOLD
    });
    let criteria = EndCriteria::new(
        threshold,
        spec.flush.time_ms,
        meta.creation_time_ms,
        start_ms,
        ctx.max_consuming_bytes,
    );
    Current {
        segment,
        dead,
        meta,
        criteria,
        fetched_any: false,
    }
}
