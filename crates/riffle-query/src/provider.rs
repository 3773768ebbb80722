//! The DataFusion table provider over a table's segments.
//!
//! Each non-empty segment is one partition of the scan, so per-segment statistics
//! (`numSegmentsMatched`) can be read back from the plan's metrics.
//!
//! Filters: simple comparisons of a column with literals (`=`, `<>`, `<`, `<=`, `>`, `>=`,
//! `IN`, `BETWEEN`, `IS [NOT] NULL`) are pushed into the scan as [`Predicate`]s, *exactly*:
//! the scan returns only matching rows and DataFusion applies no filter above it. Sealed
//! segments use them twice: to prune the whole segment from min/max and bloom filters
//! (`numSegmentsPrunedByServer`), and to select rows with their sorted, inverted and range
//! indexes before any value is read (`numEntriesScannedInFilter` counts only what was
//! scanned). Where a segment cannot answer exactly (a consuming segment, which has no
//! indexes; a sealed one whose selection is a superset, or whose filtered column holds
//! nulls that read as defaults) the scan reads the filtered columns too and evaluates the
//! filter itself on those rows (the *residual*), after the defaults are filled in. Other
//! filters stay above the scan.
//!
//! Sealed segments are read lazily, partition by partition, on the blocking pool.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, BooleanArray};
use arrow::compute::filter_record_batch;
use arrow::datatypes::SchemaRef;
use arrow::record_batch::RecordBatch;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, DataFusionError, ScalarValue};
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::logical_expr::{BinaryExpr, Expr, Operator, TableProviderFilterPushDown};
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::{ExecutionPlan, Partitioning, PlanProperties};
use parking_lot::Mutex;
use riffle_segment::sealed::{Literal, Predicate, SealedSegment};
use riffle_segment::{SegmentRef, TableColumns, TableData};
use roaring::RoaringBitmap;

use crate::scan_exec::fill_nulls;
pub use crate::scan_exec::SegmentScanExec;

/// Rows per batch read from a sealed segment.
pub(crate) const READ_BATCH_ROWS: usize = 65_536;

/// What a scan saw of the table's segments, for the response statistics.
#[derive(Clone, Debug, Default)]
pub struct ScanRecord {
    /// Raw table name.
    pub table: String,
    /// Segments of the table at scan time.
    pub segments_queried: usize,
    /// Consuming segments among them.
    pub consuming_queried: usize,
    /// Segments scanned (non-empty, not pruned).
    pub segments_processed: usize,
    /// Consuming segments scanned.
    pub consuming_processed: usize,
    /// Rows in all segments.
    pub total_docs: usize,
    /// Rows the scan returns (after index selection).
    pub processed_docs: usize,
    /// For each scan partition: whether its segment is consuming.
    pub partition_is_consuming: Vec<bool>,
    /// Freshness of the consuming segments (min latest event time), if any.
    pub min_consuming_freshness_ms: Option<i64>,
    /// Values read to evaluate the filter: what indexes could not answer.
    pub entries_scanned_in_filter: u64,
    /// Whether the query has a filter on this table.
    pub filtered: bool,
}

impl ScanRecord {
    /// A consuming segment of `rows` rows whose latest event is at `latest_ms` was queried.
    fn saw_consuming(&mut self, rows: usize, latest_ms: i64) {
        self.consuming_queried += 1;
        if rows > 0 && latest_ms > 0 {
            self.min_consuming_freshness_ms = Some(
                self.min_consuming_freshness_ms
                    .map_or(latest_ms, |m| m.min(latest_ms)),
            );
        }
    }
}

/// A table as DataFusion sees it.
#[derive(Debug)]
pub struct SegmentTable {
    data: Arc<TableData>,
    /// The table's columns as this query sees them, from its planning to its last row
    /// (a column added meanwhile waits for the next query).
    columns: Arc<TableColumns>,
    schema: SchemaRef,
    record: Arc<Mutex<Vec<ScanRecord>>>,
    /// SQL NULL semantics (`enableNullHandling`); off, nulls read as default values.
    null_handling: bool,
}

impl SegmentTable {
    /// A provider recording what it scans into `record`.
    pub fn new(data: Arc<TableData>, record: Arc<Mutex<Vec<ScanRecord>>>) -> SegmentTable {
        // The real columns, then Pinot's virtual ones (made only when asked for).
        let columns = data.columns();
        let mut fields: Vec<arrow::datatypes::FieldRef> =
            columns.arrow.fields().iter().cloned().collect();
        fields.extend(
            crate::virtual_columns::fields()
                .into_iter()
                .map(std::sync::Arc::new),
        );
        let schema = Arc::new(arrow::datatypes::Schema::new(fields));
        SegmentTable {
            data,
            columns,
            schema,
            record,
            null_handling: false,
        }
    }

