//! The segments of every table, as queries see them.

use std::collections::{BTreeMap, HashMap, HashSet};
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
    /// Columns (a column added to the schema is appended: the existing ones keep their
    /// positions, see [`TableData::evolve`]).
    columns: RwLock<Arc<TableColumns>>,
    /// Held while the columns change and while a sealed segment is swapped in, so that no
    /// segment opened with older columns lands after the change.
    evolving: parking_lot::Mutex<()>,
    /// The time column, if any.
    pub time_column: Option<String>,
    segments: RwLock<BTreeMap<String, SegmentRef>>,
    /// Committed segments this server could not load, with why: their rows are missing
    /// from queries, which say so.
    unavailable: RwLock<BTreeMap<String, String>>,
    /// Names of the segments that belong to the OFFLINE half of the table (pushed).
    offline: RwLock<HashSet<String>>,
    /// A hybrid table's time boundary, in the time column's own unit: OFFLINE segments
    /// answer for rows at or before it, REALTIME segments for rows after it.
    boundary: RwLock<Option<i64>>,
}

impl TableData {
    /// An empty table.
    pub fn new(name: &str, columns: Arc<TableColumns>, time_column: Option<String>) -> TableData {
        TableData {
            name: name.to_string(),
            columns: RwLock::new(columns),
            evolving: parking_lot::Mutex::new(()),
            time_column,
            segments: RwLock::new(BTreeMap::new()),
            unavailable: RwLock::new(BTreeMap::new()),
            offline: RwLock::new(HashSet::new()),
            boundary: RwLock::new(None),
        }
    }

    /// The table's columns now.
    pub fn columns(&self) -> Arc<TableColumns> {
        self.columns.read().clone()
    }

    /// Moves the table to new columns (the old ones first, in their order, then the added
    /// ones): each sealed segment is opened again with them (a column a segment lacks reads
    /// its default), then queries see the new columns. Consuming segments are moved by
    /// their writers ([`crate::ConsumingSegment::evolve`]); until then queries read their
    /// rows with the defaults filled in.
    pub fn evolve(
        &self,
        columns: Arc<TableColumns>,
        mode: riffle_config::LoadMode,
    ) -> Result<(), crate::SegmentError> {
        let _held = self.evolving.lock();
        let sealed: Vec<Arc<crate::SealedSegment>> = self
            .segments()
            .into_iter()
            .filter_map(|s| match s {
                SegmentRef::Sealed(s) => Some(s),
                SegmentRef::Consuming(_) => None,
            })
            .collect();
        for s in sealed {
            let again = crate::SealedSegment::open(s.path(), s.name(), columns.clone(), mode)?;
            let mut segs = self.segments.write();
            // A segment deleted meanwhile stays deleted.
            if let Some(slot) = segs.get_mut(s.name()) {
                *slot = SegmentRef::Sealed(Arc::new(again));
            }
        }
        *self.columns.write() = columns;
        Ok(())
    }

    /// Swaps a sealed segment in for consuming segment `old`, opening it again first if
    /// the table's columns changed since it was opened with `opened_with`.
    pub fn swap_sealed(
        &self,
        old: &str,
        seg: crate::SealedSegment,
        opened_with: &Arc<TableColumns>,
        mode: riffle_config::LoadMode,
    ) -> Result<(), crate::SegmentError> {
        let _held = self.evolving.lock();
        let now = self.columns();
        let seg = if Arc::ptr_eq(&now, opened_with) {
            seg
        } else {
            crate::SealedSegment::open(seg.path(), seg.name(), now, mode)?
        };
        self.swap_segment(old, SegmentRef::Sealed(Arc::new(seg)));
        Ok(())
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

    /// Adds or replaces a segment of the OFFLINE half (a pushed one): readers see the old
    /// segment or the new one, never both.
    pub fn put_offline_segment(&self, seg: SegmentRef) {
        let mut segs = self.segments.write();
        self.offline.write().insert(seg.name().to_string());
        self.unavailable.write().remove(seg.name());
        segs.insert(seg.name().to_string(), seg);
    }

    /// Whether segment `name` belongs to the OFFLINE half.
    pub fn is_offline(&self, name: &str) -> bool {
        self.offline.read().contains(name)
    }

    /// Removes every segment of one half of the table (its type stopped here).
    pub fn remove_half(&self, offline: bool) {
        let mut segs = self.segments.write();
        let mut off = self.offline.write();
        segs.retain(|name, _| off.contains(name) != offline);
        self.unavailable
            .write()
            .retain(|name, _| off.contains(name) != offline);
        if offline {
            off.clear();
        }
    }

    /// The hybrid time boundary (time-column units), if the table is a hybrid with OFFLINE
    /// data.
    pub fn time_boundary(&self) -> Option<i64> {
        *self.boundary.read()
    }

    /// Sets the hybrid time boundary (`None`: not a hybrid table, or no OFFLINE data yet).
    pub fn set_time_boundary(&self, boundary: Option<i64>) {
        *self.boundary.write() = boundary;
    }

    /// Removes a segment.
    pub fn remove_segment(&self, name: &str) -> Option<SegmentRef> {
        self.unavailable.write().remove(name);
        self.offline.write().remove(name);
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
