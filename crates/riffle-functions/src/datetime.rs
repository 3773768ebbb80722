//! Pinot's date-time functions on epoch values (`DateTimeFunctions`, `DATETIMECONVERT`).
//!
//! Pinot keeps time as numbers: epoch milliseconds (a TIMESTAMP is one), or epoch values in
//! another unit. Every function here reads its time argument as such a number (a TIMESTAMP
//! column gives its milliseconds; a text argument is read as a date by the functions that
//! take a pattern), and takes its other arguments (units, patterns, time zones, sizes) as
//! literals, read once per call.
//!
//! | Function | Result | Meaning |
//! | --- | --- | --- |
//! | `TOEPOCHSECONDS(ms)`, `...MINUTES`, `...HOURS`, `...DAYS` | LONG | `ms` in that unit (truncated as Java's `TimeUnit` does) |
//! | `TOEPOCH<UNIT>ROUNDED(ms, n)` | LONG | the same, floored to a multiple of `n` |
//! | `TOEPOCH<UNIT>BUCKET(ms, n)` | LONG | the same, divided by `n` |
//! | `FROMEPOCH<UNIT>(v)`, `FROMEPOCH<UNIT>BUCKET(v, n)` | LONG | back to milliseconds (`v · n` units) |
//! | `DATETRUNC(unit, t[, inUnit[, tz[, outUnit]]])` | LONG | `t` (in `inUnit`, default MILLISECONDS) truncated to `unit` (`millisecond` … `week` (ISO, Monday), `month`, `quarter`, `year`) in `tz` (default UTC), in `outUnit` (default `inUnit`) |
//! | `DATETIMECONVERT(t, inFormat, outFormat, granularity[, bucketTz])` | LONG, or STRING for a date pattern | converts between formats (`1:MILLISECONDS:EPOCH`, `5:MINUTES:EPOCH`, `1:MILLISECONDS:TIMESTAMP`, `1:DAYS:SIMPLE_DATE_FORMAT:yyyy-MM-dd[ tz(Zone)]`, or the pipe forms `EPOCH\|MILLISECONDS\|1`, `TIMESTAMP`, `SIMPLE_DATE_FORMAT\|pattern\|zone`), bucketed to `granularity` (`15:MINUTES`; days in `bucketTz`) |
//! | `TIMECONVERT(t, fromUnit, toUnit)` | LONG | `t` converted between time units |
//! | `TODATETIME(ms, pattern[, tz])` | STRING | formatted with a Java date pattern |
//! | `FROMDATETIME(text, pattern[, tz])` | LONG | parsed with a Java date pattern, to epoch milliseconds |
//! | `YEAR`, `QUARTER`, `MONTH`, `WEEK` / `WEEKOFYEAR` (ISO), `DAYOFYEAR` / `DOY`, `DAY` / `DAYOFMONTH`, `DAYOFWEEK` / `DOW` (ISO: Monday 1), `YEAROFWEEK` / `YOW`, `HOUR`, `MINUTE`, `SECOND`, `MILLISECOND` `(ms[, tz])` | INT | the field in `tz` (default UTC) |
//! | `DATEADD(unit, n, ms)`, `DATEDIFF(unit, ms1, ms2)` | LONG | calendar-aware for months, quarters and years ([`DateArith`]) |
//! | `AGO(duration)` | LONG | now minus an ISO-8601 duration (`PT1H`, `P1D`), in epoch milliseconds |
//! | `NOW()` | LONG | now, in epoch milliseconds (Pinot's; DataFusion's answers a TIMESTAMP) |
//!
//! A null time gives null; a malformed literal (unknown unit, bad pattern, unknown zone) is
//! an error naming the function and the argument; a text that does not parse as the
//! pattern gives null for that row.

mod arith;
mod columns;
mod format;

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result, ScalarValue};
use datafusion::logical_expr::{
    ColumnarValue, ReturnFieldArgs, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature,
    TypeSignature, Volatility,
};

pub use arith::{date_add, date_diff, DateArith};
use columns::{build, readable};
use format::{field_of, parse_tz, truncate, unit_millis, Tz};
pub use format::{DateTimeFormat, Granularity};

