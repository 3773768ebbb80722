//! The table's columns as the engine stores them, and their Arrow types.
//!
//! | Pinot type | Arrow type (single value) |
//! | --- | --- |
//! | INT | Int32 |
//! | LONG | Int64 |
//! | FLOAT | Float32 |
//! | DOUBLE | Float64 |
//! | BOOLEAN | Boolean |
//! | TIMESTAMP | Timestamp(Millisecond) |
//! | STRING, JSON, BIG_DECIMAL, UUID, MAP, LIST, STRUCT | Utf8 |
//! | BYTES | Binary |
//!
//! Multi-value columns are `List<item>` of the single-value type. Every field carries the
//! Pinot type name in its metadata under [`PINOT_TYPE_KEY`] so that query responses name
//! JSON, BIG_DECIMAL and UUID columns as Pinot does.

use std::collections::HashMap;
use std::sync::Arc;

use arrow::datatypes::{DataType as ArrowType, Field, Schema as ArrowSchema, SchemaRef, TimeUnit};
use riffle_config::{Column, DataType, DefaultValue};

/// Field-metadata key holding the Pinot data type name.
pub const PINOT_TYPE_KEY: &str = "pinot.dataType";

/// The Arrow type of one value of a Pinot type.
pub fn arrow_value_type(dt: DataType) -> ArrowType {
    match dt {
        DataType::Int => ArrowType::Int32,
        DataType::Long => ArrowType::Int64,
        DataType::Float => ArrowType::Float32,
        DataType::Double => ArrowType::Float64,
        DataType::Boolean => ArrowType::Boolean,
        DataType::Timestamp => ArrowType::Timestamp(TimeUnit::Millisecond, None),
        DataType::Bytes => ArrowType::Binary,
        DataType::String
        | DataType::Json
        | DataType::BigDecimal
        | DataType::Uuid
        | DataType::Map
        | DataType::List
        | DataType::Struct
        | DataType::OpenStruct => ArrowType::Utf8,
    }
}

/// The physical kind of storage for a column's values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Physical {
    /// i32.
    Int,
    /// i64.
    Long,
    /// f32.
    Float,
    /// f64.
    Double,
    /// bool.
    Bool,
    /// i64 milliseconds.
    Timestamp,
    /// UTF-8 text.
    Str,
    /// Bytes.
    Bin,
}

impl Physical {
    /// Storage for a Pinot type.
    pub fn of(dt: DataType) -> Physical {
        match arrow_value_type(dt) {
            ArrowType::Int32 => Physical::Int,
            ArrowType::Int64 => Physical::Long,
            ArrowType::Float32 => Physical::Float,
            ArrowType::Float64 => Physical::Double,
            ArrowType::Boolean => Physical::Bool,
            ArrowType::Timestamp(_, _) => Physical::Timestamp,
            ArrowType::Binary => Physical::Bin,
            _ => Physical::Str,
        }
    }
}

/// The columns of a table, with a name index and the Arrow schema.
#[derive(Debug)]
pub struct TableColumns {
    /// Columns in schema order.
    pub columns: Vec<Column>,
    /// Storage kind of each column.
    pub physical: Vec<Physical>,
    /// The Arrow schema, one field per column.
    pub arrow: SchemaRef,
    index: HashMap<String, usize>,
}

impl TableColumns {
    /// Builds the engine view of a schema's columns.
    pub fn new(columns: Vec<Column>) -> Arc<TableColumns> {
        let fields: Vec<Field> = columns
            .iter()
            .map(|c| {
                let vt = arrow_value_type(c.data_type);
                let dt = if c.single_value {
                    vt
                } else {
                    ArrowType::List(Arc::new(Field::new("item", vt, true)))
                };
                let mut md = HashMap::new();
                md.insert(PINOT_TYPE_KEY.to_string(), c.data_type.name().to_string());
                Field::new(&c.name, dt, c.nullable).with_metadata(md)
            })
            .collect();
        let index = columns
            .iter()
            .enumerate()
            .map(|(i, c)| (c.name.clone(), i))
            .collect();
        let physical = columns.iter().map(|c| Physical::of(c.data_type)).collect();
        Arc::new(TableColumns {
            columns,
            physical,
            arrow: Arc::new(ArrowSchema::new(fields)),
            index,
        })
    }

