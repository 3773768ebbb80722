//! A partition's sealer: frozen consuming segments, in order, through write -> open ->
//! upload -> commit -> swap.
//!
//! ```text
//! partition loop                         sealer (one per partition, in order)
//!   end criteria reached                    write the sealed file (cpu pool)
//!   -> freeze the consuming segment  --->   open it (MMAP or HEAP), check its CRC
//!   -> go on at once in the next            upload it to the deep store
//!      segment at `end`                     commit through the SegmentCommitter: ONE
//!   (rows of both stay queryable)             catalog transaction, DONE [start, end) +
//!                                             next IN_PROGRESS at `end`
//!                                           swap: queries read the sealed copy
//! ```
//!
//! A crash anywhere before the catalog transaction leaves the previous state (the partition
//! re-reads from the IN_PROGRESS segment's start offset; the uploaded file is an orphan
//! removed at the next start); after it, the new one.
//!
//! A failed step is retried with backoff at the same segment when its kind says retrying
//! may help ([`riffle_common::ErrorKind::is_retryable`]: the deep store or the disk), with
//! the reason on the partition; the frozen rows stay queryable meanwhile. Any other failure
//! stops the sealer and, through [`PartitionControl::fail`], the partition, with the error
//! shown on it.

use std::sync::Arc;
use std::time::Duration;

use riffle_catalog::{SegmentMeta, StopReason};
use riffle_common::{chain, failpoint, ClassifyError, ErrorKind};
use riffle_segment::sealed::{write_segment, SealedSegment};
use riffle_segment::{ConsumingSnapshot, SegmentError, TableColumns};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::commit::{SealedFacts, SegmentCommit};
use crate::context::ServerContext;
use crate::control::PartitionControl;
use crate::status::{PartitionError, Stage};
use crate::table::TableRuntime;

/// Frozen segments a partition may queue for sealing before consumption waits.
pub const MAX_PENDING_SEALS: usize = 2;

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// One frozen consuming segment to seal and commit.
pub(crate) struct SealJob {
    pub(crate) snapshot: Arc<ConsumingSnapshot>,
    pub(crate) meta: SegmentMeta,
    pub(crate) reason: StopReason,
    pub(crate) next: Option<SegmentMeta>,
    pub(crate) consumed_ms: i64,
    pub(crate) threshold: u64,
    /// The segment's dead letters as they were when it froze.
    pub(crate) dead: Option<Arc<ConsumingSnapshot>>,
}

/// A failed step: its kind (which decides the retry) and what happened.
#[derive(Debug)]
struct StepError {
    kind: ErrorKind,
    message: String,
}

impl StepError {
    fn of<E: ClassifyError + std::error::Error + 'static>(step: &str, e: E) -> StepError {
        StepError {
            kind: e.error_kind(),
            message: format!("{step}: {}", chain(&e)),
        }
    }
}

/// One partition's sealer.
pub(crate) struct Sealer {
    pub(crate) ctx: Arc<ServerContext>,
    pub(crate) table: Arc<TableRuntime>,
    pub(crate) partition: u32,
    pub(crate) control: Arc<PartitionControl>,
    pub(crate) cancel: CancellationToken,
}

impl Sealer {
    /// Runs until the loop drops its sender (after the last job) or the table stops.
    /// Returns the error that stopped it, if a commit failed for good.
    pub(crate) async fn run(self, mut rx: mpsc::Receiver<SealJob>) -> Result<(), PartitionError> {
        loop {
            let job = tokio::select! {
                _ = self.cancel.cancelled() => return Ok(()),
                j = rx.recv() => match j { Some(j) => j, None => return Ok(()) },
            };
            if let Err(e) = self.commit_with_retries(&job).await {
                let e = PartitionError::new(Stage::Commit, e, false);
                error!(table = %self.table.name, partition = self.partition,
                       segment = %job.meta.segment_name, error = %e, "commit failed; partition stopped");
                self.table.status.error(self.partition, e.clone());
                self.control.fail(e.clone());
                return Err(e);
            }
        }
    }

