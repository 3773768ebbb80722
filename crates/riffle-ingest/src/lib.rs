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
pub mod bench_lifecycle;
pub mod flush;
pub mod lifecycle;
pub mod partition;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riffle_catalog::{Catalog, CatalogError, SegmentMeta, SegmentStatus, TableState};
use riffle_common::{now_ms, ClassifyError, ErrorCode, PartitionId, SegmentName};
use riffle_config::{OffsetCriteria, Schema, StreamConfig, TableConfig};
use riffle_segment::sealed::{LoadMode, SealOptions};
use riffle_segment::{SegmentRef, SegmentRegistry, TableColumns, TableData};
use riffle_storage::DeepStore;
use riffle_stream::{
    MetadataProvider, StreamContext, StreamError, StreamOffset, StreamPlugin, StreamRegistry,
};
use serde::Serialize;
use tokio::task::JoinHandle;

use crate::flush::StopReason;
use tokio_util::sync::CancellationToken;
use tracing::{error, info, warn};

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
    /// The deep store failed.
    #[error("{0}")]
    Storage(#[from] riffle_storage::StorageError),
}

impl ClassifyError for IngestError {
    fn code(&self) -> ErrorCode {
        match self {
            IngestError::InvalidConfig(_) => ErrorCode::BadRequest,
            IngestError::Stream(e) => e.code(),
            IngestError::Catalog(e) => e.code(),
            IngestError::Storage(e) => e.code(),
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
    /// Consumption paused (`pauseConsumption`): the consuming segment was committed.
    Paused,
    /// The stream closed the partition (a split or merged shard): its last segment was
    /// committed and nothing more will come.
    Ended,
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
    /// Segments of this partition committed since the server started.
    pub segments_committed: u64,
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
    /// Where sealed segments are uploaded before they commit.
    pub deep_store: DeepStore,
    /// Where this server keeps sealed segment files (`<dir>/<table>/<segment>.seg`).
    pub segments_dir: std::path::PathBuf,
    /// A consuming segment holding this many bytes ends early
    /// (`indexCapacityThresholdBreached`) instead of running out of memory.
    pub max_consuming_bytes: usize,
}

impl IngestContext {
    /// A context for one server with everything under `data_dir`: stream files, sealed
    /// segments (`segments/`) and a `file://` deep store (`deepstore/`). Fields can be
    /// changed afterwards (another deep store, discovery interval, memory cap).
    pub fn local(
        catalog: Arc<Catalog>,
        streams: StreamRegistry,
        segments: Arc<SegmentRegistry>,
        data_dir: &std::path::Path,
    ) -> Result<IngestContext, IngestError> {
        let deep = data_dir.join("deepstore");
        std::fs::create_dir_all(&deep)
            .map_err(|e| IngestError::InvalidConfig(format!("create {}: {e}", deep.display())))?;
        let deep = std::path::absolute(&deep)
            .map_err(|e| IngestError::InvalidConfig(format!("resolve {}: {e}", deep.display())))?;
        let deep_store = DeepStore::open(&format!("file://{}", deep.display()), &BTreeMap::new())?;
        Ok(IngestContext {
            catalog,
            streams,
            segments,
            stream_ctx: StreamContext {
                data_dir: data_dir.to_path_buf(),
            },
            discovery_interval: Duration::from_secs(1),
            deep_store,
            segments_dir: data_dir.join("segments"),
            max_consuming_bytes: 1 << 30,
        })
    }
}

/// One stream of a table, resolved.
pub(crate) struct StreamSpec {
    pub(crate) index: u32,
    pub(crate) config: StreamConfig,
    pub(crate) plugin: Arc<dyn StreamPlugin>,
}

/// A stream's metadata provider, its partitions now, and the timeout for further calls.
type Partitions = (Box<dyn MetadataProvider>, Vec<PartitionId>, Duration);

impl StreamSpec {
    /// Asks the stream for its partitions, each call bounded by the stream's connection
    /// timeout, at most `cap`.
    async fn partitions(
        &self,
        ctx: &StreamContext,
        cap: Duration,
    ) -> Result<Partitions, StreamError> {
        let timeout = Duration::from_millis(self.config.connection_timeout_ms.max(1)).min(cap);
        let mut md = self.plugin.metadata_provider(&self.config, ctx).await?;
        let ids = md.partition_ids(timeout).await?;
        Ok((md, ids, timeout))
    }
}

/// A running table.
pub(crate) struct TableRuntime {
    pub(crate) name_with_type: String,
    pub(crate) raw_name: String,
    pub(crate) streams: Vec<StreamSpec>,
    pub(crate) columns: Arc<TableColumns>,
    pub(crate) data: Arc<TableData>,
    pub(crate) status: Mutex<BTreeMap<u32, PartitionStatus>>,
    /// How sealed segments are indexed.
    pub(crate) seal_options: SealOptions,
    /// How sealed segments are opened.
    pub(crate) load_mode: LoadMode,
    /// End criteria of the table (the first stream's; Pinot requires them equal).
    pub(crate) flush: riffle_config::FlushConfig,
    /// Partitions whose loop runs now.
    pub(crate) running: Mutex<HashSet<u32>>,
    /// What the API asks of each partition.
    pub(crate) controls: Mutex<BTreeMap<u32, Arc<lifecycle::PartitionControl>>>,
}

impl TableRuntime {
    /// Partitions this server consumes (divides Pinot's `rows` threshold).
    pub(crate) fn partition_count(&self) -> u32 {
        (self.controls.lock().len() as u32).max(1)
    }

    fn control(&self, partition: u32) -> Arc<lifecycle::PartitionControl> {
        self.controls.lock().entry(partition).or_default().clone()
    }
}

struct TableHandle {
    runtime: Arc<TableRuntime>,
    cancel: CancellationToken,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

/// Starts, stops and watches the consumption of every REALTIME table.
pub struct IngestManager {
    ctx: Arc<IngestContext>,
    tables: Mutex<HashMap<String, Arc<TableHandle>>>,
    jobs: Mutex<HashMap<String, ForceCommitJob>>,
}

/// Pinot's pause status (`pauseConsumption`, `resumeConsumption`, `pauseStatus`).
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PauseStatus {
    /// Consumption is paused.
    pub pause_flag: bool,
    /// Segments still consuming (while a pause commits them, or after a resume).
    pub consuming_segments: Vec<String>,
    /// Why the flag last changed.
    pub reason_code: Option<String>,
    /// The operator's comment.
    pub comment: Option<String>,
    /// When the flag last changed.
    pub timestamp: Option<String>,
    /// Streams paused on their own (always empty: topics are paused with the table).
    pub index_of_inactive_topics: Vec<u32>,
}

/// A force-commit request.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ForceCommitJob {
    /// Job id.
    pub job_id: String,
    /// Table name with type.
    pub table_name: String,
    /// When it was asked (epoch ms).
    pub submission_time_ms: i64,
    /// The consuming segments it commits.
    pub segments: Vec<String>,
}

/// A table's retention in milliseconds, if it has one.
pub fn retention_ms(cfg: &TableConfig) -> Option<i64> {
    let unit = cfg.segments_config.retention_time_unit.as_deref()?;
    let value = match cfg.segments_config.retention_time_value.as_ref()? {
        serde_json::Value::Number(n) => n.as_f64()?,
        serde_json::Value::String(s) => s.trim().parse::<f64>().ok()?,
        _ => return None,
    };
    let unit_ms: f64 = match unit.to_ascii_uppercase().as_str() {
        "MILLISECONDS" => 1.0,
        "SECONDS" => 1e3,
        "MINUTES" => 60e3,
        "HOURS" => 3_600e3,
        "DAYS" => 86_400e3,
        _ => return None,
    };
    (value > 0.0).then_some((value * unit_ms) as i64)
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
            jobs: Mutex::new(HashMap::new()),
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
            let (mut md, ids, timeout) =
                spec.partitions(&self.ctx.stream_ctx, Duration::MAX).await?;
            for p in ids {
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

    /// Starts a table from the catalog (on creation and on server start): loads its
    /// committed segments (from local disk when intact, else from the deep store), removes
    /// what never committed, then starts a loop for each IN_PROGRESS segment and partition
    /// discovery. Idempotent: a running table is left alone.
    pub async fn start_table(
        &self,
        table: &TableConfig,
        schema: &Schema,
    ) -> Result<(), IngestError> {
        let name_with_type = table.name_with_type();
        if self.tables.lock().contains_key(&name_with_type) {
            return Ok(());
        }
        let (streams, columns, _) = resolve_streams(&self.ctx, table, schema)?;
        let flush = streams
            .first()
            .map(|s| s.config.flush.clone())
            .ok_or_else(|| IngestError::InvalidConfig("the table has no stream".into()))?;
        let data = Arc::new(TableData::new(
            table.raw_name(),
            columns.clone(),
            table.segments_config.time_column_name.clone(),
        ));
        let runtime = Arc::new(TableRuntime {
            name_with_type: name_with_type.clone(),
            raw_name: table.raw_name().to_string(),
            streams,
            columns,
            data: data.clone(),
            status: Mutex::new(BTreeMap::new()),
            seal_options: SealOptions::from_table(table),
            load_mode: LoadMode::parse(table.table_index_config.load_mode.as_deref()),
            flush,
            running: Mutex::new(HashSet::new()),
            controls: Mutex::new(BTreeMap::new()),
        });
        let segments = self.ctx.catalog.segments(&name_with_type)?;
        let committed: Vec<SegmentMeta> = segments
            .iter()
            .filter(|m| m.status == SegmentStatus::Done)
            .cloned()
            .collect();
        lifecycle::remove_orphans(&self.ctx, &name_with_type, &committed).await;
        let started = std::time::Instant::now();
        let mut loaded = 0usize;
        for meta in &committed {
            match lifecycle::load_committed(&self.ctx, &runtime, meta).await {
                Ok(Some(seg)) => {
                    data.put_segment(SegmentRef::Sealed(Arc::new(seg)));
                    loaded += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    error!(table = %name_with_type, segment = %meta.segment_name, error = %e,
                           "committed segment cannot be loaded; its rows are missing from queries");
                    data.set_unavailable(&meta.segment_name, e);
                }
            }
        }
        if loaded > 0 {
            info!(table = %name_with_type, segments = loaded,
                  ms = started.elapsed().as_millis() as u64, "committed segments loaded");
        }
        for (p, a) in lifecycle::autotune_by_partition(&segments) {
            *runtime.control(p).autotune.lock() = a;
        }
        self.ctx.segments.add_table(data);
        let handle = Arc::new(TableHandle {
            runtime: runtime.clone(),
            cancel: CancellationToken::new(),
            tasks: Mutex::new(Vec::new()),
        });
        let paused = self.ctx.catalog.table_state(&name_with_type)?.paused;
        let in_progress: Vec<SegmentMeta> = segments
            .into_iter()
            .filter(|m| m.status == SegmentStatus::InProgress)
            .collect();
        for meta in &in_progress {
            runtime.control(meta.partition);
        }
        for meta in in_progress {
            if paused {
                // A pause that did not finish before a restart: commit what is there first.
                runtime
                    .control(meta.partition)
                    .pause
                    .store(true, Ordering::SeqCst);
            }
            spawn_partition(&self.ctx, &handle, meta);
        }
        let discovery = tokio::spawn(discover(self.ctx.clone(), handle.clone()));
        handle.tasks.lock().push(discovery);
        info!(table = %name_with_type, paused, "consumption started");
        self.tables.lock().insert(name_with_type, handle);
        Ok(())
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
            let res = async {
                let (mut md, ids, timeout) = spec
                    .partitions(&self.ctx.stream_ctx, Duration::from_secs(2))
                    .await?;
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

    /// Pauses a table's consumption (Pinot's `pauseConsumption`): the flag is stored first,
    /// then each consuming segment is committed with no next segment. Waits up to
    /// `wait` for the commits; what is still consuming is in the returned status.
    pub async fn pause(
        &self,
        name_with_type: &str,
        comment: Option<String>,
        wait: Duration,
    ) -> Result<PauseStatus, IngestError> {
        let state = TableState::administrative(true, comment, now_ms());
        self.ctx
            .catalog
            .set_table_state(name_with_type, &state, &[])?;
        let handle = self.tables.lock().get(name_with_type).cloned();
        if let Some(h) = handle {
            for c in h.runtime.controls.lock().values() {
                c.pause.store(true, Ordering::SeqCst);
                c.wake.notify_one();
            }
            let deadline = tokio::time::Instant::now() + wait;
            while !h.runtime.running.lock().is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        info!(table = %name_with_type, "consumption paused");
        self.pause_status(name_with_type)
    }

    /// Resumes a paused table (Pinot's `resumeConsumption`): every partition without a
    /// consuming segment gets one, starting where `consume_from` says (`lastConsumed`, the
    /// default: the end of its last committed segment; `smallest`; `largest`).
    pub async fn resume(
        &self,
        table: &TableConfig,
        consume_from: Option<&str>,
        comment: Option<String>,
    ) -> Result<PauseStatus, IngestError> {
        let name_with_type = table.name_with_type();
        let criteria = match consume_from.unwrap_or("lastConsumed") {
            v if v.eq_ignore_ascii_case("lastConsumed") => None,
            v if v.eq_ignore_ascii_case("smallest") => Some(OffsetCriteria::Smallest),
            v if v.eq_ignore_ascii_case("largest") => Some(OffsetCriteria::Largest),
            other => {
                return Err(IngestError::InvalidConfig(format!(
                    "consumeFrom: '{other}' is not one of lastConsumed, smallest, largest"
                )))
            }
        };
        let Some(h) = self.tables.lock().get(&name_with_type).cloned() else {
            return Err(IngestError::InvalidConfig(format!(
                "table '{name_with_type}' is not consuming on this server"
            )));
        };
        if !self.ctx.catalog.table_state(&name_with_type)?.paused {
            // Not paused: nothing to resume (as Pinot, the answer is the current status).
            return self.pause_status(&name_with_type);
        }
        // Loops still committing a pause finish first.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        while !h.runtime.running.lock().is_empty() && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let segments = self.ctx.catalog.segments(&name_with_type)?;
        // Every partition: the catalog's and the stream's.
        let mut last: BTreeMap<u32, Option<&SegmentMeta>> = BTreeMap::new();
        for m in &segments {
            let e = last.entry(m.partition).or_insert(None);
            if e.is_none_or(|cur| m.sequence > cur.sequence) {
                *e = Some(m);
            }
        }
        let mut new = Vec::new();
        for spec in &h.runtime.streams {
            let (mut md, ids, timeout) =
                spec.partitions(&self.ctx.stream_ctx, Duration::MAX).await?;
            for p in ids {
                let id = spec.index * PARTITIONS_PER_STREAM + p.0;
                last.entry(id).or_insert(None);
            }
            for (&id, prev) in &last {
                if id / PARTITIONS_PER_STREAM != spec.index {
                    continue;
                }
                if prev.is_some_and(|m| m.status == SegmentStatus::InProgress) {
                    continue;
                }
                // A partition the stream closed stays closed.
                if prev.is_some_and(|m| {
                    m.extra.get(lifecycle::keys::STOP_REASON)
                        == Some(&serde_json::json!(StopReason::EndOfPartitionGroup.as_str()))
                }) {
                    continue;
                }
                let sp = PartitionId(id % PARTITIONS_PER_STREAM);
                let start = match (&criteria, prev.and_then(|m| m.end_offset.as_deref())) {
                    (None, Some(end)) => StreamOffset::parse(end),
                    (None, None) => {
                        md.offset_for(sp, &OffsetCriteria::Smallest, timeout)
                            .await?
                    }
                    (Some(c), _) => md.offset_for(sp, c, timeout).await?,
                };
                let seq = prev.map_or(0, |m| m.sequence + 1);
                new.push(in_progress_segment(
                    &h.runtime.raw_name,
                    &name_with_type,
                    id,
                    seq,
                    &start,
                ));
            }
        }
        let state = TableState::administrative(false, comment, now_ms());
        self.ctx
            .catalog
            .set_table_state(&name_with_type, &state, &new)?;
        for meta in self.ctx.catalog.segments(&name_with_type)? {
            if meta.status == SegmentStatus::InProgress {
                let c = h.runtime.control(meta.partition);
                c.pause.store(false, Ordering::SeqCst);
                info!(table = %name_with_type, partition = meta.partition,
                      offset = %meta.start_offset, "consumption resumed");
                spawn_partition(&self.ctx, &h, meta);
            }
        }
        self.pause_status(&name_with_type)
    }

    /// The catalog's IN_PROGRESS segments of a table.
    fn consuming_segments(&self, name_with_type: &str) -> Result<Vec<SegmentMeta>, IngestError> {
        Ok(self
            .ctx
            .catalog
            .segments(name_with_type)?
            .into_iter()
            .filter(|m| m.status == SegmentStatus::InProgress)
            .collect())
    }

    /// Pinot's `pauseStatus`: the flag and the segments still consuming.
    pub fn pause_status(&self, name_with_type: &str) -> Result<PauseStatus, IngestError> {
        let state = self.ctx.catalog.table_state(name_with_type)?;
        let consuming = self
            .consuming_segments(name_with_type)?
            .into_iter()
            .map(|m| m.segment_name)
            .collect();
        Ok(PauseStatus {
            pause_flag: state.paused,
            consuming_segments: consuming,
            reason_code: state.reason_code,
            comment: state.comment,
            timestamp: state.timestamp,
            index_of_inactive_topics: Vec::new(),
        })
    }

    /// Asks the consuming segments of some partitions (or named segments; all when both are
    /// `None`) to commit now (Pinot's `forceCommit`). Returns the job, whose status
    /// [`IngestManager::force_commit_status`] follows.
    pub fn force_commit(
        &self,
        name_with_type: &str,
        partitions: Option<&[u32]>,
        segments: Option<&[String]>,
    ) -> Result<ForceCommitJob, IngestError> {
        let Some(h) = self.tables.lock().get(name_with_type).cloned() else {
            return Err(IngestError::InvalidConfig(format!(
                "table '{name_with_type}' is not consuming on this server"
            )));
        };
        let consuming = self.consuming_segments(name_with_type)?;
        let mut chosen = Vec::new();
        for m in &consuming {
            let wanted = match (partitions, segments) {
                (Some(ps), _) => ps.contains(&m.partition),
                (_, Some(ss)) => ss.contains(&m.segment_name),
                _ => true,
            };
            if wanted {
                chosen.push(m.clone());
            }
        }
        if let Some(ss) = segments {
            for s in ss {
                if !chosen.iter().any(|m| &m.segment_name == s) {
                    return Err(IngestError::InvalidConfig(format!(
                        "segments: '{s}' is not a consuming segment of '{name_with_type}'"
                    )));
                }
            }
        }
        for m in &chosen {
            let c = h.runtime.control(m.partition);
            c.force.fetch_add(1, Ordering::SeqCst);
            c.wake.notify_one();
        }
        let job = ForceCommitJob {
            job_id: uuid::Uuid::new_v4().to_string(),
            table_name: name_with_type.to_string(),
            submission_time_ms: now_ms(),
            segments: chosen.into_iter().map(|m| m.segment_name).collect(),
        };
        info!(table = %name_with_type, job = %job.job_id, segments = job.segments.len(), "force commit requested");
        self.jobs.lock().insert(job.job_id.clone(), job.clone());
        Ok(job)
    }

    /// A force-commit job and the segments it still waits for.
    pub fn force_commit_status(
        &self,
        job_id: &str,
    ) -> Result<Option<(ForceCommitJob, Vec<String>)>, IngestError> {
        let Some(job) = self.jobs.lock().get(job_id).cloned() else {
            return Ok(None);
        };
        let consuming: HashSet<String> = self
            .consuming_segments(&job.table_name)?
            .into_iter()
            .map(|m| m.segment_name)
            .collect();
        let waiting = job
            .segments
            .iter()
            .filter(|s| consuming.contains(*s))
            .cloned()
            .collect();
        Ok(Some((job, waiting)))
    }

    /// Deletes a committed segment: catalog first (queries and restarts stop seeing it),
    /// then this server's copy and the deep store's.
    pub async fn delete_segment(
        &self,
        name_with_type: &str,
        raw_name: &str,
        segment: &str,
    ) -> Result<SegmentMeta, IngestError> {
        let meta = self.ctx.catalog.delete_segment(name_with_type, segment)?;
        if let Some(t) = self.ctx.segments.table(raw_name) {
            t.remove_segment(segment);
        }
        let path = lifecycle::segment_path(&self.ctx, name_with_type, segment);
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(table = %name_with_type, segment, error = %e, "cannot remove local segment file");
            }
        }
        if let Some(uri) = meta
            .extra
            .get(lifecycle::keys::DOWNLOAD_URL)
            .and_then(serde_json::Value::as_str)
        {
            if let Err(e) = self.ctx.deep_store.delete(uri).await {
                warn!(table = %name_with_type, segment, error = %e,
                      "cannot delete the deep-store copy; it is removed at the next start");
            }
        }
        info!(table = %name_with_type, segment, "segment deleted");
        Ok(meta)
    }

    /// Removes a deleted table's files: local segment files and deep-store objects.
    pub async fn purge_table_files(&self, name_with_type: &str) {
        let dir = lifecycle::table_dir(&self.ctx, name_with_type);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(table = %name_with_type, error = %e, "cannot remove the table's segment files");
            }
        }
        if let Err(e) = self
            .ctx
            .deep_store
            .remove_unreferenced(name_with_type, &HashSet::new())
            .await
        {
            warn!(table = %name_with_type, error = %e, "cannot remove the table's deep-store objects");
        }
    }

    /// Deletes committed segments whose newest row is older than the table's retention
    /// (`segmentsConfig.retentionTimeUnit` / `retentionTimeValue`), for every table.
    /// Returns the segments deleted.
    pub async fn enforce_retention(&self) -> Vec<String> {
        let mut deleted = Vec::new();
        let tables = match self.ctx.catalog.tables() {
            Ok(t) => t,
            Err(e) => {
                warn!(error = %e, "retention: cannot list tables");
                return deleted;
            }
        };
        let now = now_ms();
        for (name, json) in tables {
            let Ok(cfg) = TableConfig::from_json(json.as_bytes()) else {
                continue;
            };
            let Some(retention_ms) = retention_ms(&cfg) else {
                continue;
            };
            let Ok(segments) = self.ctx.catalog.segments(&name) else {
                continue;
            };
            for m in segments {
                if m.status != SegmentStatus::Done {
                    continue;
                }
                let end = m
                    .extra
                    .get(lifecycle::keys::END_TIME_MS)
                    .and_then(serde_json::Value::as_i64);
                // Segments without a time range are kept (Pinot does the same).
                let Some(end) = end else { continue };
                if end < now - retention_ms {
                    match self
                        .delete_segment(&name, cfg.raw_name(), &m.segment_name)
                        .await
                    {
                        Ok(_) => {
                            info!(table = %name, segment = %m.segment_name, "segment past retention deleted");
                            deleted.push(m.segment_name);
                        }
                        Err(e) => warn!(table = %name, segment = %m.segment_name, error = %e,
                                        "retention: cannot delete segment"),
                    }
                }
            }
        }
        deleted
    }

    /// Committed segments that could not be loaded, by segment.
    pub fn load_errors(&self, name_with_type: &str) -> BTreeMap<String, String> {
        self.tables
            .lock()
            .get(name_with_type)
            .map(|h| h.runtime.data.unavailable())
            .unwrap_or_default()
    }
}

fn spawn_partition(ctx: &Arc<IngestContext>, handle: &Arc<TableHandle>, meta: SegmentMeta) {
    if !handle.runtime.running.lock().insert(meta.partition) {
        return;
    }
    let control = handle.runtime.control(meta.partition);
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
        control,
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
        // A paused table starts no partition; a partition the catalog knows (consuming,
        // committed or paused) is not new.
        if ctx
            .catalog
            .table_state(&rt.name_with_type)
            .map(|st| st.paused)
            .unwrap_or(true)
        {
            continue;
        }
        let known: HashSet<u32> = match ctx.catalog.segments(&rt.name_with_type) {
            Ok(segs) => segs.iter().map(|m| m.partition).collect(),
            Err(e) => {
                warn!(table = %rt.name_with_type, error = %e, "partition discovery cannot read the catalog");
                continue;
            }
        };
        for spec in &rt.streams {
            let found = async {
                let (mut md, ids, timeout) =
                    spec.partitions(&ctx.stream_ctx, Duration::MAX).await?;
                let mut new = Vec::new();
                for p in ids {
                    let id = spec.index * PARTITIONS_PER_STREAM + p.0;
                    if known.contains(&id) || rt.running.lock().contains(&id) {
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
                                rt.control(meta.partition);
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
