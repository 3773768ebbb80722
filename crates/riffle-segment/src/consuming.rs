//! The consuming (mutable) segment of one partition.
//!
//! Rows arrive as whole Arrow record batches (one per fetched stream batch) and are
//! published together with the offset to read next, by swapping one `Arc` snapshot. A reader
//! clones the snapshot and sees a consistent prefix: every row of a fetched batch or none of
//! them, never half a row, and an offset that matches exactly the rows it sees.
//!
//! Small batches are merged as they accumulate so that a segment fed one message at a time
//! does not hold millions of tiny batches: the number of chunks stays bounded by about
//! `rows / COMPACT_ROWS + COMPACT_CHUNKS`.

use std::sync::Arc;

use arrow::compute::concat_batches;
use arrow::record_batch::RecordBatch;
use parking_lot::RwLock;
use riffle_common::{PartitionId, StreamOffset};

use crate::columns::TableColumns;
use crate::SegmentError;

/// Batches smaller than this are merged with their neighbours.
const COMPACT_ROWS: usize = 8_192;
/// How many small batches may trail before they are merged.
const COMPACT_CHUNKS: usize = 16;

/// What readers see of a consuming segment.
#[derive(Clone, Debug)]
pub struct ConsumingSnapshot {
    /// The rows, in stream order.
    pub batches: Vec<RecordBatch>,
    /// Total rows.
    pub num_rows: usize,
    /// The offset to read next: every message before it is in `batches` (or was skipped).
    pub next_offset: StreamOffset,
    /// When rows were last indexed (epoch ms), 0 if never.
    pub last_indexed_ms: i64,
    /// Stream timestamp of the latest row, falling back to its index time (epoch ms); 0 if
    /// the segment is empty.
    pub latest_event_ms: i64,
    /// Messages read from the stream into this segment (including malformed ones).
    pub messages_read: u64,
    /// Bytes held by the batches.
    pub bytes: usize,
}

/// The in-memory segment a partition is consuming into.
#[derive(Debug)]
pub struct ConsumingSegment {
    /// Segment name.
    pub name: String,
    /// Partition.
    pub partition: PartitionId,
    /// Sequence number.
    pub sequence: u32,
    /// The first offset of the segment (stored in the catalog).
    pub start_offset: StreamOffset,
    /// Creation time (epoch ms).
    pub created_ms: i64,
    columns: RwLock<Arc<TableColumns>>,
    state: RwLock<Arc<ConsumingSnapshot>>,
}

impl ConsumingSegment {
    /// An empty segment starting at `start_offset`.
    pub fn new(
        name: String,
        partition: PartitionId,
        sequence: u32,
        start_offset: StreamOffset,
        created_ms: i64,
        columns: Arc<TableColumns>,
    ) -> ConsumingSegment {
        let snap = ConsumingSnapshot {
            batches: Vec::new(),
            num_rows: 0,
            next_offset: start_offset.clone(),
            last_indexed_ms: 0,
            latest_event_ms: 0,
            messages_read: 0,
            bytes: 0,
        };
        ConsumingSegment {
            name,
            partition,
            sequence,
            start_offset,
            created_ms,
            columns: RwLock::new(columns),
            state: RwLock::new(Arc::new(snap)),
        }
    }

    /// The table's columns.
    pub fn columns(&self) -> Arc<TableColumns> {
        self.columns.read().clone()
    }

    /// Moves the segment to a new version of the table's columns (a column added to the
    /// schema): the rows so far get the new columns' default values, and later batches
    /// come with the new columns. Called by the segment's single writer, between appends.
    pub fn evolve(&self, columns: Arc<TableColumns>) -> Result<(), SegmentError> {
        let defaults = columns.default_values()?;
        let current = self.snapshot();
        let mut next = (*current).clone();
        next.batches = current
            .batches
            .iter()
            .map(|b| crate::columns::widen(b, &columns, &defaults))
            .collect::<Result<_, _>>()?;
        next.bytes = next.batches.iter().map(|b| b.get_array_memory_size()).sum();
        *self.columns.write() = columns;
        *self.state.write() = Arc::new(next);
        Ok(())
    }

    /// The current snapshot (cheap: one `Arc` clone).
    pub fn snapshot(&self) -> Arc<ConsumingSnapshot> {
        self.state.read().clone()
    }

    /// Publishes `batch` (possibly empty) together with the offset to read next. Readers see
    /// the rows and the offset change at once.
    pub fn append(
        &self,
        batch: Option<RecordBatch>,
        next_offset: StreamOffset,
        messages_read: u64,
        latest_event_ms: Option<i64>,
        now_ms: i64,
    ) -> Result<(), SegmentError> {
        let current = self.snapshot();
        let mut next = (*current).clone();
        next.next_offset = next_offset;
        next.messages_read += messages_read;
        if let Some(b) = batch.filter(|b| b.num_rows() > 0) {
            next.num_rows += b.num_rows();
            next.bytes += b.get_array_memory_size();
            next.last_indexed_ms = now_ms;
            next.latest_event_ms = latest_event_ms.unwrap_or(now_ms).max(next.latest_event_ms);
            next.batches.push(b);
            compact(&mut next, &self.columns.read())?;
        }
        // Only this segment's single writer calls append, so nothing can have slipped in
        // between the read above and this write.
        *self.state.write() = Arc::new(next);
        Ok(())
    }
}

fn compact(snap: &mut ConsumingSnapshot, columns: &TableColumns) -> Result<(), SegmentError> {
    let small = snap
        .batches
        .iter()
        .rev()
        .take_while(|b| b.num_rows() < COMPACT_ROWS)
        .count();
    if small < COMPACT_CHUNKS {
        return Ok(());
    }
    let start = snap.batches.len() - small;
    let merged = concat_batches(&columns.arrow, &snap.batches[start..])
        .map_err(|e| SegmentError::internal(format!("merge consuming batches: {e}")))?;
    snap.batches.truncate(start);
    snap.bytes = snap
        .batches
        .iter()
        .map(|b| b.get_array_memory_size())
        .sum::<usize>()
        + merged.get_array_memory_size();
    snap.batches.push(merged);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::builder::BlockBuilder;
    use riffle_config::Schema;

    #[test]
    fn test_append_publishes_rows_and_offset_together() {
        let s = Schema::from_json(
            br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"}]}"#,
        )
        .unwrap();
        let cols = TableColumns::new(s.columns().unwrap());
        let seg = ConsumingSegment::new(
            "t__0__0__20240101T0000Z".into(),
            PartitionId(0),
            0,
            StreamOffset::Long(0),
            0,
            cols.clone(),
        );
        let mut b = BlockBuilder::new(cols, 4);
        for i in 0..1000 {
            b.push_i32(0, i);
            b.end_row();
            let batch = b.finish().unwrap();
            seg.append(Some(batch), StreamOffset::Long(i as i64 + 1), 1, None, 5)
                .unwrap();
        }
        let snap = seg.snapshot();
        assert_eq!(snap.num_rows, 1000);
        assert_eq!(snap.next_offset, StreamOffset::Long(1000));
        assert!(
            snap.batches.len() < COMPACT_CHUNKS + 1,
            "{}",
            snap.batches.len()
        );
        let total: usize = snap.batches.iter().map(|b| b.num_rows()).sum();
        assert_eq!(total, 1000);
        // Order is kept through merges.
        let first = snap.batches[0]
            .column(0)
            .as_any()
            .downcast_ref::<arrow::array::Int32Array>()
            .unwrap()
            .value(0);
        assert_eq!(first, 0);
    }
}
