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
    /// The segment's name (unless `simple_name` derives it).
    pub name: String,
    /// Pinot's simple segment name generator: the name is derived from the rows.
    pub simple_name: Option<SimpleName>,
}

/// Pinot's simple segment name: `prefix[_minTime_maxTime][_postfix][_sequence]`, the time
/// values as the time column holds them (raw, after transforms).
#[derive(Clone, Debug)]
pub struct SimpleName {
    /// The prefix (Pinot: the table name with its type).
    pub prefix: String,
    /// An optional postfix.
    pub postfix: Option<String>,
    /// The sequence id (Pinot: the input file's index), unless excluded.
    pub sequence: Option<usize>,
}

impl SimpleName {
    /// The name for rows whose time column spans `range`.
    pub fn name(&self, range: Option<(i64, i64)>) -> String {
        let mut parts = vec![self.prefix.clone()];
        if let Some((lo, hi)) = range {
            parts.push(lo.to_string());
            parts.push(hi.to_string());
        }
        parts.extend(self.postfix.clone());
        parts.extend(self.sequence.map(|s| s.to_string()));
        parts.join("_")
    }
}

/// The smallest and largest raw value of column `name` in `batches` (integer and
/// timestamp columns).
fn raw_range(batches: &[RecordBatch], name: &str) -> Option<(i64, i64)> {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{DataType, Int32Type, Int64Type, TimestampMillisecondType};
    let mut out: Option<(i64, i64)> = None;
    for b in batches {
        let Some(a) = b.column_by_name(name) else {
            continue;
        };
        let (lo, hi) = match a.data_type() {
            DataType::Int32 => {
                let a = a.as_primitive::<Int32Type>();
                (
                    arrow::compute::min(a).map(i64::from),
                    arrow::compute::max(a).map(i64::from),
                )
            }
            DataType::Int64 => {
                let a = a.as_primitive::<Int64Type>();
                (arrow::compute::min(a), arrow::compute::max(a))
            }
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, _) => {
                let a = a.as_primitive::<TimestampMillisecondType>();
                (arrow::compute::min(a), arrow::compute::max(a))
            }
            _ => return None,
        };
        if let (Some(lo), Some(hi)) = (lo, hi) {
            out = Some(match out {
                None => (lo, hi),
                Some((a, b)) => (a.min(lo), b.max(hi)),
            });
        }
    }
    out
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
    let name = match &input.simple_name {
        None => input.name.clone(),
        Some(n) => n.name(
            spec.config
                .time_column()
                .and_then(|t| raw_range(&batches, t)),
        ),
    };
    let path = out_dir.join(&name);
    let file = write_segment(&path, &name, &spec.columns, &batches, &spec.seal)
        .map_err(|e| format!("segment {name}: {e}"))?;
    progress.files_done.fetch_add(1, Ordering::Relaxed);
    let size = std::fs::metadata(&input.file).map(|m| m.len()).unwrap_or(0);
    progress.bytes_done.fetch_add(size, Ordering::Relaxed);
    let mut input = input.clone();
    input.name = name;
    Ok(BuiltSegment {
        input,
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
