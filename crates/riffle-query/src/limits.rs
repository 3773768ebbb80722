//! What one query may use, checked before and while it runs.
//!
//! - **Shape**, before planning: the deepest nesting of expressions and subqueries
//!   ([`QueryLimits::max_expression_depth`]) and the number of expressions
//!   ([`QueryLimits::max_expression_elements`]), as ClickHouse's `max_ast_depth` and
//!   `max_ast_elements` bound them. A `WHERE id=0 OR id=1 OR ... OR id=1999` is a tree 2,000
//!   deep; planning and optimizing it recurse once per level, so past the limit the query is
//!   refused (Pinot error 150 naming the limit) instead of overflowing a thread's stack. The
//!   check itself stops descending at the limit. Queries are also parsed and planned on the
//!   query pool, whose threads have [`riffle_common::runtime::ASYNC_POOL_STACK`] of stack.
//! - **Memory**, while running: every query's operators reserve from a pool of their own
//!   ([`QueryLimits::max_query_memory_bytes`]) drawn from one server-wide pool
//!   ([`QueryLimits::max_server_memory_bytes`]); a reservation past either fails the query
//!   with error 245 naming the limit. String functions whose output size is given by their
//!   arguments (`repeat`, `lpad`, `rpad`) check that size before they allocate
//!   ([`QueryLimits::max_string_bytes`] per value, the query's budget in all).
//! - **Admission**: at most [`QueryLimits::max_concurrent_queries`] queries run at once;
//!   the others wait in arrival order for a slot, at most [`QueryLimits::max_queue_wait`]
//!   (and never past their own `timeoutMs`), then fail with error 240.
//! - **Result**, while collecting: at most [`QueryLimits::max_result_rows`] rows and
//!   [`QueryLimits::max_response_bytes`] bytes of result (Pinot's
//!   `maxQueryResponseSizeBytes`, settable per query with that option, never above the
//!   server's); past either the query fails (245) instead of the server buffering it.

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::execution::TaskContext;
use datafusion::physical_plan::{execute_stream, ExecutionPlan};
use futures::StreamExt;
use riffle_common::ErrorKind;

use crate::BrokerResponse;
use datafusion::execution::memory_pool::{
    GreedyMemoryPool, MemoryConsumer, MemoryLimit, MemoryPool, MemoryReservation,
};
use datafusion::sql::sqlparser::ast::{Expr, Query, Statement, Visit, Visitor};

/// The limits every query runs under (see the module docs). Defaults suit a 2-core machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueryLimits {
    /// Deepest nesting of expressions and subqueries (default 1,000).
    pub max_expression_depth: usize,
    /// Expressions in one statement (default 50,000).
    pub max_expression_elements: usize,
    /// Memory one query's operators may reserve (default 1 GiB).
    pub max_query_memory_bytes: usize,
    /// Memory all running queries may reserve together (default 2 GiB).
    pub max_server_memory_bytes: usize,
    /// Largest string one `repeat` / `lpad` / `rpad` value may be (default 16 MiB).
    pub max_string_bytes: usize,
    /// Rows a result may have (default 1,000,000).
    pub max_result_rows: usize,
    /// Bytes a result may take in memory before it is answered (default 256 MiB).
    pub max_response_bytes: usize,
    /// Queries running at once (default four per core, at least 8); others wait for a slot.
    pub max_concurrent_queries: usize,
    /// How long a query waits for a slot at most (default 5 s, never past its own
    /// `timeoutMs`); then error 240.
    pub max_queue_wait: std::time::Duration,
}

impl Default for QueryLimits {
    fn default() -> QueryLimits {
        QueryLimits {
            max_expression_depth: 1_000,
            max_expression_elements: 50_000,
            max_query_memory_bytes: 1 << 30,
            max_server_memory_bytes: 2 << 30,
            max_string_bytes: 16 << 20,
            max_result_rows: 1_000_000,
            max_response_bytes: 256 << 20,
            max_concurrent_queries: std::thread::available_parallelism()
                .map_or(2, |n| n.get())
                .saturating_mul(4)
                .max(8),
            max_queue_wait: std::time::Duration::from_secs(5),
        }
    }
}

