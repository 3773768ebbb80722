//! Avro messages: Pinot's `SimpleAvroMessageDecoder` (the schema in the decoder props) and
//! the Confluent schema-registry framing (`KafkaConfluentSchemaRegistryAvroMessageDecoder`:
//! a zero byte, the writer schema's 4-byte id, then the datum; see [`registry`]).
//!
//! The datum is read with the writer's schema straight into the column builders: a field
//! of the top-level record goes to the column of the same name (or is kept for a
//! transform, or skipped without being materialised); fields a schema version lacks read
//! the column's default, so a topic whose schema evolves keeps loading. Values convert as
//! the JSON decoder converts them (a scalar into a multi-value column is a one-item list,
//! a record, map or array into a STRING / JSON column is its JSON text, BYTES into STRING
//! is hex, an enum is its symbol).
//!
//! Logical types, as Pinot maps them: `timestamp-millis` / `-micros` / `-nanos` (and the
//! `local-` forms) are epoch milliseconds; `date` is days since the epoch (a TIMESTAMP
//! column gets its midnight in milliseconds, a STRING column `yyyy-MM-dd`); `time-millis`
//! / `-micros` are milliseconds of the day; `decimal` is its exact decimal text (a
//! BIG_DECIMAL or STRING column keeps every digit, a DOUBLE column the nearest double);
//! `uuid` is its text.
//!
//! A datum that ends early, a union branch or enum index out of range, a length past the
//! message or text that is not UTF-8 is a malformed message naming the field.

pub mod registry;
pub mod schema;

use std::collections::HashMap;
use std::sync::Arc;

use riffle_config::StreamConfig;
use riffle_segment::{BlockBuilder, Physical, TableColumns};
use riffle_stream::StreamMessage;
use serde_json::Value;

use crate::json::{field_map, put_bool, put_float, put_int, put_text, put_value};
use crate::{DecodeError, DecodeTarget, MessageDecoder};
pub use schema::{AvroSchema, Logical, Node, NodeId};

/// Pinot's plain Avro decoder class.
pub use riffle_config::stream::SIMPLE_AVRO_DECODER;

/// Where a top-level field's value goes.
#[derive(Clone, Copy, Debug)]
enum Dest {
    Column(usize),
    Extra(usize),
    Skip,
}

/// A writer schema with each top-level field's destination in a table.
#[derive(Debug)]
pub struct BoundSchema {
    schema: AvroSchema,
    fields: Vec<(String, NodeId, Dest)>,
}

impl BoundSchema {
    /// Binds a writer schema (a record) to the columns and source fields of `fields`.
    pub fn bind(
        schema: AvroSchema,
        fields: &HashMap<String, usize>,
        columns: usize,
    ) -> Result<BoundSchema, DecodeError> {
        let Node::Record { fields: rf, .. } = schema.root() else {
            return Err(DecodeError::new(
                "the Avro schema must be a record: each message is one row",
            ));
        };
        let fields = rf
            .iter()
            .map(|(name, id)| {
                let dest = match fields.get(name) {
                    Some(&i) if i >= columns => Dest::Extra(i - columns),
                    Some(&i) => Dest::Column(i),
                    None => Dest::Skip,
                };
                (name.clone(), *id, dest)
            })
            .collect();
        Ok(BoundSchema { schema, fields })
    }

    /// Reads one datum into the current row of `out`.
    pub fn read(&self, data: &[u8], out: &mut BlockBuilder) -> Result<(), DecodeError> {
        let used = self.read_prefix(data, out)?;
        if used != data.len() {
            return Err(DecodeError::new(format!(
                "{} bytes left after the Avro datum",
                data.len() - used
            )));
        }
        Ok(())
    }

