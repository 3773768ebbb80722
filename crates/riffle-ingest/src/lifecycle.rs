//! The life of a consuming segment after its end criteria: seal, upload, commit, swap; and
//! the loading of committed segments when a table starts.
//!
//! ```text
//! partition loop                         sealer (one per partition, in order)
//!   end criteria reached                    write the sealed file (blocking pool)
//!   -> freeze the consuming segment  --->   open it (MMAP or HEAP)
//!   -> start the next consuming             upload it to the deep store
//!      segment at `end` at once             ONE catalog transaction: DONE [start, end)
//!   (rows of both stay queryable)             + next IN_PROGRESS at `end`
//!                                           swap: queries read the sealed copy
//! ```
//!
//! Consumption never waits for a seal unless [`MAX_PENDING_SEALS`] frozen segments are
//! queued, or more than one frozen segment holds more than the memory cap of a consuming
//! segment ([`IngestContext::max_consuming_bytes`]) together: then it waits for the sealer.
//! A partition thus holds at most about twice the cap (its frozen segments and its
//! consuming one) however slow the deep store is. A crash anywhere before the catalog
//! transaction leaves the previous state (the partition re-reads from the IN_PROGRESS
//! segment's start offset; the uploaded file is an orphan removed at the next start); after
//! it, the new one (the sealed segment is loaded from disk or the deep store).
//!
//! Failures of one seal (disk full, deep store unreachable) are retried with backoff at the
//! same segment, with the reason in the partition's `last_error`; the frozen rows stay
//! queryable meanwhile.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riffle_catalog::{SegmentMeta, SegmentStatus};
use riffle_common::{failpoint, now_ms, ClassifyError, ErrorCode};
use riffle_segment::sealed::{write_segment, SealedSegment};
use riffle_segment::{ConsumingSegment, ConsumingSnapshot, SegmentRef};
use serde_json::{json, Value};
use tokio::sync::{mpsc, Notify};
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

use crate::flush::{row_threshold, Autotune, StopReason};
use crate::{IngestContext, TableRuntime};

/// Frozen segments a partition may queue for sealing before consumption waits.
pub const MAX_PENDING_SEALS: usize = 2;

const BACKOFF_MIN: Duration = Duration::from_millis(200);
const BACKOFF_MAX: Duration = Duration::from_secs(10);

/// Catalog keys of a committed segment (in [`SegmentMeta::extra`]).
pub mod keys {
    /// CRC32 of the sealed file, as a decimal string (Pinot's `segment.crc`).
    pub const CRC: &str = "crc";
    /// Where the deep store keeps the file (Pinot's `segment.download.url`).
    pub const DOWNLOAD_URL: &str = "downloadUrl";
    /// File size in bytes.
    pub const SIZE_BYTES: &str = "sizeBytes";
    /// Smallest time-column value (epoch ms).
    pub const START_TIME_MS: &str = "startTimeMs";
    /// Largest time-column value (epoch ms).
    pub const END_TIME_MS: &str = "endTimeMs";
    /// Why the segment ended.
    pub const STOP_REASON: &str = "stopReason";
    /// What autotune knew after this segment.
    pub const AUTOTUNE: &str = "autotune";
    /// When the segment was committed (epoch ms).
    pub const COMMIT_TIME_MS: &str = "commitTimeMs";
}

/// What the API asks of one partition's loop.
#[derive(Debug, Default)]
pub struct PartitionControl {
    /// Force-commit requests so far; the loop seals when this exceeds what it handled.
    pub force: AtomicU64,
    /// Commit the consuming segment and stop (pause).
    pub pause: AtomicBool,
    /// Wakes the loop out of a fetch.
    pub wake: Notify,
    /// The row threshold the commit step chose for a segment: (sequence, rows).
    pub threshold: Mutex<Option<(u32, u64)>>,
    /// What autotune knows (updated on each commit).
    pub autotune: Mutex<Autotune>,
    /// Frozen segments not yet swapped for their sealed copy: (count, bytes held).
    pub frozen: Mutex<(u64, u64)>,
    /// Signalled each time the sealer has swapped a segment.
    pub sealed: Notify,
}

impl PartitionControl {
    /// Counts a frozen segment of `bytes` as held until [`PartitionControl::release`].
    pub(crate) fn hold(&self, bytes: usize) {
        let mut f = self.frozen.lock();
        f.0 += 1;
        f.1 += bytes as u64;
    }

    /// The sealer swapped a frozen segment of `bytes`: no longer held; wakes a waiting loop.
    pub(crate) fn release(&self, bytes: usize) {
        {
            let mut f = self.frozen.lock();
            f.0 = f.0.saturating_sub(1);
            f.1 = f.1.saturating_sub(bytes as u64);
        }
        self.sealed.notify_waiters();
    }

