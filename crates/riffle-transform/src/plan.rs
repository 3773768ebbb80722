//! [`IngestPlan`]: a table's transforms and filter, compiled once and run on every decoded
//! block.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, BooleanArray, ListArray, RecordBatch};
use arrow::buffer::OffsetBuffer;
use arrow::compute::{cast_with_options, filter_record_batch, is_not_null, CastOptions};
use arrow::datatypes::{DataType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use datafusion::common::DFSchema;
use datafusion::execution::FunctionRegistry;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::{SessionConfig, SessionContext};
use parking_lot::Mutex;
use riffle_config::{Column, Schema, TableConfig};
use riffle_segment::{fill_nulls, ExtraValues, TableColumns};
use serde_json::Value;

use crate::expr::{self, Parsed};
use crate::rollup::Rollup;
use crate::{groovy, values, TransformError};

/// Server-wide options for ingestion expressions.
#[derive(Clone, Copy, Debug, Default)]
pub struct TransformOptions {
    /// Translate Groovy scripts of the safe subset ([`crate::groovy`]) instead of refusing
    /// every Groovy script (`riffle serve --ingestion-groovy-safe-subset`).
    pub groovy_safe_subset: bool,
}

/// One transform as configured.
#[derive(Clone, Debug)]
struct Transform {
    column: String,
    parsed: Parsed,
    /// The table column it writes, or `None` for an intermediate read by another transform.
    dest: Option<usize>,
}

/// What a step does with its result.
#[derive(Clone, Debug)]
enum Target {
    /// Converts it to table column `i`'s type; a value the message already had wins.
    Column(usize),
    /// Appends it as an intermediate column.
    New,
    /// Replaces the working column `j` (a source field of the same name) where it is null.
    Source(usize),
}

struct Step {
    column: String,
    input: SchemaRef,
    expr: Arc<dyn PhysicalExpr>,
    target: Target,
}

/// The transforms and filter compiled for one set of source-field types.
struct Compiled {
    steps: Vec<Step>,
    filter: Option<(SchemaRef, Arc<dyn PhysicalExpr>)>,
}

/// A compilation for one set of source-field types, or why it cannot run on them.
type CompiledRef = Arc<Result<Compiled, String>>;

/// The result of [`IngestPlan::apply`].
#[derive(Debug)]
pub struct Applied {
    /// The rows to store, with the table's columns.
    pub batch: RecordBatch,
    /// For each stored row, the input row it came from.
    pub kept: Vec<u32>,
    /// Input rows the filter dropped.
    pub filtered: usize,
    /// Input rows that failed (a function's error, a value that does not convert), each
    /// with what went wrong.
    pub errors: Vec<(u32, String)>,
}

/// A table's ingestion transforms and filter (`ingestionConfig.transformConfigs`,
/// `ingestionConfig.filterConfig`) ready to run on decoded blocks.
///
/// A decoder fills the [`IngestPlan::staging`] columns (the table's columns, each able to
/// say that the message lacked it) and keeps the [`IngestPlan::extras`] (source fields only
/// transforms read) as extra values; [`IngestPlan::apply`] turns that block into the
/// table's rows.
pub struct IngestPlan {
    table: Arc<TableColumns>,
    staging: Arc<TableColumns>,
    extras: Vec<String>,
    transforms: Vec<Transform>,
    filter: Option<Parsed>,
    defaults: Vec<ArrayRef>,
    ctx: SessionContext,
    compiled: Mutex<HashMap<Vec<DataType>, CompiledRef>>,
    /// The type each source field had in the last block where it had a value.
    last_types: Mutex<Vec<Option<DataType>>>,
    /// Ingestion-time rollup (`aggregationConfigs`).
    rollup: Option<Rollup>,
}

impl std::fmt::Debug for IngestPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IngestPlan")
            .field(
                "transforms",
                &self
                    .transforms
                    .iter()
                    .map(|t| (&t.column, &t.parsed.sql))
                    .collect::<Vec<_>>(),
            )
            .field("filter", &self.filter.as_ref().map(|f| &f.sql))
            .field("extras", &self.extras)
            .finish()
    }
}

