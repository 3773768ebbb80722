//! Message decoders: message bytes to rows, written straight into a consuming segment's
//! column builders ([`riffle_segment::BlockBuilder`]). Transport-agnostic: a decoder sees
//! a [`StreamMessage`], never a Kafka record.
//!
//! Owns:
//! - the [`MessageDecoder`] trait and [`decoder_for`], which picks a decoder by Pinot class
//!   name (aliases resolved by `riffle-config`);
//! - the JSON decoder ([`json::JsonDecoder`]) with Pinot's semantics;
//! - [`decode_batch`]: decodes a fetched batch, fills Pinot's special columns (`__key`,
//!   `__header$<name>`, `__metadata$offset|partition|recordTimestamp`,
//!   `__metadata$recordSerializedValueSize`) when the schema declares them, and rolls back
//!   malformed messages;
//! - batch record readers ([`readers`]): Avro, CSV, JSON and Parquet files into the same
//!   builders with the same conversions.
//!
//! Invariants: a malformed message never leaves a partial row behind and never panics; the
//! first error of a batch is reported with the offset of the message that caused it.

pub mod avro;
pub mod complex;
pub mod csv;
pub mod json;
pub mod proto;
pub mod readers;
mod varint;

use std::sync::Arc;

use riffle_config::stream::JSON_DECODER;
use riffle_config::StreamConfig;
use riffle_segment::{BlockBuilder, Physical, TableColumns};
use riffle_stream::{StreamMessage, StreamOffset};

pub use complex::{CollectionToJson, ComplexType};

/// What a decoder fills besides the columns it is given, from the table's ingestion config.
#[derive(Clone, Debug, Default)]
pub struct DecodeTarget {
    /// Source fields outside the columns that ingestion transforms read: kept as the
    /// block's extra values, in this order.
    pub extras: Vec<String>,
    /// `complexTypeConfig`: messages flattened and unnested into rows.
    pub complex: Option<ComplexType>,
    /// Directories a decoder may read files from (a protobuf descriptor): the data
    /// directory and those the server allows; nothing else is read.
    pub file_roots: Vec<std::path::PathBuf>,
}

/// A message that could not be decoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What is wrong, naming the column and value where known.
    pub message: String,
    /// Not the message's fault (a schema registry that cannot be reached): decoding stops
    /// at it and the message is read again later, never dropped.
    pub retryable: bool,
}

impl DecodeError {
    /// A new error: the message is malformed.
    pub fn new(message: impl Into<String>) -> DecodeError {
        DecodeError {
            message: message.into(),
            retryable: false,
        }
    }

    /// The same error, marked as an outage to retry.
    pub fn retryable(mut self) -> DecodeError {
        self.retryable = true;
        self
    }
}

/// Something a decoder needs from outside before it can decode a batch (a schema
/// registry's schemas), fetched on the partition's async loop.
#[async_trait::async_trait]
pub trait SchemaSource: Send + Sync {
    /// Fetches what `messages` need and is not at hand. An `Err` is an outage: decode
    /// nothing, wait and try again.
    async fn prefetch(&self, messages: &[StreamMessage]) -> Result<(), DecodeError>;
}

/// Decodes one message into rows of a block.
pub trait MessageDecoder: Send {
    /// Writes the message's values into the current row, without ending it; on error the
    /// caller rolls the row back.
    fn decode(&mut self, msg: &StreamMessage, out: &mut BlockBuilder) -> Result<(), DecodeError>;

    /// Writes the message's rows, calling `end_row` after each (one row, unless the
    /// message unnests into several); on error the caller rolls back every row of the
    /// message.
    fn decode_rows(
        &mut self,
        msg: &StreamMessage,
        out: &mut BlockBuilder,
        end_row: &mut dyn FnMut(&mut BlockBuilder),
    ) -> Result<(), DecodeError> {
        self.decode(msg, out)?;
        end_row(out);
        Ok(())
    }

    /// What must be fetched before a batch is decoded, if anything.
    fn schema_source(&self) -> Option<Arc<dyn SchemaSource>> {
        None
    }
}

/// Decoder class names Riffle can decode (canonical names).
pub fn supported_decoders() -> &'static [&'static str] {
    riffle_config::stream::SUPPORTED_DECODERS
}

