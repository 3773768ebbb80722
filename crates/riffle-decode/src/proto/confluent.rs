//! Pinot's `KafkaConfluentSchemaRegistryProtoBufMessageDecoder`: Protobuf messages in
//! Confluent's framing, their schemas from a schema registry.
//!
//! Framing: byte 0 is `0`, bytes 1..5 the schema id (big-endian), then the message-index
//! path (zig-zag varints: a count, then that many indexes; a lone `0` means `[0]`, the
//! file's first message), then the message. The path names the message type inside the
//! schema's file: a top-level message by position, then its nested types by position.
//!
//! The registry client, its props (URL, basic auth, TLS, cache) and its outage rules are the
//! Avro decoder's ([`crate::avro::registry`]): a registry that cannot be reached holds the
//! batch back and nothing is lost; an unknown id or an unreadable schema makes the message
//! malformed.

use std::collections::HashMap;
use std::sync::Arc;

use riffle_config::StreamConfig;
use riffle_segment::{BlockBuilder, TableColumns};
use riffle_stream::StreamMessage;

use super::{ProtoDecoder, Types, Wire};
use crate::avro::registry::{framed_schema_id, Registry, SchemaKind};
use crate::json::field_map;
use crate::{DecodeError, DecodeTarget, MessageDecoder, SchemaSource};

pub use riffle_config::stream::CONFLUENT_PROTOBUF_DECODER;

/// The most message indexes a frame may carry (nesting depth).
const MAX_INDEXES: u64 = 32;

/// `KafkaConfluentSchemaRegistryProtoBufMessageDecoder`.
pub struct ConfluentProtoDecoder {
    registry: Arc<Registry>,
    fields: HashMap<String, usize>,
    columns: usize,
    /// The schema's types by id, or why they cannot be read.
    types: HashMap<u32, Result<Arc<Types>, String>>,
    /// A decoder per schema id and message-index path.
    bound: HashMap<(u32, Vec<i64>), ProtoDecoder>,
}

impl ConfluentProtoDecoder {
    /// From the stream's decoder props.
    pub fn new(
        config: &StreamConfig,
        columns: &Arc<TableColumns>,
        target: &DecodeTarget,
    ) -> Result<ConfluentProtoDecoder, DecodeError> {
        Ok(ConfluentProtoDecoder {
            registry: Arc::new(Registry::from_config(config, SchemaKind::Protobuf)?),
            fields: field_map(columns, &target.extras),
            columns: columns.columns.len(),
            types: HashMap::new(),
            bound: HashMap::new(),
        })
    }

    fn types(&mut self, id: u32) -> Result<Arc<Types>, DecodeError> {
        if !self.types.contains_key(&id) {
            let answer = self.registry.cached(id).ok_or_else(|| {
                DecodeError::new(format!("schema id {id} was not fetched from the registry"))
                    .retryable()
            })?;
            let types = answer.and_then(|set| {
                Types::parse(&set).map(Arc::new).map_err(|e| {
                    format!("schema id {id}: not a protobuf descriptor: {}", e.message)
                })
            });
            if self.types.len() >= 1000 {
                self.types.clear();
                self.bound.clear();
            }
            self.types.insert(id, types);
        }
        match self.types.get(&id) {
            Some(Ok(t)) => Ok(t.clone()),
            Some(Err(e)) => Err(DecodeError::new(e.clone())),
            None => Err(DecodeError::new(format!("schema id {id} unavailable"))),
        }
    }
}

/// The message-index path after the 5-byte header, and where the message starts.
fn message_indexes(v: &[u8]) -> Result<(Vec<i64>, usize), DecodeError> {
    let mut w = Wire { data: v, pos: 5 };
    let zigzag = crate::varint::zigzag;
    let bad = |e: DecodeError| {
        DecodeError::new(format!(
            "the Confluent message-index header is malformed: {}",
            e.message
        ))
    };
    let count = zigzag(w.varint().map_err(bad)?);
    if count == 0 {
        return Ok((vec![0], w.pos));
    }
    if count < 0 || count as u64 > MAX_INDEXES {
        return Err(DecodeError::new(format!(
            "the Confluent message-index header claims {count} indexes (at most {MAX_INDEXES})"
        )));
    }
    let mut path = Vec::with_capacity(count as usize);
    for _ in 0..count {
        path.push(zigzag(w.varint().map_err(bad)?));
    }
    Ok((path, w.pos))
}

impl MessageDecoder for ConfluentProtoDecoder {
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError> {
        let v = &msg.value;
        let id = framed_schema_id(v)?;
        let (path, start) = message_indexes(v)?;
        let key = (id, path);
        if !self.bound.contains_key(&key) {
            let types = self.types(id)?;
            let root = types
                .by_index(&key.1)
                .ok_or_else(|| {
                    DecodeError::new(format!(
                        "schema id {id} has no message at index path {:?}",
                        key.1
                    ))
                })?
                .to_string();
            let decoder = ProtoDecoder::bind(types, root, &self.fields, self.columns);
            self.bound.insert(key.clone(), decoder);
        }
        match self.bound.get(&key) {
            Some(d) => d.read(&v[start..], out),
            None => Err(DecodeError::new(format!("schema id {id} unavailable"))),
        }
    }

    fn schema_source(&self) -> Option<Arc<dyn SchemaSource>> {
        Some(self.registry.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::message_indexes;

    #[test]
    fn message_index_headers() {
        let head = [0u8, 0, 0, 0, 7];
        let with = |rest: &[u8]| [&head[..], rest].concat();
        assert_eq!(message_indexes(&with(&[0, 9])).unwrap(), (vec![0], 6));
        // [1, 2]: count 2 (zig-zag 4), then 2 and 4.
        assert_eq!(
            message_indexes(&with(&[4, 2, 4, 9])).unwrap(),
            (vec![1, 2], 8)
        );
        assert!(message_indexes(&with(&[])).is_err());
        assert!(message_indexes(&with(&[3])).is_err(), "a negative count");
        assert!(message_indexes(&with(&[0x7e])).is_err(), "63 indexes");
        assert!(message_indexes(&with(&[4, 2])).is_err(), "ends early");
    }
}
