//! The ingestion benchmark: how fast rows from the `file` stream become queryable, beside a
//! read-only and a naive-decode run of the same files, and where the time goes.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use riffle_common::{now_ms, PartitionId};
use riffle_decode::{decode_batch, decoder_for, SpecialColumns};
use riffle_segment::{BlockBuilder, ConsumingSegment, TableColumns};
use riffle_stream::{StreamContext, StreamOffset, StreamRegistry};

use crate::*;

/// What to run.
#[derive(Debug, Clone)]
pub struct IngestBenchConfig {
    /// Events of the throughput phase.
    pub rows: u64,
    /// Partitions (files) of both phases; 1 is the one-core figure.
    pub partitions: u32,
    /// Rows per second the latency writer appends.
    pub latency_rate: u64,
    /// How long the latency writer appends, in seconds (0 skips the latency phase).
    pub latency_secs: f64,
    /// The latency writer's tick.
    pub tick: Duration,
    /// How often the published row count is polled.
    pub poll: Duration,
    /// Run the read-only and naive-decode comparisons.
    pub comparisons: bool,
    /// Run the stage split (fetch / decode / publish timed one after the other).
    pub splits: bool,
    /// Where stream files and catalogs go (must exist; the caller removes it).
    pub work_dir: PathBuf,
}

impl IngestBenchConfig {
    /// The defaults: 5,000,000 rows on 1 partition, 100,000 rows/s for 10 s in 5 ms
    /// ticks, 1 ms polling, comparisons and stage split on.
    pub fn new(work_dir: PathBuf) -> IngestBenchConfig {
        IngestBenchConfig {
            rows: 5_000_000,
            partitions: 1,
            latency_rate: 100_000,
            latency_secs: 10.0,
            tick: Duration::from_millis(5),
            poll: Duration::from_millis(1),
            comparisons: true,
            splits: true,
            work_dir,
        }
    }
}

/// The machine the figures come from.

#[derive(Debug, Clone, PartialEq)]
pub struct ThroughputReport {
    /// Partitions.
    pub partitions: u32,
    /// Seconds spent writing the files (not part of the figure).
    pub write_secs: f64,
    /// Seconds to prepare and create the table (not part of the figure).
    pub create_secs: f64,
    /// From `start_table` until every row was queryable.
    pub queryable: Rate,
    /// When the first rows were queryable, after `start_table`.
    pub first_rows_secs: f64,
    /// CPU seconds the process used while ingesting.
    pub cpu_secs: Option<f64>,
    /// Load average before the phase.
    pub load_before: Option<LoadAvg>,
    /// Load average after the phase.
    pub load_after: Option<LoadAvg>,
    /// The longest time the published row count stood still between the first rows and
    /// the last (a stall, e.g. while the loop waits for a seal).
    pub max_stall_secs: f64,
    /// Segments committed (sealed) when every row was queryable.
    pub committed_at_queryable: u64,
    /// From `start_table` until the segments the caller waited for had committed.
    pub all_committed_secs: Option<f64>,
}

/// Where the time of the partition loop goes, stage by stage, one thread.
#[derive(Debug, Clone, PartialEq)]
pub struct StageSplit {
    /// Rows.
    pub rows: u64,
    /// File bytes.
    pub bytes: u64,
    /// Fetches.
    pub fetches: u64,
    /// Seconds in `PartitionConsumer::fetch` (file read and line split).
    pub fetch_secs: f64,
    /// Seconds in `decode_batch` (JSON to column builders).
    pub decode_secs: f64,
    /// Seconds in `BlockBuilder::finish` (builders to an Arrow batch).
    pub finish_secs: f64,
    /// Seconds in `ConsumingSegment::append` (publish, merging small batches).
    pub publish_secs: f64,
}

impl StageSplit {
    pub fn total(&self) -> f64 {
        self.fetch_secs + self.decode_secs + self.finish_secs + self.publish_secs
    }
}

