//! Planning and running a prepared query under its limits, and Pinot's statistics from
//! what the plan actually scanned.

use super::*;

/// What a query runs with.
pub(crate) struct RunContext {
    pub(crate) segments: Arc<SegmentRegistry>,
    pub(crate) limits: QueryLimits,
    pub(crate) server_pool: Arc<dyn MemoryPool>,
    /// The engine's planning state ([`session_template`]), cloned per query.
    pub(crate) template: Arc<SessionState>,
}

/// The planning state every query starts from: DataFusion's functions and rules with
/// Pinot's readings, Pinot's functions and the plugins' aggregations, and the guarded
/// string functions. Built once per engine: building it takes longer than a small query.
pub(crate) fn session_template(
    target_partitions: usize,
    limits: &QueryLimits,
    aggregations: &AggregationRegistry,
) -> SessionState {
    let mut config = SessionConfig::new()
        .with_target_partitions(target_partitions)
        .with_round_robin_repartition(false)
        .with_information_schema(false);
    config.options_mut().sql_parser.enable_ident_normalization = false;
    // Pinot's own readings come before DataFusion's type coercion.
    let mut rules: Vec<Arc<dyn AnalyzerRule + Send + Sync>> = vec![
        Arc::new(pinot_literals::TimestampMillisLiterals),
        Arc::new(pinot_types::PinotNumericTypes),
    ];
    rules.extend(Analyzer::new().rules);
    let state = SessionStateBuilder::new()
        .with_config(config)
        .with_default_features()
        .with_analyzer_rules(rules)
        .with_physical_optimizer_rule(Arc::new(top_n::TopNScan))
        .with_physical_optimizer_rule(Arc::new(distinct_scan::DistinctScan))
        .with_physical_optimizer_rule(Arc::new(cancel::CancellationPoints))
        .build();
    let ctx = SessionContext::new_with_state(state);
    // Pinot's meaning for the names DataFusion also uses (`round`), then the limits.
    riffle_functions::register(&ctx, aggregations);
    guard::register(&ctx, limits);
    ctx.state()
}

/// The column name of `SELECT COUNT(*) [AS alias] FROM t [LIMIT n > 0]` and nothing else
/// (the statement as printed after preparation, which added Pinot's default limit).
fn count_star_column(sql: &str, table: &str) -> Option<String> {
    const SELECT: &str = "SELECT COUNT(*) ";
    let rest = sql
        .get(SELECT.len()..)
        .filter(|_| sql[..SELECT.len()].eq_ignore_ascii_case(SELECT))?;
    let (name, rest) = match rest.strip_prefix("AS ") {
        Some(r) => {
            let (alias, r) = r.split_once(' ')?;
            let plain = alias.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !plain || alias.is_empty() {
                return None;
            }
            (alias.to_string(), r)
        }
        None => ("count(*)".to_string(), rest),
    };
    let rest = rest.strip_prefix("FROM ")?;
    let (t, tail) = rest.split_once(' ').unwrap_or((rest, ""));
    if t.trim_matches('"') != table {
        return None;
    }
    match tail.strip_prefix("LIMIT ") {
        Some(n) => (n.parse::<u64>().ok()? > 0).then_some(name),
        None => tail.is_empty().then_some(name),
    }
}

/// `SELECT COUNT(*) FROM t` answered from the segments' row counts, without planning
/// (Pinot answers it from segment metadata too); `None` for any other query.
fn count_from_metadata(segments: &SegmentRegistry, p: &Prepared) -> Option<BrokerResponse> {
    let [table] = p.tables.as_slice() else {
        return None;
    };
    let name = count_star_column(&p.statement.to_string(), table)?;
    let data = segments.table(table)?;
    // A hybrid table's halves overlap in time: only a scan applies the boundary.
    if data.time_boundary().is_some() {
        return None;
    }
    let (rows, record) =
        SegmentTable::new(data.clone(), Arc::new(Mutex::new(Vec::new()))).count_all();
    let mut resp = BrokerResponse {
        has_result: true,
        column_names: vec![name],
        column_types: vec!["LONG".to_string()],
        rows: vec![vec![serde_json::Value::from(rows)]],
        ..Default::default()
    };
    let empty: Arc<dyn ExecutionPlan> = Arc::new(datafusion::physical_plan::empty::EmptyExec::new(
        Arc::new(datafusion::arrow::datatypes::Schema::empty()),
    ));
    resp.stats = stats_of(&empty, &[record]);
    unavailable_segments(segments, &p.tables, &mut resp);
    Some(resp)
}

