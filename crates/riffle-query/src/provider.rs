//! The DataFusion table provider over a table's segments.
//!
//! Each non-empty segment is one partition of the scan, so per-segment statistics
//! (`numSegmentsMatched`) can be read back from the plan's metrics. Empty segments are
//! pruned before planning (`numSegmentsPrunedByServer`). Filters are not pushed down yet:
//! DataFusion applies them exactly above the scan.

use std::sync::Arc;

use std::fmt;

use arrow::datatypes::SchemaRef;
use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::Statistics;
use datafusion::datasource::memory::MemorySourceConfig;
use datafusion::datasource::{TableProvider, TableType};
use datafusion::error::Result as DfResult;
use datafusion::execution::TaskContext;
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::statistics::StatisticsArgs;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, SendableRecordBatchStream,
};
use futures::StreamExt;
use parking_lot::Mutex;
use riffle_segment::TableData;

/// What a scan saw of the table's segments, for the response statistics.
#[derive(Clone, Debug, Default)]
pub struct ScanRecord {
    /// Raw table name.
    pub table: String,
    /// Segments of the table at scan time.
    pub segments_queried: usize,
    /// Consuming segments among them.
    pub consuming_queried: usize,
    /// Segments scanned (non-empty).
    pub segments_processed: usize,
    /// Consuming segments scanned.
    pub consuming_processed: usize,
    /// Rows in all segments.
    pub total_docs: usize,
    /// Rows in the segments scanned.
    pub processed_docs: usize,
    /// For each scan partition: whether its segment is consuming.
    pub partition_is_consuming: Vec<bool>,
    /// Freshness of the consuming segments (min latest event time), if any.
    pub min_consuming_freshness_ms: Option<i64>,
}

/// A table as DataFusion sees it.
#[derive(Debug)]
pub struct SegmentTable {
    data: Arc<TableData>,
    schema: SchemaRef,
    record: Arc<Mutex<Vec<ScanRecord>>>,
}

impl SegmentTable {
    /// A provider recording what it scans into `record`.
    pub fn new(data: Arc<TableData>, record: Arc<Mutex<Vec<ScanRecord>>>) -> SegmentTable {
        let schema = data.columns.arrow.clone();
        SegmentTable {
            data,
            schema,
            record,
        }
    }
}

#[async_trait]
impl TableProvider for SegmentTable {
    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        _filters: &[Expr],
        _limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let mut rec = ScanRecord {
            table: self.data.name.clone(),
            ..Default::default()
        };
        let mut partitions = Vec::new();
        for seg in self.data.segments() {
            let rows = seg.rows();
            rec.segments_queried += 1;
            rec.total_docs += rows.num_rows;
            if rows.consuming {
                rec.consuming_queried += 1;
                let fresh = if rows.num_rows > 0 {
                    rows.latest_event_ms
                } else {
                    0
                };
                if fresh > 0 {
                    rec.min_consuming_freshness_ms = Some(
                        rec.min_consuming_freshness_ms
                            .map_or(fresh, |m: i64| m.min(fresh)),
                    );
                }
            }
            if rows.num_rows == 0 {
                continue;
            }
            rec.segments_processed += 1;
            rec.processed_docs += rows.num_rows;
            if rows.consuming {
                rec.consuming_processed += 1;
            }
            rec.partition_is_consuming.push(rows.consuming);
            partitions.push(rows.batches);
        }
        if partitions.is_empty() {
            // DataFusion needs at least one partition.
            partitions.push(Vec::new());
            rec.partition_is_consuming.push(false);
        }
        let record_index = {
            let mut r = self.record.lock();
            r.push(rec);
            r.len() - 1
        };
        let exec = MemorySourceConfig::try_new_exec(
            &partitions,
            self.schema.clone(),
            projection.cloned(),
        )?;
        Ok(Arc::new(SegmentScanExec {
            inner: exec,
            record_index,
            metrics: ExecutionPlanMetricsSet::new(),
        }))
    }
}

/// The scan of a table's segments: one partition per segment. It counts the rows it
/// returns per partition (the in-memory source keeps no metrics) and knows which
/// [`ScanRecord`] it belongs to, so the response statistics are exact.
#[derive(Debug)]
pub struct SegmentScanExec {
    inner: Arc<dyn ExecutionPlan>,
    /// Index of this scan's record.
    pub record_index: usize,
    metrics: ExecutionPlanMetricsSet,
}

impl DisplayAs for SegmentScanExec {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SegmentScanExec: ")?;
        self.inner.fmt_as(t, f)
    }
}

impl ExecutionPlan for SegmentScanExec {
    fn name(&self) -> &str {
        "SegmentScanExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.inner.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        // A leaf: the in-memory source inside is an implementation detail.
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
        context: Arc<TaskContext>,
    ) -> DfResult<SendableRecordBatchStream> {
        let stream = self.inner.execute(partition, context)?;
        let rows = MetricBuilder::new(&self.metrics).output_rows(partition);
        let schema = stream.schema();
        let counted = stream.inspect(move |b| {
            if let Ok(b) = b {
                rows.add(b.num_rows());
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, counted)))
    }

    fn metrics(&self) -> Option<MetricsSet> {
        Some(self.metrics.clone_inner())
    }

    fn statistics_from_inputs(
        &self,
        _input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> DfResult<Arc<Statistics>> {
        // The in-memory source is a leaf: it needs no input statistics.
        self.inner.statistics_from_inputs(&[], args)
    }
}
