//! Dashboard queries beside DuckDB (`riffle bench query`).
//!
//! `rows` generated events (default 20,000,000: a time column, a 50-value and a 100k-value
//! string dimension, an INT with 10 values, a LONG and a DOUBLE metric) are written to two
//! file-stream partitions and consumed into a table with inverted indexes on `site` and
//! `status`, the two metrics stored raw (`noDictionaryColumns`, as Pinot's docs advise for
//! high-cardinality metrics) and `segment_rows`-row segments (default 1,000,000); the run waits until every
//! full segment has sealed. The same rows are built by DuckDB (the Python package, run as a
//! child process by [`DUCKDB_PEER`]) in an in-memory table from the same formulas
//! ([`generator_sql`] beside [`Event::of`]), with as many threads as this machine has
//! cores, which is the parallelism of Riffle's query engine.
//!
//! Each of [`QUERIES`] runs once on both sides unmeasured (and their first rows are compared:
//! a fast wrong answer is not a result), then `repeat` times on each, alternating which side
//! goes first. Riffle's queries go through the broker's HTTP endpoint (`POST /query/sql`, one
//! keep-alive connection); DuckDB's through its Python API, answers fetched. The figure per
//! query is the ratio of the medians, Riffle / DuckDB; the summary is their geometric mean.
//!
//! Then the concurrency test, ClickBench's shape: `clients` connections each run the queries
//! in a loop (each starting at a different one) for `concurrency_secs`; queries/s, the error
//! ratio and latency percentiles.

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use riffle_config::{Schema, TableConfig};
use riffle_segment::SegmentRef;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::auth_cost::{broker, Client};
use crate::queries::Latencies;
use crate::*;

/// The DuckDB side's script (a line protocol on stdin / stdout, described inside).
pub const DUCKDB_PEER: &str = include_str!("duckdb_peer.py");

/// Milliseconds between two events: 20,000,000 events span 30 days.
pub const STEP_MS: i64 = 130;

/// The HTTP status codes of [`Event::status`].
pub const STATUSES: [i32; 10] = [200, 201, 204, 301, 302, 304, 400, 404, 500, 503];

/// The table's schema.
pub const DASHBOARD_SCHEMA_JSON: &str = r#"{
  "schemaName": "bench_events",
  "dimensionFieldSpecs": [
    {"name": "site", "dataType": "STRING"},
    {"name": "user_id", "dataType": "STRING"},
    {"name": "status", "dataType": "INT"}
  ],
  "metricFieldSpecs": [
    {"name": "bytes", "dataType": "LONG"},
    {"name": "latency", "dataType": "DOUBLE"}
  ],
  "dateTimeFieldSpecs": [
    {"name": "ts", "dataType": "TIMESTAMP", "format": "1:MILLISECONDS:EPOCH",
     "granularity": "1:MILLISECONDS"}
  ]
}"#;

/// The table's config; `{rows}` is the segment row threshold.
const DASHBOARD_TABLE_JSON: &str = r#"{
  "tableName": "bench_events",
  "tableType": "REALTIME",
  "segmentsConfig": {"timeColumnName": "ts", "schemaName": "bench_events",
                     "replicasPerPartition": "1"},
  "tenants": {},
  "tableIndexConfig": {
    "loadMode": "MMAP",
    "invertedIndexColumns": ["site", "status"],
    "noDictionaryColumns": ["bytes", "latency"],
    "streamConfigs": {
      "streamType": "file",
      "stream.file.topic.name": "bench_events",
      "stream.file.decoder.class.name": "org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder",
      "stream.file.consumer.prop.auto.offset.reset": "smallest",
      "realtime.segment.flush.threshold.segment.rows": "{rows}",
      "realtime.segment.flush.threshold.time": "24h"
    }
  },
  "metadata": {}
}"#;

/// One generated event.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub ts: i64,
    pub site: u64,
    pub user: u64,
    pub status: i32,
    pub bytes: i64,
    pub latency: f64,
}

impl Event {
    /// Event `i`: the same arithmetic as [`generator_sql`] (integer hashes, a skewed site).
    pub fn of(i: u64) -> Event {
        let h = (i * 2_654_435_761) % 4_294_967_291;
        let g = (i * 1_103_515_245 + 12_345) % 2_147_483_648;
        Event {
            ts: BASE_TS_MS + i as i64 * STEP_MS,
            site: ((h % 2500) as f64).sqrt().floor() as u64,
            user: g % 100_000,
            status: STATUSES[((h / 128) % 10) as usize],
            bytes: ((h / 7) % 100_000) as i64,
            latency: ((g / 3) % 100_000) as f64 / 100.0,
        }
    }

