//! [`TableSpec`]: a table as the server role runs it. The controller builds it once per
//! table start from the parsed, checked config and schema, with each stream's plugin
//! resolved; the server role never reads a config again.

use std::sync::Arc;

use riffle_config::{FlushConfig, LoadMode, Schema, StreamConfig, TableConfig};
use riffle_decode::DecodeTarget;
use riffle_segment::{SealOptions, TableColumns};
use riffle_stream::StreamPlugin;
use riffle_transform::IngestPlan;

/// Partition ids of a multi-stream table: `stream_index * 10_000 + stream_partition`.
pub const PARTITIONS_PER_STREAM: u32 = 10_000;

/// The table-wide partition id of a stream's partition.
pub fn partition_id(stream_index: u32, stream_partition: u32) -> u32 {
    stream_index * PARTITIONS_PER_STREAM + stream_partition
}

/// One stream of a table, resolved.
#[derive(Clone)]
pub struct StreamSpec {
    /// Position among the table's streams.
    pub index: u32,
    /// Its parsed config.
    pub config: StreamConfig,
    /// The plugin that reads it.
    pub plugin: Arc<dyn StreamPlugin>,
}

impl std::fmt::Debug for StreamSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamSpec")
            .field("index", &self.index)
            .field("stream_type", &self.config.stream_type)
            .field("topic", &self.config.topic)
            .finish()
    }
}

/// A table, ready to run.
#[derive(Debug)]
pub struct TableSpec {
    /// The config.
    pub config: Arc<TableConfig>,
    /// The schema.
    pub schema: Arc<Schema>,
    /// Its columns and their Arrow types.
    pub columns: Arc<TableColumns>,
    /// Its streams (none for an OFFLINE table).
    pub streams: Vec<StreamSpec>,
    /// How its segments seal.
    pub seal: SealOptions,
    /// How its sealed segments open.
    pub load_mode: LoadMode,
    /// End criteria (the first stream's; Pinot requires them equal).
    pub flush: FlushConfig,
    /// Ingestion transforms and filter, if the table has any.
    pub ingest: Option<Arc<IngestPlan>>,
    /// What decoders fill besides the columns (source-only fields, complex types).
    pub decode: DecodeTarget,
}

impl TableSpec {
    /// The columns a decoder fills and the source-only fields it keeps: the table's
    /// columns, or the ingestion plan's staging columns when the table has transforms.
    pub fn decode_target(&self) -> (Arc<TableColumns>, &DecodeTarget) {
        match &self.ingest {
            Some(p) => (p.staging().clone(), &self.decode),
            None => (self.columns.clone(), &self.decode),
        }
    }

    /// The stream a table-wide partition id belongs to.
    pub fn stream_of(&self, partition: u32) -> Option<&StreamSpec> {
        let index = partition / PARTITIONS_PER_STREAM;
        self.streams.iter().find(|s| s.index == index)
    }
}