/// A statement past a shape limit: the message names the limit.
pub fn check_shape(statement: &Statement, limits: &QueryLimits) -> Result<(), String> {
    let mut v = ShapeVisitor {
        depth: 0,
        elements: 0,
        limits,
    };
    match statement.visit(&mut v) {
        ControlFlow::Continue(()) => Ok(()),
        ControlFlow::Break(message) => Err(message),
    }
}

struct ShapeVisitor<'a> {
    depth: usize,
    elements: usize,
    limits: &'a QueryLimits,
}

impl ShapeVisitor<'_> {
    fn enter(&mut self) -> ControlFlow<String> {
        self.depth += 1;
        self.elements += 1;
        if self.depth > self.limits.max_expression_depth {
            return ControlFlow::Break(format!(
                "the query nests expressions deeper than the limit of {} \
                 (maxExpressionDepth); write long OR chains as IN (...)",
                self.limits.max_expression_depth
            ));
        }
        if self.elements > self.limits.max_expression_elements {
            return ControlFlow::Break(format!(
                "the query has more than {} expressions (maxExpressionElements)",
                self.limits.max_expression_elements
            ));
        }
        ControlFlow::Continue(())
    }
}

impl Visitor for ShapeVisitor<'_> {
    type Break = String;

    fn pre_visit_expr(&mut self, _: &Expr) -> ControlFlow<String> {
        self.enter()
    }

    fn post_visit_expr(&mut self, _: &Expr) -> ControlFlow<String> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }

    fn pre_visit_query(&mut self, _: &Query) -> ControlFlow<String> {
        self.enter()
    }

    fn post_visit_query(&mut self, _: &Query) -> ControlFlow<String> {
        self.depth -= 1;
        ControlFlow::Continue(())
    }
}

/// The server-wide pool every query's pool draws from.
pub fn server_pool(limits: &QueryLimits) -> Arc<dyn MemoryPool> {
    Arc::new(GreedyMemoryPool::new(limits.max_server_memory_bytes))
}

/// One query's memory pool: at most `limit` bytes, and only what `server` still has.
#[derive(Debug)]
pub struct QueryPool {
    server: Arc<dyn MemoryPool>,
    /// Counts this query's reservations against `limit`; each is also made in the server
    /// pool (through `server_reservation`).
    local: GreedyMemoryPool,
    limit: usize,
    held: AtomicUsize,
    server_reservation: parking_lot::Mutex<Option<MemoryReservation>>,
}

impl QueryPool {
    /// A pool of at most `limit` bytes drawing from `server`.
    pub fn new(server: Arc<dyn MemoryPool>, limit: usize) -> QueryPool {
        let server_reservation = MemoryConsumer::new("query").register(&server);
        QueryPool {
            server,
            local: GreedyMemoryPool::new(limit),
            limit,
            held: AtomicUsize::new(0),
            server_reservation: parking_lot::Mutex::new(Some(server_reservation)),
        }
    }

    fn server_grow(&self, additional: usize) -> DfResult<()> {
        let mut r = self.server_reservation.lock();
        match r.as_mut() {
            Some(r) => r.try_grow(additional).map_err(|_| {
                DataFusionError::ResourcesExhausted(format!(
                    "queries together reached the server's memory limit of {} bytes \
                     (maxServerMemoryBytes; {} in use)",
                    self.server.memory_limit_bytes(),
                    self.server.reserved()
                ))
            }),
            None => Ok(()),
        }
    }

    fn server_shrink(&self, n: usize) {
        if let Some(r) = self.server_reservation.lock().as_mut() {
            r.shrink(n.min(r.size()));
        }
    }
}

trait LimitBytes {
    fn memory_limit_bytes(&self) -> String;
}

impl LimitBytes for Arc<dyn MemoryPool> {
    fn memory_limit_bytes(&self) -> String {
        match self.memory_limit() {
            MemoryLimit::Finite(n) => n.to_string(),
            _ => "unlimited".into(),
        }
    }
}

impl Drop for QueryPool {
    fn drop(&mut self) {
        // Gives the whole query's share back to the server pool.
        self.server_reservation.lock().take();
    }
}