/// Rows of segments this server could not load are missing: say so, as Pinot's broker
/// does for unavailable segments (the result is partial).
fn unavailable_segments(segments: &SegmentRegistry, tables: &[String], resp: &mut BrokerResponse) {
    for t in tables {
        let missing = segments
            .table(t)
            .map(|d| d.unavailable())
            .unwrap_or_default();
        if !missing.is_empty() {
            let names: Vec<&str> = missing.keys().map(String::as_str).collect();
            let e = BrokerResponse::error(
                ErrorKind::SegmentsUnavailable,
                &format!(
                    "{} segments of table {t} unavailable: [{}]",
                    names.len(),
                    names.join(", ")
                ),
            );
            resp.exceptions.extend(e.exceptions);
        }
    }
}

/// A catalog of its own for one query: the default catalog and schema, empty.
fn query_catalog(state: &SessionState) -> Arc<dyn CatalogProviderList> {
    let names = &state.config().options().catalog;
    let schema = Arc::new(MemorySchemaProvider::new());
    let catalog = Arc::new(MemoryCatalogProvider::new());
    // A memory catalog takes any schema.
    let _ = catalog.register_schema(&names.default_schema, schema);
    let list = Arc::new(MemoryCatalogProviderList::new());
    list.register_catalog(names.default_catalog.clone(), catalog);
    list
}

/// Plans and runs a prepared query over `ctx.segments`, within `ctx.limits`.
pub(crate) async fn run(ctx: RunContext, p: Prepared) -> BrokerResponse {
    let RunContext {
        segments,
        limits,
        server_pool,
        template,
    } = ctx;
    let t0 = std::time::Instant::now();
    let pool = QueryPool::new(server_pool, limits.max_query_memory_bytes);
    let runtime = match RuntimeEnvBuilder::new()
        .with_memory_pool(Arc::new(pool))
        .build_arc()
    {
        Ok(r) => r,
        Err(e) => return BrokerResponse::error(ErrorKind::Internal, &root_message(&e)),
    };
    if !p.explain {
        if let Some(r) = count_from_metadata(&segments, &p) {
            return r;
        }
    }
    // The template's functions and rules, with this query's own tables.
    let mut state = SessionState::clone(&template);
    state.register_catalog_list(query_catalog(&state));
    let ctx = SessionContext::new_with_state(state);
    let record: Arc<Mutex<Vec<ScanRecord>>> = Arc::new(Mutex::new(Vec::new()));
    let nulls = prepare::null_handling(&p.options);
    for t in &p.tables {
        let Some(data) = segments.table(t) else {
            return BrokerResponse::error(ErrorKind::TableDoesNotExist, "");
        };
        // A bare reference: the name as it is, never parsed (which would lowercase it).
        if let Err(e) = ctx.register_table(
            datafusion::common::TableReference::bare(t.as_str()),
            Arc::new(SegmentTable::new(data, record.clone()).with_null_handling(nulls)),
        ) {
            return BrokerResponse::error(ErrorKind::Internal, &e.to_string());
        }
    }
    let state = ctx.state();
    let plan = match state
        .statement_to_plan(DfStatement::Statement(Box::new(p.statement)))
        .await
    {
        Ok(plan) => plan,
        Err(e) => return plan_error(e),
    };
    let t_plan = t0.elapsed();
    let df = match ctx.execute_logical_plan(plan).await {
        Ok(df) => df,
        Err(e) => return plan_error(e),
    };
    let physical = match df.create_physical_plan().await {
        Ok(p) => p,
        Err(e) => return plan_error(e),
    };
    let t_physical = t0.elapsed();
    if p.explain {
        return explain(&physical);
    }
    let max_bytes = response_byte_limit(&p.options, &limits);
    // This query's memory pool: execution is where memory is taken.
    let task_ctx = {
        let state = ctx.state_ref();
        let state = state.read();
        Arc::new(TaskContext::from(&*state).with_runtime(runtime))
    };
    let batches = match limits::collect_within(
        physical.clone(),
        task_ctx,
        limits.max_result_rows,
        max_bytes,
    )
    .await
    {
        Ok(b) => b,
        Err(e) => return execution_error(e),
    };
    tracing::debug!(
        setup_and_logical_us = t_plan.as_micros() as u64,
        physical_us = (t_physical - t_plan).as_micros() as u64,
        execute_us = (t0.elapsed() - t_physical).as_micros() as u64,
        "query phases"
    );
    let schema = physical.schema();
    let mut resp = BrokerResponse {
        has_result: true,
        ..Default::default()
    };
    resp.column_names = schema
        .fields()
        .iter()
        .map(|f| pinot_column_name(f.name(), &p.tables))
        .collect();
    resp.column_types = schema
        .fields()
        .iter()
        .map(|f| response::pinot_type(f))
        .collect();
    resp.rows = response::rows_of(&batches);
    resp.stats = stats_of(&physical, &record.lock());
    unavailable_segments(&segments, &p.tables, &mut resp);
    resp
}