    /// With SQL NULL semantics over the nulls the table records (the `enableNullHandling`
    /// query option); without, every null reads as its column's default null value and a
    /// predicate is answered by a segment's indexes only where that column has no nulls.
    pub fn with_null_handling(mut self, on: bool) -> SegmentTable {
        self.null_handling = on;
        self
    }

    /// A consuming segment's batches with this query's columns: rows written before a
    /// column was added read its default; a column added after the query began is left
    /// out (the table's columns only ever grow at the end).
    fn as_queried(&self, batches: &[RecordBatch]) -> DfResult<Vec<RecordBatch>> {
        let n = self.columns.arrow.fields().len();
        if batches.iter().all(|b| b.num_columns() == n) {
            return Ok(batches.to_vec());
        }
        let defaults = self.columns.default_values().map_err(df_err)?;
        batches
            .iter()
            .map(|b| {
                if b.num_columns() > n {
                    b.project(&(0..n).collect::<Vec<_>>())
                        .map_err(DataFusionError::from)
                } else {
                    riffle_segment::widen(b, &self.columns, &defaults).map_err(df_err)
                }
            })
            .collect()
    }

    /// For each real column read (`read`, all for `None`): the default its nulls read as,
    /// when nulls must be filled. `None` when nothing is to fill.
    fn fills(&self, read: Option<&[usize]>) -> DfResult<Option<Arc<Vec<Option<ArrayRef>>>>> {
        let fields = self.columns.arrow.fields();
        let all: Vec<usize> = (0..fields.len()).collect();
        let read = read.unwrap_or(&all);
        if self.null_handling
            || !read
                .iter()
                .any(|i| fields.get(*i).is_some_and(|f| f.is_nullable()))
        {
            return Ok(None);
        }
        let defaults = self.columns.default_values().map_err(df_err)?;
        Ok(Some(Arc::new(
            read.iter()
                .map(|i| {
                    fields
                        .get(*i)
                        .filter(|f| f.is_nullable())
                        .and_then(|_| defaults.get(*i).cloned())
                })
                .collect(),
        )))
    }
}

impl SegmentTable {
    /// What a scan of every row would see, from the segments' metadata alone: the row
    /// count and the record a scan without a filter makes (`SELECT COUNT(*)`).
    pub(crate) fn count_all(&self) -> (u64, ScanRecord) {
        let mut rec = ScanRecord {
            table: self.data.name.clone(),
            ..Default::default()
        };
        for seg in self.data.segments() {
            rec.segments_queried += 1;
            let rows = match seg {
                SegmentRef::Consuming(c) => {
                    let snap = c.snapshot();
                    rec.saw_consuming(snap.num_rows, snap.latest_event_ms);
                    if snap.num_rows > 0 {
                        rec.consuming_processed += 1;
                    }
                    snap.num_rows
                }
                SegmentRef::Sealed(s) => s.num_rows(),
            };
            rec.total_docs += rows;
            if rows > 0 {
                rec.segments_processed += 1;
                rec.processed_docs += rows;
            }
        }
        (rec.total_docs as u64, rec)
    }
}

/// Which half of a hybrid table a segment belongs to (its side of the time boundary).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Side {
    /// Not a hybrid table.
    Plain,
    /// OFFLINE: rows at or before the boundary.
    Offline,
    /// REALTIME: rows after the boundary.
    Realtime,
}

/// A hybrid table's time boundary as a filter on its time column (Pinot's broker adds
/// `time <= boundary` to the OFFLINE query and `time > boundary` to the REALTIME one).
struct Boundary {
    column: String,
    value: i64,
    literal: ScalarValue,
}

impl Boundary {
    fn predicate(&self, side: Side) -> Option<Predicate> {
        let v = Some((Literal::Int(self.value), side == Side::Offline));
        match side {
            Side::Plain => None,
            Side::Offline => Some(Predicate::Range {
                column: self.column.clone(),
                low: None,
                high: v,
            }),
            Side::Realtime => Some(Predicate::Range {
                column: self.column.clone(),
                low: v,
                high: None,
            }),
        }
    }

