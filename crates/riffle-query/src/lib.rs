//! SQL over a table's segments, answered in Pinot's broker-response shape.
//!
//! Owns [`QueryEngine`]: it parses Pinot SQL (double-quoted identifiers, case-preserving
//! names, `SET key = value;` statements, a trailing `OPTION(...)`, Pinot's default
//! `LIMIT 10`), plans and runs it with Apache DataFusion over [`provider::SegmentTable`]s,
//! and returns a [`BrokerResponse`] with Pinot's statistics and error codes (150 parse, 190
//! unknown table, 710 unknown column, 200 execution).
//!
//! Queries run on the node's query pool ([`riffle_common::AsyncPool`], handed in by the
//! composition root), never on the caller's threads.
//!
//! Invariants: a query error never fails the HTTP exchange (Pinot answers 200 with
//! `exceptions`); statistics are read from what the query actually scanned, never guessed;
//! a scan returns exactly the rows matching the filters pushed into it (where a segment's
//! indexes cannot tell, the scan filters the rows itself), and its row-count statistics are
//! exact only when no row is filtered that way; a narrowed scan (`ORDER BY c LIMIT n`,
//! `top_n.rs`) returns a superset of the rows the sort above keeps; a distinct scan
//! (`distinct_scan.rs`) feeds only aggregations that ignore duplicates; without
//! `enableNullHandling` no null reaches an operator (the scan fills the column's default,
//! as Pinot stores it).

mod cancel;
pub mod counters;
mod distinct_scan;
mod guard;
pub mod limits;
mod multivalue;
mod pinot_literals;
mod pinot_types;
mod prepare;
pub mod provider;
pub mod response;
mod run;
pub mod scan_exec;
mod top_n;
pub mod virtual_columns;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, MemoryCatalogProvider, MemoryCatalogProviderList,
    MemorySchemaProvider,
};
use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::execution::context::SessionState;
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::{SessionStateBuilder, TaskContext};
use datafusion::optimizer::{Analyzer, AnalyzerRule};
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::metrics::MetricValue;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::prelude::SessionConfig;
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::{
    self, Expr as SqlExpr, Ident, LimitClause, ObjectName, ObjectNamePart, Statement,
    Value as SqlValue,
};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use parking_lot::Mutex;
use riffle_common::{split_table_name, AsyncPool, ErrorKind};
use riffle_functions::aggregation::AggregationRegistry;
use riffle_segment::SegmentRegistry;

pub use limits::QueryLimits;
pub use response::{BrokerResponse, QueryStats};

use limits::{execution_error, response_byte_limit, QueryPool};
use prepare::{prepare, query_timeout, Prepared};
use run::{run, RunContext};

use provider::{ScanRecord, SegmentScanExec, SegmentTable};

/// Pinot's default limit for queries without one.
pub const DEFAULT_LIMIT: u64 = 10;

/// A query request: the SQL and Pinot's `queryOptions` (`k1=v1;k2=v2`).
#[derive(Clone, Debug, Default)]
pub struct QueryRequest {
    /// SQL text.
    pub sql: String,
    /// Options from the request body and `SET` statements.
    pub options: BTreeMap<String, String>,
    /// The raw table names the caller may read; `None`: all.
    pub allowed_tables: Option<BTreeSet<String>>,
}

