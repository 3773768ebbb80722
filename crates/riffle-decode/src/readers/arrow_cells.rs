//! Arrow arrays into the column builders, for the readers of columnar files (Parquet,
//! ORC) and of Riffle's segments: [`normalize`] casts what the builders cannot take, then
//! a batch goes in column by column ([`put_column`], bulk copies) when every array
//! [`copies_as_is`] into its column, else row by row ([`put_row`]) with the decoders'
//! conversions, structs, maps and lists as JSON.
//!
//! Conversions: numbers, text, booleans and bytes directly; timestamps (any unit) as epoch
//! milliseconds; dates as days, as midnight in a TIMESTAMP column, as `yyyy-MM-dd` text in
//! a STRING one (as the Avro decoder reads Avro's `date`); decimals as their exact text;
//! lists into multi-value columns; structs and maps as JSON text.

use arrow::array::{Array, ArrayRef, AsArray};
use arrow::datatypes::{DataType as A, TimeUnit};
use riffle_segment::{BlockBuilder, Physical};
use serde_json::Value;

use super::{one_record, FileName};
use crate::json::{put_bool, put_float, put_int, put_text, put_value};
use crate::DecodeError;

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

/// Whether an array of type `t` goes into a single-value column stored as `p` value for
/// value, giving what [`put_cell`] gives and unable to fail: the same kind of value, or a
/// narrower integer or float into a wider one.
pub(super) fn copies_as_is(t: &A, p: Physical) -> bool {
    match p {
        Physical::Int => matches!(t, A::Int8 | A::Int16 | A::Int32 | A::UInt8 | A::UInt16),
        Physical::Long | Physical::Timestamp => matches!(
            t,
            A::Int8 | A::Int16 | A::Int32 | A::Int64 | A::UInt8 | A::UInt16 | A::UInt32
        ),
        Physical::Float => matches!(t, A::Float32),
        Physical::Double => matches!(t, A::Float32 | A::Float64),
        Physical::Bool => matches!(t, A::Boolean),
        Physical::Str => matches!(t, A::Utf8 | A::LargeUtf8 | A::Utf8View),
        Physical::Bin => matches!(
            t,
            A::Binary | A::LargeBinary | A::BinaryView | A::FixedSizeBinary(_)
        ),
    }
}

/// Rows `from..from + k` of `a` into single-value column `dest`, for a type
/// [`copies_as_is`] accepts: a null is the column's default (and a null row), as a missing
/// value is. Values are appended in bulk where the array has no nulls.
pub(super) fn put_column(
    out: &mut BlockBuilder,
    dest: usize,
    a: &dyn Array,
    from: usize,
    k: usize,
) {
    use arrow::datatypes::*;
    let a = a.slice(from, k);
    let a = a.as_ref();
    let nulls = a.logical_nulls().filter(|n| n.null_count() > 0);
    macro_rules! prim {
        ($t:ty, $extend:ident, $conv:expr) => {{
            let v = a.as_primitive::<$t>().values();
            match &nulls {
                None => $extend(out, dest, v.iter().map($conv)),
                Some(nb) => {
                    for (i, x) in v.iter().enumerate() {
                        if nb.is_null(i) {
                            out.push_default(dest);
                        } else {
                            $extend(out, dest, std::iter::once($conv(x)));
                        }
                    }
                }
            }
        }};
    }
    match a.data_type() {
        A::Int8 => prim!(Int8Type, extend_ints, |x: &i8| *x as i64),
        A::Int16 => prim!(Int16Type, extend_ints, |x: &i16| *x as i64),
        A::Int32 => prim!(Int32Type, extend_ints, |x: &i32| *x as i64),
        A::Int64 => prim!(Int64Type, extend_ints, |x: &i64| *x),
        A::UInt8 => prim!(UInt8Type, extend_ints, |x: &u8| *x as i64),
        A::UInt16 => prim!(UInt16Type, extend_ints, |x: &u16| *x as i64),
        A::UInt32 => prim!(UInt32Type, extend_ints, |x: &u32| *x as i64),
        A::Float32 => prim!(Float32Type, extend_floats, |x: &f32| *x as f64),
        A::Float64 => prim!(Float64Type, extend_floats, |x: &f64| *x),
        A::Boolean => {
            let b = a.as_boolean();
            for i in 0..b.len() {
                if nulls.as_ref().is_some_and(|nb| nb.is_null(i)) {
                    out.push_default(dest);
                } else {
                    out.push_bool(dest, b.value(i));
                }
            }
        }
        A::Utf8 => put_bytes(out, dest, a.as_string::<i32>(), &nulls),
        A::LargeUtf8 => put_bytes(out, dest, a.as_string::<i64>(), &nulls),
        A::Binary => put_bytes(out, dest, a.as_binary::<i32>(), &nulls),
        A::LargeBinary => put_bytes(out, dest, a.as_binary::<i64>(), &nulls),
        A::Utf8View | A::BinaryView | A::FixedSizeBinary(_) => {
            for i in 0..a.len() {
                if nulls.as_ref().is_some_and(|nb| nb.is_null(i)) {
                    out.push_default(dest);
                    continue;
                }
                match a.data_type() {
                    A::Utf8View => out.push_str(dest, a.as_string_view().value(i)),
                    A::BinaryView => out.push_bytes(dest, a.as_binary_view().value(i)),
                    _ => out.push_bytes(dest, a.as_fixed_size_binary().value(i)),
                }
            }
        }
        _ => debug_assert!(false, "put_column on {}", a.data_type()),
    }
}