    fn expr(&self, side: Side) -> Option<Expr> {
        let col = Expr::Column(datafusion::common::Column::new_unqualified(&self.column));
        let lit = Expr::Literal(self.literal.clone(), None);
        let op = match side {
            Side::Plain => return None,
            Side::Offline => Operator::LtEq,
            Side::Realtime => Operator::Gt,
        };
        Some(Expr::BinaryExpr(BinaryExpr::new(
            Box::new(col),
            op,
            Box::new(lit),
        )))
    }
}

impl SegmentTable {
    /// The table's time boundary, if it is a hybrid with OFFLINE data, as a value of its
    /// time column's Arrow type.
    fn boundary(&self) -> Option<Boundary> {
        use arrow::datatypes::{DataType, TimeUnit};
        let value = self.data.time_boundary()?;
        let column = self.data.time_column.clone()?;
        let field = self.columns.arrow.field_with_name(&column).ok()?;
        let literal = match field.data_type() {
            DataType::Int32 => ScalarValue::Int32(Some(i32::try_from(value).ok()?)),
            DataType::Int64 => ScalarValue::Int64(Some(value)),
            DataType::Timestamp(TimeUnit::Millisecond, tz) => {
                ScalarValue::TimestampMillisecond(Some(value), tz.clone())
            }
            _ => return None,
        };
        Some(Boundary {
            column,
            value,
            literal,
        })
    }
}

/// The pushed filters as the scan evaluates them on the rows of a segment that cannot
/// answer them exactly: the real columns to read (the scan's own, then the filtered ones it
/// does not return), their null fills, and the predicates over them: `IS [NOT] NULL` on the
/// recorded nulls (Pinot's basic null support: the null vector answers them even without
/// `enableNullHandling`), the others on the values with the defaults filled in.
#[derive(Debug)]
pub(crate) struct Residual {
    pub(crate) nulls: Option<Arc<dyn PhysicalExpr>>,
    pub(crate) values: Option<Arc<dyn PhysicalExpr>>,
    pub(crate) columns: Vec<usize>,
    pub(crate) schema: SchemaRef,
    pub(crate) fills: Option<Arc<Vec<Option<ArrayRef>>>>,
    /// How many leading columns are the scan's own.
    pub(crate) keep: usize,
}

impl SegmentTable {
    /// The residual of `filters` for a scan reading real columns `read` (all for `None`).
    fn residual(
        &self,
        state: &dyn Session,
        filters: &[Expr],
        read: Option<&[usize]>,
    ) -> DfResult<Residual> {
        let arrow = &self.columns.arrow;
        let mut columns: Vec<usize> = match read {
            Some(r) => r.to_vec(),
            None => (0..arrow.fields().len()).collect(),
        };
        let keep = columns.len();
        for f in filters {
            for c in f.column_refs() {
                if let Ok(i) = arrow.index_of(&c.name) {
                    if !columns.contains(&i) {
                        columns.push(i);
                    }
                }
            }
        }
        let schema = Arc::new(arrow.project(&columns)?);
        let df_schema = DFSchema::try_from(schema.as_ref().clone())?;
        // Names as the residual's schema has them: unqualified.
        let plan = |exprs: Vec<&Expr>| -> DfResult<Option<Arc<dyn PhysicalExpr>>> {
            let Some(all) = exprs.into_iter().cloned().reduce(Expr::and) else {
                return Ok(None);
            };
            let all = all
                .transform(|e| {
                    Ok(match e {
                        Expr::Column(c) => Transformed::yes(Expr::Column(
                            datafusion::common::Column::new_unqualified(c.name),
                        )),
                        e => Transformed::no(e),
                    })
                })?
                .data;
            Ok(Some(state.create_physical_expr(all, &df_schema)?))
        };
        let (null_filters, value_filters): (Vec<&Expr>, Vec<&Expr>) = filters
            .iter()
            .partition(|f| matches!(f, Expr::IsNull(_) | Expr::IsNotNull(_)));
        let nulls = plan(null_filters)?;
        let values = plan(value_filters)?;
        Ok(Residual {
            nulls,
            values,
            fills: self.fills(Some(&columns))?,
            columns,
            schema,
            keep,
        })
    }
}