/// The latency phase.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyReport {
    /// Target rows per second.
    pub rate: u64,
    /// Seconds the writer ran.
    pub secs: f64,
    /// Rows written (and verified queryable).
    pub rows: u64,
    /// Rows per second the writer achieved.
    pub achieved_rate: f64,
    /// Ticks (latency samples).
    pub samples: usize,
    /// Ticks where the writer woke more than one tick late.
    pub late_ticks: usize,
    /// 50th percentile.
    pub p50: Duration,
    /// 90th percentile.
    pub p90: Duration,
    /// 99th percentile.
    pub p99: Duration,
    /// Maximum.
    pub max: Duration,
    /// Mean.
    pub mean: Duration,
    /// Load average before the phase.
    pub load_before: Option<LoadAvg>,
    /// Load average after the phase.
    pub load_after: Option<LoadAvg>,
    /// Segments committed (sealed) while the writer ran and the last rows arrived.
    pub segments_committed: u64,
    /// Each second of the run (by tick): its p90 and max latency.
    pub per_second: Vec<(Duration, Duration)>,
}

/// Everything one run measured.
#[derive(Debug, Clone, PartialEq)]
pub struct IngestBenchReport {
    /// The machine.
    pub machine: MachineFacts,
    /// Load average before the run.
    pub load_before: Option<LoadAvg>,
    /// Load average after the run.
    pub load_after: Option<LoadAvg>,
    /// Rows of the throughput phase.
    pub rows: u64,
    /// Partitions.
    pub partitions: u32,
    /// The throughput phase.
    pub throughput: ThroughputReport,
    /// Comparison: the file plugin's fetch loop, no decoding.
    pub read_only: Option<Rate>,
    /// Comparison: `serde_json::Value` per line, one thread.
    pub naive_decode: Option<Rate>,
    /// Stage split.
    pub split: Option<StageSplit>,
    /// The latency phase.
    pub latency: Option<LatencyReport>,
}

pub async fn throughput(
    cfg: &IngestBenchConfig,
    data_dir: &Path,
) -> Result<ThroughputReport, BenchError> {
    let t = Instant::now();
    let bytes = write_events_async(data_dir, cfg.rows, cfg.partitions).await?;
    let write_secs = t.elapsed().as_secs_f64();
    let mut r = throughput_run(cfg, data_dir, &TableSetup::bench_default()?, bytes, None).await?;
    r.write_secs = write_secs;
    Ok(r)
}

