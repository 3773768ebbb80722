//! Pinot's `JSONMessageDecoder` (and its alias `KafkaJSONMessageDecoder`).
//!
//! One message is one JSON object. Only the schema's columns are read (other keys are
//! skipped without being materialised), values go straight into the block's column builders
//! through a serde visitor, and:
//! - a missing field or JSON `null` gets the column's default null value;
//! - numbers and strings are coerced to the column type (`"42"` into INT, `42` into STRING,
//!   `true`/`"true"`/`1` into BOOLEAN, epoch millis or `yyyy-MM-dd HH:mm:ss[.SSS]` / ISO-8601
//!   text into TIMESTAMP, hex text into BYTES); a fractional number into INT/LONG is
//!   truncated, as Java's `Number.intValue()` does;
//! - arrays fill multi-value columns (a scalar becomes a one-item list; an empty list gets
//!   the default); a one-item array fills a single-value column;
//! - objects and arrays given to STRING / JSON columns are stored as their JSON text.
//!
//! Anything else (not an object, invalid JSON, a value that does not convert) is a
//! [`DecodeError`] naming the column and the value; the caller rolls the row back.

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use riffle_segment::{BlockBuilder, Physical, TableColumns};
use riffle_stream::StreamMessage;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::{DecodeError, MessageDecoder};

/// The JSON decoder for one table.
pub struct JsonDecoder {
    index: FieldIndex,
    complex: Option<crate::ComplexType>,
}

/// Most keys cached by position.
const MAX_CACHED_KEYS: usize = 256;

/// Column lookup by field name. Messages of a stream nearly always carry their keys in the
/// same order, so the key at each position of the previous message is remembered and
/// compared first; only a miss hashes the name.
pub struct FieldIndex {
    map: HashMap<String, usize>,
    order: Vec<(Box<str>, Option<usize>)>,
}

impl FieldIndex {
    /// An index of `names` to column positions.
    pub fn new(map: HashMap<String, usize>) -> FieldIndex {
        FieldIndex {
            map,
            order: Vec::new(),
        }
    }

    /// The column of the key at position `pos` of a message, if the table has one.
    fn lookup(&mut self, pos: usize, key: &str) -> Option<usize> {
        if let Some((k, col)) = self.order.get(pos) {
            if **k == *key {
                return *col;
            }
        }
        let col = self.map.get(key).copied();
        if pos < self.order.len() {
            self.order[pos] = (key.into(), col);
        } else if pos == self.order.len() && pos < MAX_CACHED_KEYS {
            self.order.push((key.into(), col));
        }
        col
    }
}

impl JsonDecoder {
    /// A decoder reading `columns`; metadata columns (`__key`, `__header$*`,
    /// `__metadata$*`) are left to the caller.
    pub fn new(columns: &Arc<TableColumns>) -> JsonDecoder {
        JsonDecoder::with_extras(columns, &[])
    }

    /// A decoder that also keeps the source-only fields `extras` (read by ingestion
    /// transforms) as the block's extra values, in that order.
    pub fn with_extras(columns: &Arc<TableColumns>, extras: &[String]) -> JsonDecoder {
        JsonDecoder {
            index: FieldIndex::new(field_map(columns, extras)),
            complex: None,
        }
    }

    /// A decoder for what a table's ingestion config asks (source-only fields, complex
    /// types).
    pub fn for_target(columns: &Arc<TableColumns>, target: &crate::DecodeTarget) -> JsonDecoder {
        JsonDecoder {
            index: FieldIndex::new(field_map(columns, &target.extras)),
            complex: target.complex.clone(),
        }
    }

    /// One reshaped row's fields into the current row.
    fn write_fields(
        &self,
        row: serde_json::Map<String, serde_json::Value>,
        out: &mut BlockBuilder,
    ) -> Result<(), DecodeError> {
        let n = out.columns().columns.len();
        for (k, v) in row {
            match self.index.map.get(&k).copied() {
                Some(j) if j >= n => out.push_extra(j - n, v),
                Some(i) => {
                    out.unset(i);
                    ValueSeed { out, col: i }
                        .deserialize(v)
                        .map_err(|e| DecodeError::new(e.to_string()))?;
                }
                None => {}
            }
        }
        Ok(())
    }