    /// Reads the datum at the start of `data` into the current row of `out`; returns the
    /// bytes it took (datums follow each other in a container file's block).
    pub fn read_prefix(&self, data: &[u8], out: &mut BlockBuilder) -> Result<usize, DecodeError> {
        let mut c = Cursor { data, pos: 0 };
        for (name, node, dest) in &self.fields {
            let r = match dest {
                Dest::Skip => self.skip(&mut c, *node, 0),
                Dest::Column(col) => {
                    out.unset(*col);
                    self.write(&mut c, *node, out, *col)
                }
                Dest::Extra(j) => {
                    let v = self.value(&mut c, *node, 0)?;
                    if !v.is_null() {
                        out.push_extra(*j, v);
                    }
                    Ok(())
                }
            };
            r.map_err(|e| DecodeError::new(format!("field '{name}': {}", e.message)))?;
        }
        Ok(c.pos)
    }

    /// Resolves unions to the branch the datum holds.
    fn branch(&self, c: &mut Cursor, mut node: NodeId) -> Result<NodeId, DecodeError> {
        let mut hops = 0;
        while let Node::Union(b) = &self.schema.nodes[node] {
            let i = c.long()?;
            node = *usize::try_from(i)
                .ok()
                .and_then(|i| b.get(i))
                .ok_or_else(|| DecodeError::new(format!("union branch {i} out of range")))?;
            hops += 1;
            if hops > 8 {
                return Err(DecodeError::new("unions nest too deep"));
            }
        }
        Ok(node)
    }

    /// One value into single-value or multi-value column `col`: scalars straight into
    /// the builder, anything else through its JSON form.
    fn write(
        &self,
        c: &mut Cursor,
        node: NodeId,
        out: &mut BlockBuilder,
        col: usize,
    ) -> Result<(), DecodeError> {
        let node = self.branch(c, node)?;
        let mv = out.is_multi_value(col);
        match (&self.schema.nodes[node], mv) {
            (Node::Null, _) => Ok(()),
            (Node::Array(items), true) if self.scalar_items(*items) => {
                out.push_list_start(col);
                let items = *items;
                let mut n = 0usize;
                loop {
                    let count = c.block_count()?;
                    if count == 0 {
                        break;
                    }
                    for _ in 0..count {
                        n += 1;
                        if n > MAX_ITEMS {
                            return Err(DecodeError::new(format!(
                                "more than {MAX_ITEMS} array items"
                            )));
                        }
                        let item = self.branch(c, items)?;
                        if !matches!(self.schema.nodes[item], Node::Null) {
                            self.scalar(c, item, out, col, true)?;
                        }
                    }
                }
                out.push_list_end(col);
                Ok(())
            }
            (n, false) if is_scalar(n) => self.scalar(c, node, out, col, false),
            (n, true) if is_scalar(n) => {
                out.push_list_start(col);
                self.scalar(c, node, out, col, true)?;
                out.push_list_end(col);
                Ok(())
            }
            _ => {
                let v = self.value(c, node, 0)?;
                put_value(out, col, v)
            }
        }
    }

    /// Whether an array's items are scalars (or nulls), written item by item.
    fn scalar_items(&self, items: NodeId) -> bool {
        match &self.schema.nodes[items] {
            Node::Union(b) => b.iter().all(|x| {
                matches!(self.schema.nodes[*x], Node::Null) || is_scalar(&self.schema.nodes[*x])
            }),
            n => is_scalar(n),
        }
    }