    /// Whether consumption must wait for the sealer: more than one frozen segment, holding
    /// more than `cap` bytes together.
    pub fn frozen_over(&self, cap: u64) -> bool {
        let (count, bytes) = *self.frozen.lock();
        count > 1 && bytes > cap
    }
}

/// One frozen consuming segment to seal and commit.
pub(crate) struct SealJob {
    pub(crate) snapshot: Arc<ConsumingSnapshot>,
    pub(crate) meta: SegmentMeta,
    pub(crate) reason: StopReason,
    pub(crate) next: Option<SegmentMeta>,
    pub(crate) consumed_ms: i64,
    pub(crate) threshold: u64,
}

/// A failed seal or commit step.
#[derive(Debug)]
struct StepError {
    message: String,
    retryable: bool,
}

impl StepError {
    fn of(step: &str, e: impl std::fmt::Display + ClassifyError) -> StepError {
        StepError {
            retryable: e.is_retryable()
                || !matches!(
                    e.code(),
                    ErrorCode::Conflict | ErrorCode::NotFound | ErrorCode::BadRequest
                ),
            message: format!("{step}: {e}"),
        }
    }

    fn fatal(message: String) -> StepError {
        StepError {
            message,
            retryable: false,
        }
    }
}

/// Where a table's sealed segment files live on this server.
pub fn table_dir(ctx: &IngestContext, name_with_type: &str) -> PathBuf {
    ctx.segments_dir.join(name_with_type)
}

/// A sealed segment's local file.
pub fn segment_path(ctx: &IngestContext, name_with_type: &str, segment: &str) -> PathBuf {
    table_dir(ctx, name_with_type).join(format!("{segment}.seg"))
}

/// Runs a partition's sealer until the loop drops its sender (after the last job) or the
/// table stops. Returns an error message if a commit failed for good.
pub(crate) async fn sealer(
    ctx: Arc<IngestContext>,
    rt: Arc<TableRuntime>,
    partition: u32,
    control: Arc<PartitionControl>,
    mut rx: mpsc::Receiver<SealJob>,
    cancel: CancellationToken,
) -> Result<(), String> {
    loop {
        let job = tokio::select! {
            _ = cancel.cancelled() => return Ok(()),
            j = rx.recv() => match j { Some(j) => j, None => return Ok(()) },
        };
        let mut backoff = BACKOFF_MIN;
        loop {
            match commit_job(&ctx, &rt, &control, &job).await {
                Ok(()) => {
                    control.release(job.snapshot.bytes);
                    crate::partition::update(&rt, partition, |s| {
                        s.segments_committed += 1;
                        if s.last_error
                            .as_deref()
                            .is_some_and(|e| e.starts_with("commit"))
                        {
                            s.last_error = None;
                        }
                    });
                    break;
                }
                Err(e) if e.retryable => {
                    warn!(table = %rt.name_with_type, partition, segment = %job.meta.segment_name,
                          error = %e.message, "commit failed, retrying");
                    let msg = format!(
                        "commit of segment {} failed (retrying): {}",
                        job.meta.segment_name, e.message
                    );
                    crate::partition::update(&rt, partition, |s| s.last_error = Some(msg));
                    tokio::select! {
                        _ = cancel.cancelled() => return Ok(()),
                        _ = tokio::time::sleep(backoff) => {}
                    }
                    backoff = (backoff * 2).min(BACKOFF_MAX);
                }
                Err(e) => {
                    error!(table = %rt.name_with_type, partition, segment = %job.meta.segment_name,
                           error = %e.message, "commit failed");
                    return Err(format!(
                        "commit of segment {} failed: {}",
                        job.meta.segment_name, e.message
                    ));
                }
            }
        }
    }
}

