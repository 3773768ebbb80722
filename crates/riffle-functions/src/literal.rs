//! Literal arguments read as text or numbers: the one reading every function of the library
//! uses for its units, patterns, sizes and defaults.

use datafusion::common::ScalarValue;

/// A text literal.
pub fn text(v: &ScalarValue) -> Option<&str> {
    match v {
        ScalarValue::Utf8(Some(s))
        | ScalarValue::LargeUtf8(Some(s))
        | ScalarValue::Utf8View(Some(s)) => Some(s.as_str()),
        _ => None,
    }
}

/// A whole-number literal (or text holding one; a float with no fraction).
pub fn whole(v: &ScalarValue) -> Option<i64> {
    match v {
        ScalarValue::Int8(Some(x)) => Some(i64::from(*x)),
        ScalarValue::Int16(Some(x)) => Some(i64::from(*x)),
        ScalarValue::Int32(Some(x)) => Some(i64::from(*x)),
        ScalarValue::Int64(Some(x)) => Some(*x),
        ScalarValue::UInt8(Some(x)) => Some(i64::from(*x)),
        ScalarValue::UInt16(Some(x)) => Some(i64::from(*x)),
        ScalarValue::UInt32(Some(x)) => Some(i64::from(*x)),
        ScalarValue::UInt64(Some(x)) => i64::try_from(*x).ok(),
        ScalarValue::Float32(Some(x)) if x.fract() == 0.0 => Some(*x as i64),
        ScalarValue::Float64(Some(x)) if x.fract() == 0.0 => Some(*x as i64),
        other => text(other).and_then(|s| s.trim().parse().ok()),
    }
}

/// A numeric literal (or text holding one).
pub fn number(v: &ScalarValue) -> Option<f64> {
    match v {
        ScalarValue::Float32(Some(x)) => Some(f64::from(*x)),
        ScalarValue::Float64(Some(x)) => Some(*x),
        other => whole(other)
            .map(|w| w as f64)
            .or_else(|| text(other).and_then(|s| s.trim().parse().ok())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_read_as_text_and_numbers() {
        assert_eq!(text(&ScalarValue::Utf8(Some("x".into()))), Some("x"));
        assert_eq!(text(&ScalarValue::Int32(Some(1))), None);
        assert_eq!(whole(&ScalarValue::Int64(Some(-3))), Some(-3));
        assert_eq!(whole(&ScalarValue::Float64(Some(2.0))), Some(2));
        assert_eq!(whole(&ScalarValue::Float64(Some(2.5))), None);
        assert_eq!(whole(&ScalarValue::Utf8(Some(" 12 ".into()))), Some(12));
        assert_eq!(number(&ScalarValue::Float64(Some(2.5))), Some(2.5));
        assert_eq!(number(&ScalarValue::Utf8(Some("0.5".into()))), Some(0.5));
        assert_eq!(number(&ScalarValue::UInt64(Some(7))), Some(7.0));
        assert_eq!(number(&ScalarValue::Boolean(Some(true))), None);
    }
}
