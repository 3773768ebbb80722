//! Parquet and ORC files, through the Arrow ecosystem's readers (`parquet`, `orc-rust`):
//! only the columns the table needs are read (root fields matched by name), batch by batch.
//! A panic inside the ORC reader (a malformed file it does not check) is caught and
//! reported as the file's error. Batches go into the builders through `arrow_cells.rs`:
//! column by column when every array already has its column's type (or a narrower
//! integer or float), else cell by cell with the decoders' conversions.

use std::fs::File;
use std::sync::Arc;

use arrow::array::{ArrayRef, RecordBatch};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use riffle_segment::{BlockBuilder, TableColumns};

use super::arrow_cells::{copies_as_is, normalize, put_column, put_row};
use super::{FileName, RecordReader};
use crate::json::field_map;
use crate::{DecodeError, DecodeTarget};

/// Rows per batch read from the file.
const BATCH_ROWS: usize = 8192;

/// The columnar formats read through Arrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Columnar {
    /// Apache Parquet.
    Parquet,
    /// Apache ORC.
    Orc,
}

type Batches = Box<dyn Iterator<Item = Result<RecordBatch, String>> + Send>;

pub(super) struct ArrowFileReader {
    file: FileName,
    kind: Columnar,
    columns: Arc<TableColumns>,
    fields: std::collections::HashMap<String, usize>,
    reader: Batches,
    batch: Option<RecordBatch>,
    /// For the current batch: (array, destination).
    cells: Vec<(ArrayRef, usize)>,
    /// Whether every cell of the current batch goes into its column as it is (see
    /// [`copies_as_is`]), so the batch is copied column by column.
    columnar: bool,
    batch_pos: usize,
    record: u64,
}

impl ArrowFileReader {
    pub(super) fn open(
        file: FileName,
        kind: Columnar,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<ArrowFileReader, DecodeError> {
        let fields = field_map(columns, &target.extras);
        let reader = Self::reader(&file, kind, &fields)?;
        Ok(ArrowFileReader {
            file,
            kind,
            columns: columns.clone(),
            fields,
            reader,
            batch: None,
            cells: Vec::new(),
            columnar: false,
            batch_pos: 0,
            record: 0,
        })
    }

    fn reader(
        file: &FileName,
        kind: Columnar,
        fields: &std::collections::HashMap<String, usize>,
    ) -> Result<Batches, DecodeError> {
        match kind {
            Columnar::Parquet => {
                let r = Self::parquet(file, fields)?;
                Ok(Box::new(r.map(|b| b.map_err(|e| e.to_string()))))
            }
            Columnar::Orc => Self::orc(file, fields),
        }
    }

    fn orc(
        file: &FileName,
        fields: &std::collections::HashMap<String, usize>,
    ) -> Result<Batches, DecodeError> {
        let f = File::open(&file.0).map_err(|e| file.error(e))?;
        let names: Vec<String> = fields.keys().cloned().collect();
        let built = std::panic::catch_unwind(move || {
            orc_rust::arrow_reader::ArrowReaderBuilder::try_new(f).map(|b| {
                let mask = orc_rust::projection::ProjectionMask::named_roots(
                    b.file_metadata().root_data_type(),
                    &names,
                );
                b.with_projection(mask).with_batch_size(BATCH_ROWS).build()
            })
        });
        let reader = match built {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => return Err(file.error(format!("not a readable ORC file: {e}"))),
            Err(_) => return Err(file.error("not a readable ORC file (the reader failed)")),
        };
        let mut reader = Some(reader);
        Ok(Box::new(std::iter::from_fn(move || {
            let r = reader.as_mut()?;
            match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| r.next())) {
                Ok(Some(Ok(b))) => Some(Ok(b)),
                Ok(Some(Err(e))) => Some(Err(e.to_string())),
                Ok(None) => None,
                Err(_) => {
                    reader = None;
                    Some(Err("the ORC reader failed on malformed data".into()))
                }
            }
        })))
    }

    fn parquet(
        file: &FileName,
        fields: &std::collections::HashMap<String, usize>,
    ) -> Result<ParquetRecordBatchReader, DecodeError> {
        let f = File::open(&file.0).map_err(|e| file.error(e))?;
        let b = ParquetRecordBatchReaderBuilder::try_new(f)
            .map_err(|e| file.error(format!("not a readable Parquet file: {e}")))?;
        let wanted: Vec<usize> = b
            .schema()
            .fields()
            .iter()
            .enumerate()
            .filter(|(_, f)| fields.contains_key(f.name()))
            .map(|(i, _)| i)
            .collect();
        let mask = ProjectionMask::roots(b.parquet_schema(), wanted);
        b.with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| file.error(format!("not a readable Parquet file: {e}")))
    }

    /// Loads the next batch; false at the end.
    fn next_batch(&mut self) -> Result<bool, DecodeError> {
        let Some(batch) = self.reader.next() else {
            return Ok(false);
        };
        let what = match self.kind {
            Columnar::Parquet => "Parquet",
            Columnar::Orc => "ORC",
        };
        let batch = batch.map_err(|e| {
            self.file
                .error(format!("{what} data after record {}: {e}", self.record))
        })?;
        let n = self.columns.columns.len();
        let mut cells = Vec::new();
        for (i, f) in batch.schema().fields().iter().enumerate() {
            let Some(&dest) = self.fields.get(f.name()) else {
                continue;
            };
            let target = (dest < n).then(|| self.columns.physical[dest]);
            let a = normalize(batch.column(i), target)
                .map_err(|e| self.file.error(format!("column '{}': {e}", f.name())))?;
            cells.push((a, dest));
        }
        let mut dests: Vec<usize> = cells.iter().map(|(_, d)| *d).collect();
        dests.sort_unstable();
        dests.dedup();
        self.columnar = dests.len() == cells.len()
            && cells.iter().all(|(a, dest)| {
                self.columns
                    .columns
                    .get(*dest)
                    .is_some_and(|c| c.single_value)
                    && copies_as_is(a.data_type(), self.columns.physical[*dest])
            });
        self.cells = cells;
        self.batch = Some(batch);
        self.batch_pos = 0;
        Ok(true)
    }
}

impl RecordReader for ArrowFileReader {
    fn read_rows(&mut self, out: &mut BlockBuilder, max: usize) -> Result<usize, DecodeError> {
        let columns = self.columns.columns.len();
        let mut n = 0;
        while n < max {
            let rows = self.batch.as_ref().map_or(0, RecordBatch::num_rows);
            if self.batch_pos >= rows {
                if !self.next_batch()? {
                    break;
                }
                continue;
            }
            if self.columnar {
                let k = (max - n).min(rows - self.batch_pos);
                for (a, dest) in &self.cells {
                    put_column(out, *dest, a.as_ref(), self.batch_pos, k);
                }
                out.end_rows(k);
                self.batch_pos += k;
                self.record += k as u64;
                n += k;
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
        self.reader = Self::reader(&self.file, self.kind, &self.fields)?;
        self.batch = None;
        self.cells.clear();
        self.columnar = false;
        self.batch_pos = 0;
        self.record = 0;
        Ok(())
    }
}