async fn commit_job(
    ctx: &Arc<IngestContext>,
    rt: &Arc<TableRuntime>,
    control: &PartitionControl,
    job: &SealJob,
) -> Result<(), StepError> {
    let name = job.meta.segment_name.clone();
    let nwt = rt.name_with_type.clone();
    let rows = job.snapshot.num_rows as u64;
    let mut done = job.meta.clone();
    done.status = SegmentStatus::Done;
    done.end_offset = Some(job.snapshot.next_offset.clone());
    done.total_docs = Some(rows);
    done.flush_threshold_rows = Some(job.threshold);
    done.extra
        .insert(keys::STOP_REASON.into(), json!(job.reason.as_str()));

    let mut autotune = control.autotune.lock().clone();
    let sealed = if rows > 0 {
        let path = segment_path(ctx, &nwt, &name);
        let batches = job.snapshot.batches.clone();
        let columns = rt.columns.clone();
        let opts = rt.seal_options.clone();
        let mode = rt.load_mode;
        let seg_name = name.clone();
        let (file, seg) = tokio::task::spawn_blocking(move || {
            if let Some(dir) = path.parent() {
                std::fs::create_dir_all(dir).map_err(|e| riffle_segment::SegmentError::Io {
                    segment: seg_name.clone(),
                    reason: format!("create {}: {e}", dir.display()),
                })?;
            }
            let file = write_segment(&path, &seg_name, &columns, &batches, &opts)?;
            let seg = SealedSegment::open(&path, &seg_name, columns, mode)?;
            // What was read back is what was written (the CRC the catalog will keep).
            if seg.file_crc() != file.crc {
                return Err(riffle_segment::SegmentError::Corrupt {
                    segment: seg_name.clone(),
                    reason: format!(
                        "{} reads back with CRC {}, written with {}",
                        path.display(),
                        seg.file_crc(),
                        file.crc
                    ),
                });
            }
            Ok::<_, riffle_segment::SegmentError>((file, seg))
        })
        .await
        .map_err(|e| StepError::fatal(format!("seal task failed: {e}")))?
        .map_err(|e| StepError::of("seal", e))?;
        failpoint("seal.after_write");
        let path = segment_path(ctx, &nwt, &name);
        let uri = ctx
            .deep_store
            .upload(&path, &nwt, &name)
            .await
            .map_err(|e| StepError::of("upload", e))?;
        failpoint("seal.after_upload");
        done.extra
            .insert(keys::CRC.into(), json!(file.crc.to_string()));
        done.extra.insert(keys::DOWNLOAD_URL.into(), json!(uri));
        done.extra
            .insert(keys::SIZE_BYTES.into(), json!(file.size_bytes));
        if let Some(t) = file.info.start_time_ms {
            done.extra.insert(keys::START_TIME_MS.into(), json!(t));
        }
        if let Some(t) = file.info.end_time_ms {
            done.extra.insert(keys::END_TIME_MS.into(), json!(t));
        }
        autotune.learn(
            rows,
            file.size_bytes,
            job.threshold,
            job.consumed_ms,
            job.reason,
        );
        Some(seg)
    } else {
        None
    };
    done.extra.insert(
        keys::AUTOTUNE.into(),
        serde_json::to_value(&autotune).unwrap_or(Value::Null),
    );
    done.extra
        .insert(keys::COMMIT_TIME_MS.into(), json!(now_ms()));
    // The next segment's threshold is chosen now, from what this commit taught autotune (as
    // Pinot's controller does when it creates the next segment's metadata).
    let mut next = job.next.clone();
    if let Some(n) = next.as_mut() {
        let parts = rt.partition_count();
        let t = row_threshold(&rt.flush, parts, &autotune, &mut rand::rng());
        n.flush_threshold_rows = Some(t);
    }
    let catalog = ctx.catalog.clone();
    let (nwt2, done2, next2) = (nwt.clone(), done.clone(), next.clone());
    tokio::task::spawn_blocking(move || catalog.commit_segment(&nwt2, &done2, next2.as_ref()))
        .await
        .map_err(|e| StepError::fatal(format!("commit task failed: {e}")))?
        .map_err(|e| StepError::of("catalog commit", e))?;
    failpoint("seal.after_commit");
    *control.autotune.lock() = autotune;
    if let Some(n) = &next {
        if let Some(t) = n.flush_threshold_rows {
            *control.threshold.lock() = Some((n.sequence, t));
        }
    }
    match sealed {
        Some(seg) => rt
            .data
            .swap_segment(&name, SegmentRef::Sealed(Arc::new(seg))),
        None => {
            rt.data.remove_segment(&name);
        }
    }
    info!(table = %nwt, segment = %name, rows, reason = job.reason.as_str(),
          end = %job.snapshot.next_offset, "segment committed");
    Ok(())
}

