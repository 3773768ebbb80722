//! `ORDER BY c [DESC] LIMIT n` without reading every row: the [`TopNScan`] rule finds a
//! sort with a row limit whose first key is a plain column of a segment scan below it
//! (through projections and partition merges, never a filter: a filter above the
//! scan could discard the rows the scan kept; filters pushed into the scan are applied
//! before it narrows, and a segment whose rows the scan filters itself is not narrowed),
//! and asks the scan for only the rows that can
//! be among the first `n` ([`SegmentScanExec::with_top`]). The sort above still orders and
//! cuts the rows, so the answer is the same; what changes is what is read: one column of
//! each sealed segment to find its candidates, the other columns for those rows only, and
//! nothing of a segment whose values cannot reach the best segment's `n`-th.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result as DfResult;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::{replace_children_if_necessary, ExecutionPlan};

use crate::provider::SegmentScanExec;

/// The physical rule (see the module's documentation).
#[derive(Debug, Default)]
pub struct TopNScan;

impl PhysicalOptimizerRule for TopNScan {
    fn name(&self) -> &str {
        "riffle_top_n_scan"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(sort) = node.downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            let first = sort.expr().first();
            let Some(n) = sort.fetch() else {
                return Ok(Transformed::no(node));
            };
            let Some(col) = first.expr.downcast_ref::<Column>() else {
                return Ok(Transformed::no(node));
            };
            let descending = first.options.descending;
            match narrowed(sort.input(), col.index(), descending, n)? {
                Some(input) => Ok(Transformed::yes(replace_children_if_necessary(
                    node.clone(),
                    vec![input],
                )?)),
                None => Ok(Transformed::no(node)),
            }
        })
        .map(|t| t.data)
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// `plan` with the scan below it narrowed to the top `n` rows by output column `column`.
fn narrowed(
    plan: &Arc<dyn ExecutionPlan>,
    column: usize,
    descending: bool,
    n: usize,
) -> DfResult<Option<Arc<dyn ExecutionPlan>>> {
    if let Some(scan) = plan.downcast_ref::<SegmentScanExec>() {
        return Ok(scan
            .with_top(column, descending, n)
            .map(|s| Arc::new(s) as Arc<dyn ExecutionPlan>));
    }
    let below = if let Some(p) = plan.downcast_ref::<ProjectionExec>() {
        // Only a column passed through unchanged keeps its order.
        let Some(c) = p
            .expr()
            .get(column)
            .and_then(|e| e.expr.downcast_ref::<Column>())
        else {
            return Ok(None);
        };
        c.index()
    } else if plan.downcast_ref::<CoalescePartitionsExec>().is_some() {
        column
    } else {
        return Ok(None);
    };
    let [child] = plan.children()[..] else {
        return Ok(None);
    };
    match narrowed(child, below, descending, n)? {
        Some(c) => Ok(Some(replace_children_if_necessary(plan.clone(), vec![c])?)),
        None => Ok(None),
    }
}