    fn push_json(&self, out: &mut String) {
        use std::fmt::Write as _;
        let _ = writeln!(
            out,
            r#"{{"ts":{},"site":"site-{}","user_id":"user-{}","status":{},"bytes":{},"latency":{:?}}}"#,
            self.ts, self.site, self.user, self.status, self.bytes, self.latency
        );
    }
}

/// DuckDB's SELECT producing the same rows as [`Event::of`] for `i` in `0..rows`.
pub fn generator_sql(rows: u64) -> String {
    let statuses = STATUSES.map(|s| s.to_string()).join(",");
    format!(
        "SELECT epoch_ms(CAST({BASE_TS_MS} + i * {STEP_MS} AS BIGINT)) AS ts, \
         'site-' || CAST(floor(sqrt(CAST(h % 2500 AS DOUBLE))) AS BIGINT) AS site, \
         'user-' || CAST(g % 100000 AS BIGINT) AS user_id, \
         CAST([{statuses}][CAST((h // 128) % 10 AS BIGINT) + 1] AS INTEGER) AS status, \
         CAST((h // 7) % 100000 AS BIGINT) AS bytes, \
         CAST((g // 3) % 100000 AS DOUBLE) / 100.0 AS latency \
         FROM (SELECT i, (i * 2654435761) % 4294967291 AS h, \
         (i * 1103515245 + 12345) % 2147483648 AS g FROM range({rows}) t(i))"
    )
}

/// How a query's first answer row is compared between the two sides.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Check {
    /// Same row count, and the first row equal (numbers to a relative 1e-9).
    Exact,
    /// Same row count, numbers of the first row within this relative error (estimates).
    Within(f64),
}

/// A dashboard query: its name, Riffle's SQL (Pinot's dialect), DuckDB's, how answers are
/// compared. `{t}` is the table, `{day}` the start of the last day in epoch millis.
#[derive(Debug, Clone, Copy)]
pub struct DashboardQuery {
    pub name: &'static str,
    pub riffle: &'static str,
    pub duckdb: &'static str,
    pub check: Check,
}

const fn q(
    name: &'static str,
    riffle: &'static str,
    duckdb: &'static str,
    check: Check,
) -> DashboardQuery {
    DashboardQuery {
        name,
        riffle,
        duckdb,
        check,
    }
}

