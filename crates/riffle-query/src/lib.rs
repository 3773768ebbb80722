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
//! `exceptions`); statistics are read from what the query actually scanned, never guessed.

mod guard;
pub mod limits;
mod pinot_literals;
pub mod provider;
pub mod response;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use datafusion::common::DataFusionError;
use datafusion::execution::context::SessionContext;
use datafusion::execution::memory_pool::MemoryPool;
use datafusion::execution::runtime_env::RuntimeEnvBuilder;
use datafusion::execution::SessionStateBuilder;
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
use riffle_segment::SegmentRegistry;

pub use limits::QueryLimits;
pub use response::{BrokerResponse, QueryStats};

use limits::{execution_error, response_byte_limit, QueryPool};

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
}

/// Pinot's broker timeout when a query sets none (`pinot.broker.timeoutMs`).
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// The query's time limit: its `timeoutMs` option (from `SET`, `OPTION(...)` or the
/// request's `queryOptions`, any case), else [`DEFAULT_TIMEOUT_MS`].
fn query_timeout(options: &BTreeMap<String, String>) -> Result<std::time::Duration, String> {
    let given = options
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("timeoutMs"))
        .map(|(_, v)| v.trim().trim_matches(|c| c == '\'' || c == '"'));
    let ms = match given {
        None => DEFAULT_TIMEOUT_MS,
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 => ms,
            _ => {
                return Err(format!(
                    "timeoutMs '{v}' is not a positive number of milliseconds"
                ))
            }
        },
    };
    Ok(std::time::Duration::from_millis(ms))
}

