//! Column builders that decoders write into directly, one value at a time.
//!
//! Unlike Arrow's builders these can take back the last value ([`BlockBuilder::pop`]), so a
//! decoder that fails half-way through a message rolls back the values it already wrote and
//! the block never holds a half-written row. [`BlockBuilder::finish`] turns the block into
//! an Arrow `RecordBatch` without copying the value buffers.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    ListArray, StringArray, TimestampMillisecondArray,
};
use arrow::buffer::{Buffer, OffsetBuffer, ScalarBuffer};
use arrow::datatypes::Field;
use arrow::record_batch::{RecordBatch, RecordBatchOptions};
use riffle_config::DefaultValue;

use crate::columns::{arrow_value_type, Physical, TableColumns};
use crate::SegmentError;

/// Values of one column (or of the items of a multi-value column).
#[derive(Debug, Clone)]
pub enum Values {
    /// INT.
    Int(Vec<i32>),
    /// LONG.
    Long(Vec<i64>),
    /// FLOAT.
    Float(Vec<f32>),
    /// DOUBLE.
    Double(Vec<f64>),
    /// BOOLEAN.
    Bool(Vec<bool>),
    /// TIMESTAMP (ms).
    Timestamp(Vec<i64>),
    /// Text: `offsets[i]..offsets[i+1]` into `data`.
    Str {
        /// Offsets, one more than values.
        offsets: Vec<i32>,
        /// UTF-8 bytes.
        data: Vec<u8>,
    },
    /// Bytes: same layout as text.
    Bin {
        /// Offsets, one more than values.
        offsets: Vec<i32>,
        /// Bytes.
        data: Vec<u8>,
    },
}

/// Bytes per row reserved for a text column of a builder's first block; later blocks
/// reserve what the block before them used.
const FIRST_BLOCK_TEXT_BYTES_PER_ROW: usize = 16;

impl Values {
    /// Room for `cap` values; text and bytes get `data` bytes of room for their values.
    fn new(p: Physical, cap: usize, data: usize) -> Values {
        let mut offsets = Vec::with_capacity(cap + 1);
        offsets.push(0);
        match p {
            Physical::Int => Values::Int(Vec::with_capacity(cap)),
            Physical::Long => Values::Long(Vec::with_capacity(cap)),
            Physical::Float => Values::Float(Vec::with_capacity(cap)),
            Physical::Double => Values::Double(Vec::with_capacity(cap)),
            Physical::Bool => Values::Bool(Vec::with_capacity(cap)),
            Physical::Timestamp => Values::Timestamp(Vec::with_capacity(cap)),
            Physical::Str => Values::Str {
                offsets,
                data: Vec::with_capacity(data),
            },
            Physical::Bin => Values::Bin {
                offsets,
                data: Vec::with_capacity(data),
            },
        }
    }

    /// Number of values.
    pub fn len(&self) -> usize {
        match self {
            Values::Int(v) => v.len(),
            Values::Long(v) | Values::Timestamp(v) => v.len(),
            Values::Float(v) => v.len(),
            Values::Double(v) => v.len(),
            Values::Bool(v) => v.len(),
            Values::Str { offsets, .. } | Values::Bin { offsets, .. } => offsets.len() - 1,
        }
    }

