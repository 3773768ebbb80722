//! Light queries beside heavy ones: the latency of `SELECT COUNT(*)` alone and while other
//! clients run CPU-heavy queries, and what the query limits cost.
//!
//! One table of `rows` events (one consuming segment, nothing sealed). For each query-pool
//! size given (threads), a node is opened on it and, once every row is queryable:
//! 1. `light` sequential `COUNT(*)` queries, alone;
//! 2. the same while `heavy` clients each run a high-cardinality `GROUP BY uuid ... ORDER BY`
//!    in a loop (a light query every 20 ms);
//! 3. the heavy query alone, `repeat` times, under the default limits and under no limits
//!    (every limit at its maximum): the limits' cost;
//! 4. over HTTP, `COUNT(*)` and the heavy query alternately on an open broker and one with
//!    basic auth on ([`crate::auth_cost`]): what access control costs.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use riffle_common::RuntimeConfig;
use riffle_node::{Node, NodeConfig, QueryLimits};
use riffle_query::{QueryEngine, QueryRequest};
use riffle_stream::StreamRegistry;

use crate::lifecycle::{setup_with_threshold, wait_queryable, NO_SEAL_ROWS};
use crate::*;

/// The heavy query: every row's `uuid` is distinct.
pub const HEAVY: &str =
    "SELECT uuid, COUNT(*) AS c FROM bench_events GROUP BY uuid ORDER BY c DESC, uuid LIMIT 10";
/// The light query.
pub const LIGHT: &str = "SELECT COUNT(*) FROM bench_events";

/// What to run.
#[derive(Clone, Debug)]
pub struct QueryBenchConfig {
    /// Work directory.
    pub work_dir: PathBuf,
    /// Rows in the table.
    pub rows: u64,
    /// Light queries per phase.
    pub light: usize,
    /// Clients running the heavy query.
    pub heavy: usize,
    /// Query-pool sizes to compare (0: the default).
    pub threads: Vec<usize>,
    /// Runs of the heavy query alone per limit setting.
    pub repeat: usize,
}

/// Latencies of one phase.
#[derive(Clone, Debug, Default)]
pub struct Latencies(pub Vec<Duration>);

impl Latencies {
    pub(crate) fn pct(&self, p: f64) -> Duration {
        let mut v = self.0.clone();
        v.sort();
        if v.is_empty() {
            return Duration::ZERO;
        }
        let i = ((v.len() as f64 - 1.0) * p).round() as usize;
        v[i.min(v.len() - 1)]
    }
}

impl fmt::Display for Latencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "p50 {:.1} ms  p90 {:.1} ms  p99 {:.1} ms  max {:.1} ms  ({} queries)",
            ms(self.pct(0.5)),
            ms(self.pct(0.9)),
            ms(self.pct(0.99)),
            ms(self.pct(1.0)),
            self.0.len()
        )
    }
}

/// One pool size's results.
#[derive(Clone, Debug)]
pub struct PoolRun {
    /// Query threads.
    pub threads: usize,
    /// `COUNT(*)` alone.
    pub alone: Latencies,
    /// `COUNT(*)` beside the heavy clients.
    pub loaded: Latencies,
    /// Heavy queries finished meanwhile.
    pub heavy_done: u64,
    /// The heavy query alone, default limits.
    pub heavy_limited: Latencies,
    /// The heavy query alone, no limits.
    pub heavy_unlimited: Latencies,
    /// Over HTTP, auth off and on: `COUNT(*)`, then the heavy query.
    pub http: Vec<crate::auth_cost::AuthCost>,
}

/// The report.
#[derive(Clone, Debug)]
pub struct QueryBenchReport {
    /// The machine.
    pub machine: MachineFacts,
    /// Load before.
    pub load_before: Option<LoadAvg>,
    /// Load after.
    pub load_after: Option<LoadAvg>,
    /// The config.
    pub cfg: QueryBenchConfig,
    /// Per pool size.
    pub runs: Vec<PoolRun>,
}

impl fmt::Display for QueryBenchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        header(
            f,
            "Riffle query isolation benchmark",
            &self.machine,
            self.load_before,
            self.load_after,
        )?;
        writeln!(
            f,
            "rows {}  heavy clients {}  light: {LIGHT}\nheavy: {HEAVY}",
            thousands(self.cfg.rows as f64),
            self.cfg.heavy
        )?;
        for r in &self.runs {
            writeln!(f, "\n-- query pool of {} threads --", r.threads)?;
            writeln!(f, "   COUNT(*) alone:              {}", r.alone)?;
            writeln!(
                f,
                "   COUNT(*) beside heavy:       {}; heavy queries done meanwhile {}",
                r.loaded, r.heavy_done
            )?;
            writeln!(f, "   heavy alone, default limits: {}", r.heavy_limited)?;
            writeln!(f, "   heavy alone, no limits:      {}", r.heavy_unlimited)?;
            let (a, b) = (r.heavy_unlimited.pct(0.5), r.heavy_limited.pct(0.5));
            if !b.is_zero() {
                writeln!(
                    f,
                    "   limits' cost (median unlimited / limited): {:.3}",
                    a.as_secs_f64() / b.as_secs_f64()
                )?;
            }
            for (name, c) in ["COUNT(*)", "heavy"].iter().zip(&r.http) {
                writeln!(f, "   over HTTP, {name}, open:     {}", c.open)?;
                writeln!(f, "   over HTTP, {name}, auth on:  {}", c.auth)?;
                let (a, b) = (c.open.pct(0.5), c.auth.pct(0.5));
                if !b.is_zero() {
                    writeln!(
                        f,
                        "   auth's cost, {name} (median open / auth on): {:.3}",
                        a.as_secs_f64() / b.as_secs_f64()
                    )?;
                }
            }
        }
        Ok(())
    }
}

