//! `riffle bench batch`: batch ingestion from Parquet and the size and speed of compressed
//! segments, in one run.
//!
//! 1. The bench events (`events.rs`) as `files` Parquet files (zstd, the parquet crate's
//!    default level), written once.
//! 2. Riffle builds one segment per file on `threads` threads (record reader, the table's
//!    columns, dictionaries, format version 2 with its default codecs), timed: rows/s.
//! 3. DuckDB (the Python package) reads the same files into a table of a database file
//!    (`CREATE TABLE ... AS SELECT * FROM read_parquet(...)`) with `threads` threads, timed.
//! 4. Bytes per row: the Parquet files beside the segments built with the default codecs,
//!    with ZSTANDARD on every column, uncompressed (PASS_THROUGH), and with ZSTANDARD and
//!    the two unique columns (uuid, ts) without a dictionary, as Pinot's docs advise.
//! 5. Query speed: the same queries over the segments with ZSTANDARD on every column, the
//!    uncompressed ones (same encodings) and the zstd ones with uuid and ts stored raw, taking turns; the median of each (every
//!    side must give the same answer).

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression, ZstdLevel};
use parquet::file::properties::WriterProperties;
use riffle_decode::readers::{open_reader, FileFormat};
use riffle_ingest::segment_build::{build_segments, BuildProgress, SegmentInput};
use riffle_ingest::TableSpec;
use riffle_segment::{
    BlockBuilder, LoadMode, SealedSegment, SegmentRef, SegmentRegistry, TableData,
};

use crate::events::{write_events, SCHEMA_JSON, TABLE};
use crate::report::{header, LoadAvg, MachineFacts};
use crate::{err, io_err, BenchError};

/// What to run.
#[derive(Clone, Debug)]
pub struct BatchBenchConfig {
    /// Work directory.
    pub work_dir: PathBuf,
    /// Rows in all.
    pub rows: u64,
    /// Parquet files (one segment each).
    pub files: u32,
    /// Threads of each side.
    pub threads: usize,
    /// Runs of each query on each side.
    pub repeat: usize,
    /// Python with `duckdb`.
    pub python: PathBuf,
}

/// One build of every file.
#[derive(Clone, Debug)]
pub struct Build {
    /// Which codecs.
    pub what: String,
    /// Seconds.
    pub secs: f64,
    /// Segment bytes.
    pub bytes: u64,
    /// Seconds to open every segment.
    pub open_secs: f64,
}

/// The report.
#[derive(Debug)]
pub struct BatchReport {
    machine: MachineFacts,
    load_before: Option<LoadAvg>,
    load_after: Option<LoadAvg>,
    rows: u64,
    files: u32,
    threads: usize,
    parquet_bytes: u64,
    builds: Vec<Build>,
    duckdb_secs: f64,
    duckdb_bytes: u64,
    queries: Vec<(String, Vec<f64>)>,
}

const TABLE_CONFIG: &str = r#"{"tableName":"bench_events","tableType":"OFFLINE",
  "segmentsConfig":{"timeColumnName":"ts"},"tenants":{},"tableIndexConfig":{},"metadata":{}}"#;

fn spec(codec: Option<&str>) -> Result<TableSpec, BenchError> {
    spec_with(codec, &[])
}

/// The bench table with `codec` on every column and `raw` columns without a dictionary.
fn spec_with(codec: Option<&str>, raw: &[&str]) -> Result<TableSpec, BenchError> {
    let mut cfg: serde_json::Value =
        serde_json::from_str(TABLE_CONFIG).map_err(|e| err(e.to_string()))?;
    if !raw.is_empty() {
        cfg["tableIndexConfig"]["noDictionaryColumns"] = serde_json::json!(raw);
    }
    if let Some(c) = codec {
        let fields: Vec<serde_json::Value> = ["ts", "uuid", "count", "country", "device", "price"]
            .iter()
            .map(|n| serde_json::json!({"name": n, "compressionCodec": c}))
            .collect();
        cfg["fieldConfigList"] = serde_json::Value::Array(fields);
    }
    let table = riffle_config::TableConfig::from_value(&cfg).map_err(|e| err(e.to_string()))?;
    let schema =
        riffle_config::Schema::from_json(SCHEMA_JSON.as_bytes()).map_err(|e| err(e.to_string()))?;
    let ctx = riffle_stream::StreamContext::new(std::env::temp_dir());
    riffle_controller::spec::resolve(
        Arc::new(table),
        Arc::new(schema),
        &riffle_node::default_streams(),
        &ctx,
        riffle_transform::TransformOptions::default(),
    )
    .map(|(s, _)| s)
    .map_err(|e| err(format!("table spec: {e}")))
}

