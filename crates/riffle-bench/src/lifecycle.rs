//! What the segment-lifecycle benchmarks share: their settings, the table variants they run,
//! and small helpers.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riffle_config::TableConfig;
use riffle_segment::{ConsumingSnapshot, SegmentRef};
use serde_json::Value;

use crate::*;

/// The stream-config key of an exact row threshold per segment.
pub const SEGMENT_ROWS_KEY: &str = "realtime.segment.flush.threshold.segment.rows";

/// The largest row threshold a table accepts: above every row count here, so no seal.
pub const NO_SEAL_ROWS: u64 = 2_147_483_647;

/// The memory cap of a consuming segment in these runs (1 TiB: never reached).
pub const UNCAPPED_BYTES: usize = 1 << 40;

/// The node's default memory cap of a consuming segment (`NodeConfig::max_consuming_bytes`).
pub const DEFAULT_CAP_BYTES: usize = 1 << 30;

/// Indexes of the "with indexes" seal in the footprint benchmark (`tableIndexConfig`).
pub const INDEXED_COLUMNS_JSON: &str = r#"{
  "invertedIndexColumns": ["country", "device"],
  "rangeIndexColumns": ["ts", "price"],
  "bloomFilterColumns": ["uuid"]
}"#;

/// What to run.
#[derive(Debug, Clone)]
pub struct LifecycleBenchConfig {
    /// Partitions (files) of the seal and restart benchmarks (the footprint uses one).
    pub partitions: u32,
    /// Rows of each seal-benchmark rate run.
    pub seal_rows: u64,
    /// `realtime.segment.flush.threshold.segment.rows` of the runs with seals.
    pub threshold: u64,
    /// Rounds of (no seal, seals) rate runs and, after them, latency runs, interleaved
    /// (0: no rate runs, one round of latency runs at `latency_rate`).
    pub rounds: usize,
    /// One unmeasured run without seals before the measured ones.
    pub warmup: bool,
    /// Rows per second of the latency runs; `None`: half the no-seal rate just measured.
    pub latency_rate: Option<u64>,
    /// Seconds of each latency run (0 skips them).
    pub latency_secs: f64,
    /// The latency writer's tick.
    pub tick: Duration,
    /// How often the published row count is polled.
    pub poll: Duration,
    /// Rows in the table when it "crashes".
    pub restart_rows: u64,
    /// Rows of the footprint benchmark (one consuming segment).
    pub footprint_rows: u64,
    /// Where stream files, catalogs and segments go (must exist; the caller removes it).
    pub work_dir: PathBuf,
}

impl LifecycleBenchConfig {
    /// The issue's defaults: 10,000,000 rows per rate run on 1 partition, a 1,000,000-row
    /// threshold, a warm-up and 2 rounds, latency at half the no-seal rate for 10 s,
    /// 10,000,000 rows before the crash, 1,000,000 rows (one full segment) for the
    /// footprint.
    pub fn new(work_dir: PathBuf) -> LifecycleBenchConfig {
        LifecycleBenchConfig {
            partitions: 1,
            seal_rows: 10_000_000,
            threshold: 1_000_000,
            rounds: 2,
            warmup: true,
            latency_rate: None,
            latency_secs: 10.0,
            tick: Duration::from_millis(5),
            poll: Duration::from_millis(1),
            restart_rows: 10_000_000,
            footprint_rows: 1_000_000,
            work_dir,
        }
    }

