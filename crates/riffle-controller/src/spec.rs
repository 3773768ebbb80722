//! From a parsed table config and its schema to a [`TableSpec`] the server role can run:
//! each stream's plugin found and asked to check its own keys, each stream's decoder
//! checked, the columns and seal options derived. Done once per table start.

use std::sync::Arc;
use std::time::Duration;

use riffle_common::{ErrorKind, PartitionId};
use riffle_config::{FlushConfig, Schema, TableConfig};
use riffle_ingest::{StreamSpec, TableSpec};
use riffle_segment::{SealOptions, TableColumns};
use riffle_stream::{MetadataProvider, StreamContext, StreamError, StreamRegistry};
use riffle_transform::{IngestPlan, TransformOptions};

use crate::error::ControllerError;

/// Resolves a table's streams and derives what its segments need. Returns the spec and
/// warnings about stream keys that are accepted but not honoured.
pub fn resolve(
    config: Arc<TableConfig>,
    schema: Arc<Schema>,
    registry: &StreamRegistry,
    ctx: &StreamContext,
    transform_options: TransformOptions,
) -> Result<(TableSpec, Vec<String>), ControllerError> {
    resolve_after(config, schema, registry, ctx, transform_options, None)
}

/// [`resolve`] for a running table moving to a new spec: the columns `previous` has come
/// first, in its order (positions the running table's segments and queries rely on), then
/// the schema's new ones.
pub fn resolve_after(
    config: Arc<TableConfig>,
    schema: Arc<Schema>,
    registry: &StreamRegistry,
    ctx: &StreamContext,
    transform_options: TransformOptions,
    previous: Option<&TableColumns>,
) -> Result<(TableSpec, Vec<String>), ControllerError> {
    let mut cols = riffle_config::Column::with_table_nulls(
        schema.columns().map_err(|e| ControllerError::wrap("", e))?,
        config.null_handling_enabled(),
    );
    if let Some(prev) = previous {
        let rank = |name: &str| prev.index_of(name).unwrap_or(usize::MAX);
        // A stable sort: new columns keep the schema's order after the old ones.
        cols.sort_by_key(|c| rank(&c.name));
    }
    let columns = TableColumns::new(cols);
    let mut warnings = Vec::new();
    let ingest = IngestPlan::new(&config, &schema, &columns, transform_options)
        .map_err(|e| ControllerError::new(ErrorKind::BadRequest, e.to_string()))?;
    if let Some(w) = ingest.as_ref().and_then(IngestPlan::check) {
        warnings.push(format!(
            "ingestionConfig: the expressions do not run on text source fields ({w}); they \
             run on the types the messages carry, and rows they fail on are counted as errors"
        ));
    }
    let (target, mut decode) = decode_target(&config, &columns, ingest.as_ref())?;
    decode.file_roots = std::iter::once(ctx.data_dir.clone())
        .chain(ctx.allowed_dirs.iter().cloned())
        .collect();
    let mut streams = Vec::new();
    for (i, sc) in config.streams().iter().enumerate() {
        let plugin = registry.plugin_for(sc)?;
        warnings.extend(plugin.validate(sc, ctx)?);
        riffle_decode::decoder_for(sc, &target, &decode).map_err(|e| {
            ControllerError::new(
                ErrorKind::BadRequest,
                format!(
                    "stream {i}: stream.{}.decoder.class.name: {e}",
                    sc.stream_type
                ),
            )
        })?;
        streams.push(StreamSpec {
            index: i as u32,
            config: sc.clone(),
            plugin,
        });
    }
    let flush = config
        .streams()
        .first()
        .map(|s| s.flush.clone())
        .unwrap_or_else(default_flush);
    let spec = TableSpec {
        seal: SealOptions::from_table(&config),
        load_mode: config.indexes().load_mode,
        flush,
        columns,
        streams,
        config,
        schema,
        ingest: ingest.map(Arc::new),
        decode,
    };
    Ok((spec, warnings))
}