/// The throughput phase on stream files already under `data_dir` (`cfg.rows` events in
/// `cfg.partitions` files, `bytes` in all): opens a node there, then times from the table's
/// creation (consumption starts with it) until every row is queryable. With
/// `wait_commits`, then waits until that many segments have committed (sealed, uploaded, in
/// the catalog) and records when.
pub async fn throughput_run(
    cfg: &IngestBenchConfig,
    data_dir: &Path,
    setup: &TableSetup,
    bytes: u64,
    wait_commits: Option<u64>,
) -> Result<ThroughputReport, BenchError> {
    let schema = schema()?;
    let load_before = LoadAvg::read();
    let t = Instant::now();
    let core = Core::open(data_dir, setup).await?;
    let create_secs = t.elapsed().as_secs_f64();

    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    core.create_table(setup, &schema).await?;
    let expected = cfg.rows;
    let poll = cfg.poll;
    let segments = core.segments();
    let tables = core.node.tables().clone();
    let name = core.name.clone();
    type Watched = (Duration, Duration, Duration);
    let watch = tokio::task::spawn_blocking(move || -> Result<Watched, BenchError> {
        let mut first = None;
        let mut last = (0u64, Instant::now());
        let mut max_stall = Duration::ZERO;
        let mut checked = Instant::now();
        loop {
            let n = published(&segments);
            let now = Instant::now();
            if n > 0 && first.is_none() {
                first = Some(now - start);
            }
            if n != last.0 && last.0 > 0 {
                max_stall = max_stall.max(now - last.1);
            }
            if n >= expected {
                if n != expected {
                    return Err(err(format!(
                        "published {n} rows, expected exactly {expected}"
                    )));
                }
                return Ok((now - start, first.unwrap_or_default(), max_stall));
            }
            if n != last.0 {
                last = (n, now);
            } else if now - last.1 > Duration::from_secs(60) {
                return Err(err(format!(
                    "no progress for 60 s at {n} of {expected} rows"
                )));
            }
            if now - checked > Duration::from_millis(100) {
                checked = now;
                let failed = failure_of(&tables.server().status(&name).unwrap_or_default());
                if let Some(e) = failed {
                    return Err(err(format!("partition stopped: {e}")));
                }
            }
            std::thread::sleep(poll);
        }
    });
    let watched = watch.await.map_err(|e| err(format!("watcher task: {e}")));
    let cpu1 = process_cpu_secs();
    let load_after = LoadAvg::read();
    let committed_at_queryable = core.segments_committed();
    let (elapsed, first, max_stall) = match watched.and_then(|r| r) {
        Ok(x) => x,
        Err(e) => {
            core.stop().await;
            return Err(e);
        }
    };
    // The counters agree with the published rows: nothing dropped or read twice. (The loop
    // updates its counters just after it publishes, so they may lag the count briefly.)
    let counted = Instant::now();
    let (read, errors) = loop {
        let status = core.status();
        let read: u64 = status.iter().map(|s| s.messages_read).sum();
        let errors: u64 = status.iter().map(|s| s.decode_errors).sum();
        if read >= expected || counted.elapsed() > Duration::from_secs(5) {
            break (read, errors);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    };
    let mut all_committed_secs = None;
    if let Some(want) = wait_commits {
        loop {
            if core.segments_committed() >= want {
                all_committed_secs = Some(start.elapsed().as_secs_f64());
                break;
            }
            if let Some(f) = core.failure() {
                core.stop().await;
                return Err(err(f));
            }
            if start.elapsed() > Duration::from_secs(600) {
                let got = core.segments_committed();
                core.stop().await;
                return Err(err(format!(
                    "{got} of {want} segments committed after 600 s"
                )));
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    let failure = core.failure();
    core.stop().await;
    if let Some(f) = failure {
        return Err(err(f));
    }
    if read != expected || errors != 0 {
        return Err(err(format!(
            "partitions read {read} messages with {errors} decode errors, expected {expected} and 0"
        )));
    }
    Ok(ThroughputReport {
        partitions: cfg.partitions,
        write_secs: 0.0,
        create_secs,
        queryable: Rate {
            rows: expected,
            bytes,
            secs: elapsed.as_secs_f64(),
        },
        first_rows_secs: first.as_secs_f64(),
        cpu_secs: cpu0.zip(cpu1).map(|(a, b)| b - a),
        load_before,
        load_after,
        max_stall_secs: max_stall.as_secs_f64(),
        committed_at_queryable,
        all_committed_secs,
    })
}

/// Passes of the read-only comparison; the fastest is reported. One pass is short and
/// bound by allocating and faulting in fresh fetch buffers, so single passes vary by 2-3x.
pub const READ_ONLY_PASSES: usize = 3;

/// The file plugin's fetch loop over every partition file, concurrently, no decoding: the
/// fastest of [`READ_ONLY_PASSES`] passes.
pub async fn read_only(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<Rate, BenchError> {
    let mut best: Option<Rate> = None;
    for _ in 0..READ_ONLY_PASSES {
        let r = read_only_pass(cfg, data_dir).await?;
        if best.is_none_or(|b| r.secs < b.secs) {
            best = Some(r);
        }
    }
    best.ok_or_else(|| err("read-only comparison: no pass"))
}

/// One pass of the read-only comparison.
pub async fn read_only_pass(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<Rate, BenchError> {
    let sc = stream_config(&table_config()?)?;
    let plugin = StreamRegistry::with_builtins()
        .plugin_for(&sc)
        .map_err(|e| err(format!("file plugin: {e}")))?;
    let ctx = StreamContext::new(data_dir.to_path_buf());
    let start = Instant::now();
    let mut tasks = Vec::new();
    for p in 0..cfg.partitions {
        let path = partition_file(data_dir, p);
        let len = std::fs::metadata(&path)
            .map_err(|e| io_err("stat", &path, e))?
            .len() as i64;
        let (plugin, sc, ctx) = (plugin.clone(), sc.clone(), ctx.clone());
        tasks.push(tokio::spawn(async move {
            let mut c = plugin
                .partition_consumer(&sc, &ctx, PartitionId(p))
                .await
                .map_err(|e| err(format!("consumer: {e}")))?;
            let mut offset = StreamOffset::Long(0);
            let (mut rows, mut bytes) = (0u64, 0u64);
            while offset.as_i64() != Some(len) {
                let b = c
                    .fetch(&offset, Duration::from_secs(5))
                    .await
                    .map_err(|e| err(format!("fetch: {e}")))?;
                rows += b.messages.len() as u64;
                bytes += (b.size_bytes + b.unfiltered_count) as u64;
                std::hint::black_box(&b.messages);
                offset = b.next_offset;
            }
            Ok::<_, BenchError>((rows, bytes))
        }));
    }
    let (mut rows, mut bytes) = (0, 0);
    for t in tasks {
        let (r, b) = t.await.map_err(|e| err(format!("read task: {e}")))??;
        rows += r;
        bytes += b;
    }
    let secs = start.elapsed().as_secs_f64();
    if rows != cfg.rows {
        return Err(err(format!(
            "read-only pass read {rows} rows, expected {}",
            cfg.rows
        )));
    }
    Ok(Rate { rows, bytes, secs })
}

/// `serde_json::Value` per line (a per-row map), one thread; reading the files and finding
/// the lines is not timed.
pub fn naive_decode(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<Rate, BenchError> {
    let mut secs = 0.0;
    let (mut rows, mut bytes) = (0u64, 0u64);
    for p in 0..cfg.partitions {
        let path = partition_file(data_dir, p);
        let data = std::fs::read(&path).map_err(|e| io_err("read", &path, e))?;
        let mut lines = Vec::with_capacity(data.len() / LINE_BYTES + 1);
        let mut s = 0;
        for (i, b) in data.iter().enumerate() {
            if *b == b'\n' {
                lines.push((s, i));
                s = i + 1;
            }
        }
        let t = Instant::now();
        for &(a, b) in &lines {
            let v: serde_json::Value = serde_json::from_slice(&data[a..b])
                .map_err(|e| err(format!("naive decode: {e}")))?;
            std::hint::black_box(&v);
        }
        secs += t.elapsed().as_secs_f64();
        rows += lines.len() as u64;
        bytes += data.len() as u64;
    }
    Ok(Rate { rows, bytes, secs })
}

/// The partition loop's stages, one after the other on this task, each timed.
pub async fn stage_split(
    cfg: &IngestBenchConfig,
    data_dir: &Path,
) -> Result<StageSplit, BenchError> {
    let table = table_config()?;
    let schema = schema()?;
    let sc = stream_config(&table)?;
    let columns = TableColumns::new(schema.columns().map_err(|e| err(format!("columns: {e}")))?);
    let plugin = StreamRegistry::with_builtins()
        .plugin_for(&sc)
        .map_err(|e| err(format!("file plugin: {e}")))?;
    let ctx = StreamContext::new(data_dir.to_path_buf());
    let mut split = StageSplit {
        rows: 0,
        bytes: 0,
        fetches: 0,
        fetch_secs: 0.0,
        decode_secs: 0.0,
        finish_secs: 0.0,
        publish_secs: 0.0,
    };
    for p in 0..cfg.partitions {
        let path = partition_file(data_dir, p);
        let len = std::fs::metadata(&path)
            .map_err(|e| io_err("stat", &path, e))?
            .len() as i64;
        let mut decoder = decoder_for(&sc, &columns, &Default::default())
            .map_err(|e| err(format!("decoder: {e}")))?;
        let special = SpecialColumns::new(&columns, sc.metadata_populate);
        let segment = ConsumingSegment::new(
            format!("{TABLE}__{p}__0__split"),
            PartitionId(p),
            0,
            "0".into(),
            now_ms(),
            columns.clone(),
        );
        let mut builder = BlockBuilder::new(columns.clone(), 1024);
        let mut c = plugin
            .partition_consumer(&sc, &ctx, PartitionId(p))
            .await
            .map_err(|e| err(format!("consumer: {e}")))?;
        let rows_before_partition = split.rows;
        let mut offset = StreamOffset::Long(0);
        while offset.as_i64() != Some(len) {
            let t0 = Instant::now();
            let batch = c
                .fetch(&offset, Duration::from_secs(5))
                .await
                .map_err(|e| err(format!("fetch: {e}")))?;
            let t1 = Instant::now();
            let stats = decode_batch(
                decoder.as_mut(),
                &special,
                p,
                &batch.messages,
                &mut builder,
                false,
            );
            let t2 = Instant::now();
            let rows = builder.finish().map_err(|e| err(format!("finish: {e}")))?;
            let t3 = Instant::now();
            segment
                .append(
                    Some(rows),
                    batch.next_offset.clone(),
                    batch.messages.len() as u64,
                    stats.latest_timestamp_ms,
                    now_ms(),
                )
                .map_err(|e| err(format!("append: {e}")))?;
            let t4 = Instant::now();
            if stats.errors > 0 {
                return Err(err(format!("stage split: {} decode errors", stats.errors)));
            }
            split.fetches += 1;
            split.rows += stats.rows as u64;
            split.bytes += (batch.size_bytes + batch.unfiltered_count) as u64;
            split.fetch_secs += (t1 - t0).as_secs_f64();
            split.decode_secs += (t2 - t1).as_secs_f64();
            split.finish_secs += (t3 - t2).as_secs_f64();
            split.publish_secs += (t4 - t3).as_secs_f64();
            offset = batch.next_offset;
        }
        let in_segment = segment.snapshot().num_rows as u64;
        if in_segment != split.rows - rows_before_partition {
            return Err(err(format!(
                "stage split: partition {p} segment holds {in_segment} rows, decoded {}",
                split.rows - rows_before_partition
            )));
        }
    }
    if split.rows != cfg.rows {
        return Err(err(format!(
            "stage split decoded {} rows, expected {}",
            split.rows, cfg.rows
        )));
    }
    Ok(split)
}

/// Runs the benchmark (see the crate documentation) on the current tokio runtime.
pub async fn run_ingest_bench(cfg: IngestBenchConfig) -> Result<IngestBenchReport, BenchError> {
    if cfg.rows == 0 || cfg.partitions == 0 {
        return Err(err("rows and partitions must be at least 1"));
    }
    if cfg.rows < cfg.partitions as u64 {
        return Err(err("rows must be at least the number of partitions"));
    }
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();

    let tp_dir = cfg.work_dir.join("throughput");
    std::fs::create_dir_all(&tp_dir).map_err(|e| io_err("create", &tp_dir, e))?;
    let throughput = throughput(&cfg, &tp_dir).await?;

    let (read_only, naive_decode) = if cfg.comparisons {
        let r = read_only(&cfg, &tp_dir).await?;
        let (c, d) = (cfg.clone(), tp_dir.clone());
        let n = tokio::task::spawn_blocking(move || naive_decode(&c, &d))
            .await
            .map_err(|e| err(format!("naive decode task: {e}")))??;
        (Some(r), Some(n))
    } else {
        (None, None)
    };
    let split = if cfg.splits {
        Some(stage_split(&cfg, &tp_dir).await?)
    } else {
        None
    };
    // The throughput files are not needed any more.
    let _ = std::fs::remove_dir_all(&tp_dir);

    let latency = if cfg.latency_secs > 0.0 && cfg.latency_rate > 0 {
        let dir = cfg.work_dir.join("latency");
        std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
        let l = crate::latency::latency(&cfg, &dir).await?;
        let _ = std::fs::remove_dir_all(&dir);
        Some(l)
    } else {
        None
    };

    Ok(IngestBenchReport {
        machine,
        load_before,
        load_after: LoadAvg::read(),
        rows: cfg.rows,
        partitions: cfg.partitions,
        throughput,
        read_only,
        naive_decode,
        split,
        latency,
    })
}
