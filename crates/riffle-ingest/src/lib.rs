//! Stream ingestion: one consumption loop per partition, feeding the partition's consuming
//! segment.
//!
//! Owns [`IngestManager`]: it prepares a new table (finds its partitions and their start
//! offsets through the stream plugin), starts the loops of a table on creation and again on
//! every server start (from the catalog's IN_PROGRESS segments), finds partitions that
//! appear while running (they start from the smallest offset), stops loops, and reports
//! each partition's state ([`PartitionStatus`]).
//!
//! The loop ([`partition`]): `fetch(offset) -> decode into column builders (CPU pool) ->
//! publish rows and the next offset together -> check end criteria`. Rows are queryable as
//! soon as they are published.
//!
//! Invariants:
//! - The catalog is the only checkpoint: a partition always (re)starts at its IN_PROGRESS
//!   segment's start offset, and rows of a consuming segment are never checkpointed, so a
//!   restart re-reads them: nothing is lost or counted twice.
//! - A segment's published rows are exactly the decodable messages in
//!   `[start_offset, next_offset)`.
//! - A fetch error never skips offsets: transient errors are retried at the same offset,
//!   others stop the partition with a visible error.

pub mod bench;
pub mod flush;
pub mod partition;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riffle_catalog::{Catalog, CatalogError, SegmentMeta, SegmentStatus};
use riffle_common::{now_ms, ClassifyError, ErrorCode, PartitionId, SegmentName};
use riffle_config::{OffsetCriteria, Schema, StreamConfig, TableConfig};
use riffle_segment::{SegmentRegistry, TableColumns, TableData};
use riffle_stream::{StreamContext, StreamError, StreamOffset, StreamPlugin, StreamRegistry};
use serde::Serialize;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

/// Partition ids of a multi-stream table: `stream_index * 10_000 + stream_partition`.
pub const PARTITIONS_PER_STREAM: u32 = 10_000;

/// An ingestion failure.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// The table's stream or decoder config is not usable.
    #[error("{0}")]
    InvalidConfig(String),
    /// The stream could not be reached.
    #[error("{0}")]
    Stream(#[from] StreamError),
    /// The catalog failed.
    #[error("{0}")]
    Catalog(#[from] CatalogError),
}

impl ClassifyError for IngestError {
    fn code(&self) -> ErrorCode {
        match self {
            IngestError::InvalidConfig(_) => ErrorCode::BadRequest,
            IngestError::Stream(e) => e.code(),
            IngestError::Catalog(e) => e.code(),
        }
    }
}

/// What a partition's loop is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PartitionState {
    /// Starting up.
    Starting,
    /// Reading and indexing.
    Consuming,
    /// A transient error; retrying at the same offset.
    Retrying,
    /// Stopped by an error that needs a person (see `last_error`).
    Error,
    /// Stopped on request.
    Stopped,
}

/// A partition's state, counters and last error, as the API shows them.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PartitionStatus {
    /// Partition id.
    pub partition: u32,
    /// Consuming segment.
    pub segment: String,
    /// State.
    pub state: PartitionState,
    /// The next offset to read.
    pub current_offset: String,
    /// Messages read since the server started.
    pub messages_read: u64,
    /// Rows indexed since the server started.
    pub rows_indexed: u64,
    /// Malformed messages dropped since the server started.
    pub decode_errors: u64,
    /// Offsets the stream deleted before they were read and that were skipped under
    /// `realtime.segment.dataLossPolicy=RESUME_FROM_EARLIEST` (for integer offsets).
    pub offsets_lost: u64,
    /// The last error, if any.
    pub last_error: Option<String>,
    /// When the last fetch returned (epoch ms).
    pub last_fetch_ms: i64,
    /// When rows were last indexed (epoch ms).
    pub last_indexed_ms: i64,
}

