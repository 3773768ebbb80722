//! Segments built from files (Pinot's segment creation): input files read by the record
//! readers into a table's columns, through its ingestion transforms and filter, and written
//! as sealed segments, one per input file.
//!
//! Invariants: a segment file appears complete or not at all (the segment writer's
//! rename); a file that cannot be read, or a row that a transform fails on, stops that
//! file's segment with an error naming the file and the record, and nothing of it is
//! written.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use arrow::record_batch::RecordBatch;
use riffle_decode::readers::{open_reader, FileFormat};
use riffle_segment::{write_segment, BlockBuilder, SealedFile};

use crate::TableSpec;

/// Rows decoded per block.
const BLOCK_ROWS: usize = 65_536;

/// One segment to build.
#[derive(Clone, Debug)]
pub struct SegmentInput {
    /// The input file.
    pub file: PathBuf,
    /// Its format.
    pub format: FileFormat,
    /// The segment's name.
    pub name: String,
}

/// What building one segment gave.
#[derive(Clone, Debug)]
pub struct BuiltSegment {
    /// The input.
    pub input: SegmentInput,
    /// The segment file.
    pub path: PathBuf,
    /// Rows in it.
    pub rows: u64,
    /// Rows the ingestion filter dropped.
    pub filtered: u64,
    /// The writer's facts (size, CRC).
    pub file: SealedFile,
}

/// Progress shared by the builders: records read and input bytes done.
#[derive(Debug, Default)]
pub struct BuildProgress {
    /// Records read so far.
    pub records: AtomicU64,
    /// Input files finished.
    pub files_done: AtomicU64,
    /// Bytes of the finished input files.
    pub bytes_done: AtomicU64,
}

/// Builds one segment from one file into `out_dir/<name>`.
pub fn build_segment(
    spec: &TableSpec,
    input: &SegmentInput,
    configs: &BTreeMap<String, String>,
    out_dir: &Path,
    progress: &BuildProgress,
) -> Result<BuiltSegment, String> {
    let (staging, target) = spec.decode_target();
    let mut reader =
        open_reader(&input.file, input.format, &staging, target, configs).map_err(|e| e.message)?;
    let mut batches: Vec<RecordBatch> = Vec::new();
    let (mut rows, mut filtered, mut record) = (0u64, 0u64, 0u64);
    let extras = target.extras.len();
    loop {
        let mut b = BlockBuilder::with_extras(staging.clone(), BLOCK_ROWS, extras);
        let n = reader
            .read_rows(&mut b, BLOCK_ROWS)
            .map_err(|e| e.message)?;
        if n == 0 {
            break;
        }
        progress.records.fetch_add(n as u64, Ordering::Relaxed);
        let (batch, extra) = b
            .finish_with_extras()
            .map_err(|e| format!("{}: {e}", input.file.display()))?;
        let batch = match &spec.ingest {
            None => batch,
            Some(plan) => {
                let a = plan.apply(batch, extra);
                if let Some((row, e)) = a.errors.first() {
                    return Err(format!(
                        "{}: record {}: {e}",
                        input.file.display(),
                        record + u64::from(*row) + 1
                    ));
                }
                filtered += a.filtered as u64;
                a.batch
            }
        };
        record += n as u64;
        rows += batch.num_rows() as u64;
        if batch.num_rows() > 0 {
            batches.push(batch);
        }
    }
    let path = out_dir.join(&input.name);
    let file = write_segment(&path, &input.name, &spec.columns, &batches, &spec.seal)
        .map_err(|e| format!("segment {}: {e}", input.name))?;
    progress.files_done.fetch_add(1, Ordering::Relaxed);
    let size = std::fs::metadata(&input.file).map(|m| m.len()).unwrap_or(0);
    progress.bytes_done.fetch_add(size, Ordering::Relaxed);
    Ok(BuiltSegment {
        input: input.clone(),
        path,
        rows,
        filtered,
        file,
    })
}

/// Builds every input's segment on `threads` threads (at least one). All are attempted;
/// the result lists each input's outcome in input order.
pub fn build_segments(
    spec: &TableSpec,
    inputs: &[SegmentInput],
    configs: &BTreeMap<String, String>,
    out_dir: &Path,
    threads: usize,
    progress: &BuildProgress,
) -> Vec<Result<BuiltSegment, String>> {
    let next = AtomicU64::new(0);
    let results: parking_lot::Mutex<Vec<Option<Result<BuiltSegment, String>>>> =
        parking_lot::Mutex::new(vec![None; inputs.len()]);
    std::thread::scope(|s| {
        for _ in 0..threads.max(1).min(inputs.len().max(1)) {
            s.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(input) = inputs.get(i) else {
                    break;
                };
                let r = build_segment(spec, input, configs, out_dir, progress);
                results.lock()[i] = Some(r);
            });
        }
    });
    results
        .into_inner()
        .into_iter()
        .map(|r| r.unwrap_or_else(|| Err("not built".to_string())))
        .collect()
}