/// What the table's decoders fill: the columns (the ingestion plan's staging columns when
/// it has one), the source-only fields its transforms read, and `complexTypeConfig`.
fn decode_target(
    config: &TableConfig,
    columns: &Arc<TableColumns>,
    ingest: Option<&IngestPlan>,
) -> Result<(Arc<TableColumns>, riffle_decode::DecodeTarget), ControllerError> {
    let complex = config
        .document()
        .ingestion_config
        .as_ref()
        .and_then(|i| i.extra.get("complexTypeConfig"))
        .filter(|c| !c.is_null())
        .map(|c| riffle_decode::ComplexType::parse("$.ingestionConfig.complexTypeConfig", c))
        .transpose()
        .map_err(|(path, e)| ControllerError::new(ErrorKind::BadRequest, format!("{path}: {e}")))?;
    let decode = riffle_decode::DecodeTarget {
        extras: ingest.map(|p| p.extras().to_vec()).unwrap_or_default(),
        complex,
        file_roots: Vec::new(),
    };
    let target = match ingest {
        Some(p) => p.staging().clone(),
        None => columns.clone(),
    };
    Ok((target, decode))
}

/// The flush settings of a table without streams (never used to end a segment).
fn default_flush() -> FlushConfig {
    FlushConfig {
        rows: None,
        segment_rows: None,
        time_ms: FlushConfig::DEFAULT_TIME_MS,
        segment_size_bytes: None,
        autotune_initial_rows: FlushConfig::DEFAULT_AUTOTUNE_INITIAL_ROWS,
        variance_fraction: 0.0,
    }
}

/// A stream's metadata provider, its partitions now, and the timeout for further calls.
pub(crate) type Partitions = (Box<dyn MetadataProvider>, Vec<PartitionId>, Duration);

/// Asks a stream for its partitions, each call bounded by the stream's connection timeout,
/// at most `cap`.
pub(crate) async fn stream_partitions(
    stream: &StreamSpec,
    ctx: &StreamContext,
    cap: Duration,
) -> Result<Partitions, StreamError> {
    let timeout = Duration::from_millis(stream.config.connection_timeout_ms.max(1)).min(cap);
    let mut md = stream.plugin.metadata_provider(&stream.config, ctx).await?;
    let ids = md.partition_ids(timeout).await?;
    Ok((md, ids, timeout))
}

/// The partitions of `ids` that may start now: those without parents, and those whose
/// every parent the stream still lists has ended (`ended` answers for a table partition
/// id: its last segment committed with `endOfPartitionGroup`). A Kinesis shard made by a
/// split or a merge thus starts after its parents were read to their end, so that the
/// records of a key are ingested in order (as Pinot does). Parents the stream no longer
/// lists (expired) do not hold a child back.
pub(crate) async fn startable(
    md: &mut dyn MetadataProvider,
    stream_index: u32,
    ids: Vec<PartitionId>,
    timeout: Duration,
    ended: impl Fn(u32) -> bool,
) -> Result<Vec<PartitionId>, StreamError> {
    let parents = md.parents(timeout).await?;
    if parents.is_empty() {
        return Ok(ids);
    }
    let listed: std::collections::HashSet<PartitionId> = ids.iter().copied().collect();
    Ok(ids
        .into_iter()
        .filter(|p| {
            parents.get(p).is_none_or(|ps| {
                ps.iter().all(|q| {
                    !listed.contains(q) || ended(riffle_ingest::partition_id(stream_index, q.0))
                })
            })
        })
        .collect())
}

/// The table partitions whose last segment ended the partition (`endOfPartitionGroup`) and
/// is committed.
pub(crate) fn ended_partitions(
    segments: &[riffle_catalog::SegmentMeta],
) -> std::collections::HashSet<u32> {
    let mut last: std::collections::BTreeMap<u32, &riffle_catalog::SegmentMeta> =
        std::collections::BTreeMap::new();
    for m in segments {
        let e = last.entry(m.partition).or_insert(m);
        if m.sequence > e.sequence {
            *e = m;
        }
    }
    last.into_iter()
        .filter(|(_, m)| {
            m.status != riffle_catalog::SegmentStatus::InProgress
                && m.stop_reason == Some(riffle_catalog::StopReason::EndOfPartitionGroup)
        })
        .map(|(p, _)| p)
        .collect()
}
