//! `riffle bench`: the benchmarks whose figures `docs/PERFORMANCE.md` records. They run the
//! same library code as `cargo bench -p riffle-ingest --bench ingest`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Result};
use clap::Subcommand;
use riffle_ingest::bench::{run_ingest_bench, IngestBenchConfig};

/// Bench flags.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    which: Which,
}

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
            let tmp = match &dir {
                Some(d) => {
                    std::fs::create_dir_all(d)?;
                    None
                }
                None => Some(tempfile::Builder::new().prefix("riffle-bench").tempdir()?),
            };
            let work_dir = match (&dir, &tmp) {
                (Some(d), _) => d.clone(),
                (None, Some(t)) => t.path().to_path_buf(),
                (None, None) => return Err(anyhow!("no work directory")),
            };
            let mut cfg = IngestBenchConfig::new(work_dir);
            cfg.rows = rows;
            cfg.partitions = partitions;
            cfg.latency_rate = latency_rate;
            cfg.latency_secs = latency_secs;
            cfg.comparisons = !no_comparisons;
            if cfg.tick.is_zero() {
                cfg.tick = Duration::from_millis(5);
            }
            if cfg!(debug_assertions) {
                eprintln!("warning: this is a debug build; figures are meaningful only in release (cargo run --release -p riffle -- bench ingest)");
            }
            let report = run_ingest_bench(cfg).await.map_err(|e| anyhow!("{e}"))?;
            println!("{report}");
            Ok(())
        }
    }
}
