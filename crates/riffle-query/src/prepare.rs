//! A request's SQL made ready to plan: Pinot's `OPTION(...)` and `SET` read, the statement
//! checked against the shape limits, table names resolved (any case, with or without the
//! type suffix) and allowed for the caller, function names lowercased, Pinot's default
//! `LIMIT 10` added.

use super::*;

pub(crate) fn query_timeout(
    options: &BTreeMap<String, String>,
) -> Result<std::time::Duration, String> {
    let given = options
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("timeoutMs"))
        .map(|(_, v)| v.trim().trim_matches(|c| c == '\'' || c == '"'));
    let ms = match given {
        None => DEFAULT_TIMEOUT_MS,
        Some(v) => match v.parse::<u64>() {
            Ok(ms) if ms > 0 => ms,
            _ => {
                return Err(format!(
                    "timeoutMs '{v}' is not a positive number of milliseconds"
                ))
            }
        },
    };
    Ok(std::time::Duration::from_millis(ms))
}

pub(crate) struct Prepared {
    pub(crate) statement: Statement,
    pub(crate) tables: Vec<String>,
    pub(crate) options: BTreeMap<String, String>,
}

/// Parses a request, checks its shape against `limits` and resolves its tables among `known`.
pub(crate) fn prepare(
    known: &[String],
    limits: &QueryLimits,
    req: &QueryRequest,
) -> Result<Prepared, Box<BrokerResponse>> {
    {
        let (sql, option_clause) = strip_option_clause(&req.sql);
        let mut options = req.options.clone();
        options.extend(option_clause);
        let statements = Parser::parse_sql(&GenericDialect {}, &sql)
            .map_err(|e| Box::new(BrokerResponse::error(ErrorKind::SqlParsing, &e.to_string())))?;
        for st in &statements {
            limits::check_shape(st, limits)
                .map_err(|m| Box::new(BrokerResponse::error(ErrorKind::SqlParsing, &m)))?;
        }
        let mut query = None;
        for st in statements {
            match st {
                Statement::Set(ast::Set::SingleAssignment {
                    variable, values, ..
                }) => {
                    let v = values.first().map(expr_text).unwrap_or_default();
                    options.insert(variable.to_string(), v);
                }
                Statement::Query(_) if query.is_none() => query = Some(st),
                Statement::Query(_) => {
                    return Err(Box::new(BrokerResponse::error(
                        ErrorKind::SqlParsing,
                        "only one query per request is supported",
                    )))
                }
                other => {
                    return Err(Box::new(BrokerResponse::error(
                        ErrorKind::SqlParsing,
                        &format!("unsupported statement, expected SELECT: {other}"),
                    )))
                }
            }
        }
        let mut statement = query.ok_or_else(|| {
            Box::new(BrokerResponse::error(
                ErrorKind::SqlParsing,
                "no query in the request",
            ))
        })?;

        // Resolve table names: `t`, `t_REALTIME`, any case.
        let mut tables: Vec<String> = Vec::new();
        let mut missing: Option<String> = None;
        let _ = ast::visit_relations_mut(&mut statement, |name: &mut ObjectName| {
            let written = name.to_string().trim_matches('"').to_string();
            let last = name
                .0
                .last()
                .and_then(|p| p.as_ident())
                .map(|i| i.value.clone())
                .unwrap_or(written);
            let (raw, _) = split_table_name(&last);
            let found = known
                .iter()
                .find(|k| k.as_str() == raw)
                .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(raw)));
            match found {
                Some(k) => {
                    if !tables.contains(k) {
                        tables.push(k.clone());
                    }
                    *name = ObjectName(vec![ObjectNamePart::Identifier(Ident::with_quote('"', k))]);
                }
                None => missing = Some(raw.to_string()),
            }
            ControlFlow::<()>::Continue(())
        });
        if let Some(t) = missing {
            let mut r = BrokerResponse::error(ErrorKind::TableDoesNotExist, "");
            r.tables_queried = vec![t];
            return Err(Box::new(r));
        }
        if let Some(allowed) = &req.allowed_tables {
            if let Some(t) = tables.iter().find(|t| !allowed.contains(t.as_str())) {
                let mut r = BrokerResponse::error(
                    ErrorKind::AccessDenied,
                    &format!("Permission denied: the caller may not read table '{t}'"),
                );
                r.tables_queried = vec![t.clone()];
                return Err(Box::new(r));
            }
        }
        // Function names are case-insensitive in Pinot; identifiers are case-sensitive.
        // `CAST(x AS TIMESTAMP)` reads numbers as epoch milliseconds in Pinot (Superset's
        // time grains rely on it); DataFusion would read seconds.
        let _ = ast::visit_expressions_mut(&mut statement, |e: &mut SqlExpr| {
            if let SqlExpr::Cast {
                expr,
                data_type: ast::DataType::Timestamp(_, _),
                ..
            } = e
            {
                let text = format!("to_timestamp_millis({expr})");
                if let Ok(mut p) = Parser::new(&GenericDialect {}).try_with_sql(&text) {
                    if let Ok(new) = p.parse_expr() {
                        *e = new;
                    }
                }
            }
            if let SqlExpr::Function(f) = e {
                for part in f.name.0.iter_mut() {
                    if let ObjectNamePart::Identifier(id) = part {
                        if id.quote_style.is_none() {
                            id.value = id.value.to_ascii_lowercase();
                        }
                    }
                }
            }
            ControlFlow::<()>::Continue(())
        });
        if let Statement::Query(q) = &mut statement {
            if q.limit_clause.is_none() && q.fetch.is_none() {
                q.limit_clause = Some(LimitClause::LimitOffset {
                    limit: Some(SqlExpr::value(SqlValue::Number(
                        DEFAULT_LIMIT.to_string(),
                        false,
                    ))),
                    offset: None,
                    limit_by: vec![],
                });
            }
        }
        Ok(Prepared {
            statement,
            tables,
            options,
        })
    }
}

fn expr_text(e: &SqlExpr) -> String {
    match e {
        SqlExpr::Value(v) => match &v.value {
            SqlValue::SingleQuotedString(s) | SqlValue::DoubleQuotedString(s) => s.clone(),
            other => other.to_string(),
        },
        SqlExpr::Identifier(i) => i.value.clone(),
        other => other.to_string(),
    }
}

/// Splits a trailing Pinot `OPTION(k=v, ...)` clause off the SQL.
fn strip_option_clause(sql: &str) -> (String, BTreeMap<String, String>) {
    let trimmed = sql.trim_end().trim_end_matches(';').trim_end();
    let lower = trimmed.to_ascii_lowercase();
    if trimmed.ends_with(')') {
        if let Some(pos) = lower.rfind("option(").or_else(|| lower.rfind("option (")) {
            let before = &trimmed[..pos];
            if before.ends_with(char::is_whitespace) {
                let inner = &trimmed[pos..];
                let inner = &inner[inner.find('(').map_or(0, |i| i + 1)..inner.len() - 1];
                let opts = inner
                    .split(',')
                    .filter_map(|kv| {
                        let (k, v) = kv.split_once('=')?;
                        Some((
                            k.trim().to_string(),
                            v.trim().trim_matches('\'').trim_matches('"').to_string(),
                        ))
                    })
                    .collect();
                return (before.to_string(), opts);
            }
        }
    }
    (sql.to_string(), BTreeMap::new())
}