    /// Whether there are no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn truncate(&mut self, n: usize) {
        match self {
            Values::Int(v) => v.truncate(n),
            Values::Long(v) | Values::Timestamp(v) => v.truncate(n),
            Values::Float(v) => v.truncate(n),
            Values::Double(v) => v.truncate(n),
            Values::Bool(v) => v.truncate(n),
            Values::Str { offsets, data } | Values::Bin { offsets, data } => {
                if n + 1 < offsets.len() {
                    offsets.truncate(n + 1);
                    data.truncate(offsets[n] as usize);
                }
            }
        }
    }

    fn push_default(&mut self, d: &DefaultValue) {
        match (self, d) {
            (Values::Int(v), DefaultValue::Int(x)) => v.push(*x),
            (Values::Long(v) | Values::Timestamp(v), DefaultValue::Long(x)) => v.push(*x),
            (Values::Float(v), DefaultValue::Float(x)) => v.push(*x),
            (Values::Double(v), DefaultValue::Double(x)) => v.push(*x),
            (Values::Bool(v), DefaultValue::Boolean(x)) => v.push(*x),
            (Values::Str { offsets, data }, DefaultValue::String(s)) => {
                data.extend_from_slice(s.as_bytes());
                offsets.push(data.len() as i32);
            }
            (Values::Bin { offsets, data }, DefaultValue::Bytes(b)) => {
                data.extend_from_slice(b);
                offsets.push(data.len() as i32);
            }
            // The config crate converts defaults to the column type; anything else is a
            // zero value of the storage type.
            (Values::Int(v), _) => v.push(0),
            (Values::Long(v) | Values::Timestamp(v), _) => v.push(0),
            (Values::Float(v), _) => v.push(0.0),
            (Values::Double(v), _) => v.push(0.0),
            (Values::Bool(v), _) => v.push(false),
            (Values::Str { offsets, data } | Values::Bin { offsets, data }, _) => {
                offsets.push(data.len() as i32)
            }
        }
    }

    fn bytes(&self) -> usize {
        match self {
            Values::Int(v) => v.len() * 4,
            Values::Long(v) | Values::Timestamp(v) => v.len() * 8,
            Values::Float(v) => v.len() * 4,
            Values::Double(v) => v.len() * 8,
            Values::Bool(v) => v.len(),
            Values::Str { offsets, data } | Values::Bin { offsets, data } => {
                offsets.len() * 4 + data.len()
            }
        }
    }

    fn into_array(self) -> Result<ArrayRef, SegmentError> {
        Ok(match self {
            Values::Int(v) => Arc::new(Int32Array::new(ScalarBuffer::from(v), None)),
            Values::Long(v) => Arc::new(Int64Array::new(ScalarBuffer::from(v), None)),
            Values::Timestamp(v) => {
                Arc::new(TimestampMillisecondArray::new(ScalarBuffer::from(v), None))
            }
            Values::Float(v) => Arc::new(Float32Array::new(ScalarBuffer::from(v), None)),
            Values::Double(v) => Arc::new(Float64Array::new(ScalarBuffer::from(v), None)),
            Values::Bool(v) => Arc::new(BooleanArray::from(v)),
            Values::Str { offsets, data } => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(
                    StringArray::try_new(offsets, Buffer::from_vec(data), None)
                        .map_err(|e| SegmentError::internal(format!("build text column: {e}")))?,
                )
            }
            Values::Bin { offsets, data } => {
                let offsets = OffsetBuffer::new(ScalarBuffer::from(offsets));
                Arc::new(
                    BinaryArray::try_new(offsets, Buffer::from_vec(data), None)
                        .map_err(|e| SegmentError::internal(format!("build bytes column: {e}")))?,
                )
            }
        })
    }
}

/// One column under construction: single values, or lists of item values.
#[derive(Debug, Clone)]
pub struct ColumnBuilder {
    /// The values (the items, for a multi-value column).
    pub values: Values,
    /// For multi-value columns: `list_offsets[i]..list_offsets[i+1]` are row i's items.
    pub list_offsets: Option<Vec<i32>>,
    /// For a nullable column: the rows (in order) that got the default because the message
    /// had no value; they become the array's nulls (the default stays under them). A
    /// multi-value column is nullable only while staged for ingestion transforms.
    pub null_rows: Option<Vec<u32>>,
}

impl ColumnBuilder {
    fn rows(&self) -> usize {
        match &self.list_offsets {
            Some(o) => o.len() - 1,
            None => self.values.len(),
        }
    }
}

/// A block of rows under construction, one [`ColumnBuilder`] per table column.
///
/// Protocol for a decoder: for each message, write each column at most once with the
/// `push_*` methods (a multi-value column: [`BlockBuilder::push_list_start`], item pushes,
/// [`BlockBuilder::push_list_end`]); then [`BlockBuilder::end_row`] fills the columns the
/// message did not have with their default null value. On failure, call
/// [`BlockBuilder::abort_row`], which takes back what the message wrote.
#[derive(Debug)]
pub struct BlockBuilder {
    columns: Arc<TableColumns>,
    cols: Vec<ColumnBuilder>,
    rows: usize,
    /// Source fields outside the table's columns that ingestion transforms read: one
    /// value per finished row (`None` when the message lacked the field), kept as the
    /// decoder found them because their type is only known from the values.
    extras: Vec<Vec<Option<serde_json::Value>>>,
}