    /// The rows of a message under `complexTypeConfig`.
    fn complex_rows(
        &self,
        complex: &crate::ComplexType,
        bytes: &[u8],
    ) -> Result<Vec<serde_json::Map<String, serde_json::Value>>, DecodeError> {
        match serde_json::from_slice::<serde_json::Value>(bytes) {
            Ok(serde_json::Value::Object(m)) => complex.rows(m).map_err(DecodeError::new),
            Ok(other) => Err(DecodeError::new(format!(
                "expected a JSON object, got {}",
                match other {
                    serde_json::Value::Array(_) => "an array",
                    serde_json::Value::String(_) => "a string",
                    serde_json::Value::Number(_) => "a number",
                    serde_json::Value::Bool(_) => "a boolean",
                    _ => "null",
                }
            ))),
            Err(e) => Err(DecodeError::new(e.to_string())),
        }
    }
}

/// Field name to position: the table's columns (not the metadata columns, which the caller
/// fills), then the source-only fields numbered after them.
pub fn field_map(columns: &TableColumns, extras: &[String]) -> HashMap<String, usize> {
    let n = columns.columns.len();
    let mut map: HashMap<String, usize> = columns
        .columns
        .iter()
        .enumerate()
        .filter(|(_, c)| !c.name.starts_with("__"))
        .map(|(i, c)| (c.name.clone(), i))
        .collect();
    for (j, e) in extras.iter().enumerate() {
        map.entry(e.clone()).or_insert(n + j);
    }
    map
}

impl JsonDecoder {
    /// One JSON document's row (under `complexTypeConfig` its first row).
    pub fn decode_value(
        &mut self,
        value: &[u8],
        out: &mut BlockBuilder,
    ) -> Result<(), DecodeError> {
        match &self.complex {
            None => decode_json(&mut self.index, value, out),
            Some(c) => {
                let rows = self.complex_rows(c, value)?;
                match rows.into_iter().next() {
                    Some(row) => self.write_fields(row, out),
                    None => Ok(()),
                }
            }
        }
    }

    /// One JSON document's rows, `end_row` after each.
    pub fn decode_value_rows(
        &mut self,
        value: &[u8],
        out: &mut BlockBuilder,
        end_row: &mut dyn FnMut(&mut BlockBuilder),
    ) -> Result<(), DecodeError> {
        let Some(c) = &self.complex else {
            decode_json(&mut self.index, value, out)?;
            end_row(out);
            return Ok(());
        };
        for row in self.complex_rows(c, value)? {
            self.write_fields(row, out)?;
            end_row(out);
        }
        Ok(())
    }
}

impl MessageDecoder for JsonDecoder {
    /// One row; under `complexTypeConfig` the message's first row (see `decode_rows`).
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        self.decode_value(&msg.value, out)
    }

    fn decode_rows(
        &mut self,
        msg: &StreamMessage,
        out: &mut BlockBuilder,
        end_row: &mut dyn FnMut(&mut BlockBuilder),
    ) -> Result<(), DecodeError> {
        self.decode_value_rows(&msg.value, out, end_row)
    }
}

/// Pinot's `KafkaConfluentSchemaRegistryJsonMessageDecoder`: Confluent's framing (a zero
/// byte and the 4-byte id of the writer's JSON Schema) before a JSON document, decoded as
/// the JSON decoder decodes it. The JSON Schema is not needed to read the document and is
/// not fetched; `schema.registry.rest.url` is still required, as in Pinot.
pub struct ConfluentJsonDecoder {
    inner: JsonDecoder,
}

impl ConfluentJsonDecoder {
    /// From the stream's decoder props.
    pub fn new(
        config: &riffle_config::StreamConfig,
        columns: &Arc<TableColumns>,
        target: &crate::DecodeTarget,
    ) -> Result<ConfluentJsonDecoder, DecodeError> {
        if config
            .decoder_props
            .get("schema.registry.rest.url")
            .is_none_or(|u| u.trim().is_empty())
        {
            return Err(DecodeError::new(
                "decoder.prop.schema.registry.rest.url is required: the schema registry's URL",
            ));
        }
        Ok(ConfluentJsonDecoder {
            inner: JsonDecoder::for_target(columns, target),
        })
    }
}

