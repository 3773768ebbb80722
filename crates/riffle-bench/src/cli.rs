//! `riffle bench`: the benchmarks whose figures `docs/PERFORMANCE.md` records, as
//! subcommands of the `riffle` command. They run the same code as `cargo bench -p
//! riffle-bench --bench ingest`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::{
    run_footprint_bench, run_ingest_bench, run_restart_bench, run_seal_bench, IngestBenchConfig,
    LifecycleBenchConfig,
};
use anyhow::{anyhow, Result};
use clap::Subcommand;

/// Bench flags.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Which,
}

/// Flags of the seal benchmark.
#[derive(clap::Args, Debug, Clone)]
struct SealFlags {
    /// Rows of each rate run (written once, ingested by every run).
    #[arg(long, default_value_t = 10_000_000)]
    rows: u64,
    /// realtime.segment.flush.threshold.segment.rows of the runs with seals.
    #[arg(long, default_value_t = 1_000_000)]
    threshold: u64,
    /// Rounds of (no seal, seals) runs, interleaved (0: latency runs only, one round).
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Skip the unmeasured warm-up run before the measured ones.
    #[arg(long)]
    no_warmup: bool,
    /// Rows per second of the latency runs (default: half the no-seal rate just measured).
    #[arg(long)]
    latency_rate: Option<u64>,
    /// Length of each latency run in seconds (0 skips them).
    #[arg(long, default_value_t = 10.0)]
    latency_secs: f64,
}

/// Flags of the restart benchmark.
#[derive(clap::Args, Debug, Clone)]
struct RestartFlags {
    /// Unsealed rows in the table when it crashes.
    #[arg(long = "restart-rows", default_value_t = 10_000_000)]
    restart_rows: u64,
}

/// Flags of the footprint benchmark.
#[derive(clap::Args, Debug, Clone)]
struct FootprintFlags {
    /// Rows of the consuming segment measured, sealed and written as Parquet.
    #[arg(long = "footprint-rows", default_value_t = 1_000_000)]
    footprint_rows: u64,
}

/// Flags every lifecycle benchmark takes.
#[derive(clap::Args, Debug, Clone)]
struct CommonFlags {
    /// Partitions (one loop, so about one core, each); the footprint uses one.
    #[arg(long, default_value_t = 1)]
    partitions: u32,
    /// Work directory (default: a temporary one, removed afterwards).
    #[arg(long)]
    dir: Option<PathBuf>,
}