/// The source-only fields of a finished block ([`BlockBuilder::finish_with_extras`]), in
/// the order the builder was given their names; one value per row.
pub type ExtraValues = Vec<Vec<Option<serde_json::Value>>>;

impl BlockBuilder {
    /// An empty block with room for `capacity` rows.
    pub fn new(columns: Arc<TableColumns>, capacity: usize) -> BlockBuilder {
        let text = vec![capacity * FIRST_BLOCK_TEXT_BYTES_PER_ROW; columns.columns.len()];
        BlockBuilder::with_text_room(columns, capacity, &text, 0)
    }

    /// An empty block that also keeps `extras` source-only fields (see
    /// [`BlockBuilder::push_extra`]).
    pub fn with_extras(columns: Arc<TableColumns>, capacity: usize, extras: usize) -> BlockBuilder {
        let text = vec![capacity * FIRST_BLOCK_TEXT_BYTES_PER_ROW; columns.columns.len()];
        BlockBuilder::with_text_room(columns, capacity, &text, extras)
    }

    /// An empty block with room for `capacity` rows and `text[i]` bytes of text or bytes
    /// values in column `i`.
    fn with_text_room(
        columns: Arc<TableColumns>,
        capacity: usize,
        text: &[usize],
        extras: usize,
    ) -> BlockBuilder {
        let cols = columns
            .columns
            .iter()
            .zip(columns.physical.iter())
            .enumerate()
            .map(|(i, (c, p))| {
                let values = Values::new(*p, capacity, text.get(i).copied().unwrap_or(0));
                let list_offsets = (!c.single_value).then(|| {
                    let mut o = Vec::with_capacity(capacity + 1);
                    o.push(0);
                    o
                });
                ColumnBuilder {
                    values,
                    list_offsets,
                    null_rows: c.nullable.then(Vec::new),
                }
            })
            .collect();
        BlockBuilder {
            columns,
            cols,
            rows: 0,
            extras: (0..extras).map(|_| Vec::with_capacity(capacity)).collect(),
        }
    }

    /// Number of source-only fields kept.
    pub fn extra_count(&self) -> usize {
        self.extras.len()
    }

    /// Sets source-only field `j` of the current row (the last value wins).
    pub fn push_extra(&mut self, j: usize, v: serde_json::Value) {
        let rows = self.rows;
        if let Some(e) = self.extras.get_mut(j) {
            e.truncate(rows);
            e.push(Some(v));
        }
    }

    /// The table's columns.
    pub fn columns(&self) -> &Arc<TableColumns> {
        &self.columns
    }

    /// Finished rows in the block.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Whether column `i` already has a value for the current row.
    pub fn is_set(&self, i: usize) -> bool {
        self.cols[i].rows() > self.rows
    }

    /// Direct access to a column's values, for decoders that write typed values.
    pub fn values_mut(&mut self, i: usize) -> &mut Values {
        &mut self.cols[i].values
    }

    /// Takes back column `i`'s value of the current row, if it has one.
    pub fn unset(&mut self, i: usize) {
        if !self.is_set(i) {
            return;
        }
        let rows = self.rows;
        let c = &mut self.cols[i];
        match &mut c.list_offsets {
            Some(o) => {
                o.truncate(rows + 1);
                let keep = o[rows] as usize;
                c.values.truncate(keep);
            }
            None => c.values.truncate(rows),
        }
        if let Some(n) = &mut c.null_rows {
            if n.last() == Some(&(rows as u32)) {
                n.pop();
            }
        }
    }

    /// Writes the column's default null value for the current row.
    pub fn push_default(&mut self, i: usize) {
        // Borrowed, not cloned: a text default would be an allocation per row.
        let d = &self.columns.columns[i].default_null;
        let c = &mut self.cols[i];
        // The column's next row: the current row, or a later one of rows written column
        // by column ([`BlockBuilder::end_rows`]).
        let row = c.rows() as u32;
        if let Some(n) = &mut c.null_rows {
            n.push(row);
        }
        match &mut c.list_offsets {
            Some(o) => {
                // A missing multi-value field is a one-item list holding the default.
                c.values.push_default(d);
                o.push(c.values.len() as i32);
            }
            None => c.values.push_default(d),
        }
    }