const TRANSFORMS: &str = "$.ingestionConfig.transformConfigs";
const FILTER: &str = "$.ingestionConfig.filterConfig.filterFunction";

impl IngestPlan {
    /// The plan of a table, or `None` when it has no transforms and no filter. Refuses
    /// what cannot run: an expression that does not parse, an unknown function, a Groovy
    /// script (outside the safe subset when enabled), transforms that read each other in
    /// a cycle. Each error names the JSON path of the expression.
    pub fn new(
        config: &TableConfig,
        schema: &Schema,
        table: &Arc<TableColumns>,
        options: TransformOptions,
    ) -> Result<Option<IngestPlan>, TransformError> {
        let ic = config.document().ingestion_config.as_ref();
        let configs: Vec<Value> = ic
            .and_then(|i| i.transform_configs.clone())
            .unwrap_or_default();
        let filter_text = ic
            .and_then(|i| i.filter_config.as_ref())
            .and_then(|f| f.get("filterFunction"))
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .map(str::to_string);
        let aggregations: Vec<Value> = ic
            .and_then(|i| i.extra.get("aggregationConfigs"))
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        if configs.is_empty() && filter_text.is_none() && aggregations.is_empty() {
            return Ok(None);
        }
        let rollup = Rollup::new(&aggregations, schema, table)?;
        let ctx = session();
        let known = |n: &str| ctx.udf(n).is_ok();
        let text_column = |c: &str| {
            schema
                .columns()
                .ok()
                .and_then(|cols| cols.into_iter().find(|x| x.name == c))
                .is_some_and(|x| {
                    riffle_segment::Physical::of(x.data_type) == riffle_segment::Physical::Str
                })
        };
        let read = |path: String, text: &str| -> Result<Parsed, TransformError> {
            let sql_text = if expr::is_groovy(text) {
                if !options.groovy_safe_subset {
                    return Err(TransformError::new(
                        path,
                        format!(
                            "Groovy script '{text}' is refused: a script runs arbitrary code \
                             inside the server (Pinot disables Groovy by default too); write it \
                             with built-in functions, or start the server with \
                             --ingestion-groovy-safe-subset to translate ternaries, \
                             string concatenation, comparisons and arithmetic"
                        ),
                    ));
                }
                groovy::translate(text, &text_column).map_err(|e| {
                    TransformError::new(
                        path.clone(),
                        format!("Groovy script '{text}' is outside the safe subset: {e}"),
                    )
                })?
            } else {
                text.to_string()
            };
            let parsed =
                expr::parse(&sql_text, &known).map_err(|e| TransformError::new(path.clone(), e))?;
            for f in &parsed.functions {
                if ctx.udf(f).is_err() {
                    return Err(TransformError::new(
                        path,
                        format!("unknown function '{f}' in '{text}'"),
                    ));
                }
            }
            Ok(parsed)
        };
        let mut transforms = Vec::new();
        for (i, t) in configs.iter().enumerate() {
            let column = t.get("columnName").and_then(Value::as_str).ok_or_else(|| {
                TransformError::new(
                    format!("{TRANSFORMS}[{i}].columnName"),
                    "columnName is required",
                )
            })?;
            let text = t
                .get("transformFunction")
                .and_then(Value::as_str)
                .ok_or_else(|| {
                    TransformError::new(
                        format!("{TRANSFORMS}[{i}].transformFunction"),
                        "transformFunction is required",
                    )
                })?;
            let parsed = read(format!("{TRANSFORMS}[{i}].transformFunction"), text)?;
            transforms.push(Transform {
                column: column.to_string(),
                parsed,
                dest: table.index_of(column),
            });
        }
        let transforms = order(transforms)?;
        let filter = filter_text
            .map(|t| read(FILTER.to_string(), &t))
            .transpose()?;
        // Source fields: what the expressions read that is neither a column nor made by a
        // transform.
        let outputs: BTreeSet<&str> = transforms.iter().map(|t| t.column.as_str()).collect();
        let mut extras: Vec<String> = Vec::new();
        for c in transforms
            .iter()
            .map(|t| &t.parsed)
            .chain(filter.iter())
            .flat_map(|p| p.columns.iter())
        {
            if table.index_of(c).is_none() && !outputs.contains(c.as_str()) && !extras.contains(c) {
                extras.push(c.clone());
            }
        }
        for s in rollup.iter().flat_map(|r| r.sources()) {
            if !outputs.contains(s) && !extras.iter().any(|e| e == s) {
                extras.push(s.to_string());
            }
        }
        // Every column can say "absent" while staged, so that a transform or the filter
        // sees a missing value as null (as Pinot's do) and a value the message carries
        // wins over the transform's.
        let staging = TableColumns::new(
            table
                .columns
                .iter()
                .cloned()
                .map(|mut c: Column| {
                    c.nullable = true;
                    c
                })
                .collect(),
        );
        let defaults = table
            .default_values()
            .map_err(|e| TransformError::new("$.schema", e.to_string()))?;
        let extras_len = extras.len();
        let plan = IngestPlan {
            table: table.clone(),
            staging,
            extras,
            transforms,
            filter,
            defaults,
            ctx,
            compiled: Mutex::new(HashMap::new()),
            last_types: Mutex::new(vec![None; extras_len]),
            rollup,
        };
        Ok(Some(plan))
    }

