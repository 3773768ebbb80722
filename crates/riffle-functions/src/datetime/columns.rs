//! Reading time values from a column and building a function's result column.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Int32Builder, Int64Builder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::Result;

use super::Out;

/// The time values of an array: numbers as they are, TIMESTAMPs as milliseconds.
pub(super) fn readable(a: &ArrayRef) -> Result<ArrayRef> {
    Ok(match a.data_type() {
        DataType::Timestamp(_, _) => cast(
            &cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
            &DataType::Int64,
        )?,
        DataType::Date32 | DataType::Date64 => cast(
            &cast(a, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
            &DataType::Int64,
        )?,
        t if t.is_integer() => cast(a, &DataType::Int64)?,
        t if t.is_numeric() => cast(a, &DataType::Float64)?,
        DataType::Null => a.clone(),
        _ => cast(a, &DataType::Utf8)?,
    })
}

pub(super) fn build(
    rt: &DataType,
    rows: usize,
    mut value: impl FnMut(usize) -> Option<Out>,
) -> ArrayRef {
    match rt {
        DataType::Int32 => {
            let mut b = Int32Builder::with_capacity(rows);
            for i in 0..rows {
                b.append_option(match value(i) {
                    Some(Out::Int(v)) => Some(v),
                    Some(Out::Long(v)) => i32::try_from(v).ok(),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
        DataType::Utf8 => {
            let mut b = StringBuilder::with_capacity(rows, rows * 16);
            for i in 0..rows {
                match value(i) {
                    Some(Out::Text(s)) => b.append_value(s),
                    Some(Out::Long(v)) => b.append_value(v.to_string()),
                    Some(Out::Int(v)) => b.append_value(v.to_string()),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = Int64Builder::with_capacity(rows);
            for i in 0..rows {
                b.append_option(match value(i) {
                    Some(Out::Long(v)) => Some(v),
                    Some(Out::Int(v)) => Some(i64::from(v)),
                    _ => None,
                });
            }
            Arc::new(b.finish())
        }
    }
}
