//! `ROUND(t, m)`: floor to a multiple, as Pinot's `DateTimeFunctions.round(long, long)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Int64Array, TimestampMillisecondArray};
use datafusion::arrow::compute::kernels::numeric::div;
use datafusion::arrow::compute::{cast, kernels::cmp};
use datafusion::arrow::datatypes::{DataType, TimeUnit};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Pinot's `ROUND`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PinotRound {
    signature: Signature,
}

impl PinotRound {
    /// The function.
    pub fn new() -> PinotRound {
        PinotRound {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for PinotRound {
    fn default() -> Self {
        PinotRound::new()
    }
}

fn is_timestamp(t: &DataType) -> bool {
    matches!(t, DataType::Timestamp(_, _))
}

impl ScalarUDFImpl for PinotRound {
    fn name(&self) -> &str {
        "round"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [t] if t.is_numeric() || t.is_null() => Ok(DataType::Float64),
            [t, m] if (m.is_integer() || m.is_null()) && is_timestamp(t) => {
                Ok(DataType::Timestamp(TimeUnit::Millisecond, None))
            }
            [t, m] if (m.is_integer() || m.is_null()) && (t.is_numeric() || t.is_null()) => {
                Ok(DataType::Int64)
            }
            _ => exec_err!(
                "round takes a number, or a number or timestamp and an integer multiple; got {arg_types:?}"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        match arrays.as_slice() {
            [x] => {
                let x = cast(x, &DataType::Float64)?;
                let x = x
                    .as_any()
                    .downcast_ref::<datafusion::arrow::array::Float64Array>()
                    .map(|a| a.unary::<_, datafusion::arrow::datatypes::Float64Type>(f64::round));
                match x {
                    Some(a) => Ok(ColumnarValue::Array(Arc::new(a))),
                    None => exec_err!("round: cannot read its argument as a number"),
                }
            }
            [t, m] => {
                let timestamp = is_timestamp(t.data_type());
                let t64 = if timestamp {
                    cast(
                        &cast(t, &DataType::Timestamp(TimeUnit::Millisecond, None))?,
                        &DataType::Int64,
                    )?
                } else {
                    cast(t, &DataType::Int64)?
                };
                let m64 = cast(m, &DataType::Int64)?;
                let zero = Int64Array::new_scalar(0);
                if cmp::eq(&m64, &zero)?.true_count() > 0 {
                    return exec_err!("round: the multiple (second argument) is 0");
                }
                // Java's long division truncates toward zero, as arrow's does.
                let floored: ArrayRef =
                    datafusion::arrow::compute::kernels::numeric::mul(&div(&t64, &m64)?, &m64)?;
                let out: ArrayRef = if timestamp {
                    let ms = floored.as_any().downcast_ref::<Int64Array>().map(|a| {
                        TimestampMillisecondArray::new(a.values().clone(), a.nulls().cloned())
                    });
                    match ms {
                        Some(a) => Arc::new(a),
                        None => return exec_err!("round: cannot read its argument as a timestamp"),
                    }
                } else {
                    floored
                };
                Ok(ColumnarValue::Array(out))
            }
            _ => exec_err!("round takes one or two arguments, got {}", arrays.len()),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::prelude::SessionContext;

    async fn one(sql: &str) -> String {
        let ctx = SessionContext::new();
        crate::register(
            &ctx,
            &crate::aggregation::AggregationRegistry::with_builtins(),
        );
        let batches = ctx.sql(sql).await.unwrap().collect().await.unwrap();
        datafusion::arrow::util::pretty::pretty_format_batches(&batches)
            .unwrap()
            .to_string()
    }

    #[tokio::test]
    async fn round_floors_to_a_multiple_as_pinot() {
        let s = one(
            "SELECT round(1735689912345, 300000) AS a, round(1799, 600) AS b, round(-5, 2) AS c",
        )
        .await;
        assert!(s.contains("| 1735689900000 | 1200 | -4 |"), "{s}");
        // A timestamp stays a timestamp, floored to five minutes.
        let s = one("SELECT round(to_timestamp_millis(1735689912345), 300000) AS t").await;
        assert!(s.contains("2025-01-01T00:05:00"), "{s}");
        // One argument: the nearest whole number.
        let s = one("SELECT round(2.5) AS r, round(-1.4) AS s").await;
        assert!(s.contains("| 3.0 | -1.0 |"), "{s}");
        // Nulls stay null; a zero multiple is an error naming the function.
        let s = one("SELECT round(CAST(NULL AS BIGINT), 10) IS NULL AS n").await;
        assert!(s.contains("true"), "{s}");
        let ctx = SessionContext::new();
        crate::register(
            &ctx,
            &crate::aggregation::AggregationRegistry::with_builtins(),
        );
        let e = ctx
            .sql("SELECT round(5, 0)")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("round: the multiple"), "{e}");
    }
}