/// `EXPLAIN PLAN FOR`: the physical plan as Pinot's explain table (`Operator`,
/// `Operator_Id`, `Parent_Id`), one row per operator, depth first from the root (whose
/// parent is -1). The operators are DataFusion's, not Pinot's.
fn explain(plan: &Arc<dyn ExecutionPlan>) -> BrokerResponse {
    fn add(plan: &Arc<dyn ExecutionPlan>, parent: i64, rows: &mut Vec<Vec<serde_json::Value>>) {
        let id = rows.len() as i64;
        let text = datafusion::physical_plan::displayable(plan.as_ref())
            .one_line()
            .to_string();
        rows.push(vec![
            serde_json::Value::from(text.trim_end()),
            serde_json::Value::from(id),
            serde_json::Value::from(parent),
        ]);
        for child in plan.children() {
            add(child, id, rows);
        }
    }
    let mut resp = BrokerResponse {
        has_result: true,
        ..Default::default()
    };
    resp.column_names = vec!["Operator".into(), "Operator_Id".into(), "Parent_Id".into()];
    resp.column_types = vec!["STRING".into(), "INT".into(), "INT".into()];
    add(plan, -1, &mut resp.rows);
    resp
}

/// DataFusion qualifies columns in expression names (`avg(t.score)`); Pinot does not. A
/// repeated select expression's name loses the marker that kept it distinct.
fn pinot_column_name(name: &str, tables: &[String]) -> String {
    let name = name
        .find(prepare::DUPLICATE_MARK)
        .map_or(name, |at| &name[..at]);
    let mut out = name.to_string();
    for t in tables {
        out = out.replace(&format!("{t}."), "");
        out = out.replace(&format!("\"{t}\"."), "");
    }
    out
}

fn root_message(e: &DataFusionError) -> String {
    let mut msg = e.find_root().to_string();
    for prefix in [
        "Error during planning: ",
        "Schema error: ",
        "Execution error: ",
        "Arrow error: ",
    ] {
        if let Some(rest) = msg.strip_prefix(prefix) {
            msg = rest.to_string();
        }
    }
    msg
}

fn plan_error(e: DataFusionError) -> BrokerResponse {
    let root = e.find_root();
    match root {
        DataFusionError::SchemaError(se, _) => {
            let text = se.to_string();
            if let datafusion::common::SchemaError::FieldNotFound { field, .. } = se.as_ref() {
                return BrokerResponse::error(
                    ErrorKind::UnknownColumn,
                    &format!("Unknown columnName '{}' found in the query", field.name),
                );
            }
            BrokerResponse::error(ErrorKind::QueryValidation, &text)
        }
        DataFusionError::SQL(pe, _) => {
            BrokerResponse::error(ErrorKind::SqlParsing, &pe.to_string())
        }
        DataFusionError::Plan(_) | DataFusionError::NotImplemented(_) => {
            BrokerResponse::error(ErrorKind::SqlParsing, &root_message(&e))
        }
        _ => BrokerResponse::error(ErrorKind::QueryExecution, &root_message(&e)),
    }
}

fn output_rows_by_partition(plan: &dyn ExecutionPlan) -> BTreeMap<usize, u64> {
    let mut out = BTreeMap::new();
    if let Some(m) = plan.metrics() {
        for metric in m.iter() {
            if let MetricValue::OutputRows(c) = metric.value() {
                *out.entry(metric.partition().unwrap_or(0)).or_insert(0) += c.value() as u64;
            }
        }
    }
    out
}

