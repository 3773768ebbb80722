//! [`ServerRole`]: what runs on a server. It hosts the tables the controller hands it
//! (loads their committed segments, registers them for queries), runs one consumption loop
//! per consuming segment it is given, and answers pause, force-commit and status requests.
//! It decides nothing about segments and never touches the catalog: segment names,
//! thresholds and commits go through the [`SegmentCommitter`].

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use riffle_catalog::SegmentMeta;
use riffle_common::{TableNameWithType, TableType};
use riffle_segment::{SegmentRef, TableData};
use tracing::{error, info, warn};

pub use crate::context::ServerContext;
use crate::loader::{load_committed, remove_local_orphans};
use crate::partition::PartitionLoop;
use crate::spec::TableSpec;
use crate::status::PartitionStatus;
use crate::table::TableRuntime;

/// A table handed to this server.
#[derive(Debug)]
pub struct TableAssignment {
    /// The table.
    pub spec: Arc<TableSpec>,
    /// Its committed segments, to load.
    pub committed: Vec<SegmentMeta>,
    /// Its consuming segments, to consume (each with its row threshold).
    pub consuming: Vec<SegmentMeta>,
    /// Consumption is paused: consuming segments left by a pause that did not finish
    /// before a restart are committed, and nothing more is read.
    pub paused: bool,
    /// Committed segments' dead letters: `(segment name, JSON array)` as the catalog keeps
    /// them.
    pub dead_letters: Vec<(String, String)>,
}

/// The server role of a node.
pub struct ServerRole {
    ctx: Arc<ServerContext>,
    tables: Mutex<HashMap<TableNameWithType, Arc<TableRuntime>>>,
}

impl ServerRole {
    /// A server hosting nothing yet.
    pub fn new(ctx: ServerContext) -> ServerRole {
        ServerRole {
            ctx: Arc::new(ctx),
            tables: Mutex::new(HashMap::new()),
        }
    }

    /// The shared context.
    pub fn context(&self) -> &ServerContext {
        &self.ctx
    }

    fn table(&self, name: &TableNameWithType) -> Option<Arc<TableRuntime>> {
        self.tables.lock().get(name).cloned()
    }

    /// The spec of a hosted table.
    pub fn spec(&self, name: &TableNameWithType) -> Option<Arc<TableSpec>> {
        self.table(name).map(|rt| rt.spec().clone())
    }

    /// Moves a hosted table to a new spec without stopping it (a column added to its
    /// schema, changed transforms): committed segments are opened again with the new
    /// columns and queries see them at once; each partition's loop follows between two
    /// batches, its rows so far reading the new columns' defaults. The new spec's columns
    /// must keep the old ones first, in their order.
    pub fn evolve_table(&self, spec: Arc<TableSpec>) -> Result<(), String> {
        let name = spec.config.name_with_type();
        let Some(rt) = self.table(&name) else {
            return Err(format!("table {name} is not hosted here"));
        };
        rt.set_spec(spec.clone());
        for (_, c) in rt.controls() {
            c.wake();
        }
        rt.data
            .evolve(spec.columns.clone(), spec.load_mode)
            .map_err(|e| format!("open the committed segments with the new columns: {e}"))?;
        info!(table = %name, columns = spec.columns.len(), "table follows its new spec");
        Ok(())
    }

    /// Whether a table is hosted here.
    pub fn hosts(&self, name: &TableNameWithType) -> bool {
        self.tables.lock().contains_key(name)
    }

    /// Hosts a table: removes local files no committed segment references, loads the
    /// committed segments (from local disk when intact, else from the deep store), registers
    /// the table for queries and starts a loop for each consuming segment. A table hosted
    /// already is left alone.
    pub async fn host_table(&self, a: TableAssignment) {
        let name = a.spec.config.name_with_type();
        if self.hosts(&name) {
            return;
        }
        // The two halves of a hybrid table answer from one registry entry; its segments
        // know their half.
        let data = match self.ctx.segments.table(name.raw().as_str()) {
            Some(existing) if self.hosts(&name.raw().with_type(other_type(&name))) => existing,
            _ => Arc::new(TableData::new(
                name.raw().as_str(),
                a.spec.columns.clone(),
                a.spec.config.time_column().map(str::to_string),
            )),
        };
        let rt = Arc::new(TableRuntime::new(
            name.clone(),
            a.spec.clone(),
            data.clone(),
        ));
        remove_local_orphans(&rt, &rt.dir(&self.ctx), &a.committed);
        self.load_segments(&rt, &a.committed).await;
        self.ctx.segments.add_table(data);
        if let Some(dead) = &rt.dead {
            load_dead_letters(&rt, dead, &a.dead_letters);
            self.ctx.segments.add_table(dead.clone());
        }
        for meta in &a.consuming {
            rt.control(meta.partition).set_pause(a.paused);
        }
        self.tables.lock().insert(name.clone(), rt.clone());
        for meta in a.consuming {
            self.spawn_partition(&rt, meta);
        }
        info!(table = %name, paused = a.paused, "table hosted");
    }