    /// Pushes a default item into an open list of column `i`.
    pub fn push_default_item(&mut self, i: usize) {
        let d = &self.columns.columns[i].default_null;
        self.cols[i].values.push_default(d);
    }

    /// Opens the current row's list for multi-value column `i` (items follow).
    pub fn push_list_start(&mut self, _i: usize) {}

    /// Closes the current row's list for column `i`. An empty list gets the default value,
    /// as Pinot stores it.
    pub fn push_list_end(&mut self, i: usize) {
        let rows = self.rows;
        let d = &self.columns.columns[i].default_null;
        let c = &mut self.cols[i];
        if let Some(o) = &mut c.list_offsets {
            let start = o[rows] as usize;
            if c.values.len() == start {
                c.values.push_default(d);
            }
            o.push(c.values.len() as i32);
        }
    }

    /// Whether column `i` is multi-value.
    pub fn is_multi_value(&self, i: usize) -> bool {
        self.cols[i].list_offsets.is_some()
    }

    /// Ends the current row: every column not yet written gets its default.
    pub fn end_row(&mut self) {
        for i in 0..self.cols.len() {
            if !self.is_set(i) {
                self.push_default(i);
            }
        }
        for e in &mut self.extras {
            if e.len() == self.rows {
                e.push(None);
            }
        }
        self.rows += 1;
    }

    /// Ends `k` rows written column by column (a reader of columnar files): each column
    /// holds values (or [`BlockBuilder::push_default`]s) for a leading part of the `k` rows,
    /// pushed in row order; the rest get the column's default, as [`BlockBuilder::end_row`]
    /// gives a row's missing columns.
    pub fn end_rows(&mut self, k: usize) {
        let end = self.rows + k;
        for i in 0..self.cols.len() {
            while self.cols[i].rows() < end {
                self.push_default(i);
            }
        }
        for e in &mut self.extras {
            e.resize(end, None);
        }
        self.rows = end;
    }

    /// Takes back everything written for the current row.
    pub fn abort_row(&mut self) {
        for e in &mut self.extras {
            e.truncate(self.rows);
        }
        for i in 0..self.cols.len() {
            self.unset(i);
            // An open list may hold items without an end offset yet.
            let rows = self.rows;
            let c = &mut self.cols[i];
            if let Some(o) = &c.list_offsets {
                let keep = o[rows] as usize;
                c.values.truncate(keep);
            }
        }
    }

    /// Takes back every row from `rows` on (and the current row's values): the rows of a
    /// message that failed after some of its rows ended.
    pub fn rollback_to(&mut self, rows: usize) {
        let rows = rows.min(self.rows);
        for c in &mut self.cols {
            match &mut c.list_offsets {
                Some(o) => {
                    o.truncate(rows + 1);
                    let keep = o[rows] as usize;
                    c.values.truncate(keep);
                }
                None => c.values.truncate(rows),
            }
            if let Some(n) = &mut c.null_rows {
                n.retain(|r| (*r as usize) < rows);
            }
        }
        for e in &mut self.extras {
            e.truncate(rows);
        }
        self.rows = rows;
    }

    /// Approximate bytes held.
    pub fn bytes(&self) -> usize {
        self.cols
            .iter()
            .map(|c| c.values.bytes() + c.list_offsets.as_ref().map_or(0, |o| o.len() * 4))
            .sum()
    }

    /// Turns the block into a record batch (no copy of value buffers) and leaves the
    /// builder empty, ready for the next block.
    pub fn finish(&mut self) -> Result<RecordBatch, SegmentError> {
        self.finish_with_extras().map(|(batch, _)| batch)
    }

