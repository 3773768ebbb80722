//! Benchmarks of the segment lifecycle: what sealing costs ingestion, how long a restart
//! after a crash takes, and what a row costs in memory and on disk.
//!
//! Library code beside [`crate::bench`] (whose events, table and in-process server they
//! reuse), run by `cargo bench -p riffle-ingest --bench ingest -- seal|restart|footprint|
//! lifecycle` and by `riffle bench seal|restart|footprint|lifecycle`. Figures and how they
//! were produced: `docs/PERFORMANCE.md`.
//!
//! - **Seal** ([`run_seal_bench`]): the same stream files (written once, hard-linked into
//!   each run's data directory) are ingested at the maximum rate into the bench table with
//!   `realtime.segment.flush.threshold.segment.rows` = the threshold (1,000,000: several
//!   seals per run) and, beside it in the same invocation, with the threshold above the row
//!   count (no seal), in interleaved rounds (round 0 without seals first, round 1 with seals
//!   first, ...) after one unmeasured warm-up run (a fresh process ingests slower until its
//!   heap has grown). Each run reports rows/s to queryable, the longest time the published
//!   count stood still, and when every full segment had committed. Then the paced writer of
//!   the latency phase runs at half the median no-seal rate, without and with seals, in the
//!   same interleaved rounds, for publish-to-query percentiles (also per second of the run).
//! - **Restart** ([`run_restart_bench`]): a table (no seal) is filled with the rows on its
//!   own tokio runtime, in a thread of its own; when every row is queryable that runtime is
//!   shut down ([`tokio::runtime::Runtime::shutdown_timeout`]: every task is dropped where
//!   it stands, no `stop_table`, no seal, no commit), then the manager and the
//!   registry are dropped. The catalog on disk is then what a `SIGKILL` leaves: one
//!   IN_PROGRESS segment per partition starting at offset 0. A fresh catalog handle and
//!   [`IngestManager`](crate::IngestManager) start on the same data directory and the clock
//!   runs from opening the catalog until every row is queryable again.
//! - **Footprint** ([`run_footprint_bench`]): one partition's rows in one consuming segment:
//!   [`ConsumingSnapshot::bytes`] and the process RSS delta (`VmRSS` of
//!   `/proc/self/status`) per row; then the same rows sealed with
//!   [`write_segment`] (default options, the bench table's options, and with indexes) and
//!   written as Parquet (zstd, the `parquet` crate's default level): bytes per row, and the
//!   time each write took.
//!
//! The memory cap of a consuming segment ([`crate::IngestContext::max_consuming_bytes`],
//! 1 GiB by default) is lifted in these runs ([`UNCAPPED_BYTES`]) so that only the row
//! threshold ends segments; the footprint figures say where the default cap would end one.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arrow::array::Array;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use riffle_catalog::SegmentStatus;
use riffle_config::TableConfig;
use riffle_segment::sealed::{write_segment, LoadMode, SealOptions, SealedSegment};
use riffle_segment::{ConsumingSnapshot, SegmentRef, TableColumns};
use serde_json::Value;

use crate::bench::{
    err, header, io_err, latency_with, load_text, ms, partition_file, process_cpu_secs, published,
    schema, thousands, throughput_run, write_events_async, BenchError, Core, IngestBenchConfig,
    LatencyReport, LoadAvg, MachineFacts, Rate, TableSetup, ThroughputReport, LINE_BYTES, TABLE,
    TABLE_CONFIG_JSON,
};

/// The stream-config key of an exact row threshold per segment.
pub const SEGMENT_ROWS_KEY: &str = "realtime.segment.flush.threshold.segment.rows";

/// The largest row threshold a table accepts: above every row count here, so no seal.
pub const NO_SEAL_ROWS: u64 = 2_147_483_647;

/// The memory cap of a consuming segment in these runs (1 TiB: never reached).
pub const UNCAPPED_BYTES: usize = 1 << 40;