/// The dashboard queries.
pub const QUERIES: [DashboardQuery; 14] = [
    q(
        "count",
        "SELECT COUNT(*) FROM {t}",
        "SELECT COUNT(*) FROM {t}",
        Check::Exact,
    ),
    q(
        "count where site (inverted index)",
        "SELECT COUNT(*) FROM {t} WHERE site = 'site-30'",
        "SELECT COUNT(*) FROM {t} WHERE site = 'site-30'",
        Check::Exact,
    ),
    q(
        "sum where site and status (two indexes)",
        "SELECT SUM(bytes), MAX(latency) FROM {t} WHERE site = 'site-40' AND status = 404",
        "SELECT SUM(bytes), MAX(latency) FROM {t} WHERE site = 'site-40' AND status = 404",
        Check::Exact,
    ),
    q(
        "group by site, top 10",
        "SELECT site, COUNT(*) FROM {t} GROUP BY site ORDER BY COUNT(*) DESC, site LIMIT 10",
        "SELECT site, COUNT(*) FROM {t} GROUP BY site ORDER BY COUNT(*) DESC, site LIMIT 10",
        Check::Exact,
    ),
    q(
        "group by status: sum, avg",
        "SELECT status, SUM(bytes), AVG(latency) FROM {t} GROUP BY status ORDER BY status LIMIT 100",
        "SELECT status, SUM(bytes), AVG(latency) FROM {t} GROUP BY status ORDER BY status LIMIT 100",
        Check::Exact,
    ),
    q(
        "group by site, status where status in",
        "SELECT site, status, COUNT(*) FROM {t} WHERE status IN (500, 503) \
         GROUP BY site, status ORDER BY COUNT(*) DESC, site, status LIMIT 10",
        "SELECT site, status, COUNT(*) FROM {t} WHERE status IN (500, 503) \
         GROUP BY site, status ORDER BY COUNT(*) DESC, site, status LIMIT 10",
        Check::Exact,
    ),
    q(
        "distinct count of users",
        "SELECT DISTINCTCOUNT(user_id) FROM {t}",
        "SELECT COUNT(DISTINCT user_id) FROM {t}",
        Check::Exact,
    ),
    q(
        "top 10 users by bytes",
        "SELECT user_id, SUM(bytes) FROM {t} GROUP BY user_id \
         ORDER BY SUM(bytes) DESC, user_id LIMIT 10",
        "SELECT user_id, SUM(bytes) FROM {t} GROUP BY user_id \
         ORDER BY SUM(bytes) DESC, user_id LIMIT 10",
        Check::Exact,
    ),
    q(
        "last day: count, avg",
        "SELECT COUNT(*), AVG(latency) FROM {t} WHERE ts >= {day}",
        "SELECT COUNT(*), AVG(latency) FROM {t} WHERE ts >= epoch_ms({day})",
        Check::Exact,
    ),
    q(
        "last day: top sites by bytes",
        "SELECT site, SUM(bytes) FROM {t} WHERE ts >= {day} GROUP BY site \
         ORDER BY SUM(bytes) DESC, site LIMIT 10",
        "SELECT site, SUM(bytes) FROM {t} WHERE ts >= epoch_ms({day}) GROUP BY site \
         ORDER BY SUM(bytes) DESC, site LIMIT 10",
        Check::Exact,
    ),
    q(
        "last day: hourly series",
        "SELECT DATETRUNC('HOUR', ts), COUNT(*) FROM {t} WHERE ts >= {day} \
         GROUP BY DATETRUNC('HOUR', ts) ORDER BY 1 LIMIT 1000",
        "SELECT epoch_ms(date_trunc('hour', ts)), COUNT(*) FROM {t} \
         WHERE ts >= epoch_ms({day}) GROUP BY 1 ORDER BY 1 LIMIT 1000",
        Check::Exact,
    ),
    q(
        "daily series: count, avg",
        "SELECT DATETRUNC('DAY', ts), COUNT(*), AVG(latency) FROM {t} \
         GROUP BY DATETRUNC('DAY', ts) ORDER BY 1 LIMIT 1000",
        "SELECT epoch_ms(date_trunc('day', ts)), COUNT(*), AVG(latency) FROM {t} \
         GROUP BY 1 ORDER BY 1 LIMIT 1000",
        Check::Exact,
    ),
    q(
        "latest 10 events",
        "SELECT ts, site, user_id, status, bytes, latency FROM {t} ORDER BY ts DESC LIMIT 10",
        "SELECT ts, site, user_id, status, bytes, latency FROM {t} ORDER BY ts DESC LIMIT 10",
        Check::Exact,
    ),
    q(
        "p95 latency (t-digest)",
        "SELECT PERCENTILETDIGEST(latency, 95) FROM {t}",
        "SELECT approx_quantile(latency, 0.95) FROM {t}",
        Check::Within(0.02),
    ),
];

/// What to run.
#[derive(Clone, Debug)]
pub struct DashboardBenchConfig {
    /// Work directory.
    pub work_dir: PathBuf,
    /// Events in the table.
    pub rows: u64,
    /// Rows per segment.
    pub segment_rows: u64,
    /// Measured runs of each query on each side.
    pub repeat: usize,
    /// Clients of the concurrency test (0 skips it).
    pub clients: usize,
    /// Seconds of the concurrency test.
    pub concurrency_secs: f64,
    /// The Python interpreter with the `duckdb` package.
    pub python: PathBuf,
    /// Only the queries whose name contains this.
    pub only: Option<String>,
}

/// One query's figures.
#[derive(Clone, Debug)]
pub struct QueryFigures {
    pub name: &'static str,
    pub riffle: Latencies,
    pub duckdb: Latencies,
}

impl QueryFigures {
    pub fn ratio(&self) -> f64 {
        ms(self.riffle.pct(0.5)) / ms(self.duckdb.pct(0.5)).max(1e-3)
    }
}

/// The concurrency test's figures.
#[derive(Clone, Debug, Default)]
pub struct Concurrency {
    pub clients: usize,
    pub secs: f64,
    pub ok: u64,
    pub errors: u64,
    pub first_error: Option<String>,
    pub latencies: Latencies,
}