/// Which benchmark.
#[derive(Subcommand, Debug)]
enum Which {
    /// File stream to queryable rows: rows/s beside a read-only and a naive-decode run, and
    /// the publish-to-query latency of rows appended while running. Build in release.
    Ingest {
        /// Rows written before the table exists (the throughput run).
        #[arg(long, default_value_t = 5_000_000)]
        rows: u64,
        /// Partitions (one loop, so about one core, each).
        #[arg(long, default_value_t = 1)]
        partitions: u32,
        /// Rows per second appended during the latency run.
        #[arg(long, default_value_t = 100_000)]
        latency_rate: u64,
        /// Length of the latency run in seconds.
        #[arg(long, default_value_t = 10.0)]
        latency_secs: f64,
        /// Skip the comparison runs.
        #[arg(long)]
        no_comparisons: bool,
        /// Work directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// No stall at seal: rows/s to queryable at the maximum rate and publish-to-query
    /// latency at half of it, with a 1,000,000-row segment threshold beside the same runs
    /// without seals. Build in release.
    Seal {
        #[command(flatten)]
        seal: SealFlags,
        #[command(flatten)]
        common: CommonFlags,
    },
    /// Restart after a crash: fill a table with unsealed rows, drop everything without a
    /// shutdown, start a fresh manager on the same data directory and time until every row
    /// is queryable again. Build in release.
    Restart {
        #[command(flatten)]
        restart: RestartFlags,
        #[command(flatten)]
        common: CommonFlags,
    },
    /// Bytes per row: a consuming segment in memory (and the process RSS), the same rows
    /// sealed (with and without indexes) and written as Parquet with zstd.
    Footprint {
        #[command(flatten)]
        footprint: FootprintFlags,
        #[command(flatten)]
        common: CommonFlags,
    },
    /// Light queries beside heavy ones: COUNT(*) latency alone and while clients run a
    /// high-cardinality GROUP BY, per query-pool size; and the cost of the query limits.
    /// Build in release.
    Queries {
        /// Rows in the table (all distinct uuids).
        #[arg(long, default_value_t = 1_000_000)]
        rows: u64,
        /// Light queries per phase.
        #[arg(long, default_value_t = 100)]
        light: usize,
        /// Clients running the heavy query.
        #[arg(long, default_value_t = 2)]
        heavy: usize,
        /// Query-pool sizes to compare, comma-separated (0: the default).
        #[arg(long, value_delimiter = ',', default_value = "0")]
        threads: Vec<usize>,
        /// Runs of the heavy query alone, per limit setting.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Work directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Dashboard queries through the broker beside DuckDB (the Python package) on the same
    /// generated rows, then concurrent clients. Build in release.
    Query {
        /// Events in the table.
        #[arg(long, default_value_t = 20_000_000)]
        rows: u64,
        /// Rows per segment.
        #[arg(long, default_value_t = 1_000_000)]
        segment_rows: u64,
        /// Measured runs of each query on each side.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Clients of the concurrency test (0 skips it).
        #[arg(long, default_value_t = 10)]
        clients: usize,
        /// Seconds of the concurrency test.
        #[arg(long, default_value_t = 60.0)]
        concurrency_secs: f64,
        /// Python with the `duckdb` package (default: the test suite's virtualenv,
        /// `$RIFFLE_VENV` or `~/.cache/riffle/venv`, when it exists; else `python3`).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Only the query of this name, or (no such name) those whose name contains it.
        #[arg(long)]
        only: Option<String>,
        /// Work directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// The 146-byte event through each decoder (JSON, JSON with three transforms, Avro,
    /// Avro with Confluent's framing, Protobuf, CSV): the decode stage's events/s on one
    /// thread, each beside the plain JSON path, in one run. Build in release.
    Decode {
        /// Events per variant and run.
        #[arg(long, default_value_t = 1_000_000)]
        rows: usize,
        /// Runs of each variant (taking turns; the median is reported).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Only the variants whose name contains this text (any case), beside the plain
        /// JSON path (for profiling one variant).
        #[arg(long)]
        only: Option<String>,
        /// Work directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// Batch ingestion: segments built from Parquet files beside DuckDB reading the same
    /// files into a table, bytes per row against Parquet with zstd for each codec choice,
    /// and query time over compressed and uncompressed segments, in one run. Build in
    /// release.
    Batch {
        /// Rows in all.
        #[arg(long, default_value_t = 20_000_000)]
        rows: u64,
        /// Parquet files (one segment each).
        #[arg(long, default_value_t = 4)]
        files: u32,
        /// Threads of each side (default: the cores).
        #[arg(long)]
        threads: Option<usize>,
        /// Measured runs of each query on each side.
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Python with the `duckdb` package (default: the test suite's virtualenv).
        #[arg(long)]
        python: Option<PathBuf>,
        /// Work directory (default: a temporary one, removed afterwards).
        #[arg(long)]
        dir: Option<PathBuf>,
    },
    /// seal, restart and footprint, one after the other.
    Lifecycle {
        #[command(flatten)]
        seal: SealFlags,
        #[command(flatten)]
        restart: RestartFlags,
        #[command(flatten)]
        footprint: FootprintFlags,
        #[command(flatten)]
        common: CommonFlags,
    },
}

/// The test suite's virtualenv's Python when it exists (it has `duckdb`), else `python3`.
fn default_python() -> PathBuf {
    let venv = std::env::var_os("RIFFLE_VENV")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| Path::new(&h).join(".cache/riffle/venv")));
    venv.map(|v| v.join("bin").join("python"))
        .filter(|p| p.exists())
        .unwrap_or_else(|| PathBuf::from("python3"))
}

/// The work directory: `dir`, or a temporary one removed when the guard drops.
fn work_dir(dir: &Option<PathBuf>) -> Result<(PathBuf, Option<tempfile::TempDir>)> {
    match dir {
        Some(d) => {
            std::fs::create_dir_all(d)?;
            Ok((d.clone(), None))
        }
        None => {
            let t = tempfile::Builder::new().prefix("riffle-bench").tempdir()?;
            Ok((t.path().to_path_buf(), Some(t)))
        }
    }
}

fn warn_debug(what: &str) {
    if cfg!(debug_assertions) {
        eprintln!("warning: this is a debug build; figures are meaningful only in release (cargo run --release -p riffle -- bench {what})");
    }
}

fn lifecycle_config(
    dir: &Path,
    common: &CommonFlags,
    seal: Option<&SealFlags>,
    restart: Option<&RestartFlags>,
    footprint: Option<&FootprintFlags>,
) -> LifecycleBenchConfig {
    let mut c = LifecycleBenchConfig::new(dir.to_path_buf());
    c.partitions = common.partitions;
    if let Some(s) = seal {
        c.seal_rows = s.rows;
        c.threshold = s.threshold;
        c.rounds = s.rounds;
        c.warmup = !s.no_warmup;
        c.latency_rate = s.latency_rate;
        c.latency_secs = s.latency_secs;
    }
    if let Some(r) = restart {
        c.restart_rows = r.restart_rows;
    }
    if let Some(f) = footprint {
        c.footprint_rows = f.footprint_rows;
    }
    c
}

/// Runs a benchmark and prints its report.
pub async fn run(a: BenchArgs) -> Result<()> {
    match a.which {
        Which::Ingest {
            rows,
            partitions,
            latency_rate,
            latency_secs,
            no_comparisons,
            dir,
        } => {
            let (work_dir, _tmp) = work_dir(&dir)?;
            let mut cfg = IngestBenchConfig::new(work_dir);
            cfg.rows = rows;
            cfg.partitions = partitions;
            cfg.latency_rate = latency_rate;
            cfg.latency_secs = latency_secs;
            cfg.comparisons = !no_comparisons;
            if cfg.tick.is_zero() {
                cfg.tick = Duration::from_millis(5);
            }
            warn_debug("ingest");
            let report = run_ingest_bench(cfg).await.map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
        Which::Batch {
            rows,
            files,
            threads,
            repeat,
            python,
            dir,
        } => {
            let (work_dir, _tmp) = work_dir(&dir)?;
            warn_debug("batch");
            let report = crate::batch::run_batch_bench(crate::batch::BatchBenchConfig {
                work_dir,
                rows,
                files: files.max(1),
                threads: threads
                    .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
                repeat: repeat.max(1),
                python: python.unwrap_or_else(default_python),
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
        Which::Queries {
            rows,
            light,
            heavy,
            threads,
            repeat,
            dir,
        } => {
            let (work_dir, _tmp) = work_dir(&dir)?;
            warn_debug("queries");
            let report = crate::queries::run_query_bench(crate::queries::QueryBenchConfig {
                work_dir,
                rows,
                light,
                heavy,
                threads,
                repeat,
            })
            .await
            .map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
        Which::Query {
            rows,
            segment_rows,
            repeat,
            clients,
            concurrency_secs,
            python,
            only,
            dir,
        } => {
            let (work_dir, _tmp) = work_dir(&dir)?;
            warn_debug("query");
            let report =
                crate::dashboard::run_dashboard_bench(crate::dashboard::DashboardBenchConfig {
                    work_dir,
                    rows,
                    segment_rows,
                    repeat,
                    clients,
                    concurrency_secs,
                    python: python.unwrap_or_else(default_python),
                    only,
                })
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
        Which::Seal { seal, common } => {
            let (d, _tmp) = work_dir(&common.dir)?;
            let cfg = lifecycle_config(&d, &common, Some(&seal), None, None);
            warn_debug("seal");
            let report = run_seal_bench(&cfg).await.map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
        Which::Restart { restart, common } => {
            let (d, _tmp) = work_dir(&common.dir)?;
            let cfg = lifecycle_config(&d, &common, None, Some(&restart), None);
            warn_debug("restart");
            let report = run_restart_bench(&cfg).await.map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
        Which::Decode {
            rows,
            repeat,
            only,
            dir,
        } => {
            warn_debug("decode");
            let (d, _tmp) = work_dir(&dir)?;
            let report = tokio::task::spawn_blocking(move || {
                crate::decode::run_decode_bench(rows, repeat, only.as_deref(), &d)
            })
            .await
            .map_err(|e| anyhow!("{e}"))?
            .map_err(|e| anyhow!("{e}"))?;
            println!("{}", report.render());
            Ok(())
        }
        Which::Footprint { footprint, common } => {
            let (d, _tmp) = work_dir(&common.dir)?;
            let cfg = lifecycle_config(&d, &common, None, None, Some(&footprint));
            warn_debug("footprint");
            let report = run_footprint_bench(&cfg)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
        Which::Lifecycle {
            seal,
            restart,
            footprint,
            common,
        } => {
            let (d, _tmp) = work_dir(&common.dir)?;
            let cfg = lifecycle_config(&d, &common, Some(&seal), Some(&restart), Some(&footprint));
            warn_debug("lifecycle");
            println!(
                "{}",
                run_seal_bench(&cfg).await.map_err(|e| anyhow!("{e}"))?
            );
            println!(
                "{}",
                run_restart_bench(&cfg).await.map_err(|e| anyhow!("{e}"))?
            );
            println!(
                "{}",
                run_footprint_bench(&cfg)
                    .await
                    .map_err(|e| anyhow!("{e}"))?
            );
            Ok(())
        }
    }
}
