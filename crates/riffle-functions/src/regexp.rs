//! `REGEXPEXTRACT(value, regexp[, group[, default]])`: Pinot's `regexpExtract`: the text of
//! capture group `group` (0, the default, is the whole match) of the first match of
//! `regexp` in `value`; `default` (the empty string unless given) when nothing matches or
//! the pattern has fewer groups; NULL when the group took no part in the match (Java's
//! `Matcher.group` answers null there).
//!
//! Patterns are Rust's `regex` syntax, which is Java's for the common part (classes,
//! quantifiers, groups, anchors, `(?i)`); look-around and back-references are not
//! supported and fail the query with the pattern named. Matching takes linear time, so a
//! hostile pattern cannot stall the query.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};
use regex::Regex;

/// Compiled patterns above this size are refused (the pattern is the caller's).
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// `REGEXPEXTRACT`.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct RegexpExtract {
    signature: Signature,
}

impl RegexpExtract {
    /// The function.
    pub fn new() -> RegexpExtract {
        RegexpExtract {
            signature: Signature::variadic_any(Volatility::Immutable),
        }
    }
}

impl Default for RegexpExtract {
    fn default() -> Self {
        RegexpExtract::new()
    }
}

fn compile(pattern: &str) -> Result<Regex> {
    match regex::RegexBuilder::new(pattern)
        .size_limit(MAX_PATTERN_BYTES)
        .build()
    {
        Ok(r) => Ok(r),
        Err(e) => exec_err!("regexpextract: invalid regular expression '{pattern}': {e}"),
    }
}

/// Pinot's answer for one value.
pub fn extract<'a>(re: &Regex, value: &'a str, group: usize, default: &'a str) -> Option<&'a str> {
    match re.captures(value) {
        Some(c) if group < c.len() => c.get(group).map(|m| m.as_str()),
        _ => Some(default),
    }
}

impl ScalarUDFImpl for RegexpExtract {
    fn name(&self) -> &str {
        "regexpextract"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if !(2..=4).contains(&arg_types.len()) {
            return exec_err!(
                "regexpextract takes 2 to 4 arguments (value, regexp[, group[, default]]), got {}",
                arg_types.len()
            );
        }
        Ok(DataType::Utf8)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = |i: usize| cast(&arrays[i], &DataType::Utf8);
        let values = text(0)?;
        let patterns = text(1)?;
        let groups = match arrays.get(2) {
            Some(g) => Some(cast(g, &DataType::Int64)?),
            None => None,
        };
        let defaults = match arrays.get(3) {
            Some(_) => Some(text(3)?),
            None => None,
        };
        let (values, patterns) = (values.as_string::<i32>(), patterns.as_string::<i32>());
        let groups = groups.as_ref().map(|g| g.as_primitive::<Int64Type>());
        let defaults = defaults.as_ref().map(|d| d.as_string::<i32>());
        // The pattern is almost always a literal: compiled once, then again only when it
        // changes from row to row.
        let mut compiled: Option<(String, Regex)> = None;
        let mut out = StringBuilder::with_capacity(rows, rows * 8);
        for i in 0..rows {
            if values.is_null(i) || patterns.is_null(i) {
                out.append_null();
                continue;
            }
            let pattern = patterns.value(i);
            if compiled.as_ref().is_none_or(|(p, _)| p != pattern) {
                compiled = Some((pattern.to_string(), compile(pattern)?));
            }
            let Some((_, re)) = compiled.as_ref() else {
                out.append_null();
                continue;
            };
            let group = match groups {
                Some(g) if g.is_null(i) => {
                    out.append_null();
                    continue;
                }
                Some(g) => match usize::try_from(g.value(i)) {
                    Ok(n) => n,
                    Err(_) => {
                        return exec_err!(
                            "regexpextract: the group must be 0 or more, got {}",
                            g.value(i)
                        )
                    }
                },
                None => 0,
            };
            let default = match defaults {
                Some(d) if d.is_null(i) => None,
                Some(d) => Some(d.value(i)),
                None => Some(""),
            };
            match default {
                Some(d) => out.append_option(extract(re, values.value(i), group, d)),
                None => match re.captures(values.value(i)) {
                    Some(c) if group < c.len() => {
                        out.append_option(c.get(group).map(|m| m.as_str()))
                    }
                    _ => out.append_null(),
                },
            }
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_as_pinot() {
        let re = compile("([a-z]+)-(\\d+)").unwrap();
        assert_eq!(extract(&re, "id abc-42 x", 0, ""), Some("abc-42"));
        assert_eq!(extract(&re, "id abc-42 x", 2, ""), Some("42"));
        // No match, or fewer groups: the default.
        assert_eq!(extract(&re, "nothing", 1, "none"), Some("none"));
        assert_eq!(extract(&re, "abc-42", 3, "none"), Some("none"));
        // A group that took no part: null.
        let opt = compile("a(b)?c").unwrap();
        assert_eq!(extract(&opt, "ac", 1, ""), None);
        let e = compile("(?<=a)b")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(e.contains("invalid regular expression '(?<=a)b'"), "{e}");
    }
}

#[cfg(test)]
mod sql_tests {
    use crate::sql_test::{error, rows};

    #[tokio::test]
    async fn regexpextract_through_sql() {
        let got = rows(
            "SELECT regexpextract(v, '([a-z]+)-(\\d+)', 2), regexpextract(v, 'z+'), \
             regexpextract(v, 'z+', 0, 'none') \
             FROM (VALUES ('ab-12'), ('cd-345')) AS t(v) ORDER BY v",
        )
        .await;
        assert_eq!(got, [["12", "", "none"], ["345", "", "none"]]);
        let e = error("SELECT regexpextract('a', '(?<=a)b')").await;
        assert!(e.contains("invalid regular expression"), "{e}");
    }
}
