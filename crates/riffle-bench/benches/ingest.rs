//! Ingestion benchmark: rows/s from the file stream to queryable, with comparison runs,
//! and publish-to-query latency. See the `riffle_bench` crate and docs/PERFORMANCE.md.
//!
//! A first argument picks another benchmark of the same harness
//! (`riffle_bench::lifecycle`): `seal` (rate and latency with and without seals),
//! `restart` (time to queryable after a crash with unsealed rows), `footprint` (memory and
//! disk bytes per row, against Parquet) or `lifecycle` (all three).
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/bench-target cargo bench -p riffle-bench --bench ingest -- \
//!     [ingest|seal|restart|footprint|lifecycle] [--rows N] [--partitions P] \
//!     [--latency-rate R] [--latency-secs S] [--tick-ms T] [--no-comparisons] [--no-split] \
//!     [--threshold ROWS] [--rounds K] [--no-warmup] [--restart-rows N] [--footprint-rows N] \
//!     [--dir DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use riffle_bench::{
    run_footprint_bench, run_ingest_bench, run_restart_bench, run_seal_bench, BenchError,
    IngestBenchConfig, LifecycleBenchConfig,
};

const USAGE: &str = "usage: ingest [ingest|seal|restart|footprint|lifecycle] [--rows N] \
[--partitions P] [--latency-rate R] [--latency-secs S] [--tick-ms T] [--no-comparisons] \
[--no-split] [--threshold ROWS] [--rounds K] [--no-warmup] [--restart-rows N] [--footprint-rows N] \
[--dir DIR]

  ingest     (default) rows/s to queryable with comparisons, stage split, latency
  seal       rows/s and latency with seals (--threshold, 1000000) beside no seal, in
             --rounds (2) interleaved rounds after a warm-up (--no-warmup skips it)
  restart    time until --restart-rows (10000000) unsealed rows are queryable after a crash
  footprint  bytes per row of a consuming segment, a sealed segment and Parquet (zstd)
  lifecycle  seal, restart and footprint";

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    Ingest,
    Seal,
    Restart,
    Footprint,
    Lifecycle,
}

struct Args {
    mode: Mode,
    ingest: IngestBenchConfig,
    lifecycle: LifecycleBenchConfig,
    dir: Option<PathBuf>,
}

fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
    v.replace('_', "")
        .parse()
        .map_err(|_| format!("{name}: '{v}' is not a number\n{USAGE}"))
}

fn parse_args() -> Result<Args, String> {
    let mut cfg = IngestBenchConfig::new(PathBuf::new());
    let mut lc = LifecycleBenchConfig::new(PathBuf::new());
    let mut mode = Mode::Ingest;
    let mut dir = None;
    let mut args = std::env::args().skip(1).peekable();
    if let Some(m) = args.peek() {
        let picked = match m.as_str() {
            "ingest" => Some(Mode::Ingest),
            "seal" => Some(Mode::Seal),
            "restart" => Some(Mode::Restart),
            "footprint" => Some(Mode::Footprint),
            "lifecycle" => Some(Mode::Lifecycle),
            _ => None,
        };
        if let Some(p) = picked {
            mode = p;
            args.next();
        }
    }
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        match a.as_str() {
            // Cargo passes --bench to harness=false targets.
            "--bench" => {}
            "--rows" => {
                cfg.rows = num("--rows", &value("--rows")?)?;
                lc.seal_rows = cfg.rows;
            }
            "--partitions" => {
                cfg.partitions = num("--partitions", &value("--partitions")?)?;
                lc.partitions = cfg.partitions;
            }
            "--latency-rate" => {
                cfg.latency_rate = num("--latency-rate", &value("--latency-rate")?)?;
                lc.latency_rate = Some(cfg.latency_rate);
            }
            "--latency-secs" => {
                cfg.latency_secs = num("--latency-secs", &value("--latency-secs")?)?;
                lc.latency_secs = cfg.latency_secs;
            }
            "--tick-ms" => {
                cfg.tick =
                    Duration::from_millis(num::<u64>("--tick-ms", &value("--tick-ms")?)?.max(1));
                lc.tick = cfg.tick;
            }
            "--no-comparisons" => cfg.comparisons = false,
            "--no-split" => cfg.splits = false,
            "--threshold" => lc.threshold = num("--threshold", &value("--threshold")?)?,
            "--rounds" => lc.rounds = num("--rounds", &value("--rounds")?)?,
            "--no-warmup" => lc.warmup = false,
            "--restart-rows" => lc.restart_rows = num("--restart-rows", &value("--restart-rows")?)?,
            "--footprint-rows" => {
                lc.footprint_rows = num("--footprint-rows", &value("--footprint-rows")?)?
            }
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok(Args {
        mode,
        ingest: cfg,
        lifecycle: lc,
        dir,
    })
}

async fn run(
    mode: Mode,
    cfg: IngestBenchConfig,
    lc: LifecycleBenchConfig,
) -> Result<(), BenchError> {
    if mode == Mode::Ingest {
        eprintln!(
            "running: rows={} partitions={} latency_rate={} latency_secs={} tick={:?} work_dir={}",
            cfg.rows,
            cfg.partitions,
            cfg.latency_rate,
            cfg.latency_secs,
            cfg.tick,
            cfg.work_dir.display()
        );
        println!("{}", run_ingest_bench(cfg).await?);
        return Ok(());
    }
    eprintln!("running: {lc:?}");
    if matches!(mode, Mode::Seal | Mode::Lifecycle) {
        println!("{}", run_seal_bench(&lc).await?);
    }
    if matches!(mode, Mode::Restart | Mode::Lifecycle) {
        println!("{}", run_restart_bench(&lc).await?);
    }
    if matches!(mode, Mode::Footprint | Mode::Lifecycle) {
        println!("{}", run_footprint_bench(&lc).await?);
    }
    Ok(())
}

fn main() -> ExitCode {
    let Args {
        mode,
        ingest: mut cfg,
        lifecycle: mut lc,
        dir,
    } = match parse_args() {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    // A temporary work directory (removed at the end) unless --dir is given.
    let tmp = match &dir {
        Some(d) => {
            if let Err(e) = std::fs::create_dir_all(d) {
                eprintln!("cannot create {}: {e}", d.display());
                return ExitCode::FAILURE;
            }
            None
        }
        None => match tempfile::Builder::new()
            .prefix("riffle-ingest-bench")
            .tempdir()
        {
            Ok(t) => Some(t),
            Err(e) => {
                eprintln!("cannot create a temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        },
    };
    cfg.work_dir = match (&dir, &tmp) {
        (Some(d), _) => d.clone(),
        (None, Some(t)) => t.path().to_path_buf(),
        (None, None) => return ExitCode::FAILURE,
    };
    lc.work_dir = cfg.work_dir.clone();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the tokio runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run(mode, cfg, lc)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
