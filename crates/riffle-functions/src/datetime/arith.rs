//! `DATEADD` and `DATEDIFF`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, Int64Builder};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDFImpl, Signature, Volatility,
};

use super::columns::readable;
use super::scalar_text;

/// `DATEADD(unit, n, ms)` and `DATEDIFF(unit, ms1, ms2)`, Pinot's (Joda's ISO fields in UTC):
/// `millisecond` … `week` are fixed lengths; `month`, `quarter` and `year` follow the
/// calendar (adding a month to January 31 gives the last day of February; a difference
/// counts whole units, truncated toward zero). Results are LONG epoch milliseconds
/// (`DATEADD`) or a LONG count (`DATEDIFF`).
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct DateArith {
    diff: bool,
    signature: Signature,
    aliases: Vec<String>,
}

impl DateArith {
    /// `DATEADD` (`diff` false) or `DATEDIFF`.
    pub fn new(diff: bool) -> DateArith {
        DateArith {
            diff,
            signature: Signature::variadic_any(Volatility::Immutable),
            aliases: vec![if diff { "date_diff" } else { "date_add" }.to_string()],
        }
    }
}

/// Milliseconds of a fixed-length unit, or months of a calendar one.
enum DateUnit {
    Fixed(i64),
    Months(i64),
}

fn date_unit(unit: &str) -> Option<DateUnit> {
    let u = unit.trim().to_ascii_lowercase();
    let u = u.strip_suffix('s').unwrap_or(&u);
    Some(match u {
        "millisecond" => DateUnit::Fixed(1),
        "second" => DateUnit::Fixed(1_000),
        "minute" => DateUnit::Fixed(60_000),
        "hour" => DateUnit::Fixed(3_600_000),
        "day" => DateUnit::Fixed(86_400_000),
        "week" => DateUnit::Fixed(7 * 86_400_000),
        "month" => DateUnit::Months(1),
        "quarter" => DateUnit::Months(3),
        "year" => DateUnit::Months(12),
        _ => return None,
    })
}

fn add_months(ms: i64, months: i64) -> Option<i64> {
    use chrono::{Months, TimeZone, Utc};
    let d = Utc.timestamp_millis_opt(ms).single()?;
    let m = Months::new(u32::try_from(months.unsigned_abs()).ok()?);
    let moved = if months >= 0 {
        d.checked_add_months(m)?
    } else {
        d.checked_sub_months(m)?
    };
    Some(moved.timestamp_millis())
}

/// Whole months from `a` to `b`, truncated toward zero.
fn months_between(a: i64, b: i64) -> Option<i64> {
    use chrono::{Datelike, TimeZone, Utc};
    let (x, y) = (
        Utc.timestamp_millis_opt(a).single()?,
        Utc.timestamp_millis_opt(b).single()?,
    );
    let mut m = (i64::from(y.year()) * 12 + i64::from(y.month0()))
        - (i64::from(x.year()) * 12 + i64::from(x.month0()));
    let landed = add_months(a, m)?;
    if m > 0 && landed > b {
        m -= 1;
    } else if m < 0 && landed < b {
        m += 1;
    }
    Some(m)
}

/// Pinot's `dateAdd` on one row.
pub fn date_add(unit: &str, n: i64, ms: i64) -> Option<i64> {
    match date_unit(unit)? {
        DateUnit::Fixed(u) => ms.checked_add(n.checked_mul(u)?),
        DateUnit::Months(k) => add_months(ms, n.checked_mul(k)?),
    }
}

/// Pinot's `dateDiff` on one row.
pub fn date_diff(unit: &str, a: i64, b: i64) -> Option<i64> {
    match date_unit(unit)? {
        DateUnit::Fixed(u) => Some(b.checked_sub(a)? / u),
        DateUnit::Months(k) => Some(months_between(a, b)? / k),
    }
}

impl ScalarUDFImpl for DateArith {
    fn name(&self) -> &str {
        if self.diff {
            "datediff"
        } else {
            "dateadd"
        }
    }

    fn aliases(&self) -> &[String] {
        &self.aliases
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != 3 {
            return exec_err!(
                "{} takes a unit and two arguments, got {}",
                self.name(),
                arg_types.len()
            );
        }
        Ok(DataType::Int64)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let unit = match args.args.first() {
            Some(ColumnarValue::Scalar(v)) => scalar_text(v),
            _ => None,
        };
        let Some(unit) = unit.filter(|u| date_unit(u).is_some()) else {
            return exec_err!(
                "{}: the unit (first argument) must be a literal: millisecond, second, minute, hour, day, week, month, quarter or year",
                self.name()
            );
        };
        let [_, b, c] = args.args.as_slice() else {
            return exec_err!("{} takes a unit and two arguments", self.name());
        };
        let b = readable(&b.to_array(rows)?)?;
        let c = readable(&c.to_array(rows)?)?;
        let (b, c) = (cast(&b, &DataType::Int64)?, cast(&c, &DataType::Int64)?);
        let (b, c) = (b.as_primitive::<Int64Type>(), c.as_primitive::<Int64Type>());
        let mut out = Int64Builder::with_capacity(rows);
        for i in 0..rows {
            if b.is_null(i) || c.is_null(i) {
                out.append_null();
                continue;
            }
            out.append_option(if self.diff {
                date_diff(&unit, b.value(i), c.value(i))
            } else {
                date_add(&unit, b.value(i), c.value(i))
            });
        }
        Ok(ColumnarValue::Array(Arc::new(out.finish())))
    }
}
