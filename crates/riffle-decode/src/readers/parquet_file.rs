//! Parquet and ORC files, through the Arrow ecosystem's readers (`parquet`, `orc-rust`):
//! only the columns the table needs are read (root fields matched by name), batch by batch.
//! A panic inside the ORC reader (a malformed file it does not check) is caught and
//! reported as the file's error. Values go into the builders
//! with the decoders' conversions: numbers, text, booleans and bytes directly; timestamps
//! (any unit) as epoch milliseconds; dates as days, as midnight in a TIMESTAMP column, as
//! `yyyy-MM-dd` text in a STRING one (as the Avro decoder reads Avro's `date`); decimals as
//! their exact text; lists into multi-value columns; structs and maps as JSON text.

use std::fs::File;
use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, RecordBatch};
use arrow::datatypes::{DataType as A, TimeUnit};
use parquet::arrow::arrow_reader::{ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder};
use parquet::arrow::ProjectionMask;
use riffle_segment::{BlockBuilder, Physical, TableColumns};
use serde_json::Value;

use super::{one_record, FileName, RecordReader};
use crate::json::{field_map, put_bool, put_float, put_int, put_text, put_value};
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
        self.cells = cells;
        self.batch = Some(batch);
        self.batch_pos = 0;
        Ok(true)
    }
}

/// Casts what the builders cannot take as it is: timestamps and dates to epoch numbers,
/// decimals to text, dictionaries to their values.
pub(super) fn normalize(a: &ArrayRef, target: Option<Physical>) -> Result<ArrayRef, String> {
    let cast = |a: &ArrayRef, t: &A| arrow::compute::cast(a, t).map_err(|e| e.to_string());
    Ok(match a.data_type() {
        A::Dictionary(_, v) => normalize(&cast(a, v)?, target)?,
        A::Timestamp(unit, _) => {
            let ms = if *unit == TimeUnit::Millisecond {
                a.clone()
            } else {
                cast(a, &A::Timestamp(TimeUnit::Millisecond, None))?
            };
            cast(&ms, &A::Int64)?
        }
        A::Date64 => cast(a, &A::Int64)?,
        A::Date32 => match target {
            Some(Physical::Timestamp) => cast(&cast(a, &A::Date64)?, &A::Int64)?,
            Some(Physical::Str) => cast(a, &A::Utf8)?,
            _ => cast(a, &A::Int32)?,
        },
        A::Decimal32(..) | A::Decimal64(..) | A::Decimal128(..) | A::Decimal256(..) => {
            cast(a, &A::Utf8)?
        }
        _ => a.clone(),
    })
}

/// A cell as JSON, for multi-value columns, source fields and nested values.
fn json_of(a: &dyn Array, i: usize, depth: usize) -> Value {
    if a.is_null(i) || depth > 32 {
        return Value::Null;
    }
    use arrow::datatypes::*;
    macro_rules! num {
        ($t:ty) => {
            Value::from(a.as_primitive::<$t>().value(i))
        };
    }
    match a.data_type() {
        A::Boolean => Value::Bool(a.as_boolean().value(i)),
        A::Int8 => num!(Int8Type),
        A::Int16 => num!(Int16Type),
        A::Int32 => num!(Int32Type),
        A::Int64 => num!(Int64Type),
        A::UInt8 => num!(UInt8Type),
        A::UInt16 => num!(UInt16Type),
        A::UInt32 => num!(UInt32Type),
        A::UInt64 => num!(UInt64Type),
        A::Float32 => serde_json::Number::from_f64(a.as_primitive::<Float32Type>().value(i) as f64)
            .map_or(Value::Null, Value::Number),
        A::Float64 => serde_json::Number::from_f64(a.as_primitive::<Float64Type>().value(i))
            .map_or(Value::Null, Value::Number),
        A::Utf8 => Value::from(a.as_string::<i32>().value(i)),
        A::LargeUtf8 => Value::from(a.as_string::<i64>().value(i)),
        A::Utf8View => Value::from(a.as_string_view().value(i)),
        A::Binary => Value::from(riffle_common::hex_encode(a.as_binary::<i32>().value(i))),
        A::LargeBinary => Value::from(riffle_common::hex_encode(a.as_binary::<i64>().value(i))),
        A::List(_) => list_json(a.as_list::<i32>().value(i), depth),
        A::LargeList(_) => list_json(a.as_list::<i64>().value(i), depth),
        A::FixedSizeList(..) => list_json(a.as_fixed_size_list().value(i), depth),
        A::Struct(fields) => {
            let s = a.as_struct();
            Value::Object(
                fields
                    .iter()
                    .zip(s.columns())
                    .map(|(f, c)| (f.name().clone(), json_of(c.as_ref(), i, depth + 1)))
                    .collect(),
            )
        }
        A::Map(..) => {
            let m = a.as_map();
            let entries = m.value(i);
            let (k, v) = (entries.column(0), entries.column(1));
            Value::Object(
                (0..entries.len())
                    .map(|j| {
                        let key = match json_of(k.as_ref(), j, depth + 1) {
                            Value::String(s) => s,
                            other => other.to_string(),
                        };
                        (key, json_of(v.as_ref(), j, depth + 1))
                    })
                    .collect(),
            )
        }
        _ => arrow::util::display::array_value_to_string(a, i)
            .map(Value::String)
            .unwrap_or(Value::Null),
    }
}

