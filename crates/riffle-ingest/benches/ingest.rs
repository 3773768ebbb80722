//! Ingestion benchmark: rows/s from the file stream to queryable, with comparison runs,
//! and publish-to-query latency. See `riffle_ingest::bench` and docs/PERFORMANCE.md.
//!
//! ```text
//! CARGO_TARGET_DIR=/tmp/bench-target cargo bench -p riffle-ingest --bench ingest -- \
//!     [--rows N] [--partitions P] [--latency-rate R] [--latency-secs S] \
//!     [--tick-ms T] [--no-comparisons] [--no-split] [--dir DIR]
//! ```

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use riffle_ingest::bench::{run_ingest_bench, IngestBenchConfig};

const USAGE: &str = "usage: ingest [--rows N] [--partitions P] [--latency-rate R] \
[--latency-secs S] [--tick-ms T] [--no-comparisons] [--no-split] [--dir DIR]";

fn parse_args() -> Result<(IngestBenchConfig, Option<PathBuf>), String> {
    let mut cfg = IngestBenchConfig::new(PathBuf::new());
    let mut dir = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| {
            args.next()
                .ok_or_else(|| format!("{name} needs a value\n{USAGE}"))
        };
        fn num<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, String> {
            v.replace('_', "")
                .parse()
                .map_err(|_| format!("{name}: '{v}' is not a number\n{USAGE}"))
        }
        match a.as_str() {
            // Cargo passes --bench to harness=false targets.
            "--bench" => {}
            "--rows" => cfg.rows = num("--rows", &value("--rows")?)?,
            "--partitions" => cfg.partitions = num("--partitions", &value("--partitions")?)?,
            "--latency-rate" => {
                cfg.latency_rate = num("--latency-rate", &value("--latency-rate")?)?
            }
            "--latency-secs" => {
                cfg.latency_secs = num("--latency-secs", &value("--latency-secs")?)?
            }
            "--tick-ms" => {
                cfg.tick =
                    Duration::from_millis(num::<u64>("--tick-ms", &value("--tick-ms")?)?.max(1))
            }
            "--no-comparisons" => cfg.comparisons = false,
            "--no-split" => cfg.splits = false,
            "--dir" => dir = Some(PathBuf::from(value("--dir")?)),
            "-h" | "--help" => return Err(USAGE.to_string()),
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    Ok((cfg, dir))
}

fn main() -> ExitCode {
    let (mut cfg, dir) = match parse_args() {
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
    eprintln!(
        "running: rows={} partitions={} latency_rate={} latency_secs={} tick={:?} work_dir={}",
        cfg.rows,
        cfg.partitions,
        cfg.latency_rate,
        cfg.latency_secs,
        cfg.tick,
        cfg.work_dir.display()
    );
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
    match rt.block_on(run_ingest_bench(cfg)) {
        Ok(report) => {
            println!("{report}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("benchmark failed: {e}");
            ExitCode::FAILURE
        }
    }
}