    pub fn ingest_cfg(&self, rows: u64, partitions: u32) -> IngestBenchConfig {
        let mut c = IngestBenchConfig::new(self.work_dir.clone());
        c.rows = rows;
        c.partitions = partitions;
        c.latency_secs = self.latency_secs;
        c.tick = self.tick;
        c.poll = self.poll;
        c.comparisons = false;
        c.splits = false;
        c
    }
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

/// The bench table's config as JSON, with `edit` applied to it.
pub fn edited_table(
    edit: impl FnOnce(&mut Value) -> Option<()>,
) -> Result<TableConfig, BenchError> {
    let mut v: Value = serde_json::from_str(TABLE_CONFIG_JSON)
        .map_err(|e| err(format!("bench table config: {e}")))?;
    edit(&mut v).ok_or_else(|| err("bench table config: unexpected shape"))?;
    let t = TableConfig::from_json(v.to_string().as_bytes())
        .map_err(|e| err(format!("bench table config: {e}")))?;
    t.validate(&schema()?)
        .map_err(|e| err(format!("bench table config: {e}")))?;
    Ok(t)
}

/// The bench table with an exact row threshold per segment (`segment.rows`) instead of its
/// size-based autotune; the memory cap is lifted.
pub fn setup_with_threshold(rows: u64) -> Result<TableSetup, BenchError> {
    let table = edited_table(|v| {
        let sc = v
            .pointer_mut("/tableIndexConfig/streamConfigs")?
            .as_object_mut()?;
        sc.remove("realtime.segment.flush.threshold.rows");
        sc.remove("realtime.segment.flush.threshold.segment.size");
        sc.insert(SEGMENT_ROWS_KEY.into(), Value::String(rows.to_string()));
        Some(())
    })?;
    Ok(TableSetup {
        table,
        max_consuming_bytes: Some(UNCAPPED_BYTES),
    })
}

/// The bench table with [`INDEXED_COLUMNS_JSON`] in its `tableIndexConfig`.
pub fn indexed_table() -> Result<TableConfig, BenchError> {
    let extra: Value = serde_json::from_str(INDEXED_COLUMNS_JSON)
        .map_err(|e| err(format!("indexed columns: {e}")))?;
    edited_table(|v| {
        let ic = v.pointer_mut("/tableIndexConfig")?.as_object_mut()?;
        for (k, x) in extra.as_object()? {
            ic.insert(k.clone(), x.clone());
        }
        Some(())
    })
}

/// Hard-links (or copies) the partition files of `from` into `to`.
pub fn link_stream_files(from: &Path, to: &Path, partitions: u32) -> Result<(), BenchError> {
    let topic = to.join("streams").join(TABLE);
    std::fs::create_dir_all(&topic).map_err(|e| io_err("create", &topic, e))?;
    for p in 0..partitions {
        let (src, dst) = (partition_file(from, p), partition_file(to, p));
        std::fs::hard_link(&src, &dst)
            .or_else(|_| std::fs::copy(&src, &dst).map(|_| ()))
            .map_err(|e| io_err("link", &dst, e))?;
    }
    Ok(())
}

/// Rows of partition `p` when `rows` are written round-robin into `parts` files.
pub fn rows_of_partition(rows: u64, p: u64, parts: u64) -> u64 {
    rows / parts + u64::from(p < rows % parts)
}

/// The resident set size of this process in KiB (`VmRSS` of /proc/self/status).
pub fn rss_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Waits until `expected` rows are queryable; returns (first rows, all rows) after `start`.
pub async fn wait_queryable(
    core: &Core,
    expected: u64,
    poll: Duration,
    start: Instant,
) -> Result<(Duration, Duration), BenchError> {
    let mut first = None;
    let mut last = (0u64, Instant::now());
    loop {
        let n = published(&core.segments());
        let now = Instant::now();
        if n > 0 && first.is_none() {
            first = Some(now - start);
        }
        if n >= expected {
            if n != expected {
                return Err(err(format!(
                    "published {n} rows, expected exactly {expected}"
                )));
            }
            return Ok((first.unwrap_or_default(), now - start));
        }
        if n != last.0 {
            last = (n, now);
        } else if now - last.1 > Duration::from_secs(60) {
            return Err(err(format!(
                "no progress for 60 s at {n} of {expected} rows"
            )));
        }
        if let Some(f) = core.failure() {
            return Err(err(f));
        }
        tokio::time::sleep(poll).await;
    }
}

/// The consuming segments' snapshots of the bench table.
pub fn consuming_snapshots(core: &Core) -> Vec<Arc<ConsumingSnapshot>> {
    core.segments().table(TABLE).map_or_else(Vec::new, |t| {
        t.segments()
            .iter()
            .filter_map(|s| match s {
                SegmentRef::Consuming(c) => Some(c.snapshot()),
                SegmentRef::Sealed(_) => None,
            })
            .collect()
    })
}

pub fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

pub fn per_row(bytes: f64, rows: u64) -> f64 {
    bytes / rows.max(1) as f64
}