impl std::fmt::Display for QueryPool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "query pool: {} of {} bytes held",
            self.held.load(Ordering::Relaxed),
            self.limit
        )
    }
}

impl MemoryPool for QueryPool {
    fn name(&self) -> &str {
        "riffle-query"
    }

    fn register(&self, consumer: &MemoryConsumer) {
        self.local.register(consumer);
    }

    fn unregister(&self, consumer: &MemoryConsumer) {
        self.local.unregister(consumer);
    }

    fn grow(&self, reservation: &MemoryReservation, additional: usize) {
        self.local.grow(reservation, additional);
        self.held.fetch_add(additional, Ordering::Relaxed);
        if let Some(r) = self.server_reservation.lock().as_mut() {
            r.grow(additional);
        }
    }

    fn shrink(&self, reservation: &MemoryReservation, shrink: usize) {
        self.local.shrink(reservation, shrink);
        self.held.fetch_sub(shrink, Ordering::Relaxed);
        self.server_shrink(shrink);
    }

    fn try_grow(&self, reservation: &MemoryReservation, additional: usize) -> DfResult<()> {
        self.local.try_grow(reservation, additional).map_err(|_| {
            DataFusionError::ResourcesExhausted(format!(
                "the query needs more than its memory limit of {} bytes \
                 (maxQueryMemoryBytes; {} held)",
                self.limit,
                self.held.load(Ordering::Relaxed)
            ))
        })?;
        if let Err(e) = self.server_grow(additional) {
            self.local.shrink(reservation, additional);
            return Err(e);
        }
        self.held.fetch_add(additional, Ordering::Relaxed);
        Ok(())
    }

    fn reserved(&self) -> usize {
        self.local.reserved()
    }

    fn memory_limit(&self) -> MemoryLimit {
        MemoryLimit::Finite(self.limit)
    }
}

/// The response byte limit of a query: `maxQueryResponseSizeBytes` (or
/// `maxServerResponseSizeBytes`) from its options when given and smaller, else the server's.
pub(crate) fn response_byte_limit(
    options: &std::collections::BTreeMap<String, String>,
    limits: &QueryLimits,
) -> usize {
    options
        .iter()
        .filter(|(k, _)| {
            k.eq_ignore_ascii_case("maxQueryResponseSizeBytes")
                || k.eq_ignore_ascii_case("maxServerResponseSizeBytes")
        })
        .filter_map(|(_, v)| {
            v.trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .parse()
                .ok()
        })
        .fold(limits.max_response_bytes, usize::min)
}

/// Runs `plan` and gathers its batches, failing once they hold more than `max_rows` rows
/// or `max_bytes` bytes (then the stream is dropped, which stops the query).
pub(crate) async fn collect_within(
    plan: Arc<dyn ExecutionPlan>,
    ctx: Arc<TaskContext>,
    max_rows: usize,
    max_bytes: usize,
) -> DfResult<Vec<RecordBatch>> {
    let mut stream = execute_stream(plan, ctx)?;
    let (mut rows, mut bytes) = (0usize, 0usize);
    let mut out = Vec::new();
    while let Some(batch) = stream.next().await {
        let batch = batch?;
        rows += batch.num_rows();
        bytes += batch.get_array_memory_size();
        if rows > max_rows {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the result has more than {max_rows} rows (maxResultRows); add a LIMIT"
            )));
        }
        if bytes > max_bytes {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "the result is larger than {max_bytes} bytes (maxQueryResponseSizeBytes); \
                 select fewer rows or columns"
            )));
        }
        out.push(batch);
    }
    Ok(out)
}

/// A query that failed while running: a resource limit is error 245, anything else 200.
pub(crate) fn execution_error(e: DataFusionError) -> BrokerResponse {
    let root = e.find_root();
    let kind = if matches!(root, DataFusionError::ResourcesExhausted(_)) {
        ErrorKind::ResourceLimitExceeded
    } else {
        ErrorKind::QueryExecution
    };
    let mut msg = root.to_string();
    for prefix in [
        "Resources exhausted: ",
        "Execution error: ",
        "Arrow error: ",
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            msg = rest.to_string();
        }
    }
    BrokerResponse::error(kind, &msg)
}