/// Reads the statistics from the executed plan: for each scan of a table, the filter above
/// it (if any) tells how many docs matched per segment.
fn stats_of(plan: &Arc<dyn ExecutionPlan>, records: &[ScanRecord]) -> QueryStats {
    let mut s = QueryStats::default();
    for r in records {
        s.total_docs += r.total_docs as u64;
        s.num_segments_queried += r.segments_queried as u64;
        s.num_segments_processed += r.segments_processed as u64;
        s.num_consuming_segments_queried += r.consuming_queried as u64;
        s.num_consuming_segments_processed += r.consuming_processed as u64;
        s.num_segments_pruned_by_server += (r.segments_queried - r.segments_processed) as u64;
        if let Some(f) = r.min_consuming_freshness_ms {
            s.min_consuming_freshness_time_ms = if s.min_consuming_freshness_time_ms == 0 {
                f
            } else {
                s.min_consuming_freshness_time_ms.min(f)
            };
        }
    }
    let mut seen = vec![false; records.len()];
    walk(plan.as_ref(), None, &mut |node, parent| {
        let Some(scan) = node.downcast_ref::<SegmentScanExec>() else {
            return;
        };
        let rec = records.get(scan.record_index);
        if let Some(s) = seen.get_mut(scan.record_index) {
            *s = true;
        }
        let scanned = output_rows_by_partition(node);
        let width = node.schema().fields().len() as u64;
        let consuming = |p: usize| {
            rec.and_then(|r| r.partition_is_consuming.get(p))
                .copied()
                .unwrap_or(false)
        };
        let filter = parent.and_then(|p| p.downcast_ref::<FilterExec>());
        // What the scan could not answer from indexes (consuming segments, columns without
        // an index) was read value by value, by the scan or by a filter above it.
        match (rec.filter(|r| r.filtered), filter) {
            (Some(r), _) => s.num_entries_scanned_in_filter += r.entries_scanned_in_filter,
            (None, Some(f)) => {
                let filter_cols: BTreeSet<usize> =
                    datafusion::physical_expr::utils::collect_columns(f.predicate())
                        .iter()
                        .map(|c| c.index())
                        .collect();
                let read = rec.map_or(0, |r| r.processed_docs as u64);
                s.num_entries_scanned_in_filter += read * filter_cols.len() as u64;
            }
            (None, None) => {}
        }
        let (matched, post_width) = match filter {
            Some(f) => (
                output_rows_by_partition(f),
                f.schema().fields().len() as u64,
            ),
            None => (scanned, width),
        };
        let docs: u64 = matched.values().sum();
        s.num_docs_scanned += docs;
        s.num_entries_scanned_post_filter += docs * post_width;
        for (p, n) in &matched {
            if *n > 0 {
                s.num_segments_matched += 1;
                if consuming(*p) {
                    s.num_consuming_segments_matched += 1;
                }
            }
        }
    });
    // A scan the optimiser answered from segment metadata (e.g. COUNT(*) without a filter)
    // matched every doc of every segment it covered.
    for (r, seen) in records.iter().zip(seen) {
        if !seen {
            s.num_docs_scanned += r.processed_docs as u64;
            s.num_segments_matched += r.segments_processed as u64;
            s.num_consuming_segments_matched += r.consuming_processed as u64;
        }
    }
    s
}

fn walk<'a>(
    node: &'a dyn ExecutionPlan,
    parent: Option<&'a dyn ExecutionPlan>,
    f: &mut dyn FnMut(&'a dyn ExecutionPlan, Option<&'a dyn ExecutionPlan>),
) {
    f(node, parent);
    // Nodes that pass rows through unchanged (scheduling, batch sizes) are looked through,
    // so a scan's parent is the filter above it whatever the optimiser put in between.
    let through = matches!(
        node.name(),
        "CooperativeExec" | "CoalesceBatchesExec" | "SliceBatchesExec"
    );
    let next_parent = if through { parent } else { Some(node) };
    for c in node.children() {
        walk(c.as_ref(), next_parent, f);
    }
}

#[cfg(test)]
mod tests {
    use super::count_star_column;

    #[test]
    fn only_a_bare_count_of_one_table_is_answered_from_metadata() {
        let t = "events";
        assert_eq!(
            count_star_column("SELECT COUNT(*) FROM events LIMIT 10", t).as_deref(),
            Some("count(*)")
        );
        assert_eq!(
            count_star_column("select count(*) AS n FROM \"events\" LIMIT 1", t).as_deref(),
            Some("n")
        );
        for other in [
            "SELECT COUNT(*) FROM events LIMIT 0",
            "SELECT COUNT(*) FROM events WHERE x = 1 LIMIT 10",
            "SELECT COUNT(*) FROM events GROUP BY x LIMIT 10",
            "SELECT COUNT(*) FROM others LIMIT 10",
            "SELECT COUNT(*) FROM events AS e LIMIT 10",
            "SELECT COUNT(*) AS \"a b\" FROM events LIMIT 10",
            "SELECT COUNT(*), 1 FROM events LIMIT 10",
            "SELECT COUNT(*) FROM events LIMIT 10 OFFSET 5",
            "SELECT COUNT(x) FROM events LIMIT 10",
            "SELECT",
        ] {
            assert_eq!(count_star_column(other, t), None, "{other}");
        }
    }
}
