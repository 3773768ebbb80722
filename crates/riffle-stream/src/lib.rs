//! The stream plugin interface: how Riffle reads any stream, partition by partition.
//!
//! This is Pinot's stream SPI in Rust terms. A [`StreamPlugin`] (Pinot's consumer factory)
//! is registered in a [`StreamRegistry`] under its `streamType` and under the Pinot factory
//! class names found in real configs. From a table's [`StreamConfig`] it builds:
//! - a [`MetadataProvider`]: partition ids, the offset for an [`OffsetCriteria`], the latest
//!   offsets (for lag);
//! - a [`PartitionConsumer`]: `fetch(from, timeout) -> MessageBatch`;
//! - optionally a [`StreamLevelConsumer`] (Pinot's high-level consumer).
//!
//! Message bytes are turned into rows by decoders, which live in `riffle-decode`
//! (transport-agnostic).
//!
//! # The contract (enforced by `conformance::run_suite`, feature `testsuite`, which every plugin runs)
//!
//! 1. **Offsets are opaque, ordered within a partition and half-open.** A [`StreamOffset`]
//!    names the position of one message; `next_offset` of a message is the offset to read
//!    after it. The string form (`Display` / [`StreamOffset::parse`]) is
//!    what the catalog stores and must stay stable across versions. (`StreamOffset` is
//!    defined in `riffle-common`, so that the catalog and the segments share it.)
//! 2. **The consumer keeps no committed state.** The ingestion loop owns the offset: every
//!    `fetch` says where to start (inclusive). Fetching twice from the same offset returns
//!    the same messages (as long as the stream still holds them).
//! 3. **Ordering.** Messages of a batch are in stream order, their offsets strictly
//!    increase, and the first message is at or after `from`.
//! 4. **Timeouts.** `fetch` returns within about `timeout`; with nothing to read it returns
//!    an empty batch whose `next_offset` equals `from` (or moves past skipped records).
//! 5. **Skipped records move the offset.** Records the plugin filters out (Kafka
//!    tombstones, transaction markers, blank lines of the file stream) are not returned, but
//!    `next_offset` moves past them, so the loop never re-reads them forever.
//! 6. **`next_offset` of the batch** is where the next fetch starts; it is at or after the
//!    last message's `next_offset`.
//! 7. **Partitions may appear** while running: the metadata provider lists them; they start
//!    from the smallest offset. A partition with parents (`MetadataProvider::parents`: a
//!    Kinesis shard split or merged from others) starts only once every parent still
//!    listed has ended (`end_of_partition`) and its last segment is committed.
//! 8. **Errors** carry a [`StreamErrorKind`]; transient ones are retried by the loop with
//!    backoff, others stop the partition with a visible error.

#[cfg(feature = "testsuite")]
pub mod conformance;
pub mod file;
pub mod memory;
pub mod stream_level;
pub mod wire;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
pub use riffle_common::StreamOffset;
use riffle_common::{BoxError, ClassifyError, ErrorKind, PartitionId};
pub use riffle_config::{OffsetCriteria, StreamConfig};

/// One message of a partition.
#[derive(Clone, Debug, PartialEq)]
pub struct StreamMessage {
    /// Message key, if any.
    pub key: Option<Bytes>,
    /// Message value (never a tombstone: those are filtered by the plugin).
    pub value: Bytes,
    /// Headers in stream order.
    pub headers: Vec<(String, Bytes)>,
    /// This message's offset.
    pub offset: StreamOffset,
    /// The offset right after this message.
    pub next_offset: StreamOffset,
    /// The stream's record timestamp (epoch ms), if it has one.
    pub timestamp_ms: Option<i64>,
}

/// Offsets the stream no longer holds (retention deleted them before they were read).
#[derive(Clone, Debug, PartialEq)]
pub struct DataLoss {
    /// The offset that was asked for.
    pub requested: StreamOffset,
    /// The first offset the stream still has.
    pub available_from: StreamOffset,
}

/// What one fetch returned.
#[derive(Clone, Debug, PartialEq)]
pub struct MessageBatch {
    /// Messages in stream order, skipped records removed.
    pub messages: Vec<StreamMessage>,
    /// Where the next fetch starts; moves past skipped records.
    pub next_offset: StreamOffset,
    /// Records the stream returned including skipped ones.
    pub unfiltered_count: usize,
    /// The partition is closed and will never have more data (Kinesis closed shards).
    pub end_of_partition: bool,
    /// Set when the requested offset was already deleted.
    pub data_loss: Option<DataLoss>,
    /// Bytes of message values and keys in this batch.
    pub size_bytes: usize,
}

impl MessageBatch {
    /// An empty batch that resumes at `next_offset`.
    pub fn empty(next_offset: StreamOffset) -> MessageBatch {
        MessageBatch {
            messages: Vec::new(),
            next_offset,
            unfiltered_count: 0,
            end_of_partition: false,
            data_loss: None,
            size_bytes: 0,
        }
    }
}