struct Prepared {
    statement: Statement,
    tables: Vec<String>,
    options: BTreeMap<String, String>,
}

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
        }
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
        self
    }

    /// Queries running now (holding a slot).
    pub fn running(&self) -> usize {
        self.limits
            .max_concurrent_queries
            .clamp(1, tokio::sync::Semaphore::MAX_PERMITS)
            - self.slots.available_permits()
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
                let tables = p.tables.clone();
                let mut r = match query_timeout(&p.options) {
                    Err(message) => BrokerResponse::error(ErrorKind::QueryValidation, &message),
                    Ok(limit) => {
                        // A slot first: past the wait, error 240 (Pinot's scheduling
                        // timeout); the slot is held until the query ends.
                        let wait = self.limits.max_queue_wait.min(limit);
                        let _slot =
                            match tokio::time::timeout(wait, self.slots.clone().acquire_owned())
                                .await
                            {
                                Ok(Ok(slot)) => slot,
                                _ => {
                                    let mut r = BrokerResponse::error(
                                        ErrorKind::QuerySchedulingTimeout,
                                        &format!(
                                            "all {} query slots stayed busy for {} ms \
                                         (maxConcurrentQueries, maxQueueWaitMs)",
                                            self.limits.max_concurrent_queries,
                                            wait.as_millis()
                                        ),
                                    );
                                    r.tables_queried = tables;
                                    r.request_id = request_id;
                                    r.broker_id = self.broker_id.clone();
                                    r.time_used_ms = started.elapsed().as_millis() as u64;
                                    return r;
                                }
                            };
                        // The query runs on the query threads, so that its time limit holds
                        // even while an operator computes without yielding; at the limit the
                        // task is aborted (it stops at its next yield).
                        let run_ctx = RunContext {
                            segments: self.segments.clone(),
                            target_partitions: self.target_partitions,
                            limits: self.limits.clone(),
                            server_pool: self.server_pool.clone(),
                        };
                        let task = self.runtime.spawn(run(run_ctx, p));
                        let abort = task.abort_handle();
                        match tokio::time::timeout(limit, task).await {
                            Ok(Ok(r)) => r,
                            Ok(Err(e)) => BrokerResponse::error(
                                ErrorKind::Internal,
                                &format!("the query task failed: {e}"),
                            ),
                            Err(_) => {
                                abort.abort();
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
                };
                r.tables_queried = tables;
                r
            }
        };
        resp.request_id = request_id;
        resp.broker_id = self.broker_id.clone();
        resp.time_used_ms = started.elapsed().as_millis() as u64;
        resp
    }

    /// Parses and checks a request on the query pool (whose threads have the stack a deep
    /// statement needs, even to be dropped).
    async fn prepare_on_pool(&self, req: QueryRequest) -> Result<Prepared, Box<BrokerResponse>> {
        let known = self.segments.table_names();
        let limits = self.limits.clone();
        match self
            .runtime
            .spawn(async move { prepare(&known, &limits, &req) })
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

/// Parses a request, checks its shape against `limits` and resolves its tables among `known`.
fn prepare(
    known: &[String],
    limits: &QueryLimits,
    req: &QueryRequest,
) -> Result<Prepared, Box<BrokerResponse>> {
    {
        let (sql, option_clause) = strip_option_clause(&req.sql);
        let mut options = req.options.clone();
        options.extend(option_clause);
        let statements = Parser::parse_sql(&GenericDialect {}, &sql)
            .map_err(|e| Box::new(BrokerResponse::error(ErrorKind::SqlParsing, &e.to_string())))?;
        for st in &statements {
            limits::check_shape(st, limits)
                .map_err(|m| Box::new(BrokerResponse::error(ErrorKind::SqlParsing, &m)))?;
        }
        let mut query = None;
        for st in statements {
            match st {
                Statement::Set(ast::Set::SingleAssignment {
                    variable, values, ..
                }) => {
                    let v = values.first().map(expr_text).unwrap_or_default();
                    options.insert(variable.to_string(), v);
                }
                Statement::Query(_) if query.is_none() => query = Some(st),
                Statement::Query(_) => {
                    return Err(Box::new(BrokerResponse::error(
                        ErrorKind::SqlParsing,
                        "only one query per request is supported",
                    )))
                }
                other => {
                    return Err(Box::new(BrokerResponse::error(
                        ErrorKind::SqlParsing,
                        &format!("unsupported statement, expected SELECT: {other}"),
                    )))
                }
            }
        }
        let mut statement = query.ok_or_else(|| {
            Box::new(BrokerResponse::error(
                ErrorKind::SqlParsing,
                "no query in the request",
            ))
        })?;

        // Resolve table names: `t`, `t_REALTIME`, any case.
        let mut tables: Vec<String> = Vec::new();
        let mut missing: Option<String> = None;
        let _ = ast::visit_relations_mut(&mut statement, |name: &mut ObjectName| {
            let written = name.to_string().trim_matches('"').to_string();
            let last = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .unwrap_or(written);
            let (raw, _) = split_table_name(&last);
            let found = known
                .iter()
                .find(|k| k.as_str() == raw)
                .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(raw)));
            match found {
                Some(k) => {
                    if !tables.contains(k) {
                        tables.push(k.clone());
                    }
                    *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', k))]);
                }
                None => missing = Some(raw.to_string()),
            }
            ControlFlow::<()>::Continue(())
        });
        if let Some(t) = missing {
            let mut r = BrokerResponse::error(ErrorKind::TableDoesNotExist, "");
            r.tables_queried = vec![t];
            return Err(Box::new(r));
        }
        if let Some(allowed) = &req.allowed_tables {
            if let Some(t) = tables.iter().find(|t| !allowed.contains(t.as_str())) {
                let mut r = BrokerResponse::error(
                    ErrorKind::AccessDenied,
                    &format!("Permission denied: the caller may not read table '{t}'"),
                );
                r.tables_queried = vec![t.clone()];
                return Err(Box::new(r));
            }
        }
        // Function names are case-insensitive in Pinot; identifiers are case-sensitive.
        // `CAST(x AS TIMESTAMP)` reads numbers as epoch milliseconds in Pinot (Superset's
        // time grains rely on it); DataFusion would read seconds.
        let _ = ast::visit_expressions_mut(&mut statement, |e: &mut SqlExpr| {
            if let SqlExpr::Cast {
                expr,
                data_type: ast::DataType::Timestamp(_, _),
                ..
            } = e
            {
                let text = format!("to_timestamp_millis({expr})");
                if let Ok(mut p) = Parser::new(&GenericDialect {}).try_with_sql(&text) {
                    if let Ok(new) = p.parse_expr() {
                        *e = new;
                    }
                }
            }
            if let SqlExpr::Function(f) = e {
                for part in f.name.0.iter_mut() {
                    if let ObjectNamePart::Identifier(id) = part {
                        if id.quote_style.is_none() {
                            id.value = id.value.to_ascii_lowercase();
                        }
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        if let Statement::Query(q) = &mut statement {
            if q.limit_clause.is_none() && q.fetch.is_none() {
                q.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(SqlExpr::value(SqlValue::Number(
                        DEFAULT_LIMIT.to_string(),
                        false,
                    ))),
                    offset: None,
                    limit_by: vec![],
                });
            }
        }
        Ok(Prepared {
            statement,
            tables,
            options,
        })
    }
}

/// What a query runs with.
struct RunContext {
    segments: Arc<SegmentRegistry>,
    target_partitions: usize,
    limits: QueryLimits,
    server_pool: Arc<dyn MemoryPool>,
}

/// Plans and runs a prepared query over `ctx.segments`, within `ctx.limits`.
async fn run(ctx: RunContext, p: Prepared) -> BrokerResponse {
    let RunContext {
        segments,
        target_partitions,
        limits,
        server_pool,
    } = ctx;
    let pool = QueryPool::new(server_pool, limits.max_query_memory_bytes);
    let runtime = match RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
    {
        Ok(r) => r,
        Err(e) => return BrokerResponse::error(ErrorKind::Internal, &root_message(&e)),
    };
    let mut config = SessionConfig::new()
        .with_target_partitions(target_partitions)
        .with_round_robin_repartition(false)
        .with_information_schema(false);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    // Pinot's own readings come before DataFusion's type coercion.
    let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> =
        vec![Arc::new(pinot_literals::TimestampMillisLiterals)];
    rules.extend(Analyzer::new().rules);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_runtime_env(runtime)
        .with_analyzer_rules(rules)
        .build();
    let ctx = SessionContext::new_with_state(state);
    guard::register(&ctx, &limits);
    let record: Arc<Mutex<Vec<ScanRecord>>> = Arc::new(Mutex::new(Vec::new()));
    for t in &p.tables {
        let Some(data) = segments.table(t) else {
            return BrokerResponse::error(ErrorKind::TableDoesNotExist, "");
        };
        if let Err(e) = ctx.register_table(
            t.as_str(),
            Arc::new(SegmentTable::new(data, record.clone())),
        ) {
            return BrokerResponse::error(ErrorKind::Internal, &e.to_string());
        }
    }
    let _ = &p.options;
    let state = ctx.state();
    let plan = match state
        .statement_to_plan(DfStatement::Statement(Box::new(p.statement)))
        .await
    {
        Ok(plan) => plan,
        Err(e) => return plan_error(e),
    };
    let df = match ctx.execute_logical_plan(plan).await {
        Ok(df) => df,
        Err(e) => return plan_error(e),
    };
    let physical = match df.create_physical_plan().await {
        Ok(p) => p,
        Err(e) => return plan_error(e),
    };
    let max_bytes = response_byte_limit(&p.options, &limits);
    let batches = match limits::collect_within(
        physical.clone(),
        ctx.task_ctx(),
        limits.max_result_rows,
        max_bytes,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return execution_error(e),
    };
    let schema = physical.schema();
    let mut resp = BrokerResponse {
        has_result: true,
        ..Default::default()
    };
    resp.column_names = schema
        .fields()
        .iter()
        .map(|f| pinot_column_name(f.name(), &p.tables))
        .collect();
    resp.column_types = schema
        .fields()
        .iter()
        .map(|f| response::pinot_type(f))
        .collect();
    resp.rows = response::rows_of(&batches);
    resp.stats = stats_of(&physical, &record.lock());
    // Rows of segments this server could not load are missing: say so, as Pinot's
    // broker does for unavailable segments (the result is partial).
    for t in &p.tables {
        let missing = segments
            .table(t)
            .map(|d| d.unavailable())
            .unwrap_or_default();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.keys().map(String::as_str).collect();
            let e = BrokerResponse::error(
                ErrorKind::SegmentsUnavailable,
                &format!(
                    "{} segments of table {t} unavailable: [{}]",
                    names.len(),
                    names.join(", ")
                ),
            );
            resp.exceptions.extend(e.exceptions);
        }
    }
    resp
}

fn expr_text(e: &SqlExpr) -> String {
    match e {
        SqlExpr::Value(v) => match &v.value {
            SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        SqlExpr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Splits a trailing Pinot `OPTION(k=v, ...)` clause off the SQL.
fn strip_option_clause(sql: &str) -> (String, BTreeMap<String, String>) {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    let lower = trimmed.to_ascii_lowercase();
    if trimmed.ends_with(')') {
        if let Some(pos) = lower.rfind("option(").or_else(|| lower.rfind("option (")) {
            let before = &trimmed[..pos];
            if before.ends_with(char::is_whitespace) {
                let inner = &trimmed[pos..];
                let inner = &inner[inner.find('(').map_or(0, |i| i + 1)..inner.len() - 1];
                let opts = inner
                    .split(',')
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        Some((
                            k.trim().to_string(),
                            v.trim().trim_matches('\'').trim_matches('"').to_string(),
                        ))
                    })
                    .collect();
                return (before.to_string(), opts);
            }
        }
    }
    (sql.to_string(), BTreeMap::new())
}

/// DataFusion qualifies columns in expression names (`avg(t.score)`); Pinot does not.
fn pinot_column_name(name: &str, tables: &[String]) -> String {
    let mut out = name.to_string();
    for t in tables {
        out = out.replace(&format!("{t}."), "");
        out = out.replace(&format!("\"{t}\"."), "");
    }
    out
}

fn root_message(e: &DataFusionError) -> String {
    let mut msg = e.find_root().to_string();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "Execution error: ",
        "Arrow error: ",
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            msg = rest.to_string();
        }
    }
    msg
}

fn plan_error(e: DataFusionError) -> BrokerResponse {
    let root = e.find_root();
    match root {
        DataFusionError::SchemaError(se, _) => {
            let text = se.to_string();
            if let datafusion::common::SchemaError::FieldNotFound { field, .. } = se.as_ref() {
                return BrokerResponse::error(
                    ErrorKind::UnknownColumn,
                    &format!("Unknown columnName '{}' found in the query", field.name),
                );
            }
            BrokerResponse::error(ErrorKind::QueryValidation, &text)
        }
        DataFusionError::SQL(pe, _) => {
            BrokerResponse::error(ErrorKind::SqlParsing, &pe.to_string())
        }
        DataFusionError::Plan(_) | DataFusionError::NotImplemented(_) => {
            BrokerResponse::error(ErrorKind::SqlParsing, &root_message(&e))
        }
        _ => BrokerResponse::error(ErrorKind::QueryExecution, &root_message(&e)),
    }
}

fn output_rows_by_partition(plan: &dyn ExecutionPlan) -> BTreeMap<usize, u64> {
    let mut out = BTreeMap::new();
    if let Some(m) = plan.metrics() {
        for metric in m.iter() {
            if let MetricValue::OutputRows(c) = metric.value() {
                *out.entry(metric.partition().unwrap_or(0)).or_insert(0) += c.value() as u64;
            }
        }
    }
    out
}

/// Reads the statistics from the executed plan: for each scan of a table, the filter above
/// it (if any) tells how many docs matched per segment.
fn stats_of(plan: &Arc<dyn ExecutionPlan>, records: &[ScanRecord]) -> QueryStats {
    let mut s = QueryStats::default();
    for r in records {
        s.total_docs += r.total_docs as u64;
        s.num_segments_queried += r.segments_queried as u64;
        s.num_segments_processed += r.segments_processed as u64;
        s.num_consuming_segments_queried += r.consuming_queried as u64;
        s.num_consuming_segments_processed += r.consuming_processed as u64;
        s.num_segments_pruned_by_server += (r.segments_queried - r.segments_processed) as u64;
        if let Some(f) = r.min_consuming_freshness_ms {
            s.min_consuming_freshness_time_ms = if s.min_consuming_freshness_time_ms == 0 {
                f
            } else {
                s.min_consuming_freshness_time_ms.min(f)
            };
        }
    }
    let mut seen = vec![false; records.len()];
    walk(plan.as_ref(), None, &mut |node, parent| {
        let Some(scan) = node.downcast_ref::<SegmentScanExec>() else {
            return;
        };
        let rec = records.get(scan.record_index);
        if let Some(s) = seen.get_mut(scan.record_index) {
            *s = true;
        }
        let scanned = output_rows_by_partition(node);
        let width = node.schema().fields().len() as u64;
        let consuming = |p: usize| {
            rec.and_then(|r| r.partition_is_consuming.get(p))
                .copied()
                .unwrap_or(false)
        };
        let filter = parent.and_then(|p| p.downcast_ref::<FilterExec>());
        let (matched, post_width) = match filter {
            Some(f) => {
                // What the scan could not answer from indexes (consuming segments, columns
                // without an index) was read value by value.
                match rec.filter(|r| r.filtered) {
                    Some(r) => s.num_entries_scanned_in_filter += r.entries_scanned_in_filter,
                    None => {
                        let filter_cols: BTreeSet<usize> =
                            datafusion::physical_expr::utils::collect_columns(f.predicate())
                                .iter()
                                .map(|c| c.index())
                                .collect();
                        let read = rec.map_or(0, |r| r.processed_docs as u64);
                        s.num_entries_scanned_in_filter += read * filter_cols.len() as u64;
                    }
                }
                (
                    output_rows_by_partition(f),
                    f.schema().fields().len() as u64,
                )
            }
            None => (scanned, width),
        };
        let docs: u64 = matched.values().sum();
        s.num_docs_scanned += docs;
        s.num_entries_scanned_post_filter += docs * post_width;
        for (p, n) in &matched {
            if *n > 0 {
                s.num_segments_matched += 1;
                if consuming(*p) {
                    s.num_consuming_segments_matched += 1;
                }
            }
        }
    });
    // A scan the optimiser answered from segment metadata (e.g. COUNT(*) without a filter)
    // matched every doc of every segment it covered.
    for (r, seen) in records.iter().zip(seen) {
        if !seen {
            s.num_docs_scanned += r.processed_docs as u64;
            s.num_segments_matched += r.segments_processed as u64;
            s.num_consuming_segments_matched += r.consuming_processed as u64;
        }
    }
    s
}

fn walk<'a>(
    node: &'a dyn ExecutionPlan,
    parent: Option<&'a dyn ExecutionPlan>,
    f: &mut dyn FnMut(&'a dyn ExecutionPlan, Option<&'a dyn ExecutionPlan>),
) {
    f(node, parent);
    // Nodes that pass rows through unchanged (scheduling, batch sizes) are looked through,
    // so a scan's parent is the filter above it whatever the optimiser put in between.
    let through = matches!(node.name(), "CooperativeExec" | "CoalesceBatchesExec");
    let next_parent = if through { parent } else { Some(node) };
    for c in node.children() {
        walk(c.as_ref(), next_parent, f);
    }
}

#[cfg(test)]
mod tests;
