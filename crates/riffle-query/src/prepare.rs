//! A request's SQL made ready to plan: Pinot's `OPTION(...)` and `SET` read, the statement
//! checked against the shape limits, table names resolved (any case, with or without the
//! type suffix) and allowed for the caller, column names resolved in any case (Pinot's
//! default), function names lowercased, Pinot's default `LIMIT 10` added.

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

/// The `enableNullHandling` option: SQL NULL semantics over the nulls a table records.
/// Off (the default), a null reads as the column's default null value, as Pinot answers.
pub(crate) fn null_handling(options: &BTreeMap<String, String>) -> bool {
    options
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("enableNullHandling"))
        .is_some_and(|(_, v)| {
            v.trim()
                .trim_matches(|c| c == '\'' || c == '"')
                .eq_ignore_ascii_case("true")
        })
}

/// A column as the preparation sees it: its name and whether it is multi-value.
#[derive(Clone, Debug)]
pub(crate) struct KnownColumn {
    pub(crate) name: String,
    pub(crate) multi_value: bool,
    pub(crate) timestamp: bool,
}

pub(crate) struct Prepared {
    pub(crate) statement: Statement,
    pub(crate) tables: Vec<String>,
    pub(crate) options: BTreeMap<String, String>,
    /// `EXPLAIN PLAN FOR`: answer the plan, not the rows.
    pub(crate) explain: bool,
}

/// Parses a request, checks its shape against `limits` and resolves its tables among `known`
/// (each table with its column names).
pub(crate) fn prepare(
    catalog: &BTreeMap<String, Vec<KnownColumn>>,
    limits: &QueryLimits,
    aggregations: &AggregationRegistry,
    req: &QueryRequest,
) -> Result<Prepared, Box<BrokerResponse>> {
    {
        let (sql, option_clause) = strip_option_clause(&req.sql);
        let (sql, explain) = strip_explain(&sql);
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
        let known: Vec<&String> = catalog.keys().collect();
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
                .or_else(|| known.iter().find(|k| k.eq_ignore_ascii_case(raw)))
                .copied();
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
        let known_columns: Vec<&KnownColumn> = tables
            .iter()
            .filter_map(|t| catalog.get(t))
            .flatten()
            .collect();
        let columns: Vec<&String> = known_columns.iter().map(|c| &c.name).collect();
        theta_sketch_filters(&mut statement)
            .map_err(|m| Box::new(BrokerResponse::error(ErrorKind::SqlParsing, &m)))?;
        resolve_columns(&mut statement, &columns);
        apply_aliases_in_where(&mut statement, &columns);
        let multi_value: BTreeSet<String> = known_columns
            .iter()
            .filter(|c| c.multi_value)
            .map(|c| c.name.clone())
            .collect();
        multivalue::bind_multi_value_predicates(&mut statement, &multi_value);
        let timestamps: BTreeSet<String> = known_columns
            .iter()
            .filter(|c| c.timestamp && !c.multi_value)
            .map(|c| c.name.clone())
            .collect();
        pinot_types::timestamps_as_millis_in_arithmetic(&mut statement, &timestamps);
        // Function names are case-insensitive in Pinot.
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
            // Pinot's virtual columns are written bare (`$segmentName`), which SQL reads as
            // a placeholder.
            if let SqlExpr::Value(v) = e {
                if let SqlValue::Placeholder(p) = &v.value {
                    if let Some(name) = virtual_columns::canonical(p) {
                        *e = SqlExpr::Identifier(Ident::with_quote('"', name));
                    }
                }
            }
            // Pinot's SUBSTR (0-based, an end index) is a function of its own; SQL's
            // SUBSTRING keeps SQL's meaning.
            if let SqlExpr::Substring {
                expr,
                substring_from,
                substring_for,
                shorthand: true,
                ..
            } = e
            {
                let mut text = format!("\"substr\"({expr}");
                for a in [substring_from, substring_for].into_iter().flatten() {
                    text.push_str(&format!(", {a}"));
                }
                text.push(')');
                if let Ok(mut p) = Parser::new(&GenericDialect {}).try_with_sql(&text) {
                    if let Ok(new) = p.parse_expr() {
                        *e = new;
                    }
                }
            }
            if let SqlExpr::Cast { data_type, .. } = e {
                if let Some(t) = pinot_cast_type(data_type) {
                    *data_type = t;
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
                pinot_aggregation_names(f, aggregations);
            }
            ControlFlow::<()>::Continue(())
        });
        multivalue::unnest_multi_value_groups(&mut statement, &multi_value);
        name_duplicate_selections(&mut statement);
        exclude_virtual_columns_from_wildcards(&mut statement);
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
            explain,
        })
    }
}