    /// [`BlockBuilder::finish`], also handing over the source-only fields' values.
    pub fn finish_with_extras(&mut self) -> Result<(RecordBatch, ExtraValues), SegmentError> {
        let rows = self.rows;
        // The next block is sized like this one: as many rows, and for text and bytes the
        // bytes this block's values took plus an eighth (reserving a fixed amount per row
        // left a third of a segment's memory unused, or doubled buffers of longer text).
        let text: Vec<usize> = self
            .cols
            .iter()
            .map(|c| match &c.values {
                Values::Str { data, .. } | Values::Bin { data, .. } => {
                    let used = data.len().saturating_mul(rows.max(16)) / rows.max(1);
                    used + used / 8 + 64
                }
                _ => 0,
            })
            .collect();
        let fresh = BlockBuilder::with_text_room(
            self.columns.clone(),
            rows.max(16),
            &text,
            self.extras.len(),
        );
        let old = std::mem::replace(self, fresh);
        let extras = old.extras;
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(old.cols.len());
        for (i, c) in old.cols.into_iter().enumerate() {
            let values = c.values.into_array()?;
            match c.list_offsets {
                None => arrays.push(match c.null_rows {
                    Some(n) if !n.is_empty() => with_nulls(values, &n, rows)?,
                    _ => values,
                }),
                Some(o) => {
                    let item = Field::new(
                        "item",
                        arrow_value_type(old.columns.columns[i].data_type),
                        true,
                    );
                    let nulls = c.null_rows.filter(|n| !n.is_empty()).map(|n| {
                        let mut bits = arrow::array::BooleanBufferBuilder::new(rows);
                        bits.append_n(rows, true);
                        for r in n.iter().map(|r| *r as usize).filter(|r| *r < rows) {
                            bits.set_bit(r, false);
                        }
                        arrow::buffer::NullBuffer::new(bits.finish())
                    });
                    let list = ListArray::try_new(
                        Arc::new(item),
                        OffsetBuffer::new(ScalarBuffer::from(o)),
                        values,
                        nulls,
                    )
                    .map_err(|e| SegmentError::internal(format!("build list column: {e}")))?;
                    arrays.push(Arc::new(list));
                }
            }
        }
        let batch = RecordBatch::try_new_with_options(
            old.columns.arrow.clone(),
            arrays,
            &RecordBatchOptions::new().with_row_count(Some(rows)),
        )
        .map_err(|e| SegmentError::internal(format!("build record batch: {e}")))?;
        Ok((batch, extras))
    }
}

/// `values` with `null_rows` marked null.
fn with_nulls(values: ArrayRef, null_rows: &[u32], rows: usize) -> Result<ArrayRef, SegmentError> {
    // Every row null (a column only transforms fill, staged before they run): no bit by bit.
    let nulls = if rows > 0
        && null_rows.len() == rows
        && null_rows.last().map(|r| *r as usize) == Some(rows - 1)
    {
        arrow::buffer::NullBuffer::new_null(rows)
    } else {
        let mut bits = arrow::array::BooleanBufferBuilder::new(rows);
        bits.append_n(rows, true);
        for r in null_rows.iter().map(|r| *r as usize).filter(|r| *r < rows) {
            bits.set_bit(r, false);
        }
        arrow::buffer::NullBuffer::new(bits.finish())
    };
    let data = values
        .to_data()
        .into_builder()
        .nulls(Some(nulls))
        .build()
        .map_err(|e| SegmentError::internal(format!("mark nulls: {e}")))?;
    Ok(arrow::array::make_array(data))
}

macro_rules! push_fn {
    ($name:ident, $t:ty, $variant:ident) => {
        /// Pushes a value for column `i` (or an item into its open list). The caller has
        /// checked the column's storage type; a mismatch is ignored with a debug assertion.
        pub fn $name(&mut self, i: usize, v: $t) {
            let c = &mut self.cols[i];
            if let Values::$variant(vec) = &mut c.values {
                vec.push(v);
            } else {
                debug_assert!(false, "type mismatch pushing to column {i}");
            }
        }
    };
}

impl BlockBuilder {
    push_fn!(push_i32, i32, Int);
    push_fn!(push_i64, i64, Long);
    push_fn!(push_f32, f32, Float);
    push_fn!(push_f64, f64, Double);
    push_fn!(push_bool, bool, Bool);
    push_fn!(push_timestamp, i64, Timestamp);

    /// Pushes text for column `i` (or an item into its open list).
    pub fn push_str(&mut self, i: usize, s: &str) {
        if let Values::Str { offsets, data } = &mut self.cols[i].values {
            data.extend_from_slice(s.as_bytes());
            offsets.push(data.len() as i32);
        } else {
            debug_assert!(false, "type mismatch pushing text to column {i}");
        }
    }

    /// Pushes bytes for column `i` (or an item into its open list).
    pub fn push_bytes(&mut self, i: usize, b: &[u8]) {
        if let Values::Bin { offsets, data } = &mut self.cols[i].values {
            data.extend_from_slice(b);
            offsets.push(data.len() as i32);
        } else {
            debug_assert!(false, "type mismatch pushing bytes to column {i}");
        }
    }

