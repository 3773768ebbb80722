//! Cancellation points: where a query that ran past its time limit lets go of its thread.
//!
//! A query runs as tokio tasks on the query pool; at its time limit the task is aborted, and
//! an aborted task stops only when its current poll returns. DataFusion yields to the
//! scheduler at its leaves (the scans) and exchanges, once per batch they hand out; an
//! operator that produces batches from what it has buffered (a join's probe, an aggregate's
//! output) can compute for seconds within one poll, and its thread keeps working for a
//! query nobody waits for. The [`CancellationPoints`] rule, run after DataFusion's own
//! physical rules, closes that gap:
//!
//! - every operator's output passes through a [`CooperativeExec`], so a poll spends one unit
//!   of the task's scheduling budget per batch any operator hands up, and the task yields
//!   (and can be stopped) after a bounded number of batches;
//! - a nested-loop join's probe side is cut into slices of [`PROBE_SLICE_ROWS`] rows
//!   ([`SliceBatchesExec`]): the join evaluates a whole probe batch against its whole build
//!   side before it looks up, so with a filter that matches nothing one 8,192-row batch
//!   against 300,000 buffered rows is 2.5 billion evaluations in one poll; a slice bounds
//!   that to a few million.
//!
//! What remains unbounded is a single kernel call on one batch (one sort of what a sort
//! buffered, one `repeat` of one batch), each bounded by the memory budget.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result as DfResult, Statistics};
use datafusion::execution::TaskContext;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coop::CooperativeExec;
use datafusion::physical_plan::joins::{CrossJoinExec, NestedLoopJoinExec};
use datafusion::physical_plan::{
    replace_children_if_necessary, DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties,
    SendableRecordBatchStream,
};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::RecordBatchStream;
use futures::{Stream, StreamExt};

/// Rows of a nested-loop join's probe batch evaluated against the build side per step.
pub const PROBE_SLICE_ROWS: usize = 16;

/// The physical rule that adds the cancellation points (see the module's documentation).
#[derive(Debug, Default)]
pub struct CancellationPoints;

impl PhysicalOptimizerRule for CancellationPoints {
    fn name(&self) -> &str {
        "riffle_cancellation_points"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let probe_sides = node
                .downcast_ref::<NestedLoopJoinExec>()
                .map(|j| (j.left(), j.right()))
                .or_else(|| {
                    node.downcast_ref::<CrossJoinExec>()
                        .map(|j| (j.left(), j.right()))
                });
            let node = match probe_sides {
                Some((left, right)) => {
                    let right: Arc<dyn ExecutionPlan> =
                        Arc::new(SliceBatchesExec::new(right.clone(), PROBE_SLICE_ROWS));
                    replace_children_if_necessary(node.clone(), vec![left.clone(), right])?
                }
                None => node,
            };
            if node.children().is_empty() || node.downcast_ref::<CooperativeExec>().is_some() {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(CooperativeExec::new(node))))
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Passes its input's batches on in slices of at most `rows` rows (zero-copy).
#[derive(Debug)]
pub struct SliceBatchesExec {
    input: Arc<dyn ExecutionPlan>,
    rows: usize,
    props: Arc<PlanProperties>,
}

impl SliceBatchesExec {
    /// Slices of at most `rows` rows (at least 1) of `input`'s batches.
    pub fn new(input: Arc<dyn ExecutionPlan>, rows: usize) -> SliceBatchesExec {
        let props = input.properties().clone();
        SliceBatchesExec {
            input,
            rows: rows.max(1),
            props,
        }
    }
}

impl DisplayAs for SliceBatchesExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SliceBatchesExec: rows={}", self.rows)
    }
}

impl ExecutionPlan for SliceBatchesExec {
    fn name(&self) -> &str {
        "SliceBatchesExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        vec![true]
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(
        self: Arc<Self>,
        mut children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        match children.pop() {
            Some(input) if children.is_empty() => {
                Ok(Arc::new(SliceBatchesExec::new(input, self.rows)))
            }
            _ => Err(datafusion::common::DataFusionError::Internal(
                "SliceBatchesExec takes one child".into(),
            )),
        }
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let max_rows = context.session_config().batch_size();
        let input = self.input.execute(partition, context)?;
        Ok(Box::pin(SliceStream::new(input, self.rows, max_rows)))
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        _args: &datafusion::physical_plan::statistics::StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        match input_stats.first() {
            Some(s) => Ok(s.clone()),
            None => Ok(Arc::new(Statistics::new_unknown(&self.schema()))),
        }
    }
}

/// The stream of [`SliceBatchesExec`]. It times the operator above: the time between
/// handing out a slice and being asked for the next is that slice's work (for a
/// nested-loop join, the slice against the whole build side). Slices grow while that work
/// is short and shrink while it is long, aiming at [`SLICE_WORK`] each; once the work since
/// the last yield passes [`YIELD_AFTER`], the stream yields to the scheduler (where an abort
/// takes effect) before the next slice.
struct SliceStream {
    schema: SchemaRef,
    input: SendableRecordBatchStream,
    rows: usize,
    max_rows: usize,
    current: Option<RecordBatch>,
    offset: usize,
    handed_at: Option<Instant>,
    since_yield: Duration,
}

/// The work a slice aims at.
const SLICE_WORK: Duration = Duration::from_millis(2);
/// The work after which the stream yields.
const YIELD_AFTER: Duration = Duration::from_millis(5);

impl SliceStream {
    fn new(input: SendableRecordBatchStream, rows: usize, max_rows: usize) -> SliceStream {
        SliceStream {
            schema: input.schema(),
            input,
            rows,
            max_rows: max_rows.max(rows),
            current: None,
            offset: 0,
            handed_at: None,
            since_yield: Duration::ZERO,
        }
    }
}

impl Stream for SliceStream {
    type Item = DfResult<RecordBatch>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if let Some(handed) = self.handed_at.take() {
            let work = handed.elapsed();
            self.rows = if work < SLICE_WORK / 2 {
                (self.rows * 2).min(self.max_rows)
            } else if work > SLICE_WORK * 2 {
                (self.rows / 2).max(1)
            } else {
                self.rows
            };
            self.since_yield += work;
            if self.since_yield >= YIELD_AFTER {
                self.since_yield = Duration::ZERO;
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        loop {
            if let Some(b) = &self.current {
                if self.offset < b.num_rows() {
                    let len = self.rows.min(b.num_rows() - self.offset);
                    let slice = b.slice(self.offset, len);
                    self.offset += len;
                    self.handed_at = Some(Instant::now());
                    return Poll::Ready(Some(Ok(slice)));
                }
                self.current = None;
            }
            match std::task::ready!(self.input.poll_next_unpin(cx)) {
                Some(Ok(b)) => {
                    self.current = Some(b);
                    self.offset = 0;
                }
                other => return Poll::Ready(other),
            }
        }
    }
}

impl RecordBatchStream for SliceStream {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }
}