/// The decoder for a stream config's decoder class, or an error naming the class and the
/// supported ones; `target` says what else it fills (source-only fields, complex types).
pub fn decoder_for(
    config: &StreamConfig,
    columns: &Arc<TableColumns>,
    target: &DecodeTarget,
) -> Result<Box<dyn MessageDecoder>, DecodeError> {
    if config.decoder_class == JSON_DECODER {
        return Ok(Box::new(json::JsonDecoder::for_target(columns, target)));
    }
    if config.decoder_class == riffle_config::stream::CONFLUENT_JSON_DECODER {
        return Ok(Box::new(json::ConfluentJsonDecoder::new(
            config, columns, target,
        )?));
    }
    let json_like = config.decoder_class == JSON_DECODER
        || config.decoder_class == riffle_config::stream::CONFLUENT_JSON_DECODER;
    if target.complex.is_some() && !json_like && config.decoder_class != csv::CSV_DECODER {
        return Err(DecodeError::new(format!(
            "complexTypeConfig is applied to JSON messages only for now, not to '{}'; \
             map nested fields with transformConfigs instead",
            config.decoder_class
        )));
    }
    if config.decoder_class == proto::PROTOBUF_DECODER {
        return Ok(Box::new(proto::ProtoDecoder::new(config, columns, target)?));
    }
    if config.decoder_class == proto::CONFLUENT_PROTOBUF_DECODER {
        return Ok(Box::new(proto::ConfluentProtoDecoder::new(
            config, columns, target,
        )?));
    }
    if config.decoder_class == avro::SIMPLE_AVRO_DECODER {
        return Ok(Box::new(avro::SimpleAvroDecoder::new(
            config, columns, target,
        )?));
    }
    if config.decoder_class == avro::registry::CONFLUENT_AVRO_DECODER {
        return Ok(Box::new(avro::registry::ConfluentAvroDecoder::new(
            config, columns, target,
        )?));
    }
    if config.decoder_class == csv::CSV_DECODER {
        if target.complex.is_some() {
            return Err(DecodeError::new(
                "complexTypeConfig needs nested messages: CSVMessageDecoder gives flat records",
            ));
        }
        return Ok(Box::new(csv::CsvDecoder::new(config, columns, target)?));
    }
    Err(DecodeError::new(format!(
        "decoder class '{}' is not supported yet, supported: {} (and the JSON decoder's alias \
         org.apache.pinot.plugin.stream.kafka.KafkaJSONMessageDecoder)",
        config.decoder_class,
        supported_decoders().join(", ")
    )))
}

/// Where Pinot's special columns are in the table, if declared.
#[derive(Debug, Clone, Default)]
pub struct SpecialColumns {
    key: Option<usize>,
    headers: Vec<(String, usize)>,
    offset: Option<usize>,
    partition: Option<usize>,
    record_timestamp: Option<usize>,
    value_size: Option<usize>,
    populate: bool,
}

impl SpecialColumns {
    /// Finds the special columns; headers, key and `__metadata$*` (except the value size)
    /// are filled only with `metadata.populate=true`, as Pinot does.
    pub fn new(columns: &TableColumns, metadata_populate: bool) -> SpecialColumns {
        let mut s = SpecialColumns {
            populate: metadata_populate,
            ..Default::default()
        };
        for (i, c) in columns.columns.iter().enumerate() {
            match c.name.as_str() {
                "__key" => s.key = Some(i),
                "__metadata$offset" => s.offset = Some(i),
                "__metadata$partition" => s.partition = Some(i),
                "__metadata$recordTimestamp" => s.record_timestamp = Some(i),
                "__metadata$recordSerializedValueSize" => s.value_size = Some(i),
                n => {
                    if let Some(h) = n.strip_prefix("__header$") {
                        s.headers.push((h.to_string(), i));
                    }
                }
            }
        }
        s
    }

    fn fill(&self, msg: &StreamMessage, partition: u32, out: &mut BlockBuilder) {
        if let Some(i) = self.value_size {
            put_number(out, i, msg.value.len() as i64);
        }
        if !self.populate {
            return;
        }
        if let (Some(i), Some(k)) = (self.key, &msg.key) {
            put_bytes(out, i, k);
        }
        for (name, i) in &self.headers {
            if let Some((_, v)) = msg.headers.iter().rev().find(|(h, _)| h == name) {
                put_bytes(out, *i, v);
            }
        }
        if let Some(i) = self.offset {
            match msg.offset.as_i64() {
                Some(n) => put_number(out, i, n),
                None => put_text(out, i, &msg.offset.to_string()),
            }
        }
        if let Some(i) = self.partition {
            put_number(out, i, partition as i64);
        }
        if let (Some(i), Some(ts)) = (self.record_timestamp, msg.timestamp_ms) {
            put_number(out, i, ts);
        }
    }
}

