//! [`SegmentManager`]: the controller's segment decisions (Pinot's realtime segment
//! manager). It names and sizes every consuming segment, and commits a sealed segment with
//! the next one in one catalog transaction; it is the in-process [`SegmentCommitter`] the
//! server role's sealers call.
//!
//! Per table it keeps the partitions consuming (Pinot divides the `rows` threshold by them)
//! and, per partition, what autotune learned from the last commit (also stored with that
//! segment in the catalog, and read back when the table starts).

use std::collections::{BTreeMap, BTreeSet, HashMap};

use async_trait::async_trait;
use parking_lot::Mutex;
use riffle_catalog::{Autotune, SegmentMeta, SegmentStatus};
use riffle_common::{
    now_ms, ErrorKind, PartitionId, SegmentName, StreamOffset, TableName, TableNameWithType,
};
use riffle_config::FlushConfig;
use riffle_ingest::{CommitError, CommitOutcome, SegmentCommit, SegmentCommitter, TableSpec};

use crate::flush::{learn, row_threshold};
use crate::store::CatalogStore;

/// What the manager knows of one table.
#[derive(Debug)]
struct TableSegments {
    raw: TableName,
    flush: FlushConfig,
    partitions: BTreeSet<u32>,
    autotune: BTreeMap<u32, Autotune>,
}

impl TableSegments {
    fn threshold(&self, partition: u32) -> u64 {
        let a = self.autotune.get(&partition).cloned().unwrap_or_default();
        let parts = self.partitions.len().max(1) as u32;
        row_threshold(&self.flush, parts, &a, &mut rand::rng())
    }

    /// A new consuming segment of `partition`, sized by this table's flush thresholds.
    fn segment(
        &self,
        name: &TableNameWithType,
        partition: u32,
        sequence: u32,
        start: StreamOffset,
    ) -> SegmentMeta {
        let created = now_ms();
        let segment = SegmentName::new(&self.raw, PartitionId(partition), sequence, created);
        let mut meta = SegmentMeta::in_progress(
            name,
            segment.to_string(),
            partition,
            sequence,
            start,
            created,
        );
        meta.flush_threshold_rows = Some(self.threshold(partition));
        meta
    }
}

/// The controller's segment decisions.
#[derive(Debug)]
pub struct SegmentManager {
    store: CatalogStore,
    tables: Mutex<HashMap<TableNameWithType, TableSegments>>,
}

