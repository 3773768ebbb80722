//! Pinot's meaning of predicates on multi-value columns, bound before planning.
//!
//! A comparison, `IN` or `BETWEEN` whose subject is a multi-value column is rewritten into
//! `mv_any(col, op, values...)` (riffle-functions), which matches a row when any value of the
//! list matches; `<>`, `NOT IN` and `NOT BETWEEN` become its negation (no value matches), as
//! Pinot evaluates exclusive predicates on multi-value columns. A literal on the left
//! (`5 < mv`) is turned around first. Comparisons between two multi-value columns are left
//! to the planner (Pinot has no meaning for them either).
//!
//! `GROUP BY` a multi-value column groups by each of its values, as Pinot does: a row
//! counts in the group of every value it holds (and, for several multi-value columns, in
//! every combination of their values). The table is replaced by a derived table that
//! applies the query's `WHERE` to whole rows (so `mv = 'x'` keeps rows holding `x`, with
//! all their values) and then unnests each grouped column in turn.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, BinaryOperator, Expr as SqlExpr, Ident, Statement};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;

/// The multi-value column an expression names, if it is one.
fn mv_column<'a>(e: &'a SqlExpr, mv: &BTreeSet<String>) -> Option<&'a SqlExpr> {
    let name = match e {
        SqlExpr::Identifier(id) => &id.value,
        SqlExpr::CompoundIdentifier(parts) => &parts.last()?.value,
        SqlExpr::Nested(inner) => return mv_column(inner, mv),
        _ => return None,
    };
    mv.contains(name).then_some(e)
}

fn op_text(op: &BinaryOperator) -> Option<&'static str> {
    Some(match op {
        BinaryOperator::Eq => "=",
        BinaryOperator::NotEq => "<>",
        BinaryOperator::Lt => "<",
        BinaryOperator::LtEq => "<=",
        BinaryOperator::Gt => ">",
        BinaryOperator::GtEq => ">=",
        _ => return None,
    })
}

/// `a op b` read as `b op' a`.
fn flipped(op: &str) -> &str {
    match op {
        "<" => ">",
        "<=" => ">=",
        ">" => "<",
        ">=" => "<=",
        same => same,
    }
}

/// `mv_any(col, 'op', values...)`, negated when `negate`.
fn call(col: &SqlExpr, op: &str, values: &[&SqlExpr], negate: bool) -> Option<SqlExpr> {
    let mut text = format!("mv_any({col}, '{op}'");
    for v in values {
        text.push_str(&format!(", {v}"));
    }
    text.push(')');
    if negate {
        text = format!("(NOT {text})");
    }
    Parser::new(&GenericDialect {})
        .try_with_sql(&text)
        .ok()?
        .parse_expr()
        .ok()
}

/// The rewrite of one expression, if it is a predicate on a multi-value column.
fn rewrite(e: &SqlExpr, mv: &BTreeSet<String>) -> Option<SqlExpr> {
    match e {
        SqlExpr::BinaryOp { left, op, right } => {
            let op = op_text(op)?;
            let (col, value, op) = match (mv_column(left, mv), mv_column(right, mv)) {
                (Some(c), None) => (c, right.as_ref(), op),
                (None, Some(c)) => (c, left.as_ref(), flipped(op)),
                _ => return None,
            };
            match op {
                "<>" => call(col, "=", &[value], true),
                _ => call(col, op, &[value], false),
            }
        }
        SqlExpr::InList {
            expr,
            list,
            negated,
        } => {
            let col = mv_column(expr, mv)?;
            let values: Vec<&SqlExpr> = list.iter().collect();
            if values.is_empty() {
                return None;
            }
            call(col, "in", &values, *negated)
        }
        SqlExpr::Between {
            expr,
            negated,
            low,
            high,
        } => {
            let col = mv_column(expr, mv)?;
            call(col, "between", &[low, high], *negated)
        }
        _ => None,
    }
}

/// Rewrites every predicate on a column of `mv` (multi-value column names, as resolved).
pub(crate) fn bind_multi_value_predicates(statement: &mut Statement, mv: &BTreeSet<String>) {
    if mv.is_empty() {
        return;
    }
    let _ = ast::visit_expressions_mut(statement, |e: &mut SqlExpr| {
        if let Some(new) = rewrite(e, mv) {
            *e = new;
        }
        ControlFlow::<()>::Continue(())
    });
}

fn column_name(e: &SqlExpr) -> Option<String> {
    match e {
        SqlExpr::Identifier(id) => Some(id.value.clone()),
        SqlExpr::CompoundIdentifier(parts) => parts.last().map(|p| p.value.clone()),
        SqlExpr::Nested(inner) => column_name(inner),
        _ => None,
    }
}

