//! Pinot's scalar functions that DataFusion lacks under these names: arithmetic functions
//! and string helpers.
//!
//! | Function | Result | Meaning (Pinot's) |
//! | --- | --- | --- |
//! | `ADD` / `PLUS`, `SUB` / `MINUS`, `MULT` / `TIMES`, `DIV` / `DIVIDE`, `MOD` `(a, b)` | DOUBLE | arithmetic in DOUBLE (division by zero: Infinity or NaN, as Java's); `MINUS(...)` must be quoted (`"minus"(a, b)`): unquoted, SQL reads MINUS as the set operator |
//! | `STARTSWITH(s, prefix)`, `ENDSWITH(s, suffix)` | BOOLEAN | |
//! | `SPLITPART(s, delimiter, index)` | STRING | the part at a 0-based index (negative: from the end) of `s` split on the whole delimiter, empty parts dropped; `"null"` out of range |
//! | `STRCMP(a, b)` | INT | Java's `compareTo`: the first differing UTF-16 unit's difference, else the length difference |
//! | `TOUTF8(s)` | BYTES | |
//! | `TOBASE64(bytes)`, `FROMBASE64(text)` | STRING, BYTES | standard alphabet with padding; text that is not Base64 gives NULL |
//! | `ENCODEURL(s)`, `DECODEURL(s)` | STRING | Java's `URLEncoder` / `URLDecoder` in UTF-8 (space as `+`); a malformed escape gives NULL |

use std::sync::Arc;

use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BinaryBuilder, BooleanBuilder, Float64Builder, Int32Builder,
    StringBuilder,
};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type, Int64Type};
use datafusion::common::{exec_err, Result};
use datafusion::logical_expr::{
    ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility,
};

/// Which function.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Op {
    Add,
    Sub,
    Mult,
    Div,
    Mod,
    StartsWith,
    EndsWith,
    SplitPart,
    StrCmp,
    ToUtf8,
    ToBase64,
    FromBase64,
    EncodeUrl,
    DecodeUrl,
}

/// One of this module's functions.
#[derive(Debug, PartialEq, Eq, Hash)]
pub struct PinotScalar {
    name: &'static str,
    op: Op,
    signature: Signature,
}

/// Every function of this module.
pub fn functions() -> Vec<ScalarUDF> {
    [
        ("add", Op::Add),
        ("plus", Op::Add),
        ("sub", Op::Sub),
        ("minus", Op::Sub),
        ("mult", Op::Mult),
        ("times", Op::Mult),
        ("div", Op::Div),
        ("divide", Op::Div),
        ("mod", Op::Mod),
        ("startswith", Op::StartsWith),
        ("endswith", Op::EndsWith),
        ("splitpart", Op::SplitPart),
        ("strcmp", Op::StrCmp),
        ("toutf8", Op::ToUtf8),
        ("tobase64", Op::ToBase64),
        ("frombase64", Op::FromBase64),
        ("encodeurl", Op::EncodeUrl),
        ("decodeurl", Op::DecodeUrl),
    ]
    .into_iter()
    .map(|(name, op)| {
        ScalarUDF::new_from_impl(PinotScalar {
            name,
            op,
            signature: Signature::variadic_any(Volatility::Immutable),
        })
    })
    .collect()
}

impl PinotScalar {
    fn arity(&self) -> usize {
        match self.op {
            Op::SplitPart => 3,
            Op::ToUtf8 | Op::ToBase64 | Op::FromBase64 | Op::EncodeUrl | Op::DecodeUrl => 1,
            _ => 2,
        }
    }
}

/// Java's `String.compareTo`.
pub fn java_compare(a: &str, b: &str) -> i32 {
    let (mut x, mut y) = (a.encode_utf16(), b.encode_utf16());
    loop {
        match (x.next(), y.next()) {
            (Some(p), Some(q)) if p != q => return i32::from(p) - i32::from(q),
            (Some(_), Some(_)) => {}
            _ => return a.encode_utf16().count() as i32 - b.encode_utf16().count() as i32,
        }
    }
}

