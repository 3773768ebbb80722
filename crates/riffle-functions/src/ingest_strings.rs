//! String functions that ingestion transforms use most, with Pinot's meaning:
//!
//! | Function | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `SPLIT(s, delimiter[, limit])` | STRING multi-value | `s` split on the whole delimiter, empty parts dropped (Commons Lang's `splitByWholeSeparator`); with `limit` at most that many parts, the last holding the rest; an empty delimiter splits on whitespace |
//! | `CONCAT(a, b[, separator])` | STRING | `a`, the separator, then `b` (Pinot's, where DataFusion's `concat` joins every argument); more than three arguments are all joined, as DataFusion's |
//! | `JSONFORMAT(value)` | STRING | the value as JSON text: objects and arrays (given as JSON text or lists) compact, text quoted, numbers and booleans as written |
//!
//! A null argument gives null, as Pinot's function evaluator does.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, ListBuilder, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Field, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Split,
    Concat,
    JsonFormat,
}

/// One of this module's functions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct IngestString {
    name: &'static str,
    op: Op,
    signature: Signature,
}

/// Every function of this module.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("split", Op::Split),
        ("concat", Op::Concat),
        ("jsonformat", Op::JsonFormat),
    ]
    .into_iter()
    .map(|(name, op)| {
        ScalarUDF::new_from_impl(IngestString {
            name,
            op,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

/// Commons Lang's `splitByWholeSeparator(s, sep, limit)` (limit <= 0: no limit).
pub fn split(s: &str, sep: &str, limit: i64) -> Vec<String> {
    if sep.is_empty() {
        let parts: Vec<&str> = s.split_whitespace().collect();
        return limited(s, parts, limit, |r| r.trim_start());
    }
    let parts: Vec<&str> = s.split(sep).filter(|p| !p.is_empty()).collect();
    limited(s, parts, limit, |r| {
        let mut r = r;
        while let Some(x) = r.strip_prefix(sep) {
            r = x;
        }
        r
    })
}

fn limited(
    s: &str,
    parts: Vec<&str>,
    limit: i64,
    skip_separators: impl Fn(&str) -> &str,
) -> Vec<String> {
    if limit <= 0 || parts.len() as i64 <= limit {
        return parts.into_iter().map(str::to_string).collect();
    }
    let keep = (limit - 1) as usize;
    let mut out: Vec<String> = parts[..keep].iter().map(|p| p.to_string()).collect();
    // The rest starts where the part after the kept ones starts.
    let rest = match parts.get(keep) {
        Some(p) => {
            let at = p.as_ptr() as usize - s.as_ptr() as usize;
            skip_separators(&s[at..])
        }
        None => "",
    };
    out.push(rest.to_string());
    out
}

/// Pinot's `jsonFormat` of one value given as text: JSON text of an object or array is
/// kept (compacted), anything else is quoted.
pub fn json_format_text(s: &str) -> String {
    let t = s.trim_start();
    if t.starts_with('{') || t.starts_with('[') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(s) {
            return v.to_string();
        }
    }
    serde_json::Value::String(s.to_string()).to_string()
}

impl ScalarUDFImpl for IngestString {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, args: &[DataType]) -> Result<DataType> {
        let n = args.len();
        match self.op {
            Op::Split if (2..=3).contains(&n) => Ok(DataType::List(Arc::new(Field::new(
                "item",
                DataType::Utf8,
                true,
            )))),
            Op::Split => exec_err!("split takes a string, a delimiter and an optional limit"),
            Op::Concat if n >= 2 => Ok(DataType::Utf8),
            Op::Concat => exec_err!("concat takes two strings and an optional separator"),
            Op::JsonFormat if n == 1 => Ok(DataType::Utf8),
            Op::JsonFormat => exec_err!("jsonFormat takes one value"),
        }
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let out: ArrayRef = match self.op {
            Op::Split => {
                let s = cast(&arrays[0], &DataType::Utf8)?;
                let sep = cast(&arrays[1], &DataType::Utf8)?;
                let limit = match arrays.get(2) {
                    Some(l) => Some(cast(l, &DataType::Int64)?),
                    None => None,
                };
                let (s, sep) = (s.as_string::<i32>(), sep.as_string::<i32>());
                let limit = limit.as_ref().map(|l| l.as_primitive::<Int64Type>());
                let mut b = ListBuilder::new(StringBuilder::new());
                for i in 0..rows {
                    if s.is_null(i) || sep.is_null(i) || limit.is_some_and(|l| l.is_null(i)) {
                        b.append(false);
                        continue;
                    }
                    let n = limit.map_or(0, |l| l.value(i));
                    for p in split(s.value(i), sep.value(i), n) {
                        b.values().append_value(p);
                    }
                    b.append(true);
                }
                Arc::new(b.finish())
            }
            Op::Concat => {
                let texts: Vec<ArrayRef> = arrays
                    .iter()
                    .map(|a| cast(a, &DataType::Utf8))
                    .collect::<std::result::Result<_, _>>()?;
                let texts: Vec<_> = texts.iter().map(|a| a.as_string::<i32>()).collect();
                let mut b = StringBuilder::with_capacity(rows, rows * 16);
                for i in 0..rows {
                    if texts.iter().any(|t| t.is_null(i)) {
                        b.append_null();
                        continue;
                    }
                    let v = if texts.len() == 3 {
                        format!(
                            "{}{}{}",
                            texts[0].value(i),
                            texts[2].value(i),
                            texts[1].value(i)
                        )
                    } else {
                        texts.iter().map(|t| t.value(i)).collect::<String>()
                    };
                    b.append_value(v);
                }
                Arc::new(b.finish())
            }
            Op::JsonFormat => {
                let a = &arrays[0];
                let mut b = StringBuilder::with_capacity(rows, rows * 16);
                match a.data_type() {
                    DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                        let s = cast(a, &DataType::Utf8)?;
                        let s = s.as_string::<i32>();
                        for i in 0..rows {
                            if s.is_null(i) {
                                b.append_null();
                            } else {
                                b.append_value(json_format_text(s.value(i)));
                            }
                        }
                    }
                    _ => {
                        let opts = datafusion::arrow::util::display::FormatOptions::new();
                        let fmt = datafusion::arrow::util::display::ArrayFormatter::try_new(
                            a.as_ref(),
                            &opts,
                        )?;
                        for i in 0..rows {
                            if a.is_null(i) {
                                b.append_null();
                            } else if let Some(l) = a.as_list_opt::<i32>() {
                                b.append_value(list_json(&l.value(i))?);
                            } else {
                                b.append_value(fmt.value(i).to_string());
                            }
                        }
                    }
                }
                Arc::new(b.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

/// A list's items as a JSON array (text items quoted).
fn list_json(items: &ArrayRef) -> Result<String> {
    let text = matches!(items.data_type(), DataType::Utf8 | DataType::LargeUtf8);
    let opts = datafusion::arrow::util::display::FormatOptions::new();
    let fmt = datafusion::arrow::util::display::ArrayFormatter::try_new(items.as_ref(), &opts)?;
    let mut out = Vec::with_capacity(items.len());
    for i in 0..items.len() {
        let v = fmt.value(i).to_string();
        out.push(if items.is_null(i) {
            "null".to_string()
        } else if text {
            serde_json::Value::String(v).to_string()
        } else {
            v
        });
    }
    Ok(format!("[{}]", out.join(",")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_as_commons_lang() {
        assert_eq!(split("a,b,,c", ",", 0), ["a", "b", "c"]);
        assert_eq!(split("ab-!-cd-!-ef", "-!-", 0), ["ab", "cd", "ef"]);
        assert_eq!(split(",a,", ",", 0), ["a"]);
        assert_eq!(split("ab   de fg", "", 0), ["ab", "de", "fg"]);
        assert_eq!(split("a,b,c,d", ",", 2), ["a", "b,c,d"]);
        assert_eq!(split("a,,b,,c", ",", 2), ["a", "b,,c"]);
        assert!(split("", ",", 0).is_empty());
    }

    #[test]
    fn formats_json() {
        assert_eq!(json_format_text("{\"a\": [1, 2]}"), "{\"a\":[1,2]}");
        assert_eq!(json_format_text("text"), "\"text\"");
        assert_eq!(json_format_text("{not json"), "\"{not json\"");
    }

    #[tokio::test]
    async fn through_sql() {
        use crate::sql_test::first_row;
        assert_eq!(
            first_row("SELECT concat('a', 'b', '-'), concat('a', 'b'), split('x;y;;z', ';')").await,
            ["a-b", "ab", "[x, y, z]"]
        );
        assert_eq!(
            first_row("SELECT jsonformat(split('x;y', ';')), jsonformat(12)").await,
            ["[\"x\",\"y\"]", "12"]
        );
    }
}
