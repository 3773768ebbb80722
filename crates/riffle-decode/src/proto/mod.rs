//! Pinot's `ProtoBufMessageDecoder`: messages in Protocol Buffers' binary format, described
//! by a descriptor set file (`protoc --include_imports --descriptor_set_out=x.desc`).
//!
//! Decoder props: `descriptorFile` (required: a path, or `file://` URI, inside the data
//! directory or a directory the server allows for stream files) and `protoClassName` (the
//! message: its full name `pkg.Msg` or its simple name; the file's first message when
//! empty).
//!
//! A top-level field goes to the column of the same name: scalars straight into the
//! builder (a field repeated on the wire: the last value wins, as protobuf says), enums as
//! their value names, `bytes` into BYTES (hex into text), repeated fields into multi-value
//! columns, messages and maps into STRING / JSON columns as JSON text. A field the message
//! does not carry reads the column's default (as Pinot reads an unset field). Unknown
//! field numbers are skipped. Groups (deprecated) and truncated data are malformed.
//!
//! The descriptor set is read by a small reader of `descriptor.proto`'s wire format here
//! (only names, numbers, labels, types, nested types, enums and the map-entry option).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use riffle_config::StreamConfig;
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::StreamMessage;
use serde_json::Value;

use crate::json::{field_map, put_bool, put_float, put_int, put_text, put_value};
use crate::{DecodeError, DecodeTarget, MessageDecoder};

pub use riffle_config::stream::PROTOBUF_DECODER;

mod wire;
use wire::{kind, Field, Types, Wire};

