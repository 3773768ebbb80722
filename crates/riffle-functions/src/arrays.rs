//! Pinot's functions of a multi-value column's list: `ARRAYLENGTH`, `ARRAYMIN`, `ARRAYMAX`,
//! `ARRAYSUM`, `ARRAYAVERAGE` and `VALUEIN`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, UInt32Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::compute::kernels::{boolean, cmp};
use datafusion::arrow::datatypes::DataType;
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use crate::multivalue::{list_parts, Flat};

/// What an [`ArrayFn`] answers for each row's list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ArrayOp {
    Length,
    Min,
    Max,
    Sum,
    Average,
}

/// Pinot's array functions on a multi-value column: `ARRAYLENGTH` (INT), `ARRAYMIN`,
/// `ARRAYMAX`, `ARRAYSUM`, `ARRAYAVERAGE` (DOUBLE; null for a list with no number).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ArrayFn {
    name: &'static str,
    op: ArrayOp,
    signature: Signature,
}

impl ArrayFn {
    /// Every array function.
    pub fn all() -> Vec<ArrayFn> {
        [
            ("arraylength", ArrayOp::Length),
            ("arraymin", ArrayOp::Min),
            ("arraymax", ArrayOp::Max),
            ("arraysum", ArrayOp::Sum),
            ("arrayaverage", ArrayOp::Average),
        ]
        .into_iter()
        .map(|(name, op)| ArrayFn {
            name,
            op,
            signature: Signature::any(1, Volatility::Immutable),
        })
        .collect()
    }
}

impl ScalarUDFImpl for ArrayFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match (arg_types, self.op) {
            ([DataType::List(_) | DataType::LargeList(_) | DataType::Null], ArrayOp::Length) => {
                Ok(DataType::Int32)
            }
            ([DataType::List(f) | DataType::LargeList(f)], _) if f.data_type().is_numeric() => {
                Ok(DataType::Float64)
            }
            ([DataType::Null], _) => Ok(DataType::Float64),
            _ => exec_err!(
                "{} takes a multi-value column{}; got {arg_types:?}",
                self.name,
                if self.op == ArrayOp::Length {
                    ""
                } else {
                    " of numbers"
                }
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let Some(list) = args.args.first() else {
            return exec_err!("{} takes a multi-value column", self.name);
        };
        let list = list.to_array(rows)?;
        if list.data_type().is_null() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_null_array(
                    &self.return_type(&[DataType::Null])?,
                    rows,
                ),
            ));
        }
        let (offsets, items) = list_parts(&list)?;
        if self.op == ArrayOp::Length {
            let out: datafusion::arrow::array::Int32Array = offsets
                .windows(2)
                .enumerate()
                .map(|(r, w)| list.is_valid(r).then_some((w[1] - w[0]) as i32))
                .collect();
            return Ok(ColumnarValue::Array(Arc::new(out)));
        }
        let items = cast(&items, &DataType::Float64)?;
        let items = items.as_primitive::<datafusion::arrow::datatypes::Float64Type>();
        let out: datafusion::arrow::array::Float64Array = offsets
            .windows(2)
            .enumerate()
            .map(|(r, w)| {
                if list.is_null(r) {
                    return None;
                }
                let vs: Vec<f64> = (w[0]..w[1])
                    .filter(|j| items.is_valid(*j))
                    .map(|j| items.value(j))
                    .collect();
                if vs.is_empty() {
                    return None;
                }
                Some(match self.op {
                    ArrayOp::Min => vs.iter().copied().fold(f64::INFINITY, f64::min),
                    ArrayOp::Max => vs.iter().copied().fold(f64::NEG_INFINITY, f64::max),
                    ArrayOp::Sum => vs.iter().sum(),
                    _ => vs.iter().sum::<f64>() / vs.len() as f64,
                })
            })
            .collect();
        Ok(ColumnarValue::Array(Arc::new(out)))
    }
}

/// `VALUEIN(mv, v1, ...)`: the row's values that are among `v1, ...` (literals), in their
/// order; Pinot uses it to group a multi-value column by some of its values only.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct ValueIn {
    signature: Signature,
}

impl ValueIn {
    /// The function.
    pub fn new() -> ValueIn {
        ValueIn {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for ValueIn {
    fn default() -> Self {
        ValueIn::new()
    }
}

impl ScalarUDFImpl for ValueIn {
    fn name(&self) -> &str {
        "valuein"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t @ (DataType::List(_) | DataType::LargeList(_)), _, ..] => Ok(t.clone()),
            _ => exec_err!(
                "valuein takes a multi-value column and one or more values; got {arg_types:?}"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let [list, values @ ..] = args.args.as_slice() else {
            return exec_err!("valuein takes a multi-value column and values");
        };
        if values.iter().any(|v| matches!(v, ColumnarValue::Array(_))) {
            return exec_err!("valuein: the values must be literals");
        }
        let list = list.to_array(rows)?;
        let (offsets, items) = list_parts(&list)?;
        let (first, last) = (
            offsets.first().copied().unwrap_or(0),
            offsets.last().copied().unwrap_or(0),
        );
        let items = items.slice(first, last - first);
        let flat = Flat {
            items: items.clone(),
            parents: UInt32Array::from(Vec::<u32>::new()),
        };
        let mut keep: Option<BooleanArray> = None;
        for v in values {
            let m = flat.compare(v, cmp::eq)?;
            keep = Some(match keep {
                None => m,
                Some(k) => boolean::or_kleene(&k, &m)?,
            });
        }
        let Some(keep) = keep else {
            return exec_err!("valuein takes one or more values");
        };
        let keep: BooleanArray = keep.iter().map(|b| Some(b == Some(true))).collect();
        let kept = datafusion::arrow::compute::filter(&items, &keep)?;
        let mut new_offsets = Vec::with_capacity(offsets.len());
        new_offsets.push(0i32);
        let mut n = 0i32;
        for w in offsets.windows(2) {
            n += (w[0] - first..w[1] - first)
                .filter(|j| keep.value(*j))
                .count() as i32;
            new_offsets.push(n);
        }
        let field = match list.data_type() {
            DataType::List(f) | DataType::LargeList(f) => f.clone(),
            other => return exec_err!("valuein: not a multi-value column: {other}"),
        };
        let out = datafusion::arrow::array::ListArray::try_new(
            field,
            datafusion::arrow::buffer::OffsetBuffer::new(new_offsets.into()),
            kept,
            list.nulls().cloned(),
        )?;
        let out: ArrayRef = Arc::new(out);
        Ok(ColumnarValue::Array(
            if matches!(list.data_type(), DataType::LargeList(_)) {
                cast(&out, list.data_type())?
            } else {
                out
            },
        ))
    }
}
