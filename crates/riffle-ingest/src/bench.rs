//! The ingestion benchmark: how fast rows from the `file` stream become queryable, and how
//! long a row appended to a running table takes to become queryable.
//!
//! Library code so that the bench target (`cargo bench -p riffle-ingest --bench ingest`) and,
//! later, the `riffle` binary (`riffle bench ingest`) run the same thing.
//!
//! Phases (all in-process: catalog, segment registry and [`IngestManager`] on the caller's
//! tokio runtime, exactly as the server wires them):
//!
//! - **Throughput** ("rows/s to queryable"): `rows` events of [`EVENT_BYTES`] bytes are
//!   written to `partitions` files *before* the table exists; the table is created
//!   (`auto.offset.reset=smallest`), a clock starts, and the published row count (what a
//!   SQL query sees: the sum of `SegmentRef::rows().num_rows`) is polled every
//!   millisecond until it equals `rows`. The count must end exactly at `rows`.
//! - **Comparisons**, same invocation, same files: *read only* (the file plugin's
//!   `PartitionConsumer::fetch` loop, no decoding: the ceiling of the stream path) and
//!   *naive decode* (`serde_json::from_slice::<serde_json::Value>` per line, one thread:
//!   the per-row map Riffle's decoder avoids).
//! - **Stage split** (optional): the partition loop's stages run one after the other on one
//!   thread (fetch, decode into column builders, publish into a consuming segment), each
//!   timed, to show where the time goes.
//! - **Latency** ("publish-to-query"): a table consumes an empty topic; a writer thread
//!   appends `latency_rate` rows/s in ticks of `tick` and records, per tick, the cumulative
//!   row count and the instant its write returned; a watcher thread polls the published
//!   count every `poll` and records when each tick's count was first reached.
//!
//! Every phase records the load average before and after: a figure measured while the
//! machine was busy is not a figure.
//!
//! The segment-lifecycle benchmarks (rate and latency with and without seals, restart after
//! a crash, bytes per row) reuse these phases and live in [`crate::bench_lifecycle`].

use std::collections::VecDeque;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use riffle_catalog::Catalog;
use riffle_common::{now_ms, PartitionId};
use riffle_config::{Schema, StreamConfig, TableConfig};
use riffle_decode::{decode_batch, decoder_for, SpecialColumns};
use riffle_segment::{BlockBuilder, ConsumingSegment, SegmentRegistry, TableColumns};
use riffle_stream::{StreamContext, StreamOffset, StreamRegistry};

use crate::{IngestContext, IngestManager, PartitionState};

/// Bytes of one event, without its newline.
pub const EVENT_BYTES: usize = 146;

/// Bytes of one event line in the file, with its newline.
pub const LINE_BYTES: usize = EVENT_BYTES + 1;

/// Raw table name (and topic) of the benchmark.
pub const TABLE: &str = "bench_events";

/// The event time of event 0 (2023-11-14T22:13:20Z); event `i` is `i` ms later.
const BASE_TS_MS: i64 = 1_700_000_000_000;

/// Countries (ISO codes), picked uniformly.
const COUNTRIES: [&str; 12] = [
    "US", "DE", "FR", "GB", "IN", "BR", "JP", "CA", "NL", "ES", "IT", "SE",
];

/// Device kinds; the rest of the device field is a build string that pads the event.
const DEVICES: [&str; 6] = [
    "android",
    "ios",
    "web",
    "smart-tv",
    "android-tablet",
    "ipad",
];

/// Build strings pad the device field to make every event exactly [`EVENT_BYTES`].
const BUILD: &str = "build-2024.11.3-rc7-8f3a2c9d1e0b4a6f";

/// The benchmark table's schema.
pub const SCHEMA_JSON: &str = r#"{
  "schemaName": "bench_events",
  "dimensionFieldSpecs": [
    {"name": "uuid", "dataType": "STRING"},
    {"name": "country", "dataType": "STRING"},
    {"name": "device", "dataType": "STRING"}
  ],
  "metricFieldSpecs": [
    {"name": "count", "dataType": "INT"},
    {"name": "price", "dataType": "DOUBLE"}
  ],
  "dateTimeFieldSpecs": [
    {"name": "ts", "dataType": "TIMESTAMP", "format": "1:MILLISECONDS:EPOCH",
     "granularity": "1:MILLISECONDS"}
  ]
}"#;