/// The rows of `batches` (read with `r.columns`, nulls as recorded) that satisfy the
/// residual, with the defaults filled in and only the scan's own columns; with `docs`, the
/// doc ids of the rows kept.
pub(crate) fn apply_residual(
    batches: Vec<RecordBatch>,
    r: &Residual,
    docs: Option<&crate::virtual_columns::DocIds>,
) -> DfResult<(Vec<RecordBatch>, Option<crate::virtual_columns::DocIds>)> {
    use crate::virtual_columns::DocIds;
    let mut ids: Option<Box<dyn Iterator<Item = u32> + '_>> = docs.map(|d| match d {
        DocIds::All => Box::new(0u32..) as Box<dyn Iterator<Item = u32>>,
        DocIds::Selected(b) => Box::new(b.iter()),
    });
    let mask_of = |p: &Arc<dyn PhysicalExpr>, b: &RecordBatch| -> DfResult<BooleanArray> {
        let m = p.evaluate(b)?.into_array(b.num_rows())?;
        match m.as_any().downcast_ref::<BooleanArray>() {
            Some(m) => Ok(m.clone()),
            None => Err(DataFusionError::Internal(
                "a filter that is not boolean".into(),
            )),
        }
    };
    let mut kept = RoaringBitmap::new();
    let keep: Vec<usize> = (0..r.keep).collect();
    let mut out = Vec::with_capacity(batches.len());
    for b in batches {
        let n = b.num_rows();
        let on_nulls = r.nulls.as_ref().map(|p| mask_of(p, &b)).transpose()?;
        let b = match &r.fills {
            Some(f) => fill_nulls(vec![b], f)?
                .into_iter()
                .next()
                .unwrap_or_else(|| RecordBatch::new_empty(r.schema.clone())),
            None => b,
        };
        let on_values = r.values.as_ref().map(|p| mask_of(p, &b)).transpose()?;
        let mask = match (on_nulls, on_values) {
            (Some(a), Some(v)) => arrow::compute::and(&a, &v)?,
            (Some(m), None) | (None, Some(m)) => m,
            (None, None) => BooleanArray::from(vec![true; n]),
        };
        if let Some(ids) = ids.as_mut() {
            for (i, id) in ids.by_ref().take(n).enumerate() {
                if mask.is_valid(i) && mask.value(i) {
                    kept.push(id);
                }
            }
        }
        out.push(filter_record_batch(&b, &mask)?.project(&keep)?);
    }
    Ok((out, docs.map(|_| DocIds::Selected(kept))))
}

/// What one partition of the scan reads.
#[derive(Debug, Clone)]
pub(crate) enum ScanUnit {
    /// Rows already in memory (a consuming segment's snapshot).
    Batches(Vec<RecordBatch>),
    /// A sealed segment, all rows or the selected ones.
    Sealed {
        segment: Arc<SealedSegment>,
        selection: Option<RoaringBitmap>,
        rows: usize,
    },
}

impl ScanUnit {
    pub(crate) fn rows(&self) -> usize {
        match self {
            ScanUnit::Batches(b) => b.iter().map(|b| b.num_rows()).sum(),
            ScanUnit::Sealed { rows, .. } => *rows,
        }
    }
}

pub(crate) fn literal(v: &ScalarValue) -> Option<Literal> {
    Some(match v {
        ScalarValue::Int8(Some(x)) => Literal::Int(*x as i64),
        ScalarValue::Int16(Some(x)) => Literal::Int(*x as i64),
        ScalarValue::Int32(Some(x)) => Literal::Int(*x as i64),
        ScalarValue::Int64(Some(x)) => Literal::Int(*x),
        ScalarValue::UInt8(Some(x)) => Literal::Int(*x as i64),
        ScalarValue::UInt16(Some(x)) => Literal::Int(*x as i64),
        ScalarValue::UInt32(Some(x)) => Literal::Int(*x as i64),
        ScalarValue::UInt64(Some(x)) => Literal::Int(i64::try_from(*x).ok()?),
        ScalarValue::Float32(Some(x)) => Literal::Float(*x as f64),
        ScalarValue::Float64(Some(x)) => Literal::Float(*x),
        ScalarValue::Boolean(Some(b)) => Literal::Bool(*b),
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Literal::Str(s.clone()),
        ScalarValue::TimestampMillisecond(Some(x), _) => Literal::Int(*x),
        ScalarValue::TimestampSecond(Some(x), _) => Literal::Int(x.checked_mul(1000)?),
        // Sub-millisecond literals would need rounding per operator: not pushed.
        _ => return None,
    })
}

fn column_of(e: &Expr) -> Option<String> {
    match e {
        Expr::Column(c) => Some(c.name.clone()),
        _ => None,
    }
}

