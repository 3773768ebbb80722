//! Pinot's typed array functions (`ARRAY<OP>INT`, `...LONG`, `...FLOAT`, `...DOUBLE`,
//! `...STRING`) on multi-value columns and array literals.
//!
//! | Function | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `ARRAYREVERSE{INT,STRING}(a)`, `ARRAYSORT{INT,STRING}(a)`, `ARRAYDISTINCT{INT,STRING}(a)` | array | reversed; ascending; distinct in first-seen order |
//! | `ARRAYINDEXOF{INT,STRING}(a, v)` | INT | 0-based index of the first `v`, -1 when absent |
//! | `ARRAYINDEXESOF{INT,LONG,FLOAT,DOUBLE,STRING}(a, v)` | INT array | every index of `v` |
//! | `ARRAYCONTAINS{INT,STRING}(a, v)` | BOOLEAN | |
//! | `ARRAYSLICE{INT,STRING}(a, start, end)` | array | elements `start..end` (0-based, end exclusive, clamped to the array) |
//! | `ARRAYREMOVE{INT,STRING}(a, v)` | array | without the first `v` |
//! | `ARRAYUNION{INT,STRING}(a, b)` | array | distinct elements of `a` then `b`, first-seen order |
//! | `ARRAYCONCAT{INT,LONG,FLOAT,DOUBLE,STRING}(a, b)` | array | `a` then `b` |
//! | `ARRAYELEMENTAT{INT,LONG,FLOAT,DOUBLE,STRING}(a, i)` | element | the element at 1-based `i`; 0 (empty text) out of range, as Pinot's placeholder |
//! | `ARRAYSUMINT(a)`, `ARRAYSUMLONG(a)` | INT, LONG | the sum (wrapping as Java's) |
//!
//! Elements are converted to the type the name says before anything else.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// What the function does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Reverse,
    Sort,
    Distinct,
    IndexOf,
    IndexesOf,
    Contains,
    Slice,
    Remove,
    Union,
    Concat,
    ElementAt,
    Sum,
}

/// One typed array function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct TypedArrayFn {
    name: String,
    op: Op,
    elem: DataType,
    signature: Signature,
}

/// Every typed array function.
pub fn functions() -> Vec<ScalarUDF> {
    let int_string = [
        ("reverse", Op::Reverse),
        ("sort", Op::Sort),
        ("distinct", Op::Distinct),
        ("indexof", Op::IndexOf),
        ("contains", Op::Contains),
        ("slice", Op::Slice),
        ("remove", Op::Remove),
        ("union", Op::Union),
    ];
    let all_types = [
        ("indexesof", Op::IndexesOf),
        ("concat", Op::Concat),
        ("elementat", Op::ElementAt),
    ];
    let types = [
        ("int", DataType::Int32),
        ("long", DataType::Int64),
        ("float", DataType::Float32),
        ("double", DataType::Float64),
        ("string", DataType::Utf8),
    ];
    let mut out = Vec::new();
    let mut add = |name: String, op: Op, elem: DataType| {
        out.push(ScalarUDF::new_from_impl(TypedArrayFn {
            name,
            op,
            elem,
            signature: Signature::variadic_any(Volatility::Immutable),
        }))
    };
    for (n, op) in int_string {
        add(format!("array{n}int"), op, DataType::Int32);
        add(format!("array{n}string"), op, DataType::Utf8);
    }
    for (n, op) in all_types {
        for (t, dt) in &types {
            add(format!("array{n}{t}"), op, dt.clone());
        }
    }
    add("arraysumint".into(), Op::Sum, DataType::Int32);
    add("arraysumlong".into(), Op::Sum, DataType::Int64);
    out
}

fn list_of(t: &DataType) -> DataType {
    DataType::List(Arc::new(Field::new("item", t.clone(), true)))
}

impl TypedArrayFn {
    fn arity(&self) -> usize {
        match self.op {
            Op::Reverse | Op::Sort | Op::Distinct | Op::Sum => 1,
            Op::Slice => 3,
            _ => 2,
        }
    }