/// Parses Pinot's `queryOptions` string.
pub fn parse_query_options(s: &str) -> BTreeMap<String, String> {
    s.split(';')
        .filter_map(|kv| {
            let (k, v) = kv.split_once('=')?;
            let k = k.trim();
            (!k.is_empty()).then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

/// Runs SQL over the registry's tables.
pub struct QueryEngine {
    segments: Arc<SegmentRegistry>,
    next_request_id: AtomicU64,
    broker_id: String,
    target_partitions: usize,
    /// The threads queries run on, apart from the server's: a query that computes without
    /// yielding can neither hold up the HTTP handlers and the ingestion loops nor outlast
    /// its time limit (the caller's timer keeps running).
    runtime: AsyncPool,
    limits: QueryLimits,
    /// The server-wide memory pool every query's own pool draws from.
    server_pool: Arc<dyn MemoryPool>,
    /// Query slots ([`QueryLimits::max_concurrent_queries`]); tokio's semaphore is fair,
    /// so waiting queries get slots in arrival order.
    slots: Arc<tokio::sync::Semaphore>,
    /// What has been answered since the start.
    counters: counters::QueryCounters,
    /// Aggregation functions beyond DataFusion's: Pinot's and plugins'.
    aggregations: Arc<AggregationRegistry>,
    /// The planning state queries start from, built at the first query
    /// ([`run::session_template`]).
    template: std::sync::OnceLock<Arc<SessionState>>,
}

/// Pinot's broker timeout when a query sets none (`pinot.broker.timeoutMs`).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The query's time limit: its `timeoutMs` option (from `SET`, `OPTION(...)` or the
/// request's `queryOptions`, any case), else [`DEFAULT_TIMEOUT_MS`].
impl QueryEngine {
    /// An engine over `segments` whose queries run on `runtime` (the node's query pool);
    /// `broker_id` names this broker in responses.
    pub fn new(
        segments: Arc<SegmentRegistry>,
        broker_id: String,
        runtime: AsyncPool,
    ) -> QueryEngine {
        let target_partitions = std::thread::available_parallelism().map_or(2, |n| n.get());
        let limits = QueryLimits::default();
        QueryEngine {
            segments,
            next_request_id: AtomicU64::new(1),
            broker_id,
            target_partitions,
            runtime,
            server_pool: limits::server_pool(&limits),
            slots: Arc::new(tokio::sync::Semaphore::new(
                limits.max_concurrent_queries.max(1),
            )),
            limits,
            counters: counters::QueryCounters::default(),
            aggregations: Arc::new(AggregationRegistry::with_builtins()),
            template: std::sync::OnceLock::new(),
        }
    }

    /// The planning state of this engine's queries.
    fn template(&self) -> Arc<SessionState> {
        self.template
            .get_or_init(|| {
                Arc::new(run::session_template(
                    self.target_partitions,
                    &self.limits,
                    &self.aggregations,
                ))
            })
            .clone()
    }

    /// The same engine with these aggregation functions (Pinot's built-in ones are in
    /// [`AggregationRegistry::with_builtins`]; add plugins to it).
    pub fn with_aggregations(mut self, aggregations: AggregationRegistry) -> QueryEngine {
        self.aggregations = Arc::new(aggregations);
        self.template = std::sync::OnceLock::new();
        self
    }

    /// The same engine under `limits`.
    pub fn with_limits(mut self, limits: QueryLimits) -> QueryEngine {
        self.server_pool = limits::server_pool(&limits);
        self.slots = Arc::new(tokio::sync::Semaphore::new(
            limits
                .max_concurrent_queries
                .clamp(1, tokio::sync::Semaphore::MAX_PERMITS),
        ));
        self.limits = limits;
        self.template = std::sync::OnceLock::new();
        self
    }

    /// Queries running now (holding a slot).
    pub fn running(&self) -> usize {
        self.limits
            .max_concurrent_queries
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS)
            - self.slots.available_permits()
    }

    /// Tasks of queries alive on the query pool: what still computes, including queries
    /// that timed out and have not stopped yet.
    pub fn alive_query_tasks(&self) -> usize {
        self.runtime.alive_tasks()
    }

    /// Memory the running queries hold now (bytes of the server-wide pool).
    pub fn memory_reserved(&self) -> usize {
        self.server_pool.reserved()
    }

    /// What has been answered since the start.
    pub fn counters(&self) -> counters::QueryCountersSnapshot {
        self.counters.snapshot()
    }

    /// The limits queries run under.
    pub fn limits(&self) -> &QueryLimits {
        &self.limits
    }

    /// Runs a query; errors are inside the response.
    pub async fn execute(&self, req: QueryRequest) -> BrokerResponse {
        let started = Instant::now();
        let request_id = self.next_request_id.fetch_add(1, Ordering::Relaxed);
        let mut resp = match self.prepare_on_pool(req).await {
            Err(r) => *r,
            Ok(p) => {
                tracing::debug!(
                    prepare_us = started.elapsed().as_micros() as u64,
                    "query prepared"
                );
                let tables = p.tables.clone();
                let mut r = match query_timeout(&p.options) {
                    Err(message) => BrokerResponse::error(ErrorKind::QueryValidation, &message),
                    Ok(limit) => self.run_in_slot(p, limit).await,
                };
                r.tables_queried = tables;
                r
            }
        };
        resp.request_id = request_id;
        resp.broker_id = self.broker_id.clone();
        let took = started.elapsed();
        tracing::debug!(total_us = took.as_micros() as u64, "query answered");
        resp.time_used_ms = took.as_millis() as u64;
        self.counters
            .record(took, resp.error_kind().map(|k| k.pinot_code()));
        resp
    }

    /// Runs a prepared query once it has a slot, within its time `limit`.
    async fn run_in_slot(&self, p: Prepared, limit: std::time::Duration) -> BrokerResponse {
        // A slot first: past the wait, error 240 (Pinot's scheduling timeout); the slot is
        // held until the query's work ends.
        let wait = self.limits.max_queue_wait.min(limit);
        let Ok(Ok(slot)) = tokio::time::timeout(wait, self.slots.clone().acquire_owned()).await
        else {
            return BrokerResponse::error(
                ErrorKind::QuerySchedulingTimeout,
                &format!(
                    "all {} query slots stayed busy for {} ms \
                     (maxConcurrentQueries, maxQueueWaitMs)",
                    self.limits.max_concurrent_queries,
                    wait.as_millis()
                ),
            );
        };
        // The query runs on the query threads, so that its time limit holds even while an
        // operator computes; at the limit the task is aborted, and stops at its next
        // cancellation point (see `cancel`).
        let run_ctx = RunContext {
            segments: self.segments.clone(),
            limits: self.limits.clone(),
            server_pool: self.server_pool.clone(),
            template: self.template(),
        };
        // The slot goes with the task: a query that timed out holds it until its work has
        // actually stopped.
        let task = self.runtime.spawn(async move {
            let r = run(run_ctx, p).await;
            drop(slot);
            r
        });
        // A caller that stops waiting (a client gone, a dropped request) stops the query.
        let abort = AbortOnDrop(task.abort_handle());
        match tokio::time::timeout(limit, task).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                BrokerResponse::error(ErrorKind::Internal, &format!("the query task failed: {e}"))
            }
            Err(_) => {
                abort.0.abort();
                BrokerResponse::error(
                    ErrorKind::ExecutionTimeout,
                    &format!(
                        "the query did not finish within timeoutMs={}",
                        limit.as_millis()
                    ),
                )
            }
        }
    }

    /// Parses and checks a request on the query pool (whose threads have the stack a deep
    /// statement needs, even to be dropped).
    async fn prepare_on_pool(&self, req: QueryRequest) -> Result<Prepared, Box<BrokerResponse>> {
        // Every table with its column names, for resolving names in any case.
        let known: BTreeMap<String, Vec<prepare::KnownColumn>> = self
            .segments
            .table_names()
            .into_iter()
            .map(|t| {
                let cols = self.segments.table(&t).map_or_else(Vec::new, |d| {
                    d.columns()
                        .columns
                        .iter()
                        .map(|c| prepare::KnownColumn {
                            name: c.name.clone(),
                            multi_value: !c.single_value,
                            timestamp: c.data_type == riffle_config::DataType::Timestamp,
                        })
                        .collect()
                });
                (t, cols)
            })
            .collect();
        let limits = self.limits.clone();
        let aggregations = self.aggregations.clone();
        match self
            .runtime
            .spawn(async move { prepare(&known, &limits, &aggregations, &req) })
            .await
        {
            Ok(r) => r,
            Err(e) => Err(Box::new(BrokerResponse::error(
                ErrorKind::Internal,
                &format!("the query task failed: {e}"),
            ))),
        }
    }
}

/// Aborts a query's task when whoever waits for it goes away.
struct AbortOnDrop(tokio::task::AbortHandle);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_surface;
