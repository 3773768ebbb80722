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

use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::StreamMessage;
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, Visitor};

use crate::{DecodeError, MessageDecoder};

mod convert;
use convert::ValueSeed;
pub(crate) use convert::{put_bool, put_float, put_int, put_text, put_value};

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