    /// The columns a decoder fills (the table's, each nullable).
    pub fn staging(&self) -> &Arc<TableColumns> {
        &self.staging
    }

    /// The source fields outside the table that the expressions read, in the order the
    /// decoder keeps them.
    pub fn extras(&self) -> &[String] {
        &self.extras
    }

    /// Whether the plan runs for source fields of text type; a warning otherwise (their
    /// real types are only known from the data).
    pub fn check(&self) -> Option<String> {
        let types = vec![DataType::Utf8; self.extras.len()];
        match &*self.compiled_for(&types) {
            Ok(_) => None,
            Err(e) => Some(e.clone()),
        }
    }

    fn compiled_for(&self, types: &[DataType]) -> CompiledRef {
        let mut cache = self.compiled.lock();
        if let Some(c) = cache.get(types) {
            return c.clone();
        }
        let c = Arc::new(self.compile(types));
        if cache.len() > 64 {
            cache.clear();
        }
        cache.insert(types.to_vec(), c.clone());
        c
    }

    fn compile(&self, types: &[DataType]) -> Result<Compiled, String> {
        let mut fields: Vec<Field> = self
            .staging
            .arrow
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        for (name, t) in self.extras.iter().zip(types) {
            fields.push(Field::new(name, t.clone(), true));
        }
        let mut steps = Vec::new();
        for t in &self.transforms {
            let input = Arc::new(ArrowSchema::new(fields.clone()));
            let expr = self
                .physical(&t.parsed.sql, &input)
                .map_err(|e| format!("transform of column '{}': {e}", t.column))?;
            let target = match t.dest {
                Some(i) => Target::Column(i),
                None => match fields.iter().position(|f| f.name() == &t.column) {
                    Some(j) => Target::Source(j),
                    None => {
                        let dt = expr
                            .data_type(&input)
                            .map_err(|e| format!("transform of column '{}': {e}", t.column))?;
                        fields.push(Field::new(&t.column, dt, true));
                        Target::New
                    }
                },
            };
            steps.push(Step {
                column: t.column.clone(),
                input,
                expr,
                target,
            });
        }
        let filter = match &self.filter {
            None => None,
            Some(p) => {
                let input = Arc::new(ArrowSchema::new(fields.clone()));
                let expr = self
                    .physical(&p.sql, &input)
                    .map_err(|e| format!("filterFunction: {e}"))?;
                let dt = expr.data_type(&input).map_err(|e| e.to_string())?;
                if dt != DataType::Boolean {
                    return Err(format!(
                        "filterFunction must be true or false for a row, got {dt}"
                    ));
                }
                Some((input, expr))
            }
        };
        Ok(Compiled { steps, filter })
    }

