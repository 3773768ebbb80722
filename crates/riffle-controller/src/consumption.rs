//! Consumption control: pause, resume, force commit and their statuses, and each consuming
//! segment's state and lag (`consumingSegmentsInfo`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use riffle_catalog::{SegmentMeta, SegmentStatus, TableState};
use riffle_common::{now_ms, ErrorKind, StreamOffset, TableNameWithType};
use riffle_config::OffsetCriteria;
use riffle_ingest::{partition_id, PARTITIONS_PER_STREAM};
use tracing::info;

use crate::error::ControllerError;
use crate::models::{ConsumeFrom, ConsumingInfo, ForceCommitJob, PauseStatus};
use crate::spec::{ended_partitions, startable, stream_partitions};
use crate::tables::TableManager;

type Result<T> = std::result::Result<T, ControllerError>;

/// How long a resume waits for loops still committing a pause.
const RESUME_WAIT: Duration = Duration::from_secs(60);

impl TableManager {
    async fn segments_of(&self, name: &TableNameWithType) -> Result<Vec<SegmentMeta>> {
        let n = name.clone();
        self.ctx.store.run(move |c| c.segments(&n)).await
    }

    async fn consuming(&self, name: &TableNameWithType) -> Result<Vec<SegmentMeta>> {
        Ok(self
            .segments_of(name)
            .await?
            .into_iter()
            .filter(|m| m.status == SegmentStatus::InProgress)
            .collect())
    }

    fn not_consuming(name: &TableNameWithType) -> ControllerError {
        ControllerError::bad_request(format!("table '{name}' is not consuming on this server"))
    }

