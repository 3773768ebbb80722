//! The restart benchmark: a crash with unsealed rows, then the time until every row is
//! queryable again.

use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use crate::*;

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
    /// Opening the node (the catalog, the pools, every stored table started).
    pub open_secs: f64,
    /// From the start until the table was started (the node opened).
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
pub type Filled = (Rate, usize, usize);

/// Fills the table on a node with a runtime of its own, then "crashes": shuts that runtime
/// down with every task dropped where it stands, then drops the node.
pub fn fill_then_crash(
    dir: PathBuf,
    setup: TableSetup,
    rows: u64,
    bytes: u64,
    poll: Duration,
) -> Result<Filled, BenchError> {
    let rt =
        riffle_common::runtime::main_runtime().map_err(|e| err(format!("fill runtime: {e}")))?;
    let res = rt.block_on(async {
        let schema = schema()?;
        let core = Core::open(&dir, &setup).await?;
        let start = Instant::now();
        core.create_table(&setup, &schema).await?;
        let waited = wait_queryable(&core, rows, poll, start).await;
        let snaps = consuming_snapshots(&core);
        let held: usize = snaps.iter().map(|s| s.bytes).sum();
        let largest = snaps.iter().map(|s| s.bytes).max().unwrap_or(0);
        let committed = core.segments_committed();
        Ok::<_, BenchError>((core, waited, (held, largest), committed))
    });
    // The crash: no shutdown, no seal, no commit. Shutting the runtime down drops every
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

    // The restart, as `riffle serve` starts: the node opens the data directory and starts
    // every table of its catalog.
    let restart_load_before = LoadAvg::read();
    let cpu0 = process_cpu_secs();
    let start = Instant::now();
    let core = Core::open(&dir, &setup).await?;
    let open_secs = start.elapsed().as_secs_f64();
    let result = async {
        let in_progress = core
            .node
            .tables()
            .segments(&core.name)
            .await
            .map_err(|e| err(format!("catalog segments: {e}")))?
            .iter()
            .filter(|m| !m.is_done())
            .count();
        let (first, all) = wait_queryable(&core, rows, cfg.poll, start).await?;
        Ok::<_, BenchError>((in_progress, open_secs, first, all))
    }
    .await;
    let cpu1 = process_cpu_secs();
    let restart_load_after = LoadAvg::read();
    core.stop().await;
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
            "-- restart (runtime shut down, node dropped; a new node opens the data directory) --"
        )?;
        writeln!(
            f,
            "   load before {}  after {}",
            load_text(self.restart_load_before),
            load_text(self.load_after)
        )?;
        writeln!(
            f,
            "   node open (tables started) {:.1} ms   first rows {:.1} ms",
            self.open_secs * 1e3,
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