    /// The storage kind of column `i`.
    pub fn physical(&self, i: usize) -> Physical {
        self.columns.physical[i]
    }

    /// The value count of an open list of column `i` in the current row.
    pub fn open_list_len(&self, i: usize) -> usize {
        let c = &self.cols[i];
        match &c.list_offsets {
            Some(o) => c.values.len() - o[self.rows] as usize,
            None => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::Array;
    use riffle_config::Schema;

    fn cols() -> Arc<TableColumns> {
        let s = Schema::from_json(
            br#"{"schemaName":"t","dimensionFieldSpecs":[{"name":"a","dataType":"INT"},
            {"name":"s","dataType":"STRING"},{"name":"mv","dataType":"LONG","singleValueField":false}],
            "metricFieldSpecs":[{"name":"m","dataType":"DOUBLE"}]}"#,
        )
        .unwrap();
        TableColumns::new(s.columns().unwrap())
    }

    /// The text buffer held by column `i` of a batch: (bytes used, bytes allocated).
    fn text_buffer(batch: &RecordBatch, i: usize) -> (usize, usize) {
        let s = batch
            .column(i)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        let data = s.to_data();
        (s.values().len(), data.buffers()[1].capacity())
    }

    #[test]
    fn test_later_blocks_reserve_the_text_the_block_before_used() {
        let fill = |b: &mut BlockBuilder, text: &str| {
            for _ in 0..1000 {
                b.push_str(1, text);
                b.end_row();
            }
            b.finish().unwrap()
        };
        let mut b = BlockBuilder::new(cols(), 1000);
        // The first block reserves a fixed amount per row.
        let first = fill(&mut b, "six by");
        assert_eq!(text_buffer(&first, 1), (6000, 16_000));
        // The next one what the first used, plus an eighth: short text wastes little...
        let second = fill(&mut b, "six by");
        let (used, held) = text_buffer(&second, 1);
        assert_eq!(used, 6000);
        assert!((6000..=6000 + 750 + 64 + 64).contains(&held), "{held}");
        // ...and longer text does not double the buffer.
        let _ = fill(&mut b, "a 36-byte identifier, like a uuid...");
        let fourth = fill(&mut b, "a 36-byte identifier, like a uuid...");
        let (used, held) = text_buffer(&fourth, 1);
        assert_eq!(used, 36_000);
        assert!(held < 36_000 * 5 / 4, "{held}");
    }

    #[test]
    fn test_rows_defaults_and_abort() {
        let mut b = BlockBuilder::new(cols(), 4);
        b.push_i32(0, 7);
        b.push_str(1, "x");
        b.push_list_start(2);
        b.push_i64(2, 1);
        b.push_i64(2, 2);
        b.push_list_end(2);
        b.end_row();
        // A half-written row is taken back.
        b.push_i32(0, 9);
        b.push_str(1, "partial");
        b.push_list_start(2);
        b.push_i64(2, 5);
        b.abort_row();
        // A row with nothing gets defaults.
        b.end_row();
        let batch = b.finish().unwrap();
        assert_eq!(batch.num_rows(), 2);
        let a = batch
            .column(0)
            .as_any()
            .downcast_ref::<Int32Array>()
            .unwrap();
        assert_eq!(a.values(), &[7, i32::MIN]);
        let s = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(s.value(0), "x");
        assert_eq!(s.value(1), "null");
        let mv = batch
            .column(2)
            .as_any()
            .downcast_ref::<ListArray>()
            .unwrap();
        assert_eq!(mv.value(0).len(), 2);
        assert_eq!(mv.value(1).len(), 1);
        let m = batch
            .column(3)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(m.values(), &[0.0, 0.0]);
        assert_eq!(b.rows(), 0);
    }

    #[test]
    fn test_unset_replaces_duplicate_key() {
        let mut b = BlockBuilder::new(cols(), 4);
        b.push_str(1, "first");
        assert!(b.is_set(1));
        b.unset(1);
        b.push_str(1, "second");
        b.end_row();
        let batch = b.finish().unwrap();
        let s = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap();
        assert_eq!(s.value(0), "second");
    }
}