    /// Pinot's `pauseStatus`: the flag and the segments still consuming.
    pub async fn pause_status(&self, name: &TableNameWithType) -> Result<PauseStatus> {
        let n = name.clone();
        let state = self.ctx.store.run(move |c| c.table_state(&n)).await?;
        let consuming = self
            .consuming(name)
            .await?
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

    /// Pauses a table's consumption (Pinot's `pauseConsumption`): the flag is stored first,
    /// then each consuming segment is committed with no next segment. Waits up to `wait`
    /// for the commits; what is still consuming is in the returned status.
    pub async fn pause(
        &self,
        name: &TableNameWithType,
        comment: Option<String>,
        wait: Duration,
    ) -> Result<PauseStatus> {
        let state = TableState::administrative(true, comment, now_ms());
        let n = name.clone();
        self.ctx
            .store
            .run(move |c| c.set_table_state(&n, &state, &[]))
            .await?;
        self.ctx.server.pause(name, wait).await;
        info!(table = %name, "consumption paused");
        self.pause_status(name).await
    }

    /// Resumes a paused table (Pinot's `resumeConsumption`): every partition without a
    /// consuming segment gets one, starting where `consume_from` says (default: the end of
    /// its last committed segment).
    pub async fn resume(
        &self,
        name: &TableNameWithType,
        consume_from: Option<&str>,
        comment: Option<String>,
    ) -> Result<PauseStatus> {
        let from = match consume_from {
            None => ConsumeFrom::LastConsumed,
            Some(v) => ConsumeFrom::parse(v).ok_or_else(|| {
                ControllerError::bad_request(format!(
                    "consumeFrom: '{v}' is not one of lastConsumed, smallest, largest"
                ))
            })?,
        };
        if !self.ctx.server.hosts(name) {
            return Err(Self::not_consuming(name));
        }
        let n = name.clone();
        if !self.ctx.store.run(move |c| c.table_state(&n)).await?.paused {
            // Not paused: nothing to resume (as Pinot, the answer is the current status).
            return self.pause_status(name).await;
        }
        // Loops still committing a pause finish first.
        self.ctx.server.wait_idle(name, RESUME_WAIT).await;
        let new = self.resume_segments(name, from).await?;
        let state = TableState::administrative(false, comment, now_ms());
        let n = name.clone();
        self.ctx
            .store
            .run(move |c| c.set_table_state(&n, &state, &new))
            .await?;
        let consuming = self.consuming(name).await?;
        for m in &consuming {
            info!(table = %name, partition = m.partition, offset = %m.start_offset, "consumption resumed");
        }
        self.ctx.server.consume(name, consuming);
        self.pause_status(name).await
    }

    /// The consuming segments a resume creates: one per partition (the catalog's and the
    /// stream's) that has none.
    async fn resume_segments(
        &self,
        name: &TableNameWithType,
        from: ConsumeFrom,
    ) -> Result<Vec<SegmentMeta>> {
        let spec = self
            .ctx
            .server
            .spec(name)
            .ok_or_else(|| Self::not_consuming(name))?;
        let segments = self.segments_of(name).await?;
        let mut last: BTreeMap<u32, Option<&SegmentMeta>> = BTreeMap::new();
        for m in &segments {
            let e = last.entry(m.partition).or_insert(None);
            if e.is_none_or(|cur| m.sequence > cur.sequence) {
                *e = Some(m);
            }
        }
        let criteria = match from {
            ConsumeFrom::LastConsumed => None,
            ConsumeFrom::Smallest => Some(OffsetCriteria::Smallest),
            ConsumeFrom::Largest => Some(OffsetCriteria::Largest),
        };
        let mut new = Vec::new();
        for s in &spec.streams {
            let (mut md, ids, timeout) =
                stream_partitions(s, &self.ctx.stream_ctx, Duration::MAX).await?;
            let ended = ended_partitions(&segments);
            let ids = startable(md.as_mut(), s.index, ids, timeout, |p| ended.contains(&p)).await?;
            for p in ids {
                last.entry(partition_id(s.index, p.0)).or_insert(None);
            }
            self.ctx.segments.add_partitions(name, last.keys().copied());
            for (&id, prev) in last
                .iter()
                .filter(|(id, _)| **id / PARTITIONS_PER_STREAM == s.index)
            {
                if prev.is_some_and(|m| m.status == SegmentStatus::InProgress) {
                    continue;
                }
                // A partition the stream closed stays closed.
                if prev.is_some_and(|m| {
                    m.stop_reason == Some(riffle_catalog::StopReason::EndOfPartitionGroup)
                }) {
                    continue;
                }
                let sp = riffle_common::PartitionId(id % PARTITIONS_PER_STREAM);
                let start = match (&criteria, prev.and_then(|m| m.end_offset.clone())) {
                    (None, Some(end)) => end,
                    (None, None) => {
                        md.offset_for(sp, &OffsetCriteria::Smallest, timeout)
                            .await?
                    }
                    (Some(c), _) => md.offset_for(sp, c, timeout).await?,
                };
                let seq = prev.map_or(0, |m| m.sequence + 1);
                let meta = self
                    .ctx
                    .segments
                    .new_segment(name, id, seq, start)
                    .map_err(|e| ControllerError::wrap("", e))?;
                new.push(meta);
            }
        }
        Ok(new)
    }

    /// Asks the consuming segments of some partitions (or named segments; all when both are
    /// `None`) to commit now (Pinot's `forceCommit`). Returns the job, whose status
    /// [`TableManager::force_commit_status`] follows.
    pub async fn force_commit(
        &self,
        name: &TableNameWithType,
        partitions: Option<&[u32]>,
        segments: Option<&[String]>,
    ) -> Result<ForceCommitJob> {
        if !self.ctx.server.hosts(name) {
            return Err(Self::not_consuming(name));
        }
        let chosen: Vec<SegmentMeta> = self
            .consuming(name)
            .await?
            .into_iter()
            .filter(|m| match (partitions, segments) {
                (Some(ps), _) => ps.contains(&m.partition),
                (_, Some(ss)) => ss.contains(&m.segment_name),
                _ => true,
            })
            .collect();
        for s in segments.into_iter().flatten() {
            if !chosen.iter().any(|m| &m.segment_name == s) {
                return Err(ControllerError::bad_request(format!(
                    "segments: '{s}' is not a consuming segment of '{name}'"
                )));
            }
        }
        let parts: Vec<u32> = chosen.iter().map(|m| m.partition).collect();
        self.ctx.server.force_commit(name, &parts);
        let job = ForceCommitJob {
            job_id: uuid::Uuid::new_v4().to_string(),
            table_name: name.to_string(),
            submission_time_ms: now_ms(),
            segments: chosen.into_iter().map(|m| m.segment_name).collect(),
        };
        info!(table = %name, job = %job.job_id, segments = job.segments.len(), "force commit requested");
        self.jobs.lock().insert(job.job_id.clone(), job.clone());
        Ok(job)
    }

    /// A force-commit job and the segments it still waits for.
    pub async fn force_commit_status(
        &self,
        job_id: &str,
    ) -> Result<Option<(ForceCommitJob, Vec<String>)>> {
        let Some(job) = self.jobs.lock().get(job_id).cloned() else {
            return Ok(None);
        };
        let name = TableNameWithType::parse(&job.table_name)?;
        let consuming: HashSet<String> = self
            .consuming(&name)
            .await?
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

    /// Each consuming segment of a REALTIME table with its partition's state and lag.
    pub async fn consuming_info(&self, name: &TableNameWithType) -> Result<Vec<ConsumingInfo>> {
        if self.table(name).await?.is_none() {
            return Err(ControllerError::new(
                ErrorKind::NotFound,
                format!("Table {} does not exist", name.raw()),
            ));
        }
        let statuses = self.ctx.server.status(name).unwrap_or_default();
        let latest = self.latest_offsets(name).await;
        let now = now_ms();
        let mut out = Vec::new();
        for m in self.consuming(name).await? {
            let st = statuses.iter().find(|p| p.partition == m.partition);
            let current = st.map_or(m.start_offset.clone(), |p| p.current_offset.clone());
            let up = latest.get(&m.partition);
            // Offset distance to the stream's end (records for Kafka; bytes for the file
            // stream, whose lag is then not reported as records); availability lag: how long
            // the newest indexed row has waited for what follows it (0 when caught up).
            let distance = up.and_then(|(o, _)| current.distance_to(o));
            let availability_lag_ms = match (distance, st) {
                (Some(0), _) => Some(0),
                (Some(_), Some(p)) if p.last_indexed_ms > 0 => {
                    Some((now - p.last_indexed_ms).max(0))
                }
                _ => None,
            };
            out.push(ConsumingInfo {
                segment: m.segment_name.clone(),
                partition: m.partition,
                consuming: st.is_some_and(|p| p.is_consuming()),
                state: st.map(|p| p.state),
                current_offset: current,
                latest_offset: up.map(|(o, _)| o.clone()),
                records_lag: distance.filter(|_| up.is_some_and(|(_, counts)| *counts)),
                availability_lag_ms,
                last_indexed_ms: st.map_or(0, |p| p.last_indexed_ms),
                last_error: st.and_then(|p| p.last_error.clone()),
                decode_errors: st.map_or(0, |p| p.decode_errors),
                rows_filtered: st.map_or(0, |p| p.rows_filtered),
                offsets_lost: st.map_or(0, |p| p.offsets_lost),
            });
        }
        Ok(out)
    }

    /// The latest offset of every partition of a consuming table, asked of the stream now,
    /// with whether offset differences count records. Partitions whose stream cannot be
    /// reached within two seconds are left out.
    async fn latest_offsets(
        &self,
        name: &TableNameWithType,
    ) -> BTreeMap<u32, (StreamOffset, bool)> {
        let Some(spec) = self.ctx.server.spec(name) else {
            return BTreeMap::new();
        };
        let mut out = BTreeMap::new();
        for s in &spec.streams {
            let res = async {
                let (mut md, ids, timeout) =
                    stream_partitions(s, &self.ctx.stream_ctx, Duration::from_secs(2)).await?;
                md.latest_offsets(&ids, timeout).await
            }
            .await;
            match res {
                Ok(latest) => {
                    let counts = s.plugin.offsets_count_records();
                    for (p, o) in latest {
                        out.insert(partition_id(s.index, p.0), (o, counts));
                    }
                }
                Err(e) => {
                    tracing::warn!(table = %name, error = %e, "cannot read latest offsets");
                }
            }
        }
        out
    }

    /// The partitions of a table with a consuming segment in the catalog.
    pub async fn consuming_partitions(&self, name: &TableNameWithType) -> Result<BTreeSet<u32>> {
        Ok(self
            .consuming(name)
            .await?
            .iter()
            .map(|m| m.partition)
            .collect())
    }
}