/// The JSON event files as Parquet files (zstd).
fn to_parquet(spec: &TableSpec, json: &Path, out: &Path) -> Result<(), BenchError> {
    let (staging, target) = spec.decode_target();
    let mut r = open_reader(json, FileFormat::Json, &staging, target, &BTreeMap::new())
        .map_err(|e| err(e.message))?;
    let props = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::default()))
        .build();
    let file = std::fs::File::create(out).map_err(|e| io_err("create", out, e))?;
    let mut w = ArrowWriter::try_new(file, spec.columns.arrow.clone(), Some(props))
        .map_err(|e| err(format!("parquet writer: {e}")))?;
    loop {
        let mut b = BlockBuilder::new(staging.clone(), 65_536);
        let n = r.read_rows(&mut b, 65_536).map_err(|e| err(e.message))?;
        if n == 0 {
            break;
        }
        let batch = b.finish().map_err(|e| err(e.to_string()))?;
        w.write(&batch)
            .map_err(|e| err(format!("parquet write: {e}")))?;
    }
    w.close().map_err(|e| err(format!("parquet close: {e}")))?;
    Ok(())
}

fn build_all(
    what: &str,
    spec: &TableSpec,
    inputs: &[PathBuf],
    out: &Path,
    threads: usize,
) -> Result<(Build, Vec<SealedSegment>), BenchError> {
    let _ = std::fs::remove_dir_all(out);
    std::fs::create_dir_all(out).map_err(|e| io_err("create", out, e))?;
    let segs: Vec<SegmentInput> = inputs
        .iter()
        .enumerate()
        .map(|(i, f)| SegmentInput {
            file: f.clone(),
            format: FileFormat::Parquet,
            name: format!("{TABLE}_{i}"),
            simple_name: None,
        })
        .collect();
    let progress = BuildProgress::default();
    let t = Instant::now();
    let built = build_segments(spec, &segs, &BTreeMap::new(), out, threads, &progress);
    let secs = t.elapsed().as_secs_f64();
    let mut bytes = 0;
    let mut paths = Vec::new();
    for b in built {
        let b = b.map_err(err)?;
        bytes += b.file.size_bytes;
        paths.push((b.path, b.input.name));
    }
    let t = Instant::now();
    let mut open = Vec::new();
    for (p, n) in paths {
        open.push(
            SealedSegment::open(&p, &n, spec.columns.clone(), LoadMode::Mmap)
                .map_err(|e| err(e.to_string()))?,
        );
    }
    let open_secs = t.elapsed().as_secs_f64();
    Ok((
        Build {
            what: what.to_string(),
            secs,
            bytes,
            open_secs,
        },
        open,
    ))
}

const DUCKDB: &str = r#"
import json, os, sys, time
import duckdb
cfg = json.loads(sys.argv[1])
if os.path.exists(cfg["db"]):
    os.remove(cfg["db"])
con = duckdb.connect(cfg["db"])
con.execute("SET enable_progress_bar = false")
con.execute(f"SET threads = {int(cfg['threads'])}")
files = ", ".join("'" + f + "'" for f in cfg["files"])
t = time.perf_counter()
con.execute(f"CREATE TABLE events AS SELECT * FROM read_parquet([{files}])")
con.execute("CHECKPOINT")
secs = time.perf_counter() - t
n = con.execute("SELECT COUNT(*) FROM events").fetchone()[0]
con.close()
print(json.dumps({"secs": secs, "rows": n, "bytes": os.path.getsize(cfg["db"])}))
"#;

fn duckdb(cfg: &BatchBenchConfig, inputs: &[PathBuf]) -> Result<(f64, u64), BenchError> {
    let db = cfg.work_dir.join("duck.db");
    let arg = serde_json::json!({
        "db": db.display().to_string(),
        "threads": cfg.threads,
        "files": inputs.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
    });
    let out = std::process::Command::new(&cfg.python)
        .arg("-c")
        .arg(DUCKDB)
        .arg(arg.to_string())
        .output()
        .map_err(|e| err(format!("run {}: {e}", cfg.python.display())))?;
    if !out.status.success() {
        return Err(err(format!(
            "duckdb: {}",
            String::from_utf8_lossy(&out.stderr)
        )));
    }
    let v: serde_json::Value =
        serde_json::from_slice(&out.stdout).map_err(|e| err(format!("duckdb answer: {e}")))?;
    if v["rows"].as_u64() != Some(cfg.rows) {
        return Err(err(format!("duckdb loaded {} rows", v["rows"])));
    }
    let _ = std::fs::remove_file(&db);
    Ok((
        v["secs"].as_f64().unwrap_or(f64::NAN),
        v["bytes"].as_u64().unwrap_or(0),
    ))
}

