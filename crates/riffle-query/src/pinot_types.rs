//! Pinot's result types for arithmetic and the basic aggregations.
//!
//! Pinot computes `+`, `-`, `*`, `/` and `%` on numbers in DOUBLE (so `INT - INT` cannot
//! wrap around on the INT default null -2147483648, and `7 / 2` is 3.5), and `SUM`, `MIN`,
//! `MAX` and `AVG` of a number answer DOUBLE (so `SUM(x) / COUNT(*)` is a fraction).
//! DataFusion keeps integer types. [`PinotNumericTypes`] runs before DataFusion's type
//! coercion and casts the numeric operands of arithmetic, and the numeric argument of those
//! four aggregations, to DOUBLE. Names are kept (`sum(x)` stays the column's name), so the
//! response names columns as before. `COUNT` already answers a LONG as Pinot's does.
//! Arithmetic on anything but two numbers (a timestamp and an interval) is left alone.

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{cast, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;

/// The analyzer rule; see the module documentation.
#[derive(Debug, Default)]
pub(crate) struct PinotNumericTypes;

impl AnalyzerRule for PinotNumericTypes {
    fn name(&self) -> &str {
        "pinot_numeric_types"
    }

    fn analyze(&self, plan: LogicalPlan, _config: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schema = merge_schema(&plan.inputs());
            let names = NamePreserver::new(&plan);
            let t = plan.map_expressions(|e| {
                let name = names.save(&e);
                e.transform_up(|e| rewrite(e, &schema))
                    .map(|t| t.update_data(|e| name.restore(e)))
            })?;
            // An input's output types may have changed even where this node's did not.
            t.map_data(|p| p.recompute_schema())
        })
        .map(|t| t.data)
    }
}

fn is_arithmetic(op: &Operator) -> bool {
    matches!(
        op,
        Operator::Plus | Operator::Minus | Operator::Multiply | Operator::Divide | Operator::Modulo
    )
}

/// Integers and floating-point numbers (decimals keep their exactness).
fn is_plain_number(t: &DataType) -> bool {
    t.is_integer() || t.is_floating() || t.is_null()
}

fn as_double(e: Expr, t: &DataType) -> Expr {
    if *t == DataType::Float64 {
        e
    } else {
        cast(e, DataType::Float64)
    }
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_arithmetic(&op) => {
            match (left.get_type(schema), right.get_type(schema)) {
                (Ok(lt), Ok(rt))
                    if is_plain_number(&lt)
                        && is_plain_number(&rt)
                        && !(lt.is_null() && rt.is_null())
                        && (lt != DataType::Float64 || rt != DataType::Float64) =>
                {
                    Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(as_double(*left, &lt)),
                        op,
                        Box::new(as_double(*right, &rt)),
                    )))
                }
                _ => Transformed::no(Expr::BinaryExpr(BinaryExpr { left, op, right })),
            }
        }
        Expr::AggregateFunction(mut f)
            if matches!(f.func.name(), "sum" | "min" | "max" | "avg")
                && f.params.args.len() == 1 =>
        {
            let t = f.params.args[0].get_type(schema);
            match t {
                Ok(t) if (t.is_integer() || t.is_floating()) && t != DataType::Float64 => {
                    let arg = f.params.args.remove(0);
                    f.params.args.push(cast(arg, DataType::Float64));
                    Transformed::yes(Expr::AggregateFunction(AggregateFunction { ..f }))
                }
                _ => Transformed::no(Expr::AggregateFunction(f)),
            }
        }
        other => Transformed::no(other),
    })
}