    fn physical(&self, sql: &str, schema: &SchemaRef) -> Result<Arc<dyn PhysicalExpr>, String> {
        let df = DFSchema::try_from(schema.as_ref().clone()).map_err(|e| e.to_string())?;
        let logical = self
            .ctx
            .parse_sql_expr(sql, &df)
            .map_err(|e| clean(&e.to_string()))?;
        self.ctx
            .create_physical_expr(logical, &df)
            .map_err(|e| clean(&e.to_string()))
    }

    /// Runs the transforms and the filter on a decoded block (its columns are
    /// [`IngestPlan::staging`], `extras` its source fields). A row whose expression fails
    /// is reported in [`Applied::errors`] and left out; the other rows go on.
    pub fn apply(&self, batch: RecordBatch, extras: ExtraValues) -> Applied {
        let rows = batch.num_rows();
        let mut extra_arrays: Vec<ArrayRef> = extras
            .iter()
            .map(|v| values::to_array(v, &values::infer(v)))
            .collect();
        let compiled = self.compiled_with_nulls(&mut extra_arrays, rows);
        let c = match &*compiled {
            Ok(c) => c,
            Err(e) => return self.all_failed(rows, e),
        };
        match self.run(c, &batch, &extra_arrays) {
            Ok(a) => a,
            Err(_) if rows > 1 => self.row_by_row(c, &batch, &extra_arrays),
            Err(e) => self.all_failed(rows, &e),
        }
    }

    /// The compiled plan for these source fields. A field that is null on every row of
    /// the block has no type of its own: it takes the type it had last, else the first of
    /// null, text, whole number and decimal the expressions can run on.
    fn compiled_with_nulls(&self, extras: &mut [ArrayRef], rows: usize) -> CompiledRef {
        let all_null: Vec<usize> = (0..extras.len())
            .filter(|j| rows > 0 && extras[*j].null_count() == rows)
            .collect();
        let mut last = self.last_types.lock();
        for (j, a) in extras.iter().enumerate() {
            if !all_null.contains(&j) {
                last[j] = Some(a.data_type().clone());
            }
        }
        if all_null.is_empty() {
            drop(last);
            let types: Vec<DataType> = extras.iter().map(|a| a.data_type().clone()).collect();
            return self.compiled_for(&types);
        }
        let remembered: Vec<Option<DataType>> = all_null.iter().map(|j| last[*j].clone()).collect();
        drop(last);
        let mut candidates: Vec<Vec<DataType>> = Vec::new();
        if remembered.iter().all(Option::is_some) {
            candidates.push(remembered.into_iter().flatten().collect());
        }
        for t in [
            DataType::Null,
            DataType::Utf8,
            DataType::Int64,
            DataType::Float64,
        ] {
            candidates.push(vec![t; all_null.len()]);
        }
        let mut first = None;
        for cand in candidates {
            for (j, t) in all_null.iter().zip(&cand) {
                extras[*j] = arrow::array::new_null_array(t, rows);
            }
            let types: Vec<DataType> = extras.iter().map(|a| a.data_type().clone()).collect();
            let c = self.compiled_for(&types);
            if c.is_ok() {
                return c;
            }
            first.get_or_insert(c);
        }
        first.unwrap_or_else(|| Arc::new(Err("no types for the source fields".into())))
    }

    fn all_failed(&self, rows: usize, e: &str) -> Applied {
        Applied {
            batch: RecordBatch::new_empty(self.table.arrow.clone()),
            kept: Vec::new(),
            filtered: 0,
            errors: (0..rows as u32).map(|r| (r, e.to_string())).collect(),
        }
    }

