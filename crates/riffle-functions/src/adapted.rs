//! DataFusion's functions under Pinot's meaning, where only the arguments or the result
//! differ: each wraps DataFusion's own implementation.
//!
//! - `LOG(x)`: the natural logarithm (Pinot), not base 10; `LOG(b, x)` keeps base `b`.
//! - `STRPOS(s, find)`: 0-based, -1 when absent (Pinot), not 1-based with 0.
//! - `REGEXP_REPLACE(s, pattern, replacement)`: every match (Pinot), not the first;
//!   DataFusion's forms with flags are unchanged.

use std::sync::Arc;

use datafusion::arrow::array::Scalar;
use datafusion::arrow::compute::kernels::numeric::sub;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::prelude::SessionContext;

/// What a wrapper changes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Change {
    /// One argument: `ln`.
    NaturalLog,
    /// Result minus one.
    ZeroBased,
    /// Three arguments: the global flag added.
    EveryMatch,
}

/// DataFusion's function `inner` with one of Pinot's changes.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct Adapted {
    inner: ScalarUDF,
    /// `ln`, for [`Change::NaturalLog`].
    ln: Option<ScalarUDF>,
    change: Change,
}

/// The wrappers, made from the session's own functions (none if it lacks them).
pub fn adapted(ctx: &SessionContext) -> Vec<ScalarUDF> {
    let state = ctx.state();
    let get = |n: &str| state.scalar_functions().get(n).map(|f| f.as_ref().clone());
    let mut out = Vec::new();
    if let (Some(inner), Some(ln)) = (get("log"), get("ln")) {
        out.push(Adapted {
            inner,
            ln: Some(ln),
            change: Change::NaturalLog,
        });
    }
    if let Some(inner) = get("strpos") {
        out.push(Adapted {
            inner,
            ln: None,
            change: Change::ZeroBased,
        });
    }
    if let Some(inner) = get("regexp_replace") {
        out.push(Adapted {
            inner,
            ln: None,
            change: Change::EveryMatch,
        });
    }
    out.into_iter().map(ScalarUDF::new_from_impl).collect()
}

impl Adapted {
    /// The function that answers `n` arguments.
    fn target(&self, n: usize) -> &ScalarUDF {
        match (&self.ln, self.change, n) {
            (Some(ln), Change::NaturalLog, 1) => ln,
            _ => &self.inner,
        }
    }
}

impl ScalarUDFImpl for Adapted {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        self.target(arg_types.len()).return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.target(args.arg_fields.len())
            .return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> Result<Vec<DataType>> {
        self.target(arg_types.len()).coerce_types(arg_types)
    }

    fn invoke_with_args(&self, mut args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        match self.change {
            Change::NaturalLog => self.target(args.args.len()).invoke_with_args(args),
            Change::EveryMatch => {
                if args.args.len() == 3 {
                    args.args
                        .push(ColumnarValue::Scalar(ScalarValue::Utf8(Some("g".into()))));
                    args.arg_fields
                        .push(Arc::new(Field::new("flags", DataType::Utf8, true)));
                }
                self.inner.invoke_with_args(args)
            }
            Change::ZeroBased => {
                let rows = args.number_rows;
                let r = self.inner.invoke_with_args(args)?.to_array(rows)?;
                let one = match r.data_type() {
                    DataType::Int32 => ScalarValue::Int32(Some(1)),
                    DataType::Int64 => ScalarValue::Int64(Some(1)),
                    other => return exec_err!("strpos answered {other}, not an integer"),
                };
                let one = Scalar::new(one.to_array()?);
                Ok(ColumnarValue::Array(sub(&r, &one)?))
            }
        }
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
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
    async fn log_strpos_and_regexp_replace_mean_what_pinot_means() {
        // LOG(e) = 1 (natural); LOG(2, 8) = 3 keeps DataFusion's base form.
        let s = one("SELECT log(exp(1.0)) AS a, log(2.0, 8.0) AS b").await;
        assert!(s.contains("| 1.0 | 3.0 |"), "{s}");
        // 0-based, -1 when absent.
        let s = one("SELECT strpos('hello', 'l') AS a, strpos('hello', 'h') AS b, strpos('hello', 'z') AS c").await;
        assert!(s.contains("| 2 | 0 | -1 |"), "{s}");
        // Every match; DataFusion's own flags still work.
        let s = one("SELECT regexp_replace('a-b-c', '-', '+') AS a, regexp_replace('A-b', 'a', 'x', 'i') AS b").await;
        assert!(s.contains("| a+b+c | x-b |"), "{s}");
        // Nulls stay null.
        let s = one("SELECT strpos(CAST(NULL AS VARCHAR), 'a') IS NULL AS n").await;
        assert!(s.contains("true"), "{s}");
    }
}