fn list_json(items: ArrayRef, depth: usize) -> Value {
    Value::Array(
        (0..items.len())
            .map(|j| json_of(items.as_ref(), j, depth + 1))
            .collect(),
    )
}

/// One cell into its column (or source field), with the decoders' conversions.
fn put_cell(
    out: &mut BlockBuilder,
    dest: usize,
    columns: usize,
    a: &dyn Array,
    i: usize,
) -> Result<(), DecodeError> {
    if a.is_null(i) {
        return Ok(());
    }
    if dest >= columns {
        out.push_extra(dest - columns, json_of(a, i, 0));
        return Ok(());
    }
    out.unset(dest);
    if out.is_multi_value(dest) {
        return put_value(out, dest, json_of(a, i, 0));
    }
    use arrow::datatypes::*;
    macro_rules! int {
        ($t:ty) => {
            put_int(out, dest, a.as_primitive::<$t>().value(i) as i64, false)
        };
    }
    match a.data_type() {
        A::Boolean => put_bool(out, dest, a.as_boolean().value(i), false),
        A::Int8 => int!(Int8Type),
        A::Int16 => int!(Int16Type),
        A::Int32 => int!(Int32Type),
        A::Int64 => int!(Int64Type),
        A::UInt8 => int!(UInt8Type),
        A::UInt16 => int!(UInt16Type),
        A::UInt32 => int!(UInt32Type),
        A::UInt64 => {
            let v = a.as_primitive::<UInt64Type>().value(i);
            match i64::try_from(v) {
                Ok(x) => put_int(out, dest, x, false),
                Err(_) => put_float(out, dest, v as f64, false),
            }
        }
        A::Float32 => put_float(
            out,
            dest,
            a.as_primitive::<Float32Type>().value(i) as f64,
            false,
        ),
        A::Float64 => put_float(out, dest, a.as_primitive::<Float64Type>().value(i), false),
        A::Utf8 => put_text(out, dest, a.as_string::<i32>().value(i), false),
        A::LargeUtf8 => put_text(out, dest, a.as_string::<i64>().value(i), false),
        A::Utf8View => put_text(out, dest, a.as_string_view().value(i), false),
        A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_) => {
            let b: &[u8] = match a.data_type() {
                A::Binary => a.as_binary::<i32>().value(i),
                A::LargeBinary => a.as_binary::<i64>().value(i),
                A::BinaryView => a.as_binary_view().value(i),
                _ => a.as_fixed_size_binary().value(i),
            };
            if out.physical(dest) == Physical::Bin {
                out.push_bytes(dest, b);
                Ok(())
            } else {
                put_text(out, dest, &riffle_common::hex_encode(b), false)
            }
        }
        _ => put_value(out, dest, json_of(a, i, 0)),
    }
}

/// Row `i` of the current batch's `cells` (array, destination) as one record: every cell
/// with the decoders' conversions, or nothing of it and an error naming the column.
pub(super) fn put_row(
    file: &FileName,
    record: u64,
    out: &mut BlockBuilder,
    cells: &[(ArrayRef, usize)],
    columns: usize,
    i: usize,
) -> Result<(), DecodeError> {
    one_record(file, record, out, |o| {
        for (a, dest) in cells {
            put_cell(o, *dest, columns, a.as_ref(), i).map_err(|e| {
                let name = o
                    .columns()
                    .columns
                    .get(*dest)
                    .map_or("a source field", |c| c.name.as_str())
                    .to_string();
                DecodeError::new(format!("column '{name}': {}", e.message))
            })?;
        }
        Ok(())
    })
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
        self.batch_pos = 0;
        self.record = 0;
        Ok(())
    }
}
