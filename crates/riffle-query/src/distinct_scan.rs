//! Distinct counts without reading every row: the [`DistinctScan`] rule finds an
//! aggregation without `GROUP BY` whose aggregates all ignore duplicates (`DISTINCTCOUNT`,
//! `COUNT(DISTINCT x)`, the distinct-count sketches, `MIN`, `MAX`, `DISTINCTSUM`, ...) of
//! the one column a segment scan below it returns (directly, or through a projection of
//! casts of that column), and asks the scan for each sealed
//! segment's distinct values instead of its rows ([`SegmentScanExec::with_distinct`]): a
//! mark per dictionary id over the selected docs, then the marked dictionary entries. The
//! aggregation above sees each value once per segment instead of once per row, and answers
//! the same. Pinot answers these from dictionary ids too.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::Result as DfResult;
use datafusion::physical_expr::expressions::{CastExpr, Column, Literal};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::{replace_children_if_necessary, ExecutionPlan};

use crate::provider::SegmentScanExec;

/// Aggregations whose answer does not change when a value is seen more than once.
fn ignores_duplicates(name: &str, distinct: bool) -> bool {
    distinct
        || matches!(
            name,
            "min"
                | "max"
                | "approx_distinct"
                | "distinctcount"
                | "distinctcountbitmap"
                | "segmentpartitioneddistinctcount"
                | "distinctcounthll"
                | "distinctcounthllplus"
                | "distinctcountull"
                | "distinctcountcpcsketch"
                | "distinctcountthetasketch"
                | "distinctcountsmarthll"
                | "distinctsum"
                | "distinctavg"
                | "minmaxrange"
        )
}

/// The physical rule (see the module's documentation).
#[derive(Debug, Default)]
pub struct DistinctScan;

impl PhysicalOptimizerRule for DistinctScan {
    fn name(&self) -> &str {
        "riffle_distinct_scan"
    }

    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        _config: &ConfigOptions,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(agg) = node.downcast_ref::<AggregateExec>() else {
                return Ok(Transformed::no(node));
            };
            let first_stage = matches!(
                agg.mode(),
                AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned
            );
            let qualifies = first_stage
                && agg.group_expr().is_empty()
                && agg.filter_expr().iter().all(Option::is_none)
                && !agg.aggr_expr().is_empty()
                && agg.aggr_expr().iter().all(|a| {
                    let exprs = a.expressions();
                    ignores_duplicates(a.fun().name(), a.is_distinct())
                        && a.order_bys().is_empty()
                        // A column (the scan's one, or a cast of it), then constant
                        // parameters.
                        && exprs
                            .first()
                            .is_some_and(|e| e.downcast_ref::<Column>().is_some())
                        && exprs
                            .iter()
                            .skip(1)
                            .all(|e| e.downcast_ref::<Literal>().is_some())
                });
            if !qualifies {
                return Ok(Transformed::no(node));
            }
            match distinct_input(agg.input()) {
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

/// The scan right below (through nodes that pass rows through), asked for distinct values
/// of its one column.
fn distinct_input(plan: &Arc<dyn ExecutionPlan>) -> Option<Arc<dyn ExecutionPlan>> {
    if let Some(scan) = plan.downcast_ref::<SegmentScanExec>() {
        return scan
            .with_distinct()
            .map(|s| Arc::new(s) as Arc<dyn ExecutionPlan>);
    }
    // A projection of the scan's one column and casts of it (Pinot's DOUBLE results for
    // MIN / MAX cast the column first) is a function of each value: applying it to each
    // value once changes nothing for an aggregation that ignores duplicates.
    let passes = match plan.downcast_ref::<ProjectionExec>() {
        Some(p) => p.expr().iter().all(|e| {
            let inner = match e.expr.downcast_ref::<CastExpr>() {
                Some(c) => c.expr(),
                None => &e.expr,
            };
            inner.downcast_ref::<Column>().is_some()
        }),
        None => matches!(plan.name(), "CooperativeExec" | "CoalesceBatchesExec"),
    };
    if !passes {
        return None;
    }
    let [child] = plan.children()[..] else {
        return None;
    };
    let c = distinct_input(child)?;
    replace_children_if_necessary(plan.clone(), vec![c]).ok()
}