/// What `riffle bench query` prints.
#[derive(Clone, Debug)]
pub struct DashboardReport {
    pub machine: MachineFacts,
    pub load_before: Option<LoadAvg>,
    pub load_after: Option<LoadAvg>,
    pub cfg: DashboardBenchConfig,
    pub threads: usize,
    pub riffle_load_secs: f64,
    pub duckdb_load_secs: f64,
    pub segments: usize,
    pub queries: Vec<QueryFigures>,
    pub concurrency: Option<Concurrency>,
}

impl DashboardReport {
    /// Geometric mean of the ratios.
    pub fn geomean(&self) -> f64 {
        let n = self.queries.len().max(1) as f64;
        (self.queries.iter().map(|q| q.ratio().ln()).sum::<f64>() / n).exp()
    }
}

impl fmt::Display for DashboardReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        header(
            f,
            "dashboard queries: Riffle beside DuckDB",
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(
            f,
            "{} rows, {} sealed segments of {} rows; DuckDB threads = {}; {} measured runs per query and side (medians)",
            thousands(self.cfg.rows as f64),
            self.segments,
            thousands(self.cfg.segment_rows as f64),
            self.threads,
            self.cfg.repeat
        )?;
        writeln!(
            f,
            "loaded: Riffle (file stream to sealed segments) {:.1} s, DuckDB (CREATE TABLE AS from range) {:.1} s",
            self.riffle_load_secs, self.duckdb_load_secs
        )?;
        writeln!(
            f,
            "| query | Riffle p50 ms | DuckDB p50 ms | Riffle / DuckDB |"
        )?;
        writeln!(f, "|---|---:|---:|---:|")?;
        for q in &self.queries {
            writeln!(
                f,
                "| {} | {:.1} | {:.1} | {:.2} |",
                q.name,
                ms(q.riffle.pct(0.5)),
                ms(q.duckdb.pct(0.5)),
                q.ratio()
            )?;
        }
        let worst = self
            .queries
            .iter()
            .max_by(|a, b| a.ratio().total_cmp(&b.ratio()));
        writeln!(
            f,
            "geometric mean Riffle / DuckDB: {:.3} (goal <= 1.0); worst: {} at {:.2} (goal <= 2.0)",
            self.geomean(),
            worst.map_or("-", |q| q.name),
            worst.map_or(0.0, QueryFigures::ratio)
        )?;
        if let Some(c) = &self.concurrency {
            let total = (c.ok + c.errors).max(1);
            writeln!(
                f,
                "concurrency: {} clients for {:.0} s: {:.1} queries/s, error ratio {:.4} ({} of {}); latency {}",
                c.clients,
                c.secs,
                c.ok as f64 / c.secs.max(1e-9),
                c.errors as f64 / total as f64,
                c.errors,
                total,
                c.latencies
            )?;
            if let Some(e) = &c.first_error {
                writeln!(f, "first error: {e}")?;
            }
        }
        Ok(())
    }
}