/// The benchmark table's config: the `file` stream, Pinot's Kafka JSON decoder (an alias),
/// reading from the smallest offset. Flush settings are those of `examples/events`.
pub const TABLE_CONFIG_JSON: &str = r#"{
  "tableName": "bench_events",
  "tableType": "REALTIME",
  "segmentsConfig": {
    "timeColumnName": "ts",
    "schemaName": "bench_events",
    "replicasPerPartition": "1"
  },
  "tenants": {},
  "tableIndexConfig": {
    "loadMode": "MMAP",
    "streamConfigs": {
      "streamType": "file",
      "stream.file.topic.name": "bench_events",
      "stream.file.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
      "stream.file.consumer.prop.auto.offset.reset": "smallest",
      "realtime.segment.flush.threshold.rows": "0",
      "realtime.segment.flush.threshold.time": "24h",
      "realtime.segment.flush.threshold.segment.size": "100M"
    }
  },
  "metadata": {}
}"#;

/// A benchmark failure.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchError(pub String);

impl fmt::Display for BenchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for BenchError {}

pub(crate) fn err(msg: impl Into<String>) -> BenchError {
    BenchError(msg.into())
}

pub(crate) fn io_err(what: &str, path: &Path, e: std::io::Error) -> BenchError {
    err(format!("{what} '{}': {e}", path.display()))
}

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
    /// The issue's defaults: 5,000,000 rows on 1 partition, 100,000 rows/s for 10 s in 5 ms
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
pub struct MachineFacts {
    /// Logical CPUs available to the process.
    pub nproc: usize,
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// MemTotal from /proc/meminfo, in GiB.
    pub mem_gib: f64,
}

impl MachineFacts {
    /// Reads the facts of this machine (unknown parts are empty / 0).
    pub fn read() -> MachineFacts {
        let nproc = std::thread::available_parallelism().map_or(0, |n| n.get());
        let cpu_model = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, v)| v.trim().to_string())
            })
            .unwrap_or_default();
        let mem_gib = std::fs::read_to_string("/proc/meminfo")
            .ok()
            .and_then(|s| {
                s.lines()
                    .find(|l| l.starts_with("MemTotal:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
            .map_or(0.0, |kb| kb / (1024.0 * 1024.0));
        MachineFacts {
            nproc,
            cpu_model,
            mem_gib,
        }
    }
}

/// /proc/loadavg.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LoadAvg {
    /// 1-minute load.
    pub one: f64,
    /// 5-minute load.
    pub five: f64,
    /// 15-minute load.
    pub fifteen: f64,
}

impl LoadAvg {
    /// The load average now, if /proc/loadavg is readable.
    pub fn read() -> Option<LoadAvg> {
        let s = std::fs::read_to_string("/proc/loadavg").ok()?;
        let mut it = s.split_whitespace().map(|x| x.parse::<f64>().ok());
        Some(LoadAvg {
            one: it.next()??,
            five: it.next()??,
            fifteen: it.next()??,
        })
    }
}

impl fmt::Display for LoadAvg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:.2} {:.2} {:.2}", self.one, self.five, self.fifteen)
    }
}

pub(crate) fn load_text(l: Option<LoadAvg>) -> String {
    l.map_or_else(|| "n/a".to_string(), |l| l.to_string())
}

/// CPU seconds (user + system) this process has used, from /proc/self/stat (USER_HZ = 100).
pub fn process_cpu_secs() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The command name may hold spaces; fields start after its closing parenthesis.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state): utime is field 14, stime field 15.
    let utime: f64 = f.get(11)?.parse().ok()?;
    let stime: f64 = f.get(12)?.parse().ok()?;
    Some((utime + stime) / 100.0)
}

/// Rows (and bytes) in a time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    /// Rows.
    pub rows: u64,
    /// File bytes (lines with their newlines).
    pub bytes: u64,
    /// Seconds.
    pub secs: f64,
}

impl Rate {
    /// Rows per second.
    pub fn rows_per_sec(&self) -> f64 {
        self.rows as f64 / self.secs.max(1e-9)
    }

    /// Megabytes (10^6) of file per second.
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.secs.max(1e-9)
    }

    /// Nanoseconds per row.
    pub fn ns_per_row(&self) -> f64 {
        self.secs * 1e9 / (self.rows.max(1) as f64)
    }
}

