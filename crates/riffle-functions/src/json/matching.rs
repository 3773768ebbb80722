//! `JSON_MATCH(json, 'filter')`: Pinot's JSON filter, evaluated on each row's JSON text
//! (Pinot answers it from a JSON index; Riffle has none and reads the values).
//!
//! The filter is Pinot's language: conditions on JSON paths written as quoted identifiers,
//! joined by `AND` / `OR`, negated by `NOT`, in parentheses:
//! `"$.a.b" = 'x'`, `"$.a" <> 1`, `"$.tags[*]" IN ('p', 'q')`, `NOT IN`, `"$.n" > 2` (and
//! `<`, `<=`, `>=`, `BETWEEN`), `"$.a" IS NULL` / `IS NOT NULL` (the path is missing /
//! present), `REGEXP_LIKE("$.s", 'pattern')`. A path with `[*]` matches when any element
//! does. Values compare as Pinot's index flattens them, as text (`'1'` equals the number
//! 1); an ordering compares numbers as numbers when both sides are numbers.

use std::cmp::Ordering;

use datafusion::sql::sqlparser::ast::{BinaryOperator, Expr, UnaryOperator, Value as SqlValue};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use serde_json::Value;

use super::{as_text, parse_path, select, Step};

/// A parsed filter.
#[derive(Debug)]
pub(crate) struct JsonFilter {
    expr: Expr,
}

impl JsonFilter {
    /// Parses the filter text; the error names what is wrong.
    pub(crate) fn parse(text: &str) -> Result<JsonFilter, String> {
        let expr = Parser::new(&GenericDialect {})
            .try_with_sql(text)
            .and_then(|mut p| p.parse_expr())
            .map_err(|e| format!("the filter '{text}' is not valid: {e}"))?;
        // Evaluate once on nothing: unsupported shapes fail here, not on some row.
        check(&expr)?;
        Ok(JsonFilter { expr })
    }

    /// Whether the JSON document `root` matches.
    pub(crate) fn matches(&self, root: &Value) -> bool {
        eval(&self.expr, root)
    }
}

fn path_of(e: &Expr) -> Option<Result<Vec<Step>, String>> {
    match e {
        Expr::Identifier(id) if id.value.starts_with('$') => {
            Some(parse_path(&id.value).map_err(|m| format!("JSON path '{}': {m}", id.value)))
        }
        _ => None,
    }
}

fn literal_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Value(v) => match &v.value {
            SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => Some(s.clone()),
            SqlValue::Number(n, _) => Some(n.clone()),
            SqlValue::Boolean(b) => Some(b.to_string()),
            _ => None,
        },
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            expr,
        } => literal_of(expr).map(|s| format!("-{s}")),
        _ => None,
    }
}

/// Checks that every part of the filter is a shape [`eval`] answers.
fn check(e: &Expr) -> Result<(), String> {
    let path = |x: &Expr| match path_of(x) {
        Some(p) => p.map(|_| ()),
        None => Err(format!(
            "'{x}' is not a JSON path (write it quoted: \"$.a.b\")"
        )),
    };
    let lit = |x: &Expr| {
        literal_of(x)
            .map(|_| ())
            .ok_or_else(|| format!("'{x}' is not a literal"))
    };
    match e {
        Expr::Nested(x) => check(x),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => check(expr),
        Expr::BinaryOp { left, op, right } => match op {
            BinaryOperator::And | BinaryOperator::Or => {
                check(left)?;
                check(right)
            }
            BinaryOperator::Eq
            | BinaryOperator::NotEq
            | BinaryOperator::Lt
            | BinaryOperator::LtEq
            | BinaryOperator::Gt
            | BinaryOperator::GtEq => {
                path(left)?;
                lit(right)
            }
            other => Err(format!("the operator {other} is not supported")),
        },
        Expr::InList { expr, list, .. } => {
            path(expr)?;
            list.iter().try_for_each(lit)
        }
        Expr::Between {
            expr, low, high, ..
        } => {
            path(expr)?;
            lit(low)?;
            lit(high)
        }
        Expr::IsNull(x) | Expr::IsNotNull(x) => path(x),
        Expr::Function(f) if f.name.to_string().eq_ignore_ascii_case("regexp_like") => {
            let args: Vec<&Expr> = match &f.args {
                datafusion::sql::sqlparser::ast::FunctionArguments::List(l) => l
                    .args
                    .iter()
                    .filter_map(|a| match a {
                        datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                            datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(x),
                        ) => Some(x),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            match args.as_slice() {
                [p, r] => {
                    path(p)?;
                    let pattern = literal_of(r).ok_or("REGEXP_LIKE takes a pattern literal")?;
                    regex::Regex::new(&pattern)
                        .map(|_| ())
                        .map_err(|e| format!("invalid regular expression '{pattern}': {e}"))
                }
                _ => Err("REGEXP_LIKE takes a JSON path and a pattern".into()),
            }
        }
        other => Err(format!("'{other}' is not supported in a JSON filter")),
    }
}

/// The values at a path (an array reached with `[*]` spread).
fn values<'a>(root: &'a Value, e: &Expr) -> Vec<&'a Value> {
    match path_of(e) {
        Some(Ok(steps)) => select(root, &steps)
            .0
            .into_iter()
            .filter(|v| !v.is_null())
            .collect(),
        _ => Vec::new(),
    }
}

