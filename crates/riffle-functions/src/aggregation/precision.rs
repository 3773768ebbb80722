//! `SUMPRECISION(x[, precision[, scale]])`: an exact decimal sum, returned as STRING (as
//! Pinot returns its BigDecimal sum).
//!
//! Each value is read as the decimal it is written as: integers exactly, floating-point
//! values by their shortest decimal form (what Java's `Double.toString` gives Pinot),
//! text as a decimal number. The sum is a 128-bit integer with a decimal scale, so it is
//! exact up to 38 digits; beyond that the query fails with an error saying so. With a
//! precision, the result is rounded to that many significant digits, then with a scale to
//! that many decimals, both half to even (Pinot's `MathContext` and `setScale`). Over no
//! rows the sum is 0.

use datafusion::arrow::array::{Array, ArrayRef, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result, ScalarValue};

use super::{Aggregation, AggregationArgs, AggregationState};

/// A decimal: `mantissa` × 10^-`scale`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Decimal {
    mantissa: i128,
    scale: i32,
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

impl Decimal {
    /// Parses `[-+]digits[.digits][e[-+]digits]`.
    pub(super) fn parse(s: &str) -> Option<Decimal> {
        let s = s.trim();
        let (num, exp) = match s.find(['e', 'E']) {
            Some(i) => (&s[..i], s[i + 1..].parse::<i32>().ok()?),
            None => (s, 0),
        };
        let (neg, digits) = match num.strip_prefix('-') {
            Some(d) => (true, d),
            None => (false, num.strip_prefix('+').unwrap_or(num)),
        };
        let (int, frac) = digits.split_once('.').unwrap_or((digits, ""));
        if int.is_empty() && frac.is_empty() {
            return None;
        }
        let mut m: i128 = 0;
        for c in int.chars().chain(frac.chars()) {
            let d = c.to_digit(10)?;
            m = m.checked_mul(10)?.checked_add(i128::from(d))?;
        }
        let scale = i32::try_from(frac.len()).ok()?.checked_sub(exp)?;
        Some(Decimal {
            mantissa: if neg { -m } else { m },
            scale,
        })
    }

    /// `self` with scale `scale` (not below its own), exactly.
    fn widened(self, scale: i32) -> Option<Decimal> {
        let up = u32::try_from(scale - self.scale).ok()?;
        Some(Decimal {
            mantissa: self.mantissa.checked_mul(pow10(up)?)?,
            scale,
        })
    }

    pub(super) fn checked_add(self, o: Decimal) -> Option<Decimal> {
        let scale = self.scale.max(o.scale);
        let (a, b) = (self.widened(scale)?, o.widened(scale)?);
        Some(Decimal {
            mantissa: a.mantissa.checked_add(b.mantissa)?,
            scale,
        })
    }

    /// Drops `n` trailing digits, rounding half to even.
    fn drop_digits(self, n: u32) -> Option<Decimal> {
        if n == 0 {
            return Some(self);
        }
        let Some(div) = pow10(n) else {
            // More digits dropped than any i128 has: zero.
            return Some(Decimal {
                mantissa: 0,
                scale: self.scale - i32::try_from(n).ok()?,
            });
        };
        let (q, r) = (self.mantissa / div, self.mantissa % div);
        let twice = r.abs() * 2;
        let up = twice > div || (twice == div && q % 2 != 0);
        let q = if up { q + self.mantissa.signum() } else { q };
        Some(Decimal {
            mantissa: q,
            scale: self.scale - i32::try_from(n).ok()?,
        })
    }

    /// Rounded to `precision` significant digits.
    pub(super) fn round_to_precision(self, precision: u32) -> Option<Decimal> {
        let digits = self
            .mantissa
            .unsigned_abs()
            .checked_ilog10()
            .map_or(1, |d| d + 1);
        if precision == 0 || digits <= precision {
            return Some(self);
        }
        self.drop_digits(digits - precision)
    }

    /// With exactly `scale` decimals, rounding half to even when shortened.
    pub(super) fn with_scale(self, scale: i32) -> Option<Decimal> {
        if scale >= self.scale {
            self.widened(scale)
        } else {
            self.drop_digits(u32::try_from(self.scale - scale).ok()?)
        }
    }