    /// Seals and commits one job, retrying what may pass. `Err` is a permanent failure,
    /// `Ok` also when the table stopped meanwhile.
    async fn commit_with_retries(&self, job: &SealJob) -> Result<(), String> {
        let mut backoff = BACKOFF_MIN;
        loop {
            match self.seal_and_commit(job).await {
                Ok(()) => {
                    self.control.release(job.snapshot.bytes);
                    self.table.status.update(self.partition, |s| {
                        s.segments_committed += 1;
                        if s.last_error
                            .as_ref()
                            .is_some_and(|e| e.stage == Stage::Commit)
                        {
                            s.last_error = None;
                        }
                    });
                    return Ok(());
                }
                Err(e) if e.kind.is_retryable() => {
                    warn!(table = %self.table.name, partition = self.partition,
                          segment = %job.meta.segment_name, error = %e.message, "commit failed, retrying");
                    let msg = format!(
                        "commit of segment {} failed (retrying): {}",
                        job.meta.segment_name, e.message
                    );
                    self.table.status.update(self.partition, |s| {
                        s.last_error = Some(PartitionError::new(Stage::Commit, msg, true));
                    });
                    tokio::select! {
                        _ = self.cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => {
                    return Err(format!(
                        "commit of segment {} failed: {}",
                        job.meta.segment_name, e.message
                    ))
                }
            }
        }
    }

    async fn seal_and_commit(&self, job: &SealJob) -> Result<(), StepError> {
        let name = job.meta.segment_name.clone();
        let rows = job.snapshot.num_rows as u64;
        let (sealed, facts) = if rows > 0 {
            let (facts, seg, columns) = self.seal(job).await?;
            (Some((seg, columns)), Some(facts))
        } else {
            (None, None)
        };
        let outcome = self
            .ctx
            .committer
            .commit(SegmentCommit {
                segment: job.meta.clone(),
                end_offset: job.snapshot.next_offset.clone(),
                rows,
                sealed: facts,
                reason: job.reason,
                consumed_ms: job.consumed_ms,
                threshold: job.threshold,
                next: job.next.clone(),
                dead_letters: dead_letters_json(job)?,
            })
            .await
            .map_err(|e| StepError::of("catalog commit", e))?;
        failpoint("seal.after_commit");
        if let (Some(n), Some(t)) = (&job.next, outcome.next_threshold) {
            self.control.set_threshold(n.sequence, t);
        }
        match sealed {
            Some((seg, columns)) => {
                // Committed: a failure to open it again (columns changed meanwhile) leaves
                // its rows to the restart, which loads it.
                let mode = self.table.spec().load_mode;
                if let Err(e) = self.table.data.swap_sealed(&name, seg, &columns, mode) {
                    warn!(table = %self.table.name, segment = %name, error = %e,
                          "the committed segment could not be opened with the table's new columns");
                    self.table.data.remove_segment(&name);
                    self.table.data.set_unavailable(&name, e.to_string());
                }
            }
            None => {
                self.table.data.remove_segment(&name);
            }
        }
        info!(table = %self.table.name, segment = %name, rows, reason = job.reason.as_str(),
              end = %job.snapshot.next_offset, "segment committed");
        Ok(())
    }

    /// Writes, opens and uploads the segment file; its facts for the commit.
    async fn seal(
        &self,
        job: &SealJob,
    ) -> Result<(SealedFacts, SealedSegment, Arc<TableColumns>), StepError> {
        let name = job.meta.segment_name.clone();
        let path = self.table.segment_path(&self.ctx, &name);
        let spec = self.table.spec();
        let (snapshot, columns) = (job.snapshot.clone(), self.table.data.columns());
        let (opts, mode) = (spec.seal.clone(), spec.load_mode);
        let p = path.clone();
        let opened_with = columns.clone();
        let rollup = spec.ingest.as_ref().and_then(|p| p.rollup().cloned());
        let (file, seg) = self
            .ctx
            .cpu
            .run(move || {
                if let Some(dir) = p.parent() {
                    std::fs::create_dir_all(dir).map_err(|e| SegmentError::Io {
                        segment: name.clone(),
                        reason: format!("create {}: {e}", dir.display()),
                    })?;
                }
                // Rows frozen before a column was added get its default.
                let defaults = columns.default_values()?;
                let batches = snapshot
                    .batches
                    .iter()
                    .map(|b| riffle_segment::widen(b, &columns, &defaults))
                    .collect::<Result<Vec<_>, _>>()?;
                // A rollup merges the whole segment's rows once more (blocks were merged
                // one by one as they came).
                let batches = match &rollup {
                    Some(r) if batches.len() > 1 => vec![r
                        .merge(&batches, &columns)
                        .map_err(|e| SegmentError::internal(format!("rollup: {e}")))?],
                    _ => batches,
                };
                let file = write_segment(&p, &name, &columns, &batches, &opts)?;
                let seg = SealedSegment::open(&p, &name, columns, mode)?;
                // What was read back is what was written (the CRC the catalog will keep).
                if seg.file_crc() != file.crc {
                    return Err(SegmentError::Corrupt {
                        segment: name.clone(),
                        reason: format!(
                            "{} reads back with CRC {}, written with {}",
                            p.display(),
                            seg.file_crc(),
                            file.crc
                        ),
                    });
                }
                Ok((file, seg))
            })
            .await
            .map_err(|e| StepError::of("seal", e))?
            .map_err(|e| StepError::of("seal", e))?;
        failpoint("seal.after_write");
        let uri = self
            .ctx
            .deep_store
            .upload(&path, &self.table.name.to_string(), &job.meta.segment_name)
            .await
            .map_err(|e| StepError::of("upload", e))?;
        failpoint("seal.after_upload");
        let facts = SealedFacts {
            crc: file.crc,
            download_url: uri,
            size_bytes: file.size_bytes,
            start_time_ms: file.info.start_time_ms,
            end_time_ms: file.info.end_time_ms,
        };
        Ok((facts, seg, opened_with))
    }
}

/// Freezes a consuming segment into a job: its final rows and the offset it ends at.
pub(crate) fn freeze(
    snapshot: Arc<ConsumingSnapshot>,
    meta: &SegmentMeta,
    reason: StopReason,
    next: Option<SegmentMeta>,
    consumed_ms: i64,
    threshold: u64,
) -> SealJob {
    SealJob {
        snapshot,
        meta: meta.clone(),
        reason,
        next,
        consumed_ms,
        threshold,
        dead: None,
    }
}

/// A frozen segment's dead letters as the catalog keeps them, if it has any.
fn dead_letters_json(job: &SealJob) -> Result<Option<String>, StepError> {
    let Some(snap) = job.dead.as_ref().filter(|s| s.num_rows > 0) else {
        return Ok(None);
    };
    let letters = crate::dead_letter::from_batches(&snap.batches);
    serde_json::to_string(&letters)
        .map(Some)
        .map_err(|e| StepError {
            kind: ErrorKind::Internal,
            message: format!("dead letters: {e}"),
        })
}