fn put_number(out: &mut BlockBuilder, i: usize, v: i64) {
    out.unset(i);
    match out.physical(i) {
        Physical::Int => out.push_i32(i, v.clamp(i32::MIN as i64, i32::MAX as i64) as i32),
        Physical::Long => out.push_i64(i, v),
        Physical::Timestamp => out.push_timestamp(i, v),
        Physical::Float => out.push_f32(i, v as f32),
        Physical::Double => out.push_f64(i, v as f64),
        Physical::Bool => out.push_bool(i, v != 0),
        Physical::Str => out.push_str(i, &v.to_string()),
        Physical::Bin => out.push_bytes(i, &v.to_be_bytes()),
    }
    if out.is_multi_value(i) {
        out.push_list_end(i);
    }
}

fn put_text(out: &mut BlockBuilder, i: usize, v: &str) {
    out.unset(i);
    match out.physical(i) {
        Physical::Str => out.push_str(i, v),
        Physical::Bin => out.push_bytes(i, v.as_bytes()),
        _ => out.push_default(i),
    }
}

/// Keys and headers: raw bytes into BYTES columns; into text columns the UTF-8 text (a key)
/// or, for headers that are not UTF-8, hex as Pinot converts BYTES to STRING.
fn put_bytes(out: &mut BlockBuilder, i: usize, v: &[u8]) {
    out.unset(i);
    match out.physical(i) {
        Physical::Bin => out.push_bytes(i, v),
        Physical::Str => match std::str::from_utf8(v) {
            Ok(s) => out.push_str(i, s),
            Err(_) => out.push_str(i, &riffle_common::hex_encode(v)),
        },
        _ => match std::str::from_utf8(v)
            .ok()
            .and_then(|s| s.trim().parse::<i64>().ok())
        {
            Some(n) => put_number(out, i, n),
            None => out.push_default(i),
        },
    }
}

/// What decoding a batch produced.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct DecodeStats {
    /// Rows added.
    pub rows: usize,
    /// Messages dropped as malformed.
    pub errors: usize,
    /// The first error, with the offset of its message.
    pub first_error: Option<(StreamOffset, DecodeError)>,
    /// The position in the batch of the message of the first error.
    pub first_error_index: Option<usize>,
    /// Every malformed message: its position in the batch and why (in batch order).
    pub failures: Vec<(usize, DecodeError)>,
    /// For each row added, the position in the batch of the message it came from.
    pub row_messages: Vec<u32>,
    /// Rows an ingestion filter dropped (set by the caller that applies it).
    pub filtered: usize,
    /// Decoding stopped at this message (its position in the batch) because of an outage
    /// (a retryable error): it and the messages after it are to be read again.
    pub retry_at: Option<(usize, DecodeError)>,
    /// The latest record timestamp seen.
    pub latest_timestamp_ms: Option<i64>,
}

/// Decodes `messages` into `out`. A malformed message is rolled back and counted; with
/// `stop_on_error` decoding stops at the first one (the rows before it are kept, and
/// `DecodeStats::first_error` says where it stopped).
pub fn decode_batch(
    decoder: &mut dyn MessageDecoder,
    special: &SpecialColumns,
    partition: u32,
    messages: &[StreamMessage],
    out: &mut BlockBuilder,
    stop_on_error: bool,
) -> DecodeStats {
    let mut stats = DecodeStats::default();
    for (m, msg) in messages.iter().enumerate() {
        let start = out.rows();
        let mut end_row = |o: &mut BlockBuilder| {
            special.fill(msg, partition, o);
            o.end_row();
        };
        match decoder.decode_rows(msg, out, &mut end_row) {
            Ok(()) => {
                let added = out.rows() - start;
                stats.rows += added;
                stats
                    .row_messages
                    .extend(std::iter::repeat_n(m as u32, added));
                if let Some(ts) = msg.timestamp_ms {
                    stats.latest_timestamp_ms =
                        Some(stats.latest_timestamp_ms.map_or(ts, |l| l.max(ts)));
                }
            }
            Err(e) if e.retryable => {
                out.rollback_to(start);
                stats.retry_at = Some((m, e));
                break;
            }
            Err(e) => {
                out.rollback_to(start);
                stats.errors += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some((msg.offset.clone(), e.clone()));
                    stats.first_error_index = Some(m);
                }
                stats.failures.push((m, e));
                if stop_on_error {
                    break;
                }
            }
        }
    }
    stats
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_formats;