/// The throughput phase.
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
    fn total(&self) -> f64 {
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

// ---------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------

/// A small deterministic generator (splitmix64).
#[derive(Debug, Clone)]
pub struct EventGen {
    state: u64,
    next: u64,
}

impl EventGen {
    /// A generator whose first event is event 0.
    pub fn new(seed: u64) -> EventGen {
        EventGen {
            state: seed,
            next: 0,
        }
    }

    fn rand(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Appends the next event and its newline to `out`: exactly [`LINE_BYTES`] bytes.
    pub fn push_line(&mut self, out: &mut Vec<u8>) {
        use std::fmt::Write as _;
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let i = self.next;
        self.next += 1;
        let (a, b, c) = (self.rand(), self.rand(), self.rand());
        let mut hex = [0u8; 32];
        for k in 0..16 {
            hex[k] = HEX[((a >> (60 - 4 * k)) & 15) as usize];
            hex[16 + k] = HEX[((b >> (60 - 4 * k)) & 15) as usize];
        }
        hex[12] = b'4'; // version 4
        hex[16] = HEX[8 + (b >> 62) as usize]; // variant 10xx
        let h = |r: std::ops::Range<usize>| std::str::from_utf8(&hex[r]).unwrap_or("0");
        let count = c % 100_000;
        let country = COUNTRIES[((c >> 17) % COUNTRIES.len() as u64) as usize];
        let device = DEVICES[((c >> 23) % DEVICES.len() as u64) as usize];
        let cents = (c >> 29) % 100_000;
        let mut line = String::with_capacity(EVENT_BYTES + 8);
        let _ = write!(
            line,
            r#"{{"ts":{},"uuid":"{}-{}-{}-{}-{}","count":{count},"country":"{country}","device":"{device}"#,
            BASE_TS_MS + i as i64,
            h(0..8),
            h(8..12),
            h(12..16),
            h(16..20),
            h(20..32),
        );
        let price = format!("{}.{:02}", cents / 100, cents % 100);
        let tail = r#"","price":"#.len() + price.len() + 1;
        let pad = EVENT_BYTES.saturating_sub(line.len() + tail);
        if pad > 0 {
            line.push('/');
            line.push_str(&BUILD[..(pad - 1).min(BUILD.len())]);
        }
        let _ = write!(line, r#"","price":{price}}}"#);
        assert_eq!(
            line.len(),
            EVENT_BYTES,
            "bench event is not {EVENT_BYTES} bytes: {line}"
        );
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
}

/// The first event the throughput phase writes, without its newline.
pub fn sample_event() -> String {
    let mut gen = EventGen::new(42);
    let mut buf = Vec::with_capacity(LINE_BYTES);
    gen.push_line(&mut buf);
    String::from_utf8_lossy(&buf[..EVENT_BYTES]).into_owned()
}

/// The partition file of `p` under a data directory.
pub(crate) fn partition_file(data_dir: &Path, p: u32) -> PathBuf {
    data_dir
        .join("streams")
        .join(TABLE)
        .join(format!("{p}.jsonl"))
}

/// Writes `rows` events round-robin into `partitions` files. Returns bytes written.
pub(crate) fn write_events(data_dir: &Path, rows: u64, partitions: u32) -> Result<u64, BenchError> {
    let topic = data_dir.join("streams").join(TABLE);
    std::fs::create_dir_all(&topic).map_err(|e| io_err("create", &topic, e))?;
    let mut files = Vec::new();
    for p in 0..partitions {
        let path = partition_file(data_dir, p);
        let f = File::create(&path).map_err(|e| io_err("create", &path, e))?;
        files.push((path, BufWriter::with_capacity(1 << 20, f)));
    }
    let mut gen = EventGen::new(42);
    let mut line = Vec::with_capacity(LINE_BYTES);
    for i in 0..rows {
        line.clear();
        gen.push_line(&mut line);
        let (path, w) = &mut files[(i % partitions as u64) as usize];
        w.write_all(&line).map_err(|e| io_err("write", path, e))?;
    }
    for (path, mut w) in files {
        w.flush().map_err(|e| io_err("write", &path, e))?;
    }
    Ok(rows * LINE_BYTES as u64)
}

// ---------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------

pub(crate) fn schema() -> Result<Schema, BenchError> {
    Schema::from_json(SCHEMA_JSON.as_bytes()).map_err(|e| err(format!("bench schema: {e}")))
}

pub(crate) fn table_config() -> Result<TableConfig, BenchError> {
    TableConfig::from_json(TABLE_CONFIG_JSON.as_bytes())
        .map_err(|e| err(format!("bench table config: {e}")))
}

fn stream_config(table: &TableConfig) -> Result<StreamConfig, BenchError> {
    table
        .stream_configs()
        .map_err(|e| err(format!("bench stream config: {e}")))?
        .into_iter()
        .next()
        .ok_or_else(|| err("bench table has no stream"))
}

/// The table a phase runs, and how the in-process server is set up for it.
#[derive(Clone, Debug)]
pub(crate) struct TableSetup {
    /// The table config (the bench table, or a variant of it).
    pub(crate) table: TableConfig,
    /// Overrides [`IngestContext::max_consuming_bytes`] (the memory cap of a consuming
    /// segment); `None` keeps the server's default.
    pub(crate) max_consuming_bytes: Option<usize>,
}

impl TableSetup {
    /// The bench table as [`TABLE_CONFIG_JSON`] has it, with the server's defaults.
    pub(crate) fn bench_default() -> Result<TableSetup, BenchError> {
        Ok(TableSetup {
            table: table_config()?,
            max_consuming_bytes: None,
        })
    }
}

/// An in-process server core: catalog, segment registry, ingest manager.
pub(crate) struct Core {
    pub(crate) segments: Arc<SegmentRegistry>,
    pub(crate) manager: Arc<IngestManager>,
    pub(crate) name_with_type: String,
}

impl Core {
    /// Opens (or creates) the catalog under `data_dir` and a manager on it, as a server
    /// does when it starts; starts no table.
    pub(crate) fn open(
        data_dir: &Path,
        table: &TableConfig,
        max_consuming_bytes: Option<usize>,
    ) -> Result<Core, BenchError> {
        let catalog = Arc::new(
            Catalog::open(&data_dir.join("catalog.redb"))
                .map_err(|e| err(format!("catalog: {e}")))?,
        );
        let segments = Arc::new(SegmentRegistry::new());
        let mut ctx = IngestContext::local(
            catalog,
            StreamRegistry::with_builtins(),
            segments.clone(),
            data_dir,
        )
        .map_err(|e| err(format!("ingest context: {e}")))?;
        ctx.discovery_interval = Duration::from_secs(3600);
        if let Some(cap) = max_consuming_bytes {
            ctx.max_consuming_bytes = cap;
        }
        Ok(Core {
            segments,
            manager: Arc::new(IngestManager::new(ctx)),
            name_with_type: table.name_with_type(),
        })
    }

    /// Opens a catalog under `data_dir`, creates the bench table (its partitions are found
    /// now) and returns before consumption starts.
    pub(crate) async fn create(
        data_dir: &Path,
        setup: &TableSetup,
        schema: &Schema,
    ) -> Result<Core, BenchError> {
        let table = &setup.table;
        let core = Core::open(data_dir, table, setup.max_consuming_bytes)?;
        let (metas, _warnings) = core
            .manager
            .prepare_table(table, schema)
            .await
            .map_err(|e| err(format!("prepare table: {e}")))?;
        let config_json = serde_json::to_string(&table.to_json())
            .map_err(|e| err(format!("table config json: {e}")))?;
        core.manager
            .context()
            .catalog
            .create_table(&core.name_with_type, &config_json, None, &metas)
            .map_err(|e| err(format!("create table: {e}")))?;
        Ok(core)
    }

    pub(crate) async fn start(
        &self,
        table: &TableConfig,
        schema: &Schema,
    ) -> Result<(), BenchError> {
        self.manager
            .start_table(table, schema)
            .await
            .map_err(|e| err(format!("start table: {e}")))
    }

    /// A partition that stopped with an error, if any.
    pub(crate) fn failure(&self) -> Option<String> {
        self.manager.status(&self.name_with_type).and_then(|st| {
            st.into_iter()
                .find(|s| s.state == PartitionState::Error)
                .map(|s| {
                    format!(
                        "partition {}: {}",
                        s.partition,
                        s.last_error.unwrap_or_default()
                    )
                })
        })
    }

    pub(crate) async fn stop(&self) {
        self.manager.stop_table(&self.name_with_type).await;
    }

    /// Segments committed by the table's partitions since this core started.
    pub(crate) fn segments_committed(&self) -> u64 {
        self.manager
            .status(&self.name_with_type)
            .unwrap_or_default()
            .iter()
            .map(|s| s.segments_committed)
            .sum()
    }
}

/// Rows a query would see now.
pub(crate) fn published(segments: &SegmentRegistry) -> u64 {
    segments.table(TABLE).map_or(0, |t| {
        t.segments().iter().map(|s| s.num_rows() as u64).sum()
    })
}

// ---------------------------------------------------------------------------------------
// Phases
// ---------------------------------------------------------------------------------------

async fn throughput(
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

/// [`write_events`] on the blocking pool.
pub(crate) async fn write_events_async(
    data_dir: &Path,
    rows: u64,
    partitions: u32,
) -> Result<u64, BenchError> {
    let d = data_dir.to_path_buf();
    tokio::task::spawn_blocking(move || write_events(&d, rows, partitions))
        .await
        .map_err(|e| err(format!("writer task: {e}")))?
}

/// The throughput phase on stream files already under `data_dir` (`cfg.rows` events in
/// `cfg.partitions` files, `bytes` in all): creates `setup`'s table there and times it
/// from `start_table` until every row is queryable. With `wait_commits`, then waits until
/// that many segments have committed (sealed, uploaded, in the catalog) and records when.
pub(crate) async fn throughput_run(
    cfg: &IngestBenchConfig,
    data_dir: &Path,
    setup: &TableSetup,
    bytes: u64,
    wait_commits: Option<u64>,
) -> Result<ThroughputReport, BenchError> {
    let (table, schema) = (&setup.table, schema()?);
    let load_before = LoadAvg::read();
    let t = Instant::now();
    let core = Core::create(data_dir, setup, &schema).await?;
    let create_secs = t.elapsed().as_secs_f64();

    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    core.start(table, &schema).await?;
    let expected = cfg.rows;
    let poll = cfg.poll;
    let segments = core.segments.clone();
    let manager = core.manager.clone();
    let name = core.name_with_type.clone();
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
                let failed = manager.status(&name).and_then(|st| {
                    st.into_iter()
                        .find(|s| s.state == PartitionState::Error)
                        .map(|s| s.last_error.unwrap_or_default())
                });
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
        let status = core
            .manager
            .status(&core.name_with_type)
            .unwrap_or_default();
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

/// Writes `total` rows at `rate` rows/s in ticks of `tick`, then (after `secs`) whatever is
/// left: at each tick `write(from, to)` writes the rows that are due and `published(count,
/// instant)` is told the cumulative count and when its write returned. Returns the elapsed
/// seconds, the ticks that wrote rows and the ticks that woke more than a tick late. Shared
/// by the file-stream and Kafka latency benchmarks.
pub fn paced_writes<E>(
    rate: f64,
    secs: f64,
    tick: Duration,
    total: u64,
    mut write: impl FnMut(u64, u64) -> Result<(), E>,
    mut published: impl FnMut(u64, Instant) -> Result<(), E>,
) -> Result<(f64, usize, usize), E> {
    let start = Instant::now();
    let (mut written, mut ticks, mut late, mut k) = (0u64, 0usize, 0usize, 1u32);
    while written < total {
        let target = start + tick * k;
        k += 1;
        let now = Instant::now();
        if target > now {
            std::thread::sleep(target - now);
        }
        let woke = Instant::now();
        if woke > target + tick {
            late += 1;
        }
        let elapsed = (woke - start).as_secs_f64();
        let due = if elapsed >= secs {
            total
        } else {
            ((rate * elapsed) as u64).min(total)
        };
        if due <= written {
            continue;
        }
        write(written, due)?;
        let at = Instant::now();
        written = due;
        ticks += 1;
        published(written, at)?;
    }
    Ok((start.elapsed().as_secs_f64(), ticks, late))
}

/// Passes of the read-only comparison; the fastest is reported. One pass is short and
/// bound by allocating and faulting in fresh fetch buffers, so single passes vary by 2-3x.
const READ_ONLY_PASSES: usize = 3;

/// The file plugin's fetch loop over every partition file, concurrently, no decoding: the
/// fastest of [`READ_ONLY_PASSES`] passes.
async fn read_only(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<Rate, BenchError> {
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
async fn read_only_pass(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<Rate, BenchError> {
    let sc = stream_config(&table_config()?)?;
    let plugin = StreamRegistry::with_builtins()
        .plugin_for(&sc)
        .map_err(|e| err(format!("file plugin: {e}")))?;
    let ctx = StreamContext {
        data_dir: data_dir.to_path_buf(),
    };
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
fn naive_decode(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<Rate, BenchError> {
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
async fn stage_split(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<StageSplit, BenchError> {
    let table = table_config()?;
    let schema = schema()?;
    let sc = stream_config(&table)?;
    let columns = TableColumns::new(schema.columns().map_err(|e| err(format!("columns: {e}")))?);
    let plugin = StreamRegistry::with_builtins()
        .plugin_for(&sc)
        .map_err(|e| err(format!("file plugin: {e}")))?;
    let ctx = StreamContext {
        data_dir: data_dir.to_path_buf(),
    };
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
        let mut decoder = decoder_for(&sc, &columns).map_err(|e| err(format!("decoder: {e}")))?;
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
                    batch.next_offset.to_string(),
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

/// Number of rows `j < a` with `j % parts == p`.
fn rows_before(a: u64, p: u64, parts: u64) -> u64 {
    (a + parts - 1 - p) / parts
}

async fn latency(cfg: &IngestBenchConfig, data_dir: &Path) -> Result<LatencyReport, BenchError> {
    latency_with(cfg, data_dir, &TableSetup::bench_default()?).await
}

/// The latency phase (see the module documentation) on `setup`'s table.
pub(crate) async fn latency_with(
    cfg: &IngestBenchConfig,
    data_dir: &Path,
    setup: &TableSetup,
) -> Result<LatencyReport, BenchError> {
    let (table, schema) = (&setup.table, schema()?);
    let parts = cfg.partitions as u64;
    let total = (cfg.latency_rate as f64 * cfg.latency_secs).round() as u64;
    if total == 0 {
        return Err(err("latency phase: rate x seconds is 0 rows"));
    }
    // Events, prepared before the clock: partition p holds rows j with j % parts == p.
    let mut buffers: Vec<Vec<u8>> = (0..parts)
        .map(|_| Vec::with_capacity((total / parts + 1) as usize * LINE_BYTES))
        .collect();
    let mut gen = EventGen::new(7);
    for j in 0..total {
        gen.push_line(&mut buffers[(j % parts) as usize]);
    }
    // An empty topic: the partition files exist, with nothing in them.
    let topic = data_dir.join("streams").join(TABLE);
    std::fs::create_dir_all(&topic).map_err(|e| io_err("create", &topic, e))?;
    let mut files = Vec::new();
    for p in 0..cfg.partitions {
        let path = partition_file(data_dir, p);
        let f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(|e| io_err("create", &path, e))?;
        files.push(f);
    }
    let core = Core::create(data_dir, setup, &schema).await?;
    core.start(table, &schema).await?;
    // Wait until every partition is consuming, then let it settle into its poll loop.
    let t = Instant::now();
    loop {
        let st = core
            .manager
            .status(&core.name_with_type)
            .unwrap_or_default();
        if st.len() == cfg.partitions as usize
            && st.iter().all(|s| s.state == PartitionState::Consuming)
        {
            break;
        }
        if let Some(f) = core.failure() {
            core.stop().await;
            return Err(err(f));
        }
        if t.elapsed() > Duration::from_secs(30) {
            core.stop().await;
            return Err(err("latency phase: partitions not consuming after 30 s"));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let load_before = LoadAvg::read();
    let (tx, rx) = mpsc::channel::<(u64, Instant)>();
    let done = Arc::new(AtomicBool::new(false));
    let (rate, secs, tick) = (cfg.latency_rate as f64, cfg.latency_secs, cfg.tick);
    let writer_done = done.clone();
    let writer = std::thread::spawn(move || -> Result<(f64, usize, usize), BenchError> {
        let result = paced_writes(
            rate,
            secs,
            tick,
            total,
            |from, to| {
                for (p, f) in files.iter_mut().enumerate() {
                    let a = rows_before(from, p as u64, parts) as usize * LINE_BYTES;
                    let b = rows_before(to, p as u64, parts) as usize * LINE_BYTES;
                    if b > a {
                        f.write_all(&buffers[p][a..b])
                            .and_then(|()| f.flush())
                            .map_err(|e| err(format!("latency writer: {e}")))?;
                    }
                }
                Ok(())
            },
            |written, published_at| {
                tx.send((written, published_at))
                    .map_err(|_| err("latency watcher went away"))
            },
        );
        writer_done.store(true, Ordering::SeqCst);
        drop(tx);
        result
    });

    let segments = core.segments.clone();
    let poll = cfg.poll;
    let watcher = std::thread::spawn(move || -> Result<(Vec<Duration>, u64), BenchError> {
        let mut pending: VecDeque<(u64, Instant)> = VecDeque::new();
        let mut samples = Vec::new();
        let mut last_change = (0u64, Instant::now());
        loop {
            // Ticks first, then the count, then the clock: `seen` is never before a
            // tick's publish instant.
            let mut closed = false;
            loop {
                match rx.try_recv() {
                    Ok(t) => pending.push_back(t),
                    Err(mpsc::TryRecvError::Empty) => break,
                    Err(mpsc::TryRecvError::Disconnected) => {
                        closed = true;
                        break;
                    }
                }
            }
            let n = published(&segments);
            let now = Instant::now();
            while let Some(&(cum, at)) = pending.front() {
                if cum > n {
                    break;
                }
                samples.push(now.saturating_duration_since(at));
                pending.pop_front();
            }
            if closed && pending.is_empty() && done.load(Ordering::SeqCst) {
                return Ok((samples, n));
            }
            if n != last_change.0 || pending.is_empty() {
                last_change = (n, now);
            } else if now - last_change.1 > Duration::from_secs(30) {
                return Err(err(format!(
                    "latency phase: published count stuck at {n} for 30 s, {} ticks pending",
                    pending.len()
                )));
            }
            std::thread::sleep(poll);
        }
    });
    let joined = tokio::task::spawn_blocking(move || (writer.join(), watcher.join()))
        .await
        .map_err(|e| err(format!("latency join: {e}")));
    let load_after = LoadAvg::read();
    let failure = core.failure();
    let final_count = published(&core.segments);
    let segments_committed = core.segments_committed();
    core.stop().await;
    let (w, wa) = joined?;
    let (ran_secs, ticks, late) = w.map_err(|_| err("latency writer panicked"))??;
    let (mut samples, _) = wa.map_err(|_| err("latency watcher panicked"))??;
    if let Some(f) = failure {
        return Err(err(f));
    }
    if final_count != total || samples.len() != ticks {
        return Err(err(format!(
            "latency phase: {final_count} rows queryable of {total} written, {} of {ticks} ticks seen",
            samples.len()
        )));
    }
    // Samples are in tick order: each second of the run, its p90 and max.
    let per_second: Vec<(Duration, Duration)> = samples
        .chunks(((1.0 / cfg.tick.as_secs_f64().max(1e-6)).round() as usize).max(1))
        .map(|c| {
            let mut c = c.to_vec();
            c.sort();
            let i = ((0.9 * c.len() as f64).ceil() as usize).clamp(1, c.len()) - 1;
            (c[i], c.last().copied().unwrap_or_default())
        })
        .collect();
    samples.sort();
    let pct = |q: f64| -> Duration {
        let i = ((q * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i]
    };
    let sum: Duration = samples.iter().sum();
    Ok(LatencyReport {
        rate: cfg.latency_rate,
        secs: ran_secs,
        rows: total,
        achieved_rate: total as f64 / ran_secs.max(1e-9),
        samples: samples.len(),
        late_ticks: late,
        p50: pct(0.50),
        p90: pct(0.90),
        p99: pct(0.99),
        max: samples.last().copied().unwrap_or_default(),
        mean: sum / samples.len().max(1) as u32,
        load_before,
        load_after,
        segments_committed,
        per_second,
    })
}

/// Runs the benchmark (see the module documentation) on the current tokio runtime.
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
        let l = latency(&cfg, &dir).await?;
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

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

pub(crate) fn thousands(v: f64) -> String {
    let n = v.round() as u64;
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

fn warn_busy(f: &mut fmt::Formatter<'_>, before: Option<LoadAvg>) -> fmt::Result {
    if before.is_some_and(|l| l.one > 1.0) {
        writeln!(f, "WARNING: 1-min load was above 1.0 before the run: the machine was busy, do not report these figures")?;
    }
    Ok(())
}

/// The first lines of a benchmark report: its title, the machine, the load before and
/// after, and a warning when the machine was busy before the run.
pub(crate) fn header(
    f: &mut fmt::Formatter<'_>,
    title: &str,
    m: &MachineFacts,
    before: Option<LoadAvg>,
    after: Option<LoadAvg>,
) -> fmt::Result {
    writeln!(f, "== {title} ==")?;
    writeln!(
        f,
        "machine: nproc={}  cpu=\"{}\"  ram={:.1} GiB",
        m.nproc, m.cpu_model, m.mem_gib
    )?;
    writeln!(
        f,
        "load average (1/5/15 min): before run {}  after run {}",
        load_text(before),
        load_text(after)
    )?;
    warn_busy(f, before)
}

impl fmt::Display for IngestBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let t = &self.throughput;
        header(
            f,
            &format!("Riffle ingestion benchmark (file stream, {EVENT_BYTES}-byte JSON events)"),
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(f, "event: {}", sample_event())?;
        writeln!(f)?;
        writeln!(
            f,
            "-- throughput: {} rows ({:.1} MB) in {} partition(s), file written before the table --",
            thousands(self.rows as f64),
            t.queryable.bytes as f64 / 1e6,
            t.partitions
        )?;
        writeln!(
            f,
            "   load before {}  after {}   (write {:.2} s, create table {:.3} s; not timed)",
            load_text(t.load_before),
            load_text(t.load_after),
            t.write_secs,
            t.create_secs
        )?;
        writeln!(
            f,
            "   {:<38} {:>12} {:>9} {:>10} {:>12}",
            "run", "rows/s", "MB/s", "seconds", "riffle ratio"
        )?;
        let row = |f: &mut fmt::Formatter<'_>, name: &str, r: &Rate, ratio: Option<f64>| {
            writeln!(
                f,
                "   {:<38} {:>12} {:>9.1} {:>10.3} {:>12}",
                name,
                thousands(r.rows_per_sec()),
                r.mb_per_sec(),
                r.secs,
                ratio.map_or_else(|| "-".to_string(), |x| format!("{x:.2}x"))
            )
        };
        row(f, "riffle: rows/s to queryable", &t.queryable, None)?;
        let rr = t.queryable.rows_per_sec();
        if let Some(r) = &self.read_only {
            row(
                f,
                "compare: read only (fetch, best of 3)",
                r,
                Some(rr / r.rows_per_sec()),
            )?;
        }
        if let Some(r) = &self.naive_decode {
            row(
                f,
                "compare: naive serde_json::Value",
                r,
                Some(rr / r.rows_per_sec()),
            )?;
        }
        writeln!(
            f,
            "   first rows queryable after {:.1} ms; process CPU while ingesting: {}",
            t.first_rows_secs * 1e3,
            t.cpu_secs.map_or_else(
                || "n/a".to_string(),
                |c| format!(
                    "{c:.2} s ({:.2} cores avg, {} rows per CPU-second)",
                    c / t.queryable.secs.max(1e-9),
                    thousands(t.queryable.rows as f64 / c.max(1e-9))
                )
            )
        )?;
        if let Some(s) = &self.split {
            let total = s.total();
            writeln!(f)?;
            writeln!(
                f,
                "-- stage split: the partition loop's stages one after the other, one thread ({} fetches) --",
                s.fetches
            )?;
            writeln!(
                f,
                "   {:<34} {:>10} {:>10} {:>8}",
                "stage", "seconds", "ns/row", "share"
            )?;
            for (name, secs) in [
                ("fetch (read + split lines)", s.fetch_secs),
                ("decode_batch (JSON -> builders)", s.decode_secs),
                ("BlockBuilder::finish", s.finish_secs),
                ("ConsumingSegment::append", s.publish_secs),
            ] {
                writeln!(
                    f,
                    "   {:<34} {:>10.3} {:>10.1} {:>7.1}%",
                    name,
                    secs,
                    secs * 1e9 / s.rows.max(1) as f64,
                    100.0 * secs / total.max(1e-9)
                )?;
            }
            writeln!(
                f,
                "   {:<34} {:>10.3} {:>10.1}   => {} rows/s serial",
                "total",
                total,
                total * 1e9 / s.rows.max(1) as f64,
                thousands(s.rows as f64 / total.max(1e-9))
            )?;
        }
        if let Some(l) = &self.latency {
            writeln!(f)?;
            writeln!(
                f,
                "-- publish-to-query latency: {} rows/s target for {:.1} s, {} partition(s) --",
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
                "   rows {}  achieved {} rows/s  samples (ticks) {}  late ticks {}",
                thousands(l.rows as f64),
                thousands(l.achieved_rate),
                l.samples,
                l.late_ticks
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
        }
        writeln!(f)?;
        let tp_ok = t.queryable.rows_per_sec() >= 500_000.0;
        writeln!(
            f,
            "targets: >= 500,000 rows/s ({} partition(s)): {}   p99 <= 500 ms: {}",
            t.partitions,
            if tp_ok { "MET" } else { "NOT MET" },
            match &self.latency {
                Some(l) if l.p99 <= Duration::from_millis(500) => "MET",
                Some(_) => "NOT MET",
                None => "not run",
            }
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn test_events_are_146_bytes_and_valid_json() {
        let mut gen = EventGen::new(1);
        let mut buf = Vec::new();
        for _ in 0..10_000 {
            buf.clear();
            gen.push_line(&mut buf);
            assert_eq!(buf.len(), LINE_BYTES);
            assert_eq!(buf[EVENT_BYTES], b'\n');
            let v: serde_json::Value = serde_json::from_slice(&buf[..EVENT_BYTES]).unwrap();
            assert_eq!(v["uuid"].as_str().unwrap().len(), 36);
            assert!(v["ts"].as_i64().unwrap() >= BASE_TS_MS);
        }
    }

    #[test]
    fn test_rows_before_splits_round_robin() {
        for parts in 1..5u64 {
            for a in 0..20u64 {
                let total: u64 = (0..parts).map(|p| rows_before(a, p, parts)).sum();
                assert_eq!(total, a);
            }
        }
    }

    #[test]
    fn test_bench_table_and_schema_are_valid() {
        let t = table_config().unwrap();
        t.validate(&schema().unwrap()).unwrap();
        assert_eq!(stream_config(&t).unwrap().stream_type, "file");
    }
}