    /// A scalar value into column `col` (an item of its open list when `item`).
    fn scalar(
        &self,
        c: &mut Cursor,
        node: NodeId,
        out: &mut BlockBuilder,
        col: usize,
        item: bool,
    ) -> Result<(), DecodeError> {
        match &self.schema.nodes[node] {
            Node::Boolean => put_bool(out, col, c.byte()? != 0, item),
            Node::Int(lt) | Node::Long(lt) => {
                let v = c.long()?;
                match lt {
                    Some(Logical::Date) => match out.physical(col) {
                        Physical::Timestamp => {
                            put_int(out, col, v.saturating_mul(86_400_000), item)
                        }
                        Physical::Str => put_text(out, col, &date_text(v), item),
                        _ => put_int(out, col, v, item),
                    },
                    Some(Logical::TimestampMicros) | Some(Logical::TimeMicros) => {
                        put_int(out, col, v.div_euclid(1000), item)
                    }
                    Some(Logical::TimestampNanos) => {
                        put_int(out, col, v.div_euclid(1_000_000), item)
                    }
                    _ => put_int(out, col, v, item),
                }
            }
            Node::Float => put_float(out, col, c.f32()? as f64, item),
            Node::Double => put_float(out, col, c.f64()?, item),
            Node::String(_) => {
                let b = c.bytes()?;
                let s =
                    std::str::from_utf8(b).map_err(|_| DecodeError::new("text is not UTF-8"))?;
                put_text(out, col, s, item)
            }
            Node::Bytes(lt) | Node::Fixed(_, lt) => {
                let b = match &self.schema.nodes[node] {
                    Node::Fixed(n, _) => c.take(*n)?,
                    _ => c.bytes()?,
                };
                match (lt, out.physical(col)) {
                    (Some(Logical::Decimal { scale }), _) => {
                        put_text(out, col, &decimal_text(b, *scale)?, item)
                    }
                    (_, Physical::Bin) => {
                        out.push_bytes(col, b);
                        Ok(())
                    }
                    (Some(Logical::Uuid), _) if b.len() == 16 => {
                        put_text(out, col, &uuid_text(b), item)
                    }
                    _ => put_text(out, col, &riffle_common::hex_encode(b), item),
                }
            }
            Node::Enum(symbols) => {
                let i = c.long()?;
                let s = usize::try_from(i)
                    .ok()
                    .and_then(|i| symbols.get(i))
                    .ok_or_else(|| DecodeError::new(format!("enum index {i} out of range")))?;
                put_text(out, col, s, item)
            }
            _ => Err(DecodeError::new("expected a scalar value")),
        }
    }