    /// A block where some row fails as a whole: each row on its own, to keep the others.
    fn row_by_row(&self, c: &Compiled, batch: &RecordBatch, extras: &[ArrayRef]) -> Applied {
        let mut out = Applied {
            batch: RecordBatch::new_empty(self.table.arrow.clone()),
            kept: Vec::new(),
            filtered: 0,
            errors: Vec::new(),
        };
        let mut parts = Vec::new();
        for r in 0..batch.num_rows() {
            let one = batch.slice(r, 1);
            let ex: Vec<ArrayRef> = extras.iter().map(|a| a.slice(r, 1)).collect();
            match self.run(c, &one, &ex) {
                Ok(a) => {
                    out.filtered += a.filtered;
                    out.errors
                        .extend(a.errors.into_iter().map(|(_, e)| (r as u32, e)));
                    if a.batch.num_rows() > 0 {
                        out.kept.push(r as u32);
                        parts.push(a.batch);
                    }
                }
                Err(e) => out.errors.push((r as u32, e)),
            }
        }
        match arrow::compute::concat_batches(&self.table.arrow, &parts) {
            Ok(b) => out.batch = b,
            Err(e) => {
                out.errors
                    .extend(out.kept.drain(..).map(|r| (r, e.to_string())));
            }
        }
        out
    }

    fn run(
        &self,
        c: &Compiled,
        batch: &RecordBatch,
        extras: &[ArrayRef],
    ) -> Result<Applied, String> {
        let rows = batch.num_rows();
        let mut cols: Vec<ArrayRef> = batch.columns().to_vec();
        cols.extend(extras.iter().cloned());
        let mut bad: Vec<Option<String>> = Vec::new();
        for s in &c.steps {
            let input =
                RecordBatch::try_new(s.input.clone(), cols[..s.input.fields().len()].to_vec())
                    .map_err(|e| e.to_string())?;
            let r = s
                .expr
                .evaluate(&input)
                .and_then(|v| v.into_array(rows))
                .map_err(|e| {
                    format!(
                        "transform of column '{}': {}",
                        s.column,
                        clean(&e.to_string())
                    )
                })?;
            match s.target {
                Target::Column(i) => {
                    let field = self.staging.arrow.field(i);
                    let (v, failed) = convert(&r, field.data_type());
                    for row in failed {
                        if bad.is_empty() {
                            bad = vec![None; rows];
                        }
                        bad[row].get_or_insert_with(|| {
                            format!(
                                "transform of column '{}': cannot convert {} to {}",
                                s.column,
                                describe(&r, row),
                                self.table.columns[i].data_type.name()
                            )
                        });
                    }
                    cols[i] = prefer_present(&cols[i], &v)?;
                }
                Target::Source(j) => {
                    cols[j] = if cols[j].data_type() == r.data_type() {
                        prefer_present(&cols[j], &r)?
                    } else {
                        r
                    };
                }
                Target::New => cols.push(r),
            }
        }
        let mut keep: Vec<bool> = vec![true; rows];
        let mut filtered = 0;
        if let Some((schema, f)) = &c.filter {
            let input =
                RecordBatch::try_new(schema.clone(), cols[..schema.fields().len()].to_vec())
                    .map_err(|e| e.to_string())?;
            let v = f
                .evaluate(&input)
                .and_then(|v| v.into_array(rows))
                .map_err(|e| format!("filterFunction: {}", clean(&e.to_string())))?;
            let v = v.as_boolean();
            for (r, k) in keep.iter_mut().enumerate() {
                if v.is_valid(r) && v.value(r) {
                    *k = false;
                    filtered += 1;
                }
            }
        }
        let mut errors = Vec::new();
        for (r, b) in bad.into_iter().enumerate() {
            if let Some(e) = b {
                if keep[r] {
                    keep[r] = false;
                    errors.push((r as u32, e));
                }
            }
        }
        if let Some(r) = &self.rollup {
            return self.rolled_up(r, cols, keep, filtered, errors);
        }
        let mut out_cols = Vec::with_capacity(self.table.columns.len());
        for (i, col) in cols.into_iter().take(self.table.columns.len()).enumerate() {
            out_cols.push(self.finalize(col, i).map_err(|e| e.to_string())?);
        }
        let out =
            RecordBatch::try_new(self.table.arrow.clone(), out_cols).map_err(|e| e.to_string())?;
        let kept: Vec<u32> = (0..rows as u32).filter(|r| keep[*r as usize]).collect();
        let batch = if kept.len() == rows {
            out
        } else {
            filter_record_batch(&out, &BooleanArray::from(keep)).map_err(|e| e.to_string())?
        };
        Ok(Applied {
            batch,
            kept,
            filtered,
            errors,
        })
    }

