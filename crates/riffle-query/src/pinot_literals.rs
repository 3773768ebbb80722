//! Pinot's comparisons of a TIMESTAMP with a number: `WHERE ts > 1700000000000`.
//!
//! Pinot stores TIMESTAMP as epoch milliseconds and compares it with a bare number as such
//! (dashboards write their time filters that way). DataFusion refuses to compare a
//! timestamp with an integer. [`TimestampMillisLiterals`] runs before DataFusion's type
//! coercion and turns a whole-number literal compared with a timestamp expression (`=`,
//! `<>`, `<`, `<=`, `>`, `>=`, `IS [NOT] DISTINCT FROM`, `[NOT] BETWEEN`, `[NOT] IN`) into a
//! millisecond timestamp literal, and a numeric expression compared with one
//! (`ts > ago('PT1H')`, `ts > now() - 3600000`) into a millisecond timestamp. Nothing else changes: text literals already coerce to
//! timestamps, and numbers compared with anything but a timestamp are left alone.

use std::sync::Arc;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::InList;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{Between, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct TimestampMillisLiterals;

impl AnalyzerRule for TimestampMillisLiterals {
    fn name(&self) -> &str {
        "pinot_timestamp_millis_literals"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            // The columns an expression of this node may name: its inputs' (and a scan's
            // table's).
            let mut schema = merge_schema(&plan.inputs());
            if let LogicalPlan::TableScan(scan) = &plan {
                schema.merge(&DFSchema::try_from_qualified_schema(
                    scan.table_name.clone(),
                    &scan.source.schema(),
                )?);
            }
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|e| {
                let name = names.save(&e);
                e.transform_up(|e| rewrite(e, &schema))
                    .map(|t| t.update_data(|e| name.restore(e)))
            })
        })
        .map(|t| t.data)
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let ts = |e: &Expr| match e.get_type(schema) {
        Ok(DataType::Timestamp(_, tz)) => Some(tz),
        _ => None,
    };
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_comparison(op) => {
            let number = |e: &Expr, tz: Option<Arc<str>>| {
                millis(e, tz.clone()).or_else(|| millis_of_number(e, schema, tz))
            };
            if let Some(lit) = ts(&left).and_then(|tz| number(&right, tz)) {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(left, op, Box::new(lit))))
            } else if let Some(lit) = ts(&right).and_then(|tz| number(&left, tz)) {
                Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(Box::new(lit), op, right)))
            } else {
                Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right }))
            }
        }
        Expr::Between(Between {
            expr,
            negated,
            low,
            high,
        }) => match ts(&expr) {
            Some(tz) => {
                let fix = |b: Box<Expr>| millis(&b, tz.clone()).map(Box::new).unwrap_or(b);
                Transformed::yes(Expr::Between(Between {
                    expr,
                    negated,
                    low: fix(low),
                    high: fix(high),
                }))
            }
            None => Transformed::no(Expr::Between(Between {
                expr,
                negated,
                low,
                high,
            })),
        },
        Expr::InList(InList {
            expr,
            list,
            negated,
        }) => match ts(&expr) {
            Some(tz) => {
                let list = list
                    .into_iter()
                    .map(|item| millis(&item, tz.clone()).unwrap_or(item))
                    .collect();
                Transformed::yes(Expr::InList(InList {
                    expr,
                    list,
                    negated,
                }))
            }
            None => Transformed::no(Expr::InList(InList {
                expr,
                list,
                negated,
            })),
        },
        other => Transformed::no(other),
    })
}

fn is_comparison(op: Operator) -> bool {
    matches!(
        op,
        Operator::Eq
            | Operator::NotEq
            | Operator::Lt
            | Operator::LtEq
            | Operator::Gt
            | Operator::GtEq
            | Operator::IsDistinctFrom
            | Operator::IsNotDistinctFrom
    )
}

/// A numeric expression that is not a literal (`ago('PT1H')`, `now() - 3600000` once in
/// DOUBLE) read as epoch milliseconds.
fn millis_of_number(e: &Expr, schema: &DFSchema, tz: Option<Arc<str>>) -> Option<Expr> {
    let t = e.get_type(schema).ok()?;
    if !(t.is_integer() || t.is_floating()) {
        return None;
    }
    Some(datafusion::logical_expr::cast(
        datafusion::logical_expr::cast(e.clone(), DataType::Int64),
        DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, tz),
    ))
}

/// `e` as a millisecond timestamp literal, if it is a whole-number literal.
fn millis(e: &Expr, tz: Option<Arc<str>>) -> Option<Expr> {
    let Expr::Literal(v, _) = e else {
        return None;
    };
    let n = match v {
        ScalarValue::Int8(Some(n)) => i64::from(*n),
        ScalarValue::Int16(Some(n)) => i64::from(*n),
        ScalarValue::Int32(Some(n)) => i64::from(*n),
        ScalarValue::Int64(Some(n)) => *n,
        ScalarValue::UInt8(Some(n)) => i64::from(*n),
        ScalarValue::UInt16(Some(n)) => i64::from(*n),
        ScalarValue::UInt32(Some(n)) => i64::from(*n),
        ScalarValue::UInt64(Some(n)) => i64::try_from(*n).ok()?,
        ScalarValue::Float64(Some(f)) if f.fract() == 0.0 && f.abs() < 9.2e18 => *f as i64,
        _ => return None,
    };
    Some(Expr::Literal(
        ScalarValue::TimestampMillisecond(Some(n), tz),
        None,
    ))
}
