//! Pinot's string functions whose meaning differs from DataFusion's.
//!
//! `SUBSTR(s, begin[, end])`: Pinot's `substr`, 0-based, `end` exclusive, `end` -1 (or
//! absent) for the rest of the string; positions count characters. Where Pinot (Java's
//! `substring`) would fail on a position outside the string, the positions are clamped to
//! it. The query engine binds `SUBSTR(...)` to this function; SQL's `SUBSTRING(s FROM a FOR
//! n)` / `SUBSTRING(s, a, n)` keep SQL's meaning (1-based, a length).

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

/// Pinot's `SUBSTR`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PinotSubstr {
    signature: Signature,
}

impl PinotSubstr {
    /// The function.
    pub fn new() -> PinotSubstr {
        PinotSubstr {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for PinotSubstr {
    fn default() -> Self {
        PinotSubstr::new()
    }
}

/// The characters `begin..end` of `s` (end -1: to the end), clamped to the string.
pub fn substr(s: &str, begin: i64, end: i64) -> &str {
    let len = s.chars().count() as i64;
    let b = begin.clamp(0, len);
    let e = if end < 0 { len } else { end.clamp(b, len) };
    let byte = |n: i64| s.char_indices().nth(n as usize).map_or(s.len(), |(i, _)| i);
    &s[byte(b)..byte(e)]
}

impl ScalarUDFImpl for PinotSubstr {
    fn name(&self) -> &str {
        "substr"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        match arg_types {
            [_, b] | [_, b, _] if b.is_integer() || b.is_null() => Ok(DataType::Utf8),
            _ => exec_err!(
                "substr takes a string, a begin index and an optional end index; got {arg_types:?}"
            ),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let s = cast(&arrays[0], &DataType::Utf8)?;
        let s = s.as_string::<i32>();
        let begin = cast(&arrays[1], &DataType::Int64)?;
        let begin = begin.as_primitive::<Int64Type>();
        let end = match arrays.get(2) {
            Some(e) => Some(cast(e, &DataType::Int64)?),
            None => None,
        };
        let end = end.as_ref().map(|e| e.as_primitive::<Int64Type>());
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        for i in 0..rows {
            let e = match end {
                Some(e) if e.is_null(i) => {
                    out.append_null();
                    continue;
                }
                Some(e) => e.value(i),
                None => -1,
            };
            if s.is_null(i) || begin.is_null(i) {
                out.append_null();
                continue;
            }
            out.append_value(substr(s.value(i), begin.value(i), e));
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::substr;

    #[test]
    fn zero_based_with_an_end_index_as_pinot() {
        assert_eq!(substr("Natalie", 0, 3), "Nat");
        assert_eq!(substr("Natalie", 2, -1), "talie");
        assert_eq!(substr("Natalie", 2, 2), "");
        assert_eq!(substr("héllo", 1, 3), "él");
        // Clamped where Java would throw.
        assert_eq!(substr("abc", 2, 10), "c");
        assert_eq!(substr("abc", -5, 1), "a");
        assert_eq!(substr("abc", 5, 7), "");
        assert_eq!(substr("abc", 2, 1), "");
    }
}