/// Pinot's spellings of its aggregation names: underscores ignored (`DISTINCT_COUNT_MV`)
/// and the percentile in the name (`PERCENTILE95(x)`, `PERCENTILE90MV(x)`) as a second
/// argument.
fn pinot_aggregation_names(f: &mut ast::Function, aggregations: &AggregationRegistry) {
    let [ObjectNamePart::Identifier(id)] = f.name.0.as_mut_slice() else {
        return;
    };
    if id.quote_style.is_some() {
        return;
    }
    let name = id.value.replace('_', "");
    if let Some(rest) = name.strip_prefix("percentile") {
        // PERCENTILE<kind><N>[MV]: PERCENTILE95, PERCENTILETDIGEST99, PERCENTILEEST50MV.
        let kind_len = rest
            .find(|c: char| c.is_ascii_digit())
            .unwrap_or(rest.len());
        let (kind, after) = rest.split_at(kind_len);
        let digits_len = after
            .find(|c: char| !c.is_ascii_digit())
            .unwrap_or(after.len());
        let (digits, tail) = after.split_at(digits_len);
        let base = format!("percentile{kind}{tail}");
        if !digits.is_empty() && aggregations.get(&base).is_some() {
            if let ast::FunctionArguments::List(list) = &mut f.args {
                if list.args.len() == 1 {
                    list.args
                        .push(ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(
                            SqlExpr::value(SqlValue::Number(digits.to_string(), false)),
                        )));
                    id.value = base;
                }
            }
            return;
        }
    }
    if name != id.value && aggregations.get(&name).is_some() {
        id.value = name;
        return;
    }
    if let Some(df) = datafusion_spelling(&name.to_ascii_lowercase()) {
        id.value = df.to_string();
    }
}

/// DataFusion's name of a Pinot aggregation that DataFusion has under another spelling
/// (Pinot writes them without underscores; the results are DOUBLE in both).
fn datafusion_spelling(pinot: &str) -> Option<&'static str> {
    Some(match pinot {
        "varpop" => "var_pop",
        "varsamp" => "var_samp",
        "stddevpop" => "stddev_pop",
        "stddevsamp" => "stddev_samp",
        "covarpop" => "covar_pop",
        "covarsamp" => "covar_samp",
        "booland" => "bool_and",
        "boolor" => "bool_or",
        _ => return None,
    })
}