/// Broad class of a stream failure, for retry decisions and the API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamErrorKind {
    /// The stream config is wrong (a key, a value, an unknown stream type).
    InvalidConfig,
    /// The topic or partition does not exist.
    NotFound,
    /// A passing fault (connection refused, leader change); retrying may succeed.
    Transient,
    /// The operation ran out of time; retrying may succeed.
    Timeout,
    /// The requested offset is no longer in the stream.
    OffsetOutOfRange,
    /// Credentials or TLS rejected.
    Unauthorized,
    /// The plugin does not support this operation.
    Unsupported,
    /// Anything else; not retried.
    Fatal,
}

/// A stream failure.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct StreamError {
    /// The class of failure.
    pub kind: StreamErrorKind,
    /// What happened, lower-case, naming the topic / partition / key involved.
    pub message: String,
    /// The underlying failure, if any (a client library's error).
    #[source]
    pub source: Option<BoxError>,
}

impl StreamError {
    /// A new error.
    pub fn new(kind: StreamErrorKind, message: impl Into<String>) -> StreamError {
        StreamError {
            kind,
            message: message.into(),
            source: None,
        }
    }

    /// The same error with its cause kept as its source.
    pub fn with_source(mut self, source: impl Into<BoxError>) -> StreamError {
        self.source = Some(source.into());
        self
    }

    /// An invalid-config error.
    pub fn config(message: impl Into<String>) -> StreamError {
        StreamError::new(StreamErrorKind::InvalidConfig, message)
    }

    /// Whether the ingestion loop should retry (decided by the error's kind, as every
    /// error's: [`ErrorKind::is_retryable`]).
    pub fn is_retryable(&self) -> bool {
        ClassifyError::is_retryable(self)
    }
}

impl ClassifyError for StreamError {
    fn error_kind(&self) -> ErrorKind {
        match self.kind {
            // Wrong credentials or certificates are in the table's config: the user fixes them.
            StreamErrorKind::InvalidConfig
            | StreamErrorKind::Unsupported
            | StreamErrorKind::Unauthorized => ErrorKind::BadRequest,
            StreamErrorKind::NotFound => ErrorKind::NotFound,
            StreamErrorKind::Transient | StreamErrorKind::Timeout => ErrorKind::Unavailable,
            StreamErrorKind::OffsetOutOfRange | StreamErrorKind::Fatal => ErrorKind::Internal,
        }
    }
}

/// What a plugin may need from the server: where its data directory is, and which other
/// directories it may read.
#[derive(Clone, Debug)]
pub struct StreamContext {
    /// The server's data directory (the file stream defaults to `<data_dir>/streams`).
    pub data_dir: PathBuf,
    /// Directories outside the data directory that the file stream may read (the server's
    /// `--allow-stream-path`); none by default, so a table cannot read the server's files.
    pub allowed_dirs: Vec<PathBuf>,
}

impl StreamContext {
    /// A context for `data_dir` with no other readable directory.
    pub fn new(data_dir: PathBuf) -> StreamContext {
        StreamContext {
            data_dir,
            allowed_dirs: Vec::new(),
        }
    }
}

/// Pinot's stream consumer factory: registered under a `streamType`, builds the roles below
/// from a table's stream config.
#[async_trait]
pub trait StreamPlugin: Send + Sync + 'static {
    /// The `streamType` value, e.g. `kafka`, `file`.
    fn stream_type(&self) -> &'static str;

    /// Pinot factory class names this plugin answers to (may be empty).
    fn factory_class_names(&self) -> &'static [&'static str] {
        &[]
    }

    /// Whether the difference of two offsets counts records (Kafka) rather than something
    /// else (the file stream's byte positions). Only then is a records lag reported.
    fn offsets_count_records(&self) -> bool {
        true
    }

    /// Checks the plugin's own keys when a table is created; errors name the key. Returns
    /// warnings for keys that are accepted but not honoured.
    fn validate(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Vec<String>, StreamError>;

    /// A metadata provider for the whole stream.
    async fn metadata_provider(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
    ) -> Result<Box<dyn MetadataProvider>, StreamError>;

    /// A consumer for one partition. The caller owns it and its offsets.
    async fn partition_consumer(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
        partition: PartitionId,
    ) -> Result<Box<dyn PartitionConsumer>, StreamError>;

    /// A consumer without partition control. The default reads every partition round-robin
    /// through this plugin's own roles ([`stream_level::RoundRobinConsumer`]); a plugin with a
    /// native stream-level client may override it.
    async fn stream_level_consumer(
        &self,
        config: &StreamConfig,
        ctx: &StreamContext,
        start: StreamLevelStart,
    ) -> Result<Box<dyn StreamLevelConsumer>, StreamError> {
        let c = stream_level::open(self, config, ctx, start).await?;
        Ok(Box::new(c))
    }
}

/// Partition discovery and offsets (Pinot's `StreamMetadataProvider`).
#[async_trait]
pub trait MetadataProvider: Send {
    /// The partition ids of the topic, sorted.
    async fn partition_ids(&mut self, timeout: Duration) -> Result<Vec<PartitionId>, StreamError>;

