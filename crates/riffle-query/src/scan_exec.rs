//! [`SegmentScanExec`]: the execution plan that reads a table's segments, one partition
//! per segment (made by [`crate::provider::SegmentTable`]): sealed segments on the blocking
//! pool, consuming ones from their snapshot, with null fills, the residual filter where a
//! segment cannot answer the pushed filters exactly, and exact per-scan row statistics.

use std::fmt;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef};
use arrow::datatypes::SchemaRef;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use datafusion::common::stats::Precision;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{DataFusionError, ScalarValue, Statistics};
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::physical_expr::{EquivalenceProperties, PhysicalExpr};
use datafusion::physical_plan::execution_plan::{Boundedness, EmissionType};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, Partitioning, PlanProperties,
    SendableRecordBatchStream,
};
use futures::StreamExt;
use parking_lot::Mutex;
use riffle_segment::sealed::Predicate;

use crate::provider::{
    apply_residual, df_err, literal, Residual, ScanRecord, ScanUnit, READ_BATCH_ROWS,
};

/// The scan of a table's segments: one partition per segment. It counts the rows it
/// returns per partition and knows which [`ScanRecord`] it belongs to, so the response
/// statistics are exact.
#[derive(Debug)]
pub struct SegmentScanExec {
    pub(crate) units: Vec<ScanUnit>,
    /// The segment of each unit.
    pub(crate) names: Vec<String>,
    /// The real columns read, and their schema.
    pub(crate) read: Option<Vec<usize>>,
    pub(crate) read_schema: SchemaRef,
    /// Where each output column comes from, when virtual columns are asked for.
    pub(crate) sources: Option<Vec<crate::virtual_columns::Source>>,
    pub(crate) projection: Option<Vec<usize>>,
    pub(crate) schema: SchemaRef,
    pub(crate) props: Arc<PlanProperties>,
    /// Index of this scan's record.
    pub record_index: usize,
    /// Per real column read: the default its nulls read as, when they are filled.
    pub(crate) fills: Option<Arc<Vec<Option<ArrayRef>>>>,
    /// Per unit: the pushed filters (and a hybrid table's time boundary) for a unit that
    /// cannot answer them exactly.
    pub(crate) residual: Vec<Option<Arc<Residual>>>,
    /// Per unit: whether the residual must be applied to its rows.
    pub(crate) refilter: Vec<bool>,
    /// Each sealed segment returns the distinct values of the one column read, not its
    /// rows ([`crate::distinct_scan`]).
    pub(crate) distinct: bool,
    pub(crate) record: Arc<Mutex<Vec<ScanRecord>>>,
    /// The table's real columns.
    pub(crate) table_columns: SchemaRef,
    pub(crate) metrics: ExecutionPlanMetricsSet,
}