/// The DuckDB child process.
struct Peer {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Peer {
    fn start(python: &Path, cfg: &Value) -> Result<(Peer, f64), BenchError> {
        let mut child = Command::new(python)
            .arg("-c")
            .arg(DUCKDB_PEER)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| err(format!("start '{}': {e}", python.display())))?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            return Err(err("duckdb peer: no pipes"));
        };
        let mut peer = Peer {
            child,
            stdin,
            stdout: BufReader::new(stdout),
        };
        let ready = peer.exchange(cfg)?;
        if ready["ready"] != json!(true) {
            return Err(err(format!("duckdb peer did not start: {ready}")));
        }
        Ok((peer, ready["load_secs"].as_f64().unwrap_or(0.0)))
    }

    fn exchange(&mut self, msg: &Value) -> Result<Value, BenchError> {
        let gone = |e: std::io::Error| {
            err(format!(
                "duckdb peer: {e} (is the `duckdb` package installed for this Python? \
                 pass --python)"
            ))
        };
        writeln!(self.stdin, "{msg}").map_err(gone)?;
        self.stdin.flush().map_err(gone)?;
        let mut line = String::new();
        if self.stdout.read_line(&mut line).map_err(gone)? == 0 {
            return Err(err(
                "duckdb peer exited (is the `duckdb` package installed for this Python? \
                 pass --python)",
            ));
        }
        let v: Value =
            serde_json::from_str(&line).map_err(|e| err(format!("duckdb peer: {e}: {line}")))?;
        if let Some(e) = v.get("error") {
            return Err(err(format!("duckdb: {e}")));
        }
        Ok(v)
    }

    /// Runs query `k`: its time and (row count, first row).
    fn run(&mut self, k: usize) -> Result<(Duration, usize, Vec<Value>), BenchError> {
        let v = self.exchange(&json!({ "run": k }))?;
        let took = Duration::from_secs_f64(v["ms"].as_f64().unwrap_or(0.0) / 1000.0);
        let rows = v["rows"].as_u64().unwrap_or(0) as usize;
        let first = v["first"].as_array().cloned().unwrap_or_default();
        Ok((took, rows, first))
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Writes the events round-robin into `partitions` file-stream partitions.
fn write_dashboard_events(dir: &Path, rows: u64, partitions: u32) -> Result<(), BenchError> {
    let topic = dir.join("streams").join(TABLE);
    std::fs::create_dir_all(&topic).map_err(|e| io_err("create", &topic, e))?;
    let mut files = Vec::new();
    for p in 0..partitions {
        let path = partition_file(dir, p);
        let f = std::fs::File::create(&path).map_err(|e| io_err("create", &path, e))?;
        files.push((path, std::io::BufWriter::with_capacity(1 << 20, f)));
    }
    let mut line = String::with_capacity(160);
    for i in 0..rows {
        line.clear();
        Event::of(i).push_json(&mut line);
        let (path, w) = &mut files[(i % partitions as u64) as usize];
        w.write_all(line.as_bytes())
            .map_err(|e| io_err("write", path, e))?;
    }
    for (path, mut w) in files {
        w.flush().map_err(|e| io_err("write", &path, e))?;
    }
    Ok(())
}

/// The table's schema and config.
pub fn dashboard_table(segment_rows: u64) -> Result<(Schema, TableConfig), BenchError> {
    let schema = Schema::from_json(DASHBOARD_SCHEMA_JSON.as_bytes())
        .map_err(|e| err(format!("dashboard schema: {e}")))?;
    let json = DASHBOARD_TABLE_JSON.replace("{rows}", &segment_rows.to_string());
    let table = TableConfig::from_json(json.as_bytes())
        .map_err(|e| err(format!("dashboard table: {e}")))?;
    table
        .validate(&schema)
        .map_err(|e| err(format!("dashboard table: {e}")))?;
    Ok((schema, table))
}

/// Rows in the table's sealed segments, and how many there are.
fn sealed(core: &Core) -> (u64, usize) {
    core.segments().table(TABLE).map_or((0, 0), |t| {
        t.segments()
            .iter()
            .filter(|s| matches!(s, SegmentRef::Sealed(_)))
            .fold((0, 0), |(r, n), s| (r + s.num_rows() as u64, n + 1))
    })
}

/// A query's text for one side.
fn sql(text: &str, table: &str, day: i64) -> String {
    text.replace("{t}", table)
        .replace("{day}", &day.to_string())
}

/// Riffle's answer: row count and first row.
fn riffle_rows(v: &Value) -> (usize, Vec<Value>) {
    let rows = v["resultTable"]["rows"].as_array();
    (
        rows.map_or(0, Vec::len),
        rows.and_then(|r| r.first())
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default(),
    )
}

/// Whether two answer cells agree under `check`.
fn same_cell(r: &Value, d: &Value, check: Check) -> bool {
    let tol = match check {
        Check::Exact => 1e-9,
        Check::Within(t) => t,
    };
    match (r, d) {
        (Value::String(s), Value::Number(n)) => n
            .as_i64()
            .is_some_and(|ms| riffle_common::format_pinot_timestamp(ms) == *s),
        (Value::Number(_), Value::Number(_)) => {
            let (a, b) = (r.as_f64().unwrap_or(f64::NAN), d.as_f64().unwrap_or(0.0));
            (a - b).abs() <= tol * b.abs().max(1.0)
        }
        _ => r == d,
    }
}

/// Runs the benchmark.
pub async fn run_dashboard_bench(cfg: DashboardBenchConfig) -> Result<DashboardReport, BenchError> {
    let machine = MachineFacts::read();
    let threads = machine.nproc.max(1);
    let queries: Vec<(usize, DashboardQuery)> = QUERIES
        .iter()
        .copied()
        .enumerate()
        .filter(|(_, q)| {
            // An exact name selects that query alone; other text, every name holding it.
            cfg.only.as_ref().is_none_or(|o| {
                q.name == o || (!QUERIES.iter().any(|x| x.name == o) && q.name.contains(o.as_str()))
            })
        })
        .collect();
    let day = BASE_TS_MS + cfg.rows as i64 * STEP_MS - 86_400_000;
    // DuckDB first: a missing package fails the run before minutes of loading.
    let peer_cfg = json!({
        "rows": cfg.rows,
        "threads": threads,
        "generator": generator_sql(cfg.rows),
        "queries": QUERIES.iter().map(|q| sql(q.duckdb, "events", day)).collect::<Vec<_>>(),
    });
    let python = cfg.python.clone();
    let (mut peer, duckdb_load_secs) =
        tokio::task::spawn_blocking(move || Peer::start(&python, &peer_cfg))
            .await
            .map_err(|e| err(format!("duckdb task: {e}")))??;

    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("dashboard");
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    let partitions = 2u32;
    let (d, rows) = (dir.clone(), cfg.rows);
    tokio::task::spawn_blocking(move || write_dashboard_events(&d, rows, partitions))
        .await
        .map_err(|e| err(format!("writer task: {e}")))??;
    let (schema, table) = dashboard_table(cfg.segment_rows)?;
    let setup = TableSetup {
        table,
        max_consuming_bytes: Some(UNCAPPED_BYTES),
    };
    let start = Instant::now();
    let core = Core::create(&dir, &setup, &schema).await?;
    wait_queryable(&core, cfg.rows, Duration::from_millis(10), start).await?;
    let expected_sealed: u64 = (0..partitions as u64)
        .map(|p| {
            let n = rows_of_partition(cfg.rows, p, partitions as u64);
            n / cfg.segment_rows * cfg.segment_rows
        })
        .sum();
    let mut last = (0u64, Instant::now());
    let segments = loop {
        let (n, count) = sealed(&core);
        if n >= expected_sealed {
            break count;
        }
        if n != last.0 {
            last = (n, Instant::now());
        } else if last.1.elapsed() > Duration::from_secs(120) {
            return Err(err(format!(
                "sealing stalled at {n} of {expected_sealed} rows"
            )));
        }
        if let Some(f) = core.failure() {
            return Err(err(f));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let riffle_load_secs = start.elapsed().as_secs_f64();
    // The stream files are no longer needed: give the disk back.
    let _ = std::fs::remove_dir_all(dir.join("streams"));

    let cancel = CancellationToken::new();
    let addr = broker(&core.node, Default::default(), &cancel).await?;
    let mut client = Client::connect(addr, None).await?;
    let mut figures = Vec::new();
    for (k, q) in &queries {
        let riffle_sql = sql(q.riffle, TABLE, day);
        // Unmeasured first runs; the answers must agree.
        let (_, answer) = client.query_answer(&riffle_sql).await?;
        let (r_rows, r_first) = riffle_rows(&answer);
        let (_, d_rows, d_first) = peer_run(&mut peer, *k).await?;
        if r_rows != d_rows
            || r_first.len() != d_first.len()
            || r_first
                .iter()
                .zip(&d_first)
                .any(|(r, d)| !same_cell(r, d, q.check))
        {
            return Err(err(format!(
                "{}: answers differ: Riffle {r_rows} rows, first {r_first:?}; \
                 DuckDB {d_rows} rows, first {d_first:?}",
                q.name
            )));
        }
        let mut f = QueryFigures {
            name: q.name,
            riffle: Latencies::default(),
            duckdb: Latencies::default(),
        };
        for i in 0..cfg.repeat {
            if i % 2 == 0 {
                f.riffle.0.push(client.query_answer(&riffle_sql).await?.0);
                f.duckdb.0.push(peer_run(&mut peer, *k).await?.0);
            } else {
                f.duckdb.0.push(peer_run(&mut peer, *k).await?.0);
                f.riffle.0.push(client.query_answer(&riffle_sql).await?.0);
            }
        }
        figures.push(f);
    }
    drop(peer);

    let concurrency = if cfg.clients > 0 {
        let sqls: Vec<String> = queries
            .iter()
            .map(|(_, q)| sql(q.riffle, TABLE, day))
            .collect();
        Some(concurrent(addr, Arc::new(sqls), cfg.clients, cfg.concurrency_secs).await?)
    } else {
        None
    };
    cancel.cancel();
    let load_after = LoadAvg::read();
    core.stop().await;
    Ok(DashboardReport {
        machine,
        load_before,
        load_after,
        threads,
        riffle_load_secs,
        duckdb_load_secs,
        segments,
        queries: figures,
        concurrency,
        cfg,
    })
}

async fn peer_run(peer: &mut Peer, k: usize) -> Result<(Duration, usize, Vec<Value>), BenchError> {
    // The peer answers within the query's time; blocking this thread is what a client does.
    tokio::task::block_in_place(|| peer.run(k))
}

/// `clients` connections running `sqls` in a loop for `secs`.
async fn concurrent(
    addr: std::net::SocketAddr,
    sqls: Arc<Vec<String>>,
    clients: usize,
    secs: f64,
) -> Result<Concurrency, BenchError> {
    let stop = Arc::new(AtomicBool::new(false));
    let (ok, errors) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let first_error: Arc<Mutex<Option<String>>> = Arc::default();
    let mut tasks = Vec::new();
    let start = Instant::now();
    for c in 0..clients {
        let (sqls, stop, ok, errors, first_error) = (
            sqls.clone(),
            stop.clone(),
            ok.clone(),
            errors.clone(),
            first_error.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut client = match Client::connect(addr, None).await {
                Ok(c) => c,
                Err(e) => {
                    errors.fetch_add(1, Ordering::Relaxed);
                    set_first(&first_error, e.0);
                    return lat;
                }
            };
            let mut k = c;
            while !stop.load(Ordering::Relaxed) {
                let sql = &sqls[k % sqls.len()];
                k += 1;
                match client.query_answer(sql).await {
                    Ok((took, _)) => {
                        ok.fetch_add(1, Ordering::Relaxed);
                        lat.push(took);
                    }
                    Err(e) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        set_first(&first_error, e.0);
                        // A broken connection is replaced.
                        match Client::connect(addr, None).await {
                            Ok(c) => client = c,
                            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
                        }
                    }
                }
            }
            lat
        }));
    }
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Latencies::default();
    for t in tasks {
        latencies
            .0
            .extend(t.await.map_err(|e| err(format!("client task: {e}")))?);
    }
    let elapsed = start.elapsed().as_secs_f64();
    Ok(Concurrency {
        clients,
        secs: elapsed,
        ok: ok.load(Ordering::Relaxed),
        errors: errors.load(Ordering::Relaxed),
        first_error: first_error.lock().ok().and_then(|mut g| g.take()),
        latencies,
    })
}