    /// The offset of `partition` for a criteria. For periods and timestamps: the first
    /// message at or after the instant, or the end of the partition if there is none.
    async fn offset_for(
        &mut self,
        partition: PartitionId,
        criteria: &OffsetCriteria,
        timeout: Duration,
    ) -> Result<StreamOffset, StreamError>;

    /// The partitions that must end before each partition may start, for streams whose
    /// partitions have lineage (a Kinesis shard made by a split or a merge starts only
    /// after its parents are read to their end). Partitions without parents are absent.
    async fn parents(
        &mut self,
        _timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, Vec<PartitionId>>, StreamError> {
        Ok(BTreeMap::new())
    }

    /// The next offset to be written, per partition (for lag). A partition whose next
    /// offset is not known (an open Kinesis shard) may be absent.
    async fn latest_offsets(
        &mut self,
        partitions: &[PartitionId],
        timeout: Duration,
    ) -> Result<BTreeMap<PartitionId, StreamOffset>, StreamError>;
}

/// Reads one partition (Pinot's `PartitionGroupConsumer`).
#[async_trait]
pub trait PartitionConsumer: Send {
    /// Messages from `from` (inclusive), waiting at most about `timeout` for some to arrive.
    async fn fetch(
        &mut self,
        from: &StreamOffset,
        timeout: Duration,
    ) -> Result<MessageBatch, StreamError>;

    /// Told when the segment ending at `up_to` is committed. Informational: errors are
    /// logged, never fatal.
    async fn committed(&mut self, _up_to: &StreamOffset) -> Result<(), StreamError> {
        Ok(())
    }
}

/// Where a stream-level consumer starts.
#[derive(Clone, Debug, PartialEq)]
pub enum StreamLevelStart {
    /// The beginning of every partition.
    Earliest,
    /// The end of every partition.
    Latest,
    /// A checkpoint previously returned by [`StreamLevelConsumer::checkpoint`].
    Checkpoint(BTreeMap<PartitionId, StreamOffset>),
}

/// Consumption without partition control (Pinot's former high-level consumer): the plugin
/// chooses partitions and order; Riffle records a checkpoint only when it asks for one.
#[async_trait]
pub trait StreamLevelConsumer: Send {
    /// Next messages, tagged with their partition.
    async fn next_batch(
        &mut self,
        timeout: Duration,
    ) -> Result<Vec<(PartitionId, StreamMessage)>, StreamError>;

    /// The positions after everything returned so far, per partition.
    fn checkpoint(&self) -> BTreeMap<PartitionId, StreamOffset>;
}

/// Plugins by `streamType` and by Pinot factory class name.
#[derive(Clone, Default)]
pub struct StreamRegistry {
    by_type: BTreeMap<String, Arc<dyn StreamPlugin>>,
    by_class: BTreeMap<String, Arc<dyn StreamPlugin>>,
}

impl StreamRegistry {
    /// An empty registry.
    pub fn new() -> StreamRegistry {
        StreamRegistry::default()
    }

    /// A registry with the built-in `file` and `memory` plugins.
    pub fn with_builtins() -> StreamRegistry {
        let mut r = StreamRegistry::new();
        r.register(Arc::new(file::FilePlugin));
        r.register(Arc::new(memory::MemoryPlugin));
        r
    }

    /// Adds a plugin under its stream type and class names.
    pub fn register(&mut self, plugin: Arc<dyn StreamPlugin>) {
        for class in plugin.factory_class_names() {
            self.by_class.insert(class.to_string(), plugin.clone());
        }
        self.by_type
            .insert(plugin.stream_type().to_ascii_lowercase(), plugin);
    }

    /// The known stream types, sorted.
    pub fn stream_types(&self) -> Vec<String> {
        self.by_type.keys().cloned().collect()
    }

    /// The plugin for a stream config: by `streamType`, then by factory class name. An
    /// unknown type is an error listing the known ones. A stream-level table
    /// (`consumer.type: highlevel`) gets the plugin wrapped in a
    /// [`stream_level::StreamLevelPlugin`].
    pub fn plugin_for(&self, config: &StreamConfig) -> Result<Arc<dyn StreamPlugin>, StreamError> {
        let plugin = self.plugin_of(config)?;
        if config.stream_level {
            return Ok(Arc::new(stream_level::StreamLevelPlugin::new(plugin)));
        }
        Ok(plugin)
    }

    fn plugin_of(&self, config: &StreamConfig) -> Result<Arc<dyn StreamPlugin>, StreamError> {
        if let Some(p) = self.by_type.get(&config.stream_type) {
            return Ok(p.clone());
        }
        // Pinot chooses the plugin by factory class; only a class the user wrote counts
        // here, so a misspelt stream type never falls back to the default (Kafka) factory.
        if config.plugin_key("consumer.factory.class.name").is_some() {
            if let Some(p) = self.by_class.get(&config.factory_class) {
                return Ok(p.clone());
            }
        }
        Err(StreamError::config(format!(
            "unknown stream type '{}', known stream types: {}",
            config.stream_type,
            self.stream_types().join(", ")
        )))
    }
}