const QUERIES: [(&str, &str); 4] = [
    (
        "group by country",
        "SELECT country, COUNT(*), SUM(price) FROM t GROUP BY country ORDER BY country",
    ),
    (
        "filter device",
        "SELECT COUNT(*), AVG(price) FROM t WHERE device = 'tablet'",
    ),
    (
        "top uuids",
        "SELECT uuid, price FROM t ORDER BY price DESC, uuid LIMIT 10",
    ),
    (
        "time range",
        "SELECT MAX(price) FROM t WHERE ts >= 1700000500000 AND ts < 1700001500000",
    ),
];

async fn queries(
    cfg: &BatchBenchConfig,
    spec: &TableSpec,
    sides: Vec<Vec<SealedSegment>>,
) -> Result<Vec<(String, Vec<f64>)>, BenchError> {
    let registry = Arc::new(SegmentRegistry::new());
    let mut tables = Vec::new();
    for (i, segs) in sides.into_iter().enumerate() {
        let data = Arc::new(TableData::new(
            &format!("t{i}"),
            spec.columns.clone(),
            Some("ts".into()),
        ));
        for s in segs {
            data.put_segment(SegmentRef::Sealed(Arc::new(s)));
        }
        registry.add_table(data);
        tables.push(format!("t{i}"));
    }
    let pool = riffle_common::AsyncPool::new("batch-bench", cfg.threads)
        .map_err(|e| err(format!("query pool: {e}")))?;
    let engine = riffle_query::QueryEngine::new(registry, "bench".into(), pool);
    let mut out = Vec::new();
    for (name, sql) in QUERIES {
        let mut times: Vec<Vec<f64>> = vec![Vec::new(); tables.len()];
        let mut answers: Vec<serde_json::Value> = vec![serde_json::Value::Null; tables.len()];
        for _ in 0..cfg.repeat + 1 {
            for (i, t) in tables.iter().enumerate() {
                let q = sql.replace(" t ", &format!(" {t} "));
                let start = Instant::now();
                let r = engine
                    .execute(riffle_query::QueryRequest {
                        sql: q,
                        options: BTreeMap::new(),
                        allowed_tables: None,
                    })
                    .await;
                times[i].push(start.elapsed().as_secs_f64());
                if let Some((_, e)) = r.exceptions.first() {
                    return Err(err(format!("{name}: {e}")));
                }
                answers[i] = serde_json::Value::from(r.rows.clone());
            }
        }
        if answers.windows(2).any(|w| !same(&w[0], &w[1])) {
            return Err(err(format!("{name}: the two sides answer differently")));
        }
        let median = |v: &mut Vec<f64>| {
            v.remove(0); // warm-up
            v.sort_by(|a, b| a.total_cmp(b));
            v[v.len() / 2]
        };
        out.push((name.to_string(), times.iter_mut().map(median).collect()));
    }
    Ok(out)
}

/// The same answer: numbers within a relative 1e-9 (sums of doubles depend on the order
/// segments are merged in), everything else equal.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as V;
    match (a, b) {
        (V::Array(x), V::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(p, q)| same(p, q))
        }
        (V::Number(x), V::Number(y)) => match (x.as_f64(), y.as_f64()) {
            (Some(p), Some(q)) => (p - q).abs() <= 1e-9 * p.abs().max(q.abs()).max(1.0),
            _ => x == y,
        },
        _ => a == b,
    }
}