    /// A value as JSON (records and maps as objects, arrays as arrays).
    fn value(&self, c: &mut Cursor, node: NodeId, depth: usize) -> Result<Value, DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::new("values nest too deep"));
        }
        let node = self.branch(c, node)?;
        Ok(match &self.schema.nodes[node] {
            Node::Null => Value::Null,
            Node::Boolean => Value::Bool(c.byte()? != 0),
            Node::Int(lt) | Node::Long(lt) => {
                let v = c.long()?;
                Value::from(match lt {
                    Some(Logical::TimestampMicros) | Some(Logical::TimeMicros) => {
                        v.div_euclid(1000)
                    }
                    Some(Logical::TimestampNanos) => v.div_euclid(1_000_000),
                    _ => v,
                })
            }
            Node::Float => float_value(c.f32()? as f64),
            Node::Double => float_value(c.f64()?),
            Node::String(_) => {
                let b = c.bytes()?;
                Value::String(
                    std::str::from_utf8(b)
                        .map_err(|_| DecodeError::new("text is not UTF-8"))?
                        .to_string(),
                )
            }
            Node::Bytes(lt) | Node::Fixed(_, lt) => {
                let b = match &self.schema.nodes[node] {
                    Node::Fixed(n, _) => c.take(*n)?,
                    _ => c.bytes()?,
                };
                match lt {
                    Some(Logical::Decimal { scale }) => Value::String(decimal_text(b, *scale)?),
                    Some(Logical::Uuid) if b.len() == 16 => Value::String(uuid_text(b)),
                    _ => Value::String(riffle_common::hex_encode(b)),
                }
            }
            Node::Enum(symbols) => {
                let i = c.long()?;
                Value::String(
                    usize::try_from(i)
                        .ok()
                        .and_then(|i| symbols.get(i))
                        .ok_or_else(|| DecodeError::new(format!("enum index {i} out of range")))?
                        .clone(),
                )
            }
            Node::Record { fields, .. } => {
                let mut m = serde_json::Map::new();
                for (name, f) in fields {
                    m.insert(name.clone(), self.value(c, *f, depth + 1)?);
                }
                Value::Object(m)
            }
            Node::Array(items) => {
                let mut v = Vec::new();
                loop {
                    let count = c.block_count()?;
                    if count == 0 {
                        break;
                    }
                    for _ in 0..count {
                        if v.len() >= MAX_ITEMS {
                            return Err(DecodeError::new(format!(
                                "more than {MAX_ITEMS} array items"
                            )));
                        }
                        v.push(self.value(c, *items, depth + 1)?);
                    }
                }
                Value::Array(v)
            }
            Node::Map(values) => {
                let mut m = serde_json::Map::new();
                loop {
                    let count = c.block_count()?;
                    if count == 0 {
                        break;
                    }
                    for _ in 0..count {
                        if m.len() >= MAX_ITEMS {
                            return Err(DecodeError::new(format!(
                                "more than {MAX_ITEMS} map entries"
                            )));
                        }
                        let k = std::str::from_utf8(c.bytes()?)
                            .map_err(|_| DecodeError::new("map key is not UTF-8"))?
                            .to_string();
                        m.insert(k, self.value(c, *values, depth + 1)?);
                    }
                }
                Value::Object(m)
            }
            Node::Union(_) => Value::Null,
        })
    }

    /// Moves past a value without materialising it.
    fn skip(&self, c: &mut Cursor, node: NodeId, depth: usize) -> Result<(), DecodeError> {
        if depth > MAX_DEPTH {
            return Err(DecodeError::new("values nest too deep"));
        }
        let node = self.branch(c, node)?;
        match &self.schema.nodes[node] {
            Node::Null => {}
            Node::Boolean => {
                c.byte()?;
            }
            Node::Int(_) | Node::Long(_) | Node::Enum(_) => {
                c.long()?;
            }
            Node::Float => {
                c.take(4)?;
            }
            Node::Double => {
                c.take(8)?;
            }
            Node::String(_) | Node::Bytes(_) => {
                c.bytes()?;
            }
            Node::Fixed(n, _) => {
                c.take(*n)?;
            }
            Node::Record { fields, .. } => {
                for (_, f) in fields {
                    self.skip(c, *f, depth + 1)?;
                }
            }
            Node::Array(inner) | Node::Map(inner) => {
                let is_map = matches!(self.schema.nodes[node], Node::Map(_));
                loop {
                    let raw = c.long()?;
                    if raw == 0 {
                        break;
                    }
                    if raw < 0 {
                        // A block with its size in bytes: jumped over whole.
                        let size = c.long()?;
                        let size = usize::try_from(size)
                            .map_err(|_| DecodeError::new("negative block size"))?;
                        c.take(size)?;
                        continue;
                    }
                    for _ in 0..raw {
                        if is_map {
                            c.bytes()?;
                        }
                        self.skip(c, *inner, depth + 1)?;
                    }
                }
            }
            Node::Union(_) => {}
        }
        Ok(())
    }
}

/// Most items one array or map may hold.
const MAX_ITEMS: usize = 1 << 20;
/// Deepest nesting of values.
const MAX_DEPTH: usize = 64;

fn is_scalar(n: &Node) -> bool {
    matches!(
        n,
        Node::Boolean
            | Node::Int(_)
            | Node::Long(_)
            | Node::Float
            | Node::Double
            | Node::String(_)
            | Node::Bytes(_)
            | Node::Fixed(..)
            | Node::Enum(_)
    )
}

fn float_value(v: f64) -> Value {
    serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number)
}

/// `yyyy-MM-dd` of a day number.
fn date_text(days: i64) -> String {
    chrono::DateTime::from_timestamp(days.saturating_mul(86_400), 0)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| days.to_string())
}

/// The decimal text of an unscaled big-endian two's-complement integer.
fn decimal_text(b: &[u8], scale: u32) -> Result<String, DecodeError> {
    if b.len() > 16 {
        return Err(DecodeError::new(format!(
            "decimal of {} bytes: at most 16 (38 digits) are read",
            b.len()
        )));
    }
    let mut v: i128 = if b.first().is_some_and(|x| x & 0x80 != 0) {
        -1
    } else {
        0
    };
    for x in b {
        v = (v << 8) | *x as i128;
    }
    let neg = v < 0;
    let digits = v.unsigned_abs().to_string();
    let scale = scale as usize;
    let text = if scale == 0 {
        digits
    } else if digits.len() > scale {
        format!(
            "{}.{}",
            &digits[..digits.len() - scale],
            &digits[digits.len() - scale..]
        )
    } else {
        format!("0.{}{}", "0".repeat(scale - digits.len()), digits)
    };
    Ok(if neg { format!("-{text}") } else { text })
}

