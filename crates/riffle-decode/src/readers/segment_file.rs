//! Riffle's own sealed segments as input: opened with the columns they were written with,
//! read batch by batch, each cell put into the target columns with the same conversions as
//! Parquet's (a segment column of another type converts; a column the segment lacks reads
//! its default).

use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use riffle_segment::{BlockBuilder, LoadMode, SealedSegment, TableColumns};

use super::arrow_cells::{normalize, put_row};
use super::{FileName, RecordReader};
use crate::json::field_map;
use crate::{DecodeError, DecodeTarget};

/// Rows per batch read from the segment.
const BATCH_ROWS: usize = 8192;

pub(super) struct SegmentFileReader {
    file: FileName,
    columns: Arc<TableColumns>,
    /// Each segment column read: its position in the segment's columns and destination.
    wanted: Vec<(usize, usize)>,
    segment: SealedSegment,
    /// Next row of the segment to read into a batch.
    next_row: usize,
    /// Rows of the current batch.
    batch_rows: usize,
    cells: Vec<(ArrayRef, usize)>,
    batch_pos: usize,
    record: u64,
}

impl SegmentFileReader {
    pub(super) fn open(
        file: FileName,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<SegmentFileReader, DecodeError> {
        let segment = SealedSegment::open_standalone(&file.0, LoadMode::Mmap)
            .map_err(|e| file.error(format!("not a readable Riffle segment: {e}")))?;
        let fields = field_map(columns, &target.extras);
        let wanted = segment
            .columns()
            .columns
            .iter()
            .enumerate()
            .filter_map(|(i, c)| fields.get(&c.name).map(|d| (i, *d)))
            .collect();
        Ok(SegmentFileReader {
            file,
            columns: columns.clone(),
            wanted,
            segment,
            next_row: 0,
            batch_rows: 0,
            cells: Vec::new(),
            batch_pos: 0,
            record: 0,
        })
    }

    fn next_batch(&mut self) -> Result<bool, DecodeError> {
        let total = self.segment.num_rows();
        if self.next_row >= total {
            return Ok(false);
        }
        let end = (self.next_row + BATCH_ROWS).min(total);
        let mut cells = Vec::with_capacity(self.wanted.len());
        if !self.wanted.is_empty() {
            let docs: roaring::RoaringBitmap = (self.next_row as u32..end as u32).collect();
            let projection: Vec<usize> = self.wanted.iter().map(|(i, _)| *i).collect();
            let mut batches = self
                .segment
                .read(Some(&projection), Some(&docs), BATCH_ROWS)
                .map_err(|e| self.file.error(e))?;
            let batch: RecordBatch = if batches.len() == 1 {
                batches
                    .pop()
                    .ok_or_else(|| self.file.error("no rows read"))?
            } else {
                let schema = batches
                    .first()
                    .map(|b| b.schema())
                    .ok_or_else(|| self.file.error("no rows read"))?;
                arrow::compute::concat_batches(&schema, &batches).map_err(|e| self.file.error(e))?
            };
            if batch.num_rows() != end - self.next_row {
                return Err(self.file.error(format!(
                    "read {} rows where {} were expected",
                    batch.num_rows(),
                    end - self.next_row
                )));
            }
            let n = self.columns.columns.len();
            for (k, (_, dest)) in self.wanted.iter().enumerate() {
                let target = (*dest < n).then(|| self.columns.physical[*dest]);
                let a = normalize(batch.column(k), target).map_err(|e| self.file.error(e))?;
                cells.push((a, *dest));
            }
        }
        self.batch_rows = end - self.next_row;
        self.next_row = end;
        self.cells = cells;
        self.batch_pos = 0;
        Ok(true)
    }
}

impl RecordReader for SegmentFileReader {
    fn read_rows(&mut self, out: &mut BlockBuilder, max: usize) -> Result<usize, DecodeError> {
        let columns = self.columns.columns.len();
        let mut n = 0;
        while n < max {
            if self.batch_pos >= self.batch_rows {
                if !self.next_batch()? {
                    break;
                }
                continue;
            }
            let record = self.record + 1;
            let (cells, i) = (&self.cells, self.batch_pos);
            put_row(&self.file, record, out, cells, columns, i)?;
            self.batch_pos += 1;
            self.record = record;
            n += 1;
        }
        Ok(n)
    }

    fn rewind(&mut self) -> Result<(), DecodeError> {
        self.next_row = 0;
        self.batch_rows = 0;
        self.cells.clear();
        self.batch_pos = 0;
        self.record = 0;
        Ok(())
    }
}