    /// The rollup of a block: the rows kept (not filtered, not failed) merged by their
    /// non-metric values, each metric aggregated from its source field.
    fn rolled_up(
        &self,
        r: &Rollup,
        cols: Vec<ArrayRef>,
        keep: Vec<bool>,
        filtered: usize,
        errors: Vec<(u32, String)>,
    ) -> Result<Applied, String> {
        let kept: Vec<u32> = (0..keep.len() as u32)
            .filter(|i| keep[*i as usize])
            .collect();
        let mask = BooleanArray::from(keep);
        let working: Vec<ArrayRef> = cols
            .iter()
            .map(|c| arrow::compute::filter(c.as_ref(), &mask))
            .collect::<Result<_, _>>()
            .map_err(|e| e.to_string())?;
        let n = self.table.columns.len();
        let source_at = |name: &str| self.extras.iter().position(|e| e == name).map(|j| n + j);
        let merged = r.from_sources(&working, &source_at, &self.table)?;
        let mut out_cols = Vec::with_capacity(n);
        for (i, col) in merged.into_iter().enumerate() {
            out_cols.push(self.finalize(col, i).map_err(|e| e.to_string())?);
        }
        let batch =
            RecordBatch::try_new(self.table.arrow.clone(), out_cols).map_err(|e| e.to_string())?;
        Ok(Applied {
            batch,
            kept,
            filtered,
            errors,
        })
    }

    /// The table's rollup, if it has `aggregationConfigs`.
    pub fn rollup(&self) -> Option<&Rollup> {
        self.rollup.as_ref()
    }

    /// A working column as the table stores it: a missing value reads the column's default
    /// null value (recorded as null where the column keeps nulls), an empty list holds the
    /// default once.
    fn finalize(&self, col: ArrayRef, i: usize) -> Result<ArrayRef, arrow::error::ArrowError> {
        let c = &self.table.columns[i];
        let default = &self.defaults[i];
        let mut filled = fill_nulls(&col, default)?;
        if !c.single_value {
            filled = empty_lists_to_default(&filled, default)?;
        }
        if c.nullable && col.null_count() > 0 {
            let data = filled
                .to_data()
                .into_builder()
                .nulls(col.nulls().cloned())
                .build()?;
            return Ok(arrow::array::make_array(data));
        }
        Ok(filled)
    }
}

/// The session expressions are planned in: Pinot's function library over DataFusion's.
fn session() -> SessionContext {
    let mut config = SessionConfig::new();
    config.options_mut().sql_parser.enable_ident_normalization = false;
    let ctx = SessionContext::new_with_config(config);
    riffle_functions::register(
        &ctx,
        &riffle_functions::aggregation::AggregationRegistry::new(),
    );
    ctx
}

/// An error message without DataFusion's backtrace-like prefixes.
fn clean(e: &str) -> String {
    e.replace("Error during planning: ", "")
        .replace("Execution error: ", "")
        .replace("Schema error: ", "")
        .replace("This feature is not implemented: ", "")
}

/// Orders transforms so that each runs after the transforms whose columns it reads.
fn order(mut ts: Vec<Transform>) -> Result<Vec<Transform>, TransformError> {
    let mut out: Vec<Transform> = Vec::with_capacity(ts.len());
    while !ts.is_empty() {
        let ready = ts.iter().position(|t| {
            !t.parsed
                .columns
                .iter()
                .any(|c| c != &t.column && ts.iter().any(|o| &o.column == c))
        });
        match ready {
            Some(i) => out.push(ts.remove(i)),
            None => {
                let names: Vec<&str> = ts.iter().map(|t| t.column.as_str()).collect();
                return Err(TransformError::new(
                    TRANSFORMS,
                    format!(
                        "transforms of columns {} read each other in a cycle",
                        names.join(", ")
                    ),
                ));
            }
        }
    }
    Ok(out)
}