/// The document after Confluent's 5-byte framing.
fn unframed(v: &[u8]) -> Result<&[u8], DecodeError> {
    crate::avro::registry::framed_schema_id(v)?;
    Ok(&v[5..])
}

impl MessageDecoder for ConfluentJsonDecoder {
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        self.inner.decode_value(unframed(&msg.value)?, out)
    }

    fn decode_rows(
        &mut self,
        msg: &StreamMessage,
        out: &mut BlockBuilder,
        end_row: &mut dyn FnMut(&mut BlockBuilder),
    ) -> Result<(), DecodeError> {
        self.inner
            .decode_value_rows(unframed(&msg.value)?, out, end_row)
    }
}

/// Decodes one JSON object into the current row of `out` (without ending the row).
pub fn decode_json(
    index: &mut FieldIndex,
    bytes: &[u8],
    out: &mut BlockBuilder,
) -> Result<(), DecodeError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    RowSeed {
        index,
        out: &mut *out,
    }
    .deserialize(&mut de)
    .map_err(|e| DecodeError::new(e.to_string()))?;
    de.end()
        .map_err(|e| DecodeError::new(format!("trailing data after the JSON object: {e}")))
}

struct RowSeed<'a> {
    index: &'a mut FieldIndex,
    out: &'a mut BlockBuilder,
}

impl<'de> DeserializeSeed<'de> for RowSeed<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut pos = 0;
        while let Some(col) = map.next_key_seed(KeySeed {
            index: &mut *self.index,
            pos,
        })? {
            pos += 1;
            match col {
                Some(i) if i >= self.out.columns().columns.len() => {
                    let v: serde_json::Value = map.next_value()?;
                    let j = i - self.out.columns().columns.len();
                    self.out.push_extra(j, v);
                }
                Some(i) => {
                    if self.out.is_set(i) {
                        // A repeated key: the last value wins.
                        self.out.unset(i);
                    }
                    map.next_value_seed(ValueSeed {
                        out: &mut *self.out,
                        col: i,
                    })?;
                }
                None => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

struct KeySeed<'a> {
    index: &'a mut FieldIndex,
    pos: usize,
}

impl<'de> DeserializeSeed<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Option<usize>, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'_> {
    type Value = Option<usize>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a field name")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Option<usize>, E> {
        Ok(self.index.lookup(self.pos, v))
    }
}

/// Deserialises one field value into column `col`.
struct ValueSeed<'a> {
    out: &'a mut BlockBuilder,
    col: usize,
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

/// Writes one text value into column `col` (as an item of an open list when `item`) with
/// the JSON decoder's conversions, for decoders whose values arrive as text (CSV).
pub(crate) fn put_text(
    out: &mut BlockBuilder,
    col: usize,
    v: &str,
    item: bool,
) -> Result<(), DecodeError> {
    ScalarVisitor { out, col, item }
        .text::<serde::de::value::Error>(v)
        .map_err(|e| DecodeError::new(e.to_string()))
}

/// Writes a whole number into column `col` with the JSON decoder's conversions.
pub(crate) fn put_int(
    out: &mut BlockBuilder,
    col: usize,
    v: i64,
    item: bool,
) -> Result<(), DecodeError> {
    ScalarVisitor { out, col, item }
        .int::<serde::de::value::Error>(v)
        .map_err(|e| DecodeError::new(e.to_string()))
}

/// Writes a number into column `col` with the JSON decoder's conversions.
pub(crate) fn put_float(
    out: &mut BlockBuilder,
    col: usize,
    v: f64,
    item: bool,
) -> Result<(), DecodeError> {
    ScalarVisitor { out, col, item }
        .float::<serde::de::value::Error>(v)
        .map_err(|e| DecodeError::new(e.to_string()))
}

/// Writes a boolean into column `col` with the JSON decoder's conversions.
pub(crate) fn put_bool(
    out: &mut BlockBuilder,
    col: usize,
    v: bool,
    item: bool,
) -> Result<(), DecodeError> {
    ScalarVisitor { out, col, item }
        .visit_bool::<serde::de::value::Error>(v)
        .map_err(|e| DecodeError::new(e.to_string()))
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
