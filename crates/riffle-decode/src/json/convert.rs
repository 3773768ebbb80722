//! The conversions every decoder shares: a value as a message carries it (JSON text,
//! a number, text, a boolean, a nested value) into a column of the table's type, with
//! Pinot's rules (text into numbers, numbers into text, a scalar into a multi-value column
//! as a one-item list, objects and arrays into STRING / JSON as their JSON text). The JSON
//! decoder drives them through serde; the other decoders call the `put_*` functions.

use std::fmt;

use riffle_segment::{BlockBuilder, Physical};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::DecodeError;

/// Deserialises one field value into column `col`.
pub(crate) struct ValueSeed<'a> {
    pub(crate) out: &'a mut BlockBuilder,
    pub(crate) col: usize,
}

impl<'de> DeserializeSeed<'de> for ValueSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.out.is_multi_value(self.col) {
            d.deserialize_any(MultiVisitor {
                out: self.out,
                col: self.col,
            })
        } else {
            d.deserialize_any(ScalarVisitor {
                out: self.out,
                col: self.col,
                item: false,
            })
        }
    }
}

fn col_name(out: &BlockBuilder, col: usize) -> &str {
    &out.columns().columns[col].name
}

fn type_name(out: &BlockBuilder, col: usize) -> &'static str {
    out.columns().columns[col].data_type.name()
}

fn conv_err<E: de::Error>(out: &BlockBuilder, col: usize, what: &dyn fmt::Display) -> E {
    E::custom(format!(
        "column '{}': cannot convert {what} to {}",
        col_name(out, col),
        type_name(out, col)
    ))
}

/// Writes one scalar into a single-value column, or as an item of an open list.
struct ScalarVisitor<'a> {
    out: &'a mut BlockBuilder,
    col: usize,
    item: bool,
}

impl ScalarVisitor<'_> {
    fn null(self) {
        if self.item {
            // Nulls inside arrays are dropped, as Pinot does.
        } else {
            self.out.push_default(self.col);
        }
    }

    fn int<E: de::Error>(self, v: i64) -> Result<(), E> {
        let (out, col) = (self.out, self.col);
        match out.physical(col) {
            Physical::Int => {
                let x = i32::try_from(v).map_err(|_| conv_err::<E>(out, col, &v))?;
                out.push_i32(col, x)
            }
            Physical::Long => out.push_i64(col, v),
            Physical::Timestamp => out.push_timestamp(col, v),
            Physical::Float => out.push_f32(col, v as f32),
            Physical::Double => out.push_f64(col, v as f64),
            Physical::Bool => out.push_bool(col, v != 0),
            Physical::Str => {
                let mut buf = itoa_buf(v);
                out.push_str(col, buf.as_str());
                buf.clear();
            }
            Physical::Bin => return Err(conv_err(out, col, &v)),
        }
        Ok(())
    }

    fn float<E: de::Error>(self, v: f64) -> Result<(), E> {
        let (out, col) = (self.out, self.col);
        match out.physical(col) {
            Physical::Int => {
                if !v.is_finite() || v < i32::MIN as f64 || v > i32::MAX as f64 {
                    return Err(conv_err(out, col, &v));
                }
                out.push_i32(col, v as i32)
            }
            Physical::Long | Physical::Timestamp => {
                if !v.is_finite() || v.abs() >= 9.223_372_036_854_776e18 {
                    return Err(conv_err(out, col, &v));
                }
                if out.physical(col) == Physical::Long {
                    out.push_i64(col, v as i64)
                } else {
                    out.push_timestamp(col, v as i64)
                }
            }
            Physical::Float => out.push_f32(col, v as f32),
            Physical::Double => out.push_f64(col, v),
            Physical::Bool => out.push_bool(col, v != 0.0),
            Physical::Str => out.push_str(col, &java_double_text(v)),
            Physical::Bin => return Err(conv_err(out, col, &v)),
        }
        Ok(())
    }

    fn text<E: de::Error>(self, v: &str) -> Result<(), E> {
        let (out, col) = (self.out, self.col);
        let quoted = || format!("'{}'", truncate_for_error(v));
        match out.physical(col) {
            Physical::Str => out.push_str(col, v),
            Physical::Int => {
                let t = v.trim();
                let x = t
                    .parse::<i32>()
                    .ok()
                    .or_else(|| {
                        t.parse::<f64>()
                            .ok()
                            .filter(|f| {
                                f.is_finite() && *f >= i32::MIN as f64 && *f <= i32::MAX as f64
                            })
                            .map(|f| f as i32)
                    })
                    .ok_or_else(|| conv_err::<E>(out, col, &quoted()))?;
                out.push_i32(col, x)
            }
            Physical::Long => {
                let x = parse_long(v).ok_or_else(|| conv_err::<E>(out, col, &quoted()))?;
                out.push_i64(col, x)
            }
            Physical::Timestamp => {
                let x = parse_long(v)
                    .or_else(|| riffle_config::datetime::parse_timestamp_millis(v))
                    .ok_or_else(|| conv_err::<E>(out, col, &quoted()))?;
                out.push_timestamp(col, x)
            }
            Physical::Float => {
                let x: f32 = v
                    .trim()
                    .parse()
                    .map_err(|_| conv_err::<E>(out, col, &quoted()))?;
                out.push_f32(col, x)
            }
            Physical::Double => {
                let x: f64 = v
                    .trim()
                    .parse()
                    .map_err(|_| conv_err::<E>(out, col, &quoted()))?;
                out.push_f64(col, x)
            }
            Physical::Bool => {
                let t = v.trim();
                let x = if t.eq_ignore_ascii_case("true") {
                    true
                } else if t.eq_ignore_ascii_case("false") {
                    false
                } else {
                    t.parse::<f64>()
                        .map(|f| f != 0.0)
                        .map_err(|_| conv_err::<E>(out, col, &quoted()))?
                };
                out.push_bool(col, x)
            }
            Physical::Bin => {
                let b = riffle_common::hex_decode(v.trim())
                    .ok_or_else(|| conv_err::<E>(out, col, &format!("{} (not hex)", quoted())))?;
                out.push_bytes(col, &b)
            }
        }
        Ok(())
    }

    /// An object or array where a scalar is expected: JSON text for text columns.
    fn nested<E: de::Error>(self, v: serde_json::Value) -> Result<(), E> {
        let (out, col) = (self.out, self.col);
        if out.physical(col) == Physical::Str {
            out.push_str(col, &v.to_string());
            Ok(())
        } else {
            Err(conv_err(out, col, &"a JSON object or array"))
        }
    }
}