/// Runs the benchmark (see the module documentation).
pub async fn run_batch_bench(cfg: BatchBenchConfig) -> Result<BatchReport, BenchError> {
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("batch");
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    let plain = spec(None)?;
    let json_dir = dir.join("json");
    std::fs::create_dir_all(&json_dir).map_err(|e| io_err("create", &json_dir, e))?;
    write_events(&json_dir, cfg.rows, cfg.files)?;
    let mut inputs = Vec::new();
    let plain = Arc::new(plain);
    for p in 0..cfg.files {
        let json = crate::events::partition_file(&json_dir, p);
        let out = dir.join(format!("part-{p}.parquet"));
        let s = plain.clone();
        let (j, o) = (json.clone(), out.clone());
        tokio::task::spawn_blocking(move || to_parquet(&s, &j, &o))
            .await
            .map_err(|e| err(e.to_string()))??;
        let _ = std::fs::remove_file(&json);
        inputs.push(out);
    }
    let parquet_bytes = inputs
        .iter()
        .map(|p| std::fs::metadata(p).map(|m| m.len()).unwrap_or(0))
        .sum();
    let threads = cfg.threads;
    let run = |what: &'static str,
               codec: Option<&'static str>,
               raw: &'static [&'static str],
               sub: &'static str| {
        let (inputs, dir) = (inputs.clone(), dir.clone());
        tokio::task::spawn_blocking(move || {
            let s = spec_with(codec, raw)?;
            build_all(what, &s, &inputs, &dir.join(sub), threads)
        })
    };
    // Riffle and DuckDB take turns on the same files.
    let (default_build, _) = run("default codecs (LZ4 raw, packed ids)", None, &[], "default")
        .await
        .map_err(|e| err(e.to_string()))??;
    let (duckdb_secs, duckdb_bytes) = duckdb(&cfg, &inputs)?;
    let (zstd_build, zstd_segs) = run("ZSTANDARD on every column", Some("ZSTANDARD"), &[], "zstd")
        .await
        .map_err(|e| err(e.to_string()))??;
    let (plain_build, plain_segs) = run(
        "PASS_THROUGH (uncompressed)",
        Some("PASS_THROUGH"),
        &[],
        "plain",
    )
    .await
    .map_err(|e| err(e.to_string()))??;
    // What Pinot's docs advise for unique columns: no dictionary (uuid, ts), then zstd.
    let (raw_build, raw_segs) = run(
        "ZSTANDARD, uuid and ts raw",
        Some("ZSTANDARD"),
        &["uuid", "ts"],
        "zstd-raw",
    )
    .await
    .map_err(|e| err(e.to_string()))??;
    let queries = queries(&cfg, &plain, vec![zstd_segs, plain_segs, raw_segs]).await?;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(BatchReport {
        machine,
        load_before,
        load_after: LoadAvg::read(),
        rows: cfg.rows,
        files: cfg.files,
        threads: cfg.threads,
        parquet_bytes,
        builds: vec![default_build, zstd_build, plain_build, raw_build],
        duckdb_secs,
        duckdb_bytes,
        queries,
    })
}

impl fmt::Display for BatchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let rows = self.rows as f64;
        header(
            f,
            &format!(
                "Riffle batch benchmark: {} rows from {} Parquet files, {} threads a side",
                self.rows, self.files, self.threads
            ),
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(f)?;
        let first = &self.builds[0];
        let riffle_rate = rows / first.secs;
        let duck_rate = rows / self.duckdb_secs;
        writeln!(f, "batch ingestion (Parquet -> queryable storage)")?;
        writeln!(
            f,
            "  riffle, segments ({}):  {:>12.0} rows/s  ({:.2} s)",
            first.what, riffle_rate, first.secs
        )?;
        writeln!(
            f,
            "  duckdb, CREATE TABLE AS read_parquet: {:>12.0} rows/s  ({:.2} s)",
            duck_rate, self.duckdb_secs
        )?;
        writeln!(f, "  riffle / duckdb: {:.2}x", riffle_rate / duck_rate)?;
        writeln!(f)?;
        writeln!(f, "bytes per row")?;
        let pq = self.parquet_bytes as f64 / rows;
        writeln!(f, "  Parquet, zstd (default level):        {pq:>8.2}")?;
        writeln!(
            f,
            "  DuckDB database file:                 {:>8.2}",
            self.duckdb_bytes as f64 / rows
        )?;
        for b in &self.builds {
            let per = b.bytes as f64 / rows;
            writeln!(
                f,
                "  riffle, {:<40} {per:>8.2}  ({:.2}x Parquet; built in {:.2} s, opened in {:.3} s)",
                b.what, per / pq, b.secs, b.open_secs
            )?;
        }
        writeln!(f)?;
        writeln!(
            f,
            "query time, median: ZSTANDARD on every column | uncompressed | ZSTANDARD with uuid, ts raw (ratios to uncompressed)"
        )?;
        for (name, t) in &self.queries {
            let (a, b, c) = (t[0], t[1], t[2]);
            writeln!(
                f,
                "  {name:<18} {:>8.2} ms ({:.2}x) | {:>8.2} ms | {:>8.2} ms ({:.2}x)",
                a * 1e3,
                a / b,
                b * 1e3,
                c * 1e3,
                c / b
            )?;
        }
        Ok(())
    }
}