    /// The position of a column.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.index.get(name).copied()
    }

    /// Number of columns.
    pub fn len(&self) -> usize {
        self.columns.len()
    }

    /// Whether there are no columns.
    pub fn is_empty(&self) -> bool {
        self.columns.is_empty()
    }

    /// The default value of a column.
    pub fn default_of(&self, i: usize) -> &DefaultValue {
        &self.columns[i].default_null
    }
}

/// Pinot's reading of a column without null handling: every null of `array` replaced by
/// `default` (a one-row array of the same type). An array without nulls is returned as is.
pub fn fill_nulls(
    array: &arrow::array::ArrayRef,
    default: &arrow::array::ArrayRef,
) -> Result<arrow::array::ArrayRef, arrow::error::ArrowError> {
    if array.null_count() == 0 {
        return Ok(array.clone());
    }
    let valid = arrow::compute::is_not_null(array.as_ref())?;
    arrow::compute::kernels::zip::zip(&valid, array, &arrow::array::Scalar::new(default.clone()))
}

/// `batch`, rows written under an earlier version of a table's columns, with `columns`'
/// fields: columns matched by name; a column the batch lacks (added to the schema since)
/// reads its default null value (`defaults`, from [`TableColumns::default_values`]), or
/// null where the column keeps nulls. A batch that already has the fields is returned as
/// is.
pub fn widen(
    batch: &arrow::record_batch::RecordBatch,
    columns: &TableColumns,
    defaults: &[arrow::array::ArrayRef],
) -> Result<arrow::record_batch::RecordBatch, crate::SegmentError> {
    if batch.schema().fields() == columns.arrow.fields() {
        return Ok(batch.clone());
    }
    let rows = batch.num_rows();
    let mut arrays = Vec::with_capacity(columns.columns.len());
    for (i, c) in columns.columns.iter().enumerate() {
        let field = columns.arrow.field(i);
        let have = batch
            .schema()
            .index_of(&c.name)
            .ok()
            .map(|j| batch.column(j).clone())
            .filter(|a| a.data_type() == field.data_type());
        let a = match have {
            Some(a) => a,
            None => {
                let nulls = arrow::array::new_null_array(field.data_type(), rows);
                if c.nullable {
                    nulls
                } else {
                    let d = defaults.get(i).ok_or_else(|| {
                        crate::SegmentError::internal(format!("no default for column '{}'", c.name))
                    })?;
                    fill_nulls(&nulls, d)
                        .map_err(|e| crate::SegmentError::internal(format!("widen: {e}")))?
                }
            }
        };
        arrays.push(a);
    }
    arrow::record_batch::RecordBatch::try_new_with_options(
        columns.arrow.clone(),
        arrays,
        &arrow::record_batch::RecordBatchOptions::new().with_row_count(Some(rows)),
    )
    .map_err(|e| crate::SegmentError::internal(format!("widen: {e}")))
}

impl TableColumns {
    /// Each column's default null value as a one-row array of the column's Arrow type
    /// (never null, whatever the column's null handling).
    pub fn default_values(&self) -> Result<Vec<arrow::array::ArrayRef>, crate::SegmentError> {
        let columns: Vec<Column> = self
            .columns
            .iter()
            .cloned()
            .map(|mut c| {
                c.nullable = false;
                c
            })
            .collect();
        let mut b = crate::BlockBuilder::new(TableColumns::new(columns), 1);
        b.end_row();
        Ok(b.finish()?.columns().to_vec())
    }
}