/// Everything the loops share.
pub struct IngestContext {
    /// The catalog.
    pub catalog: Arc<Catalog>,
    /// Stream plugins.
    pub streams: StreamRegistry,
    /// Segments, as queries see them.
    pub segments: Arc<SegmentRegistry>,
    /// What plugins need from the server.
    pub stream_ctx: StreamContext,
    /// How often new partitions are looked for.
    pub discovery_interval: Duration,
}

/// One stream of a table, resolved.
pub(crate) struct StreamSpec {
    pub(crate) index: u32,
    pub(crate) config: StreamConfig,
    pub(crate) plugin: Arc<dyn StreamPlugin>,
}

/// A running table.
pub(crate) struct TableRuntime {
    pub(crate) name_with_type: String,
    pub(crate) raw_name: String,
    pub(crate) streams: Vec<StreamSpec>,
    pub(crate) columns: Arc<TableColumns>,
    pub(crate) data: Arc<TableData>,
    pub(crate) status: Mutex<BTreeMap<u32, PartitionStatus>>,
}

struct TableHandle {
    runtime: Arc<TableRuntime>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
    running: Mutex<HashSet<u32>>,
}

/// Starts, stops and watches the consumption of every REALTIME table.
pub struct IngestManager {
    ctx: Arc<IngestContext>,
    tables: Mutex<HashMap<String, Arc<TableHandle>>>,
}

/// A table's resolved streams, its columns, and warnings about keys not honoured.
type Resolved = (Vec<StreamSpec>, Arc<TableColumns>, Vec<String>);

fn resolve_streams(
    ctx: &IngestContext,
    table: &TableConfig,
    schema: &Schema,
) -> Result<Resolved, IngestError> {
    let configs = table
        .validate(schema)
        .map_err(|e| IngestError::InvalidConfig(e.to_string()))?;
    let columns = TableColumns::new(
        schema
            .columns()
            .map_err(|e| IngestError::InvalidConfig(e.to_string()))?,
    );
    let mut warnings = Vec::new();
    let mut specs = Vec::new();
    for (i, config) in configs.into_iter().enumerate() {
        let plugin = ctx.streams.plugin_for(&config)?;
        warnings.extend(plugin.validate(&config, &ctx.stream_ctx)?);
        riffle_decode::decoder_for(&config, &columns).map_err(|e| {
            IngestError::InvalidConfig(format!(
                "stream {i}: {}.decoder.class.name: {e}",
                format_args!("stream.{}", config.stream_type)
            ))
        })?;
        specs.push(StreamSpec {
            index: i as u32,
            config,
            plugin,
        });
    }
    Ok((specs, columns, warnings))
}

/// A new IN_PROGRESS segment's metadata.
pub fn in_progress_segment(
    raw: &str,
    name_with_type: &str,
    partition: u32,
    sequence: u32,
    start: &StreamOffset,
) -> SegmentMeta {
    let created = now_ms();
    SegmentMeta {
        segment_name: SegmentName::new(raw, PartitionId(partition), sequence, created).to_string(),
        table_name: name_with_type.to_string(),
        partition,
        sequence,
        status: SegmentStatus::InProgress,
        start_offset: start.to_string(),
        end_offset: None,
        creation_time_ms: created,
        flush_threshold_rows: None,
        total_docs: None,
        extra: BTreeMap::new(),
    }
}