    /// The plain decimal text (no exponent).
    pub(super) fn plain(&self) -> String {
        let digits = self.mantissa.unsigned_abs().to_string();
        let sign = if self.mantissa < 0 { "-" } else { "" };
        if self.scale <= 0 {
            let zeros = "0".repeat(self.scale.unsigned_abs() as usize);
            return if self.mantissa == 0 {
                "0".to_string()
            } else {
                format!("{sign}{digits}{zeros}")
            };
        }
        let scale = self.scale as usize;
        let padded = if digits.len() <= scale {
            format!("{}{digits}", "0".repeat(scale - digits.len() + 1))
        } else {
            digits
        };
        let (int, frac) = padded.split_at(padded.len() - scale);
        format!("{sign}{int}.{frac}")
    }
}

/// `SUMPRECISION`.
#[derive(Debug)]
pub(super) struct SumPrecision {
    pub(super) name: &'static str,
}

impl Aggregation for SumPrecision {
    fn name(&self) -> &str {
        self.name
    }

    fn arity(&self) -> (usize, usize) {
        (1, 3)
    }

    fn result_type(&self, types: &[DataType]) -> Result<DataType> {
        match types.first() {
            Some(t)
                if t.is_numeric()
                    || t.is_null()
                    || matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View) =>
            {
                Ok(DataType::Utf8)
            }
            Some(t) => exec_err!("{} takes a number, got {t}", self.name),
            None => exec_err!("{} takes a column", self.name),
        }
    }

    fn initialise(&self, args: &AggregationArgs) -> Result<Box<dyn AggregationState>> {
        let whole = |i: usize, what: &str, max: f64| -> Result<Option<u32>> {
            if args.types.len() <= i {
                return Ok(None);
            }
            match args.number(i) {
                Some(v) if (0.0..=max).contains(&v) && v.fract() == 0.0 => Ok(Some(v as u32)),
                _ => exec_err!(
                    "{}: the {what} must be a whole number from 0 to {max}",
                    self.name
                ),
            }
        };
        let precision = whole(1, "precision (second argument)", 38.0)?;
        let scale = whole(2, "scale (third argument)", 38.0)?;
        Ok(Box::new(SumState {
            name: self.name,
            precision,
            scale,
            sum: Decimal::default(),
        }))
    }
}

#[derive(Debug)]
struct SumState {
    name: &'static str,
    precision: Option<u32>,
    scale: Option<u32>,
    sum: Decimal,
}

impl SumState {
    fn add(&mut self, d: Option<Decimal>, text: &dyn Fn() -> String) -> Result<()> {
        let Some(d) = d else {
            return exec_err!("{}: '{}' is not a decimal number", self.name, text());
        };
        match self.sum.checked_add(d) {
            Some(s) => {
                self.sum = s;
                Ok(())
            }
            None => exec_err!(
                "{}: the sum does not fit in 38 decimal digits (adding {})",
                self.name,
                text()
            ),
        }
    }
}

impl AggregationState for SumState {
    fn aggregate(&mut self, values: &[ArrayRef]) -> Result<()> {
        let Some(a) = values.first() else {
            return exec_err!("{} takes a column", self.name);
        };
        let t = a.data_type();
        if t.is_integer() {
            let a = cast(a, &DataType::Int64)?;
            for v in a.as_primitive::<Int64Type>().iter().flatten() {
                let d = Decimal {
                    mantissa: i128::from(v),
                    scale: 0,
                };
                self.add(Some(d), &|| v.to_string())?;
            }
        } else if t.is_floating() {
            let a = cast(a, &DataType::Float64)?;
            for v in a.as_primitive::<Float64Type>().iter().flatten() {
                let text = if v.is_finite() {
                    format!("{v:e}")
                } else {
                    v.to_string()
                };
                self.add(Decimal::parse(&text), &|| v.to_string())?;
            }
        } else if t.is_numeric() {
            // Decimals: their exact text.
            let a = cast(a, &DataType::Utf8)?;
            for v in a.as_string::<i32>().iter().flatten() {
                self.add(Decimal::parse(v), &|| v.to_string())?;
            }
        } else if !t.is_null() {
            let a = cast(a, &DataType::Utf8)?;
            for v in a.as_string::<i32>().iter().flatten() {
                self.add(Decimal::parse(v), &|| v.to_string())?;
            }
        }
        Ok(())
    }