fn uuid_text(b: &[u8]) -> String {
    let h = riffle_common::hex_encode(b);
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// Reads Avro's binary encoding.
/// Reads Avro's binary encoding (also the container-file reader's).
pub(crate) struct Cursor<'a> {
    pub(crate) data: &'a [u8],
    pub(crate) pos: usize,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self) -> Result<u8, DecodeError> {
        let b = *self
            .data
            .get(self.pos)
            .ok_or_else(|| DecodeError::new("the Avro datum ends early"))?;
        self.pos += 1;
        Ok(b)
    }

    pub(crate) fn long(&mut self) -> Result<i64, DecodeError> {
        crate::varint::read(self.data, &mut self.pos)
            .map(crate::varint::zigzag)
            .map_err(|e| match e {
                crate::varint::VarintError::Truncated => {
                    DecodeError::new("the Avro datum ends early")
                }
                crate::varint::VarintError::TooLong => {
                    DecodeError::new("a varint longer than 10 bytes")
                }
            })
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        crate::varint::take(self.data, &mut self.pos, n)
            .ok_or_else(|| DecodeError::new(format!("a length of {n} bytes runs past the message")))
    }

    pub(crate) fn bytes(&mut self) -> Result<&'a [u8], DecodeError> {
        let n = self.long()?;
        let n = usize::try_from(n).map_err(|_| DecodeError::new(format!("negative length {n}")))?;
        self.take(n)
    }

    fn f32(&mut self) -> Result<f32, DecodeError> {
        let b = self.take(4)?;
        Ok(f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    fn f64(&mut self) -> Result<f64, DecodeError> {
        let b = self.take(8)?;
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        Ok(f64::from_le_bytes(a))
    }

    /// An array or map block's item count (0 ends); a negative count is followed by the
    /// block's size in bytes, which is read past.
    fn block_count(&mut self) -> Result<u64, DecodeError> {
        let raw = self.long()?;
        if raw < 0 {
            self.long()?;
        }
        Ok(raw.unsigned_abs())
    }
}

/// `SimpleAvroMessageDecoder`: every message is one datum of the configured schema.
pub struct SimpleAvroDecoder {
    bound: BoundSchema,
    strip: usize,
}

impl SimpleAvroDecoder {
    /// From the decoder props `schema` (required) and `leading.bytes.to.strip`.
    pub fn new(
        config: &StreamConfig,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<SimpleAvroDecoder, DecodeError> {
        let props = &config.decoder_props;
        let text = props.get("schema").ok_or_else(|| {
            DecodeError::new(
                "decoder.prop.schema is required: the Avro schema of the messages (JSON text)",
            )
        })?;
        let schema = AvroSchema::parse(text)
            .map_err(|e| DecodeError::new(format!("decoder.prop.schema: {e}")))?;
        let strip = match props.get("leading.bytes.to.strip") {
            None => 0,
            Some(s) => s.trim().parse::<usize>().map_err(|_| {
                DecodeError::new(format!(
                    "decoder.prop.leading.bytes.to.strip must be a number of bytes, got '{s}'"
                ))
            })?,
        };
        let fields = field_map(columns, &target.extras);
        let bound = BoundSchema::bind(schema, &fields, columns.columns.len())
            .map_err(|e| DecodeError::new(format!("decoder.prop.schema: {}", e.message)))?;
        Ok(SimpleAvroDecoder { bound, strip })
    }
}

impl MessageDecoder for SimpleAvroDecoder {
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        let data = msg.value.get(self.strip..).ok_or_else(|| {
            DecodeError::new(format!(
                "the message is shorter than the {} leading bytes to strip",
                self.strip
            ))
        })?;
        self.bound.read(data, out)
    }
}

#[cfg(test)]
mod tests;
