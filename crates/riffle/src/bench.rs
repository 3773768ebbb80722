//! `riffle bench`: ingestion speed and freshness (filled in below).

use anyhow::Result;

/// Bench flags.
#[derive(clap::Args, Debug)]
pub struct BenchArgs {}

/// Runs the benchmark.
pub async fn run(_a: BenchArgs) -> Result<()> {
    anyhow::bail!("no benchmark yet")
}