impl<'de> Visitor<'de> for ScalarVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.null();
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.null();
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        let (out, col) = (self.out, self.col);
        match out.physical(col) {
            Physical::Bool => out.push_bool(col, v),
            Physical::Str => out.push_str(col, if v { "true" } else { "false" }),
            Physical::Int => out.push_i32(col, v as i32),
            Physical::Long => out.push_i64(col, v as i64),
            _ => return Err(conv_err(out, col, &v)),
        }
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.int(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        match i64::try_from(v) {
            Ok(x) => self.int(x),
            Err(_) => self.float(v as f64),
        }
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.float(v)
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.text(v)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if self.item {
            return Err(de::Error::custom(format!(
                "column '{}': nested arrays are not supported",
                col_name(self.out, self.col)
            )));
        }
        if self.out.physical(self.col) == Physical::Str {
            let mut items = Vec::new();
            while let Some(v) = seq.next_element::<serde_json::Value>()? {
                items.push(v);
            }
            // A one-item array into a single-value text column is that item, as Pinot does.
            if items.len() == 1 && !items[0].is_array() && !items[0].is_object() {
                return match items.pop() {
                    Some(serde_json::Value::String(s)) => self.text(&s),
                    Some(serde_json::Value::Null) | None => {
                        self.null();
                        Ok(())
                    }
                    Some(other) => self.text(&other.to_string()),
                };
            }
            return self.nested(serde_json::Value::Array(items));
        }
        let first = seq.next_element::<serde_json::Value>()?;
        let second = seq.next_element::<IgnoredAny>()?;
        match (first, second) {
            (Some(v), None) => self_scalar_from_value(self, v),
            (None, _) => {
                self.null();
                Ok(())
            }
            (Some(_), Some(_)) => Err(de::Error::custom(format!(
                "column '{}': single-value column got an array of several values",
                col_name(self.out, self.col)
            ))),
        }
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        let v: serde_json::Value =
            serde::Deserialize::deserialize(de::value::MapAccessDeserializer::new(map))?;
        self.nested(v)
    }
}

fn self_scalar_from_value<E: de::Error>(
    v: ScalarVisitor<'_>,
    value: serde_json::Value,
) -> Result<(), E> {
    match value {
        serde_json::Value::Null => {
            v.null();
            Ok(())
        }
        serde_json::Value::Bool(b) => v.visit_bool(b),
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                v.int(i)
            } else if let Some(f) = n.as_f64() {
                v.float(f)
            } else {
                Err(E::custom("number out of range"))
            }
        }
        serde_json::Value::String(s) => v.text(&s),
        other => v.nested(other),
    }
}

/// Writes a value into a multi-value column.
struct MultiVisitor<'a> {
    out: &'a mut BlockBuilder,
    col: usize,
}

