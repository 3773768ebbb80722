//! String functions whose output size their arguments choose (`repeat`, `lpad`, `rpad`),
//! wrapped so that the size is checked before anything is allocated.
//!
//! `repeat(s, 1000000)` over a batch of strings asks for the sum of every row's output at
//! once; unchecked, a large product is an allocation the process cannot survive. The
//! wrapper computes that sum from the arguments and fails the query (a resources error,
//! Pinot 245) when one value would exceed [`QueryLimits::max_string_bytes`] or the batch
//! would exceed the query's memory budget; otherwise it calls DataFusion's own function.
//! `lpad` / `rpad` are bounded by their target length in characters.

use datafusion::arrow::array::{Array, ArrayRef, Int64Array};
use datafusion::arrow::compute::kernels::length::length;
use datafusion::arrow::compute::{cast_with_options, CastOptions};
use datafusion::arrow::datatypes::{DataType, FieldRef};
use datafusion::common::{DataFusionError, Result as DfResult};
use datafusion::logical_expr::{
    ColumnarValue, Documentation, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl,
    Signature,
};
use datafusion::prelude::SessionContext;

use crate::limits::QueryLimits;

/// How a function's output size follows from its arguments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Size {
    /// `repeat(s, n)`: `len(s) * n` bytes.
    Repeat,
    /// `lpad(s, n [, fill])` / `rpad`: `n` characters.
    Pad,
}

/// A function whose output is checked against the limits before it runs.
#[derive(Debug, PartialEq, Eq, Hash)]
struct Guarded {
    inner: ScalarUDF,
    size: Size,
    max_value: usize,
    max_total: usize,
}

/// Replaces `repeat`, `lpad` and `rpad` in `ctx` by checked versions.
pub(crate) fn register(ctx: &SessionContext, limits: &QueryLimits) {
    let state = ctx.state();
    for (name, size) in [
        ("repeat", Size::Repeat),
        ("lpad", Size::Pad),
        ("rpad", Size::Pad),
    ] {
        if let Some(inner) = state.scalar_functions().get(name) {
            ctx.register_udf(ScalarUDF::new_from_impl(Guarded {
                inner: inner.as_ref().clone(),
                size,
                max_value: limits.max_string_bytes,
                max_total: limits.max_query_memory_bytes,
            }));
        }
    }
}

/// The argument as `rows` 64-bit integers (nulls as 0): the value itself, or with
/// `lengths` the byte length of each string.
fn as_i64(v: &ColumnarValue, rows: usize, lengths: bool) -> DfResult<Int64Array> {
    let array: ArrayRef = v.to_array(rows)?;
    let array = if lengths { length(&array)? } else { array };
    let opts = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    let cast = cast_with_options(&array, &DataType::Int64, &opts)?;
    Ok(cast
        .as_any()
        .downcast_ref::<Int64Array>()
        .cloned()
        .unwrap_or_else(|| Int64Array::from(vec![0; rows])))
}

impl Guarded {
    fn check(&self, args: &ScalarFunctionArgs) -> DfResult<()> {
        let rows = args.number_rows.max(1);
        let (Some(first), Some(second)) = (args.args.first(), args.args.get(1)) else {
            return Ok(());
        };
        let counts = as_i64(second, rows, false)?;
        let lens = match self.size {
            Size::Repeat => Some(as_i64(first, rows, true)?),
            Size::Pad => None,
        };
        let mut total: u128 = 0;
        for i in 0..rows {
            let n = if counts.is_null(i) {
                0
            } else {
                counts.value(i).max(0)
            } as u128;
            let per = match &lens {
                Some(l) if !l.is_null(i) => l.value(i).max(0) as u128,
                Some(_) => 0,
                None => 1,
            };
            let value = n * per;
            if value > self.max_value as u128 {
                return Err(DataFusionError::ResourcesExhausted(format!(
                    "{} would make a string of {value} bytes, over the limit of {} \
                     (maxStringBytes)",
                    self.inner.name(),
                    self.max_value
                )));
            }
            total += value;
        }
        if total > self.max_total as u128 {
            return Err(DataFusionError::ResourcesExhausted(format!(
                "{} would make {total} bytes of strings in one batch, over the query's memory \
                 limit of {} bytes (maxQueryMemoryBytes)",
                self.inner.name(),
                self.max_total
            )));
        }
        Ok(())
    }
}

impl ScalarUDFImpl for Guarded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn aliases(&self) -> &[String] {
        self.inner.aliases()
    }

    fn signature(&self) -> &Signature {
        self.inner.signature()
    }

    fn return_type(&self, arg_types: &[DataType]) -> DfResult<DataType> {
        self.inner.return_type(arg_types)
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> DfResult<FieldRef> {
        self.inner.return_field_from_args(args)
    }

    fn coerce_types(&self, arg_types: &[DataType]) -> DfResult<Vec<DataType>> {
        self.inner.coerce_types(arg_types)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        self.check(&args)?;
        self.inner.invoke_with_args(args)
    }

    fn documentation(&self) -> Option<&Documentation> {
        self.inner.documentation()
    }
}