/// A scalar as read from the wire.
enum Scalar<'a> {
    Int(i64),
    UInt(u64),
    Float(f64),
    Bool(bool),
    Text(&'a str),
    Bytes(&'a [u8]),
}

/// `ProtoBufMessageDecoder`.
pub struct ProtoDecoder {
    types: Arc<Types>,
    root: String,
    /// Field number of the root message -> column, or source field (`columns + j`).
    dest: HashMap<u32, usize>,
    columns: usize,
}

/// Whether `path` is inside one of `roots`.
fn inside(path: &Path, roots: &[PathBuf]) -> bool {
    let Ok(p) = path.canonicalize() else {
        return false;
    };
    roots
        .iter()
        .filter_map(|r| r.canonicalize().ok())
        .any(|r| p.starts_with(r))
}

impl ProtoDecoder {
    /// From the decoder props `descriptorFile` and `protoClassName`.
    pub fn new(
        config: &StreamConfig,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<ProtoDecoder, DecodeError> {
        let file = config
            .decoder_props
            .get("descriptorFile")
            .map(|f| f.trim())
            .filter(|f| !f.is_empty())
            .ok_or_else(|| {
                DecodeError::new(
                    "decoder.prop.descriptorFile is required: a protobuf descriptor set",
                )
            })?;
        let path = PathBuf::from(file.strip_prefix("file://").unwrap_or(file));
        if !inside(&path, &target.file_roots) {
            return Err(DecodeError::new(format!(
                "decoder.prop.descriptorFile '{file}' is not a readable file inside the data directory \
                 or a directory the server allows (--allow-stream-path)"
            )));
        }
        let bytes = std::fs::read(&path)
            .map_err(|e| DecodeError::new(format!("decoder.prop.descriptorFile '{file}': {e}")))?;
        let types = Types::parse(&bytes).map_err(|e| {
            DecodeError::new(format!(
                "decoder.prop.descriptorFile '{file}' is not a protobuf descriptor set: {}",
                e.message
            ))
        })?;
        let class = config
            .decoder_props
            .get("protoClassName")
            .cloned()
            .unwrap_or_default();
        let root = types
            .find(&class)
            .ok_or_else(|| {
                DecodeError::new(format!(
                    "decoder.prop.protoClassName '{class}' is not a message of '{file}'"
                ))
            })?
            .to_string();
        let fields = field_map(columns, &target.extras);
        Ok(ProtoDecoder::bind(
            Arc::new(types),
            root,
            &fields,
            columns.columns.len(),
        ))
    }

    /// Reads messages of type `root` into the columns (and source fields) of `fields`.
    fn bind(
        types: Arc<Types>,
        root: String,
        fields: &HashMap<String, usize>,
        columns: usize,
    ) -> ProtoDecoder {
        let dest = types
            .messages
            .get(&root)
            .map(|m| {
                m.fields
                    .iter()
                    .filter_map(|(n, f)| fields.get(&f.name).map(|c| (*n, *c)))
                    .collect()
            })
            .unwrap_or_default();
        ProtoDecoder {
            types,
            root,
            dest,
            columns,
        }
    }

    fn scalar<'a>(w: &mut Wire<'a>, kind: i32, wire: u8) -> Result<Scalar<'a>, DecodeError> {
        let fixed64 = |w: &mut Wire<'a>| -> Result<[u8; 8], DecodeError> {
            let b = w.take(8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(a)
        };
        let fixed32 = |w: &mut Wire<'a>| -> Result<[u8; 4], DecodeError> {
            let b = w.take(4)?;
            Ok([b[0], b[1], b[2], b[3]])
        };
        Ok(match (kind, wire) {
            (kind::DOUBLE, 1) => Scalar::Float(f64::from_le_bytes(fixed64(w)?)),
            (kind::FLOAT, 5) => Scalar::Float(f32::from_le_bytes(fixed32(w)?) as f64),
            (kind::INT64 | kind::INT32 | kind::ENUM, 0) => Scalar::Int(w.varint()? as i64),
            (kind::UINT64 | kind::UINT32, 0) => Scalar::UInt(w.varint()?),
            (kind::SINT32 | kind::SINT64, 0) => {
                let v = w.varint()?;
                Scalar::Int((v >> 1) as i64 ^ -((v & 1) as i64))
            }
            (kind::FIXED64, 1) => Scalar::UInt(u64::from_le_bytes(fixed64(w)?)),
            (kind::SFIXED64, 1) => Scalar::Int(i64::from_le_bytes(fixed64(w)?)),
            (kind::FIXED32, 5) => Scalar::UInt(u32::from_le_bytes(fixed32(w)?) as u64),
            (kind::SFIXED32, 5) => Scalar::Int(i32::from_le_bytes(fixed32(w)?) as i64),
            (kind::BOOL, 0) => Scalar::Bool(w.varint()? != 0),
            (kind::STRING, 2) => Scalar::Text(
                std::str::from_utf8(w.bytes()?)
                    .map_err(|_| DecodeError::new("text is not UTF-8"))?,
            ),
            (kind::BYTES, 2) => Scalar::Bytes(w.bytes()?),
            (k, wt) => {
                return Err(DecodeError::new(format!(
                    "wire type {wt} does not match the field's type {k}"
                )))
            }
        })
    }

    fn enum_name(&self, type_name: &str, v: i64) -> Option<&str> {
        self.types
            .enums
            .get(type_name)
            .and_then(|e| e.get(&(v as i32)))
            .map(String::as_str)
    }

    fn to_value(&self, s: Scalar<'_>, f: &Field) -> Value {
        match s {
            Scalar::Int(v) if f.kind == kind::ENUM => self
                .enum_name(&f.type_name, v)
                .map_or(Value::from(v), |n| Value::String(n.to_string())),
            Scalar::Int(v) => Value::from(v),
            Scalar::UInt(v) => Value::from(v),
            Scalar::Float(v) => serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number),
            Scalar::Bool(v) => Value::Bool(v),
            Scalar::Text(t) => Value::String(t.to_string()),
            Scalar::Bytes(b) => Value::String(riffle_common::hex_encode(b)),
        }
    }

    /// A whole (nested) message as JSON: fields by name, repeated ones as arrays, maps as
    /// objects.
    fn message_value(
        &self,
        type_name: &str,
        data: &[u8],
        depth: usize,
    ) -> Result<Value, DecodeError> {
        if depth > 32 {
            return Err(DecodeError::new("messages nest too deep"));
        }
        let Some(m) = self.types.messages.get(type_name) else {
            return Err(DecodeError::new(format!(
                "unknown message type {type_name}"
            )));
        };
        let mut w = Wire { data, pos: 0 };
        let mut out = serde_json::Map::new();
        while !w.done() {
            let (n, wire) = w.tag()?;
            let Some(f) = m.fields.get(&n) else {
                w.skip(wire)?;
                continue;
            };
            let values = self.field_values(&mut w, f, wire, depth)?;
            for v in values {
                if f.repeated {
                    let slot = out
                        .entry(f.name.clone())
                        .or_insert_with(|| Value::Array(Vec::new()));
                    if let Value::Array(a) = slot {
                        a.push(v);
                    }
                } else {
                    out.insert(f.name.clone(), v);
                }
            }
        }
        if m.map_entry {
            return Ok(Value::Object(out));
        }
        // Map fields (repeated entries with key and value) as objects.
        for f in m
            .fields
            .values()
            .filter(|f| f.kind == kind::MESSAGE && f.repeated)
        {
            let is_map = self
                .types
                .messages
                .get(&f.type_name)
                .is_some_and(|e| e.map_entry);
            if let (true, Some(Value::Array(entries))) = (is_map, out.get(&f.name).cloned()) {
                let mut obj = serde_json::Map::new();
                for e in entries {
                    let k = match e.get("key") {
                        Some(Value::String(s)) => s.clone(),
                        Some(other) => other.to_string(),
                        None => String::new(),
                    };
                    obj.insert(k, e.get("value").cloned().unwrap_or(Value::Null));
                }
                out.insert(f.name.clone(), Value::Object(obj));
            }
        }
        Ok(Value::Object(out))
    }

    /// The values one occurrence of a field holds (several for a packed repeated field).
    fn field_values(
        &self,
        w: &mut Wire<'_>,
        f: &Field,
        wire: u8,
        depth: usize,
    ) -> Result<Vec<Value>, DecodeError> {
        if f.kind == kind::MESSAGE {
            if wire != 2 {
                return Err(DecodeError::new(format!(
                    "field '{}': expected a message",
                    f.name
                )));
            }
            return Ok(vec![self.message_value(
                &f.type_name,
                w.bytes()?,
                depth + 1,
            )?]);
        }
        let packable = !matches!(f.kind, kind::STRING | kind::BYTES);
        if wire == 2 && packable {
            let mut inner = Wire {
                data: w.bytes()?,
                pos: 0,
            };
            let wt = match f.kind {
                kind::DOUBLE | kind::FIXED64 | kind::SFIXED64 => 1,
                kind::FLOAT | kind::FIXED32 | kind::SFIXED32 => 5,
                _ => 0,
            };
            let mut out = Vec::new();
            while !inner.done() {
                out.push(self.to_value(Self::scalar(&mut inner, f.kind, wt)?, f));
            }
            return Ok(out);
        }
        Ok(vec![self.to_value(Self::scalar(w, f.kind, wire)?, f)])
    }

    fn write_scalar(
        &self,
        s: Scalar<'_>,
        f: &Field,
        out: &mut BlockBuilder,
        col: usize,
    ) -> Result<(), DecodeError> {
        out.unset(col);
        match s {
            Scalar::Int(v) if f.kind == kind::ENUM => match self.enum_name(&f.type_name, v) {
                Some(n) => put_text(out, col, n, false),
                None => put_int(out, col, v, false),
            },
            Scalar::Int(v) => put_int(out, col, v, false),
            Scalar::UInt(v) => match i64::try_from(v) {
                Ok(x) => put_int(out, col, x, false),
                Err(_) => put_float(out, col, v as f64, false),
            },
            Scalar::Float(v) => put_float(out, col, v, false),
            Scalar::Bool(v) => put_bool(out, col, v, false),
            Scalar::Text(t) => put_text(out, col, t, false),
            Scalar::Bytes(b) => {
                if out.physical(col) == riffle_segment::Physical::Bin {
                    out.push_bytes(col, b);
                    Ok(())
                } else {
                    put_text(out, col, &riffle_common::hex_encode(b), false)
                }
            }
        }
    }
}

