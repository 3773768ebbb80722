//! The segments of every table, as queries see them.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use arrow::record_batch::RecordBatch;
use parking_lot::RwLock;

use crate::columns::TableColumns;
use crate::consuming::ConsumingSegment;
use crate::sealed::SealedSegment;

/// A segment of a table, whatever its state.
#[derive(Clone, Debug)]
pub enum SegmentRef {
    /// Being consumed into, in memory.
    Consuming(Arc<ConsumingSegment>),
    /// Sealed and committed: immutable, on disk.
    Sealed(Arc<SealedSegment>),
}

impl SegmentRef {
    /// Segment name.
    pub fn name(&self) -> &str {
        match self {
            SegmentRef::Consuming(s) => &s.name,
            SegmentRef::Sealed(s) => s.name(),
        }
    }

    /// Rows visible now.
    pub fn num_rows(&self) -> usize {
        match self {
            SegmentRef::Consuming(s) => s.snapshot().num_rows,
            SegmentRef::Sealed(s) => s.num_rows(),
        }
    }

    /// Whether this is a consuming segment.
    pub fn is_consuming(&self) -> bool {
        matches!(self, SegmentRef::Consuming(_))
    }
}

/// A snapshot of one segment's rows for a query.
#[derive(Clone, Debug)]
pub struct SegmentRows {
    /// Segment name.
    pub name: String,
    /// Whether the segment is consuming.
    pub consuming: bool,
    /// Rows.
    pub batches: Vec<RecordBatch>,
    /// Row count.
    pub num_rows: usize,
    /// Latest event time of a consuming segment (ms), 0 otherwise.
    pub latest_event_ms: i64,
}

impl SegmentRef {
    /// The rows visible now (all of them: a sealed segment is read in full).
    pub fn rows(&self) -> Result<SegmentRows, crate::SegmentError> {
        match self {
            SegmentRef::Consuming(s) => {
                let snap = s.snapshot();
                Ok(SegmentRows {
                    name: s.name.clone(),
                    consuming: true,
                    batches: snap.batches.clone(),
                    num_rows: snap.num_rows,
                    latest_event_ms: snap.latest_event_ms,
                })
            }
            SegmentRef::Sealed(s) => Ok(SegmentRows {
                name: s.name().to_string(),
                consuming: false,
                batches: s.read(None, None, 65_536)?,
                num_rows: s.num_rows(),
                latest_event_ms: 0,
            }),
        }
    }
}

/// One table's segments.
#[derive(Debug)]
pub struct TableData {
    /// Raw table name.
    pub name: String,
    /// Columns.
    pub columns: Arc<TableColumns>,
    /// The time column, if any.
    pub time_column: Option<String>,
    segments: RwLock<BTreeMap<String, SegmentRef>>,
    /// Committed segments this server could not load, with why: their rows are missing
    /// from queries, which say so.
    unavailable: RwLock<BTreeMap<String, String>>,
}

impl TableData {
    /// An empty table.
    pub fn new(name: &str, columns: Arc<TableColumns>, time_column: Option<String>) -> TableData {
        TableData {
            name: name.to_string(),
            columns,
            time_column,
            segments: RwLock::new(BTreeMap::new()),
            unavailable: RwLock::new(BTreeMap::new()),
        }
    }

    /// Records that committed segment `name` could not be loaded, and why.
    pub fn set_unavailable(&self, name: &str, reason: String) {
        self.unavailable.write().insert(name.to_string(), reason);
    }

    /// Committed segments that could not be loaded, with why.
    pub fn unavailable(&self) -> BTreeMap<String, String> {
        self.unavailable.read().clone()
    }

    /// Adds or replaces a segment.
    pub fn put_segment(&self, seg: SegmentRef) {
        self.segments.write().insert(seg.name().to_string(), seg);
    }

    /// Removes a segment.
    pub fn remove_segment(&self, name: &str) -> Option<SegmentRef> {
        self.unavailable.write().remove(name);
        self.segments.write().remove(name)
    }

    /// Replaces `old` by `new` in one step: no reader sees both or neither.
    pub fn swap_segment(&self, old: &str, new: SegmentRef) {
        let mut g = self.segments.write();
        g.remove(old);
        riffle_common::failpoint("registry.during_swap");
        g.insert(new.name().to_string(), new);
    }

    /// A segment by name.
    pub fn segment(&self, name: &str) -> Option<SegmentRef> {
        self.segments.read().get(name).cloned()
    }

    /// All segments now, sorted by name.
    pub fn segments(&self) -> Vec<SegmentRef> {
        self.segments.read().values().cloned().collect()
    }
}

/// Every table's segments, by raw table name.
#[derive(Debug, Default)]
pub struct SegmentRegistry {
    tables: RwLock<HashMap<String, Arc<TableData>>>,
}

impl SegmentRegistry {
    /// An empty registry.
    pub fn new() -> SegmentRegistry {
        SegmentRegistry::default()
    }

    /// Adds a table (replacing one of the same name).
    pub fn add_table(&self, table: Arc<TableData>) {
        self.tables.write().insert(table.name.clone(), table);
    }

    /// Removes a table.
    pub fn remove_table(&self, name: &str) -> Option<Arc<TableData>> {
        self.tables.write().remove(name)
    }

    /// A table by raw name.
    pub fn table(&self, name: &str) -> Option<Arc<TableData>> {
        self.tables.read().get(name).cloned()
    }

    /// Raw names of all tables, sorted.
    pub fn table_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self.tables.read().keys().cloned().collect();
        v.sort();
        v
    }
}