fn quoted(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Unnests the multi-value columns of a `GROUP BY` (see the module documentation). Left
/// alone: queries over joins or derived tables.
pub(crate) fn unnest_multi_value_groups(statement: &mut Statement, mv: &BTreeSet<String>) {
    if mv.is_empty() {
        return;
    }
    let Statement::Query(q) = statement else {
        return;
    };
    let ast::SetExpr::Select(select) = q.body.as_mut() else {
        return;
    };
    let ast::GroupByExpr::Expressions(exprs, _) = &select.group_by else {
        return;
    };
    // Multi-value columns grouped as they are, and VALUEIN(mv, ...) expressions (unnested
    // under a name of their own, which the outer query then reads).
    let mut grouped: Vec<String> = Vec::new();
    let mut value_ins: Vec<(String, String)> = Vec::new();
    for e in exprs {
        if let Some(name) = mv_column(e, mv).and_then(column_name) {
            if !grouped.contains(&name) {
                grouped.push(name);
            }
        } else if let SqlExpr::Function(f) = e {
            let is_value_in = f.name.to_string().eq_ignore_ascii_case("valuein");
            let first_is_mv = match &f.args {
                ast::FunctionArguments::List(l) => matches!(
                    l.args.first(),
                    Some(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(a)))
                        if mv_column(a, mv).is_some()
                ),
                _ => false,
            };
            let text = e.to_string();
            if is_value_in && first_is_mv && !value_ins.iter().any(|(t, _)| *t == text) {
                value_ins.push((text, format!("valuein \u{1}{}", value_ins.len())));
            }
        }
    }
    if (grouped.is_empty() && value_ins.is_empty())
        || select.from.len() != 1
        || !select.from[0].joins.is_empty()
    {
        return;
    }
    let ast::TableFactor::Table { name, alias, .. } = &select.from[0].relation else {
        return;
    };
    let table = match name.0.last().and_then(|p| p.as_ident()) {
        Some(id) => id.value.clone(),
        None => return,
    };
    let visible = alias
        .as_ref()
        .map_or(table.clone(), |a| a.name.value.clone());
    let mut inner = format!("SELECT * FROM {}", quoted(&table));
    if let Some(w) = &select.selection {
        inner.push_str(&format!(" WHERE {w}"));
    }
    for c in &grouped {
        let c = quoted(c);
        inner = format!(
            "SELECT * EXCLUDE ({c}), unnest({c}) AS {c} FROM ({inner}) AS {}",
            quoted(&visible)
        );
    }
    for (text, hidden) in &value_ins {
        inner = format!(
            "SELECT *, unnest({text}) AS {} FROM ({inner}) AS {}",
            quoted(hidden),
            quoted(&visible)
        );
    }
    // The outer query reads each unnested VALUEIN by its hidden name; a select item keeps
    // the expression's text as its name.
    if !value_ins.is_empty() {
        for item in select.projection.iter_mut() {
            if let ast::SelectItem::UnnamedExpr(e) = item {
                if let Some((text, _)) = value_ins.iter().find(|(t, _)| *t == e.to_string()) {
                    *item = ast::SelectItem::ExprWithAlias {
                        expr: e.clone(),
                        alias: Ident::with_quote('"', text.clone()),
                    };
                }
            }
        }
        let _ = ast::visit_expressions_mut(&mut **select, |e: &mut SqlExpr| {
            if let Some((_, hidden)) = value_ins.iter().find(|(t, _)| *t == e.to_string()) {
                *e = SqlExpr::Identifier(Ident::with_quote('"', hidden.clone()));
            }
            ControlFlow::<()>::Continue(())
        });
    }
    let text = format!("SELECT 1 FROM ({inner}) AS {}", quoted(&visible));
    let Ok(Some(Statement::Query(parsed))) =
        Parser::parse_sql(&GenericDialect {}, &text).map(|mut v| v.pop())
    else {
        return;
    };
    let ast::SetExpr::Select(mut wrapper) = *parsed.body else {
        return;
    };
    if let Some(from) = wrapper.from.pop() {
        select.from = vec![from];
        select.selection = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(sql: &str) -> String {
        let mut st = Parser::parse_sql(&GenericDialect {}, sql)
            .unwrap()
            .remove(0);
        let mv: BTreeSet<String> = ["tags".to_string(), "ids".to_string()].into();
        bind_multi_value_predicates(&mut st, &mv);
        st.to_string()
    }

    #[test]
    fn predicates_on_multi_value_columns_become_mv_any() {
        assert_eq!(
            bound("SELECT a FROM t WHERE tags = 'x' AND a = 1"),
            "SELECT a FROM t WHERE mv_any(tags, '=', 'x') AND a = 1"
        );
        assert_eq!(
            bound("SELECT a FROM t WHERE 5 < ids OR \"ids\" <> 3"),
            "SELECT a FROM t WHERE mv_any(ids, '>', 5) OR (NOT mv_any(\"ids\", '=', 3))"
        );
        assert_eq!(
            bound("SELECT a FROM t WHERE ids NOT IN (1, 2) AND tags BETWEEN 'a' AND 'b'"),
            "SELECT a FROM t WHERE (NOT mv_any(ids, 'in', 1, 2)) AND mv_any(tags, 'between', 'a', 'b')"
        );
        // Not a multi-value column, or two of them: untouched.
        assert_eq!(
            bound("SELECT a FROM t WHERE a IN (1) AND ids = tags"),
            "SELECT a FROM t WHERE a IN (1) AND ids = tags"
        );
    }
}