impl MessageDecoder for ProtoDecoder {
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        self.read(&msg.value, out)
    }
}

impl ProtoDecoder {
    /// Reads one message's bytes into the row being built.
    fn read(&self, data: &[u8], out: &mut BlockBuilder) -> Result<(), DecodeError> {
        let Some(root) = self.types.messages.get(&self.root) else {
            return Err(DecodeError::new("the message type is gone"));
        };
        let mut w = Wire { data, pos: 0 };
        // Repeated fields and messages gather their values before they are written.
        let mut gathered: Vec<(usize, Vec<Value>, bool)> = Vec::new();
        while !w.done() {
            let (n, wire) = w.tag()?;
            let (Some(f), Some(&col)) = (root.fields.get(&n), self.dest.get(&n)) else {
                w.skip(wire)?;
                continue;
            };
            let simple = !f.repeated
                && f.kind != kind::MESSAGE
                && col < self.columns
                && !out.is_multi_value(col);
            if simple {
                let s = Self::scalar(&mut w, f.kind, wire)
                    .map_err(|e| DecodeError::new(format!("field '{}': {}", f.name, e.message)))?;
                self.write_scalar(s, f, out, col)
                    .map_err(|e| DecodeError::new(format!("field '{}': {}", f.name, e.message)))?;
                continue;
            }
            let values = self
                .field_values(&mut w, f, wire, 0)
                .map_err(|e| DecodeError::new(format!("field '{}': {}", f.name, e.message)))?;
            match gathered.iter_mut().find(|(c, _, _)| *c == col) {
                Some((_, v, _)) if f.repeated => v.extend(values),
                Some((_, v, _)) => *v = values,
                None => gathered.push((col, values, f.repeated)),
            }
        }
        for (col, values, repeated) in gathered {
            let v = if repeated {
                Value::Array(values)
            } else {
                values.into_iter().last().unwrap_or(Value::Null)
            };
            // Maps were built as objects inside message values; a top-level map field is
            // an array of entries here: make it an object too.
            let v = match v {
                Value::Array(entries)
                    if !entries.is_empty()
                        && entries.iter().all(|e| {
                            e.as_object()
                                .is_some_and(|o| o.contains_key("key") && o.len() <= 2)
                        }) =>
                {
                    let mut obj = serde_json::Map::new();
                    for e in entries {
                        let k = match e.get("key") {
                            Some(Value::String(s)) => s.clone(),
                            Some(other) => other.to_string(),
                            None => String::new(),
                        };
                        obj.insert(k, e.get("value").cloned().unwrap_or(Value::Null));
                    }
                    Value::Object(obj)
                }
                other => other,
            };
            if col >= self.columns {
                out.push_extra(col - self.columns, v);
            } else {
                out.unset(col);
                put_value(out, col, v)?;
            }
        }
        Ok(())
    }
}

mod confluent;
pub use confluent::{ConfluentProtoDecoder, CONFLUENT_PROTOBUF_DECODER};

#[cfg(test)]
mod tests;