fn literal_of(e: &Expr) -> Option<Literal> {
    match e {
        Expr::Literal(v, _) => literal(v),
        _ => None,
    }
}

/// The predicate a filter expression is, when a segment can answer it.
pub fn to_predicate(e: &Expr) -> Option<Predicate> {
    match e {
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let (col, lit, op) = match (column_of(left), literal_of(right)) {
                (Some(c), Some(l)) => (c, l, *op),
                _ => {
                    let c = column_of(right)?;
                    let l = literal_of(left)?;
                    (c, l, op.swap()?)
                }
            };
            Some(match op {
                Operator::Eq => Predicate::Eq(col, lit),
                Operator::NotEq => Predicate::NotEq(col, lit),
                Operator::Lt => Predicate::Range {
                    column: col,
                    low: None,
                    high: Some((lit, false)),
                },
                Operator::LtEq => Predicate::Range {
                    column: col,
                    low: None,
                    high: Some((lit, true)),
                },
                Operator::Gt => Predicate::Range {
                    column: col,
                    low: Some((lit, false)),
                    high: None,
                },
                Operator::GtEq => Predicate::Range {
                    column: col,
                    low: Some((lit, true)),
                    high: None,
                },
                _ => return None,
            })
        }
        Expr::InList(l) if !l.negated => {
            let col = column_of(&l.expr)?;
            let vals = l.list.iter().map(literal_of).collect::<Option<Vec<_>>>()?;
            Some(Predicate::In(col, vals))
        }
        Expr::Between(b) if !b.negated => Some(Predicate::Range {
            column: column_of(&b.expr)?,
            low: Some((literal_of(&b.low)?, true)),
            high: Some((literal_of(&b.high)?, true)),
        }),
        Expr::IsNull(inner) => Some(Predicate::IsNull(column_of(inner)?)),
        Expr::IsNotNull(inner) => Some(Predicate::IsNotNull(column_of(inner)?)),
        _ => None,
    }
}

/// A filter the segments can evaluate: one [`to_predicate`] reads, on real columns only
/// (a filter on a virtual column is evaluated above the scan).
fn pushable(e: &Expr) -> Option<Predicate> {
    if e.column_refs()
        .iter()
        .any(|c| crate::virtual_columns::is_virtual(&c.name))
    {
        return None;
    }
    to_predicate(e)
}

pub(crate) fn df_err(e: impl fmt::Display) -> DataFusionError {
    DataFusionError::Execution(e.to_string())
}