    async fn load_segments(&self, rt: &Arc<TableRuntime>, committed: &[SegmentMeta]) {
        let started = std::time::Instant::now();
        let mut loaded = 0usize;
        for meta in committed {
            match load_committed(&self.ctx, rt, meta).await {
                Ok(Some(seg)) => {
                    let seg = SegmentRef::Sealed(Arc::new(seg));
                    match rt.name.table_type() {
                        TableType::Offline => rt.data.put_offline_segment(seg),
                        TableType::Realtime => rt.data.put_segment(seg),
                    }
                    loaded += 1;
                }
                Ok(None) => {}
                Err(e) => {
                    error!(table = %rt.name, segment = %meta.segment_name, error = %e,
                           "committed segment cannot be loaded; its rows are missing from queries");
                    rt.data.set_unavailable(&meta.segment_name, e);
                }
            }
        }
        if loaded > 0 {
            info!(table = %rt.name, segments = loaded,
                  ms = started.elapsed().as_millis() as u64, "committed segments loaded");
        }
    }

    /// Starts loops for new consuming segments of a hosted table (a partition found while
    /// running, a resume). A partition whose loop runs is left alone.
    pub fn consume(&self, name: &TableNameWithType, segments: Vec<SegmentMeta>) {
        let Some(rt) = self.table(name) else {
            warn!(table = %name, "consuming segments for a table not hosted here; ignored");
            return;
        };
        for meta in segments {
            let c = rt.control(meta.partition);
            c.set_pause(false);
            info!(table = %name, partition = meta.partition, offset = %meta.start_offset,
                  "partition starts consuming");
            self.spawn_partition(&rt, meta);
        }
    }

    fn spawn_partition(&self, rt: &Arc<TableRuntime>, meta: SegmentMeta) {
        let Some(stream) = rt.spec().stream_of(meta.partition).cloned() else {
            warn!(table = %rt.name, partition = meta.partition,
                  "consuming segment belongs to no stream of the table; not started");
            return;
        };
        if !rt.mark_running(meta.partition) {
            return;
        }
        let lp = PartitionLoop::new(
            self.ctx.clone(),
            rt.clone(),
            stream,
            meta,
            rt.cancel.child_token(),
        );
        let task = tokio::spawn(lp.run());
        rt.tasks.lock().push(task);
    }

    /// Stops a table's loops and waits for them; its segments leave the query registry.
    pub async fn stop_table(&self, name: &TableNameWithType) {
        let Some(rt) = self.tables.lock().remove(name) else {
            return;
        };
        rt.cancel.cancel();
        let tasks = std::mem::take(&mut *rt.tasks.lock());
        for t in tasks {
            let _ = t.await;
        }
        // The other half of a hybrid table keeps answering from the shared entry.
        rt.data.remove_half(name.table_type() == TableType::Offline);
        if !self.hosts(&name.raw().with_type(other_type(name))) {
            self.ctx.segments.remove_table(name.raw().as_str());
        }
        if name.table_type() == TableType::Realtime {
            self.ctx
                .segments
                .remove_table(&crate::dead_letter::dead_letter_table(name.raw().as_str()));
        }
        info!(table = %name, "table stopped");
    }

    /// Stops every table.
    pub async fn shutdown(&self) {
        let names: Vec<TableNameWithType> = self.tables.lock().keys().cloned().collect();
        for n in names {
            self.stop_table(&n).await;
        }
    }

    /// Asks every loop of a table to commit its consuming segment and stop, and waits up to
    /// `wait` for them; whether none runs any more.
    pub async fn pause(&self, name: &TableNameWithType, wait: Duration) -> bool {
        let Some(rt) = self.table(name) else {
            return true;
        };
        for (_, c) in rt.controls() {
            c.set_pause(true);
        }
        rt.wait_idle(wait).await
    }

    /// Waits up to `wait` until no loop of a table runs; whether none does.
    pub async fn wait_idle(&self, name: &TableNameWithType, wait: Duration) -> bool {
        match self.table(name) {
            Some(rt) => rt.wait_idle(wait).await,
            None => true,
        }
    }

    /// Partitions of a table whose loop runs now.
    pub fn running_partitions(&self, name: &TableNameWithType) -> Vec<u32> {
        self.table(name)
            .map(|rt| rt.running().into_iter().collect())
            .unwrap_or_default()
    }

    /// Asks the loops of these partitions to commit their consuming segments now.
    pub fn force_commit(&self, name: &TableNameWithType, partitions: &[u32]) {
        if let Some(rt) = self.table(name) {
            for p in partitions {
                rt.control(*p).force_commit();
            }
        }
    }

    /// The state of each partition of a table, `None` if it is not hosted here.
    pub fn status(&self, name: &TableNameWithType) -> Option<Vec<PartitionStatus>> {
        self.table(name).map(|rt| rt.status.all())
    }

    /// Committed segments of a table that could not be loaded, by segment.
    pub fn load_errors(&self, name: &TableNameWithType) -> BTreeMap<String, String> {
        self.table(name)
            .map(|rt| rt.data.unavailable())
            .unwrap_or_default()
    }