impl IngestManager {
    /// A manager with no tables running.
    pub fn new(ctx: IngestContext) -> IngestManager {
        IngestManager {
            ctx: Arc::new(ctx),
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// The shared context.
    pub fn context(&self) -> &Arc<IngestContext> {
        &self.ctx
    }

    /// Checks a new REALTIME table's streams and decoders and finds its partitions and
    /// their start offsets (the table's offset criteria). Returns the IN_PROGRESS segments
    /// to create with the table, and warnings about accepted-but-ignored keys.
    pub async fn prepare_table(
        &self,
        table: &TableConfig,
        schema: &Schema,
    ) -> Result<(Vec<SegmentMeta>, Vec<String>), IngestError> {
        let (specs, _, warnings) = resolve_streams(&self.ctx, table, schema)?;
        let name_with_type = table.name_with_type();
        let mut metas = Vec::new();
        for spec in &specs {
            let timeout = Duration::from_millis(spec.config.connection_timeout_ms.max(1));
            let mut md = spec
                .plugin
                .metadata_provider(&spec.config, &self.ctx.stream_ctx)
                .await?;
            for p in md.partition_ids(timeout).await? {
                let start = md
                    .offset_for(p, &spec.config.offset_criteria, timeout)
                    .await?;
                let id = spec.index * PARTITIONS_PER_STREAM + p.0;
                metas.push(in_progress_segment(
                    table.raw_name(),
                    &name_with_type,
                    id,
                    0,
                    &start,
                ));
            }
        }
        Ok((metas, warnings))
    }

    /// Starts consuming a table from the catalog's IN_PROGRESS segments (on creation and
    /// on server start), plus partition discovery. Idempotent: a running table is left
    /// alone.
    pub fn start_table(&self, table: &TableConfig, schema: &Schema) -> Result<(), IngestError> {
        let name_with_type = table.name_with_type();
        if self.tables.lock().contains_key(&name_with_type) {
            return Ok(());
        }
        let (streams, columns, _) = resolve_streams(&self.ctx, table, schema)?;
        let data = Arc::new(TableData::new(
            table.raw_name(),
            columns.clone(),
            table.segments_config.time_column_name.clone(),
        ));
        self.ctx.segments.add_table(data.clone());
        let runtime = Arc::new(TableRuntime {
            name_with_type: name_with_type.clone(),
            raw_name: table.raw_name().to_string(),
            streams,
            columns,
            data,
            status: Mutex::new(BTreeMap::new()),
        });
        let handle = Arc::new(TableHandle {
            runtime: runtime.clone(),
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
            running: Mutex::new(HashSet::new()),
        });
        for meta in self.ctx.catalog.segments(&name_with_type)? {
            if meta.status == SegmentStatus::InProgress {
                self.spawn_partition(&handle, meta);
            }
        }
        let discovery = tokio::spawn(discover(self.ctx.clone(), handle.clone()));
        handle.tasks.lock().push(discovery);
        info!(table = %name_with_type, "consumption started");
        self.tables.lock().insert(name_with_type, handle);
        Ok(())
    }

    fn spawn_partition(&self, handle: &Arc<TableHandle>, meta: SegmentMeta) {
        spawn_partition(&self.ctx, handle, meta);
    }

    /// Stops a table's loops and waits for them; its segments leave the query registry.
    pub async fn stop_table(&self, name_with_type: &str) {
        let handle = self.tables.lock().remove(name_with_type);
        if let Some(h) = handle {
            h.cancel.cancel();
            let tasks: Vec<JoinHandle<()>> = std::mem::take(&mut *h.tasks.lock());
            for t in tasks {
                let _ = t.await;
            }
            self.ctx.segments.remove_table(&h.runtime.raw_name);
            info!(table = %name_with_type, "consumption stopped");
        }
    }

    /// Stops every table.
    pub async fn shutdown(&self) {
        let names: Vec<String> = self.tables.lock().keys().cloned().collect();
        for n in names {
            self.stop_table(&n).await;
        }
    }

    /// The latest offset of every partition of a running table, asked of the stream now (for
    /// lag), with whether offset differences count records. Partitions whose stream cannot
    /// be reached are left out.
    pub async fn latest_offsets(
        &self,
        name_with_type: &str,
    ) -> BTreeMap<u32, (StreamOffset, bool)> {
        let Some(h) = self.tables.lock().get(name_with_type).cloned() else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for spec in &h.runtime.streams {
            // Asked on an API call: answer within two seconds even when the stream is down.
            let timeout = Duration::from_millis(spec.config.connection_timeout_ms.clamp(1, 2_000));
            let res = async {
                let mut md = spec
                    .plugin
                    .metadata_provider(&spec.config, &self.ctx.stream_ctx)
                    .await?;
                let ids = md.partition_ids(timeout).await?;
                md.latest_offsets(&ids, timeout).await
            }
            .await;
            match res {
                Ok(latest) => {
                    for (p, o) in latest {
                        let counts = spec.plugin.offsets_count_records();
                        out.insert(spec.index * PARTITIONS_PER_STREAM + p.0, (o, counts));
                    }
                }
                Err(e) => {
                    warn!(table = %name_with_type, error = %e, "cannot read latest offsets");
                }
            }
        }
        out
    }

    /// The state of each partition of a table, `None` if the table is not running.
    pub fn status(&self, name_with_type: &str) -> Option<Vec<PartitionStatus>> {
        let h = self.tables.lock().get(name_with_type).cloned()?;
        let v = h.runtime.status.lock().values().cloned().collect();
        Some(v)
    }
}

fn spawn_partition(ctx: &Arc<IngestContext>, handle: &Arc<TableHandle>, meta: SegmentMeta) {
    if !handle.running.lock().insert(meta.partition) {
        return;
    }
    let stream_index = meta.partition / PARTITIONS_PER_STREAM;
    let Some(spec_pos) = handle
        .runtime
        .streams
        .iter()
        .position(|s| s.index == stream_index)
    else {
        warn!(table = %handle.runtime.name_with_type, partition = meta.partition,
              "consuming segment belongs to no stream of the table; not started");
        return;
    };
    let task = tokio::spawn(partition::run(
        ctx.clone(),
        handle.runtime.clone(),
        spec_pos,
        meta,
        handle.cancel.child_token(),
    ));
    handle.tasks.lock().push(task);
}

/// Finds partitions that appeared since the table started and starts them from the
/// smallest offset (Pinot's rule for new partitions).
async fn discover(ctx: Arc<IngestContext>, handle: Arc<TableHandle>) {
    let rt = handle.runtime.clone();
    loop {
        tokio::select! {
            _ = handle.cancel.cancelled() => return,
            _ = tokio::time::sleep(ctx.discovery_interval) => {}
        }
        for spec in &rt.streams {
            let timeout = Duration::from_millis(spec.config.connection_timeout_ms.max(1));
            let found = async {
                let mut md = spec
                    .plugin
                    .metadata_provider(&spec.config, &ctx.stream_ctx)
                    .await?;
                let ids = md.partition_ids(timeout).await?;
                let mut new = Vec::new();
                for p in ids {
                    let id = spec.index * PARTITIONS_PER_STREAM + p.0;
                    if handle.running.lock().contains(&id) {
                        continue;
                    }
                    let start = md.offset_for(p, &OffsetCriteria::Smallest, timeout).await?;
                    new.push(in_progress_segment(
                        &rt.raw_name,
                        &rt.name_with_type,
                        id,
                        0,
                        &start,
                    ));
                }
                Ok::<_, StreamError>(new)
            }
            .await;
            match found {
                Ok(new) => {
                    for meta in new {
                        // A partition the catalog already knows (e.g. a race with start-up)
                        // keeps its stored start offset.
                        match ctx
                            .catalog
                            .add_segments(&rt.name_with_type, std::slice::from_ref(&meta))
                        {
                            Ok(()) => {
                                info!(table = %rt.name_with_type, partition = meta.partition,
                                      offset = %meta.start_offset, "new partition found");
                                spawn_partition(&ctx, &handle, meta);
                            }
                            Err(e) => {
                                warn!(table = %rt.name_with_type, partition = meta.partition,
                                      error = %e, "cannot record new partition");
                            }
                        }
                    }
                }
                Err(e) => {
                    warn!(table = %rt.name_with_type, error = %e, "partition discovery failed");
                }
            }
        }
    }
}