    /// Each row's elements, converted to the element type (None for a NULL list).
    fn rows(&self, a: &ArrayRef) -> Result<Vec<Option<Vec<ScalarValue>>>> {
        if !matches!(
            a.data_type(),
            DataType::List(_) | DataType::LargeList(_) | DataType::Null
        ) {
            return exec_err!(
                "{} takes a multi-value column or an array, got {}",
                self.name,
                a.data_type()
            );
        }
        let l = cast(a, &list_of(&self.elem))?;
        let l = l.as_list::<i32>();
        (0..l.len())
            .map(|i| {
                if l.is_null(i) {
                    return Ok(None);
                }
                let v = l.value(i);
                (0..v.len())
                    .map(|j| ScalarValue::try_from_array(&v, j))
                    .collect::<Result<Vec<_>>>()
                    .map(Some)
            })
            .collect()
    }
}

fn distinct(values: impl IntoIterator<Item = ScalarValue>) -> Vec<ScalarValue> {
    let mut out: Vec<ScalarValue> = Vec::new();
    for v in values {
        if !out.contains(&v) {
            out.push(v);
        }
    }
    out
}

impl ScalarUDFImpl for TypedArrayFn {
    fn name(&self) -> &str {
        &self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != self.arity() {
            return exec_err!(
                "{} takes {} argument(s), got {}",
                self.name,
                self.arity(),
                arg_types.len()
            );
        }
        Ok(match self.op {
            Op::IndexOf => DataType::Int32,
            Op::IndexesOf => list_of(&DataType::Int32),
            Op::Contains => DataType::Boolean,
            Op::ElementAt | Op::Sum => self.elem.clone(),
            _ => list_of(&self.elem),
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let n = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let lists = self.rows(&arrays[0])?;
        let seconds = match (self.op, arrays.get(1)) {
            (Op::Union | Op::Concat, Some(b)) => Some(self.rows(b)?),
            _ => None,
        };
        // The other arguments, converted once: positions as LONG, values to the element type.
        let position = matches!(self.op, Op::Slice | Op::ElementAt);
        let others: Vec<ArrayRef> = arrays
            .iter()
            .skip(1)
            .filter(|_| !matches!(self.op, Op::Union | Op::Concat))
            .map(|a| {
                cast(
                    a,
                    if position {
                        &DataType::Int64
                    } else {
                        &self.elem
                    },
                )
            })
            .collect::<std::result::Result<_, _>>()?;
        let mut out: Vec<ScalarValue> = Vec::with_capacity(n);
        let null_of = |t: &DataType| ScalarValue::try_from(t);
        let rt = self.return_type(&vec![DataType::Null; self.arity()])?;
        for (i, row) in lists.into_iter().enumerate() {
            let Some(mut v) = row else {
                out.push(null_of(&rt)?);
                continue;
            };
            let list = |v: Vec<ScalarValue>, t: &DataType| {
                ScalarValue::List(ScalarValue::new_list_nullable(&v, t))
            };
            let arg = |k: usize, _t: &DataType| -> Result<ScalarValue> {
                match others.get(k - 1) {
                    Some(a) => ScalarValue::try_from_array(a, i),
                    None => exec_err!("{}: argument {k} is missing", self.name),
                }
            };
            out.push(match self.op {
                Op::Reverse => {
                    v.reverse();
                    list(v, &self.elem)
                }
                Op::Sort => {
                    v.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
                    list(v, &self.elem)
                }
                Op::Distinct => list(distinct(v), &self.elem),
                Op::IndexOf => {
                    let x = arg(1, &self.elem)?;
                    let at = v.iter().position(|e| *e == x).map_or(-1, |p| p as i32);
                    ScalarValue::Int32(Some(at))
                }
                Op::IndexesOf => {
                    let x = arg(1, &self.elem)?;
                    let at: Vec<ScalarValue> = v
                        .iter()
                        .enumerate()
                        .filter(|(_, e)| **e == x)
                        .map(|(p, _)| ScalarValue::Int32(Some(p as i32)))
                        .collect();
                    list(at, &DataType::Int32)
                }
                Op::Contains => {
                    let x = arg(1, &self.elem)?;
                    ScalarValue::Boolean(Some(v.contains(&x)))
                }
                Op::Slice => {
                    let bound = |k: usize| -> Result<usize> {
                        match arg(k, &DataType::Int64)? {
                            ScalarValue::Int64(Some(b)) => {
                                Ok(usize::try_from(b.max(0)).unwrap_or(0).min(v.len()))
                            }
                            _ => Ok(0),
                        }
                    };
                    let (s, e) = (bound(1)?, bound(2)?);
                    list(
                        v.get(s..e.max(s))
                            .map(<[ScalarValue]>::to_vec)
                            .unwrap_or_default(),
                        &self.elem,
                    )
                }
                Op::Remove => {
                    let x = arg(1, &self.elem)?;
                    if let Some(p) = v.iter().position(|e| *e == x) {
                        v.remove(p);
                    }
                    list(v, &self.elem)
                }
                Op::Union | Op::Concat => {
                    let b = seconds
                        .as_ref()
                        .and_then(|s| s.get(i).cloned().flatten())
                        .unwrap_or_default();
                    v.extend(b);
                    if self.op == Op::Union {
                        list(distinct(v), &self.elem)
                    } else {
                        list(v, &self.elem)
                    }
                }
                Op::ElementAt => {
                    let at = match arg(1, &DataType::Int64)? {
                        ScalarValue::Int64(Some(k)) => k,
                        _ => 0,
                    };
                    let hit = usize::try_from(at)
                        .ok()
                        .filter(|k| *k >= 1)
                        .and_then(|k| v.get(k - 1).cloned());
                    match hit {
                        Some(x) => x,
                        // Pinot's placeholder: 0, or empty text.
                        None if self.elem == DataType::Utf8 => {
                            ScalarValue::Utf8(Some(String::new()))
                        }
                        None => ScalarValue::new_zero(&self.elem)?,
                    }
                }
                Op::Sum => {
                    let mut s: i64 = 0;
                    for e in &v {
                        if let Some(x) = match e {
                            ScalarValue::Int32(x) => x.map(i64::from),
                            ScalarValue::Int64(x) => *x,
                            _ => None,
                        } {
                            s = s.wrapping_add(x);
                        }
                    }
                    if self.elem == DataType::Int32 {
                        ScalarValue::Int32(Some(s as i32))
                    } else {
                        ScalarValue::Int64(Some(s))
                    }
                }
            });
        }
        if out.is_empty() {
            return Ok(ColumnarValue::Array(
                datafusion::arrow::array::new_empty_array(&rt),
            ));
        }
        Ok(ColumnarValue::Array(ScalarValue::iter_to_array(out)?))
    }
}

#[cfg(test)]
mod sql_tests {
    use crate::sql_test::first_row;

    #[tokio::test]
    async fn typed_array_functions_as_pinot() {
        let got = first_row(
            "SELECT arrayreverseint([1, 2, 3]), arraysortstring(['b', 'a', 'c']), \
             arraydistinctint([3, 1, 3, 2, 1]), arrayindexofstring(['a', 'b'], 'b'), \
             arrayindexofint([1, 2], 9), arraycontainsint([1, 2], 2), \
             arrayslicestring(['a', 'b', 'c', 'd'], 1, 3), arrayremoveint([1, 2, 1], 1), \
             arrayunionint([1, 2], [2, 3]), arrayconcatdouble([1.5], [2]), \
             arrayelementatlong([10, 20], 2), arrayelementatint([10, 20], 5), \
             arraysumint([1, 2, 3]), arrayindexesofint([1, 2, 1], 1)",
        )
        .await;
        assert_eq!(
            got,
            [
                "[3, 2, 1]",
                "[a, b, c]",
                "[3, 1, 2]",
                "1",
                "-1",
                "true",
                "[b, c]",
                "[2, 1]",
                "[1, 2, 3]",
                "[1.5, 2.0]",
                "20",
                "0",
                "6",
                "[0, 2]"
            ]
        );
    }
}