impl SegmentManager {
    /// A manager writing through `store`.
    pub fn new(store: CatalogStore) -> SegmentManager {
        SegmentManager {
            store,
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// Starts managing a table whose stored segments are `segments`: its partitions, and
    /// what autotune knew after each partition's latest commit.
    pub(crate) fn register(&self, spec: &TableSpec, segments: &[SegmentMeta]) {
        let name = spec.config.name_with_type();
        let mut latest: BTreeMap<u32, (u32, Autotune)> = BTreeMap::new();
        for m in segments.iter().filter(|m| m.status == SegmentStatus::Done) {
            if let Some(a) = &m.autotune {
                let e = latest.entry(m.partition).or_insert((m.sequence, a.clone()));
                if m.sequence >= e.0 {
                    *e = (m.sequence, a.clone());
                }
            }
        }
        let t = TableSegments {
            raw: spec.config.name().clone(),
            flush: spec.flush.clone(),
            partitions: segments.iter().map(|m| m.partition).collect(),
            autotune: latest.into_iter().map(|(p, (_, a))| (p, a)).collect(),
        };
        self.tables.lock().insert(name, t);
    }

    /// Stops managing a table.
    pub(crate) fn unregister(&self, name: &TableNameWithType) {
        self.tables.lock().remove(name);
    }

    /// Counts partitions as consumed (before their first segments are created).
    pub(crate) fn add_partitions(
        &self,
        name: &TableNameWithType,
        ids: impl IntoIterator<Item = u32>,
    ) {
        if let Some(t) = self.tables.lock().get_mut(name) {
            t.partitions.extend(ids);
        }
    }

    /// A new consuming segment of a registered table, sized for its partition.
    pub(crate) fn new_segment(
        &self,
        name: &TableNameWithType,
        partition: u32,
        sequence: u32,
        start: StreamOffset,
    ) -> Result<SegmentMeta, CommitError> {
        let tables = self.tables.lock();
        let t = tables.get(name).ok_or_else(|| not_managed(name))?;
        Ok(t.segment(name, partition, sequence, start))
    }

    /// The first consuming segments of a new table, one per `(partition, start offset)`,
    /// sized for that many partitions (before the table is registered).
    pub(crate) fn first_segments(
        &self,
        spec: &TableSpec,
        starts: Vec<(u32, StreamOffset)>,
    ) -> Vec<SegmentMeta> {
        let name = spec.config.name_with_type();
        let t = TableSegments {
            raw: spec.config.name().clone(),
            flush: spec.flush.clone(),
            partitions: starts.iter().map(|(p, _)| *p).collect(),
            autotune: BTreeMap::new(),
        };
        starts
            .into_iter()
            .map(|(p, start)| t.segment(&name, p, 0, start))
            .collect()
    }

    /// Gives a consuming segment stored without a row threshold (by an older version) one.
    pub(crate) fn fill_threshold(&self, name: &TableNameWithType, meta: &mut SegmentMeta) {
        if meta.flush_threshold_rows.is_none() {
            if let Some(t) = self.tables.lock().get(name) {
                meta.flush_threshold_rows = Some(t.threshold(meta.partition));
            }
        }
    }

    /// The committed segment's metadata, what autotune learned from it, and the next
    /// segment's threshold.
    fn decide(
        &self,
        c: &SegmentCommit,
    ) -> Result<(SegmentMeta, Option<SegmentMeta>, Autotune), CommitError> {
        let name = &c.segment.table_name;
        let tables = self.tables.lock();
        let t = tables.get(name).ok_or_else(|| not_managed(name))?;
        let p = c.segment.partition;
        let mut autotune = t.autotune.get(&p).cloned().unwrap_or_default();
        let mut done = c.segment.clone();
        done.status = SegmentStatus::Done;
        done.end_offset = Some(c.end_offset.clone());
        done.total_docs = Some(c.rows);
        done.flush_threshold_rows = Some(c.threshold);
        done.stop_reason = Some(c.reason);
        if let Some(f) = &c.sealed {
            done.crc = Some(f.crc);
            done.download_url = Some(f.download_url.clone());
            done.size_bytes = Some(f.size_bytes);
            done.start_time_ms = f.start_time_ms;
            done.end_time_ms = f.end_time_ms;
            learn(
                &mut autotune,
                c.rows,
                f.size_bytes,
                c.threshold,
                c.consumed_ms,
                c.reason,
            );
        }
        done.autotune = Some(autotune.clone());
        done.commit_time_ms = Some(now_ms());
        // The next segment's threshold is chosen now, from what this commit taught autotune.
        let next = c.next.clone().map(|mut n| {
            let parts = t.partitions.len().max(1) as u32;
            n.flush_threshold_rows =
                Some(row_threshold(&t.flush, parts, &autotune, &mut rand::rng()));
            n
        });
        Ok((done, next, autotune))
    }
}

fn not_managed(name: &TableNameWithType) -> CommitError {
    CommitError {
        kind: ErrorKind::Conflict,
        message: format!("table '{name}' is not consuming (deleted or stopped)"),
        source: None,
    }
}

#[async_trait]
impl SegmentCommitter for SegmentManager {
    async fn next_segment(
        &self,
        ended: &SegmentMeta,
        end: &StreamOffset,
    ) -> Result<SegmentMeta, CommitError> {
        self.new_segment(
            &ended.table_name,
            ended.partition,
            ended.sequence + 1,
            end.clone(),
        )
    }

    async fn commit(&self, c: SegmentCommit) -> Result<CommitOutcome, CommitError> {
        let (done, next, autotune) = self.decide(&c)?;
        let name = c.segment.table_name.clone();
        let next_threshold = next.as_ref().and_then(|n| n.flush_threshold_rows);
        let dead = c.dead_letters.clone();
        self.store
            .run(move |cat| cat.commit_segment_with(&name, &done, next.as_ref(), dead.as_deref()))
            .await
            .map_err(CommitError::of)?;
        if let Some(t) = self.tables.lock().get_mut(&c.segment.table_name) {
            t.autotune.insert(c.segment.partition, autotune);
        }
        Ok(CommitOutcome { next_threshold })
    }
}