/// Pinot's `splitPart`.
pub fn split_part<'a>(s: &'a str, delimiter: &str, index: i64) -> &'a str {
    // A part from the start: found without collecting the parts (the common case, per row
    // of a transform).
    if let Ok(at) = usize::try_from(index) {
        let part = if delimiter.is_empty() {
            s.split_whitespace().nth(at)
        } else {
            s.split(delimiter).filter(|p| !p.is_empty()).nth(at)
        };
        return part.unwrap_or("null");
    }
    let parts: Vec<&str> = if delimiter.is_empty() {
        s.split_whitespace().collect()
    } else {
        s.split(delimiter).filter(|p| !p.is_empty()).collect()
    };
    let at = if index < 0 {
        parts.len() as i64 + index
    } else {
        index
    };
    if at < 0 {
        return "null";
    }
    parts.get(at as usize).copied().unwrap_or("null")
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Base64, standard alphabet, padded.
pub fn to_base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk.len();
        let v = (u32::from(chunk[0]) << 16)
            | (u32::from(chunk.get(1).copied().unwrap_or(0)) << 8)
            | u32::from(chunk.get(2).copied().unwrap_or(0));
        for i in 0..4 {
            if i <= n {
                out.push(B64[((v >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// The bytes of Base64 text (padding optional), or None.
pub fn from_base64(text: &str) -> Option<Vec<u8>> {
    let t = text.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(t.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0;
    for c in t.bytes() {
        let v = B64.iter().position(|b| *b == c)? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    (t.len() % 4 != 1).then_some(out)
}

/// Java's `URLEncoder.encode(s, UTF-8)`.
pub fn encode_url(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'.' | b'-' | b'*' | b'_' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// Java's `URLDecoder.decode(s, UTF-8)`, or None for a malformed escape.
pub fn decode_url(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = std::str::from_utf8(b.get(i + 1..i + 3)?).ok()?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 2;
            }
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8(out).ok()
}

impl ScalarUDFImpl for PinotScalar {
    fn name(&self) -> &str {
        self.name
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, arg_types: &[DataType]) -> Result<DataType> {
        if arg_types.len() != self.arity() {
            return exec_err!(
                "{} takes {} arguments, got {}",
                self.name,
                self.arity(),
                arg_types.len()
            );
        }
        Ok(match self.op {
            Op::Add | Op::Sub | Op::Mult | Op::Div | Op::Mod => {
                if let Some(t) = arg_types.iter().find(|t| !(t.is_numeric() || t.is_null())) {
                    return exec_err!("{} takes numbers, got {t}", self.name);
                }
                DataType::Float64
            }
            Op::StartsWith | Op::EndsWith => DataType::Boolean,
            Op::StrCmp => DataType::Int32,
            Op::ToUtf8 | Op::FromBase64 => DataType::Binary,
            _ => DataType::Utf8,
        })
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> Result<ColumnarValue> {
        let rows = args.number_rows;
        let arrays = ColumnarValue::values_to_arrays(&args.args)?;
        let text = |i: usize| -> Result<ArrayRef> { Ok(cast(&arrays[i], &DataType::Utf8)?) };
        let out: ArrayRef = match self.op {
            Op::Add | Op::Sub | Op::Mult | Op::Div | Op::Mod => {
                let a = cast(&arrays[0], &DataType::Float64)?;
                let b = cast(&arrays[1], &DataType::Float64)?;
                let (a, b) = (
                    a.as_primitive::<Float64Type>(),
                    b.as_primitive::<Float64Type>(),
                );
                let mut o = Float64Builder::with_capacity(rows);
                for i in 0..rows {
                    if a.is_null(i) || b.is_null(i) {
                        o.append_null();
                        continue;
                    }
                    let (x, y) = (a.value(i), b.value(i));
                    o.append_value(match self.op {
                        Op::Add => x + y,
                        Op::Sub => x - y,
                        Op::Mult => x * y,
                        Op::Div => x / y,
                        _ => x % y,
                    });
                }
                Arc::new(o.finish())
            }
            Op::StartsWith | Op::EndsWith | Op::StrCmp => {
                let (a, b) = (text(0)?, text(1)?);
                let (a, b) = (a.as_string::<i32>(), b.as_string::<i32>());
                if self.op == Op::StrCmp {
                    let mut o = Int32Builder::with_capacity(rows);
                    for i in 0..rows {
                        o.append_option(
                            (a.is_valid(i) && b.is_valid(i))
                                .then(|| java_compare(a.value(i), b.value(i))),
                        );
                    }
                    Arc::new(o.finish())
                } else {
                    let mut o = BooleanBuilder::with_capacity(rows);
                    for i in 0..rows {
                        o.append_option((a.is_valid(i) && b.is_valid(i)).then(|| {
                            if self.op == Op::StartsWith {
                                a.value(i).starts_with(b.value(i))
                            } else {
                                a.value(i).ends_with(b.value(i))
                            }
                        }));
                    }
                    Arc::new(o.finish())
                }
            }
            Op::SplitPart => {
                let (s, d) = (text(0)?, text(1)?);
                let (s, d) = (s.as_string::<i32>(), d.as_string::<i32>());
                let n = cast(&arrays[2], &DataType::Int64)?;
                let n = n.as_primitive::<Int64Type>();
                let mut o = StringBuilder::with_capacity(rows, rows * 8);
                for i in 0..rows {
                    if s.is_null(i) || d.is_null(i) || n.is_null(i) {
                        o.append_null();
                    } else {
                        o.append_value(split_part(s.value(i), d.value(i), n.value(i)));
                    }
                }
                Arc::new(o.finish())
            }
            Op::ToUtf8 | Op::FromBase64 => {
                let s = text(0)?;
                let s = s.as_string::<i32>();
                let mut o = BinaryBuilder::with_capacity(rows, rows * 8);
                for i in 0..rows {
                    if s.is_null(i) {
                        o.append_null();
                        continue;
                    }
                    match self.op {
                        Op::ToUtf8 => o.append_value(s.value(i).as_bytes()),
                        _ => match from_base64(s.value(i)) {
                            Some(b) => o.append_value(b),
                            None => o.append_null(),
                        },
                    }
                }
                Arc::new(o.finish())
            }
            Op::ToBase64 => {
                let b = match arrays[0].data_type() {
                    DataType::Binary => arrays[0].clone(),
                    _ => cast(&cast(&arrays[0], &DataType::Utf8)?, &DataType::Binary)?,
                };
                let b = b.as_binary::<i32>();
                let mut o = StringBuilder::with_capacity(rows, rows * 8);
                for i in 0..rows {
                    if b.is_null(i) {
                        o.append_null();
                    } else {
                        o.append_value(to_base64(b.value(i)));
                    }
                }
                Arc::new(o.finish())
            }
            Op::EncodeUrl | Op::DecodeUrl => {
                let s = text(0)?;
                let s = s.as_string::<i32>();
                let mut o = StringBuilder::with_capacity(rows, rows * 8);
                for i in 0..rows {
                    if s.is_null(i) {
                        o.append_null();
                    } else if self.op == Op::EncodeUrl {
                        o.append_value(encode_url(s.value(i)));
                    } else {
                        o.append_option(decode_url(s.value(i)));
                    }
                }
                Arc::new(o.finish())
            }
        };
        Ok(ColumnarValue::Array(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::util::display::array_value_to_string;
    use datafusion::prelude::SessionContext;

    #[test]
    fn helpers_answer_as_java_and_pinot() {
        assert_eq!(java_compare("abc", "abd"), -1);
        assert_eq!(java_compare("b", "a"), 1);
        assert_eq!(java_compare("ab", "abcd"), -2);
        assert_eq!(java_compare("same", "same"), 0);
        assert_eq!(split_part("a,b,,c", ",", 2), "c");
        assert_eq!(split_part("a--b--c", "--", -1), "c");
        assert_eq!(split_part("a,b", ",", 5), "null");
        assert_eq!(split_part("a,b", ",", -3), "null");
        assert_eq!(to_base64(b"Man"), "TWFu");
        assert_eq!(to_base64(b"Ma"), "TWE=");
        assert_eq!(to_base64(b"M"), "TQ==");
        assert_eq!(from_base64("TWE=").unwrap(), b"Ma");
        assert_eq!(from_base64("TQ").unwrap(), b"M");
        assert!(from_base64("T!==").is_none());
        assert_eq!(encode_url("a b&c=d/é*"), "a+b%26c%3Dd%2F%C3%A9*");
        assert_eq!(decode_url("a+b%26c%3Dd%2F%C3%A9*").unwrap(), "a b&c=d/é*");
        assert!(decode_url("%zz").is_none());
        assert!(decode_url("%4").is_none());
    }

    #[tokio::test]
    async fn functions_through_sql() {
        let ctx = SessionContext::new();
        for f in functions() {
            ctx.register_udf(f);
        }
        let b = ctx
            .sql(
                "SELECT add(1, 2), sub(1, 2), times(3, 2.5), divide(7, 2), mod(7, 3), \
                 div(1, 0), startswith('Pinot', 'Pi'), endswith('Pinot', 'x'), \
                 splitpart('a.b.c', '.', 1), strcmp('a', 'c'), tobase64(toutf8('hi')), \
                 frombase64('aGk='), encodeurl('a b'), decodeurl('a%20b')",
            )
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();
        let b = &b[0];
        let got: Vec<String> = (0..b.num_columns())
            .map(|c| array_value_to_string(b.column(c), 0).unwrap())
            .collect();
        assert_eq!(
            got,
            [
                "3.0", "-1.0", "7.5", "3.5", "1.0", "inf", "true", "false", "b", "-2", "aGk=",
                "6869", "a+b", "a b"
            ]
        );
        for bad in ["SELECT add('x', 1)", "SELECT splitpart('a', '.')"] {
            let r = match ctx.sql(bad).await {
                Ok(df) => df.collect().await.map(|_| ()),
                Err(e) => Err(e),
            };
            assert!(r.is_err(), "{bad}");
        }
    }
}