fn compare(v: &Value, lit: &str) -> Ordering {
    let text = as_text(v);
    match (text.parse::<f64>(), lit.parse::<f64>()) {
        (Ok(a), Ok(b)) => a.total_cmp(&b),
        _ => text.as_str().cmp(lit),
    }
}

fn equal(v: &Value, lit: &str) -> bool {
    let text = as_text(v);
    text == lit || matches!((text.parse::<f64>(), lit.parse::<f64>()), (Ok(a), Ok(b)) if a == b)
}

fn eval(e: &Expr, root: &Value) -> bool {
    match e {
        Expr::Nested(x) => eval(x, root),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => !eval(expr, root),
        Expr::BinaryOp { left, op, right } => {
            if matches!(op, BinaryOperator::And) {
                return eval(left, root) && eval(right, root);
            }
            if matches!(op, BinaryOperator::Or) {
                return eval(left, root) || eval(right, root);
            }
            let Some(lit) = literal_of(right) else {
                return false;
            };
            let vals = values(root, left);
            match op {
                BinaryOperator::Eq => vals.iter().any(|v| equal(v, &lit)),
                // Pinot: some value differs (and there is one).
                BinaryOperator::NotEq => vals.iter().any(|v| !equal(v, &lit)),
                BinaryOperator::Lt => vals.iter().any(|v| compare(v, &lit).is_lt()),
                BinaryOperator::LtEq => vals.iter().any(|v| compare(v, &lit).is_le()),
                BinaryOperator::Gt => vals.iter().any(|v| compare(v, &lit).is_gt()),
                BinaryOperator::GtEq => vals.iter().any(|v| compare(v, &lit).is_ge()),
                _ => false,
            }
        }
        Expr::InList {
            expr,
            list,
            negated,
        } => {
            let lits: Vec<String> = list.iter().filter_map(literal_of).collect();
            let vals = values(root, expr);
            if *negated {
                vals.iter().any(|v| !lits.iter().any(|l| equal(v, l)))
            } else {
                vals.iter().any(|v| lits.iter().any(|l| equal(v, l)))
            }
        }
        Expr::Between {
            expr,
            low,
            high,
            negated,
        } => {
            let (Some(lo), Some(hi)) = (literal_of(low), literal_of(high)) else {
                return false;
            };
            let inside = |v: &&Value| compare(v, &lo).is_ge() && compare(v, &hi).is_le();
            let vals = values(root, expr);
            if *negated {
                vals.iter().any(|v| !inside(v))
            } else {
                vals.iter().any(inside)
            }
        }
        Expr::IsNull(x) => values(root, x).is_empty(),
        Expr::IsNotNull(x) => !values(root, x).is_empty(),
        Expr::Function(f) => {
            let datafusion::sql::sqlparser::ast::FunctionArguments::List(l) = &f.args else {
                return false;
            };
            let args: Vec<&Expr> = l
                .args
                .iter()
                .filter_map(|a| match a {
                    datafusion::sql::sqlparser::ast::FunctionArg::Unnamed(
                        datafusion::sql::sqlparser::ast::FunctionArgExpr::Expr(x),
                    ) => Some(x),
                    _ => None,
                })
                .collect();
            let [p, r] = args.as_slice() else {
                return false;
            };
            let Some(re) = literal_of(r).and_then(|s| regex::Regex::new(&s).ok()) else {
                return false;
            };
            values(root, p).iter().any(|v| re.is_match(&as_text(v)))
        }
        _ => false,
    }
}
