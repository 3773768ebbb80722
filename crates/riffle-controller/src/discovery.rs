//! Partition discovery: every `discovery_interval`, each stream of a consuming table is
//! asked for its partitions; a partition the catalog does not know gets its first
//! consuming segment at the smallest offset (Pinot's rule for new partitions), recorded in
//! the catalog before the server role starts consuming it. A partition with parents (a
//! Kinesis shard split or merged from others) waits until each parent has ended.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use riffle_catalog::SegmentMeta;
use riffle_common::{StreamOffset, TableNameWithType};
use riffle_config::OffsetCriteria;
use riffle_ingest::{partition_id, StreamSpec};
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use crate::context::ControllerContext;
use crate::error::ControllerError;
use crate::spec::{ended_partitions, startable, stream_partitions};

/// Runs discovery for a table until cancelled.
pub(crate) async fn run(
    ctx: Arc<ControllerContext>,
    name: TableNameWithType,
    cancel: CancellationToken,
) {
    loop {
        tokio::select! {
            _ = cancel.cancelled() => return,
            _ = tokio::time::sleep(ctx.discovery_interval) => {}
        }
        if let Err(e) = discover_once(&ctx, &name).await {
            warn!(table = %name, error = %e, "partition discovery failed");
        }
    }
}

/// One round of discovery.
async fn discover_once(
    ctx: &ControllerContext,
    name: &TableNameWithType,
) -> Result<(), ControllerError> {
    let (n1, n2) = (name.clone(), name.clone());
    // A paused table starts no partition; a partition the catalog knows (consuming,
    // committed or paused) is not new.
    if ctx.store.run(move |c| c.table_state(&n1)).await?.paused {
        return Ok(());
    }
    let segments = ctx.store.run(move |c| c.segments(&n2)).await?;
    let known: HashSet<u32> = segments.iter().map(|m| m.partition).collect();
    let ended = ended_partitions(&segments);
    let running: HashSet<u32> = ctx.server.running_partitions(name).into_iter().collect();
    let Some(spec) = ctx.server.spec(name) else {
        return Ok(());
    };
    for s in &spec.streams {
        let new = match new_partitions(ctx, s, &known, &running, &ended).await {
            Ok(n) => n,
            Err(e) => {
                warn!(table = %name, error = %e, "partition discovery failed");
                continue;
            }
        };
        ctx.segments
            .add_partitions(name, new.iter().map(|(p, _)| *p));
        for (p, start) in new {
            record_and_consume(ctx, name, p, start).await;
        }
    }
    Ok(())
}

/// Partitions of a stream that neither the catalog nor the server knows and that may start
/// (their parents, if any, have ended), with their smallest offsets.
async fn new_partitions(
    ctx: &ControllerContext,
    s: &StreamSpec,
    known: &HashSet<u32>,
    running: &HashSet<u32>,
    ended: &HashSet<u32>,
) -> Result<Vec<(u32, StreamOffset)>, ControllerError> {
    let (mut md, ids, timeout) = stream_partitions(s, &ctx.stream_ctx, Duration::MAX).await?;
    let ids = startable(md.as_mut(), s.index, ids, timeout, |p| ended.contains(&p)).await?;
    let mut new = Vec::new();
    for p in ids {
        let id = partition_id(s.index, p.0);
        if known.contains(&id) || running.contains(&id) {
            continue;
        }
        let start = md.offset_for(p, &OffsetCriteria::Smallest, timeout).await?;
        new.push((id, start));
    }
    Ok(new)
}

/// Records a new partition's first segment, then hands it to the server role.
async fn record_and_consume(
    ctx: &ControllerContext,
    name: &TableNameWithType,
    p: u32,
    start: StreamOffset,
) {
    let meta: SegmentMeta = match ctx.segments.new_segment(name, p, 0, start) {
        Ok(m) => m,
        Err(e) => {
            warn!(table = %name, partition = p, error = %e, "cannot plan new partition");
            return;
        }
    };
    let (n, m) = (name.clone(), meta.clone());
    // A partition the catalog already knows (e.g. a race with start-up) keeps its stored
    // start offset: the insert is refused.
    match ctx
        .store
        .run(move |c| c.add_segments(&n, std::slice::from_ref(&m)))
        .await
    {
        Ok(()) => {
            info!(table = %name, partition = p, offset = %meta.start_offset, "new partition found");
            ctx.server.consume(name, vec![meta]);
        }
        Err(e) => {
            warn!(table = %name, partition = p, error = %e, "cannot record new partition");
        }
    }
}