impl SegmentScanExec {
    /// This scan returning, for each sealed segment it can, the distinct values of its one
    /// column over the selected docs instead of every row (for aggregations that ignore
    /// duplicates). `None` unless exactly one real column is read and there are sealed
    /// segments.
    pub fn with_distinct(&self) -> Option<SegmentScanExec> {
        if self.sources.is_some() || self.read.as_ref().is_none_or(|r| r.len() != 1) {
            return None;
        }
        if !self
            .units
            .iter()
            .any(|u| matches!(u, ScanUnit::Sealed { .. }))
        {
            return None;
        }
        Some(SegmentScanExec {
            units: self.units.clone(),
            names: self.names.clone(),
            read: self.read.clone(),
            read_schema: self.read_schema.clone(),
            sources: None,
            projection: self.projection.clone(),
            schema: self.schema.clone(),
            props: self.props.clone(),
            record_index: self.record_index,
            fills: self.fills.clone(),
            residual: self.residual.clone(),
            refilter: self.refilter.clone(),
            distinct: true,
            record: self.record.clone(),
            table_columns: self.table_columns.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }

    /// This scan reading only the rows that can be among the first `n` ordered by output
    /// column `column` ([`crate::top_n`]): each sealed segment narrows its rows from that
    /// column alone, and a segment none of whose rows can reach the best segment's `n`-th
    /// value is dropped. Consuming segments are read whole. `None` when nothing changes
    /// (a virtual column, or no sealed segment can tell).
    pub fn with_top(&self, column: usize, descending: bool, n: usize) -> Option<SegmentScanExec> {
        let table_col = *self.projection.as_ref()?.get(column)?;
        // A virtual column is not among the table's columns.
        let name = self.table_columns.fields().get(table_col)?.name().clone();
        let mut units = self.units.clone();
        let mut bounds: Vec<ScalarValue> = Vec::new();
        let mut changed = false;
        for (i, u) in units.iter_mut().enumerate() {
            // Rows the residual filters later cannot be narrowed before it.
            if self.refilter.get(i).copied().unwrap_or(false) {
                continue;
            }
            let ScanUnit::Sealed {
                segment, selection, ..
            } = u
            else {
                continue;
            };
            let Ok(Some(top)) = segment.top_docs(table_col, descending, n, selection.as_ref())
            else {
                continue;
            };
            if let Some(b) = top.boundary.as_ref() {
                if let Ok(v) = ScalarValue::try_from_array(b, 0) {
                    bounds.push(v);
                }
            }
            let rows = top.docs.len() as usize;
            *u = ScanUnit::Sealed {
                segment: segment.clone(),
                selection: Some(top.docs),
                rows,
            };
            changed = true;
        }
        if !changed {
            return None;
        }
        // The best n-th value any one segment holds: the answer's n-th is at least as good.
        let best = bounds.into_iter().reduce(|a, b| {
            let b_better = match b.partial_cmp(&a) {
                Some(o) if descending => o.is_gt(),
                Some(o) => o.is_lt(),
                None => false,
            };
            if b_better {
                b
            } else {
                a
            }
        });
        let reach = best.as_ref().and_then(literal).map(|lit| {
            let bound = Some((lit, true));
            if descending {
                Predicate::Range {
                    column: name.clone(),
                    low: bound,
                    high: None,
                }
            } else {
                Predicate::Range {
                    column: name.clone(),
                    low: None,
                    high: bound,
                }
            }
        });
        let mut kept = Vec::new();
        let mut records = self.record.lock();
        let rec = records.get_mut(self.record_index)?;
        let mut consuming = Vec::new();
        let mut refilter = Vec::new();
        let mut residual = Vec::new();
        for (i, u) in units.into_iter().enumerate() {
            let is_consuming = rec.partition_is_consuming.get(i).copied().unwrap_or(false);
            let out_of_reach = match (&u, &reach) {
                (ScanUnit::Sealed { segment, .. }, Some(p)) => !segment.can_match(p),
                _ => false,
            };
            let old_rows = self.units.get(i).map_or(0, ScanUnit::rows);
            rec.processed_docs = rec.processed_docs.saturating_sub(old_rows);
            if out_of_reach {
                rec.segments_processed = rec.segments_processed.saturating_sub(1);
                continue;
            }
            rec.processed_docs += u.rows();
            consuming.push(is_consuming);
            refilter.push(self.refilter.get(i).copied().unwrap_or(false));
            residual.push(self.residual.get(i).cloned().flatten());
            kept.push((u, self.names.get(i).cloned().unwrap_or_default()));
        }
        if kept.is_empty() {
            kept.push((ScanUnit::Batches(Vec::new()), String::new()));
            consuming.push(false);
            refilter.push(false);
            residual.push(None);
        }
        rec.partition_is_consuming = consuming;
        let (units, names): (Vec<_>, Vec<_>) = kept.into_iter().unzip();
        let props = Arc::new(PlanProperties::new(
            EquivalenceProperties::new(self.schema.clone()),
            Partitioning::UnknownPartitioning(units.len()),
            EmissionType::Incremental,
            Boundedness::Bounded,
        ));
        Some(SegmentScanExec {
            residual,
            refilter,
            distinct: self.distinct,
            fills: self.fills.clone(),
            units,
            names,
            read: self.read.clone(),
            read_schema: self.read_schema.clone(),
            sources: self.sources.clone(),
            projection: self.projection.clone(),
            schema: self.schema.clone(),
            props,
            record_index: self.record_index,
            record: self.record.clone(),
            table_columns: self.table_columns.clone(),
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

impl DisplayAs for SegmentScanExec {
    fn fmt_as(&self, _t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        let sealed = self
            .units
            .iter()
            .filter(|u| matches!(u, ScanUnit::Sealed { .. }))
            .count();
        write!(
            f,
            "SegmentScanExec: segments={}, sealed={sealed}, projection={:?}",
            self.units.len(),
            self.projection
        )?;
        if self.distinct {
            write!(f, ", distinct_values")?;
        }
        Ok(())
    }
}

/// Batches of `rows` rows and no columns (what `COUNT(*)` reads).
fn row_count_batches(schema: &SchemaRef, rows: usize) -> DfResult<Vec<RecordBatch>> {
    let mut out = Vec::new();
    let mut left = rows;
    while left > 0 {
        let n = left.min(READ_BATCH_ROWS);
        out.push(RecordBatch::try_new_with_options(
            schema.clone(),
            Vec::new(),
            &RecordBatchOptions::new().with_row_count(Some(n)),
        )?);
        left -= n;
    }
    Ok(out)
}

fn read_unit(
    unit: ScanUnit,
    projection: Option<Vec<usize>>,
    schema: SchemaRef,
) -> DfResult<Vec<RecordBatch>> {
    match unit {
        ScanUnit::Batches(batches) => match &projection {
            Some(p) => batches
                .iter()
                .map(|b| b.project(p).map_err(DataFusionError::from))
                .collect(),
            None => Ok(batches),
        },
        ScanUnit::Sealed {
            segment,
            selection,
            rows,
        } => {
            if projection.as_ref().is_some_and(|p| p.is_empty()) {
                return row_count_batches(&schema, rows);
            }
            // Every column the query knows: a segment opened again with columns added
            // after the query began has more.
            let projection = projection.or_else(|| Some((0..schema.fields().len()).collect()));
            segment
                .read(projection.as_deref(), selection.as_ref(), READ_BATCH_ROWS)
                .map_err(df_err)
        }
    }
}

/// Every null of the batches' columns replaced by the column's default (`fills`, one entry
/// per column), keeping the batches' schema.
pub(crate) fn fill_nulls(
    read: Vec<RecordBatch>,
    fills: &[Option<ArrayRef>],
) -> DfResult<Vec<RecordBatch>> {
    read.into_iter()
        .map(|b| {
            if (0..b.num_columns()).all(|i| b.column(i).null_count() == 0) {
                return Ok(b);
            }
            let cols = b
                .columns()
                .iter()
                .zip(fills)
                .map(|(a, f)| match f {
                    Some(d) => riffle_segment::fill_nulls(a, d).map_err(DataFusionError::from),
                    None => Ok(a.clone()),
                })
                .collect::<DfResult<Vec<_>>>()?;
            Ok(RecordBatch::try_new_with_options(
                b.schema(),
                cols,
                &RecordBatchOptions::new().with_row_count(Some(b.num_rows())),
            )?)
        })
        .collect()
}

impl ExecutionPlan for SegmentScanExec {
    fn name(&self) -> &str {
        "SegmentScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.props
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn with_new_children(
        self: Arc<Self>,
        _children: Vec<Arc<dyn ExecutionPlan>>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn apply_expressions(
        &self,
        _f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> DfResult<TreeNodeRecursion>,
    ) -> DfResult<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn execute(
        &self,
        partition: usize,
        _context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let unit =
            self.units.get(partition).cloned().ok_or_else(|| {
                DataFusionError::Internal(format!("no scan partition {partition}"))
            })?;
        let rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let schema = self.schema.clone();
        // A unit that cannot answer the filters exactly reads the filtered columns too.
        let residual = self
            .residual
            .get(partition)
            .cloned()
            .flatten()
            .filter(|_| self.refilter.get(partition).copied().unwrap_or(false));
        // The distinct values of a sealed segment stand for its selected docs.
        let distinct = (self.distinct && residual.is_none())
            .then(|| match &unit {
                ScanUnit::Sealed {
                    segment,
                    selection,
                    rows,
                } => Some((
                    segment.clone(),
                    selection.clone(),
                    *rows,
                    self.read.as_ref()?.first().copied()?,
                )),
                ScanUnit::Batches(_) => None,
            })
            .flatten();
        let (projection, read_schema, fills) = match &residual {
            Some(r) => (Some(r.columns.clone()), r.schema.clone(), r.fills.clone()),
            None => (
                self.read.clone(),
                self.read_schema.clone(),
                self.fills.clone(),
            ),
        };
        let virtuals = self.sources.clone().map(|sources| {
            let docs = match &unit {
                ScanUnit::Sealed {
                    selection: Some(sel),
                    ..
                } => crate::virtual_columns::DocIds::Selected(sel.clone()),
                _ => crate::virtual_columns::DocIds::All,
            };
            let name = self.names.get(partition).cloned().unwrap_or_default();
            (sources, docs, name, schema.clone())
        });
        let batches = futures::stream::once(async move {
            if let Some((segment, selection, docs, column)) = distinct {
                let values = tokio::task::spawn_blocking(move || {
                    segment.distinct_values(column, selection.as_ref())
                })
                .await
                .map_err(|e| DataFusionError::Execution(format!("segment read failed: {e}")))?
                .map_err(df_err)?;
                if let Some(values) = values {
                    rows.add(docs);
                    return Ok(vec![RecordBatch::try_new(read_schema, vec![values])?]);
                }
                // Not from the dictionary: every row, as usual.
            }
            let read =
                match unit {
                    // In memory already: no need for the blocking pool.
                    ScanUnit::Batches(_) => read_unit(unit, projection, read_schema),
                    ScanUnit::Sealed { .. } => tokio::task::spawn_blocking(move || {
                        read_unit(unit, projection, read_schema)
                    })
                    .await
                    .map_err(|e| DataFusionError::Execution(format!("segment read failed: {e}")))?,
                }?;
            // The residual fills the defaults itself, after `IS NULL` saw the nulls.
            let read = match (fills, &residual) {
                (Some(f), None) => fill_nulls(read, &f)?,
                _ => read,
            };
            let (read, virtuals) = match (residual, virtuals) {
                (Some(r), Some((sources, docs, name, schema))) => {
                    let (read, kept) = apply_residual(read, &r, Some(&docs))?;
                    let docs = kept.unwrap_or(docs);
                    (read, Some((sources, docs, name, schema)))
                }
                (Some(r), None) => (apply_residual(read, &r, None)?.0, None),
                (None, v) => (read, v),
            };
            let out = match virtuals {
                Some((sources, docs, name, schema)) => {
                    crate::virtual_columns::attach(read, &sources, &schema, &name, docs)?
                }
                None => read,
            };
            rows.add(out.iter().map(RecordBatch::num_rows).sum());
            Ok(out)
        })
        .flat_map(|res: DfResult<Vec<RecordBatch>>| match res {
            Ok(v) => futures::stream::iter(v.into_iter().map(Ok).collect::<Vec<_>>()),
            Err(e) => futures::stream::iter(vec![Err(e)]),
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        let (rows, exact) = match args.partition() {
            Some(p) => (
                self.units.get(p).map_or(0, ScanUnit::rows),
                !self.refilter.get(p).copied().unwrap_or(false),
            ),
            None => (
                self.units.iter().map(ScanUnit::rows).sum(),
                !self.refilter.iter().any(|r| *r),
            ),
        };
        let mut st = Statistics::new_unknown(&self.schema);
        // A unit the residual filters returns fewer rows than it holds.
        st.num_rows = if exact {
            Precision::Exact(rows)
        } else {
            Precision::Inexact(rows)
        };
        Ok(Arc::new(st))
    }
}