fn unlimited() -> QueryLimits {
    QueryLimits {
        max_expression_depth: usize::MAX,
        max_expression_elements: usize::MAX,
        max_query_memory_bytes: usize::MAX / 4,
        max_server_memory_bytes: usize::MAX / 2,
        max_string_bytes: usize::MAX,
        max_result_rows: usize::MAX,
        max_response_bytes: usize::MAX,
        max_concurrent_queries: tokio::sync::Semaphore::MAX_PERMITS,
        max_queue_wait: Duration::from_secs(3600),
    }
}

async fn timed(engine: &QueryEngine, sql: &str) -> Result<Duration, BenchError> {
    let t = Instant::now();
    let r = engine
        .execute(QueryRequest {
            sql: sql.into(),
            ..Default::default()
        })
        .await;
    if let Some((kind, m)) = r.exceptions.first() {
        return Err(err(format!("{sql}: {kind:?} {m}")));
    }
    Ok(t.elapsed())
}

async fn open(dir: &std::path::Path, threads: usize) -> Result<Node, BenchError> {
    let mut config = NodeConfig::loopback(dir.to_path_buf());
    config.discovery_interval = Duration::from_secs(3600);
    let mut rc = RuntimeConfig::default();
    if threads > 0 {
        rc.query_threads = threads;
    }
    config.runtime = rc;
    Node::open(config, StreamRegistry::with_builtins())
        .await
        .map_err(|e| err(format!("open node: {}", riffle_common::chain(&e))))
}

async fn pool_run(
    cfg: &QueryBenchConfig,
    dir: &std::path::Path,
    threads: usize,
    create: bool,
) -> Result<PoolRun, BenchError> {
    let setup = setup_with_threshold(NO_SEAL_ROWS)?;
    let node = open(dir, threads).await?;
    let core = crate::core::Core {
        node,
        name: setup.table.name_with_type(),
    };
    if create {
        core.create_table(&setup, &schema()?).await?;
    }
    wait_queryable(&core, cfg.rows, Duration::from_millis(5), Instant::now()).await?;
    let engine = core.node.query().clone();
    let threads = if threads > 0 {
        threads
    } else {
        RuntimeConfig::default().query_threads
    };

    let mut alone = Latencies::default();
    for _ in 0..cfg.light {
        alone.0.push(timed(&engine, LIGHT).await?);
    }

    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let mut heavy = Vec::new();
    for _ in 0..cfg.heavy {
        let (engine, stop, done) = (engine.clone(), stop.clone(), done.clone());
        heavy.push(tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                timed(&engine, HEAVY).await?;
                done.fetch_add(1, Ordering::Relaxed);
            }
            Ok::<(), BenchError>(())
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut loaded = Latencies::default();
    for _ in 0..cfg.light {
        loaded.0.push(timed(&engine, LIGHT).await?);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.store(true, Ordering::Relaxed);
    for h in heavy {
        h.await.map_err(|e| err(format!("heavy client: {e}")))??;
    }
    let heavy_done = done.load(Ordering::Relaxed);

    // The limits' cost: the same engine's segments under each setting, alternating.
    let limited = QueryEngine::new(
        core.node.segments().clone(),
        "bench".into(),
        riffle_common::AsyncPool::new("qbench", threads)
            .map_err(|e| err(format!("query pool: {e}")))?,
    );
    let free = QueryEngine::new(
        core.node.segments().clone(),
        "bench".into(),
        riffle_common::AsyncPool::new("qbench", threads)
            .map_err(|e| err(format!("query pool: {e}")))?,
    )
    .with_limits(unlimited());
    let (mut heavy_limited, mut heavy_unlimited) = (Latencies::default(), Latencies::default());
    for i in 0..cfg.repeat {
        if i % 2 == 0 {
            heavy_limited.0.push(timed(&limited, HEAVY).await?);
            heavy_unlimited.0.push(timed(&free, HEAVY).await?);
        } else {
            heavy_unlimited.0.push(timed(&free, HEAVY).await?);
            heavy_limited.0.push(timed(&limited, HEAVY).await?);
        }
    }
    let mut http = crate::auth_cost::measure(&core.node, &[LIGHT], cfg.light).await?;
    http.extend(crate::auth_cost::measure(&core.node, &[HEAVY], cfg.repeat).await?);
    core.stop().await;
    Ok(PoolRun {
        threads,
        alone,
        loaded,
        heavy_done,
        heavy_limited,
        heavy_unlimited,
        http,
    })
}

/// Runs the benchmark.
pub async fn run_query_bench(cfg: QueryBenchConfig) -> Result<QueryBenchReport, BenchError> {
    let machine = MachineFacts::read();
    let load_before = LoadAvg::read();
    let dir = cfg.work_dir.join("queries");
    std::fs::create_dir_all(&dir).map_err(|e| io_err("create", &dir, e))?;
    write_events_async(&dir, cfg.rows, 1).await?;
    let mut runs = Vec::new();
    for (i, &t) in cfg.threads.iter().enumerate() {
        runs.push(pool_run(&cfg, &dir, t, i == 0).await?);
    }
    Ok(QueryBenchReport {
        machine,
        load_before,
        load_after: LoadAvg::read(),
        cfg,
        runs,
    })
}