#[async_trait]
impl TableProvider for SegmentTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> DfResult<Vec<TableProviderFilterPushDown>> {
        Ok(filters
            .iter()
            .map(|f| match pushable(f) {
                // Exact: where a segment cannot answer, the scan filters again itself.
                Some(_) => TableProviderFilterPushDown::Exact,
                None => TableProviderFilterPushDown::Unsupported,
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let preds: Vec<Predicate> = filters.iter().filter_map(pushable).collect();
        let columns_of = |pushed_only: bool| -> BTreeSet<String> {
            filters
                .iter()
                .filter(|f| !pushed_only || pushable(f).is_some())
                .flat_map(|f| f.column_refs().into_iter().map(|c| c.name.clone()))
                .collect()
        };
        let filter_columns = columns_of(false);
        // Columns whose filters the indexes cannot take are read value by value over the
        // rows the indexes selected.
        let unpushed_columns = filter_columns.difference(&columns_of(true)).count() as u64;
        let mut rec = ScanRecord {
            table: self.data.name.clone(),
            filtered: !filters.is_empty(),
            ..Default::default()
        };
        let mut units = Vec::new();
        let mut names = Vec::new();
        // Per unit: whether the scan must evaluate the filters on its rows, and which
        // filters (a hybrid table's halves add their side of the time boundary).
        let mut refilter = Vec::new();
        let mut sides: Vec<Side> = Vec::new();
        let boundary = self.boundary();
        for seg in self.data.segments() {
            rec.segments_queried += 1;
            let name = seg.name().to_string();
            let side = match &boundary {
                None => Side::Plain,
                Some(_) if self.data.is_offline(&name) => Side::Offline,
                Some(_) => Side::Realtime,
            };
            match seg {
                SegmentRef::Consuming(c) => {
                    let snap = c.snapshot();
                    rec.saw_consuming(snap.num_rows, snap.latest_event_ms);
                    rec.total_docs += snap.num_rows;
                    if snap.num_rows == 0 {
                        continue;
                    }
                    rec.segments_processed += 1;
                    rec.consuming_processed += 1;
                    rec.processed_docs += snap.num_rows;
                    rec.entries_scanned_in_filter +=
                        snap.num_rows as u64 * filter_columns.len() as u64;
                    rec.partition_is_consuming.push(true);
                    units.push(ScanUnit::Batches(self.as_queried(&snap.batches)?));
                    names.push(name);
                    refilter.push(!filters.is_empty() || side != Side::Plain);
                    sides.push(side);
                }
                SegmentRef::Sealed(s) => {
                    let total = s.num_rows();
                    rec.total_docs += total;
                    let all: Vec<Predicate> = preds
                        .iter()
                        .cloned()
                        .chain(boundary.as_ref().and_then(|b| b.predicate(side)))
                        .collect();
                    // Without null handling a null reads as the default value, which the
                    // indexes and min / max do not know: such columns are filtered by the
                    // residual, but for IS [NOT] NULL, which the null vector answers.
                    let seg_preds: Vec<Predicate> = all
                        .iter()
                        .filter(|p| {
                            self.null_handling
                                || matches!(p, Predicate::IsNull(_) | Predicate::IsNotNull(_))
                                || s.column_info(p.column()).is_none_or(|c| c.null_count == 0)
                        })
                        .cloned()
                        .collect();
                    if total == 0 || seg_preds.iter().any(|p| !s.can_match(p)) {
                        continue;
                    }
                    let (selection, rows, exact) = if seg_preds.is_empty() {
                        (None, total, true)
                    } else {
                        let sel = s.filter(&seg_preds).map_err(df_err)?;
                        rec.entries_scanned_in_filter += sel.entries_scanned;
                        let rows = sel.docs.len() as usize;
                        rec.entries_scanned_in_filter += rows as u64 * unpushed_columns;
                        (Some(sel.docs), rows, sel.exact)
                    };
                    refilter.push(!exact || seg_preds.len() != all.len());
                    sides.push(side);
                    rec.segments_processed += 1;
                    rec.processed_docs += rows;
                    rec.partition_is_consuming.push(false);
                    units.push(ScanUnit::Sealed {
                        segment: s,
                        selection,
                        rows,
                    });
                    names.push(name);
                }
            }
        }
        if units.is_empty() {
            // DataFusion needs at least one partition.
            units.push(ScanUnit::Batches(Vec::new()));
            names.push(String::new());
            rec.partition_is_consuming.push(false);
            refilter.push(false);
            sides.push(Side::Plain);
        }
        let record_index = {
            let mut r = self.record.lock();
            r.push(rec);
            r.len() - 1
        };
        let projected = match projection {
            Some(p) => Arc::new(self.schema.project(p)?),
            None => self.schema.clone(),
        };
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(projected.clone()),
            Partitioning::UnknownPartitioning(units.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        let real = self.columns.arrow.fields().len();
        let all: Vec<usize> = (0..self.schema.fields().len()).collect();
        let projection = Some(projection.unwrap_or(&all));
        let (read, sources) = crate::virtual_columns::split(projection, real);
        let read_schema = match &read {
            Some(r) => Arc::new(self.columns.arrow.project(r)?),
            None => self.columns.arrow.clone(),
        };
        let fills = self.fills(read.as_deref())?;
        // One residual per side that needs one, shared by its units.
        let mut by_side: Vec<(Side, Arc<Residual>)> = Vec::new();
        let mut residual = Vec::with_capacity(units.len());
        for (r, side) in refilter.iter().zip(&sides) {
            if !*r {
                residual.push(None);
                continue;
            }
            let found = by_side
                .iter()
                .find(|(s, _)| s == side)
                .map(|(_, r)| r.clone());
            let res = match found {
                Some(r) => r,
                None => {
                    let mut fs = filters.to_vec();
                    fs.extend(boundary.as_ref().and_then(|b| b.expr(*side)));
                    let r = Arc::new(self.residual(state, &fs, read.as_deref())?);
                    by_side.push((*side, r.clone()));
                    r
                }
            };
            residual.push(Some(res));
        }
        Ok(Arc::new(SegmentScanExec {
            residual,
            refilter,
            distinct: false,
            fills,
            units,
            names,
            read,
            read_schema,
            sources,
            projection: projection.cloned(),
            schema: projected,
            props,
            record_index,
            record: self.record.clone(),
            table_columns: self.columns.arrow.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}
