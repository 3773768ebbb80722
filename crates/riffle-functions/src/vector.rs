//! Pinot's vector functions over multi-value numeric columns (arrays of numbers).
//!
//! | Function | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `COSINEDISTANCE(a, b[, default])` | DOUBLE | 1 − a·b / (‖a‖‖b‖); `default` (NaN unless given) when a norm is 0 |
//! | `INNERPRODUCT(a, b)` | DOUBLE | a·b |
//! | `L1DISTANCE(a, b)`, `L2DISTANCE(a, b)` | DOUBLE | Σ\|aᵢ − bᵢ\|, √Σ(aᵢ − bᵢ)² |
//! | `VECTORDIMS(a)` | INT | the number of elements |
//! | `VECTORNORM(a)` | DOUBLE | ‖a‖ |
//!
//! Vectors of different lengths fail the query, naming both lengths, as Pinot's do.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Float64Builder, Int32Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Float64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Cosine,
    Inner,
    L1,
    L2,
    Dims,
    Norm,
}

/// One vector function.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct VectorFn {
    name: &'static str,
    op: Op,
    signature: Signature,
}

/// Every vector function.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("cosinedistance", Op::Cosine),
        ("innerproduct", Op::Inner),
        ("l1distance", Op::L1),
        ("l2distance", Op::L2),
        ("vectordims", Op::Dims),
        ("vectornorm", Op::Norm),
    ]
    .into_iter()
    .map(|(name, op)| {
        ScalarUDF::new_from_impl(VectorFn {
            name,
            op,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

/// The result of `op` on `a` and `b` (`b` unused by the one-vector functions).
pub fn apply(op: &str, a: &[f64], b: &[f64], default: f64) -> std::result::Result<f64, String> {
    let pairs = || a.iter().zip(b);
    let same = || {
        if a.len() == b.len() {
            Ok(())
        } else {
            Err(format!(
                "vectors of different lengths ({} and {})",
                a.len(),
                b.len()
            ))
        }
    };
    let norm = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    Ok(match op {
        "cosine" => {
            same()?;
            let (na, nb) = (norm(a), norm(b));
            if na == 0.0 || nb == 0.0 {
                default
            } else {
                1.0 - pairs().map(|(x, y)| x * y).sum::<f64>() / (na * nb)
            }
        }
        "inner" => {
            same()?;
            pairs().map(|(x, y)| x * y).sum()
        }
        "l1" => {
            same()?;
            pairs().map(|(x, y)| (x - y).abs()).sum()
        }
        "l2" => {
            same()?;
            pairs().map(|(x, y)| (x - y) * (x - y)).sum::<f64>().sqrt()
        }
        _ => norm(a),
    })
}

fn op_name(op: Op) -> &'static str {
    match op {
        Op::Cosine => "cosine",
        Op::Inner => "inner",
        Op::L1 => "l1",
        Op::L2 => "l2",
        Op::Dims => "dims",
        Op::Norm => "norm",
    }
}

/// Each row's vector as DOUBLEs (None for NULL).
fn vectors(name: &str, a: &ArrayRef) -> Result<Vec<Option<Vec<f64>>>> {
    let list = match a.data_type() {
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(_, _) => cast(
            a,
            &DataType::List(Arc::new(Field::new("item", DataType::Float64, true))),
        )?,
        t => return exec_err!("{name} takes multi-value numbers (an array), got {t}"),
    };
    let list = list.as_list::<i32>();
    Ok((0..list.len())
        .map(|i| {
            (!list.is_null(i)).then(|| {
                let v = list.value(i);
                v.as_primitive::<Float64Type>()
                    .iter()
                    .map(|x| x.unwrap_or(0.0))
                    .collect()
            })
        })
        .collect())
}

impl ScalarUDFImpl for VectorFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        let (least, most) = match self.op {
            Op::Cosine => (2, 3),
            Op::Inner | Op::L1 | Op::L2 => (2, 2),
            Op::Dims | Op::Norm => (1, 1),
        };
        let n = arg_types.len();
        if n < least || n > most {
            return exec_err!("{} takes {least} to {most} arguments, got {n}", self.name);
        }
        Ok(if self.op == Op::Dims {
            DataType::Int32
        } else {
            DataType::Float64
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let a = vectors(self.name, &arrays[0])?;
        if self.op == Op::Dims {
            let mut b = Int32Builder::with_capacity(rows);
            for v in &a {
                b.append_option(v.as_ref().map(|v| v.len() as i32));
            }
            return Ok(ColumnarValue::Array(Arc::new(b.finish())));
        }
        let second = match arrays.get(1) {
            Some(x) => Some(vectors(self.name, x)?),
            None => None,
        };
        let defaults = match arrays.get(2) {
            Some(d) => Some(cast(d, &DataType::Float64)?),
            None => None,
        };
        let defaults = defaults.as_ref().map(|d| d.as_primitive::<Float64Type>());
        let mut out = Float64Builder::with_capacity(rows);
        for (i, v) in a.iter().enumerate() {
            let w = match &second {
                Some(s) => s.get(i).cloned().flatten(),
                None => Some(Vec::new()),
            };
            let (Some(v), Some(w)) = (v, w) else {
                out.append_null();
                continue;
            };
            let default = defaults
                .filter(|d| d.is_valid(i))
                .map_or(f64::NAN, |d| d.value(i));
            match apply(op_name(self.op), v, &w, default) {
                Ok(x) => out.append_value(x),
                Err(e) => return exec_err!("{}: {e}", self.name),
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_as_defined() {
        let (a, b) = ([1.0, 0.0, 2.0], [0.0, 3.0, 4.0]);
        assert_eq!(apply("inner", &a, &b, 0.0), Ok(8.0));
        assert_eq!(apply("l1", &a, &b, 0.0), Ok(6.0));
        assert_eq!(apply("l2", &a, &b, 0.0), Ok(14f64.sqrt()));
        assert_eq!(apply("norm", &b, &[], 0.0), Ok(5.0));
        let cos = apply("cosine", &a, &b, 0.0).unwrap();
        assert!((cos - (1.0 - 8.0 / (5f64.sqrt() * 5.0))).abs() < 1e-12);
        assert_eq!(apply("cosine", &[0.0, 0.0], &[1.0, 1.0], -1.0), Ok(-1.0));
        let e = apply("l2", &[1.0], &[1.0, 2.0], 0.0).unwrap_err();
        assert!(e.contains("different lengths (1 and 2)"), "{e}");
    }
}

#[cfg(test)]
mod sql_tests {
    use crate::sql_test::first_row;

    #[tokio::test]
    async fn vector_functions_through_sql() {
        let got = first_row(
            "SELECT innerproduct([1, 0, 2], [0, 3, 4]), l1distance([1, 0, 2], [0, 3, 4]), \
             vectordims([1.5, 2.5]), vectornorm([3, 4]), cosinedistance([0, 0], [1, 1], -1)",
        )
        .await;
        assert_eq!(got, ["8.0", "6.0", "2", "5.0", "-1.0"]);
    }
}