/// `present` where it has a value, else `fallback` (same type).
fn prefer_present(present: &ArrayRef, fallback: &ArrayRef) -> Result<ArrayRef, String> {
    if present.null_count() == present.len() {
        return Ok(fallback.clone());
    }
    if present.null_count() == 0 {
        return Ok(present.clone());
    }
    let valid = is_not_null(present.as_ref()).map_err(|e| e.to_string())?;
    arrow::compute::kernels::zip::zip(&valid, present, fallback).map_err(|e| e.to_string())
}

/// `r` converted to `dt`, and the rows whose value did not convert.
fn convert(r: &ArrayRef, dt: &DataType) -> (ArrayRef, Vec<usize>) {
    if r.data_type() == dt {
        return (r.clone(), Vec::new());
    }
    let converted = match (r.data_type(), dt) {
        (_, DataType::List(item)) if !matches!(r.data_type(), DataType::List(_)) => {
            let (items, _) = convert(r, item.data_type());
            let offsets = OffsetBuffer::from_lengths(std::iter::repeat_n(1, r.len()));
            ListArray::try_new(item.clone(), offsets, items, r.nulls().cloned())
                .map(|l| Arc::new(l) as ArrayRef)
                .ok()
        }
        (DataType::Utf8, DataType::Timestamp(TimeUnit::Millisecond, _)) => {
            let s = r.as_string::<i32>();
            let v: arrow::array::TimestampMillisecondArray = s
                .iter()
                .map(|x| {
                    x.and_then(|t| {
                        t.trim()
                            .parse::<i64>()
                            .ok()
                            .or_else(|| riffle_config::datetime::parse_timestamp_millis(t))
                    })
                })
                .collect();
            Some(Arc::new(v) as ArrayRef)
        }
        (DataType::Float32 | DataType::Float64, DataType::Timestamp(..)) => {
            cast_with_options(r, &DataType::Int64, &SAFE)
                .and_then(|a| cast_with_options(&a, dt, &SAFE))
                .ok()
        }
        _ => cast_with_options(r, dt, &SAFE).ok(),
    };
    match converted {
        Some(c) => {
            let failed = (0..r.len())
                .filter(|i| r.is_valid(*i) && c.is_null(*i))
                .collect();
            (c, failed)
        }
        None => {
            let nulls = arrow::array::new_null_array(dt, r.len());
            let failed = (0..r.len()).filter(|i| r.is_valid(*i)).collect();
            (nulls, failed)
        }
    }
}

const SAFE: CastOptions<'static> = CastOptions {
    safe: true,
    format_options: arrow::util::display::FormatOptions::new(),
};

/// One value of `a` as text for an error message.
fn describe(a: &ArrayRef, row: usize) -> String {
    let text = arrow::util::display::array_value_to_string(a, row).unwrap_or_default();
    let short: String = text.chars().take(64).collect();
    format!("'{short}' ({})", a.data_type())
}

/// A list column where every empty list holds `default` (a one-row list array) instead.
fn empty_lists_to_default(
    a: &ArrayRef,
    default: &ArrayRef,
) -> Result<ArrayRef, arrow::error::ArrowError> {
    let Some(list) = a.as_list_opt::<i32>() else {
        return Ok(a.clone());
    };
    if !(0..list.len()).any(|i| list.value_length(i) == 0) {
        return Ok(a.clone());
    }
    let empty: BooleanArray = (0..list.len())
        .map(|i| Some(list.value_length(i) != 0 || list.is_null(i)))
        .collect();
    arrow::compute::kernels::zip::zip(&empty, a, &arrow::array::Scalar::new(default.clone()))
}