    fn serialize(&self) -> Result<Vec<u8>> {
        let mut out = self.sum.mantissa.to_le_bytes().to_vec();
        out.extend_from_slice(&self.sum.scale.to_le_bytes());
        Ok(out)
    }

    fn merge(&mut self, b: &[u8]) -> Result<()> {
        let (Some(m), Some(s)) = (
            b.get(..16)
                .and_then(|s| s.try_into().ok())
                .map(i128::from_le_bytes),
            b.get(16..20)
                .and_then(|s| s.try_into().ok())
                .map(i32::from_le_bytes),
        ) else {
            return exec_err!("{}: a malformed intermediate result", self.name);
        };
        let d = Decimal {
            mantissa: m,
            scale: s,
        };
        self.add(Some(d), &|| d.plain())
    }

    fn finish(&self) -> Result<ScalarValue> {
        let mut r = Some(self.sum);
        if let Some(p) = self.precision {
            r = r.and_then(|d| d.round_to_precision(p));
            if let Some(s) = self.scale {
                r = r.and_then(|d| d.with_scale(s as i32));
            }
        }
        match r {
            Some(d) => Ok(ScalarValue::Utf8(Some(d.plain()))),
            None => exec_err!(
                "{}: the result does not fit in 38 decimal digits",
                self.name
            ),
        }
    }

    fn size(&self) -> usize {
        std::mem::size_of::<Self>()
    }
}

/// `a + b` of two decimal texts, exactly (at most 38 digits), as plain text: the partial
/// sums of an ingestion rollup's `SUMPRECISION` column. `None` for text that is not a
/// number or a sum past 38 digits.
pub fn add_decimal_text(a: &str, b: &str) -> Option<String> {
    let x = if a.trim().is_empty() {
        Decimal::default()
    } else {
        Decimal::parse(a)?
    };
    let y = if b.trim().is_empty() {
        Decimal::default()
    } else {
        Decimal::parse(b)?
    };
    Some(x.checked_add(y)?.plain())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> Decimal {
        Decimal::parse(s).unwrap_or_default()
    }

    #[test]
    fn decimals_add_exactly_and_round_half_even() {
        // 0.1 + 0.2 is 0.3 in decimal, not 0.30000000000000004.
        let sum = d("0.1").checked_add(d("0.2")).unwrap_or_default();
        assert_eq!(sum.plain(), "0.3");
        assert_eq!(d("-1.5e3").plain(), "-1500");
        assert_eq!(d("1.25e-3").plain(), "0.00125");
        assert_eq!(
            d("12345").round_to_precision(2).map(|x| x.plain()),
            Some("12000".into())
        );
        // Half to even: 2.5 -> 2, 3.5 -> 4, -2.5 -> -2.
        assert_eq!(d("2.5").with_scale(0).map(|x| x.plain()), Some("2".into()));
        assert_eq!(d("3.5").with_scale(0).map(|x| x.plain()), Some("4".into()));
        assert_eq!(
            d("-2.5").with_scale(0).map(|x| x.plain()),
            Some("-2".into())
        );
        // Two roundings, as Pinot's MathContext then setScale: 1.23456 -> 1.235 -> 1.24.
        assert_eq!(
            d("1.23456")
                .round_to_precision(4)
                .and_then(|x| x.with_scale(2))
                .map(|x| x.plain()),
            Some("1.24".into())
        );
        assert_eq!(
            d("7").with_scale(3).map(|x| x.plain()),
            Some("7.000".into())
        );
        assert!(Decimal::parse("1.2.3").is_none());
        assert!(Decimal::parse("abc").is_none());
        // 39 nines do not fit.
        assert!(d("99999999999999999999999999999999999999")
            .checked_add(d("1e38"))
            .is_none());
    }
}
