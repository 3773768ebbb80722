//! Values as the filter sees them: every column compares in one of three domains, and
//! literals are converted to a column's domain once per predicate.
//!
//! | Pinot type | domain | order |
//! | --- | --- | --- |
//! | INT, LONG, TIMESTAMP (ms), BOOLEAN (false = 0, true = 1) | `I(i64)` | numeric |
//! | FLOAT, DOUBLE | `F(f64)` | IEEE 754 total order, as Arrow's comparison kernels (and so DataFusion) compare: `-0.0 < 0.0`, NaN above every number |
//! | STRING, JSON, UUID, complex types (text), BYTES | `B(bytes)` | byte-wise |
//!
//! BIG_DECIMAL is kept as text but compares numerically in Pinot, so its predicates are
//! never answered here (every row is a candidate).
//!
//! Literal conversion ([`convert`]) is exact: an INT column compared with `2.5` becomes
//! "no row" for `=`, `>= 3` for `> 2.5`, and so on. A literal that cannot be converted
//! (text that is not a number for a numeric column, a NaN, an integer beyond 2^53 against a
//! floating-point column) makes the predicate [`Cond::All`]: nothing is pruned or filtered
//! out, and the query engine decides.

use std::cmp::Ordering;

use arrow::array::{
    Array, BinaryArray, BooleanArray, Float32Array, Float64Array, Int32Array, Int64Array,
    StringArray, TimestampMillisecondArray,
};
use riffle_config::datetime::parse_timestamp_millis;
use riffle_config::DataType;

use super::{Literal, Predicate};
use crate::columns::Physical;

/// 2^53: integers up to this magnitude convert to f64 exactly.
const EXACT_F64_INT: f64 = 9_007_199_254_740_992.0;

/// A value in a column's comparison domain.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Key {
    /// Integers, timestamps, booleans.
    I(i64),
    /// Floating point.
    F(f64),
    /// Text and bytes.
    B(Vec<u8>),
}

/// A borrowed [`Key`].
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyRef<'a> {
    /// Integers, timestamps, booleans.
    I(i64),
    /// Floating point.
    F(f64),
    /// Text and bytes.
    B(&'a [u8]),
}

impl Key {
    /// Borrowed form.
    pub fn as_ref(&self) -> KeyRef<'_> {
        match self {
            Key::I(v) => KeyRef::I(*v),
            Key::F(v) => KeyRef::F(*v),
            Key::B(v) => KeyRef::B(v),
        }
    }
}

/// Total order within a domain (mismatched domains, which callers never produce, order by
/// domain).
pub(crate) fn cmp(a: KeyRef<'_>, b: KeyRef<'_>) -> Ordering {
    match (a, b) {
        (KeyRef::I(x), KeyRef::I(y)) => x.cmp(&y),
        (KeyRef::F(x), KeyRef::F(y)) => x.total_cmp(&y),
        (KeyRef::B(x), KeyRef::B(y)) => x.cmp(y),
        (x, y) => rank(x).cmp(&rank(y)),
    }
}

fn rank(k: KeyRef<'_>) -> u8 {
    match k {
        KeyRef::I(_) => 0,
        KeyRef::F(_) => 1,
        KeyRef::B(_) => 2,
    }
}