/// Loads a committed segment: the local file when its CRC matches the catalog's, else a
/// fresh copy from the deep store (Pinot's segment fetcher).
pub(crate) async fn load_committed(
    ctx: &Arc<IngestContext>,
    rt: &TableRuntime,
    meta: &SegmentMeta,
) -> Result<Option<SealedSegment>, String> {
    if meta.total_docs.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let name = meta.segment_name.clone();
    let path = segment_path(ctx, &rt.name_with_type, &name);
    let crc: Option<u32> = meta
        .extra
        .get(keys::CRC)
        .and_then(Value::as_str)
        .and_then(|s| s.parse().ok());
    let Some(crc) = crc else {
        return Err(format!("segment {name} has no CRC in the catalog"));
    };
    let columns = rt.columns.clone();
    let mode = rt.load_mode;
    let local = {
        let (path, name, columns) = (path.clone(), name.clone(), columns.clone());
        tokio::task::spawn_blocking(move || open_if_intact(&path, &name, crc, columns, mode))
            .await
            .map_err(|e| format!("load task failed: {e}"))?
    };
    match local {
        Ok(seg) => return Ok(Some(seg)),
        Err(why) => {
            warn!(table = %rt.name_with_type, segment = %name, reason = %why,
                  "local copy unusable; downloading from the deep store");
        }
    }
    let uri = meta
        .extra
        .get(keys::DOWNLOAD_URL)
        .and_then(Value::as_str)
        .ok_or_else(|| format!("segment {name} has no download URL in the catalog"))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
    }
    ctx.deep_store
        .download(uri, &path)
        .await
        .map_err(|e| format!("download of segment {name} from {uri}: {e}"))?;
    let n = name.clone();
    tokio::task::spawn_blocking(move || open_if_intact(&path, &n, crc, columns, mode))
        .await
        .map_err(|e| format!("load task failed: {e}"))?
        .map(Some)
        .map_err(|why| format!("the deep store's copy of segment {name} is unusable too: {why}"))
}

fn open_if_intact(
    path: &Path,
    name: &str,
    crc: u32,
    columns: Arc<riffle_segment::TableColumns>,
    mode: riffle_segment::sealed::LoadMode,
) -> Result<SealedSegment, String> {
    if !path.is_file() {
        return Err(format!("{} is missing", path.display()));
    }
    // Opening checks every section and computes the whole file's CRC in one pass.
    let seg = SealedSegment::open(path, name, columns, mode).map_err(|e| e.to_string())?;
    let actual = seg.file_crc();
    if actual != crc {
        return Err(format!(
            "{} has CRC {actual}, the catalog says {crc}",
            path.display()
        ));
    }
    Ok(seg)
}

/// Removes what no committed segment references: local files of segments that never
/// committed (a crash between seal and commit), temporary files, and deep-store objects
/// uploaded but never committed. Runs before the table's partitions start, so no upload is
/// in flight.
pub(crate) async fn remove_orphans(
    ctx: &Arc<IngestContext>,
    name_with_type: &str,
    committed: &[SegmentMeta],
) {
    let keep_files: HashSet<String> = committed
        .iter()
        .map(|m| format!("{}.seg", m.segment_name))
        .collect();
    let dir = table_dir(ctx, name_with_type);
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let file = e.file_name().to_string_lossy().to_string();
            if !keep_files.contains(&file) {
                match std::fs::remove_file(e.path()) {
                    Ok(()) => {
                        info!(table = %name_with_type, file = %file, "removed uncommitted local segment file")
                    }
                    Err(err) => {
                        warn!(table = %name_with_type, file = %file, error = %err, "cannot remove uncommitted local segment file")
                    }
                }
            }
        }
    }
    let keep_uris: HashSet<String> = committed
        .iter()
        .filter_map(|m| m.extra.get(keys::DOWNLOAD_URL).and_then(Value::as_str))
        .map(str::to_string)
        .collect();
    match ctx
        .deep_store
        .remove_unreferenced(name_with_type, &keep_uris)
        .await
    {
        Ok(removed) => {
            for uri in removed {
                info!(table = %name_with_type, uri = %uri, "removed uncommitted deep-store object");
            }
        }
        Err(e) => {
            warn!(table = %name_with_type, error = %e, "cannot clean the deep store; uncommitted uploads stay until the next start");
        }
    }
}

/// The autotune state after the latest committed segment of each partition.
pub(crate) fn autotune_by_partition(segments: &[SegmentMeta]) -> BTreeMap<u32, Autotune> {
    let mut latest: BTreeMap<u32, (u32, Autotune)> = BTreeMap::new();
    for m in segments {
        if m.status != SegmentStatus::Done {
            continue;
        }
        let Some(a) = m
            .extra
            .get(keys::AUTOTUNE)
            .and_then(|v| serde_json::from_value::<Autotune>(v.clone()).ok())
        else {
            continue;
        };
        let e = latest.entry(m.partition).or_insert((m.sequence, a.clone()));
        if m.sequence >= e.0 {
            *e = (m.sequence, a);
        }
    }
    latest.into_iter().map(|(p, (_, a))| (p, a)).collect()
}

/// Freezes `segment` into a job: its final rows and the offset it ends at.
pub(crate) fn freeze(
    segment: &ConsumingSegment,
    meta: &SegmentMeta,
    reason: StopReason,
    next: Option<SegmentMeta>,
    consumed_ms: i64,
    threshold: u64,
) -> SealJob {
    SealJob {
        snapshot: segment.snapshot(),
        meta: meta.clone(),
        reason,
        next,
        consumed_ms,
        threshold,
    }
}