/// `DISTINCTCOUNTTHETASKETCH(col, params, 'filter', ..., 'post-aggregation')`: Pinot writes
/// each filter as a predicate in a string; it becomes the predicate itself (an argument of
/// BOOLEAN type), so that its columns resolve as anywhere else. The last argument stays
/// text (the set expression over `$0`, `$1`, ...).
fn theta_sketch_filters(statement: &mut Statement) -> Result<(), String> {
    let mut error = None;
    let _ = ast::visit_expressions_mut(statement, |e: &mut SqlExpr| {
        let SqlExpr::Function(f) = e else {
            return ControlFlow::<()>::Continue(());
        };
        let name = f
            .name
            .to_string()
            .replace(['_', '"'], "")
            .to_ascii_lowercase();
        if name != "distinctcountthetasketch" {
            return ControlFlow::Continue(());
        }
        let ast::FunctionArguments::List(list) = &mut f.args else {
            return ControlFlow::Continue(());
        };
        let n = list.args.len();
        if n < 4 {
            return ControlFlow::Continue(());
        }
        for arg in list.args.iter_mut().take(n - 1).skip(2) {
            let ast::FunctionArg::Unnamed(ast::FunctionArgExpr::Expr(x)) = arg else {
                continue;
            };
            let SqlExpr::Value(v) = x else {
                continue;
            };
            let SqlValue::SingleQuotedString(text) = &v.value else {
                continue;
            };
            let parsed = Parser::new(&GenericDialect {})
                .try_with_sql(text)
                .and_then(|mut p| p.parse_expr());
            match parsed {
                Ok(predicate) => *x = SqlExpr::Nested(Box::new(predicate)),
                Err(err) => {
                    error = Some(format!(
                        "distinctcountthetasketch: the filter '{text}' is not a predicate: {err}"
                    ));
                    return ControlFlow::Break(());
                }
            }
        }
        ControlFlow::Continue(())
    });
    match error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Pinot resolves column names in any case: an identifier that names no column as written,
/// is not an alias of the select list, and names exactly one column in another case is
/// rewritten to that column, quoted (so that the planner takes it as written).
fn resolve_columns(statement: &mut Statement, columns: &[&String]) {
    let exact: BTreeSet<&str> = columns.iter().map(|c| c.as_str()).collect();
    let mut by_lower: BTreeMap<String, Option<&String>> = BTreeMap::new();
    for c in columns {
        by_lower
            .entry(c.to_lowercase())
            .and_modify(|v| {
                if v.is_some_and(|o| o != *c) {
                    *v = None; // two columns differ only in case: leave it to the planner
                }
            })
            .or_insert(Some(*c));
    }
    let mut aliases: BTreeSet<String> = BTreeSet::new();
    let _ = ast::Visit::visit(&*statement, &mut Aliases(&mut aliases));
    let fix = |id: &mut Ident| {
        if exact.contains(id.value.as_str()) || aliases.contains(&id.value) {
            return;
        }
        if let Some(Some(c)) = by_lower.get(&id.value.to_lowercase()) {
            id.value = (*c).clone();
            id.quote_style = Some('"');
        }
    };
    let _ = ast::visit_expressions_mut(statement, |e: &mut SqlExpr| {
        match e {
            SqlExpr::Identifier(id) => fix(id),
            SqlExpr::CompoundIdentifier(parts) => {
                if let Some(last) = parts.last_mut() {
                    fix(last);
                }
            }
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
}

/// The SQL type for Pinot's type names in `CAST(x AS ...)` that DataFusion does not know:
/// `LONG`, `BYTES`, `BIG_DECIMAL`, `STRING`, `JSON` (JSON text is a string).
fn pinot_cast_type(t: &ast::DataType) -> Option<ast::DataType> {
    use ast::DataType as D;
    match t {
        D::Custom(name, mods) if mods.is_empty() => {
            match name
                .to_string()
                .trim_matches('"')
                .to_ascii_uppercase()
                .as_str()
            {
                "LONG" => Some(D::BigInt(None)),
                "BYTES" => Some(D::Bytea),
                "BIG_DECIMAL" => Some(D::Decimal(ast::ExactNumberInfo::PrecisionAndScale(38, 10))),
                _ => None,
            }
        }
        D::Bytes(_) => Some(D::Bytea),
        D::String(_) | D::JSON => Some(D::Varchar(None)),
        _ => None,
    }
}

/// `SELECT *` (and `t.*`) leaves Pinot's virtual columns out, as Pinot does: they are
/// added to the wildcard's `EXCLUDE` list.
fn exclude_virtual_columns_from_wildcards(statement: &mut Statement) {
    struct Exclude;
    impl ast::VisitorMut for Exclude {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
            if let ast::SetExpr::Select(s) = q.body.as_mut() {
                // Only over tables: a derived table has no virtual columns left to exclude.
                let is_table = |f: &ast::TableFactor| matches!(f, ast::TableFactor::Table { .. });
                let over_tables = !s.from.is_empty()
                    && s.from.iter().all(|t| {
                        is_table(&t.relation) && t.joins.iter().all(|j| is_table(&j.relation))
                    });
                if !over_tables {
                    return ControlFlow::Continue(());
                }
                for item in s.projection.iter_mut() {
                    let opts = match item {
                        ast::SelectItem::Wildcard(o) | ast::SelectItem::QualifiedWildcard(_, o) => {
                            o
                        }
                        _ => continue,
                    };
                    let mut names: Vec<ObjectName> = match opts.opt_exclude.take() {
                        Some(ast::ExcludeSelectItem::Single(n)) => vec![n],
                        Some(ast::ExcludeSelectItem::Multiple(v)) => v,
                        None => Vec::new(),
                    };
                    for v in virtual_columns::NAMES {
                        names.push(ObjectName(vec![ObjectNamePart::Identifier(
                            Ident::with_quote('"', v),
                        )]));
                    }
                    opts.opt_exclude = Some(ast::ExcludeSelectItem::Multiple(names));
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = ast::VisitMut::visit(statement, &mut Exclude);
}

/// Marks the name of a select expression repeated in the same select list (`COUNT(*),
/// COUNT(*)`): Pinot answers both, DataFusion wants distinct names. The repeat gets an
/// alias of its own text plus this marker and a number, which the response strips again.
pub(crate) const DUPLICATE_MARK: &str = " \u{1}dup";

/// Aliases each repeated unnamed select expression (see [`DUPLICATE_MARK`]).
fn name_duplicate_selections(statement: &mut Statement) {
    struct Dups;
    impl ast::VisitorMut for Dups {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
            if let ast::SetExpr::Select(s) = q.body.as_mut() {
                let mut seen: BTreeMap<String, usize> = BTreeMap::new();
                for item in s.projection.iter_mut() {
                    if let ast::SelectItem::UnnamedExpr(e) = item {
                        let text = e.to_string();
                        let n = seen.entry(text.clone()).or_insert(0);
                        *n += 1;
                        if *n > 1 {
                            let alias =
                                Ident::with_quote('"', format!("{text}{DUPLICATE_MARK}{n}"));
                            *item = ast::SelectItem::ExprWithAlias {
                                expr: e.clone(),
                                alias,
                            };
                        }
                    }
                }
            }
            ControlFlow::Continue(())
        }
    }
    let _ = ast::VisitMut::visit(statement, &mut Dups);
}

/// Pinot lets `WHERE` name a select alias (`SELECT a + b AS s ... WHERE s > 3`): an
/// identifier in a `WHERE` clause that names no column but an alias of the same select
/// list (in any case) is replaced by the aliased expression.
fn apply_aliases_in_where(statement: &mut Statement, columns: &[&String]) {
    struct Apply<'a>(BTreeSet<&'a str>);
    impl ast::VisitorMut for Apply<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, q: &mut ast::Query) -> ControlFlow<()> {
            let ast::SetExpr::Select(s) = q.body.as_mut() else {
                return ControlFlow::Continue(());
            };
            let aliases: Vec<(String, SqlExpr)> = s
                .projection
                .iter()
                .filter_map(|item| match item {
                    ast::SelectItem::ExprWithAlias { expr, alias } => {
                        Some((alias.value.clone(), expr.clone()))
                    }
                    _ => None,
                })
                .collect();
            let Some(selection) = s.selection.as_mut() else {
                return ControlFlow::Continue(());
            };
            if aliases.is_empty() {
                return ControlFlow::Continue(());
            }
            let columns = &self.0;
            let _ = ast::visit_expressions_mut(selection, |e: &mut SqlExpr| {
                if let SqlExpr::Identifier(id) = e {
                    if !columns.contains(id.value.as_str()) {
                        let found = aliases.iter().find(|(a, _)| *a == id.value).or_else(|| {
                            aliases
                                .iter()
                                .find(|(a, _)| a.eq_ignore_ascii_case(&id.value))
                        });
                        if let Some((_, expr)) = found {
                            *e = SqlExpr::Nested(Box::new(expr.clone()));
                        }
                    }
                }
                ControlFlow::<()>::Continue(())
            });
            ControlFlow::Continue(())
        }
    }
    let cols: BTreeSet<&str> = columns.iter().map(|c| c.as_str()).collect();
    let _ = ast::VisitMut::visit(statement, &mut Apply(cols));
}

/// Collects the aliases select lists give (`expr AS alias`), at any depth.
struct Aliases<'a>(&'a mut BTreeSet<String>);

impl ast::Visitor for Aliases<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, q: &ast::Query) -> ControlFlow<()> {
        if let ast::SetExpr::Select(s) = q.body.as_ref() {
            for item in &s.projection {
                if let ast::SelectItem::ExprWithAlias { alias, .. } = item {
                    self.0.insert(alias.value.clone());
                }
            }
        }
        ControlFlow::Continue(())
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

/// Splits a leading `EXPLAIN PLAN FOR` (Pinot's form) off the SQL.
fn strip_explain(sql: &str) -> (String, bool) {
    let words: Vec<&str> = sql.trim_start().splitn(4, char::is_whitespace).collect();
    match words.as_slice() {
        [a, b, c, rest]
            if a.eq_ignore_ascii_case("explain")
                && b.eq_ignore_ascii_case("plan")
                && c.eq_ignore_ascii_case("for") =>
        {
            (rest.to_string(), true)
        }
        _ => (sql.to_string(), false),
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