impl<'de> Visitor<'de> for MultiVisitor<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON array or value")
    }
    fn visit_unit<E: de::Error>(self) -> Result<(), E> {
        self.out.push_default(self.col);
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> Result<(), E> {
        self.visit_unit()
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        self.out.push_list_start(self.col);
        while seq
            .next_element_seed(ItemSeed {
                out: &mut *self.out,
                col: self.col,
            })?
            .is_some()
        {}
        self.out.push_list_end(self.col);
        Ok(())
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<(), E> {
        self.out.push_list_start(self.col);
        ScalarVisitor {
            out: &mut *self.out,
            col: self.col,
            item: true,
        }
        .visit_bool(v)?;
        self.out.push_list_end(self.col);
        Ok(())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<(), E> {
        self.out.push_list_start(self.col);
        ScalarVisitor {
            out: &mut *self.out,
            col: self.col,
            item: true,
        }
        .int(v)?;
        self.out.push_list_end(self.col);
        Ok(())
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<(), E> {
        self.out.push_list_start(self.col);
        ScalarVisitor {
            out: &mut *self.out,
            col: self.col,
            item: true,
        }
        .visit_u64(v)?;
        self.out.push_list_end(self.col);
        Ok(())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<(), E> {
        self.out.push_list_start(self.col);
        ScalarVisitor {
            out: &mut *self.out,
            col: self.col,
            item: true,
        }
        .float(v)?;
        self.out.push_list_end(self.col);
        Ok(())
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<(), E> {
        self.out.push_list_start(self.col);
        ScalarVisitor {
            out: &mut *self.out,
            col: self.col,
            item: true,
        }
        .text(v)?;
        self.out.push_list_end(self.col);
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, _map: A) -> Result<(), A::Error> {
        Err(de::Error::custom(format!(
            "column '{}': cannot convert a JSON object to a multi-value {}",
            col_name(self.out, self.col),
            type_name(self.out, self.col)
        )))
    }
}

struct ItemSeed<'a> {
    out: &'a mut BlockBuilder,
    col: usize,
}

impl<'de> DeserializeSeed<'de> for ItemSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(ScalarVisitor {
            out: self.out,
            col: self.col,
            item: true,
        })
    }
}

/// Runs one of the scalar conversions for column `col` (an item of an open list when
/// `item`), its error as a [`DecodeError`].
fn put_with(
    out: &mut BlockBuilder,
    col: usize,
    item: bool,
    f: impl FnOnce(ScalarVisitor<'_>) -> Result<(), serde::de::value::Error>,
) -> Result<(), DecodeError> {
    f(ScalarVisitor { out, col, item }).map_err(|e| DecodeError::new(e.to_string()))
}

/// Writes one text value into column `col` (as an item of an open list when `item`) with
/// the JSON decoder's conversions, for decoders whose values arrive as text (CSV).
pub(crate) fn put_text(
    out: &mut BlockBuilder,
    col: usize,
    v: &str,
    item: bool,
) -> Result<(), DecodeError> {
    put_with(out, col, item, |s| s.text(v))
}

/// Writes a whole number into column `col` with the JSON decoder's conversions.
pub(crate) fn put_int(
    out: &mut BlockBuilder,
    col: usize,
    v: i64,
    item: bool,
) -> Result<(), DecodeError> {
    put_with(out, col, item, |s| s.int(v))
}

/// Writes a number into column `col` with the JSON decoder's conversions.
pub(crate) fn put_float(
    out: &mut BlockBuilder,
    col: usize,
    v: f64,
    item: bool,
) -> Result<(), DecodeError> {
    put_with(out, col, item, |s| s.float(v))
}

/// Writes a boolean into column `col` with the JSON decoder's conversions.
pub(crate) fn put_bool(
    out: &mut BlockBuilder,
    col: usize,
    v: bool,
    item: bool,
) -> Result<(), DecodeError> {
    put_with(out, col, item, |s| s.visit_bool(v))
}

/// Writes any JSON value into column `col` as if a JSON message held it.
pub(crate) fn put_value(
    out: &mut BlockBuilder,
    col: usize,
    v: serde_json::Value,
) -> Result<(), DecodeError> {
    ValueSeed { out, col }
        .deserialize(v)
        .map_err(|e| DecodeError::new(e.to_string()))
}

fn parse_long(v: &str) -> Option<i64> {
    let t = v.trim();
    t.parse::<i64>().ok().or_else(|| {
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && f.abs() < 9.2e18)
            .map(|f| f as i64)
    })
}

fn truncate_for_error(v: &str) -> &str {
    match v.char_indices().nth(64) {
        Some((i, _)) => &v[..i],
        None => v,
    }
}

fn itoa_buf(v: i64) -> String {
    v.to_string()
}

/// Java's `Double.toString` for the common cases: integral values keep a `.0`.
fn java_double_text(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e7 {
        format!("{v:.1}")
    } else {
        format!("{v}")
    }
}
