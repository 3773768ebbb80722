//! A Pinot ingestion expression as SQL the function library can plan: function names
//! folded to lower case (Pinot's are case-insensitive, and `to_epoch_days` is
//! `toEpochDays`), dotted column names (`parent.child`, written by flattening) read as one
//! name, and the column names it reads.

use std::collections::BTreeSet;
use std::ops::ControlFlow;

use datafusion::sql::sqlparser::ast::{self, Expr as SqlExpr, Ident, ObjectNamePart};
use datafusion::sql::sqlparser::dialect::GenericDialect;
use datafusion::sql::sqlparser::parser::Parser;
use datafusion::sql::sqlparser::tokenizer::Token;

/// A parsed expression.
#[derive(Clone, Debug)]
pub struct Parsed {
    /// The expression as SQL text for the planner.
    pub sql: String,
    /// Column names it reads.
    pub columns: BTreeSet<String>,
    /// Function names it calls (lower case, as written).
    pub functions: Vec<String>,
}

/// Parses `text`; `known_function` says whether a lower-case name is a function, so that
/// a name found only without underscores (Pinot's canonical form) is rewritten to it.
pub fn parse(text: &str, known_function: &dyn Fn(&str) -> bool) -> Result<Parsed, String> {
    let mut parser = Parser::new(&GenericDialect {})
        .try_with_sql(text)
        .map_err(|e| format!("cannot parse '{text}': {e}"))?;
    let mut expr = parser
        .parse_expr()
        .map_err(|e| format!("cannot parse '{text}': {e}"))?;
    let next = parser.peek_token().token;
    if next != Token::EOF {
        return Err(format!(
            "cannot parse '{text}': unexpected '{next}' after the expression"
        ));
    }
    let mut functions = Vec::new();
    let mut columns = BTreeSet::new();
    let _ = ast::visit_expressions_mut(&mut expr, |e: &mut SqlExpr| {
        match e {
            SqlExpr::Function(f) => {
                for part in f.name.0.iter_mut() {
                    if let ObjectNamePart::Identifier(id) = part {
                        let lower = id.value.to_ascii_lowercase();
                        let canonical = lower.replace('_', "");
                        id.value = if !known_function(&lower) && known_function(&canonical) {
                            canonical
                        } else {
                            lower
                        };
                        id.quote_style = None;
                        functions.push(id.value.clone());
                    }
                }
            }
            // Pinot's SUBSTR (0-based, an end index) is a function of the library; SQL reads
            // `substr(...)` as its own SUBSTRING.
            SqlExpr::Substring {
                expr,
                substring_from,
                substring_for,
                shorthand: true,
                ..
            } => {
                let mut text = format!("\"substr\"({expr}");
                for a in [substring_from, substring_for].into_iter().flatten() {
                    text.push_str(&format!(", {a}"));
                }
                text.push(')');
                if let Ok(new) = Parser::new(&GenericDialect {})
                    .try_with_sql(&text)
                    .and_then(|mut p| p.parse_expr())
                {
                    *e = new;
                    functions.push("substr".to_string());
                }
            }
            SqlExpr::CompoundIdentifier(parts) => {
                let name = parts
                    .iter()
                    .map(|p| p.value.as_str())
                    .collect::<Vec<_>>()
                    .join(".");
                columns.insert(name.clone());
                *e = SqlExpr::Identifier(Ident::with_quote('"', name));
            }
            SqlExpr::Identifier(id) => {
                columns.insert(id.value.clone());
                *e = SqlExpr::Identifier(Ident::with_quote('"', id.value.clone()));
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    Ok(Parsed {
        sql: expr.to_string(),
        columns,
        functions,
    })
}

/// Whether an expression is a Groovy script (`Groovy({...}, a, b)`).
pub fn is_groovy(text: &str) -> bool {
    let t = text.trim_start();
    t.len() >= 7 && t[..6].eq_ignore_ascii_case("groovy") && t[6..].trim_start().starts_with('(')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known(n: &str) -> bool {
        matches!(n, "fromepochdays" | "concat" | "jsonpathstring")
    }

    #[test]
    fn folds_function_names_and_quotes_columns() {
        let p = parse("fromEpochDays(DaysSinceEpoch)", &known).unwrap();
        assert_eq!(p.sql, "fromepochdays(\"DaysSinceEpoch\")");
        assert_eq!(p.columns.iter().collect::<Vec<_>>(), ["DaysSinceEpoch"]);
        let p = parse("FROM_EPOCH_DAYS(d)", &known).unwrap();
        assert_eq!(p.sql, "fromepochdays(\"d\")");
        let p = parse("jsonPathString(payload.inner, '$.a')", &known).unwrap();
        assert_eq!(p.sql, "jsonpathstring(\"payload.inner\", '$.a')");
        assert!(p.columns.contains("payload.inner"));
    }

    #[test]
    fn a_quoted_name_is_a_rename() {
        let p = parse("\"event-id\"", &known).unwrap();
        assert_eq!(p.sql, "\"event-id\"");
        assert!(p.columns.contains("event-id"));
    }

    #[test]
    fn trailing_text_is_an_error() {
        let e = parse("a b c", &known).unwrap_err();
        assert!(e.contains("cannot parse"), "{e}");
        assert!(parse("concat(a,", &known).is_err());
    }

    #[test]
    fn recognises_groovy() {
        assert!(is_groovy("Groovy({a+b}, a, b)"));
        assert!(is_groovy("  groovy ({a}, a)"));
        assert!(!is_groovy("groovyish(a)"));
    }
}