/// Keeps the first error the clients saw.
fn set_first(slot: &Mutex<Option<String>>, e: String) {
    if let Ok(mut g) = slot.lock() {
        g.get_or_insert(e);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_follow_the_generator() {
        let e = Event::of(0);
        assert_eq!(e.ts, BASE_TS_MS);
        assert_eq!((e.site, e.user, e.status, e.bytes), (0, 12_345, 200, 0));
        assert_eq!(e.latency, 41.15);
        // Every site value appears, skewed towards the high ones.
        let mut counts = [0u32; 50];
        for i in 0..100_000 {
            counts[Event::of(i).site as usize] += 1;
        }
        assert!(counts.iter().all(|&c| c > 0));
        assert!(counts[49] > 10 * counts[1]);
        let mut line = String::new();
        Event::of(3).push_json(&mut line);
        let v: Value = serde_json::from_str(&line).expect("json");
        assert_eq!(v["ts"], json!(BASE_TS_MS + 3 * STEP_MS));
        assert!(v["site"].as_str().is_some_and(|s| s.starts_with("site-")));
    }

    #[test]
    fn the_table_config_validates() {
        let (_, t) = dashboard_table(1_000_000).expect("table");
        assert_eq!(t.name_with_type().to_string(), "bench_events_REALTIME");
    }

    #[test]
    fn cells_compare_by_kind() {
        assert!(same_cell(&json!(1.0), &json!(1), Check::Exact));
        assert!(!same_cell(&json!(1.1), &json!(1), Check::Exact));
        assert!(same_cell(&json!(101.0), &json!(100), Check::Within(0.02)));
        let ts = riffle_common::format_pinot_timestamp(BASE_TS_MS);
        assert!(same_cell(&json!(ts), &json!(BASE_TS_MS), Check::Exact));
        assert!(!same_cell(&json!("a"), &json!("b"), Check::Exact));
    }
}