/// An i64 whose order is `f64::total_cmp`'s (used to sort floats as integers).
pub(crate) fn total_order_bits(f: f64) -> i64 {
    let b = f.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

/// Typed access to the values of an array in its comparison domain.
#[derive(Clone, Copy, Debug)]
pub(crate) enum KeyArray<'a> {
    /// INT.
    I32(&'a Int32Array),
    /// LONG.
    I64(&'a Int64Array),
    /// TIMESTAMP.
    Ts(&'a TimestampMillisecondArray),
    /// BOOLEAN.
    Bool(&'a BooleanArray),
    /// FLOAT.
    F32(&'a Float32Array),
    /// DOUBLE.
    F64(&'a Float64Array),
    /// Text.
    Str(&'a StringArray),
    /// Bytes.
    Bin(&'a BinaryArray),
}

impl<'a> KeyArray<'a> {
    /// A view of `a`, if it holds single values of a stored type.
    pub fn new(a: &'a dyn Array) -> Option<KeyArray<'a>> {
        let any = a.as_any();
        if let Some(x) = any.downcast_ref::<Int32Array>() {
            return Some(KeyArray::I32(x));
        }
        if let Some(x) = any.downcast_ref::<Int64Array>() {
            return Some(KeyArray::I64(x));
        }
        if let Some(x) = any.downcast_ref::<TimestampMillisecondArray>() {
            return Some(KeyArray::Ts(x));
        }
        if let Some(x) = any.downcast_ref::<BooleanArray>() {
            return Some(KeyArray::Bool(x));
        }
        if let Some(x) = any.downcast_ref::<Float32Array>() {
            return Some(KeyArray::F32(x));
        }
        if let Some(x) = any.downcast_ref::<Float64Array>() {
            return Some(KeyArray::F64(x));
        }
        if let Some(x) = any.downcast_ref::<StringArray>() {
            return Some(KeyArray::Str(x));
        }
        if let Some(x) = any.downcast_ref::<BinaryArray>() {
            return Some(KeyArray::Bin(x));
        }
        None
    }

    /// Elements.
    pub fn len(&self) -> usize {
        self.array().len()
    }

    fn array(&self) -> &'a dyn Array {
        match *self {
            KeyArray::I32(a) => a,
            KeyArray::I64(a) => a,
            KeyArray::Ts(a) => a,
            KeyArray::Bool(a) => a,
            KeyArray::F32(a) => a,
            KeyArray::F64(a) => a,
            KeyArray::Str(a) => a,
            KeyArray::Bin(a) => a,
        }
    }

    /// Whether element `i` is null (`i < len`).
    pub fn is_null(&self, i: usize) -> bool {
        self.array().is_null(i)
    }

    /// The validity of the elements, if any is null.
    pub fn nulls(&self) -> Option<&'a arrow::buffer::NullBuffer> {
        self.array().nulls().filter(|n| n.null_count() > 0)
    }

    /// The value of element `i` (`i < len`; the value under a null is unspecified).
    #[inline]
    pub fn get(&self, i: usize) -> KeyRef<'a> {
        match self {
            KeyArray::I32(a) => KeyRef::I(a.value(i) as i64),
            KeyArray::I64(a) => KeyRef::I(a.value(i)),
            KeyArray::Ts(a) => KeyRef::I(a.value(i)),
            KeyArray::Bool(a) => KeyRef::I(a.value(i) as i64),
            KeyArray::F32(a) => KeyRef::F(a.value(i) as f64),
            KeyArray::F64(a) => KeyRef::F(a.value(i)),
            KeyArray::Str(a) => KeyRef::B(a.value(i).as_bytes()),
            KeyArray::Bin(a) => KeyRef::B(a.value(i)),
        }
    }

    /// Smallest and largest non-null value.
    pub fn min_max(&self) -> Option<(KeyRef<'a>, KeyRef<'a>)> {
        let mut out: Option<(KeyRef<'a>, KeyRef<'a>)> = None;
        for i in 0..self.len() {
            if self.is_null(i) {
                continue;
            }
            let v = self.get(i);
            out = Some(match out {
                None => (v, v),
                Some((lo, hi)) => (
                    if cmp(v, lo).is_lt() { v } else { lo },
                    if cmp(v, hi).is_gt() { v } else { hi },
                ),
            });
        }
        out
    }
}

/// A literal converted to a column's domain.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Conv {
    /// Exactly this value.
    Exact(Key),
    /// Strictly between two consecutive integers (a fractional literal against an integer
    /// column).
    Between(i64, i64),
    /// Not convertible: be conservative.
    Unknown,
}

fn float_to_int(f: f64) -> Conv {
    if !f.is_finite() || f.abs() >= EXACT_F64_INT {
        // Beyond 2^53 an engine comparing in f64 rounds the column's values: not exact.
        return Conv::Unknown;
    }
    if f.fract() == 0.0 {
        Conv::Exact(Key::I(f as i64))
    } else {
        Conv::Between(f.floor() as i64, f.ceil() as i64)
    }
}

fn parse_number_for_int(s: &str) -> Conv {
    let t = s.trim();
    if let Ok(v) = t.parse::<i64>() {
        return Conv::Exact(Key::I(v));
    }
    match t.parse::<f64>() {
        Ok(f) => float_to_int(f),
        Err(_) => Conv::Unknown,
    }
}

fn float_key(f: f64) -> Conv {
    if f.is_nan() {
        Conv::Unknown
    } else {
        Conv::Exact(Key::F(f))
    }
}

fn hex_decode(s: &str) -> Option<Vec<u8>> {
    let t = s.trim();
    if t.len() % 2 != 0 {
        return None;
    }
    let b = t.as_bytes();
    let mut out = Vec::with_capacity(b.len() / 2);
    for pair in b.chunks_exact(2) {
        let hi = (pair[0] as char).to_digit(16)?;
        let lo = (pair[1] as char).to_digit(16)?;
        out.push((hi * 16 + lo) as u8);
    }
    Some(out)
}

/// Lower-case hex.
pub(crate) fn hex_encode(b: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for x in b {
        s.push(D[(x >> 4) as usize] as char);
        s.push(D[(x & 15) as usize] as char);
    }
    s
}

/// Converts `lit` to the domain of a column of Pinot type `dt` stored as `p`.
pub(crate) fn convert(lit: &Literal, dt: DataType, p: Physical) -> Conv {
    if dt == DataType::BigDecimal {
        return Conv::Unknown;
    }
    match p {
        Physical::Int | Physical::Long => match lit {
            Literal::Int(v) => Conv::Exact(Key::I(*v)),
            Literal::Float(f) => float_to_int(*f),
            Literal::Str(s) => parse_number_for_int(s),
            Literal::Bool(_) => Conv::Unknown,
        },
        Physical::Timestamp => match lit {
            Literal::Int(v) => Conv::Exact(Key::I(*v)),
            Literal::Float(f) => float_to_int(*f),
            Literal::Str(s) => match parse_timestamp_millis(s) {
                Some(ms) => Conv::Exact(Key::I(ms)),
                None => parse_number_for_int(s),
            },
            Literal::Bool(_) => Conv::Unknown,
        },
        Physical::Bool => match lit {
            Literal::Bool(b) => Conv::Exact(Key::I(*b as i64)),
            Literal::Int(v) => Conv::Exact(Key::I(*v)),
            Literal::Float(f) => float_to_int(*f),
            Literal::Str(s) => {
                let t = s.trim();
                if t.eq_ignore_ascii_case("true") {
                    Conv::Exact(Key::I(1))
                } else if t.eq_ignore_ascii_case("false") {
                    Conv::Exact(Key::I(0))
                } else {
                    parse_number_for_int(t)
                }
            }
        },
        Physical::Float | Physical::Double => match lit {
            Literal::Float(f) => float_key(*f),
            Literal::Int(v) => {
                if (*v as f64).abs() <= EXACT_F64_INT {
                    Conv::Exact(Key::F(*v as f64))
                } else {
                    Conv::Unknown
                }
            }
            Literal::Str(s) => match s.trim().parse::<f64>() {
                Ok(f) => float_key(f),
                Err(_) => Conv::Unknown,
            },
            Literal::Bool(_) => Conv::Unknown,
        },
        Physical::Str => match lit {
            Literal::Str(s) => Conv::Exact(Key::B(s.as_bytes().to_vec())),
            Literal::Int(v) => Conv::Exact(Key::B(v.to_string().into_bytes())),
            Literal::Bool(b) => Conv::Exact(Key::B(b.to_string().into_bytes())),
            Literal::Float(_) => Conv::Unknown,
        },
        Physical::Bin => match lit {
            Literal::Str(s) => match hex_decode(s) {
                Some(b) => Conv::Exact(Key::B(b)),
                None => Conv::Unknown,
            },
            _ => Conv::Unknown,
        },
    }
}

/// What a value predicate asks for, in a column's domain. NULL rows match none of these
/// except [`Cond::All`].
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Cond {
    /// Not decidable here: every row (NULL rows included) is a candidate.
    All,
    /// No row.
    Empty,
    /// Every non-null row.
    NonNull,
    /// Values within the bounds (at least one bound; `bool` is inclusive).
    Interval {
        /// Lower bound.
        low: Option<(Key, bool)>,
        /// Upper bound.
        high: Option<(Key, bool)>,
    },
    /// Values equal to one of these (sorted, distinct, not empty).
    Points(Vec<Key>),
    /// Values different from this one.
    NotEq(Key),
}

/// The condition of a value predicate (`None` for IsNull / IsNotNull) on a column of Pinot
/// type `dt` stored as `p`.
pub(crate) fn cond_of(pred: &Predicate, dt: DataType, p: Physical) -> Option<Cond> {
    let conv = |l: &Literal| convert(l, dt, p);
    Some(match pred {
        Predicate::IsNull(_) | Predicate::IsNotNull(_) => return None,
        Predicate::Eq(_, l) => match conv(l) {
            Conv::Exact(k) => Cond::Points(vec![k]),
            Conv::Between(_, _) => Cond::Empty,
            Conv::Unknown => Cond::All,
        },
        Predicate::NotEq(_, l) => match conv(l) {
            Conv::Exact(k) => Cond::NotEq(k),
            Conv::Between(_, _) => Cond::NonNull,
            Conv::Unknown => Cond::All,
        },
        Predicate::In(_, ls) => {
            let mut keys = Vec::with_capacity(ls.len());
            for l in ls {
                match conv(l) {
                    Conv::Exact(k) => keys.push(k),
                    Conv::Between(_, _) => {}
                    Conv::Unknown => return Some(Cond::All),
                }
            }
            keys.sort_by(|a, b| cmp(a.as_ref(), b.as_ref()));
            keys.dedup_by(|a, b| cmp(a.as_ref(), b.as_ref()).is_eq());
            if keys.is_empty() {
                Cond::Empty
            } else {
                Cond::Points(keys)
            }
        }
        Predicate::Range { low, high, .. } => {
            let low = match low {
                None => None,
                Some((l, incl)) => match conv(l) {
                    Conv::Exact(k) => Some((k, *incl)),
                    // x > 2.5 and x >= 2.5 are both x >= 3 for integers.
                    Conv::Between(_, above) => Some((Key::I(above), true)),
                    Conv::Unknown => return Some(Cond::All),
                },
            };
            let high = match high {
                None => None,
                Some((l, incl)) => match conv(l) {
                    Conv::Exact(k) => Some((k, *incl)),
                    Conv::Between(below, _) => Some((Key::I(below), true)),
                    Conv::Unknown => return Some(Cond::All),
                },
            };
            if low.is_none() && high.is_none() {
                Cond::NonNull
            } else {
                Cond::Interval { low, high }
            }
        }
    })
}

/// Whether `v` satisfies a lower bound.
#[inline]
pub(crate) fn above_low(v: KeyRef<'_>, low: &Option<(Key, bool)>) -> bool {
    match low {
        None => true,
        Some((k, true)) => cmp(v, k.as_ref()).is_ge(),
        Some((k, false)) => cmp(v, k.as_ref()).is_gt(),
    }
}

/// Whether `v` satisfies an upper bound.
#[inline]
pub(crate) fn below_high(v: KeyRef<'_>, high: &Option<(Key, bool)>) -> bool {
    match high {
        None => true,
        Some((k, true)) => cmp(v, k.as_ref()).is_le(),
        Some((k, false)) => cmp(v, k.as_ref()).is_lt(),
    }
}

impl Cond {
    /// Whether a non-null value matches.
    #[inline]
    pub fn matches(&self, v: KeyRef<'_>) -> bool {
        match self {
            Cond::All | Cond::NonNull => true,
            Cond::Empty => false,
            Cond::Interval { low, high } => above_low(v, low) && below_high(v, high),
            Cond::Points(ps) => {
                if ps.len() <= 8 {
                    ps.iter().any(|p| cmp(v, p.as_ref()).is_eq())
                } else {
                    ps.binary_search_by(|p| cmp(p.as_ref(), v)).is_ok()
                }
            }
            Cond::NotEq(k) => !cmp(v, k.as_ref()).is_eq(),
        }
    }

    /// Whether some value in `[lo, hi]` (non-null values) can match.
    pub fn may_match_within(&self, lo: KeyRef<'_>, hi: KeyRef<'_>) -> bool {
        match self {
            Cond::All | Cond::NonNull | Cond::NotEq(_) => true,
            Cond::Empty => false,
            Cond::Interval { low, high } => above_low(hi, low) && below_high(lo, high),
            Cond::Points(ps) => ps
                .iter()
                .any(|p| cmp(p.as_ref(), lo).is_ge() && cmp(p.as_ref(), hi).is_le()),
        }
    }

    /// Whether every value in `[lo, hi]` matches.
    pub fn matches_all_within(&self, lo: KeyRef<'_>, hi: KeyRef<'_>) -> bool {
        match self {
            Cond::All | Cond::NonNull => true,
            Cond::Empty => false,
            Cond::Interval { low, high } => above_low(lo, low) && below_high(hi, high),
            Cond::Points(ps) => {
                cmp(lo, hi).is_eq() && ps.iter().any(|p| cmp(p.as_ref(), lo).is_eq())
            }
            Cond::NotEq(k) => cmp(k.as_ref(), lo).is_lt() || cmp(k.as_ref(), hi).is_gt(),
        }
    }
}

/// A min / max value as JSON (non-finite floats as Pinot prints them; bytes as hex).
pub(crate) fn key_to_json(k: KeyRef<'_>, p: Physical) -> serde_json::Value {
    use serde_json::Value;
    match (k, p) {
        (KeyRef::I(v), Physical::Bool) => Value::Bool(v != 0),
        (KeyRef::I(v), _) => Value::from(v),
        (KeyRef::F(f), _) => {
            if f.is_finite() {
                serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
            } else if f.is_nan() {
                Value::String(if f.is_sign_negative() { "-NaN" } else { "NaN" }.into())
            } else if f > 0.0 {
                Value::String("Infinity".into())
            } else {
                Value::String("-Infinity".into())
            }
        }
        (KeyRef::B(b), Physical::Bin) => Value::String(hex_encode(b)),
        (KeyRef::B(b), _) => Value::String(String::from_utf8_lossy(b).into_owned()),
    }
}

/// The inverse of [`key_to_json`]; `None` if the value does not fit the column.
pub(crate) fn key_from_json(v: &serde_json::Value, p: Physical) -> Option<Key> {
    use serde_json::Value;
    match p {
        Physical::Int | Physical::Long | Physical::Timestamp => v.as_i64().map(Key::I),
        Physical::Bool => v.as_bool().map(|b| Key::I(b as i64)),
        Physical::Float | Physical::Double => match v {
            Value::Number(n) => n.as_f64().map(Key::F),
            Value::String(s) => match s.as_str() {
                "NaN" => Some(Key::F(f64::NAN)),
                "-NaN" => Some(Key::F(-f64::NAN)),
                "Infinity" => Some(Key::F(f64::INFINITY)),
                "-Infinity" => Some(Key::F(f64::NEG_INFINITY)),
                _ => None,
            },
            _ => None,
        },
        Physical::Str => v.as_str().map(|s| Key::B(s.as_bytes().to_vec())),
        Physical::Bin => v.as_str().and_then(hex_decode).map(Key::B),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_literal_conversion() {
        let c = |l: Literal, dt: DataType| convert(&l, dt, Physical::of(dt));
        assert_eq!(c(Literal::Float(2.5), DataType::Int), Conv::Between(2, 3));
        assert_eq!(
            c(Literal::Float(-2.5), DataType::Long),
            Conv::Between(-3, -2)
        );
        assert_eq!(
            c(Literal::Float(3.0), DataType::Int),
            Conv::Exact(Key::I(3))
        );
        assert_eq!(
            c(Literal::Str("42".into()), DataType::Int),
            Conv::Exact(Key::I(42))
        );
        assert_eq!(c(Literal::Str("x".into()), DataType::Int), Conv::Unknown);
        assert_eq!(
            c(Literal::Int(7), DataType::Double),
            Conv::Exact(Key::F(7.0))
        );
        assert_eq!(c(Literal::Int(i64::MAX), DataType::Double), Conv::Unknown);
        assert_eq!(c(Literal::Float(f64::NAN), DataType::Double), Conv::Unknown);
        assert_eq!(
            c(Literal::Str("1970-01-02".into()), DataType::Timestamp),
            Conv::Exact(Key::I(86_400_000))
        );
        assert_eq!(
            c(Literal::Int(42), DataType::String),
            Conv::Exact(Key::B(b"42".to_vec()))
        );
        assert_eq!(
            c(Literal::Str("0aFF".into()), DataType::Bytes),
            Conv::Exact(Key::B(vec![10, 255]))
        );
        assert_eq!(
            c(Literal::Str("xyz".into()), DataType::Bytes),
            Conv::Unknown
        );
        assert_eq!(
            c(Literal::Bool(true), DataType::Boolean),
            Conv::Exact(Key::I(1))
        );
        assert_eq!(c(Literal::Int(1), DataType::BigDecimal), Conv::Unknown);
    }

    #[test]
    fn test_range_rounding_for_integer_columns() {
        let r = |low: Option<(Literal, bool)>, high: Option<(Literal, bool)>| {
            cond_of(
                &Predicate::Range {
                    column: "a".into(),
                    low,
                    high,
                },
                DataType::Int,
                Physical::Int,
            )
        };
        // x > 2.5 is x >= 3; x <= 2.5 is x <= 2.
        let c = r(
            Some((Literal::Float(2.5), false)),
            Some((Literal::Float(4.5), true)),
        )
        .unwrap();
        assert_eq!(
            c,
            Cond::Interval {
                low: Some((Key::I(3), true)),
                high: Some((Key::I(4), true))
            }
        );
        assert!(c.matches(KeyRef::I(3)) && c.matches(KeyRef::I(4)));
        assert!(!c.matches(KeyRef::I(2)) && !c.matches(KeyRef::I(5)));
    }

    #[test]
    fn test_float_total_order() {
        assert!(cmp(KeyRef::F(-0.0), KeyRef::F(0.0)).is_lt());
        assert!(cmp(KeyRef::F(f64::NAN), KeyRef::F(f64::INFINITY)).is_gt());
        let mut v = [3.0, f64::NAN, -1.0, -0.0, 0.0, f64::NEG_INFINITY];
        v.sort_by_key(|f| total_order_bits(*f));
        let mut w = v;
        w.sort_by(|a, b| a.total_cmp(b));
        assert_eq!(
            v.iter().map(|f| f.to_bits()).collect::<Vec<_>>(),
            w.iter().map(|f| f.to_bits()).collect::<Vec<_>>()
        );
    }
}