/// A time value as a function reads it.
#[derive(Clone, Copy, Debug)]
pub enum In<'a> {
    /// A whole number (epoch value; a TIMESTAMP's milliseconds).
    Long(i64),
    /// A fraction.
    Double(f64),
    /// Text (a formatted date).
    Text(&'a str),
}

impl In<'_> {
    fn long(&self) -> Option<i64> {
        match *self {
            In::Long(v) => Some(v),
            In::Double(v) if v.is_finite() => Some(v as i64),
            In::Text(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

/// A function's result for one row.
#[derive(Clone, Debug)]
pub enum Out {
    /// LONG.
    Long(i64),
    /// INT.
    Int(i32),
    /// STRING.
    Text(String),
}

/// A function of one time value, its literal arguments already read.
pub type Plan = Box<dyn Fn(In<'_>) -> Option<Out> + Send + Sync>;

/// Reads the literal arguments (None at the time value's position) into a plan.
type Planner = fn(&str, &[Option<ScalarValue>]) -> Result<Plan>;

/// The result type, from the literal arguments.
type Typer = fn(&[Option<&ScalarValue>]) -> DataType;

/// One of the functions of this module.
#[derive(Debug)]
struct TimeFn {
    name: &'static str,
    /// Position of the time value; None for functions of literals only (`AGO`).
    value_at: Option<usize>,
    arity: (usize, usize),
    typer: Typer,
    planner: Planner,
    signature: Signature,
}

impl PartialEq for TimeFn {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

impl Eq for TimeFn {}

impl std::hash::Hash for TimeFn {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
    }
}

fn long(_: &[Option<&ScalarValue>]) -> DataType {
    DataType::Int64
}

fn int(_: &[Option<&ScalarValue>]) -> DataType {
    DataType::Int32
}

fn text(_: &[Option<&ScalarValue>]) -> DataType {
    DataType::Utf8
}

fn convert_type(lits: &[Option<&ScalarValue>]) -> DataType {
    let out = lits.get(2).copied().flatten().and_then(scalar_text);
    match out.map(|f| DateTimeFormat::parse(&f)) {
        Some(Ok(f)) if f.is_text() => DataType::Utf8,
        _ => DataType::Int64,
    }
}

fn scalar_text(v: &ScalarValue) -> Option<String> {
    crate::literal::text(v).map(str::to_string)
}

/// Literal `i` as text, or an error naming the function.
fn lit_text(name: &str, lits: &[Option<ScalarValue>], i: usize, what: &str) -> Result<String> {
    match lits.get(i).and_then(|v| v.as_ref()).and_then(scalar_text) {
        Some(s) => Ok(s),
        None => exec_err!("{name}: argument {} ({what}) must be a text literal", i + 1),
    }
}

/// Literal `i` as a whole number, or an error naming the function.
fn lit_long(name: &str, lits: &[Option<ScalarValue>], i: usize, what: &str) -> Result<i64> {
    match lits
        .get(i)
        .and_then(|v| v.as_ref())
        .and_then(crate::literal::whole)
    {
        Some(v) => Ok(v),
        None => exec_err!(
            "{name}: argument {} ({what}) must be a whole-number literal",
            i + 1
        ),
    }
}

/// Optional time-zone literal `i` (UTC when absent).
fn lit_tz(name: &str, lits: &[Option<ScalarValue>], i: usize) -> Result<Tz> {
    if lits.len() <= i {
        return Ok(Tz::utc());
    }
    let z = lit_text(name, lits, i, "time zone")?;
    parse_tz(&z).map_err(|e| datafusion::common::DataFusionError::Execution(format!("{name}: {e}")))
}

fn unit(name: &str, lits: &[Option<ScalarValue>], i: usize, what: &str) -> Result<i64> {
    let u = lit_text(name, lits, i, what)?;
    match unit_millis(&u) {
        Some(ms) => Ok(ms),
        None => exec_err!("{name}: unknown time unit '{u}' (argument {})", i + 1),
    }
}

fn positive(name: &str, v: i64, what: &str) -> Result<i64> {
    if v <= 0 {
        return exec_err!("{name}: {what} must be positive, got {v}");
    }
    Ok(v)
}

// -- the functions ------------------------------------------------------------------------

const UNITS: [(&str, i64); 4] = [
    ("seconds", 1_000),
    ("minutes", 60_000),
    ("hours", 3_600_000),
    ("days", 86_400_000),
];

fn unit_of_name(name: &str) -> i64 {
    UNITS
        .iter()
        .find(|(u, _)| name.contains(u))
        .map_or(1, |(_, ms)| *ms)
}

fn to_epoch(name: &str, _lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let ms = unit_of_name(name);
    Ok(Box::new(move |v| v.long().map(|t| Out::Long(t / ms))))
}

fn to_epoch_rounded(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let ms = unit_of_name(name);
    let n = positive(name, lit_long(name, lits, 1, "multiple")?, "the multiple")?;
    Ok(Box::new(move |v| {
        v.long().map(|t| Out::Long(t / ms / n * n))
    }))
}

fn to_epoch_bucket(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let ms = unit_of_name(name);
    let n = positive(
        name,
        lit_long(name, lits, 1, "bucket size")?,
        "the bucket size",
    )?;
    Ok(Box::new(move |v| v.long().map(|t| Out::Long(t / ms / n))))
}

fn from_epoch(name: &str, _lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let ms = unit_of_name(name);
    Ok(Box::new(move |v| {
        v.long().and_then(|t| t.checked_mul(ms)).map(Out::Long)
    }))
}

fn from_epoch_bucket(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let ms = unit_of_name(name);
    let n = positive(
        name,
        lit_long(name, lits, 1, "bucket size")?,
        "the bucket size",
    )?;
    Ok(Box::new(move |v| {
        v.long()
            .and_then(|t| t.checked_mul(n)?.checked_mul(ms))
            .map(Out::Long)
    }))
}

fn datetrunc(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let unit_name = lit_text(name, lits, 0, "unit")?.to_ascii_lowercase();
    if truncate(&unit_name, 0, &Tz::utc()).is_none() {
        return exec_err!("{name}: unknown unit '{unit_name}' (millisecond, second, minute, hour, day, week, month, quarter, year)");
    }
    let in_ms = if lits.len() > 2 {
        unit(name, lits, 2, "input time unit")?
    } else {
        1
    };
    let tz = lit_tz(name, lits, 3)?;
    let out_ms = if lits.len() > 4 {
        unit(name, lits, 4, "output time unit")?
    } else {
        in_ms
    };
    // In UTC the units up to a week are fixed lengths: arithmetic, no calendar.
    let utc = matches!(tz, Tz::Utc);
    let step = match unit_name.trim_end_matches('s') {
        "millisecond" if utc => Some(1),
        "second" if utc => Some(1_000),
        "minute" if utc => Some(60_000),
        "hour" if utc => Some(3_600_000),
        "day" if utc => Some(DAY_MS),
        _ => None,
    };
    let week_utc = utc && unit_name.trim_end_matches('s') == "week";
    Ok(Box::new(move |v| {
        let t = v.long()?.checked_mul(in_ms)?;
        let ms = match step {
            Some(s) => t.div_euclid(s) * s,
            // 1970-01-01 was a Thursday: Monday is 3 days before it.
            None if week_utc => {
                let day = t.div_euclid(DAY_MS);
                (day - (day + 3).rem_euclid(7)) * DAY_MS
            }
            None => truncate(&unit_name, t, &tz)?,
        };
        Some(Out::Long(ms.div_euclid(out_ms)))
    }))
}

/// Milliseconds in a day.
const DAY_MS: i64 = 86_400_000;

fn timeconvert(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let from = unit(name, lits, 1, "from unit")?;
    let to = unit(name, lits, 2, "to unit")?;
    Ok(Box::new(move |v| {
        v.long()
            .and_then(|t| t.checked_mul(from))
            .map(|ms| Out::Long(ms / to))
    }))
}

fn datetimeconvert(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let read = |i: usize, what: &str| -> Result<DateTimeFormat> {
        let f = lit_text(name, lits, i, what)?;
        DateTimeFormat::parse(&f).map_err(|e| {
            datafusion::common::DataFusionError::Execution(format!("{name}: {what} '{f}': {e}"))
        })
    };
    let input = read(1, "input format")?;
    let output = read(2, "output format")?;
    let g = lit_text(name, lits, 3, "granularity")?;
    let granularity = Granularity::parse(&g).map_err(|e| {
        datafusion::common::DataFusionError::Execution(format!("{name}: granularity '{g}': {e}"))
    })?;
    let bucket_tz = if lits.len() > 4 {
        Some(lit_tz(name, lits, 4)?)
    } else {
        None
    };
    Ok(Box::new(move |v| {
        let ms = input.to_millis(v)?;
        let ms = granularity.bucket(ms, bucket_tz.as_ref().or(output.tz()))?;
        output.from_millis(ms)
    }))
}

fn todatetime(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let pattern = lit_text(name, lits, 1, "pattern")?;
    let tz = lit_tz(name, lits, 2)?;
    let f = DateTimeFormat::pattern(&pattern, Some(tz)).map_err(|e| {
        datafusion::common::DataFusionError::Execution(format!("{name}: pattern '{pattern}': {e}"))
    })?;
    Ok(Box::new(move |v| f.from_millis(v.long()?)))
}

fn fromdatetime(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let pattern = lit_text(name, lits, 1, "pattern")?;
    let tz = lit_tz(name, lits, 2)?;
    let f = DateTimeFormat::pattern(&pattern, Some(tz)).map_err(|e| {
        datafusion::common::DataFusionError::Execution(format!("{name}: pattern '{pattern}': {e}"))
    })?;
    Ok(Box::new(move |v| f.to_millis(v).map(Out::Long)))
}

fn field(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let tz = lit_tz(name, lits, 1)?;
    let which = name.to_string();
    if field_of(&which, 0, &tz).is_none() {
        return exec_err!("{name}: not a date field");
    }
    Ok(Box::new(move |v| {
        field_of(&which, v.long()?, &tz).map(Out::Int)
    }))
}

fn now(_name: &str, _lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Ok(Box::new(move |_| Some(Out::Long(now))))
}

fn ago(name: &str, lits: &[Option<ScalarValue>]) -> Result<Plan> {
    let d = lit_text(name, lits, 0, "ISO-8601 duration")?;
    let Some(ms) = format::iso_duration_millis(&d) else {
        return exec_err!("{name}: '{d}' is not an ISO-8601 duration such as PT1H or P1D");
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    Ok(Box::new(move |_| Some(Out::Long(now - ms))))
}

/// Every function of this module.
pub fn functions() -> Vec<ScalarUDF> {
    let mut out: Vec<TimeFn> = Vec::new();
    let mut add =
        |name: &'static str, value_at: Option<usize>, arity, typer: Typer, planner: Planner| {
            out.push(TimeFn {
                name,
                value_at,
                arity,
                typer,
                planner,
                signature: if value_at.is_none() {
                    // Functions of literals only (`AGO(...)`, `NOW()`): zero arguments too.
                    Signature::one_of(
                        vec![TypeSignature::Nullary, TypeSignature::VariadicAny],
                        Volatility::Stable,
                    )
                } else {
                    Signature::variadic_any(Volatility::Immutable)
                },
            })
        };
    for (to, rounded, bucket, from, from_bucket) in [
        (
            "toepochseconds",
            "toepochsecondsrounded",
            "toepochsecondsbucket",
            "fromepochseconds",
            "fromepochsecondsbucket",
        ),
        (
            "toepochminutes",
            "toepochminutesrounded",
            "toepochminutesbucket",
            "fromepochminutes",
            "fromepochminutesbucket",
        ),
        (
            "toepochhours",
            "toepochhoursrounded",
            "toepochhoursbucket",
            "fromepochhours",
            "fromepochhoursbucket",
        ),
        (
            "toepochdays",
            "toepochdaysrounded",
            "toepochdaysbucket",
            "fromepochdays",
            "fromepochdaysbucket",
        ),
    ] {
        add(to, Some(0), (1, 1), long, to_epoch);
        add(rounded, Some(0), (2, 2), long, to_epoch_rounded);
        add(bucket, Some(0), (2, 2), long, to_epoch_bucket);
        add(from, Some(0), (1, 1), long, from_epoch);
        add(from_bucket, Some(0), (2, 2), long, from_epoch_bucket);
    }
    add("datetrunc", Some(1), (2, 5), long, datetrunc);
    add("timeconvert", Some(0), (3, 3), long, timeconvert);
    add(
        "datetimeconvert",
        Some(0),
        (4, 5),
        convert_type,
        datetimeconvert,
    );
    add("todatetime", Some(0), (2, 3), text, todatetime);
    add("fromdatetime", Some(0), (2, 3), long, fromdatetime);
    for f in [
        "year",
        "quarter",
        "month",
        "week",
        "weekofyear",
        "dayofyear",
        "doy",
        "day",
        "dayofmonth",
        "dayofweek",
        "dow",
        "yearofweek",
        "yow",
        "hour",
        "minute",
        "second",
        "millisecond",
    ] {
        add(f, Some(0), (1, 2), int, field);
    }
    add("ago", None, (1, 1), long, ago);
    add("now", None, (0, 0), long, now);
    let mut udfs: Vec<ScalarUDF> = out.into_iter().map(ScalarUDF::new_from_impl).collect();
    udfs.push(ScalarUDF::new_from_impl(DateArith::new(false)));
    udfs.push(ScalarUDF::new_from_impl(DateArith::new(true)));
    udfs
}

impl TimeFn {
    fn check_arity(&self, n: usize) -> Result<()> {
        let (least, most) = self.arity;
        if n < least || n > most {
            return exec_err!("{} takes {least} to {most} arguments, got {n}", self.name);
        }
        Ok(())
    }
}

impl ScalarUDFImpl for TimeFn {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _arg_types: &[DataType]) -> Result<DataType> {
        Ok((self.typer)(&[]))
    }

    fn return_field_from_args(&self, args: ReturnFieldArgs) -> Result<FieldRef> {
        self.check_arity(args.arg_fields.len())?;
        let t = (self.typer)(args.scalar_arguments);
        Ok(Arc::new(Field::new(self.name, t, true)))
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        self.check_arity(args.args.len())?;
        let rows = args.number_rows;
        let rt = args.return_field.data_type().clone();
        let mut lits: Vec<Option<ScalarValue>> = Vec::with_capacity(args.args.len());
        for (i, a) in args.args.iter().enumerate() {
            match a {
                _ if Some(i) == self.value_at => lits.push(None),
                ColumnarValue::Scalar(s) => lits.push(Some(s.clone())),
                ColumnarValue::Array(_) => {
                    return exec_err!("{}: argument {} must be a literal", self.name, i + 1)
                }
            }
        }
        let plan = (self.planner)(self.name, &lits)?;
        let Some(at) = self.value_at else {
            let out = build(&rt, 1, |_| plan(In::Long(0)));
            return Ok(ColumnarValue::Scalar(ScalarValue::try_from_array(&out, 0)?));
        };
        let Some(value) = args.args.get(at) else {
            return exec_err!("{}: the time argument is missing", self.name);
        };
        let values = readable(&value.to_array(rows)?)?;
        let out = match values.data_type() {
            DataType::Int64 => {
                let a = values.as_primitive::<Int64Type>();
                build(&rt, rows, |i| {
                    a.is_valid(i).then(|| plan(In::Long(a.value(i)))).flatten()
                })
            }
            DataType::Float64 => {
                let a = values.as_primitive::<Float64Type>();
                build(&rt, rows, |i| {
                    a.is_valid(i)
                        .then(|| plan(In::Double(a.value(i))))
                        .flatten()
                })
            }
            DataType::Utf8 => {
                let a = values.as_string::<i32>();
                build(&rt, rows, |i| {
                    a.is_valid(i).then(|| plan(In::Text(a.value(i)))).flatten()
                })
            }
            _ => build(&rt, rows, |_| None),
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests;