/// The server's default memory cap of a consuming segment (see `IngestContext::local`).
const DEFAULT_CAP_BYTES: usize = 1 << 30;

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

    fn ingest_cfg(&self, rows: u64, partitions: u32) -> IngestBenchConfig {
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
fn edited_table(edit: impl FnOnce(&mut Value) -> Option<()>) -> Result<TableConfig, BenchError> {
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
pub(crate) fn setup_with_threshold(rows: u64) -> Result<TableSetup, BenchError> {
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
fn indexed_table() -> Result<TableConfig, BenchError> {
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
fn link_stream_files(from: &Path, to: &Path, partitions: u32) -> Result<(), BenchError> {
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
fn rows_of_partition(rows: u64, p: u64, parts: u64) -> u64 {
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
async fn wait_queryable(
    core: &Core,
    expected: u64,
    poll: Duration,
    start: Instant,
) -> Result<(Duration, Duration), BenchError> {
    let mut first = None;
    let mut last = (0u64, Instant::now());
    loop {
        let n = published(&core.segments);
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
fn consuming_snapshots(core: &Core) -> Vec<Arc<ConsumingSnapshot>> {
    core.segments.table(TABLE).map_or_else(Vec::new, |t| {
        t.segments()
            .iter()
            .filter_map(|s| match s {
                SegmentRef::Consuming(c) => Some(c.snapshot()),
                SegmentRef::Sealed(_) => None,
            })
            .collect()
    })
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => 0.0,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

fn per_row(bytes: f64, rows: u64) -> f64 {
    bytes / rows.max(1) as f64
}

// ---------------------------------------------------------------------------------------
// Seal: no stall at seal
// ---------------------------------------------------------------------------------------

/// One rate run of the seal benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct SealRun {
    /// Round (runs of one round are beside each other).
    pub round: usize,
    /// With the row threshold (seals) or above the row count (no seal).
    pub seals: bool,
    /// The run.
    pub report: ThroughputReport,
}

/// One latency run of the seal benchmark.
#[derive(Debug, Clone, PartialEq)]
pub struct SealLatencyRun {
    /// Round.
    pub round: usize,
    /// With seals or without.
    pub seals: bool,
    /// The run.
    pub report: LatencyReport,
}

/// What the seal benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct SealBenchReport {
    /// The machine.
    pub machine: MachineFacts,
    /// Load average before the benchmark.
    pub load_before: Option<LoadAvg>,
    /// Load average after the benchmark.
    pub load_after: Option<LoadAvg>,
    /// Rows per rate run.
    pub rows: u64,
    /// Partitions.
    pub partitions: u32,
    /// Row threshold of the runs with seals.
    pub threshold: u64,
    /// Full segments (seals) each run with seals commits.
    pub expected_seals: u64,
    /// The unmeasured warm-up run (no seal), if one ran.
    pub warmup: Option<ThroughputReport>,
    /// The rate runs, in the order they ran.
    pub runs: Vec<SealRun>,
    /// Target rows/s of the latency runs.
    pub latency_rate: u64,
    /// The latency runs, in the order they ran.
    pub latency: Vec<SealLatencyRun>,
}

impl SealBenchReport {
    /// Median rows/s to queryable of the runs with or without seals.
    pub fn median_rate(&self, seals: bool) -> f64 {
        median(
            self.runs
                .iter()
                .filter(|r| r.seals == seals)
                .map(|r| r.report.queryable.rows_per_sec())
                .collect(),
        )
    }

    /// Median rate with seals / median rate without.
    pub fn rate_ratio(&self) -> f64 {
        self.median_rate(true) / self.median_rate(false).max(1e-9)
    }

    /// Median p99 latency (seconds) of the latency runs with or without seals.
    pub fn median_p99(&self, seals: bool) -> Option<f64> {
        let v: Vec<f64> = self
            .latency
            .iter()
            .filter(|r| r.seals == seals)
            .map(|r| r.report.p99.as_secs_f64())
            .collect();
        (!v.is_empty()).then(|| median(v))
    }

    /// Median p99 with seals / median p99 without, if both ran.
    pub fn p99_ratio(&self) -> Option<f64> {
        Some(self.median_p99(true)? / self.median_p99(false)?.max(1e-9))
    }
}

/// Runs the seal benchmark (see the module documentation) on the current tokio runtime.
pub async fn run_seal_bench(cfg: &LifecycleBenchConfig) -> Result<SealBenchReport, BenchError> {
    if cfg.seal_rows < cfg.partitions as u64 || cfg.partitions == 0 || cfg.threshold == 0 {
        return Err(err(
            "seal: rows must be at least the partitions, partitions and threshold at least 1",
        ));
    }
    if cfg.seal_rows >= NO_SEAL_ROWS {
        return Err(err(format!("seal: rows must be below {NO_SEAL_ROWS}")));
    }
    if cfg.rounds == 0 && cfg.latency_rate.is_none() {
        return Err(err(
            "seal: with 0 rounds (latency only) the latency rate must be given",
        ));
    }
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("seal");
    let files = dir.join("files");
    std::fs::create_dir_all(&files).map_err(|e| io_err("create", &files, e))?;
    let bytes = write_events_async(&files, cfg.seal_rows, cfg.partitions).await?;
    let parts = cfg.partitions as u64;
    let expected_seals: u64 = (0..parts)
        .map(|p| rows_of_partition(cfg.seal_rows, p, parts) / cfg.threshold)
        .sum();
    let with = setup_with_threshold(cfg.threshold)?;
    let without = setup_with_threshold(NO_SEAL_ROWS)?;
    let icfg = cfg.ingest_cfg(cfg.seal_rows, cfg.partitions);
    let run = |name: String, seals: bool| {
        let run_dir = dir.join(name);
        let (setup, wait) = if seals {
            (&with, Some(expected_seals))
        } else {
            (&without, None)
        };
        let (files, icfg) = (&files, &icfg);
        async move {
            link_stream_files(files, &run_dir, cfg.partitions)?;
            let report = throughput_run(icfg, &run_dir, setup, bytes, wait).await;
            let _ = std::fs::remove_dir_all(&run_dir);
            report
        }
    };
    // A fresh process ingests slower until its heap has grown (fresh pages are faulted in
    // and zeroed; see docs/PERFORMANCE.md): the first run would be penalised.
    let warmup = if cfg.warmup {
        Some(run("warmup".into(), false).await?)
    } else {
        None
    };
    let mut runs = Vec::new();
    for round in 0..cfg.rounds {
        for seals in round_order(round) {
            let name = format!("run-{round}-{}", if seals { "seals" } else { "no-seal" });
            let report = run(name, seals).await?;
            if !seals && report.committed_at_queryable != 0 {
                return Err(err(format!(
                    "seal: the run without seals committed {} segments",
                    report.committed_at_queryable
                )));
            }
            runs.push(SealRun {
                round,
                seals,
                report,
            });
        }
    }
    let _ = std::fs::remove_dir_all(&files);

    let mut report = SealBenchReport {
        machine,
        load_before,
        load_after: None,
        rows: cfg.seal_rows,
        partitions: cfg.partitions,
        threshold: cfg.threshold,
        expected_seals,
        warmup,
        runs,
        latency_rate: 0,
        latency: Vec::new(),
    };
    let rate = cfg
        .latency_rate
        .unwrap_or_else(|| (report.median_rate(false) / 2.0 / 1000.0).floor() as u64 * 1000);
    report.latency_rate = rate;
    if cfg.latency_secs > 0.0 && rate > 0 {
        let mut lcfg = icfg.clone();
        lcfg.latency_rate = rate;
        for round in 0..cfg.rounds.max(1) {
            for seals in round_order(round) {
                let d = dir.join(format!(
                    "latency-{round}-{}",
                    if seals { "seals" } else { "no-seal" }
                ));
                std::fs::create_dir_all(&d).map_err(|e| io_err("create", &d, e))?;
                let setup = if seals { &with } else { &without };
                let l = latency_with(&lcfg, &d, setup).await;
                let _ = std::fs::remove_dir_all(&d);
                report.latency.push(SealLatencyRun {
                    round,
                    seals,
                    report: l?,
                });
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
    report.load_after = LoadAvg::read();
    Ok(report)
}

/// Round 0 runs without seals first, round 1 with seals first, and so on.
fn round_order(round: usize) -> [bool; 2] {
    if round % 2 == 0 {
        [false, true]
    } else {
        [true, false]
    }
}

impl fmt::Display for SealBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        header(
            f,
            "Riffle seal benchmark: ingestion with and without seals (file stream, 146-byte JSON events)",
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        if !self.runs.is_empty() || self.warmup.is_some() {
            self.fmt_rate(f)?;
        }
        self.fmt_latency(f)?;
        writeln!(f)?;
        if !self.runs.is_empty() {
            let r = self.rate_ratio();
            write!(
                f,
                "goal (seals within 10% of no seal): rate ratio {r:.3}: {}   ",
                if r >= 0.9 { "MET" } else { "NOT MET" }
            )?;
        } else {
            write!(f, "goal (seals within 10% of no seal): rate: not run   ")?;
        }
        match self.p99_ratio() {
            Some(r) => writeln!(
                f,
                "p99 ratio {r:.3}: {}",
                if r <= 1.1 { "MET" } else { "NOT MET" }
            ),
            None => writeln!(f, "p99: not run"),
        }
    }
}

impl SealBenchReport {
    fn fmt_rate(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f)?;
        writeln!(
            f,
            "-- rate: {} rows in {} partition(s), max rate; seals: {SEGMENT_ROWS_KEY}={} ({} seals per run), no seal: {} --",
            thousands(self.rows as f64),
            self.partitions,
            thousands(self.threshold as f64),
            self.expected_seals,
            thousands(NO_SEAL_ROWS as f64),
        )?;
        writeln!(
            f,
            "   {:<7} {:<8} {:>12} {:>9} {:>8} {:>9} {:>10} {:>9} {:>17}",
            "round",
            "run",
            "rows/s",
            "seconds",
            "cores",
            "stall ms",
            "committed",
            "sealed s",
            "load before/after"
        )?;
        let runs = self
            .warmup
            .iter()
            .map(|w| ("warm-up".to_string(), "no seal", w))
            .chain(self.runs.iter().map(|r| {
                (
                    r.round.to_string(),
                    if r.seals { "seals" } else { "no seal" },
                    &r.report,
                )
            }));
        for (round, kind, t) in runs {
            writeln!(
                f,
                "   {:<7} {:<8} {:>12} {:>9.3} {:>8} {:>9.1} {:>10} {:>9} {:>8} / {:<8}",
                round,
                kind,
                thousands(t.queryable.rows_per_sec()),
                t.queryable.secs,
                t.cpu_secs.map_or_else(
                    || "n/a".to_string(),
                    |c| format!("{:.2}", c / t.queryable.secs.max(1e-9))
                ),
                t.max_stall_secs * 1e3,
                t.committed_at_queryable,
                t.all_committed_secs
                    .map_or_else(|| "-".to_string(), |s| format!("{s:.3}")),
                t.load_before
                    .map_or_else(|| "n/a".into(), |l| format!("{:.2}", l.one)),
                t.load_after
                    .map_or_else(|| "n/a".into(), |l| format!("{:.2}", l.one)),
            )?;
        }
        writeln!(
            f,
            "   (stall: longest time the published count stood still; committed: segments committed when the last row was queryable; sealed s: from start until all {} had committed; the warm-up is not counted)",
            self.expected_seals
        )?;
        if !self.runs.is_empty() {
            writeln!(
                f,
                "   median rows/s to queryable: no seal {}   seals {}   ratio seals/no seal {:.3}",
                thousands(self.median_rate(false)),
                thousands(self.median_rate(true)),
                self.rate_ratio()
            )?;
        }
        Ok(())
    }

    fn fmt_latency(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for r in &self.latency {
            let l = &r.report;
            writeln!(f)?;
            writeln!(
                f,
                "-- publish-to-query latency, round {}, {}: {} rows/s target for {:.1} s, {} partition(s) --",
                r.round,
                if r.seals { "seals" } else { "no seal" },
                thousands(l.rate as f64),
                l.secs,
                self.partitions
            )?;
            writeln!(
                f,
                "   load before {}  after {}",
                load_text(l.load_before),
                load_text(l.load_after)
            )?;
            writeln!(
                f,
                "   rows {}  achieved {} rows/s  samples (ticks) {}  late ticks {}  segments committed {}",
                thousands(l.rows as f64),
                thousands(l.achieved_rate),
                l.samples,
                l.late_ticks,
                l.segments_committed
            )?;
            writeln!(
                f,
                "   p50 {:.1} ms   p90 {:.1} ms   p99 {:.1} ms   max {:.1} ms   mean {:.1} ms",
                ms(l.p50),
                ms(l.p90),
                ms(l.p99),
                ms(l.max),
                ms(l.mean)
            )?;
            let secs: Vec<String> = l
                .per_second
                .iter()
                .map(|(p90, max)| format!("{:.0}/{:.0}", ms(*p90), ms(*max)))
                .collect();
            writeln!(f, "   each second, p90/max ms: {}", secs.join(" "))?;
        }
        if let (Some(a), Some(b)) = (self.median_p99(false), self.median_p99(true)) {
            writeln!(f)?;
            writeln!(
                f,
                "   median p99: no seal {:.1} ms   seals {:.1} ms   ratio seals/no seal {:.3}",
                a * 1e3,
                b * 1e3,
                b / a.max(1e-9)
            )?;
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// Restart after a crash
// ---------------------------------------------------------------------------------------

/// What the restart benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct RestartReport {
    /// The machine.
    pub machine: MachineFacts,
    /// Load average before the benchmark.
    pub load_before: Option<LoadAvg>,
    /// Load average after the benchmark.
    pub load_after: Option<LoadAvg>,
    /// Rows in the table at the crash (all unsealed).
    pub rows: u64,
    /// Partitions.
    pub partitions: u32,
    /// The first ingestion, to queryable.
    pub fill: Rate,
    /// Bytes the consuming segments held at the crash.
    pub consuming_bytes: usize,
    /// Bytes of the largest consuming segment at the crash (the memory cap is per segment).
    pub largest_segment_bytes: usize,
    /// IN_PROGRESS segments in the catalog after the crash.
    pub in_progress: usize,
    /// Load average when the restart began.
    pub restart_load_before: Option<LoadAvg>,
    /// Opening the catalog and creating the manager.
    pub open_secs: f64,
    /// From the start until `start_table` returned.
    pub started_secs: f64,
    /// From the start until the first rows were queryable.
    pub first_rows_secs: f64,
    /// From the start until every row was queryable again.
    pub queryable_secs: f64,
    /// CPU seconds the process used during the restart.
    pub cpu_secs: Option<f64>,
}

/// The first ingestion of the restart benchmark: (rows/s, consuming bytes in all, in the
/// largest segment).
type Filled = (Rate, usize, usize);

/// Fills the table on a runtime of its own, then "crashes": shuts that runtime down with
/// every task dropped where it stands, then drops the manager and the registry.
fn fill_then_crash(
    dir: PathBuf,
    setup: TableSetup,
    rows: u64,
    bytes: u64,
    poll: Duration,
) -> Result<Filled, BenchError> {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| err(format!("fill runtime: {e}")))?;
    let res = rt.block_on(async {
        let schema = schema()?;
        let core = Core::create(&dir, &setup, &schema).await?;
        let start = Instant::now();
        core.start(&setup.table, &schema).await?;
        let waited = wait_queryable(&core, rows, poll, start).await;
        let snaps = consuming_snapshots(&core);
        let held: usize = snaps.iter().map(|s| s.bytes).sum();
        let largest = snaps.iter().map(|s| s.bytes).max().unwrap_or(0);
        let committed = core.segments_committed();
        Ok::<_, BenchError>((core, waited, (held, largest), committed))
    });
    // The crash: no stop_table, no seal, no commit. Shutting the runtime down drops every
    // task (loops, sealers) where it stands without running it any further; the timeout
    // only bounds the wait for those drops (the catalog handle goes with the last one).
    rt.shutdown_timeout(Duration::from_secs(10));
    let (core, waited, held, committed) = res?;
    drop(core);
    let (_, all) = waited?;
    if committed != 0 {
        return Err(err(format!(
            "restart: {committed} segments committed while filling; expected none"
        )));
    }
    Ok((
        Rate {
            rows,
            bytes,
            secs: all.as_secs_f64(),
        },
        held.0,
        held.1,
    ))
}

/// Runs the restart benchmark (see the module documentation).
pub async fn run_restart_bench(cfg: &LifecycleBenchConfig) -> Result<RestartReport, BenchError> {
    let rows = cfg.restart_rows;
    if rows < cfg.partitions as u64 || cfg.partitions == 0 || rows >= NO_SEAL_ROWS {
        return Err(err(format!(
            "restart: rows must be at least the partitions and below {NO_SEAL_ROWS}"
        )));
    }
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("restart");
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    let bytes = write_events_async(&dir, rows, cfg.partitions).await?;
    let setup = setup_with_threshold(NO_SEAL_ROWS)?;

    let (d, s, poll) = (dir.clone(), setup.clone(), cfg.poll);
    let filler = std::thread::spawn(move || fill_then_crash(d, s, rows, bytes, poll));
    let (fill, consuming_bytes, largest_segment_bytes) =
        tokio::task::spawn_blocking(move || filler.join())
            .await
            .map_err(|e| err(format!("fill task: {e}")))?
            .map_err(|_| err("fill thread panicked"))??;

    // The restart, as a server starts: catalog, manager, then every table from the catalog.
    let restart_load_before = LoadAvg::read();
    let schema = schema()?;
    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    let core = Core::open(&dir, &setup.table, setup.max_consuming_bytes)?;
    let open_secs = start.elapsed().as_secs_f64();
    let result = async {
        let catalog = core.manager.context().catalog.clone();
        let json = catalog
            .tables()
            .map_err(|e| err(format!("catalog tables: {e}")))?
            .into_iter()
            .find(|(n, _)| *n == core.name_with_type)
            .map(|(_, j)| j)
            .ok_or_else(|| err("restart: the table is not in the catalog"))?;
        let table = TableConfig::from_json(json.as_bytes())
            .map_err(|e| err(format!("stored table config: {e}")))?;
        let in_progress = catalog
            .segments(&core.name_with_type)
            .map_err(|e| err(format!("catalog segments: {e}")))?
            .iter()
            .filter(|m| m.status == SegmentStatus::InProgress)
            .count();
        core.start(&table, &schema).await?;
        let started = start.elapsed().as_secs_f64();
        let (first, all) = wait_queryable(&core, rows, cfg.poll, start).await?;
        Ok::<_, BenchError>((in_progress, started, first, all))
    }
    .await;
    let cpu1 = process_cpu_secs();
    let restart_load_after = LoadAvg::read();
    core.stop().await;
    drop(core);
    let _ = std::fs::remove_dir_all(&dir);
    let (in_progress, started_secs, first, all) = result?;
    Ok(RestartReport {
        machine,
        load_before,
        load_after: restart_load_after,
        rows,
        partitions: cfg.partitions,
        fill,
        consuming_bytes,
        largest_segment_bytes,
        in_progress,
        restart_load_before,
        open_secs,
        started_secs,
        first_rows_secs: first.as_secs_f64(),
        queryable_secs: all.as_secs_f64(),
        cpu_secs: cpu0.zip(cpu1).map(|(a, b)| b - a),
    })
}

impl fmt::Display for RestartReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        header(
            f,
            "Riffle restart benchmark: crash with unsealed rows, restart, all rows queryable again",
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "-- fill: {} rows in {} partition(s), threshold {} (nothing seals): {} rows/s to queryable ({:.3} s) --",
            thousands(self.rows as f64),
            self.partitions,
            thousands(NO_SEAL_ROWS as f64),
            thousands(self.fill.rows_per_sec()),
            self.fill.secs
        )?;
        writeln!(
            f,
            "   at the crash: consuming segments held {:.1} MB ({:.1} bytes/row; the default 1 GiB cap {}), catalog: {} IN_PROGRESS segment(s), 0 committed",
            self.consuming_bytes as f64 / 1e6,
            per_row(self.consuming_bytes as f64, self.rows),
            if self.largest_segment_bytes >= DEFAULT_CAP_BYTES {
                "would have ended the segment before the crash"
            } else {
                "is not reached"
            },
            self.in_progress
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "-- restart (runtime shut down, manager and registry dropped; fresh catalog handle and manager) --"
        )?;
        writeln!(
            f,
            "   load before {}  after {}",
            load_text(self.restart_load_before),
            load_text(self.load_after)
        )?;
        writeln!(
            f,
            "   catalog open + manager {:.1} ms   start_table returned {:.1} ms   first rows {:.1} ms",
            self.open_secs * 1e3,
            self.started_secs * 1e3,
            self.first_rows_secs * 1e3
        )?;
        writeln!(
            f,
            "   all {} rows queryable again after {:.3} s ({} rows/s re-read){}",
            thousands(self.rows as f64),
            self.queryable_secs,
            thousands(self.rows as f64 / self.queryable_secs.max(1e-9)),
            self.cpu_secs.map_or_else(String::new, |c| format!(
                "; process CPU {c:.2} s ({:.2} cores)",
                c / self.queryable_secs.max(1e-9)
            ))
        )?;
        writeln!(f)?;
        writeln!(
            f,
            "goal (all rows queryable within 10 s of the restart): {:.3} s: {}",
            self.queryable_secs,
            if self.queryable_secs <= 10.0 {
                "MET"
            } else {
                "NOT MET"
            }
        )
    }
}

// ---------------------------------------------------------------------------------------
// Footprint: memory per row, sealed size per row against Parquet
// ---------------------------------------------------------------------------------------

/// One on-disk form of the rows.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSize {
    /// What it is.
    pub what: String,
    /// File bytes.
    pub bytes: u64,
    /// Seconds the write took (one thread).
    pub secs: f64,
    /// Seconds opening (and checking) the sealed file took, as the sealer does after the
    /// write.
    pub open_secs: Option<f64>,
}

/// Memory of one column of the consuming segment.
#[derive(Debug, Clone, PartialEq)]
pub struct ColumnBytes {
    /// Column.
    pub name: String,
    /// Bytes held (buffer capacity included).
    pub held: usize,
    /// Bytes used by the values, offsets and validity.
    pub used: usize,
}

/// What the footprint benchmark measured.
#[derive(Debug, Clone, PartialEq)]
pub struct FootprintReport {
    /// The machine.
    pub machine: MachineFacts,
    /// Load average before the benchmark.
    pub load_before: Option<LoadAvg>,
    /// Load average after the benchmark.
    pub load_after: Option<LoadAvg>,
    /// Rows (one consuming segment).
    pub rows: u64,
    /// `ConsumingSnapshot::bytes`.
    pub consuming_bytes: usize,
    /// Arrow batches the consuming segment holds.
    pub batches: usize,
    /// Bytes per column: held (`get_array_memory_size` of the column's arrays, buffer
    /// capacity included, what `ConsumingSnapshot::bytes` adds up) and used (the bytes of
    /// the values, offsets and validity themselves).
    pub column_bytes: Vec<ColumnBytes>,
    /// VmRSS before the table started, KiB.
    pub rss_before_kib: Option<u64>,
    /// VmRSS when every row was queryable, KiB.
    pub rss_after_kib: Option<u64>,
    /// Sealed segment files.
    pub sealed: Vec<StoredSize>,
    /// Parquet, zstd at the default level.
    pub parquet: StoredSize,
    /// Seconds uploading the table-options segment file to a `file://` deep store took
    /// (the sealer's next step).
    pub upload_secs: Option<f64>,
}

impl FootprintReport {
    /// RSS delta per row, if /proc/self/status was readable.
    pub fn rss_bytes_per_row(&self) -> Option<f64> {
        let (a, b) = (self.rss_before_kib?, self.rss_after_kib?);
        Some(per_row((b as f64 - a as f64) * 1024.0, self.rows))
    }
}

/// Seals `snap`'s rows with `opts` into `dir`, timed; checks the file opens with every row.
fn seal_sized(
    dir: &Path,
    what: &str,
    file: &str,
    columns: &Arc<TableColumns>,
    snap: &ConsumingSnapshot,
    opts: &SealOptions,
) -> Result<StoredSize, BenchError> {
    let path = dir.join(file);
    let name = format!("{TABLE}__0__0__footprint");
    let t = Instant::now();
    let sealed = write_segment(&path, &name, columns, &snap.batches, opts)
        .map_err(|e| err(format!("seal ({what}): {e}")))?;
    let secs = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let seg = SealedSegment::open(&path, &name, columns.clone(), LoadMode::Mmap)
        .map_err(|e| err(format!("open sealed ({what}): {e}")))?;
    let open_secs = t.elapsed().as_secs_f64();
    if seg.num_rows() != snap.num_rows {
        return Err(err(format!(
            "sealed ({what}) holds {} rows, expected {}",
            seg.num_rows(),
            snap.num_rows
        )));
    }
    Ok(StoredSize {
        what: what.to_string(),
        bytes: sealed.size_bytes,
        secs,
        open_secs: Some(open_secs),
    })
}

/// Writes `snap`'s rows as Parquet with zstd at the crate's default level, timed.
fn parquet_sized(dir: &Path, snap: &ConsumingSnapshot) -> Result<StoredSize, BenchError> {
    let path = dir.join("rows.parquet");
    let schema = snap
        .batches
        .first()
        .map(|b| b.schema())
        .ok_or_else(|| err("parquet: no rows"))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let t = Instant::now();
    let file = std::fs::File::create(&path).map_err(|e| io_err("create", &path, e))?;
    let mut w = ArrowWriter::try_new(file, schema, Some(props))
        .map_err(|e| err(format!("parquet writer: {e}")))?;
    for b in &snap.batches {
        w.write(b).map_err(|e| err(format!("parquet write: {e}")))?;
    }
    let file = w
        .into_inner()
        .map_err(|e| err(format!("parquet close: {e}")))?;
    file.sync_all().map_err(|e| io_err("sync", &path, e))?;
    let secs = t.elapsed().as_secs_f64();
    let bytes = std::fs::metadata(&path)
        .map_err(|e| io_err("stat", &path, e))?
        .len();
    Ok(StoredSize {
        what: "Parquet, zstd (default level 1), default writer properties".into(),
        bytes,
        secs,
        open_secs: None,
    })
}

/// Runs the footprint benchmark (see the module documentation).
pub async fn run_footprint_bench(
    cfg: &LifecycleBenchConfig,
) -> Result<FootprintReport, BenchError> {
    let rows = cfg.footprint_rows;
    if rows == 0 || rows >= NO_SEAL_ROWS {
        return Err(err(format!(
            "footprint: rows must be from 1 to {}",
            NO_SEAL_ROWS - 1
        )));
    }
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("footprint");
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    write_events_async(&dir, rows, 1).await?;
    let setup = setup_with_threshold(NO_SEAL_ROWS)?;
    let schema = schema()?;
    let core = Core::create(&dir, &setup, &schema).await?;
    let rss_before_kib = rss_kib();
    let start = Instant::now();
    let ingested = async {
        core.start(&setup.table, &schema).await?;
        wait_queryable(&core, rows, cfg.poll, start).await
    }
    .await;
    // Let the loop settle (it only polls the file now) before reading the RSS.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rss_after_kib = rss_kib();
    let snaps = consuming_snapshots(&core);
    let columns = core
        .segments
        .table(TABLE)
        .map(|t| t.columns.clone())
        .ok_or_else(|| err("footprint: the table is not registered"));
    core.stop().await;
    drop(core);
    ingested?;
    let columns = columns?;
    let snap = match snaps.as_slice() {
        [s] if s.num_rows as u64 == rows => s.clone(),
        _ => {
            return Err(err(format!(
                "footprint: expected one consuming segment of {rows} rows, found {:?}",
                snaps.iter().map(|s| s.num_rows).collect::<Vec<_>>()
            )))
        }
    };
    let column_bytes: Vec<ColumnBytes> = columns
        .columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let arrays = || snap.batches.iter().map(move |b| b.column(i));
            ColumnBytes {
                name: c.name.clone(),
                held: arrays().map(|a| a.get_array_memory_size()).sum(),
                used: arrays()
                    .map(|a| a.to_data().get_slice_memory_size().unwrap_or(0))
                    .sum(),
            }
        })
        .collect();

    let options = vec![
        (
            "sealed, SealOptions::default() (dictionaries, no index)",
            "default.seg",
            SealOptions::default(),
        ),
        (
            "sealed, the bench table's options (time column; no index configured)",
            "table.seg",
            SealOptions::from_table(&setup.table),
        ),
        (
            "sealed, with indexes (inverted country+device, range ts+price, bloom uuid)",
            "indexed.seg",
            SealOptions::from_table(&indexed_table()?),
        ),
    ];
    let (d, c, s) = (dir.clone(), columns.clone(), snap.clone());
    let stored = tokio::task::spawn_blocking(move || {
        let mut sealed = Vec::new();
        for (what, file, opts) in &options {
            sealed.push(seal_sized(&d, what, file, &c, &s, opts)?);
        }
        let parquet = parquet_sized(&d, &s)?;
        Ok::<_, BenchError>((sealed, parquet))
    })
    .await
    .map_err(|e| err(format!("seal task: {e}")));
    // The sealer's next step after write and open: the upload (to a file:// deep store).
    let upload_secs = match &stored {
        Ok(Ok(_)) => {
            let deep = dir.join("deepstore");
            std::fs::create_dir_all(&deep).map_err(|e| io_err("create", &deep, e))?;
            let deep = std::path::absolute(&deep).map_err(|e| io_err("resolve", &deep, e))?;
            let store = riffle_storage::DeepStore::open(
                &format!("file://{}", deep.display()),
                &std::collections::BTreeMap::new(),
            )
            .map_err(|e| err(format!("deep store: {e}")))?;
            let t = Instant::now();
            let up = store
                .upload(&dir.join("table.seg"), "bench_events_REALTIME", "footprint")
                .await;
            up.ok().map(|_| t.elapsed().as_secs_f64())
        }
        _ => None,
    };
    let _ = std::fs::remove_dir_all(&dir);
    let (sealed, parquet) = stored??;
    Ok(FootprintReport {
        upload_secs,
        machine,
        load_before,
        load_after: LoadAvg::read(),
        rows,
        consuming_bytes: snap.bytes,
        batches: snap.batches.len(),
        column_bytes,
        rss_before_kib,
        rss_after_kib,
        sealed,
        parquet,
    })
}

impl fmt::Display for FootprintReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        header(
            f,
            "Riffle footprint benchmark: memory per row of a consuming segment, sealed size per row against Parquet",
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(f)?;
        let rows = self.rows;
        writeln!(
            f,
            "-- consuming segment: {} rows of {LINE_BYTES}-byte JSON lines (1 partition, {} Arrow batches) --",
            thousands(rows as f64),
            self.batches
        )?;
        writeln!(
            f,
            "   ConsumingSnapshot.bytes {:.1} MB = {:.1} bytes/row (the default 1 GiB cap ends a segment at about {} rows)",
            self.consuming_bytes as f64 / 1e6,
            per_row(self.consuming_bytes as f64, rows),
            thousands(DEFAULT_CAP_BYTES as f64 / per_row(self.consuming_bytes as f64, rows).max(1e-9))
        )?;
        let cols: Vec<String> = self
            .column_bytes
            .iter()
            .map(|c| {
                format!(
                    "{} {:.1} ({:.1})",
                    c.name,
                    per_row(c.held as f64, rows),
                    per_row(c.used as f64, rows)
                )
            })
            .collect();
        let used: usize = self.column_bytes.iter().map(|c| c.used).sum();
        writeln!(
            f,
            "   per column, bytes/row held (used by values, offsets, validity): {}",
            cols.join(", ")
        )?;
        writeln!(
            f,
            "   used {:.1} bytes/row: {:.0}% of what is held is spare buffer capacity",
            per_row(used as f64, rows),
            100.0 * (1.0 - used as f64 / (self.consuming_bytes.max(1) as f64))
        )?;
        match (
            self.rss_before_kib,
            self.rss_after_kib,
            self.rss_bytes_per_row(),
        ) {
            (Some(a), Some(b), Some(r)) => writeln!(
                f,
                "   process RSS {:.1} MB -> {:.1} MB: delta {:.1} bytes/row (includes freed memory the allocator keeps)",
                a as f64 * 1024.0 / 1e6,
                b as f64 * 1024.0 / 1e6,
                r
            )?,
            _ => writeln!(f, "   process RSS: n/a (/proc/self/status unreadable)")?,
        }
        writeln!(f)?;
        writeln!(f, "-- the same rows on disk --")?;
        writeln!(
            f,
            "   {:<78} {:>12} {:>10} {:>9} {:>12}",
            "form", "bytes", "bytes/row", "vs pq", "write rows/s"
        )?;
        let pq = self.parquet.bytes as f64;
        let line = |f: &mut fmt::Formatter<'_>, s: &StoredSize| {
            writeln!(
                f,
                "   {:<78} {:>12} {:>10.2} {:>8.2}x {:>12}",
                s.what,
                thousands(s.bytes as f64),
                per_row(s.bytes as f64, rows),
                s.bytes as f64 / pq.max(1.0),
                thousands(rows as f64 / s.secs.max(1e-9))
            )
        };
        writeln!(
            f,
            "   {:<78} {:>12} {:>10.2} {:>8.2}x {:>12}",
            "JSON lines (the stream file)",
            thousands((rows * LINE_BYTES as u64) as f64),
            LINE_BYTES as f64,
            (rows * LINE_BYTES as u64) as f64 / pq.max(1.0),
            "-"
        )?;
        for s in &self.sealed {
            line(f, s)?;
        }
        line(f, &self.parquet)?;
        writeln!(
            f,
            "   (write rows/s: one thread, including the fsync and, for sealed files, the rename)"
        )?;
        if let Some(s) = self.sealed.get(1) {
            let open = s.open_secs.unwrap_or(0.0);
            let up = self.upload_secs.unwrap_or(0.0);
            writeln!(
                f,
                "   sealer steps for the table-options file, one thread: write {:.3} s, open and check {:.3} s, upload to file:// {:.3} s = {:.0} ns/row ({} rows/s; the catalog commit is not included)",
                s.secs,
                open,
                up,
                (s.secs + open + up) * 1e9 / rows.max(1) as f64,
                thousands(rows as f64 / (s.secs + open + up).max(1e-9))
            )?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_threshold_table_has_exact_segment_rows() {
        let s = setup_with_threshold(1_000_000).unwrap();
        let sc = s.table.stream_configs().unwrap().remove(0);
        assert_eq!(sc.flush.segment_rows, Some(1_000_000));
        assert!(!sc.flush.is_autotune());
        assert_eq!(s.max_consuming_bytes, Some(UNCAPPED_BYTES));
    }

    #[test]
    fn test_indexed_table_options() {
        let o = SealOptions::from_table(&indexed_table().unwrap());
        assert!(o.inverted.contains("country") && o.inverted.contains("device"));
        assert!(o.range.contains("ts") && o.range.contains("price"));
        assert!(o.bloom.contains("uuid"));
    }

    #[test]
    fn test_rows_of_partition_and_median() {
        for parts in 1..5u64 {
            for rows in 0..20u64 {
                let sum: u64 = (0..parts).map(|p| rows_of_partition(rows, p, parts)).sum();
                assert_eq!(sum, rows);
            }
        }
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0]), 2.5);
        assert_eq!(median(Vec::new()), 0.0);
    }

    /// The three benchmarks end to end, tiny: the figures are meaningless, the checks inside
    /// (exact row counts, seals committed, nothing committed before the crash) are not.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn test_benchmarks_run_small() {
        let dir = tempfile::tempdir().unwrap();
        let mut cfg = LifecycleBenchConfig::new(dir.path().to_path_buf());
        cfg.seal_rows = 20_000;
        cfg.threshold = 5_000;
        cfg.rounds = 1;
        cfg.latency_rate = Some(10_000);
        cfg.latency_secs = 0.5;
        cfg.restart_rows = 20_000;
        cfg.footprint_rows = 5_000;
        let seal = run_seal_bench(&cfg).await.unwrap();
        assert_eq!(seal.expected_seals, 4);
        assert_eq!(seal.runs.len(), 2);
        assert!(seal
            .runs
            .iter()
            .filter(|r| r.seals)
            .all(|r| r.report.all_committed_secs.is_some()));
        assert_eq!(seal.latency.len(), 2);
        assert!(seal.to_string().contains("ratio seals/no seal"));
        let restart = run_restart_bench(&cfg).await.unwrap();
        assert_eq!(restart.in_progress, 1);
        assert!(restart.queryable_secs > 0.0);
        let fp = run_footprint_bench(&cfg).await.unwrap();
        assert_eq!(fp.sealed.len(), 3);
        assert!(fp.consuming_bytes > 0 && fp.parquet.bytes > 0);
        assert!(fp.to_string().contains("Parquet"));
    }
}