    /// Drops a committed segment's dead letters from queries (past their retention).
    pub fn drop_dead_letters(&self, name: &TableNameWithType, segment: &str) {
        let dl = crate::dead_letter::dead_letter_table(name.raw().as_str());
        if let Some(t) = self.ctx.segments.table(&dl) {
            t.remove_segment(segment);
        }
    }

    /// Installs a pushed segment of an OFFLINE table: `staged` (a checked segment file in
    /// the data directory) becomes the table's local copy and queries see it at once,
    /// replacing a segment of the same name in one step. The catalog has recorded it.
    pub async fn install_pushed(
        &self,
        name: &TableNameWithType,
        segment: &str,
        staged: &std::path::Path,
    ) -> Result<(), String> {
        let rt = self
            .table(name)
            .ok_or_else(|| format!("table {name} is not hosted here"))?;
        let path = rt.segment_path(&self.ctx, segment);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        // A rename: a query still reading the old file keeps its mapping of it.
        std::fs::rename(staged, &path)
            .map_err(|e| format!("move {} to {}: {e}", staged.display(), path.display()))?;
        let (p, n, columns, mode) = (
            path.clone(),
            segment.to_string(),
            rt.spec().columns.clone(),
            rt.spec().load_mode,
        );
        let seg = self
            .ctx
            .cpu
            .run(move || riffle_segment::SealedSegment::open(&p, &n, columns, mode))
            .await
            .map_err(|e| format!("open task failed: {e}"))?
            .map_err(|e| e.to_string())?;
        rt.data
            .put_offline_segment(SegmentRef::Sealed(Arc::new(seg)));
        info!(table = %name, segment, "pushed segment installed");
        Ok(())
    }

    /// The local file of a loaded sealed segment of a hosted table.
    pub fn local_segment_file(
        &self,
        name: &TableNameWithType,
        segment: &str,
    ) -> Option<std::path::PathBuf> {
        match self.table(name)?.data.segment(segment)? {
            SegmentRef::Sealed(s) => Some(s.path().to_path_buf()),
            SegmentRef::Consuming(_) => None,
        }
    }

    /// The hosted table's shared query entry (both halves of a hybrid table).
    pub fn table_data(&self, name: &TableNameWithType) -> Option<Arc<TableData>> {
        self.table(name).map(|rt| rt.data.clone())
    }

    /// Drops a deleted segment: out of the query registry, its local file removed.
    pub fn drop_segment(&self, name: &TableNameWithType, segment: &str) {
        if let Some(t) = self.ctx.segments.table(name.raw().as_str()) {
            t.remove_segment(segment);
        }
        let path = name
            .dir_in(&self.ctx.segments_dir)
            .join(format!("{segment}.seg"));
        if let Err(e) = std::fs::remove_file(&path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(table = %name, segment, error = %e, "cannot remove local segment file");
            }
        }
    }

    /// Removes a deleted table's local segment files. `last_half` says no type of the
    /// table is left, so its query registry entry goes too.
    pub fn drop_table_files(&self, name: &TableNameWithType, last_half: bool) {
        let dir = name.dir_in(&self.ctx.segments_dir);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warn!(table = %name, error = %e, "cannot remove the table's segment files");
            }
        }
        if last_half {
            self.ctx.segments.remove_table(name.raw().as_str());
        }
    }
}

fn other_type(name: &TableNameWithType) -> TableType {
    match name.table_type() {
        TableType::Offline => TableType::Realtime,
        TableType::Realtime => TableType::Offline,
    }
}

/// Committed dead letters into the dead-letter table, one in-memory segment per committed
/// segment (they are small, and bounded by their retention).
fn load_dead_letters(rt: &TableRuntime, dead: &TableData, committed: &[(String, String)]) {
    for (segment, json) in committed {
        let letters: Vec<crate::dead_letter::DeadLetter> = match serde_json::from_str(json) {
            Ok(l) => l,
            Err(e) => {
                error!(table = %rt.name, segment = %segment, error = %e,
                       "dead letters of a committed segment cannot be read; left out");
                continue;
            }
        };
        let columns = dead.columns();
        let batch = match crate::dead_letter::to_batch(&columns, &letters) {
            Ok(b) => b,
            Err(e) => {
                error!(table = %rt.name, segment = %segment, error = %e, "dead letters left out");
                continue;
            }
        };
        let seg = riffle_segment::ConsumingSegment::new(
            segment.clone(),
            riffle_common::PartitionId(0),
            0,
            riffle_common::StreamOffset::Long(0),
            0,
            columns,
        );
        let end = riffle_common::StreamOffset::Long(letters.len() as i64);
        let latest = letters.iter().map(|d| d.time_ms).max();
        if let Err(e) = seg.append(
            Some(batch),
            end,
            letters.len() as u64,
            latest,
            latest.unwrap_or(0),
        ) {
            error!(table = %rt.name, segment = %segment, error = %e, "dead letters left out");
            continue;
        }
        dead.put_segment(SegmentRef::Consuming(Arc::new(seg)));
    }
}