/// Appends whole numbers to an INT, LONG or TIMESTAMP column (values [`copies_as_is`]
/// lets through, so an INT column only gets values that fit).
fn extend_ints(out: &mut BlockBuilder, dest: usize, v: impl Iterator<Item = i64>) {
    use riffle_segment::Values as V;
    match out.values_mut(dest) {
        V::Int(d) => d.extend(v.map(|x| x as i32)),
        V::Long(d) | V::Timestamp(d) => d.extend(v),
        _ => debug_assert!(false, "whole numbers into a column of another type"),
    }
}

/// Appends floats (as f64; f32 values are exact in it) to a FLOAT or DOUBLE column.
fn extend_floats(out: &mut BlockBuilder, dest: usize, v: impl Iterator<Item = f64>) {
    use riffle_segment::Values as V;
    match out.values_mut(dest) {
        V::Float(d) => d.extend(v.map(|x| x as f32)),
        V::Double(d) => d.extend(v),
        _ => debug_assert!(false, "floats into a column of another type"),
    }
}

/// Text or bytes rows into a STRING or BYTES column: without nulls, one copy of the value
/// bytes and the offsets moved.
fn put_bytes<T: arrow::datatypes::ByteArrayType>(
    out: &mut BlockBuilder,
    dest: usize,
    a: &arrow::array::GenericByteArray<T>,
    nulls: &Option<arrow::buffer::NullBuffer>,
) {
    use arrow::datatypes::ArrowNativeType;
    use riffle_segment::Values as V;
    if let Some(nb) = nulls {
        for i in 0..a.len() {
            if nb.is_null(i) {
                out.push_default(dest);
                continue;
            }
            let b: &[u8] = a.value(i).as_ref();
            if let V::Str { offsets, data } | V::Bin { offsets, data } = out.values_mut(dest) {
                data.extend_from_slice(b);
                offsets.push(data.len() as i32);
            }
        }
        return;
    }
    let offs = a.value_offsets();
    let (first, last) = (offs[0].as_usize(), offs[a.len()].as_usize());
    if let V::Str { offsets, data } | V::Bin { offsets, data } = out.values_mut(dest) {
        let base = data.len() as i64 - first as i64;
        data.extend_from_slice(&a.value_data()[first..last]);
        offsets.extend(
            offs[1..]
                .iter()
                .map(|o| (base + o.as_usize() as i64) as i32),
        );
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

#[cfg(test)]
mod tests {
    use arrow::array::{
        BinaryArray, BooleanArray, Float32Array, Int16Array, Int64Array, LargeStringArray,
        UInt32Array,
    };

    use std::sync::Arc;

    use riffle_segment::TableColumns;

    use super::*;

    fn columns() -> Arc<TableColumns> {
        let s = riffle_config::Schema::from_json(
            br#"{"schemaName":"t","enableColumnBasedNullHandling":true,"dimensionFieldSpecs":[
            {"name":"i","dataType":"INT"},{"name":"l","dataType":"LONG"},
            {"name":"f","dataType":"FLOAT"},{"name":"d","dataType":"DOUBLE"},
            {"name":"b","dataType":"BOOLEAN"},{"name":"s","dataType":"STRING"},
            {"name":"y","dataType":"BYTES"},{"name":"missing","dataType":"STRING"}],
            "dateTimeFieldSpecs":[{"name":"t","dataType":"TIMESTAMP","format":"1:MILLISECONDS:EPOCH","granularity":"1:MILLISECONDS"}]}"#,
        )
        .unwrap();
        TableColumns::new(s.columns().unwrap())
    }

    /// The column-by-column copy gives the block the cell-by-cell path gives: values,
    /// defaults and null rows, from an offset into the batch and after earlier rows.
    #[test]
    fn column_copies_equal_cell_by_cell() {
        let cols = columns();
        let idx = |n: &str| cols.index_of(n).unwrap();
        let cells: Vec<(ArrayRef, usize)> = vec![
            (
                Arc::new(Int16Array::from(vec![
                    Some(9),
                    Some(1),
                    None,
                    Some(-3),
                    Some(4),
                ])),
                idx("i"),
            ),
            (
                Arc::new(UInt32Array::from(vec![5, 7, u32::MAX, 0, 2])),
                idx("l"),
            ),
            (
                Arc::new(Int64Array::from(vec![
                    Some(1),
                    None,
                    Some(3),
                    Some(4),
                    Some(5),
                ])),
                idx("t"),
            ),
            (
                Arc::new(Float32Array::from(vec![0.5, 1.25, -2.0, 3.5, f32::NAN])),
                idx("f"),
            ),
            (
                Arc::new(Float32Array::from(vec![
                    Some(0.1),
                    Some(1.1),
                    None,
                    Some(2.2),
                    None,
                ])),
                idx("d"),
            ),
            (
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    None,
                    Some(false),
                    Some(true),
                    Some(true),
                ])),
                idx("b"),
            ),
            (
                Arc::new(LargeStringArray::from(vec![
                    Some("x"),
                    Some("héllo"),
                    None,
                    Some(""),
                    Some("end"),
                ])),
                idx("s"),
            ),
            (
                Arc::new(BinaryArray::from_vec(vec![
                    b"\x00",
                    b"ab",
                    b"",
                    b"\xff\xfe",
                    b"z",
                ])),
                idx("y"),
            ),
        ];
        for (a, dest) in &cells {
            assert!(
                copies_as_is(a.data_type(), cols.physical[*dest]),
                "{}",
                a.data_type()
            );
        }
        let file = FileName("t.parquet".into());
        let n = cols.columns.len();
        let (mut by_cell, mut by_column) = (
            BlockBuilder::new(cols.clone(), 8),
            BlockBuilder::new(cols.clone(), 8),
        );
        for out in [&mut by_cell, &mut by_column] {
            put_row(&file, 1, out, &cells, n, 0).unwrap();
        }
        for i in 1..5 {
            put_row(&file, 1 + i as u64, &mut by_cell, &cells, n, i).unwrap();
        }
        for (a, dest) in &cells {
            put_column(&mut by_column, *dest, a.as_ref(), 1, 4);
        }
        by_column.end_rows(4);
        let (a, b) = (by_cell.finish().unwrap(), by_column.finish().unwrap());
        assert_eq!(a.num_rows(), 5);
        for (i, f) in a.schema().fields().iter().enumerate() {
            // NaN != NaN under PartialEq: compare the values' text.
            let text = |x: &ArrayRef| {
                (0..x.len())
                    .map(|r| arrow::util::display::array_value_to_string(x, r).unwrap())
                    .collect::<Vec<_>>()
            };
            assert_eq!(text(a.column(i)), text(b.column(i)), "column {}", f.name());
            assert_eq!(
                a.column(i).nulls(),
                b.column(i).nulls(),
                "nulls of {}",
                f.name()
            );
        }
    }
}
