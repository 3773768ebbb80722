//! Pinot's result types for arithmetic and the basic aggregations.
//!
//! Pinot computes `+`, `-`, `*`, `/` and `%` on numbers in DOUBLE (so `INT - INT` cannot
//! wrap around on the INT default null -2147483648, and `7 / 2` is 3.5), and `SUM`, `MIN`,
//! `MAX` and `AVG` of a number answer DOUBLE (so `SUM(x) / COUNT(*)` is a fraction).
//! DataFusion keeps integer types. [`PinotNumericTypes`] runs before DataFusion's type
//! coercion and casts the numeric operands of arithmetic, and the numeric argument of those
//! four aggregations, to DOUBLE. Names are kept (`sum(x)` stays the column's name), so the
//! response names columns as before. `COUNT` already answers a LONG as Pinot's does.
//! A TIMESTAMP in arithmetic with a number (or another TIMESTAMP) is its epoch
//! milliseconds, as in Pinot (`ts - 86400000` is a DOUBLE of milliseconds). Arithmetic on
//! anything else (a timestamp and an interval) is left alone.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::AggregateFunction;
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{cast, BinaryExpr, Expr, ExprSchemable, LogicalPlan, Operator};
use datafusion::optimizer::AnalyzerRule;
use datafusion::sql::sqlparser::ast;

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

fn is_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, _))
}

/// A TIMESTAMP as its epoch milliseconds (a LONG), whatever its unit.
fn timestamp_millis(e: Expr, t: &DataType) -> Expr {
    let tz = match t {
        DataType::Timestamp(_, tz) => tz.clone(),
        _ => None,
    };
    cast(
        cast(
            e,
            DataType::Timestamp(arrow::datatypes::TimeUnit::Millisecond, tz),
        ),
        DataType::Int64,
    )
}

fn rewrite(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    Ok(match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) if is_arithmetic(&op) => {
            match (left.get_type(schema), right.get_type(schema)) {
                // Pinot's TIMESTAMP is a LONG of milliseconds in arithmetic too.
                (Ok(lt), Ok(rt))
                    if (is_timestamp(&lt) && (is_plain_number(&rt) || is_timestamp(&rt)))
                        || (is_plain_number(&lt) && is_timestamp(&rt)) =>
                {
                    let side = |e: Expr, t: &DataType| {
                        if is_timestamp(t) {
                            cast(timestamp_millis(e, t), DataType::Float64)
                        } else {
                            as_double(e, t)
                        }
                    };
                    Transformed::yes(Expr::BinaryExpr(BinaryExpr::new(
                        Box::new(side(*left, &lt)),
                        op,
                        Box::new(side(*right, &rt)),
                    )))
                }
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

/// `ts - 86400000` on a TIMESTAMP column, before planning (DataFusion's planner refuses a
/// TIMESTAMP and a number in arithmetic before any analyzer rule could run): each operand
/// of `+`, `-`, `*`, `/`, `%` that names a TIMESTAMP column of `columns` becomes
/// `CAST(col AS BIGINT)`, its epoch milliseconds; the rule above then computes in DOUBLE.
pub(crate) fn timestamps_as_millis_in_arithmetic(
    statement: &mut ast::Statement,
    columns: &BTreeSet<String>,
) {
    use ast::{BinaryOperator as B, Expr as SqlExpr};
    if columns.is_empty() {
        return;
    }
    let names_timestamp = |e: &SqlExpr| match e {
        SqlExpr::Identifier(id) => columns.contains(&id.value),
        SqlExpr::CompoundIdentifier(parts) => {
            parts.last().is_some_and(|p| columns.contains(&p.value))
        }
        _ => false,
    };
    let as_millis = |e: &mut Box<SqlExpr>| {
        let inner = std::mem::replace(e.as_mut(), SqlExpr::value(ast::Value::Null));
        **e = SqlExpr::Cast {
            kind: ast::CastKind::Cast,
            expr: Box::new(inner),
            data_type: ast::DataType::BigInt(None),
            array: false,
            format: None,
        };
    };
    let _ = ast::visit_expressions_mut(statement, |e: &mut SqlExpr| {
        if let SqlExpr::BinaryOp { left, op, right } = e {
            if matches!(op, B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo) {
                if names_timestamp(left) {
                    as_millis(left);
                }
                if names_timestamp(right) {
                    as_millis(right);
                }
            }
        }
        ControlFlow::<()>::Continue(())
    });
}
